"""Metrics, registered by name (as in stylegan2-ada-pytorch's metric_main).

Paired image metrics compare a prediction with the true photo, image by image, on [-1, 1]
tensors N x 3 x H x W and return one value per image:

    ssim, ms-ssim   structural similarity (pytorch-msssim), higher is better
    psnr            peak signal-to-noise ratio in dB, higher is better
    l1              mean absolute error on [0, 1], lower is better

`retrieval` ranks every true photo against every prediction; the GAN quality metrics
(`swd`, FID/KID where Inception weights exist) compare sets of images.

Regions of the view (`REGIONS`, registered by name like the paired metrics) score each part of
a view apart: a tile fixes the ground in front of the camera, and nothing in it fixes the sky.
Retrieval and L1 run per region (`region_scores`), and a ground-class score (`class_scores`)
compares segmentations of the predicted views with the true class maps on the ground region.
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


def paired_metrics(pred: torch.Tensor, target: torch.Tensor, names=None, chunk: int = 32) -> dict[str, float]:
    """Mean of each registered paired metric over the batch. The metrics are per image, so they
    run `chunk` images at a time: on a 2-core CPU (MS-)SSIM of 302 views then takes 0.5 s instead
    of 2.2 s, a chunk's filter outputs staying in cache (the encoder validates every epoch)."""
    names = list(PAIRED_METRICS) if names is None else names
    return {name: torch.cat([PAIRED_METRICS[name](pred[i:i + chunk], target[i:i + chunk])
                             for i in range(0, len(pred), chunk)]).mean().item() for name in names}


# ---------------------------------------------------------------------------------------------
# Retrieval: can the prediction pick its own photo out of all held-out photos?

def retrieval_descriptor(images: torch.Tensor, size: int = 16) -> torch.Tensor:
    """A small, blurred colour layout of each image: what a view 'looks like' at a glance.

    Comparing at 16x16 rewards getting the scene right (sky, horizon, forest wall, water) rather
    than pixel-exact texture, which no 4-number latent can carry.
    """
    small = F.adaptive_avg_pool2d(_unit(images), size)
    return small.flatten(1)


def retrieval_ranks(pred: torch.Tensor, photos: torch.Tensor, true_index: torch.Tensor | None = None,
                    region: str = "whole") -> torch.Tensor:
    """For query i (prediction i), the rank (1 = best) of its true photo i among all photos,
    by L2 distance between descriptors (of `region` only: `region_descriptor`). Ties count
    against the query (pessimistic). When the predictions cover only some photos,
    `true_index[i]` is query i's photo."""
    d = torch.cdist(region_descriptor(pred, region), region_descriptor(photos, region))
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
# Regions of the view: what a tile can know, and what it cannot
#
# A view is 128 rows of a level-ish camera (geometry.Camera: 70 degrees wide, eye at 1.7 m). At
# the world's mean pitch (2 degrees up) the horizon lies on row ~67; the pitch range -2..6
# degrees moves it over rows ~61..74. The bands are fixed rows (as fractions of the height, so
# they scale with the image size; at 128 px every edge falls on a descriptor cell's edge):
#
#   whole    rows   0..127  the whole view
#   ground   rows  64..127  the bottom half: below the horizon at a typical pitch, the ground
#                           within ~15 m (row 127) to beyond the tile's edge (~60 m at row 72);
#                           the 128 m tile covers its near part whatever the heading
#   horizon  rows  40..79   the band around every pitch's horizon: the tree line, houses and
#                           water far beyond the tile's edge (only partly in the tile)
#   sky      rows   0..39   above every horizon: clouds, sun and light, which no tile can know
#
# `FRONT` is the patch of ground right in front of the camera (rows 100..127, columns 32..95:
# about 2.6-4.6 m ahead and up to 1.6 m either side at the mean pitch): its dominant class is
# what a person standing there would say they stand on or walk into.

REGIONS: dict[str, tuple[float, float]] = {}  # name -> (first row, end row) as fractions of the height
FRONT = ((100 / 128, 1.0), (32 / 128, 96 / 128))  # (rows, columns) as fractions


def register_region(name: str, top: float, bottom: float) -> None:
    REGIONS[name] = (top, bottom)


register_region("whole", 0.0, 1.0)
register_region("ground", 64 / 128, 1.0)
register_region("horizon", 40 / 128, 80 / 128)
register_region("sky", 0.0, 40 / 128)


def region_rows(region: str, height: int) -> slice:
    """The rows of `region` in an image `height` rows tall."""
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; choose from {sorted(REGIONS)}")
    top, bottom = REGIONS[region]
    return slice(round(top * height), round(bottom * height))


def crop_region(images: torch.Tensor, region: str) -> torch.Tensor:
    """The rows of `region` of images ... x H x W (views, or class maps N x H x W)."""
    return images[..., region_rows(region, images.shape[-2]), :]


def front_patch(height: int, width: int | None = None) -> tuple[slice, slice]:
    """(rows, columns) of the `FRONT` patch in an image of this size."""
    width = height if width is None else width
    (r0, r1), (c0, c1) = FRONT
    return slice(round(r0 * height), round(r1 * height)), slice(round(c0 * width), round(c1 * width))


def region_descriptor(images: torch.Tensor, region: str = "whole", size: int = 16) -> torch.Tensor:
    """The retrieval descriptor's cells that fall in `region`: a region is compared at the same
    resolution (one cell per 8x8 px at 128 px) as the whole view."""
    small = F.adaptive_avg_pool2d(_unit(images), size)
    return small[:, :, region_rows(region, size), :].flatten(1)


