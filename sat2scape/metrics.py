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

import numpy as np
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
    """[-1, 1] -> [0, 1] in float32, channels_last: pytorch-msssim's depthwise Gaussian filter
    runs about 15x faster on CPU in that layout (oneDNN), which makes (MS-)SSIM losses cheap."""
    return ((x.float() + 1) / 2).contiguous(memory_format=torch.channels_last)


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


def retrieval_ranks(pred: torch.Tensor, photos: torch.Tensor, true_index: torch.Tensor | None = None) -> torch.Tensor:
    """For query i (prediction i), the rank (1 = best) of its true photo i among all photos,
    by L2 distance between descriptors. Ties count against the query (pessimistic).
    When the predictions cover only some photos, `true_index[i]` is query i's photo."""
    d = torch.cdist(retrieval_descriptor(pred), retrieval_descriptor(photos))
    index = torch.arange(len(pred)) if true_index is None else torch.as_tensor(true_index)
    true = d[torch.arange(len(pred)), index].unsqueeze(1)
    return (d <= true).sum(1)


def retrieval_summary(ranks: torch.Tensor, gallery: int | None = None) -> dict[str, float]:
    """Top-1, top-5 and median rank, with their chance levels for a gallery of `gallery` photos
    (default: as many as there are queries)."""
    n = len(ranks) if gallery is None else gallery
    return {
        "top1": (ranks <= 1).float().mean().item(),
        "top5": (ranks <= 5).float().mean().item(),
        "median_rank": ranks.float().median().item(),
        "chance_top1": 1.0 / n,
        "chance_top5": min(5, n) / n,
        "chance_median_rank": (n + 1) / 2,
        "n": n,
    }


# ---------------------------------------------------------------------------------------------
# Set metrics: how close is a set of generated images to a set of real ones?
#
#   swd        sliced Wasserstein distance on Laplacian-pyramid patches (ProGAN, Karras et al.
#              2018, appendix D): needs no pretrained network, so it always runs
#   fid, kid   Fréchet / kernel Inception distance through torch-fidelity, only where it is
#              installed and its Inception weights are on disk (never downloaded from here)
#
# Each takes (fake, real) as N x 3 x H x W tensors in [-1, 1] and returns {name: value}.

SetMetric = Callable[[torch.Tensor, torch.Tensor], dict]
SET_METRICS: dict[str, SetMetric] = {}


class MetricUnavailable(RuntimeError):
    """A metric whose package or weights are missing; the message says what to install."""


def register_set(name: str):
    def wrap(fn: SetMetric) -> SetMetric:
        SET_METRICS[name] = fn
        return fn
    return wrap


# The 5x5 binomial kernel of cv2.pyrDown, as in ProGAN's sliced_wasserstein.py.
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
_GAUSS = torch.outer(_BINOMIAL, _BINOMIAL) / 256.0


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    # A dense conv with a diagonal kernel: on CPU 3-4x faster than the depthwise (groups=3) one.
    kernel = torch.eye(x.shape[1])[:, :, None, None] * (_GAUSS * gain)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel.to(x))


def laplacian_pyramid(x: torch.Tensor, min_size: int = 16) -> list[torch.Tensor]:
    """Band-pass levels from the full resolution down to min_size; the last is the low-pass."""
    levels = []
    while x.shape[-1] > min_size:
        down = _blur(x)[:, :, ::2, ::2]
        up = torch.zeros_like(x)
        up[:, :, ::2, ::2] = down
        levels.append(x - _blur(up, gain=4.0))
        x = down
    levels.append(x)
    return levels


def _patch_descriptors(level: torch.Tensor, patches_per_image: int, patch: int,
                       gen: torch.Generator) -> torch.Tensor:
    """Random patch x patch neighbourhoods, normalised per channel over the whole set (ProGAN's
    finalize_descriptors), flattened: (N * patches_per_image) x (C * patch * patch)."""
    n, c, h, w = level.shape
    windows = level.unfold(2, patch, 1).unfold(3, patch, 1)  # N, C, H', W', patch, patch (a view)
    img = torch.arange(n).repeat_interleave(patches_per_image)
    y = torch.randint(0, h - patch + 1, (len(img),), generator=gen)
    x = torch.randint(0, w - patch + 1, (len(img),), generator=gen)
    desc = windows[img, :, y, x]  # M, C, patch, patch
    desc = desc - desc.mean(dim=(0, 2, 3), keepdim=True)
    desc = desc / desc.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return desc.flatten(1)


