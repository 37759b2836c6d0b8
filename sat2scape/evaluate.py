"""Held-out evaluation of an encoder run against baselines, side by side, by region of the view.

    python -m sat2scape evaluate --run data/runs/00003-encoder-custom [--split test]
    python -m sat2scape evaluate --seeds 0,1,2 [--losses mse,ssim,custom] --preset demo --data data/world

The held-out split is a region the encoder never saw (pairs.csv splits by region). Every method
predicts one view per held-out tile, and `score_views` scores the views of every method alike:

- the paired metrics (SSIM, MS-SSIM, PSNR, L1) against the true photo;
- retrieval: the rank of the true photo among all held-out photos by descriptor distance to the
  prediction (metrics.retrieval_ranks), over the whole view and per region of the view
  (metrics.REGIONS: the ground below the horizon, the horizon band, the sky), with the L1 of each
  region: a tile fixes the ground in front of the camera, and nothing in it fixes the sky;
- the ground classes (pix2pix's FCN-score): a small segmenter (segment.py, trained on the
  training views and their class maps, its own cached run) labels the predicted views, which are
  compared with the true class maps on the ground region: pixel accuracy, mean IoU, and the
  dominant class right in front of the camera. The true views' own row is the segmenter's
  ceiling. Only where the dataset has class maps (the built-in world);
- realism: SWD between the method's views and the held-out photos (metrics.swd), so that a
  blurred average cannot win the table by hedging. The true views' row is the sampling floor.

The methods (rows):

    encoder             G(E(tile)), the run being evaluated
    z*-regression       ridge from the tile's layout (heading-up where known) to latents z*
                        fitted to training photos through G (the oracle's fit), then G(z): the
                        best a linear encoder into the 4-dim latent does
    linear layout       no generator: ridge regression from the tile's 16x16 colour layout to
                        the photo's, upsampled; the blurred view a linear model reads off the
                        tile, so it shows how much of a view the tile predicts at all. Twice, on
                        the tile's central 90 px (what every turn keeps): north-up, and turned
                        so that the camera looks up
    geometric warp      no learning but a colour fit: the tile turned to the heading, warped
                        into the view's frame by inverse perspective mapping (geometry), the
                        colours calibrated per channel on the training pairs, and the rest of
                        the view (sky, horizon, ground beyond the tile) the mean training view
    nearest neighbour   the photo of the training pair whose tile looks most like the query tile
                        (the retrieval descriptor applied to tiles), north-up and heading-up
    mean photo          the mean training photo, the same for every tile
    random latent       G(z) for z ~ N(0, I): a realistic view that ignores the tile (retrieval
                        and L1 the mean over 10 draws of z, as one draw's rank is a roll of the dice)
    oracle              G(z*) with z* fitted to the true photo itself (Adam on z through the
                        frozen G, the encoder's own loss): the best any encoder could do with
                        this generator, an upper bound
    true views          the held-out photos themselves: the ceiling of the class scores

The heading-aware rows need headings (pairs.csv `heading`; the world records them); without
them they are left out, and the table says so. Another model family adds rows through
`extra_methods` ({key: (label, views)}), scored the same way. The mean photo predicts one image
for every tile, so it ranks the held-out photos in one fixed order and its retrieval is exactly
chance. Results go to the run directory as metrics.json (every number, under
methods[key][...]), metrics.md (the whole-view table) and regions.md (the tables by region);
`<name>-<split>.*` for a split other than test.

With `--seeds` (and/or `--losses`) the command instead trains one small encoder per seed (and
loss) against the same generator, evaluates each, and reports the encoder's retrieval top-5
margin over the mean-photo and random-latent baselines, mean and spread over the seeds, in a
`<NNNNN>-sweep-*` run directory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import geometry, losses, manifest, metrics, runs, runtime, segment
from .checkpoints import generate, load_discriminator
from .config import PRESETS, EncoderConfig, SegmenterConfig, add_config_arguments, config_from_args, config_from_dict
from .data import PairedImages, has_class_maps, load_class_maps, load_pairs, to_float, to_uint8
from .files import atomic_write_json, atomic_write_text
from .models import Segmenter
from .train_encoder import RESUMABLE_FIELDS as ENCODER_RESUMABLE_FIELDS
from .train_encoder import load_encoder, predict_views, resolve_gan_run, train

# another model's views of the held-out places, scored beside the encoder: {key: (row label,
# views in [-1, 1] in the split's order, or a list of such tensors for several draws of z)}
ExtraMethods = dict[str, tuple[str, torch.Tensor | list[torch.Tensor]]]

METHODS = {  # key -> row label, in the tables' order (extra methods follow the encoder)
    "encoder": "encoder G(E(tile))",
    "zstar_regression": "z*-regression: ridge tile → z* fitted to photos, then G(z)",
    "linear_layout": "ridge: tile → 16x16 photo layout (no G), north-up",
    "linear_layout_heading": "ridge: tile → 16x16 photo layout (no G), heading-up",
    "geometric_warp": "geometric warp: heading-up tile → IPM → colour fit (no learning)",
    "nearest_neighbour": "nearest neighbour (tile descriptor), north-up",
    "nearest_neighbour_heading": "nearest neighbour (tile descriptor), heading-up",
    "mean_photo": "mean training photo",
    "random_latent": "G(random z)",
    "oracle": "oracle: z fitted to the photo (upper bound)",
    "true_views": "true views (the class scores' ceiling)",
}
HEADING_METHODS = ("linear_layout_heading", "geometric_warp", "nearest_neighbour_heading")
RANDOM_DRAWS = 10  # G(random z) is scored as the mean over this many draws of z
SWD_REPEATS = 1  # sets of 128 directions: 1 gives the GAN's 4 within ~1% at a third of the cost
COLUMNS = [("ssim", "SSIM ↑"), ("ms-ssim", "MS-SSIM ↑"), ("psnr", "PSNR ↑"), ("l1", "L1 ↓"),
           ("top1", "top-1 ↑"), ("top5", "top-5 ↑"), ("median_rank", "median rank ↓"), ("swd", "SWD ↓")]
REGION_ORDER = ("whole", "ground", "horizon", "sky")
CLASS_COLUMNS = [("acc", "ground class acc ↑"), ("miou", "ground mIoU ↑"), ("front_acc", "front class ↑")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", help="encoder run directory (default: the newest encoder run under --runs)")
    parser.add_argument("--split", default="test", choices=["test", "val", "train"])
    parser.add_argument("--oracle-images", type=int, default=None,
                        help="fit the oracle latent for the first N held-out photos (-1: all, 0: skip; default "
                             "128, with --seeds/--losses 0); each costs --oracle-steps generator passes")
    parser.add_argument("--oracle-steps", type=int, default=50)
    parser.add_argument("--zstar-images", type=int, default=None,
                        help="z*-regression: fit z* to the first N training photos (-1: all, 0: skip the row; "
                             "default 128, with --seeds/--losses 0); each costs --oracle-steps generator passes")
    parser.add_argument("--segmenter", default="auto",
                        help="segmenter run directory for the ground-class scores; 'auto' (default): the newest "
                             "finished one of --segmenter-preset on the dataset, trained now if there is none "
                             "(only where the dataset has class maps); 'none': no class scores")
    parser.add_argument("--segmenter-preset", default=None, choices=sorted(PRESETS[SegmenterConfig]),
                        help="default: the encoder run's preset when its name ends in one (…-smoke), else demo")
    parser.add_argument("--seeds", help="comma list: train one encoder per seed with the settings below, "
                                        "evaluate each and report margins over the baselines")
    parser.add_argument("--losses", help="comma list of losses to train and compare (the ablation)")
    parser.add_argument("--conditional", default="auto",
                        help="conditional run(s) to score beside the encoder, comma-separated; 'auto' (default): "
                             "the newest heading-aware and heading-free conditional runs on the same dataset; 'none'")
    parser.add_argument("--conditional-seeds",
                        help="comma list: train (or reuse) a conditional run per heading mode and seed with "
                             "--preset, started from the encoder run's GAN, and report mean ± std over seeds")
    parser.add_argument("--conditional-ablation", action="store_true",
                        help="the loss ablation: train (or reuse) a heading-aware conditional run per variant of "
                             "ABLATION (each drops one of G's terms) and seed (--conditional-seeds, default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    group = parser.add_argument_group("encoder settings for --seeds / --losses (and --device, --threads)")
    add_config_arguments(group, EncoderConfig)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(EncoderConfig, args)
    sweeping = bool(args.seeds or args.losses)
    oracle_images = args.oracle_images if args.oracle_images is not None else (0 if sweeping else 128)
    zstar_images = args.zstar_images if args.zstar_images is not None else (0 if sweeping else 128)
    options = dict(oracle_images=oracle_images, oracle_steps=args.oracle_steps, zstar_images=zstar_images,
                   segmenter=None if args.segmenter == "none" else args.segmenter,
                   segmenter_preset=args.segmenter_preset)
    if sweeping:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [cfg.seed]
        names = args.losses.split(",") if args.losses else [cfg.loss]
        result = sweep(cfg, seeds, names, split=args.split, progress=not args.no_progress, **options)
        print(result["markdown"])
        print(f"\nwritten: {result['run_dir'] / 'metrics.md'}")
        return 0
    run_dir = Path(args.run) if args.run else runs.pick_latest(cfg.runs, "encoder", flag="--run")
    if run_dir is None:
        print(f"no encoder run under {cfg.runs}; pass --run or train one (python -m sat2scape train-encoder)")
        return 2
    if args.conditional_seeds or args.conditional_ablation:
        seeds = [int(s) for s in (args.conditional_seeds or "0").split(",")]
        sweep_options = dict(modes=("known",), variants=ABLATION) if args.conditional_ablation else {}
        result = conditional_sweep(run_dir, seeds, preset=getattr(args, "preset", "demo"), split=args.split,
                                   threads=args.threads or 0, progress=not args.no_progress, **sweep_options,
                                   **options)
        print(result["markdown"])
        print(f"\nwritten: {result['run_dir'] / 'metrics.md'}")
        return 0
    data = runs.read_config(run_dir)["data"]
    if args.conditional == "none":
        conditional_runs = []
    elif args.conditional == "auto":
        conditional_runs = newest_conditional_runs(cfg.runs, data)
    else:
        conditional_runs = args.conditional.split(",")
    try:
        extra = (conditional_methods(conditional_runs, load_pairs(data, args.split, progress=not args.no_progress))
                 if conditional_runs else None)
        result = evaluate(run_dir, args.split, device=args.device or "auto", threads=args.threads or 0,
                          progress=not args.no_progress, extra_methods=extra, **options)
    except runs.DatasetTooSmall as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result["markdown"])
    print("\nwritten: " + ", ".join(str(p) for p in result["paths"]))
    return 0


# ---------------------------------------------------------------------------------------------
# The baselines that need no generator

def nearest_neighbour(query_tiles: torch.Tensor, train_tiles: torch.Tensor) -> torch.Tensor:
    """Index of the training tile closest to each query tile, by the 16x16 colour descriptor."""
    d = torch.cdist(metrics.retrieval_descriptor(to_float(query_tiles)),
                    metrics.retrieval_descriptor(to_float(train_tiles)))
    return d.argmin(1)


def tile_layout(tiles: torch.Tensor, size: int = 16, crop: int | None = None) -> torch.Tensor:
    """The retrieval descriptor of uint8 tiles (a size x size colour layout in [0, 1]) of their
    central crop x crop pixels (None: all), float64."""
    tiles = tiles if crop is None else geometry.centre_crop(tiles, crop)
    return metrics.retrieval_descriptor(to_float(tiles), size).double()


def kept_by_any_turn(tile_size: int) -> int:
    """The side of the central square that every turn of a tile keeps inside it: size / sqrt(2)
    (90 px of 128). The ridges read this part, north-up or turned, so that the two rows differ
    by the heading alone and a turned 128 px tile's corners (ground behind the camera) add nothing."""
    return int(tile_size / 2 ** 0.5)


