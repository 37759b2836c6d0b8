"""Encoder losses, registered by name: how far G(E(tile)) is from the photo taken there.

Every loss takes `pred` and `target` as N x 3 x H x W tensors in [-1, 1] (the generator's tanh
range) and returns one value per image (N,), lower is better, 0 for identical images. Training
takes the mean; the write-up's 3x3 tables and the oracle baseline use the per-image values.

    mse       mean squared error on [0, 1]
    ssim      1 - SSIM (pytorch-msssim, 11 px Gaussian window)
    ms-ssim   1 - MS-SSIM on the 4 scales that fit 128 px (see metrics.ms_ssim_per_image)
    custom    ours, see `custom_loss`: L1 + (1 - MS-SSIM) + colour layout + feature matching

The pixel terms are computed in float32 even inside a bf16 autocast region: SSIM subtracts
nearly equal local means and variances, which bf16's 8-bit mantissa cannot resolve.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import metrics

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: dict[str, Callable[..., torch.Tensor]] = {}
USES_DISCRIMINATOR = {"custom"}  # losses that need the frozen GAN discriminator


def register(name: str):
    def wrap(fn):
        LOSSES[name] = fn
        return fn
    return wrap


def _fp32(device: torch.device):
    return torch.autocast(device_type=device.type, enabled=False)


@register("mse")
def mse_loss(pred: torch.Tensor, target: torch.Tensor, **_) -> torch.Tensor:
    with _fp32(pred.device):
        return F.mse_loss(pred.float(), target.float(), reduction="none").flatten(1).mean(1) / 4  # on [0, 1]


@register("ssim")
def ssim_loss(pred: torch.Tensor, target: torch.Tensor, **_) -> torch.Tensor:
    with _fp32(pred.device):
        return 1 - metrics.ssim_per_image(pred, target)


@register("ms-ssim")
def ms_ssim_loss(pred: torch.Tensor, target: torch.Tensor, **_) -> torch.Tensor:
    with _fp32(pred.device):
        return 1 - metrics.ms_ssim_per_image(pred, target)


def layout_distance(pred: torch.Tensor, target: torch.Tensor, size: int = 8) -> torch.Tensor:
    """L1 between 8x8 average-pooled images on [0, 1]: where the sky, the horizon, the forest wall
    and the water are, and their colours. A 4-number latent can carry this layout, not texture."""
    with _fp32(pred.device):
        small = F.adaptive_avg_pool2d(torch.cat([pred, target]).float(), size) / 2
        p, t = small.chunk(2)
        return (p - t).abs().flatten(1).mean(1)


def feature_matching(pred: torch.Tensor, target: torch.Tensor, discriminator: nn.Module) -> torch.Tensor:
    """Relative L1 distance between the frozen discriminator's activations (after each of its five
    LeakyReLUs, 64 down to 4 px), averaged over layers:

        FM = 1/L sum_l  mean|D_l(pred) - D_l(target)| / mean|D_l(target)|

    Dividing by the target's activation size makes every layer count alike and the weight
    independent of how a particular GAN run scaled its features. No downloaded weights: D is the
    network trained with G on these very photos, so its features are the ones G learned to match.
    """
    _, f_pred = discriminator(pred, return_features=True)
    with torch.no_grad():
        _, f_target = discriminator(target, return_features=True)
    terms = []
    for fp, ft in zip(f_pred, f_target):
        fp, ft = fp.float().flatten(1), ft.float().flatten(1)
        terms.append((fp - ft).abs().mean(1) / ft.abs().mean(1).clamp_min(1e-6))
    return torch.stack(terms).mean(0)


@register("custom")
def custom_loss(pred: torch.Tensor, target: torch.Tensor, discriminator: nn.Module | None = None,
                layout_weight: float = 1.0, fm_weight: float = 0.1) -> torch.Tensor:
    """Ours:

        L = L1(pred, target) + (1 - MS-SSIM(pred, target))
            + layout_weight * L1(pool8(pred), pool8(target))
            + fm_weight * FM_D(pred, target)

    with images on [0, 1], pool8 an 8x8 average pool (see `layout_distance`) and FM_D the
    relative feature-matching distance on the frozen discriminator (see `feature_matching`).
    Why each term: L1 and MS-SSIM are the write-up's pixel and structure terms (L1 rather than
    MSE, which is minimised by the blurry average); a 4-number latent cannot place texture, so the
    layout term rewards the right scene at the right height even when the pixels disagree; and the
    discriminator's features compare what the GAN itself learned to tell apart (forest against
    field, clear against overcast sky), which pixel distances weigh poorly.
    """
    with _fp32(pred.device):
        loss = metrics.l1_per_image(pred, target) + 1 - metrics.ms_ssim_per_image(pred, target)
    loss = loss + layout_weight * layout_distance(pred, target)
    if fm_weight:
        if discriminator is None:
            raise ValueError("the custom loss needs the GAN's discriminator for feature matching "
                             "(or fm_weight=0)")
        loss = loss + fm_weight * feature_matching(pred, target, discriminator)
    return loss


def make_loss(name: str, discriminator: nn.Module | None = None, **weights) -> Loss:
    """The loss `name` as a function (pred, target) -> per-image values; `weights` go to `custom`."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}")
    if name in USES_DISCRIMINATOR:
        return functools.partial(LOSSES[name], discriminator=discriminator, **weights)
    return LOSSES[name]


@torch.no_grad()
def loss_matrix(loss: Loss, generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The write-up's table: entry (i, j) is loss(generated i, real j), on [-1, 1] images."""
    n, m = len(generated), len(real)
    return loss(generated.repeat_interleave(m, 0), real.repeat(n, 1, 1, 1)).reshape(n, m).cpu()


def latent_prior(z: torch.Tensor) -> torch.Tensor:
    """Per-sample negative log-density of N(0, I) up to a constant, ½‖z‖².

    G was trained on z ~ N(0, I). Unchecked, an encoder can push z far outside that ball, where G
    extrapolates (its first BatchNorm saturates) and the views stop looking like photos. Weighted
    by `latent_reg`, this is a MAP prior: it pulls only as hard as the image loss lets it.
    """
    return 0.5 * z.float().pow(2).sum(1)