def _sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: int, repeats: int,
                        gen: torch.Generator) -> float:
    """Mean over random unit directions of the 1-D Wasserstein-1 distance between projections."""
    results = []
    for _ in range(repeats):
        dirs = torch.randn(directions, a.shape[1], generator=gen)
        dirs = dirs / dirs.norm(dim=1, keepdim=True)
        # (directions x M), sorted along contiguous rows; numpy's SIMD sort is 2x torch's here
        pa = np.sort((dirs @ a.T).numpy(), axis=1)
        pb = np.sort((dirs @ b.T).numpy(), axis=1)
        results.append(np.abs(pa - pb).mean())
    return float(np.mean(results))


@register_set("swd")
def swd(fake: torch.Tensor, real: torch.Tensor, patches_per_image: int = 128, patch: int = 7,
        directions: int = 128, repeats: int = 4, seed: int = 0) -> dict[str, float]:
    """Sliced Wasserstein distance x 1e3 per Laplacian level (`swd128`, `swd64`, ...) and their
    average (`swd`). Lower is better; real-vs-real is the floor (not zero for finite sets).

    Both sets must have the same number of images. Patch positions and directions come from a
    private generator seeded by `seed`, so a value is reproducible and training's RNG untouched.
    """
    if len(fake) != len(real):
        raise ValueError(f"swd needs sets of the same size, got {len(fake)} and {len(real)}")
    gen = torch.Generator().manual_seed(seed)
    out = {}
    with torch.no_grad():
        fake_levels = laplacian_pyramid(fake.detach().float().cpu())
        real_levels = laplacian_pyramid(real.detach().float().cpu())
        for lf, lr in zip(fake_levels, real_levels):
            a = _patch_descriptors(lf, patches_per_image, patch, gen)
            b = _patch_descriptors(lr, patches_per_image, patch, gen)
            out[f"swd{lf.shape[-1]}"] = 1e3 * _sliced_wasserstein(a, b, directions, repeats, gen)
    out["swd"] = sum(out.values()) / len(out)
    return out


# torch-fidelity's port of the TF Inception that published FIDs use; torch.hub caches it here.
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE


def _inception_metrics(fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """FID and KID with torch-fidelity, from weights already on disk: it never downloads."""
    from pathlib import Path

    try:
        import torch_fidelity
    except ImportError:
        raise MetricUnavailable("torch-fidelity is not installed (pip install torch-fidelity, "
                                f"then put {INCEPTION_URL} in torch.hub's checkpoints folder)") from None
    weights = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if not weights.exists():
        raise MetricUnavailable(f"no Inception weights at {weights} (download {INCEPTION_URL} there)")

    class Images(torch.utils.data.Dataset):  # torch-fidelity reads uint8 3 x H x W items
        def __init__(self, x):
            self.x = x.detach().float().add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8).cpu()

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    r = torch_fidelity.calculate_metrics(
        input1=Images(fake), input2=Images(real), fid=True, kid=True, cuda=torch.cuda.is_available(),
        kid_subset_size=min(1000, len(fake), len(real)), feature_extractor_weights_path=str(weights),
        verbose=False)
    return {"fid": r["frechet_inception_distance"], "kid": r["kernel_inception_distance_mean"]}


@register_set("fid")
def fid(fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    return {"fid": _inception_metrics(fake, real)["fid"]}


@register_set("kid")
def kid(fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    return {"kid": _inception_metrics(fake, real)["kid"]}


def set_metrics(fake: torch.Tensor, real: torch.Tensor, names=("swd",)) -> dict[str, float]:
    """The named set metrics; one that cannot run here is skipped with a one-line message."""
    out: dict[str, float] = {}
    for name in names:
        try:
            out.update(SET_METRICS[name](fake, real))
        except MetricUnavailable as e:
            print(f"{name} skipped: {e}")
    return out