def ridge_fit(x: torch.Tensor, y: torch.Tensor, ridge: float | tuple[float, ...]):
    """Ridge regression y ~ x (rows are samples), centred. A tuple of penalties picks the one
    with the least leave-one-out error (closed form through the SVD of x). Returns a function
    that predicts y for new rows, and the penalty used."""
    x_mean, y_mean = x.mean(0), y.mean(0)
    candidates = (ridge,) if isinstance(ridge, (int, float)) else tuple(ridge)
    if len(candidates) == 1:  # the normal equations: cheaper than the SVD when nothing is picked
        xc = x - x_mean
        weights = torch.linalg.solve(xc.T @ xc + candidates[0] * torch.eye(x.shape[1], dtype=x.dtype),
                                     xc.T @ (y - y_mean))
        return (lambda q: (q - x_mean) @ weights + y_mean), candidates[0]
    u, sv, vh = torch.linalg.svd(x - x_mean, full_matrices=False)
    uty = u.T @ (y - y_mean)

    def loo_error(lam: float) -> float:
        shrink = sv ** 2 / (sv ** 2 + lam)
        residual = (y - y_mean) - u @ (shrink[:, None] * uty)
        leverage = (u ** 2 * shrink).sum(1) + 1 / len(x)  # the mean counts as a fitted parameter
        return ((residual / (1 - leverage).clamp_min(1e-6)[:, None]) ** 2).mean().item()

    lam = min(candidates, key=loo_error)
    weights = vh.T @ ((sv / (sv ** 2 + lam))[:, None] * uty)
    return (lambda q: (q - x_mean) @ weights + y_mean), lam


