"""Predict the ground view for satellite tiles with a trained run, of either model family:

- an encoder run (data/runs/NNNNN-encoder-*, the write-up's model): G(E(tile)), one view a tile;
- a conditional run (data/runs/NNNNN-conditional-*, train_conditional.py): the tile turned so
  that the camera looks along --heading, and a free latent z for the sky and the light.

    python -m sat2scape predict TILE.png --run data/runs/00003-encoder-custom -o VIEW.png
    python -m sat2scape predict tiles/ -o views/           (every image in the folder)
    python -m sat2scape predict --lat 57.62 --lon 39.88 -o VIEW.png [--provider xyz --preset esri]
    python -m sat2scape predict TILE.png --heading 135 -o VIEW.png          (conditional run)
    python -m sat2scape predict TILE.png --around 8 --samples 3 -o GRID.png (conditional run)

The run is --run's; without it, the newest conditional run with a checkpoint under --runs, else
the newest encoder run (the line printed names it). Its stage, from its name, picks the model.

Conditional runs only (an encoder run stops with exit code 2 when given one of them):
  --heading DEG  degrees clockwise from north to look along. Without it a heading-aware run
                 looks north; a heading-free run (trained with --heading random) ignores it.
  --samples K    K views from K draws of z (torch.Generator seeded by --seed); 1 = z = 0.
  --around N     N headings from --heading (or 0) every 360/N degrees, left to right: a look
                 around from where you stand (heading-aware runs only).
One tile gives one image: a single view, or a grid with one row per sample and one column per
heading (images.image_rows, the headings on top).

With --lat/--lon the tile is fetched from a satellite provider (sources/satellite.py, the same
providers and settings as `python -m sat2scape satellite`: 128 px at 1 m/px by default) and
kept beside the output as <OUT>-tile.png; a conditional run gets the provider's wide tile
(geometry.wide_tile_size(--size) = 182 px, turnable to any heading with no empty corner), and
that wide tile is the one kept.

The encoder wants 128x128 RGB. Anything else is converted with a printed notice: another mode is
converted to RGB, a non-square image is centre-cropped, another size is resized (bicubic). For a
conditional run a square of at least geometry.wide_tile_size(--size) px is read as a wide tile
(centre-cropped, resized down to the wide size only if larger); a smaller one is read at --size
and turned as it is, with a notice that its corners are clamped when turned by other than a
multiple of 90 degrees. A file that is not an image stops the command with a message naming it
(exit code 2).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from . import geometry, runs, runtime
from .data import load_image, to_uint8
from .files import atomic_save_image
from .images import image_rows
from .train_encoder import load_encoder, predict_views

STAGES = ("conditional", "encoder")  # the run families predict serves, the preferred default first

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"}


class NotAnImage(ValueError):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="TILE", help="satellite tile image(s) or a folder of them")
    parser.add_argument("--run", help="encoder or conditional run directory (default: the newest conditional run "
                                      "under --runs, else the newest encoder run)")
    parser.add_argument("--runs", default="data/runs")
    parser.add_argument("-o", "--out", required=True,
                        help="output image for one tile; output folder for several or a folder")
    parser.add_argument("--size", type=int, default=128, help="the tile size the model was trained on")
    cond = parser.add_argument_group("conditional runs only")
    cond.add_argument("--heading", type=float, metavar="DEG",
                      help="look along this heading, degrees clockwise from north (default: north)")
    cond.add_argument("--samples", type=int, default=1, metavar="K",
                      help="K views from K draws of the latent z, one row each (default 1: z = 0)")
    cond.add_argument("--around", type=int, metavar="N",
                      help="N headings around the point from --heading (or 0), every 360/N degrees, in one strip")
    cond.add_argument("--seed", type=int, default=0, help="seed of the draws of z for --samples")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    parser.add_argument("--threads", type=int, default=0)
    where = parser.add_argument_group("a tile fetched for a place instead of TILE files")
    where.add_argument("--lat", type=float)
    where.add_argument("--lon", type=float)
    where.add_argument("--provider", default="xyz", choices=["xyz", "yandex"])
    where.add_argument("--preset", default="esri", help="xyz: a known tile service (esri, eox)")
    where.add_argument("--url-template", help="xyz: tile URL with {z} {x} {y}; overrides --preset")
    where.add_argument("--meters-per-pixel", type=float, default=1.0,
                       help="xyz: ground resolution of the tile; conditional runs: that of TILE files too")
    where.add_argument("--tile-cache", default="data", help="fetched map tiles are cached under <this>/cache/tiles")


def _probe(path: str | Path) -> tuple[int, list[str]]:
    """The side of an image's central square, and the notices about its mode and shape."""
    try:
        with Image.open(path) as im:
            im.load()
            mode, (w, h) = im.mode, im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise NotAnImage(f"{path}: not an image that can be read ({e.__class__.__name__}: {e})") from None
    notices = []
    if mode != "RGB":
        notices.append(f"{path}: mode {mode} converted to RGB")
    if w != h:
        s = min(w, h)
        notices.append(f"{path}: {w}x{h} is not square; centre-cropped to {s}x{s}")
    return min(w, h), notices