def region_scores(pred: torch.Tensor, photos: torch.Tensor, index: torch.Tensor | None = None,
                  regions=None) -> dict[str, dict[str, float]]:
    """Per region: retrieval (`top1`, `top5`, `median_rank` among all of `photos`) and `l1`
    against the true photo (`photos[index[i]]` for prediction i; default the i-th)."""
    target = photos if index is None else photos[torch.as_tensor(index)]
    query = torch.arange(len(pred)) if index is None else torch.as_tensor(index)
    pooled_pred, pooled_photos = F.adaptive_avg_pool2d(_unit(pred), 16), F.adaptive_avg_pool2d(_unit(photos), 16)
    error = (_unit(pred) - _unit(target)).abs().mean(1)  # N x H x W
    out = {}
    for region in (REGIONS if regions is None else regions):
        rows = region_rows(region, 16)  # region_descriptor, from one pooling
        d = torch.cdist(pooled_pred[:, :, rows].flatten(1), pooled_photos[:, :, rows].flatten(1))
        ranks = (d <= d[torch.arange(len(pred)), query].unsqueeze(1)).sum(1)
        summary = retrieval_summary(ranks, gallery=len(photos))
        out[region] = {k: summary[k] for k in ("top1", "top5", "median_rank")}
        out[region]["l1"] = crop_region(error, region).flatten(1).mean(1).mean().item()
    return out


def dominant_class(classes: torch.Tensor, n_classes: int) -> torch.Tensor:
    """The most frequent class of each N x h x w map (ties: the lower id)."""
    flat = classes.flatten(1).long()
    counts = torch.zeros(len(flat), n_classes, dtype=torch.long).scatter_add_(1, flat, torch.ones_like(flat))
    return counts.argmax(1)


def class_scores(pred: torch.Tensor, true: torch.Tensor, n_classes: int, region: str = "ground") -> dict[str, float]:
    """Agreement of predicted class maps with the true ones (both N x H x W integer ids), the
    FCN-score of pix2pix: on `region`, the pixel accuracy (`acc`) and the mean over classes of
    the intersection over union (`miou`; classes absent from both maps everywhere are left out);
    and `front_acc`, how often the dominant class of the `FRONT` patch is the true one."""
    p, t = crop_region(pred, region).long(), crop_region(true, region).long()
    p = p.clamp(0, n_classes)  # an id outside 0..n-1 (an unlabelled pixel) is wrong for every class
    confusion = torch.bincount((t * (n_classes + 1) + p).flatten(),
                               minlength=n_classes * (n_classes + 1)).view(n_classes, n_classes + 1)
    inter = confusion.diag().double()
    union = confusion[:, :n_classes].sum(0).double() + confusion.sum(1).double() - inter
    rows, cols = front_patch(*pred.shape[-2:])
    front_pred = dominant_class(pred[:, rows, cols].long().clamp(0, n_classes), n_classes + 1)
    front_true = dominant_class(true[:, rows, cols], n_classes)
    return {"acc": (p == t).double().mean().item(),
            "miou": (inter[union > 0] / union[union > 0]).mean().item(),
            "front_acc": (front_pred == front_true).double().mean().item()}


def sample_spread(draws: list[torch.Tensor] | torch.Tensor, regions=None) -> dict[str, float]:
    """How much K draws of a generator's latent change each region of the view: the per-pixel
    standard deviation over the draws (K x N x 3 x H x W in [-1, 1], or a list of K views),
    averaged over channels, pixels of the region and places; and `sky_over_ground`, the ratio
    the conditional model is judged by (z should change the sky and the light, not the ground)."""
    stack = torch.stack(list(draws)) if isinstance(draws, (list, tuple)) else draws
    if len(stack) < 2:
        raise ValueError(f"sample_spread needs at least 2 draws per place, got {len(stack)}")
    std = ((stack.float() + 1) / 2).std(0).mean(1)  # N x H x W, in [0, 1] units
    out = {region: crop_region(std, region).mean().item() for region in (REGIONS if regions is None else regions)}
    if "sky" in out and "ground" in out:
        out["sky_over_ground"] = out["sky"] / max(out["ground"], 1e-12)
    return out


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
def swd(fake: torch.Tensor, real: torch.Tensor | list[torch.Tensor], patches_per_image: int = 128, patch: int = 7,
        directions: int = 128, repeats: int = 4, seed: int = 0) -> dict[str, float]:
    """Sliced Wasserstein distance x 1e3 per Laplacian level (`swd128`, `swd64`, ...) and their
    average (`swd`). Lower is better; real-vs-real is the floor (not zero for finite sets).

    Both sets must have the same number of images. Patch positions and directions come from a
    private generator seeded by `seed`, so a value is reproducible and training's RNG untouched.
    `real` may also be its `laplacian_pyramid` (a list), computed once for many comparisons.
    """
    if len(fake) != len(real[0] if isinstance(real, list) else real):
        raise ValueError(f"swd needs sets of the same size, got {len(fake)} and {len(real[0] if isinstance(real, list) else real)}")
    gen = torch.Generator().manual_seed(seed)
    out = {}
    with torch.no_grad():
        fake_levels = laplacian_pyramid(fake.detach().float().cpu())
        real_levels = real if isinstance(real, list) else laplacian_pyramid(real.detach().float().cpu())
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