def linear_layout(train_tiles: torch.Tensor, train_photos: torch.Tensor, query_tiles: torch.Tensor,
                  size: int = 16, ridge: float = 2.5, crop: int | None = None) -> torch.Tensor:
    """Ridge regression from each tile's size x size colour layout to its photo's, fitted on the
    training pairs and applied to `query_tiles` (uint8); returns views in [-1, 1] at full size.

    A least-squares predictor may stay blurred where the tile is ambiguous (the sky, the far
    horizon), which G(E(tile)) cannot: G must commit to one sharp scene. On retrieval, whose
    descriptor is this same layout, that is an advantage, and the row says how much of a view is
    predictable from the tile by the simplest model. Pass tiles turned to the heading
    (PairedImages.tiles_turned) for the heading-aware row; `crop` reads only the tiles' centre.
    """
    predict, _ = ridge_fit(tile_layout(train_tiles, size, crop), tile_layout(train_photos, size), ridge)
    pred = predict(tile_layout(query_tiles, size, crop)).float().view(-1, 3, size, size) * 2 - 1
    return F.interpolate(pred, size=train_photos.shape[-1], mode="bilinear", align_corners=False).clamp(-1, 1)


def geometric_warp(train_tiles: torch.Tensor, train_photos: torch.Tensor, query_tiles: torch.Tensor,
                   camera: geometry.Camera | None = None, meters_per_pixel: float = 1.0,
                   batch_size: int = 256, fit_pairs: int = 1024) -> torch.Tensor:
    """The geometry alone: heading-up tiles (uint8; PairedImages.tiles_turned) warped into the
    view's frame by inverse perspective mapping (geometry.warp_to_view, flat ground, the camera
    at its mean tilt), their colours calibrated per channel (photo = a·warped + b, least squares
    over the warped pixels of the first `fit_pairs` training pairs), and every pixel the warp
    cannot fill (above the horizon, ground beyond the tile's edge) taken from the mean training
    view. Views in [-1, 1]. No learning but the six colour numbers: flat-ground geometry lays
    woods and houses flat, and the sky is the average one."""
    size = train_photos.shape[-1]
    camera = camera or geometry.Camera(view_size=size)

    def warped(tiles):
        for i in range(0, len(tiles), batch_size):
            yield i, *geometry.warp_to_view(tiles[i:i + batch_size].float() / 255, camera, meters_per_pixel)

    sums = torch.zeros(5, 3, dtype=torch.float64)  # count, sum x, sum y, sum xx, sum xy per channel
    mean_view = train_photos.double().mean(0) / 255
    for i, views, mask in warped(train_tiles[:fit_pairs]):
        photos = train_photos[i:i + len(views)].double() / 255
        x, y = views.double()[:, :, mask], photos[:, :, mask]  # N x 3 x pixels
        sums += torch.stack([torch.full((3,), float(x[:, 0].numel())), x.sum((0, 2)), y.sum((0, 2)),
                             (x * x).sum((0, 2)), (x * y).sum((0, 2))])
    count, sx, sy, sxx, sxy = sums
    if count[0] == 0:  # the camera sees no ground inside the tile
        return (mean_view.float() * 2 - 1).expand(len(query_tiles), -1, -1, -1).clone()
    variance = sxx / count - (sx / count) ** 2
    gain = torch.where(variance > 1e-12, (sxy / count - sx * sy / count ** 2) / variance.clamp_min(1e-12),
                       torch.zeros_like(variance))
    offset = sy / count - gain * sx / count
    out = []
    for _, views, mask in warped(query_tiles):
        calibrated = views.double() * gain[:, None, None] + offset[:, None, None]
        out.append(torch.where(mask, calibrated, mean_view).float())
    return (torch.cat(out) * 2 - 1).clamp(-1, 1)


def baseline_views(held_out: PairedImages, train_set: PairedImages, camera: geometry.Camera | None = None,
                   ) -> dict[str, torch.Tensor]:
    """The rows that need no generator: {method key: views in [-1, 1]}. The heading-aware ones
    only where both splits record headings."""
    crop = kept_by_any_turn(train_set.tiles.shape[-1])
    views = {"linear_layout": linear_layout(train_set.tiles, train_set.photos, held_out.tiles, crop=crop),
             "nearest_neighbour": to_float(train_set.photos[nearest_neighbour(held_out.tiles, train_set.tiles)])}
    if headings_known(held_out) and headings_known(train_set):
        train_up, held_up = train_set.tiles_turned("heading"), held_out.tiles_turned("heading")
        views["linear_layout_heading"] = linear_layout(train_up, train_set.photos, held_up, crop=crop)
        views["geometric_warp"] = geometric_warp(train_up, train_set.photos, held_up, camera,
                                                 train_set.meters_per_pixel)
        views["nearest_neighbour_heading"] = to_float(train_set.photos[nearest_neighbour(held_up, train_up)])
    views["mean_photo"] = to_float(train_set.photos).mean(0, keepdim=True).expand(len(held_out.photos), -1, -1, -1)
    return views


def headings_known(pairs: PairedImages) -> bool:
    return pairs.headings is not None and bool(torch.isfinite(pairs.headings).any())


# ---------------------------------------------------------------------------------------------
# The generator's rows: the oracle's latent fit, and a linear map from the tile to it

def fit_latents(G, photos: torch.Tensor, loss_fn, latent_reg: float, steps: int = 50, lr: float = 0.1,
                batch_size: int = 64, bf16: bool = False, progress: bool = True) -> torch.Tensor:
    """The oracle: for each photo, z* = argmin_z loss(G(z), photo) + latent_reg·½‖z‖², by Adam from
    z = 0 (G's mean latent), a batch of photos at a time. Each z only affects its own image, so the
    summed loss gives every z its own gradient. Returns the fitted latents on the CPU."""
    device = next(G.parameters()).device
    fitted = []
    for i in tqdm(range(0, len(photos), batch_size), desc="fitting latents", disable=not progress, leave=False):
        target = photos[i:i + batch_size].to(device)
        z = torch.zeros(len(target), G.nz, device=device, requires_grad=True)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            with runtime.autocast(device, bf16):
                loss = (loss_fn(G(z), target) + latent_reg * losses.latent_prior(z)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        fitted.append(z.detach().cpu())
    return torch.cat(fitted)


ZSTAR_RIDGES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)  # picked by leave-one-out error