def read_tile(path: str | Path, size: int = 128) -> tuple[np.ndarray, list[str]]:
    """A tile as size x size x 3 uint8, and the notices about what was changed to get there."""
    side, notices = _probe(path)
    if side != size:
        notices.append(f"{path}: resized from {side}x{side} to {size}x{size}")
    return load_image(path, size), notices


def read_wide_tile(path: str | Path, size: int = 128) -> tuple[np.ndarray, list[str], bool]:
    """A tile for the conditional model: (W x W x 3 uint8, notices, whether it is wide).

    A square of at least W = geometry.wide_tile_size(size) px is read as a wide tile (resized
    down to W only if larger); a smaller one is read as read_tile does, at `size`: turning it
    clamps its corners (the caller says so when it turns it)."""
    wide = geometry.wide_tile_size(size)
    side, notices = _probe(path)
    if side < wide:
        tile, notices = read_tile(path, size)
        return tile, notices, False
    if side > wide:
        notices.append(f"{path}: resized from {side}x{side} to {wide}x{wide} (read as a wide tile)")
    return load_image(path, wide), notices, True


def collect_inputs(inputs: list[str]) -> list[Path]:
    paths = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            paths.append(path)
        else:
            raise NotAnImage(f"{path}: no such file or folder")
    if not paths:
        raise NotAnImage(f"no image files in {', '.join(inputs)}")
    return paths


def output_paths(inputs: list[str], tiles: list[Path], out: str) -> list[Path]:
    """One tile and no folder given: `out` is the file. Otherwise `out` is a folder of
    <tile name>.png (a `.png` or `.jpg` suffix on `out` then is an error)."""
    out = Path(out)
    if len(tiles) == 1 and not Path(inputs[0]).is_dir() and out.suffix:
        return [out]
    if out.suffix.lower() in IMAGE_SUFFIXES:
        raise NotAnImage(f"{len(tiles)} tiles need an output folder, not the file {out}")
    return [out / f"{t.stem}.png" for t in tiles]


def fetch_tile(args: argparse.Namespace, path: Path, wide: bool = False) -> tuple[Path, float]:
    """Fetch the tile centred on --lat/--lon from the provider (its wide tile if `wide`) and save
    it at `path`; return the path and the tile's metres per pixel."""
    from .sources.http import Http
    from .sources.satellite import make_provider

    provider = make_provider(Http(), args.tile_cache, args.provider, preset=args.preset,
                             url_template=args.url_template, tile_size=args.size,
                             meters_per_pixel=args.meters_per_pixel)
    image, zoom, mpp = (provider.fetch_wide if wide else provider.fetch)(args.lat, args.lon)
    kind = f", the wide {image.width} px tile" if wide else ""
    print(f"fetched {args.lat},{args.lon} from {provider.name} (zoom {zoom}, {mpp:.2f} m/px{kind}): {path}")
    return atomic_save_image(path, image), mpp


def run_stage(run_dir: Path) -> str:
    """The model family of a run directory, from its name (NNNNN-<stage>-*); a directory named
    otherwise is taken for an encoder run, as predict always did."""
    m = runs.RUN_NAME.match(run_dir.name)
    return m.group(2) if m else "encoder"


def heading_label(angle: float) -> str:
    return f"{round(angle, 1):g}°"


def view_angles(args: argparse.Namespace, heading_mode: str) -> list[float]:
    """The headings a conditional run looks along (degrees clockwise from north; NaN = north-up,
    no turn), printing a notice where a heading is assumed or ignored."""
    if heading_mode == "random":
        if args.heading is not None:
            print(f"notice: --heading {args.heading:g} ignored: the run is heading-free (trained with "
                  "--heading random), its views do not follow a heading")
        return [math.nan]
    if args.around:
        start = args.heading or 0.0
        return [(start + i * 360 / args.around) % 360 for i in range(args.around)]
    if args.heading is None:
        print("notice: no --heading: the view looks north (pass --heading DEG, degrees clockwise from north)")
        return [math.nan]
    return [args.heading % 360]


def conditional_views(G, tile: np.ndarray, angles: list[float], z: torch.Tensor, meters_per_pixel: float,
                      size: int) -> torch.Tensor:
    """uint8 views of one north-up tile (W x W x 3) for every latent (rows) and heading
    (columns): K x A x 3 x size x size."""
    from .train_conditional import predict_views as predict_conditional

    k, a = len(z), len(angles)
    tiles = torch.from_numpy(np.array(tile)).permute(2, 0, 1).unsqueeze(0).expand(k * a, -1, -1, -1)
    views = predict_conditional(G, tiles, torch.tensor(angles * k, dtype=torch.float32), z.repeat_interleave(a, 0),
                                meters_per_pixel=meters_per_pixel, size=size)
    return to_uint8(views).view(k, a, *views.shape[1:])


