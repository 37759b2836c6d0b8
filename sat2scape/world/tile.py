"""The satellite tile: the land field seen from above, shaded, with shadows."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..geometry import wide_tile_size
from .colour import _albedo, _to_uint8
from .config import WorldConfig
from .land import FOREST_CONIF, FOREST_DECID, WATER, _land, _world
from .noise import F32


def _render_tiles(x_m: float, y_m: float, cfg: WorldConfig, cond: dict) -> tuple[np.ndarray, np.ndarray]:
    """The north-up tile centred on (x_m, y_m) and the wide tile around it: (tile, wide).

    The wide tile (geometry.wide_tile_size(tile_size) on a side) can be turned to any heading
    and cropped with no empty corner. It is rendered once and the tile is its exact centre, so
    the two never disagree: turning the wide tile by heading 0 gives the tile, and the tile's
    edges see shadows cast from beyond them and blur across them, as a crop of a real image does.
    """
    n = cfg.tile_size
    wide = _render_tile(x_m, y_m, cfg, cond, wide_tile_size(n))
    top = (len(wide) - n) // 2  # the sides differ by an even number: the centres coincide
    return wide[top:top + n, top:top + n].copy(), wide


def _render_tile(x_m: float, y_m: float, cfg: WorldConfig, cond: dict, n: int) -> np.ndarray:
    """The top-down tile of n x n px centred on (x_m, y_m), north up: (n, n, 3) uint8."""
    world = _world(cfg.seed)
    mpp = cfg.meters_per_pixel
    offsets = (np.arange(n, dtype=F32) - F32(n / 2 - 0.5)) * F32(mpp)
    x = np.tile(F32(x_m) + offsets, n)
    y = np.repeat(F32(y_m) - offsets, n)  # row 0 is the north edge
    land = _land(x, y, cfg.seed)
    albedo = _albedo(land, x, y, world, (F32(mpp), F32(0)), (F32(0), F32(-mpp)))

    # trees: each crown a little different, darker down in the canopy (the light does not reach)
    cls, height = land["cls"], land["height"]
    tree = (cls == FOREST_DECID) | (cls == FOREST_CONIF)
    canopy = np.clip(height * F32(1 / 16), 0, 1)
    albedo = albedo * np.where(tree, F32(0.65) + F32(0.45) * canopy, F32(1))

    # sun shading from the height map's normals, then shadows marched towards the sun
    z = (land["ground"] + height).reshape(n, n)
    dzdy, dzdx = np.gradient(z, F32(mpp))
    dzdy = -dzdy  # rows run south
    se, sa = cond["tile_sun_elevation"], cond["tile_sun_azimuth"]
    sun = (math.sin(sa) * math.cos(se), math.cos(sa) * math.cos(se), math.sin(se))
    lambert = (-dzdx * F32(sun[0]) - dzdy * F32(sun[1]) + F32(sun[2])) / np.sqrt(dzdx * dzdx + dzdy * dzdy + 1)
    lit = np.ones((n, n), dtype=F32)
    steps = [s for s in (1, 2, 3, 4, 6, 8, 11, 15, 20, 26) if s * mpp <= 30]  # 26 m trees at 45 deg
    reach = steps[-1]
    zp = np.pad(z, reach, mode="edge")  # beyond the tile, shadows are cast as if from its edge
    for step in steps:
        dist = step * mpp
        di = int(round(-sun[1] / math.cos(se) * step))  # rows towards the sun (north is up)
        dj = int(round(sun[0] / math.cos(se) * step))
        blocker = zp[reach + di:reach + di + n, reach + dj:reach + dj + n]
        lit = np.minimum(lit, np.clip((z + F32(dist * math.tan(se)) - blocker) * F32(0.5) + F32(1), 0, 1))
    light = F32(0.48) + F32(0.75) * np.maximum(lambert, 0) * (F32(0.3) + F32(0.7) * lit)
    rgb = albedo.reshape(3, n, n) * light
    # water mirrors the sky a little, ruffled by ripples
    sky_glint = np.where(cls == WATER, F32(0.04), F32(0)).reshape(n, n)
    rgb += sky_glint * np.array([0.8, 1.0, 1.3], F32)[:, None, None]

    # through the atmosphere and the sensor: a little haze, the pass's colour balance, softness
    rgb = (rgb * F32(0.92) + np.array([0.03, 0.045, 0.07], F32)[:, None, None]) * cond["tile_gain"][:, :, None]
    img = _to_uint8(rgb)
    return cv2.GaussianBlur(img, (3, 3), 0.55)