def zstar_regression(train_tiles: torch.Tensor, z_star: torch.Tensor, query_tiles: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Latents for `query_tiles` by a ridge regression from the 16x16 layout of the tile's centre
    (kept_by_any_turn, as the ridges) to the z* fitted to the training photos of `train_tiles`
    (the penalty picked by leave-one-out error). Returns (latents, the penalty)."""
    crop = kept_by_any_turn(train_tiles.shape[-1])
    predict, lam = ridge_fit(tile_layout(train_tiles, crop=crop), z_star.double(), ZSTAR_RIDGES)
    return predict(tile_layout(query_tiles, crop=crop)).float(), lam


# ---------------------------------------------------------------------------------------------
# Scoring: one function for every row

@dataclass
class HeldOut:
    """What every row is scored against: the held-out split, its true class maps and the
    segmenter that labels predicted views (`held_out_context` makes one; `score_views` uses it)."""

    data: str
    split: str
    pairs: PairedImages                 # photos, tiles (north-up, wide), headings, the pairs.csv rows
    photos: torch.Tensor                # the true views in [-1, 1]
    classes: torch.Tensor | None = None  # their class maps (N x H x W ids); None: the dataset has none
    segmenter: Segmenter | None = None
    segmenter_run: Path | None = None
    swd: bool = True                    # score realism (about a CPU-second a row)
    _photo_levels: list | None = None   # the photos' Laplacian pyramid, made once for SWD

    @property
    def n(self) -> int:
        return len(self.photos)

    def swd_of(self, views: torch.Tensor, index: torch.Tensor | None = None) -> float:
        """SWD between `views` and the true views (of `index`)."""
        if index is not None:
            return metrics.swd(views, self.photos[index], repeats=SWD_REPEATS)["swd"]
        if self._photo_levels is None:
            self._photo_levels = metrics.laplacian_pyramid(self.photos)
        return metrics.swd(views, self._photo_levels, repeats=SWD_REPEATS)["swd"]


def held_out_context(data: str | Path, split: str = "test", image_size: int = 128, segmenter: str | Path | None = "auto",
                     segmenter_preset: str = "demo", runs_root: str | Path = "data/runs", threads: int = 0,
                     swd: bool = True, progress: bool = True) -> HeldOut:
    """Load `split` of `data` for scoring. `segmenter`: a segmenter run directory, "auto" (the
    newest finished `segmenter_preset` run on `data` under `runs_root`, trained now if there is
    none; only where the dataset has class maps) or None (no class scores)."""
    pairs = load_pairs(data, split, image_size, progress=progress)
    ctx = HeldOut(str(data), split, pairs, to_float(pairs.photos), swd=swd)
    if segmenter is None or not has_class_maps(data, pairs.table):
        return ctx
    if segmenter == "auto":
        table = manifest.read(data, "pairs.csv")
        if not has_class_maps(data, table[table["split"] == "train"]):
            return ctx
        segmenter = segment.ensure_segmenter(data, segmenter_preset, runs_root, threads, progress=progress)
    ctx.segmenter_run = Path(segmenter)
    ctx.segmenter = segment.load_segmenter(segmenter)
    ctx.classes = load_class_maps(data, pairs.table, image_size, progress)
    return ctx


def _mean_rows(rows: list[dict]) -> dict:
    """The mean of several rows of the same keys (nested dicts averaged key by key)."""
    out = {}
    for key, value in rows[0].items():
        if isinstance(value, dict):
            out[key] = _mean_rows([r[key] for r in rows])
        elif key == "n":
            out[key] = value
        else:
            out[key] = sum(r[key] for r in rows) / len(rows)
    return out


def score_views(views: torch.Tensor | list[torch.Tensor], ctx: HeldOut, index: torch.Tensor | None = None) -> dict:
    """One row of the table: views in [-1, 1] (N x 3 x H x W), one per held-out place in the
    context's order, or for the places `index` (the oracle's subset). A list of tensors is
    several draws per place (a generator's random latents): retrieval and L1 by region are the
    mean over the draws (one draw's rank is a roll of the dice); the other scores, already means
    over all places (paired metrics, class scores, SWD), are the first draw's.

    Keys: the paired metrics (`ssim`, `ms-ssim`, `psnr`, `l1`) and the whole view's retrieval
    (`top1`, `top5`, `median_rank`) at the top level, as before; per region of the view
    (metrics.REGIONS) a dict {`top1`, `top5`, `median_rank`, `l1`}; `class` {`acc`, `miou`,
    `front_acc`} where the context has a segmenter; `swd`; `n`."""
    if isinstance(views, (list, tuple)):
        row = score_views(views[0], ctx, index)
        draws = [{r: row[r] for r in metrics.REGIONS}]
        draws += [metrics.region_scores(v.float(), ctx.photos, index) for v in views[1:]]
        row.update(_mean_rows(draws))  # retrieval and L1 by region: the mean over the draws
        row.update({k: row["whole"][k] for k in ("top1", "top5", "median_rank", "l1")})
        if len(views) > 1:
            row["spread"] = metrics.sample_spread(views)
        return row
    views = views.float()
    index = None if index is None else torch.as_tensor(index)
    target = ctx.photos if index is None else ctx.photos[index]
    row = metrics.paired_metrics(views, target)
    regions = metrics.region_scores(views, ctx.photos, index)
    row.update({k: regions["whole"][k] for k in ("top1", "top5", "median_rank")})
    row.update(regions)
    if ctx.segmenter is not None and ctx.classes is not None:
        true = ctx.classes if index is None else ctx.classes[index]
        row["class"] = metrics.class_scores(segment.segment(ctx.segmenter, views), true, ctx.segmenter.n_classes)
    if ctx.swd:
        row["swd"] = ctx.swd_of(views, index)
    row["n"] = len(views)
    return row


def chance_row(n: int) -> dict:
    summary = metrics.retrieval_summary(torch.ones(n), gallery=n)
    return {k: summary[f"chance_{k}"] for k in ("top1", "top5", "median_rank")}


# ---------------------------------------------------------------------------------------------
# Tables

def _cell(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def mean_sd(values: list[float], digits: int = 3, sign: str = "") -> str:
    """A sweep's cell: the mean ± the standard deviation over seeds; one seed: its value alone."""
    if not values:
        return ""
    mean = f"{statistics.mean(values):{sign}.{digits}f}"
    return f"{mean} ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else mean


def markdown_table(methods: dict[str, dict], chance: dict, title_column: str = "method",
                   labels: dict[str, str] | None = None) -> str:
    """The whole-view table: paired metrics, retrieval and SWD, one row per method."""
    labels = {**METHODS, **(labels or {})}
    lines = [f"| {title_column} | " + " | ".join(label for _, label in COLUMNS) + " | n |",
             "|---|" + "---:|" * (len(COLUMNS) + 1)]
    for key, row in methods.items():
        cells = [_cell(row.get(c), 1 if c in ("median_rank", "swd") else 3) for c, _ in COLUMNS]
        lines.append(f"| {labels.get(key, key)} | " + " | ".join(cells) + f" | {row['n']} |")
    lines.append("| chance | | | | | " + f"{chance['top1']:.3f} | {chance['top5']:.3f} | "
                 f"{chance['median_rank']:.1f} | | |")
    return "\n".join(lines)


def region_tables(methods: dict[str, dict], chance: dict, labels: dict[str, str] | None = None) -> str:
    """The tables by region: retrieval top-5 / median rank per region; then the L1 per region,
    the ground-class scores and SWD."""
    labels = {**METHODS, **(labels or {})}
    lines = ["| method | " + " | ".join(f"{r} top-5 ↑ / median rank ↓" for r in REGION_ORDER) + " |",
             "|---|" + "---:|" * len(REGION_ORDER)]
    for key, row in methods.items():
        if key == "true_views":
            continue  # retrieves itself perfectly: no information
        cells = [f"{row[r]['top5']:.3f} / {row[r]['median_rank']:.1f}" for r in REGION_ORDER]
        lines.append(f"| {labels.get(key, key)} | " + " | ".join(cells) + " |")
    lines.append("| chance | " + " | ".join(f"{chance['top5']:.3f} / {chance['median_rank']:.1f}"
                                            for _ in REGION_ORDER) + " |")
    has_class = any("class" in row for row in methods.values())
    head = [f"L1 {r} ↓" for r in REGION_ORDER] + ([label for _, label in CLASS_COLUMNS] if has_class else []) + ["SWD ↓"]
    lines += ["", "| method | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for key, row in methods.items():
        cells = [_cell(row[r]["l1"]) for r in REGION_ORDER]
        if has_class:
            cells += [_cell(row.get("class", {}).get(c)) for c, _ in CLASS_COLUMNS]
        cells.append(_cell(row.get("swd"), 1))
        lines.append(f"| {labels.get(key, key)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def regions_note(ctx: HeldOut, result: dict) -> str:
    """What the tables by region measure, in a paragraph above them."""
    size = ctx.photos.shape[-2]
    bands = ", ".join(f"{name} rows {r.start}–{r.stop - 1}" for name in REGION_ORDER[1:]
                      for r in [metrics.region_rows(name, size)])
    rows, cols = metrics.front_patch(size, ctx.photos.shape[-1])
    low, high = (round(geometry.Camera(view_size=size, pitch_deg=p).horizon_row) for p in (-2.0, 6.0))
    note = (f"Held-out split `{ctx.split}` of `{ctx.data}`: {ctx.n} pairs. By region of the {size}-row view "
            f"({bands}; the world's camera puts the horizon on rows {low}–{high}): retrieval ranks the true photo "
            f"among all {ctx.n} by the region's cells of the 16x16 colour layout; L1 on the region.")
    if ctx.segmenter is not None:
        ceiling = result["methods"].get("true_views", {}).get("class", {})
        note += (f" Ground classes: a segmenter trained on the training views' class maps "
                 f"(`{ctx.segmenter_run.name}`) labels each method's views; pixel accuracy and mean IoU against the "
                 f"true class maps on the ground rows, and the dominant class of the patch right in front "
                 f"(rows {rows.start}–{rows.stop - 1}, columns {cols.start}–{cols.stop - 1}). On the true views the "
                 f"segmenter scores pixel accuracy {ceiling.get('acc', float('nan')):.3f}: the ceiling of that column.")
    note += (" SWD: sliced Wasserstein distance (x1e3) between the method's views and the held-out photos, lower "
             "is more realistic; the true views' row is the floor of the sampling noise.")
    if result.get("skipped"):
        note += " Not scored: " + "; ".join(f"{METHODS.get(k, k)} ({why})" for k, why in result["skipped"].items()) + "."
    return note


# ---------------------------------------------------------------------------------------------
# The evaluation of an encoder run

def default_segmenter_preset(run_dir: Path) -> str:
    """The preset named at the end of the run's name (`…-encoder-smoke` → smoke), else demo."""
    tokens = run_dir.name.split("-")[2:]
    return tokens[0] if tokens and tokens[0] in PRESETS[SegmenterConfig] else "demo"


def evaluate(run_dir: str | Path, split: str = "test", oracle_images: int = 128, oracle_steps: int = 50,
             device: str = "auto", threads: int = 0, seed: int = 0, progress: bool = True,
             write: bool = True, zstar_images: int = 128, segmenter: str | Path | None = "auto",
             segmenter_preset: str | None = None, swd: bool = True,
             extra_methods: ExtraMethods | Callable[[], ExtraMethods] | None = None,
             context: HeldOut | None = None) -> dict:
    """Score an encoder run and the baselines on `split`; write metrics.json, metrics.md and
    regions.md into the run (`write`).

    `oracle_images` / `zstar_images`: held-out / training photos to fit a latent for (-1 all, 0
    skip the row). `segmenter`, `segmenter_preset`: see held_out_context (the preset defaults to
    the encoder run's). `extra_methods`: {key: (label, views)} of another model's predictions for
    the same held-out places (views in [-1, 1], in the split's order; a list of tensors for
    several draws), scored and tabulated beside the encoder; or a function that returns them, called
    once everything else is scored (the demo's: it waits for the conditional model, which trains in
    a process of its own meanwhile). `context`: a HeldOut to reuse.
    Returns {"methods": {key: row}, "labels", "chance", "markdown", "paths", ...}."""
    run_dir = Path(run_dir)
    cfg = config_from_dict(EncoderConfig, runs.read_config(run_dir))
    # one held-out pair and one training pair (for the baselines) suffice; none is an error
    runs.require_pairs(cfg.data, split, 1, f"evaluate on split {split!r}")
    runs.require_pairs(cfg.data, "train", 1, "the baselines (nearest neighbour, linear layout, mean photo)")
    runtime.configure_cpu(threads)
    device = runtime.pick_device(device)
    bf16 = runtime.use_bf16(cfg.bf16, device)
    timings, t0 = {}, time.time()
    ctx = context or held_out_context(cfg.data, split, cfg.image_size, segmenter,
                                      segmenter_preset or default_segmenter_preset(run_dir), cfg.runs, threads,
                                      swd, progress)
    timings["context"] = time.time() - t0
    E, G = load_encoder(run_dir, device)
    held_out = ctx.pairs
    train_set = load_pairs(cfg.data, "train", cfg.image_size, cfg.max_images, progress=progress)
    n = ctx.n
    labels = dict(METHODS)
    views: dict[str, torch.Tensor | list[torch.Tensor]] = {}
    skipped: dict[str, str] = {}

    t0 = time.time()
    views["encoder"] = predict_views(E, G, held_out.tiles, bf16=bf16)[0]

    def add_extra_methods(extra: ExtraMethods) -> list[str]:
        for key, (label, extra_views) in extra.items():
            labels[key] = label
            views[key] = extra_views
        return list(extra)

    late = callable(extra_methods)
    extra_keys = [] if late else add_extra_methods(extra_methods or {})
    loss_fn, z_info = None, {}
    heading = headings_known(held_out) and headings_known(train_set)
    n_zstar = len(train_set.photos) if zstar_images < 0 else min(zstar_images, len(train_set.photos))
    n_oracle = n if oracle_images < 0 else min(oracle_images, n)
    if n_zstar or n_oracle:
        D = (load_discriminator(resolve_gan_run(cfg, run_dir), device=device)
             if cfg.loss in losses.USES_DISCRIMINATOR else None)
        loss_fn = losses.make_loss(cfg.loss, discriminator=D, layout_weight=cfg.layout_weight,
                                   fm_weight=cfg.fm_weight)
    if n_zstar:
        tiles = train_set.tiles_turned("heading") if heading else train_set.tiles
        z_star = fit_latents(G, to_float(train_set.photos[:n_zstar]), loss_fn, cfg.latent_reg, oracle_steps,
                             bf16=bf16, progress=progress)
        z, lam = zstar_regression(tiles[:n_zstar], z_star,
                                  held_out.tiles_turned("heading") if heading else held_out.tiles)
        views["zstar_regression"] = generate(G, z, ctx=runtime.autocast(device, bf16))
        z_info = {"images": n_zstar, "steps": oracle_steps, "ridge": lam, "tiles": "heading" if heading else "north"}
        if not heading:
            labels["zstar_regression"] += " (north-up: no headings)"
    else:
        skipped["zstar_regression"] = "--zstar-images 0"
    timings["zstar_regression"] = time.time() - t0

    t0 = time.time()
    views.update(baseline_views(held_out, train_set, geometry.Camera(view_size=cfg.image_size)))
    if not heading:
        skipped.update({key: "the dataset records no headings" for key in HEADING_METHODS})
    timings["baselines"] = time.time() - t0
    # a random view hits its photo by luck alone; averaging draws measures that luck, not one roll
    gen = torch.Generator().manual_seed(seed)
    views["random_latent"] = [generate(G, torch.randn(n, G.nz, generator=gen), ctx=runtime.autocast(device, bf16))
                              for _ in range(RANDOM_DRAWS)]
    oracle_index = None
    if n_oracle:
        t0 = time.time()
        z_oracle = fit_latents(G, ctx.photos[:n_oracle], loss_fn, cfg.latent_reg, oracle_steps, bf16=bf16,
                               progress=progress)
        views["oracle"] = generate(G, z_oracle, ctx=runtime.autocast(device, bf16))
        oracle_index = torch.arange(n_oracle)
        timings["oracle"] = time.time() - t0
    else:
        skipped["oracle"] = "--oracle-images 0"
    if ctx.segmenter is not None:
        views["true_views"] = ctx.photos

    t0 = time.time()
    scores = {}

    def score(keys: list[str]) -> None:
        for key in tqdm(keys, desc="scoring", disable=not progress, leave=False):
            scores[key] = score_views(views[key], ctx, oracle_index if key == "oracle" else None)

    score([k for k in dict.fromkeys(["encoder", *extra_keys, *METHODS]) if k in views])
    if late:
        extra_keys = add_extra_methods(extra_methods())
        score(extra_keys)
    methods = {k: scores[k] for k in ["encoder", *extra_keys, *METHODS] if k in scores}
    timings["scoring"] = time.time() - t0

    chance = chance_row(n)
    result = {
        "run": str(run_dir), "gan_run": str(resolve_gan_run(cfg, run_dir)), "data": cfg.data, "split": split, "n": n,
        "loss": cfg.loss, "seed": cfg.seed, "methods": methods, "order": list(methods),
        "labels": {k: labels[k] for k in methods},
        "chance": chance, "skipped": skipped,
        "regions": {name: [r.start, r.stop] for name in metrics.REGIONS
                    for r in [metrics.region_rows(name, ctx.photos.shape[-2])]},
        "front": [[s.start, s.stop] for s in metrics.front_patch(*ctx.photos.shape[-2:])],
        "segmenter": None if ctx.segmenter_run is None else {
            "run": str(ctx.segmenter_run), **segment_summary(ctx.segmenter_run)},
        "oracle": {"images": n_oracle, "steps": oracle_steps, "loss": cfg.loss},
        "zstar_regression": z_info, "seconds": timings,
    }
    note = (f"Held-out split `{split}` of `{cfg.data}`: {n} pairs; retrieval ranks among all {n} photos."
            + (f" Oracle on the first {n_oracle} photos, {oracle_steps} Adam steps on z." if n_oracle else "")
            + (f" z*-regression: z* fitted to the first {n_zstar} training photos ({oracle_steps} steps), ridge from "
               f"the {z_info['tiles']}-up tile's 16x16 layout (penalty {z_info['ridge']:g}, by leave-one-out)."
               if n_zstar else ""))
    main_table = markdown_table({k: v for k, v in methods.items() if k != "true_views"}, chance, labels=labels)
    regions_md = regions_note(ctx, result) + "\n\n" + region_tables(methods, chance, labels)
    result["markdown"] = main_table + "\n\n" + regions_md
    if write:
        suffix = "" if split == "test" else f"-{split}"
        result["paths"] = [
            atomic_write_json(run_dir / f"metrics{suffix}.json", {k: v for k, v in result.items() if k != "markdown"}),
            atomic_write_text(run_dir / f"metrics{suffix}.md", f"{note}\n\n{main_table}\n"),
            atomic_write_text(run_dir / f"regions{suffix}.md", f"{regions_md}\n")]
    return result


def segment_summary(run_dir: Path) -> dict:
    """The segmenter run's preset-defining settings and its own val scores, for metrics.json."""
    from .files import read_jsonl

    config = runs.read_config(run_dir)
    stats = read_jsonl(run_dir / "stats.jsonl") if (run_dir / "stats.jsonl").exists() else []
    return {"config": {k: config.get(k) for k in ("width", "top", "epochs", "bf16")},
            "val": {k: v for k, v in (stats[-1] if stats else {}).items() if k.startswith("val")}}


def distinct_examples(photos: torch.Tensor, count: int = 3) -> list[int]:
    """`count` typical but different photos: among the 80% nearest the mean (by the retrieval
    descriptor; the farthest hold oddities such as a view into a wall of leaves), a greedy
    farthest-point pick, so a table compares different scenes rather than three similar fields."""
    desc = metrics.retrieval_descriptor(to_float(photos))
    typical = (desc - desc.mean(0)).norm(dim=1).argsort()[:max(count, len(desc) * 4 // 5)]
    chosen = [int(typical[0])]
    while len(chosen) < min(count, len(photos)):
        far = torch.cdist(desc[typical], desc[chosen]).min(1).values.argmax()
        chosen.append(int(typical[far]))
    return chosen


def loss_tables(run_dir: str | Path, names=("mse", "ssim", "custom"), split: str = "test", count: int = 3,
                device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """The write-up's comparison on held-out pairs: `count` generated views G(E(tile)) against the
    `count` real photos of the same places, one matrix per loss (rows generated, columns real).
    Returns (generated, real) as uint8 and {loss name: matrix}."""
    run_dir = Path(run_dir)
    cfg = config_from_dict(EncoderConfig, runs.read_config(run_dir))
    E, G = load_encoder(run_dir, device)
    D = load_discriminator(resolve_gan_run(cfg, run_dir), device=device)
    held_out = load_pairs(cfg.data, split, cfg.image_size, progress=False)
    index = distinct_examples(held_out.photos, count)
    generated = predict_views(E, G, held_out.tiles[index])[0]
    real = to_float(held_out.photos[index])
    matrices = {name: losses.loss_matrix(losses.make_loss(name, discriminator=D, layout_weight=cfg.layout_weight,
                                                           fm_weight=cfg.fm_weight), generated, real)
                for name in names}
    return to_uint8(generated), held_out.photos[index], matrices


def sweep(base: EncoderConfig, seeds: list[int], loss_names: list[str], split: str = "test",
          oracle_images: int = 0, oracle_steps: int = 50, progress: bool = True, zstar_images: int = 0,
          segmenter: str | Path | None = "auto", segmenter_preset: str | None = None) -> dict:
    """Train and evaluate one encoder per (loss, seed); tabulate the encoder rows and the top-5
    margins over the mean-photo and random-latent baselines (mean ± std and min over seeds)."""
    results = {}
    ctx = held_out_context(base.data, split, base.image_size, segmenter, segmenter_preset or "demo", base.runs,
                           base.threads, progress=progress)
    for name in loss_names:
        for seed in seeds:
            cfg = replace(base, loss=name, seed=seed, desc=f"{base.desc or 'sweep'}-{name}-s{seed}")
            cfg.gan_run = str(resolve_gan_run(cfg))
            # a rerun reuses finished encoders and resumes an interrupted one
            previous = runs.find_run_like(cfg, "encoder", ENCODER_RESUMABLE_FIELDS)
            run_dir = train(cfg, resume=previous, progress=progress)
            results[(name, seed)] = evaluate(run_dir, split, oracle_images, oracle_steps, device=cfg.device,
                                             threads=cfg.threads, seed=seed, progress=progress,
                                             zstar_images=zstar_images, context=ctx)
    sweep_dir = runs.new_run_dir(base.runs, "sweep", base.desc or "encoder")
    rows = {f"{name} seed {seed}": r["methods"]["encoder"] for (name, seed), r in results.items()}
    chance = next(iter(results.values()))["chance"]
    lines = [markdown_table(rows, chance, title_column="encoder (loss, seed)"), "",
             "| loss | top-5 | margin over mean photo | margin over G(random z) | min margin over seeds "
             "| median rank | G(random z) median rank |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    margins = {}
    for name in loss_names:
        top5 = [results[(name, s)]["methods"]["encoder"]["top5"] for s in seeds]
        over_mean = [t - results[(name, s)]["methods"]["mean_photo"]["top5"] for t, s in zip(top5, seeds)]
        over_random = [t - results[(name, s)]["methods"]["random_latent"]["top5"] for t, s in zip(top5, seeds)]
        median = [results[(name, s)]["methods"]["encoder"]["median_rank"] for s in seeds]
        random_median = [results[(name, s)]["methods"]["random_latent"]["median_rank"] for s in seeds]
        margins[name] = {"top5": top5, "over_mean_photo": over_mean, "over_random_latent": over_random,
                         "median_rank": median, "random_latent_median_rank": random_median}
        lines.append(f"| {name} | {mean_sd(top5)} | {mean_sd(over_mean, sign='+')} | "
                     f"{mean_sd(over_random, sign='+')} | {min(over_mean + over_random):+.3f} | "
                     f"{mean_sd(median, 1)} | {mean_sd(random_median, 1)} |")
    markdown = "\n".join(lines)
    atomic_write_json(sweep_dir / "metrics.json", {
        "seeds": seeds, "losses": loss_names, "split": split, "margins": margins,
        "runs": {f"{name}-s{seed}": r["run"] for (name, seed), r in results.items()},
        "methods": {f"{name}-s{seed}": r["methods"] for (name, seed), r in results.items()}})
    atomic_write_text(sweep_dir / "metrics.md", f"Seeds {seeds} on split `{split}`, {len(seeds)} encoder{'s' * (len(seeds) > 1)} per loss, "
                      f"preset-sized as configured (epochs {base.epochs}, nef {base.nef}).\n\n{markdown}\n")
    return {"run_dir": sweep_dir, "margins": margins, "markdown": markdown, "results": results}


# ---------------------------------------------------------------------------------------------
# The conditional model's rows: the same table, the same held-out places

CONDITIONAL_DRAWS = 6  # the sampler row: this many draws of z per place (retrieval: their mean; spread: over them)

# The loss ablation (`evaluate --conditional-ablation`): each variant drops one of G's terms.
ABLATION = {"all four terms": {}, "no adversarial term": {"adv_weight": 0.0},
            "no reconstruction term": {"rec_weight": 0.0}, "no mode seeking": {"ms_weight": 0.0},
            "no semantic term": {"sem_weight": 0.0}}


def newest_conditional_runs(runs_root: str | Path, data: str) -> list[Path]:
    """The newest finished heading-aware and heading-free conditional runs on `data` (said)."""
    found = {}
    for run_dir in reversed(runs.list_runs(runs_root, "conditional")):
        config = runs.read_config(run_dir)
        if (run_dir / "checkpoint.pt").exists() and config.get("data") == data:
            found.setdefault(config.get("heading"), run_dir)
    for mode, run_dir in found.items():
        print(f"using {run_dir}: the newest heading-{mode} conditional run on {data}; pass --conditional to choose",
              file=sys.stderr)
    return list(found.values())


def conditional_methods(conditional_runs: list[str | Path] | dict[str, tuple[str | Path, str]], pairs: PairedImages,
                        seed: int = 0, draws: int = CONDITIONAL_DRAWS) -> ExtraMethods:
    """evaluate()'s extra_methods for conditional runs: per run, its point prediction (z = 0,
    which training fits on the whole view) and its sampler (z ~ N, `draws` draws per place).
    A heading-aware run is given each pair's heading; a heading-free one the north-up tile.
    `conditional_runs`: run directories (keyed by heading mode and seed), or {key: (run
    directory, a note for its label)} where several runs share a mode and seed (the ablation)."""
    from . import train_conditional  # a loop below this module; imported where it is used

    if not isinstance(conditional_runs, dict):
        conditional_runs = {None: (run_dir, "") for run_dir in conditional_runs}
    methods = {}
    wide, mpp = pairs.turnable_tiles, pairs.meters_per_pixel
    for key, (run_dir, note) in conditional_runs.items():
        G, cfg = train_conditional.load_generator(run_dir)
        angles = pairs.headings if cfg.heading == "known" else torch.full_like(pairs.headings, float("nan"))
        name = "heading-aware" if cfg.heading == "known" else "heading-free"
        key = key or f"conditional_{cfg.heading}" + (f"_s{cfg.seed}" if cfg.seed else "")
        label = f"conditional, {name}" + (f", seed {cfg.seed}" if cfg.seed else "") + (f", {note}" if note else "")
        methods[key] = (f"{label} (z = 0)", train_conditional.predict_views(G, wide, angles, meters_per_pixel=mpp))
        gen = torch.Generator().manual_seed(seed)
        methods[key + "_samples"] = (
            f"{label} (z ~ N, {draws} draws)",
            [train_conditional.predict_views(G, wide, angles, z=torch.randn(len(wide), G.nz, generator=gen),
                                             meters_per_pixel=mpp) for _ in range(draws)])
    return methods


def train_conditional_runs(jobs: list[tuple], progress: bool = True) -> list[Path]:
    """Train (or resume, or reuse when finished) each (config, run directory or None), in order."""
    from . import train_conditional

    return [train_conditional.train(c, resume=previous, progress=progress) for c, previous in jobs]


def conditional_sweep(encoder_run: str | Path, seeds: list[int], modes=("known", "random"), preset: str = "demo",
                      variants: dict[str, dict] | None = None, split: str = "test", threads: int = 0,
                      progress: bool = True, **options) -> dict:
    """Train (or reuse) one conditional run per variant, heading mode and seed, started from the
    encoder run's GAN, and score all of them beside the write-up's model in one table; the mean
    and spread over seeds go to a `<NNNNN>-sweep-conditional[-ablation]-<preset>` run directory
    (metrics.md/json, and summary.md: the sweep's table alone). `variants`: {name: config
    overrides}, e.g. ABLATION; default: the preset. On a CPU (threads 0) two runs train at a time,
    a core each (runtime.SideLane)."""
    from . import train_conditional
    from .config import ConditionalConfig, make_config

    variants = variants or {"": {}}
    encoder_run = Path(encoder_run)
    cfg = config_from_dict(EncoderConfig, runs.read_config(encoder_run))
    gan_run = str(resolve_gan_run(cfg, encoder_run))
    jobs = {}  # (variant, mode, seed) -> (config, the finished or interrupted run to resume, or None)
    for variant, overrides in variants.items():
        slug = "-" + "_".join(f"{k}_{v:g}" for k, v in sorted(overrides.items())) if overrides else ""
        for mode in modes:
            for seed in seeds:
                desc = f"{preset}-heading_{mode}-seed_{seed}{slug}"
                c = make_config(ConditionalConfig, preset, data=cfg.data, runs=cfg.runs, desc=desc, heading=mode,
                                seed=seed, gan_run=gan_run, threads=threads, **overrides)
                jobs[(variant, mode, seed)] = (c, runs.find_run_like(c, "conditional", train_conditional.RESUMABLE_FIELDS))
    keys = list(jobs)
    if len(keys) > 1 and runtime.side_lane_helps(runtime.pick_device(), threads):
        # on a CPU two runs at a time, a core each: every other run trains in a second process,
        # which gets both cores once this one's runs are done (runtime.SideLane, as in the demo)
        one_thread = [(replace(c, threads=1), previous) for c, previous in jobs.values()]
        side = runtime.SideLane(train_conditional_runs, one_thread[1::2], False)
        here = train_conditional_runs(one_thread[0::2], progress)
        there = side.finish()
        trained = {**dict(zip(keys[0::2], here)), **dict(zip(keys[1::2], there))}
        cond_runs = {k: trained[k] for k in keys}  # (variant, mode, seed) -> run directory, in order
    else:
        cond_runs = dict(zip(keys, train_conditional_runs(list(jobs.values()), progress)))
    names = {v: f"v{i}" for i, v in enumerate(variants)}
    key = lambda variant, mode, seed: f"conditional_{names[variant]}_{mode}_s{seed}"  # noqa: E731
    pairs = load_pairs(cfg.data, split, cfg.image_size, progress=progress)
    extra = conditional_methods({key(*k): (r, k[0]) for k, r in cond_runs.items()}, pairs)
    result = evaluate(encoder_run, split, threads=threads, progress=progress, write=False, extra_methods=extra,
                      **options)
    lines = ["| model | whole top-5 | ground top-5 | horizon top-5 | sky top-5 | ground class acc | SWD "
             "| sky / ground spread |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    summary = {}

    for variant in variants:
        for mode in modes:
            for suffix, what in (("", "z = 0"), ("_samples", "z ~ N")):
                rows = [result["methods"][key(variant, mode, s) + suffix] for s in seeds]
                cells = {"whole": [r["whole"]["top5"] for r in rows], "ground": [r["ground"]["top5"] for r in rows],
                         "horizon": [r["horizon"]["top5"] for r in rows], "sky": [r["sky"]["top5"] for r in rows],
                         "class_acc": [r["class"]["acc"] for r in rows if "class" in r],
                         "swd": [r["swd"] for r in rows if "swd" in r],
                         "spread": [r["spread"]["sky_over_ground"] for r in rows if "spread" in r]}
                summary[f"{variant + ': ' if variant else ''}{mode}{suffix}"] = cells
                name = f"{variant}, " if variant else ""
                lines.append(f"| conditional, {name}heading {mode} ({what}), {len(seeds)} seed{'s' * (len(seeds) > 1)} | "
                             + " | ".join(mean_sd(cells[k]) for k in ("whole", "ground", "horizon", "sky", "class_acc"))
                             + f" | {mean_sd(cells['swd'], 1)} | {mean_sd(cells['spread'], 2)} |")
    for baseline in ("encoder", "linear_layout", "linear_layout_heading", "geometric_warp", "nearest_neighbour_heading"):
        if baseline in result["methods"]:
            r = result["methods"][baseline]
            acc = f"{r['class']['acc']:.3f}" if "class" in r else ""
            lines.append(f"| {result['labels'][baseline]} | {r['whole']['top5']:.3f} | {r['ground']['top5']:.3f} | "
                         f"{r['horizon']['top5']:.3f} | {r['sky']['top5']:.3f} | {acc} | "
                         f"{r.get('swd', float('nan')):.1f} | |")
    table = "\n".join(lines)
    ablation = len(variants) > 1
    sweep_dir = runs.new_run_dir(cfg.runs, "sweep", f"conditional-{'ablation-' if ablation else ''}{preset}")
    note = (f"Seeds {seeds} of the `{preset}` preset on split `{split}` of `{cfg.data}` ({result['n']} pairs), "
            f"each conditional run started from `{gan_run}`"
            + ("; mean ± standard deviation over seeds. " if len(seeds) > 1 else ". ")
            + ("Each variant drops one of G's loss terms (evaluate.ABLATION). " if ablation else "")
            + f"Sky / ground spread: the per-pixel standard deviation over {CONDITIONAL_DRAWS} draws of z in the "
            "sky band over that in the ground band (metrics.sample_spread). Rows below the conditional ones: the "
            "same split's single-run baselines.")
    atomic_write_json(sweep_dir / "metrics.json", {
        "seeds": seeds, "modes": list(modes), "preset": preset, "variants": dict(variants),
        "summary": summary, "runs": {f"{v + ': ' if v else ''}{m}-s{s}": str(r) for (v, m, s), r in cond_runs.items()},
        "methods": result["methods"], "labels": result["labels"]})
    atomic_write_text(sweep_dir / "summary.md", f"{note}\n\n{table}\n")  # what the README embeds
    atomic_write_text(sweep_dir / "metrics.md", f"{note}\n\n{table}\n\n{result['markdown']}\n")
    return {"run_dir": sweep_dir, "summary": summary, "markdown": table, "result": result}
