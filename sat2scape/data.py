"""Training data: decode images once into a uint8 tensor cache, then batch from memory.

On CPU decoding is cheap next to compute, but on a GPU the balance flips, so every image is
decoded once into `data/<name>/cache/<kind>-<hash>.pt` (uint8, N x 3 x H x W). The hash covers
the manifest rows, the file sizes and mtimes and the resolution, so a changed dataset is never
served from a stale cache. Training then moves the whole tensor to the device and indexes it.
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm.auto import tqdm

from . import geometry, manifest
from .files import atomic_torch_save


def load_image(path: str | Path, size: int) -> np.ndarray:
    """Decode an image as RGB, centre-crop to a square, resize to size x size: HxWx3 uint8."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        if s != size:
            im = im.resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(im, dtype=np.uint8)


def cached_images(dataset: str | Path, rel_paths: list[str], size: int, kind: str,
                  progress: bool = True, decode=load_image) -> torch.Tensor:
    """uint8 tensor of the images at `rel_paths`, decoded at most once: N x 3 x size x size for
    photos and tiles; N x size x size where `decode` gives one channel (the class maps)."""
    dataset = Path(dataset)
    key = hashlib.sha256(f"{kind}:{size}".encode())
    for rel in rel_paths:
        st = (dataset / rel).stat()
        key.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    cache_path = dataset / "cache" / f"{kind}-{size}-{key.hexdigest()[:16]}.pt"
    if cache_path.exists():
        return torch.load(cache_path, weights_only=True)
    images = np.stack([decode(dataset / rel, size) for rel in
                       tqdm(rel_paths, desc=f"decoding {kind}", disable=not progress, leave=False)])
    tensor = torch.from_numpy(images)
    if tensor.ndim == 4:  # N x H x W x 3 -> N x 3 x H x W
        tensor = tensor.permute(0, 3, 1, 2).contiguous()
    atomic_torch_save(cache_path, tensor)
    return tensor


# --- the world's class maps (what the segmenter learns and the ground-class score reads) ---

def class_map_paths(table: pd.DataFrame) -> list[str]:
    """Each pair's class map, relative to the dataset: the `classes_path` column where a dataset
    has one, else the world's layout, `classes/<photo file's stem>.png`."""
    if "classes_path" in table.columns and (table["classes_path"].astype(str).str.strip() != "").all():
        return list(table["classes_path"])
    return [f"classes/{Path(p).stem}.png" for p in table["photo_path"]]


def has_class_maps(dataset: str | Path, table: pd.DataFrame) -> bool:
    return len(table) > 0 and all((Path(dataset) / p).exists() for p in class_map_paths(table))


def load_class_map(path: Path, size: int) -> np.ndarray:
    """One class map as size x size uint8 class ids (nearest-neighbour resize: ids never blend)."""
    with Image.open(path) as im:
        if im.mode != "P" and im.mode != "L":
            raise ValueError(f"{path}: a class map must be a palette or greyscale PNG of class ids")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.NEAREST)
        return np.asarray(im, dtype=np.uint8)


def load_class_maps(dataset: str | Path, table: pd.DataFrame, size: int = 128, progress: bool = True) -> torch.Tensor:
    """uint8 N x size x size class ids of the pairs in `table`, decoded once into the dataset's
    cache (data.cached_images)."""
    return cached_images(dataset, class_map_paths(table), size, "classes", progress, decode=load_class_map)


@dataclass
class PairedImages:
    """One split of a dataset in memory: photos and their satellite tiles, as uint8 tensors."""

    ids: list[str]
    photos: torch.Tensor   # N x 3 x H x W uint8
    tiles: torch.Tensor    # N x 3 x H x W uint8, north up
    table: pd.DataFrame    # the pairs.csv rows, in the same order
    headings: torch.Tensor | None = None    # N float degrees clockwise from north, NaN = unknown
    wide_tiles: torch.Tensor | None = None  # N x 3 x W x W uint8 (geometry.wide_tile_size), or None
    _heading_up: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)  # tiles_turned's, once

    @property
    def turnable_tiles(self) -> torch.Tensor:
        """The tiles to turn by a heading: the wide ones where stored (no empty corners after any
        turn, geometry.wide_tile_size), else the plain ones."""
        return self.wide_tiles if self.wide_tiles is not None else self.tiles

    @property
    def meters_per_pixel(self) -> float:
        """The tiles' ground resolution (pairs.csv), 1 m/px where it is not recorded."""
        values = [float(v) for v in self.table.get("meters_per_pixel", []) if str(v).strip()]
        return statistics.median(values) if values else 1.0

    def tiles_turned(self, mode: str = "heading") -> torch.Tensor:
        """The tiles as a model sees them: `north` (as stored) or `heading` (turned so that the
        camera looks up; from the wide tiles, so no corner is empty; north-up where unknown)."""
        if mode == "north":
            return self.tiles
        if mode != "heading":
            raise ValueError(f"tile mode {mode!r}: choose 'north' or 'heading'")
        if self._heading_up is None:  # the evaluation's baselines ask for them several times (2.5 s each)
            self._heading_up = geometry.turn_tiles(self.turnable_tiles, self.headings, self.tiles.shape[-1])
        return self._heading_up


def load_pairs(dataset: str | Path, split: str | list[str] = "train", size: int = 128,
               max_images: int = 0, progress: bool = True, with_tiles: bool = True) -> PairedImages:
    """Read pairs.csv, keep the split(s), decode photos (and tiles) through the cache."""
    splits = [split] if isinstance(split, str) else list(split)
    table = manifest.read(dataset, "pairs.csv")
    table = table[table["split"].isin(splits)].reset_index(drop=True)
    if max_images:
        table = table.iloc[:max_images].reset_index(drop=True)
    if table.empty:
        raise manifest.ManifestError(
            f"{Path(dataset) / 'pairs.csv'} has no rows in split {splits}; "
            "generate more data or check the split column")
    photos = cached_images(dataset, list(table["photo_path"]), size, "photos", progress)
    tiles = (cached_images(dataset, list(table["satellite_path"]), size, "tiles", progress)
             if with_tiles else torch.empty(0, dtype=torch.uint8))
    headings = torch.tensor(pd.to_numeric(table["heading"]).to_numpy(dtype=float), dtype=torch.float32)
    wide_paths = table["satellite_wide_path"].astype(str).str.strip()
    wide = None
    if with_tiles and (wide_paths != "").all():
        wide = cached_images(dataset, list(wide_paths), geometry.wide_tile_size(size), "tiles_wide", progress)
    return PairedImages(list(table["photo_id"]), photos, tiles, table, headings, wide)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the generator's tanh range."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return images.detach().float().add(1.0).mul(127.5).round().clamp_(0, 255).to(torch.uint8)


def epoch_order(n: int, epoch: int, seed: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """The sample order of one epoch, a pure function of (seed, epoch).

    Because the order does not depend on any RNG state, a run resumed mid-epoch continues with
    exactly the batches it would have seen. Under DDP each rank takes every world_size-th index.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)[rank::world_size]
