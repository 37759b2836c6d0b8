"""Predict the ground view for satellite tiles with a trained encoder run: G(E(tile)).

    python -m sat2scape predict TILE.png --run data/runs/00003-encoder-custom -o VIEW.png
    python -m sat2scape predict tiles/ -o views/           (every image in the folder)
    python -m sat2scape predict --lat 57.62 --lon 39.88 -o VIEW.png [--provider xyz --preset esri]

With --lat/--lon the tile is fetched from a satellite provider (sources/satellite.py, the same
providers and settings as `python -m sat2scape satellite`: 128 px at 1 m/px by default) and
kept beside the output as <OUT>-tile.png.

The model wants 128x128 RGB. Anything else is converted with a printed notice: another mode is
converted to RGB, a non-square image is centre-cropped, another size is resized (bicubic). A
file that is not an image stops the command with a message naming it (exit code 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from . import runs, runtime
from .data import load_image, to_uint8
from .files import atomic_save_image
from .train_encoder import load_encoder, predict_views

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"}


class NotAnImage(ValueError):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", metavar="TILE", help="satellite tile image(s) or a folder of them")
    parser.add_argument("--run", help="encoder run directory (default: the newest encoder run under --runs)")
    parser.add_argument("--runs", default="data/runs")
    parser.add_argument("-o", "--out", required=True,
                        help="output image for one tile; output folder for several or a folder")
    parser.add_argument("--size", type=int, default=128, help="the tile size the encoder was trained on")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    parser.add_argument("--threads", type=int, default=0)
    where = parser.add_argument_group("a tile fetched for a place instead of TILE files")
    where.add_argument("--lat", type=float)
    where.add_argument("--lon", type=float)
    where.add_argument("--provider", default="xyz", choices=["xyz", "yandex"])
    where.add_argument("--preset", default="esri", help="xyz: a known tile service (esri, eox)")
    where.add_argument("--url-template", help="xyz: tile URL with {z} {x} {y}; overrides --preset")
    where.add_argument("--meters-per-pixel", type=float, default=1.0, help="xyz: ground resolution of the tile")
    where.add_argument("--tile-cache", default="data", help="fetched map tiles are cached under <this>/cache/tiles")


def read_tile(path: str | Path, size: int = 128) -> tuple[np.ndarray, list[str]]:
    """A tile as size x size x 3 uint8, and the notices about what was changed to get there."""
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
    if min(w, h) != size:
        notices.append(f"{path}: resized from {min(w, h)}x{min(w, h)} to {size}x{size}")
    return load_image(path, size), notices


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


def fetch_tile(args: argparse.Namespace, path: Path) -> Path:
    """Fetch the tile centred on --lat/--lon from the provider and save it at `path`."""
    from .sources.http import Http
    from .sources.satellite import make_provider

    provider = make_provider(Http(), args.tile_cache, args.provider, preset=args.preset,
                             url_template=args.url_template, tile_size=args.size,
                             meters_per_pixel=args.meters_per_pixel)
    image, zoom, mpp = provider.fetch(args.lat, args.lon)
    print(f"fetched {args.lat},{args.lon} from {provider.name} (zoom {zoom}, {mpp:.2f} m/px): {path}")
    return atomic_save_image(path, image)


def run(args: argparse.Namespace) -> int:
    if (args.lat is None) != (args.lon is None) or (args.lat is not None and args.inputs):
        print("error: give TILE files, or --lat with --lon (not both)", file=sys.stderr)
        return 2
    if args.lat is None and not args.inputs:
        print("error: give TILE files or a folder, or --lat and --lon", file=sys.stderr)
        return 2
    run_dir = Path(args.run) if args.run else runs.latest_run(args.runs, "encoder")
    if run_dir is None or not (run_dir / "checkpoint.pt").exists():
        print(f"error: {run_dir or f'no encoder run under {args.runs}'}: not a trained encoder run; "
              "pass --run data/runs/<NNNNN>-encoder-*", file=sys.stderr)
        return 2
    if args.lat is not None:
        from .sources.http import SourceError
        from .sources.satellite import Unavailable

        out = Path(args.out)
        try:
            args.inputs = [str(fetch_tile(args, out.with_name(out.stem + "-tile.png")))]
        except (SourceError, Unavailable, ValueError) as e:
            print(f"error: no tile for {args.lat},{args.lon}: {e}", file=sys.stderr)
            return 1
    try:
        tiles_paths = collect_inputs(args.inputs)
        outputs = output_paths(args.inputs, tiles_paths, args.out)
        tiles = []
        for path in tiles_paths:
            tile, notices = read_tile(path, args.size)
            for notice in notices:
                print(f"notice: {notice}")
            tiles.append(tile)
    except NotAnImage as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runtime.set_threads(args.threads)
    E, G = load_encoder(run_dir, runtime.pick_device(args.device))
    batch = torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2)
    views = to_uint8(predict_views(E, G, batch)[0])
    for view, out in zip(views, outputs):
        atomic_save_image(out, Image.fromarray(view.permute(1, 2, 0).numpy()))
        print(out)
    return 0