def check_flags(args: argparse.Namespace, run_dir: Path, stage: str) -> str | None:
    """Why these flags cannot go with this run, or None."""
    if args.samples < 1 or (args.around is not None and args.around < 1):
        return "--samples and --around take a count of at least 1"
    if stage == "encoder":
        given = [flag for flag, on in (("--heading", args.heading is not None), ("--samples", args.samples != 1),
                                       ("--around", args.around is not None)) if on]
        if given:
            return (f"{' and '.join(given)}: {run_dir} is an encoder run (the write-up's model), which takes no "
                    "heading and has no latent to sample; pass a conditional run: "
                    "--run data/runs/<NNNNN>-conditional-*")
    elif args.around is not None and runs.read_config(run_dir).get("heading") == "random":
        return (f"--around: {run_dir} is heading-free (trained with --heading random), its views do not follow "
                "a heading; pass a heading-aware conditional run (trained with --heading known)")
    return None


def run(args: argparse.Namespace) -> int:
    if (args.lat is None) != (args.lon is None) or (args.lat is not None and args.inputs):
        print("error: give TILE files, or --lat with --lon (not both)", file=sys.stderr)
        return 2
    if args.lat is None and not args.inputs:
        print("error: give TILE files or a folder, or --lat and --lon", file=sys.stderr)
        return 2
    run_dir = Path(args.run) if args.run else runs.pick_latest(args.runs, STAGES, flag="--run")
    if run_dir is None:
        print(f"error: no conditional or encoder run with a checkpoint under {args.runs}; pass --run "
              "data/runs/<NNNNN>-conditional-* or data/runs/<NNNNN>-encoder-*", file=sys.stderr)
        return 2
    stage = run_stage(run_dir)
    if stage not in STAGES:
        print(f"error: {run_dir} is a {stage} run; predict takes a conditional or an encoder run "
              "(--run data/runs/<NNNNN>-conditional-* or -encoder-*)", file=sys.stderr)
        return 2
    if not (run_dir / "checkpoint.pt").exists():
        print(f"error: {run_dir}: not a trained {stage} run; pass --run data/runs/<NNNNN>-{stage}-*", file=sys.stderr)
        return 2
    problem = check_flags(args, run_dir, stage)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    meters_per_pixel = args.meters_per_pixel
    if args.lat is not None:
        from .sources.http import SourceError
        from .sources.satellite import Unavailable

        out = Path(args.out)
        try:
            path, meters_per_pixel = fetch_tile(args, out.with_name(out.stem + "-tile.png"),
                                                wide=stage == "conditional")
            args.inputs = [str(path)]
        except (SourceError, Unavailable, ValueError) as e:
            print(f"error: no tile for {args.lat},{args.lon}: {e}", file=sys.stderr)
            return 1
    try:
        tiles_paths = collect_inputs(args.inputs)
        outputs = output_paths(args.inputs, tiles_paths, args.out)
        tiles, wide = [], []
        for path in tiles_paths:
            if stage == "conditional":
                tile, notices, is_wide = read_wide_tile(path, args.size)
                wide.append(is_wide)
            else:
                tile, notices = read_tile(path, args.size)
            for notice in notices:
                print(f"notice: {notice}")
            tiles.append(tile)
    except NotAnImage as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runtime.configure_cpu(args.threads)
    if stage == "conditional":
        return run_conditional(args, run_dir, tiles_paths, tiles, wide, outputs, meters_per_pixel)
    E, G = load_encoder(run_dir, runtime.pick_device(args.device))
    batch = torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2)
    views = to_uint8(predict_views(E, G, batch)[0])
    for view, out in zip(views, outputs):
        atomic_save_image(out, Image.fromarray(view.permute(1, 2, 0).numpy()))
        print(out)
    return 0


def run_conditional(args: argparse.Namespace, run_dir: Path, paths: list[Path], tiles: list[np.ndarray],
                    wide: list[bool], outputs: list[Path], meters_per_pixel: float) -> int:
    """Views of each tile by a conditional run: one image per tile (a grid for --samples/--around)."""
    from .train_conditional import load_generator

    G, cfg = load_generator(run_dir, runtime.pick_device(args.device))
    angles = view_angles(args, cfg.heading)
    if args.samples == 1:
        z = torch.zeros(1, G.nz)  # the latent's centre
    else:
        z = torch.randn(args.samples, G.nz, generator=torch.Generator().manual_seed(args.seed))
    turned = any(not math.isnan(a) and a % 90 != 0 for a in angles)
    labels = [heading_label(a) for a in angles] if len(angles) > 1 else None
    for path, tile, is_wide, out in zip(paths, tiles, wide, outputs):
        if turned and not is_wide:
            print(f"notice: {path}: smaller than the {geometry.wide_tile_size(args.size)} px wide tile; read at "
                  f"{args.size} px and turned as it is, so its corners are clamped when turned (pass a "
                  f"{geometry.wide_tile_size(args.size)} px tile for clean corners)")
        views = conditional_views(G, tile, angles, z, meters_per_pixel, args.size)
        if views.shape[:2] == (1, 1):
            image = Image.fromarray(views[0, 0].permute(1, 2, 0).numpy())
        else:
            image = image_rows([views[:, a] for a in range(len(angles))], labels=labels)
        atomic_save_image(out, image)
        print(out)
    return 0
