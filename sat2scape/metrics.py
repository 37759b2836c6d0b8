"""Metrics, registered by name (as in stylegan2-ada-pytorch's metric_main).

Paired image metrics compare a prediction with the true photo, image by image, on [-1, 1]
tensors N x 3 x H x W and return one value per image:

    ssim, ms-ssim   structural similarity (pytorch-msssim), higher is better
    psnr            peak signal-to-noise ratio in dB, higher is better
    l1              mean absolute error on [0, 1], lower is better

`retrieval` ranks every true photo against every prediction; the GAN quality metrics
(`swd`, FID/KID where Inception weights exist) compare sets of images.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim, ssim

PairedMetric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PAIRED_METRICS: dict[str, PairedMetric] = {}
HIGHER_IS_BETTER: dict[str, bool] = {}


def register(name: str, higher_is_better: bool):
    def wrap(fn: PairedMetric) -> PairedMetric:
        PAIRED_METRICS[name] = fn
        HIGHER_IS_BETTER[name] = higher_is_better
        return fn
    return wrap


def _unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] in float32."""
    return (x.float() + 1) / 2


@register("ssim", higher_is_better=True)
def ssim_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return ssim(_unit(pred), _unit(target), data_range=1.0, size_average=False)


@register("ms-ssim", higher_is_better=True)
def ms_ssim_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # 128 px is too small for the default 5 scales with an 11 px window; 4 scales fit.
    weights = [0.0448, 0.2856, 0.3001, 0.2363]
    w = torch.tensor(weights) / sum(weights)
    return ms_ssim(_unit(pred), _unit(target), data_range=1.0, size_average=False,
                   win_size=7, weights=w.tolist())


@register("psnr", higher_is_better=True)
def psnr_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mse = F.mse_loss(_unit(pred), _unit(target), reduction="none").flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


@register("l1", higher_is_better=False)
def l1_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (_unit(pred) - _unit(target)).abs().flatten(1).mean(1)


def paired_metrics(pred: torch.Tensor, target: torch.Tensor, names=None) -> dict[str, float]:
    """Mean of each registered paired metric over the batch."""
    names = list(PAIRED_METRICS) if names is None else names
    return {name: PAIRED_METRICS[name](pred, target).mean().item() for name in names}


# ---------------------------------------------------------------------------------------------
# Retrieval: can the prediction pick its own photo out of all held-out photos?

def retrieval_descriptor(images: torch.Tensor, size: int = 16) -> torch.Tensor:
    """A small, blurred colour layout of each image: what a view 'looks like' at a glance.

    Comparing at 16x16 rewards getting the scene right (sky, horizon, forest wall, water) rather
    than pixel-exact texture, which no 4-number latent can carry.
    """
    small = F.adaptive_avg_pool2d(_unit(images), size)
    return small.flatten(1)


def retrieval_ranks(pred: torch.Tensor, photos: torch.Tensor) -> torch.Tensor:
    """For query i (prediction i), the rank (1 = best) of its true photo i among all photos,
    by L2 distance between descriptors. Ties count against the query (pessimistic)."""
    d = torch.cdist(retrieval_descriptor(pred), retrieval_descriptor(photos))
    true = d.diagonal().unsqueeze(1)
    return (d <= true).sum(1)


def retrieval_summary(ranks: torch.Tensor) -> dict[str, float]:
    n = len(ranks)
    return {
        "top1": (ranks <= 1).float().mean().item(),
        "top5": (ranks <= 5).float().mean().item(),
        "median_rank": ranks.float().median().item(),
        "chance_top1": 1.0 / n,
        "chance_top5": min(5, n) / n,
        "chance_median_rank": (n + 1) / 2,
        "n": n,
    }
