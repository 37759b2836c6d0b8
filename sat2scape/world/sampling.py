"""Samples: where a photographer stands, which way they look, under which sky; and the map's
coordinates."""

from __future__ import annotations

import math

import numpy as np

from .. import manifest
from .config import METERS_PER_DEG_LAT, ORIGIN_LAT, ORIGIN_LON, WorldConfig
from .land import FIELD, FOREST_CONIF, FOREST_DECID, HOUSE, MEADOW, ROAD, WATER, landcover_at
from .sky import _conditions
from .tile import _render_tiles
from .view import _render_view


def render_pair(x_m: float, y_m: float, heading_deg: float, cfg: WorldConfig, sky_seed: int) -> dict:
    """The satellite tiles and the ground view at one place: {tile, tile_wide, view, view_classes}.

    Both tiles are north up; `tile_wide` (geometry.wide_tile_size(tile_size) on a side) is the
    one to turn to the heading (geometry.turn_tiles), and `tile` is its centre crop.

    `sky_seed` picks the shooting conditions (date and time, sun, sky, camera tilt); keep it
    fixed to walk along a path under one sky.
    """
    return _render(x_m, y_m, heading_deg, cfg, _conditions(cfg.seed, sky_seed))


def _render(x_m: float, y_m: float, heading_deg: float, cfg: WorldConfig, cond: dict) -> dict:
    view, classes = _render_view(x_m, y_m, heading_deg, cfg, cond)
    tile, wide = _render_tiles(x_m, y_m, cfg, cond)
    return {"tile": tile, "tile_wide": wide, "view": view, "view_classes": classes}


def open_ground(x_m, y_m, heading_deg, cfg: WorldConfig) -> np.ndarray:
    """Whether a photographer can stand at each point, looking along heading_deg (degrees
    clockwise from north; broadcast against the points): on meadow, field or road, with nothing
    taller than the grass within 5 m, nor 8-14 m ahead of the camera."""
    x_m, y_m, h = np.broadcast_arrays(np.asarray(x_m, float), np.asarray(y_m, float),
                                      np.radians(np.asarray(heading_deg, float)))
    ring = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    ahead = np.array([8.0, 11.0, 14.0])

    def offsets(*parts):  # one row of offsets per point: the spot, the ring, the points ahead
        return np.concatenate([np.broadcast_to(p, x_m.shape + (np.shape(p)[-1],)) for p in parts], axis=-1)

    ox = offsets([0.0], 5 * np.cos(ring), ahead * np.sin(h[..., None]))
    oy = offsets([0.0], 5 * np.sin(ring), ahead * np.cos(h[..., None]))
    cls, height = landcover_at(x_m[..., None] + ox, y_m[..., None] + oy, cfg)
    return np.isin(cls[..., 0], (MEADOW, FIELD, ROAD)) & (height.max(axis=-1) == 0)


def _place(index: int, cfg: WorldConfig) -> tuple[float, float, float, int]:
    """Where sample `index` stands, which way it looks, and its sky seed: (x, y, heading, sky_seed).

    People take photos in the open (open_ground): on meadows, fields and roads, not in water, in
    a house or inside a wood, and not with their nose in a tree. Candidates are drawn uniformly
    over the extent and the first one that passes is taken.
    """
    rng = np.random.default_rng([cfg.seed, index, 1])
    heading = float(rng.uniform(0, 360)) if cfg.heading is None else float(cfg.heading) % 360
    sky_seed = int(rng.integers(0, 2**31 - 1))
    half = cfg.extent_km * 500.0
    tries = 10  # about 60% of the land is open: all ten fail once in ten thousand
    cx = rng.uniform(-half, half, tries)
    cy = rng.uniform(-half, half, tries)
    clear = open_ground(cx, cy, heading, cfg)
    # most photos are taken near woods, water or villages: look at what is 40-90 m around
    around = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ox = np.concatenate([40 * np.cos(around), 90 * np.cos(around)])
    oy = np.concatenate([40 * np.sin(around), 90 * np.sin(around)])
    cls, _ = landcover_at(cx[:, None] + ox, cy[:, None] + oy, cfg)
    scenic = clear & np.isin(cls, (FOREST_DECID, FOREST_CONIF, WATER, HOUSE)).any(axis=1)
    want_scenic = rng.random() < 0.6
    pick = int(np.argmax(scenic)) if want_scenic and scenic.any() else int(np.argmax(clear))
    return float(cx[pick]), float(cy[pick]), heading, sky_seed


def to_latlon(x_m: float, y_m: float) -> tuple[float, float]:
    """World metres to latitude and longitude around the origin (an equirectangular map)."""
    lat = ORIGIN_LAT + y_m / METERS_PER_DEG_LAT
    lon = ORIGIN_LON + x_m / (METERS_PER_DEG_LAT * math.cos(math.radians(ORIGIN_LAT)))
    return lat, lon


def from_latlon(lat: float, lon: float) -> tuple[float, float]:
    """The inverse of to_latlon: world metres (x east, y north) of a latitude and longitude."""
    x_m = (lon - ORIGIN_LON) * METERS_PER_DEG_LAT * math.cos(math.radians(ORIGIN_LAT))
    return x_m, (lat - ORIGIN_LAT) * METERS_PER_DEG_LAT


def photo_id(index: int) -> str:
    return f"world:{index:06d}"


def _describe(index: int, cfg: WorldConfig) -> dict:
    """A sample's metadata and shooting conditions, without rendering it."""
    x, y, heading, sky_seed = _place(index, cfg)
    lat, lon = to_latlon(x, y)
    cond = _conditions(cfg.seed, sky_seed)
    return {
        "photo_id": photo_id(index), "x_m": x, "y_m": y, "lat": round(lat, 7), "lon": round(lon, 7),
        "heading": round(heading, 2), "sky_seed": sky_seed, "sky": cond["sky"], "taken_at": cond["taken_at"],
        "split": manifest.region_split(lat, lon, cell_km=cfg.split_cell_km, seed=cfg.seed),
        "conditions": cond,
    }


def sample(index: int, cfg: WorldConfig) -> dict:
    """Sample `index` of the world: the rendered pair and where, when and how it was taken.

    Keys: tile, tile_wide, view, view_classes, photo_id, x_m, y_m, lat, lon, heading, split, sky,
    taken_at, sky_seed. The same (cfg, index) always gives the same sample.
    """
    meta = _describe(index, cfg)
    cond = meta.pop("conditions")
    return {**_render(meta["x_m"], meta["y_m"], meta["heading"], cfg, cond), **meta}
