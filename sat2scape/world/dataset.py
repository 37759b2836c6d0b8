"""The dataset folder: `generate` writes samples and manifests; the `world` verb of the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import multiprocessing
import os
import typing
from collections import deque
from contextlib import nullcontext
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from .. import manifest
from ..files import atomic_write_bytes, atomic_write_json, sha256_bytes, sha256_file
from .config import WORLD_VERSION, WorldConfig
from .land import CLASS_COLORS
from .sampling import _describe, _render, photo_id

# --- the dataset folder ----------------------------------------------------------------------

def _paths(index: int) -> dict[str, str]:
    name = manifest.safe_name(photo_id(index))
    return {"photo": f"photos/{name}.jpg", "satellite": f"satellite/{name}.png",
            "satellite_wide": f"satellite_wide/{name}.png", "classes": f"classes/{name}.png"}


def _class_png(classes: np.ndarray) -> bytes:
    """A class map as a palette PNG: pixel values are class ids, shown in CLASS_COLORS."""
    img = Image.fromarray(classes, mode="P")
    img.putpalette(CLASS_COLORS.ravel().tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _encode(img: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _make_sample(index: int, cfg: WorldConfig, out: Path) -> tuple[dict, dict, dict]:
    """Sample `index`'s two manifest rows, and its encoded files (empty if already written)."""
    paths = _paths(index)
    meta = _describe(index, cfg)
    files = {}
    if all((out / p).exists() for p in paths.values()):
        digest = sha256_file(out / paths["photo"])  # written by an earlier run: resume
    else:
        pair = _render(meta["x_m"], meta["y_m"], meta["heading"], cfg, meta["conditions"])
        jpeg = _encode(pair["view"], "JPEG", quality=cfg.jpeg_quality)
        digest = sha256_bytes(jpeg)
        # the photo last: its presence marks a finished sample
        files = {out / paths["satellite"]: _encode(pair["tile"], "PNG", compress_level=1),
                 out / paths["satellite_wide"]: _encode(pair["tile_wide"], "PNG", compress_level=1),
                 out / paths["classes"]: _class_png(pair["view_classes"]),
                 out / paths["photo"]: jpeg}
    photo = {
        "photo_id": meta["photo_id"], "source": "world", "lat": meta["lat"], "lon": meta["lon"],
        "taken_at": meta["taken_at"], "url": "", "path": paths["photo"],
        "width": cfg.view_size, "height": cfg.view_size, "sha256": digest, "license": "CC0",
        "author": "sat2scape world", "heading": meta["heading"],
    }
    pair_row = {
        "photo_id": meta["photo_id"], "photo_path": paths["photo"], "satellite_path": paths["satellite"],
        "lat": meta["lat"], "lon": meta["lon"], "provider": "world", "zoom": "",
        "meters_per_pixel": cfg.meters_per_pixel, "attribution": "sat2scape procedural world (CC0)",
        "split": meta["split"], "heading": meta["heading"], "satellite_wide_path": paths["satellite_wide"],
    }
    return photo, pair_row, files


def _write_files(files: dict) -> None:
    for path, data in files.items():
        atomic_write_bytes(path, data)


def _make_sample_job(job) -> tuple[dict, dict, dict]:
    return _make_sample(*job)


def generate(out_dir, n: int, cfg: WorldConfig | None = None, workers: int = 1, progress: bool = True) -> Path:
    """Write samples 0..n-1 of the world into a dataset folder; return the folder.

    Resumable: samples whose files exist are kept, and the manifests are rewritten at the end
    from all n samples. A folder made with another config is refused rather than mixed.
    Rendering runs in this process, or in `workers` processes (0: one per CPU core; 2 on 2 cores
    make 3000 pairs 1.6x as fast, benchmarks/world.py); either way a few threads here
    write the files, in the samples' order: each atomic write waits ~ms on fsync, which would
    otherwise double the time.
    """
    import pandas as pd
    from tqdm import tqdm

    cfg = cfg or WorldConfig()
    out = Path(out_dir)
    settings = {"world_version": WORLD_VERSION, "config": dataclasses.asdict(cfg)}
    config_path = out / "world.json"
    if config_path.exists():
        previous = json.loads(config_path.read_text())
        if previous != json.loads(json.dumps(settings)):
            raise ValueError(f"{out} holds a world made with other settings ({config_path}: {previous}); "
                             f"use another folder, or delete it to start over")
    else:
        atomic_write_json(config_path, settings)

    workers = workers or os.cpu_count() or 1
    jobs = [(i, cfg, out) for i in range(n)]
    rows = []
    with tqdm(total=n, desc="world", unit="pair", disable=not progress) as bar, \
            ThreadPoolExecutor(max_workers=4) as writer, \
            (multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else nullcontext()) as pool:
        made = pool.imap(_make_sample_job, jobs, chunksize=8) if workers > 1 else map(_make_sample_job, jobs)
        pending = deque()
        for photo, pair_row, files in made:
            rows.append((photo, pair_row))
            if files:
                pending.append(writer.submit(_write_files, files))
            while pending and (len(pending) > 64 or pending[0].done()):
                pending.popleft().result()  # raises a failed write here
            bar.update()
        for future in pending:
            future.result()
    manifest.write(out, "photos.csv", pd.DataFrame([r[0] for r in rows]))
    manifest.write(out, "pairs.csv", pd.DataFrame([r[1] for r in rows]))
    return out


# --- command line: python -m sat2scape world -------------------------------------------------

def dataset_config(dataset) -> WorldConfig:
    """The config a world dataset folder was made with (its world.json), to render more of the
    same world there: other headings, a walk, a look around."""
    path = Path(dataset) / "world.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: {dataset} was not made by `python -m sat2scape world`, "
                                "and only a world dataset can be rendered again")
    return WorldConfig(**json.loads(path.read_text())["config"])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="data/world", help="dataset folder (default data/world)")
    parser.add_argument("--n", type=int, default=3000, help="number of pairs (default 3000)")
    parser.add_argument("--workers", type=int, default=0, help="rendering processes (default 0: one per CPU core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    hints = typing.get_type_hints(WorldConfig)
    for field in dataclasses.fields(WorldConfig):
        kind = hints[field.name]
        parse = float if field.name == "heading" else kind
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, type=parse, default=None,
                            metavar=parse.__name__.upper(),
                            help=f"default {field.default!r}"
                            + (" (random per sample)" if field.name == "heading" else ""))


def run(args: argparse.Namespace) -> int:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(WorldConfig)}
    cfg = WorldConfig(**{k: v for k, v in values.items() if v is not None})
    out = generate(args.out, args.n, cfg, workers=args.workers, progress=not args.no_progress)
    pairs = manifest.read(out, "pairs.csv")
    counts = pairs["split"].value_counts().reindex(list(manifest.SPLITS), fill_value=0)
    print(f"{out}: {len(pairs)} pairs (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")")
    return 0
