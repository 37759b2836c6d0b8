"""The built-in procedural world: paired satellite tiles and ground views of one landscape.

Real photos and satellite tiles need the internet; this world needs nothing, so it is the
default dataset that every later stage (GAN, encoder, evaluation, demo) trains and is measured
on. It stands in for summer countryside in the Yaroslavl region: crop fields and meadows, birch
and spruce forest, lakes and rivers, dirt roads, villages of wooden houses.

The world model, top to bottom:

1. **One land-cover and height field**, `_land(x, y)`, evaluable at any point in metres (x east,
   y north) and vectorised over numpy arrays (`landcover_at` is its public face).
   - Large-scale fields (forest massifs, lakes, terrain, stand type) are periodic noise
     textures made once per process by spectral synthesis, looked up at world-seeded
     rotations, scales and offsets; forests and lakes sum two lookups at incommensurate
     scales, so their pattern never repeats. Rivers and roads are narrow bands around zero
     isolines of smooth noise (their networks repeat every 6-10 km; what they cross does not).
   - The open country is cut into Voronoi cells of ~330 m. Each cell is a crop field (rows in
     one direction: green wheat, ripe grain, rapeseed, ploughed earth, potatoes, oats, clover
     hay, stubble), a meadow, an overgrown meadow with scattered birches, a copse, or a village:
     house plots along parallel streets, gardens with a few trees. Some field margins carry a
     line of trees, and river banks willows.
   - Trees are individual crowns on a jittered 5 m lattice: domes for birch and aspen, cones
     for spruce, 13-26 m tall in forests (shorter towards the edge). A wood is a solid wall of
     foliage under its crowns; a lone birch is an ellipsoid crown on a trunk. Houses are boxes
     with gable roofs, 3 m to the eaves and 5-7 m to the ridge.
   It returns a class id (`CLASS_NAMES`) and an object height per point, plus what the
   renderers need to colour it (crop, row direction, tones, water depth, crown underside).

2. **The satellite tile** (128 px at 1 m/px by default, north up) evaluates the field on a
   top-down grid, colours it with texture (field swaths and tramlines, crowns, roofs, water
   depth and ripples), shades it from the height map's normals under a late-morning sun, and
   casts shadows by marching the height map towards the sun.

3. **The ground view** is a pinhole camera at eye height (1.7 m), 70 degrees wide, tilted a few
   degrees. Each image column marches along its ray through the same field, in steps that grow
   with distance (2 m to 3 km, ~5% apart). Each step's top (terrain + trees or houses) is
   projected to a screen row, and the nearest step whose top reaches a pixel paints it: a
   front-to-back painter, as in voxel-space terrain renderers, done for all columns at once
   with one `searchsorted`. So woods are walls with crown silhouettes and the horizon lies far
   beyond the tile's edge. Lone crowns float over the ground on their trunks and are painted
   into the same depth order separately. Ground pixels are textured at their exact ground
   point (field rows converge in perspective, grass and flowers in the foreground), water
   mirrors what stands behind it and the sky, the sky is clear, cumulus or overcast under a
   sun placed by date and time, and haze grows with distance. The class of the step that
   painted each pixel is the view's class map.

A sample is addressed by (seed, index): its place (open ground, most often near woods, water or
a village), heading and sky come from random generators seeded by both, so any sample can be
made alone, in any order, by any worker, with the same bytes.

Dataset folder written by `generate` (see DESIGN.md): `photos/<id>.jpg` (ground views),
`satellite/<id>.png` (tiles), `classes/<id>.png` (the ground view's class map: a palette PNG
whose pixel values are class ids), `photos.csv`, `pairs.csv`, and `world.json` (the config).
Photos are placed over a 40 km square around 57.6 N, 39.9 E; the train/val/test split is by
3 km region cells (`manifest.region_split`), so no held-out tile overlaps a training tile (a
view's horizon may still reach into a neighbouring cell).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import io
import json
import math
import multiprocessing
import typing
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from . import manifest
from .files import atomic_write_bytes, atomic_write_json, sha256_bytes, sha256_file

# --- classes ---------------------------------------------------------------------------------

SKY, MEADOW, FIELD, FOREST_DECID, FOREST_CONIF, WATER, ROAD, HOUSE = range(8)
CLASS_NAMES = ("sky", "meadow", "field", "forest_decid", "forest_conif", "water", "road", "house")
# Display colours of the classes; also the palette of the class-map PNGs.
CLASS_COLORS = np.array([
    (135, 190, 235), (120, 190, 80), (230, 200, 90), (40, 130, 40),
    (20, 70, 40), (40, 90, 200), (170, 140, 110), (200, 60, 50),
], dtype=np.uint8)

ORIGIN_LAT, ORIGIN_LON = 57.6, 39.9  # the world's centre: countryside near Yaroslavl
METERS_PER_DEG_LAT = 111_320.0
UTC_OFFSET_H = 3                     # Moscow time
WORLD_VERSION = 1                    # bump when the same config would render different pixels


@dataclass
class WorldConfig:
    seed: int = 0                   # the world: its map, and every sample's place, heading and sky
    tile_size: int = 128            # satellite tile side, px
    meters_per_pixel: float = 1.0   # satellite ground resolution
    view_size: int = 128            # ground view side, px (square)
    fov_deg: float = 70.0           # horizontal field of view of the ground camera
    eye_height: float = 1.7         # camera height above the ground, m
    heading: float | None = None    # degrees clockwise from north; None = random per sample
    extent_km: float = 40.0         # samples are spread over a square this wide
    split_cell_km: float = 3.0      # region cells of the train/val/test split
    max_depth_m: float = 3000.0     # how far the ground view marches
    jpeg_quality: int = 92


F32 = np.float32

# --- noise -----------------------------------------------------------------------------------
# Periodic 4-channel noise textures, made once per process from a fixed generator: they are part
# of the code, not of the world. A lookup returns all four channels at once, and each channel
# has its own spectrum, so one lookup gives four unrelated fields. The world seed picks each
# lookup's rotation and offset, so each seed is a different world.

_N = 512  # texture side (a power of two: lookups wrap with a bit mask)


def _spectral_texture(rng: np.random.Generator, spectra) -> np.ndarray:
    """Periodic noise, one channel per amplitude spectrum A(fx, fy) (cycles per texture), std 1.

    Padded to (N+1, N+1, C) with the first row and column repeated, so a bilinear lookup can
    read texel i+1 without wrapping.
    """
    fy = (np.fft.fftfreq(_N) * _N)[:, None]
    fx = (np.fft.rfftfreq(_N) * _N)[None, :]
    channels = []
    for amplitude in spectra:
        a = amplitude(fx, fy, np.maximum(np.hypot(fx, fy), 1.0))
        noise = rng.standard_normal(a.shape) + 1j * rng.standard_normal(a.shape)
        spectrum = noise * a
        spectrum[0, 0] = 0.0
        tex = np.fft.irfft2(spectrum, s=(_N, _N))
        channels.append((tex - tex.mean()) / tex.std())
    tex = np.stack(channels, axis=-1)
    return np.ascontiguousarray(np.pad(tex, ((0, 1), (0, 1), (0, 0)), mode="wrap"), dtype=F32)


def _fbm(slope: float, low: float = 1.0, high: float = 200.0):
    """Fractal spectrum f^-slope between wavelengths N/low and N/high texels."""
    return lambda fx, fy, f: f ** -slope * np.exp(-(f / high) ** 2) * (1 - np.exp(-(f / low) ** 4))


def _band(center: float, width: float):
    """A narrow ring of frequencies: smooth noise whose zero isolines meander evenly."""
    return lambda fx, fy, f: np.exp(-((f - center) / width) ** 2)


@lru_cache(maxsize=1)
def _textures() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240601)
    return {
        # large scale, 12 m/texel: forest, lakes, terrain, a road network
        "land_a": _spectral_texture(rng, [_fbm(1.6, 1, 120), _fbm(1.7, 1, 120), _fbm(2.2), _band(4, 1.2)]),
        # large scale, 19.7 m/texel: forest, lakes (summed with land_a's), rivers, another road network
        "land_b": _spectral_texture(rng, [_fbm(1.6, 1, 120), _fbm(1.7, 1, 120), _band(4, 1.0), _band(6, 1.5)]),
        # medium scale, 2.5 m/texel: ragged forest edges, stand type, stand height, meadow patches
        "land_c": _spectral_texture(rng, [_fbm(1.3, 6, 120), _fbm(2.0, 1, 12), _fbm(2.0, 1, 40), _fbm(1.4, 2, 160)]),
        # detail, 0.12 m/texel near the camera and 1.2 m/texel far: grain, blotches, ripples, leaves
        "detail": _spectral_texture(rng, [
            _fbm(0.3, 1, 256), _fbm(1.2, 1, 200),
            lambda fx, fy, f: np.exp(-(fx / 6.0) ** 2) * np.exp(-((np.abs(fy) - 60) / 30) ** 2),
            _fbm(0.6, 20, 160)]),
        # clouds on a plane 1.5 km up, 30 m/texel: cumulus, overcast, cirrus streaks, variation
        "sky": _spectral_texture(rng, [
            _fbm(1.5, 2, 150), _fbm(1.2, 1, 100),
            lambda fx, fy, f: np.exp(-(fx / 3.0) ** 2) * f ** -0.8 * np.exp(-(f / 120) ** 2), _fbm(2.0)]),
    }


def _lookup(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a padded periodic texture at texel coordinates (u, v): shape (n, C).

    The four corners are gathered as (n, C) rows and interpolated as flat arrays, with the
    weights repeated per channel: numpy is several times slower on a (n, C) * (n, 1) broadcast.
    """
    channels = tex.shape[-1]
    u0 = np.floor(u)
    v0 = np.floor(v)
    fu = np.repeat((u - u0).astype(F32), channels)
    fv = np.repeat((v - v0).astype(F32), channels)
    idx = (v0.astype(np.int32) & (_N - 1)) * (_N + 1) + (u0.astype(np.int32) & (_N - 1))
    flat = tex.reshape(-1, channels)
    a = flat.take(idx, axis=0).ravel()
    b = flat.take(idx + 1, axis=0).ravel()
    c = flat.take(idx + _N + 1, axis=0).ravel()
    d = flat.take(idx + _N + 2, axis=0).ravel()
    top = a + (b - a) * fu
    return (top + (c + (d - c) * fu - top) * fv).reshape(-1, channels)


# lookup name -> (texture, metres per texel)
_LOOKUPS = {
    "land_a": ("land_a", 12.0),
    "land_b": ("land_b", 19.7),
    "land_c": ("land_c", 2.5),
    "near": ("detail", 0.12),
    "far": ("detail", 1.2),
    "sky": ("sky", 30.0),
}
# Sides of the per-world random tables of Voronoi cells (128 x 330 m: repeats every 42 km, beyond
# the sampled area) and tree sites (256 x 5 m). Small tables stay in the CPU cache.
_TABLE = 128
_TREE_TABLE = 256


@lru_cache(maxsize=4)
def _world(seed: int) -> dict:
    """Per-world constants: each lookup's transform, and random tables for cells and trees."""
    rng = np.random.default_rng([seed, 7411])
    textures = _textures()
    lookups = {}
    for name, (texture, scale) in _LOOKUPS.items():
        angle = rng.uniform(0, 2 * np.pi)
        lookups[name] = (textures[texture], F32(math.cos(angle) / scale), F32(math.sin(angle) / scale),
                         F32(rng.uniform(0, _N)), F32(rng.uniform(0, _N)))
    # per Voronoi cell: site jitter x, y (within the middle 60% of the cell), then uniforms for
    # the kind, the crop, the direction and a tone; with a one-cell wrapped border (see _voronoi)
    cells = np.concatenate([rng.uniform(0.2, 0.8, (2, _TABLE, _TABLE)), rng.random((4, _TABLE, _TABLE))])
    cells = np.pad(cells, ((0, 0), (1, 1), (1, 1)), mode="wrap").reshape(6, -1).astype(F32)
    return {
        "lookups": lookups,
        "cell_jitter": cells[:2],
        "cells": cells,
        "cell_kind": np.searchsorted(_KIND_SHARES, cells[2], side="right").astype(np.int8),
        "cell_crop": np.searchsorted(_CROP_SHARES, cells[3], side="right").astype(np.int8),
        # per tree site: jitter x, y (middle half of the cell), then a uniform for the tree's
        # type, size and tone, and one for whether the site holds a tree
        # (interleaved: one row per site, so one gather fetches a site)
        "trees": np.concatenate([rng.uniform(0.25, 0.75, (2, _TREE_TABLE**2)),
                                 rng.random((2, _TREE_TABLE**2))]).T.astype(F32).copy(),
    }


def _noise(world: dict, name: str, x: np.ndarray, y: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The (n, 4) channels of a lookup at world points (scale > 1 stretches the texture)."""
    tex, c, s, ou, ov = world["lookups"][name]
    if scale != 1.0:
        c, s = c / F32(scale), s / F32(scale)
    return _lookup(tex, x * c - y * s + ou, x * s + y * c + ov)


def _smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - F32(a)) * F32(1 / (b - a)), 0, 1)
    return t * t * (3 - 2 * t)


# --- the land-cover and height field ---------------------------------------------------------

CELL_M = 330.0  # Voronoi cell size of fields, meadows, copses and villages
# What a cell outside the forest massifs is, and each kind's share.
CROP, MEADOW_CELL, OVERGROWN, COPSE, VILLAGE = range(5)
_KIND_SHARES = np.cumsum([0.50, 0.25, 0.12, 0.08, 0.05]).astype(F32)
# Crops: (name, share, colour of the crop, colour between its rows, row spacing m). Between the
# rows shows soil or shade near the camera; from above, rows are too fine to see and a crop
# shows through its tramlines and swaths.
CROPS = [
    ("green wheat", 0.25, (0.42, 0.55, 0.22), (0.30, 0.40, 0.16), 0.22),
    ("ripe grain", 0.18, (0.80, 0.68, 0.40), (0.62, 0.52, 0.30), 0.22),
    ("rapeseed", 0.09, (0.92, 0.82, 0.20), (0.55, 0.56, 0.16), 0.35),
    ("ploughed", 0.11, (0.45, 0.36, 0.27), (0.28, 0.21, 0.15), 0.45),
    ("potatoes", 0.10, (0.25, 0.40, 0.15), (0.42, 0.34, 0.24), 0.75),
    ("oats", 0.06, (0.58, 0.62, 0.32), (0.40, 0.46, 0.22), 0.22),
    ("clover hay", 0.13, (0.34, 0.49, 0.19), (0.62, 0.60, 0.36), 0.30),
    ("stubble", 0.09, (0.79, 0.72, 0.50), (0.60, 0.53, 0.34), 0.20),
]
_CROP_SHARES = (np.cumsum([c[1] for c in CROPS]) / sum(c[1] for c in CROPS)).astype(F32)
_CROP_SPACING = np.array([c[4] for c in CROPS], dtype=F32)
CLOVER, STUBBLE = 6, 7

TREE_SPACING = 5.0    # m between crown centres on the jittered lattice
HOUSE_WALL = 3.0      # m to the eaves; ridges are 2.2-3.7 m higher
STREET_EVERY = 64.0   # m between village streets
PLOT_WIDTH = 24.0     # m of street front per house plot
FOREST_LEVEL = 0.30   # forest where the forest field exceeds this (~1/3 of the land)


def _voronoi(x: np.ndarray, y: np.ndarray, world: dict):
    """The Voronoi cell of each point: (table index of its site, site - point in m, edge distance).

    Sites are jittered within the middle 60% of their grid cells. Then the nearest site, and
    the second nearest wherever the point is near an edge, lie among the 2x2 cells on the
    point's side of its own cell (checked against a 5x5 search: wrong for ~1e-5 of points).
    The edge distance is the distance to the bisector with the second-nearest site: exact for
    Voronoi cells; field margins and village bounds use it.
    """
    gx = x * F32(1 / CELL_M)
    gy = y * F32(1 / CELL_M)
    i0 = np.floor(gx)
    j0 = np.floor(gy)
    fx, fy = gx - i0, gy - j0
    # the table has a one-cell wrapped border, so neighbours are plain index offsets
    base = ((j0.astype(np.int32) & (_TABLE - 1)) + 1) * (_TABLE + 2) + (i0.astype(np.int32) & (_TABLE - 1)) + 1
    step_i = np.where(fx > 0.5, 1, -1).astype(np.int32)
    step_j = np.where(fy > 0.5, 1, -1).astype(np.int32)
    jitter_x, jitter_y = world["cell_jitter"]
    idx, dx, dy = [], [], []
    best1 = np.full(len(x), np.iinfo(np.int32).max, dtype=np.int32)
    best2 = best1.copy()
    for k, (oi, oj) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
        di = step_i * oi if oi else 0
        dj = step_j * oj if oj else 0
        idx.append(base + dj * (_TABLE + 2) + di)
        dx.append(jitter_x.take(idx[-1]) + (di - fx))
        dy.append(jitter_y.take(idx[-1]) + (dj - fy))
        # rank by an integer key, squared distance then candidate number: min/max keep the two
        # nearest without branching
        key = ((dx[-1] * dx[-1] + dy[-1] * dy[-1]) * F32(2**24)).astype(np.int32) << 2 | k  # d2 < 2
        best2 = np.minimum(best2, np.maximum(best1, key))
        best1 = np.minimum(best1, key)
    # gather the winners' values: candidate k of point p sits at k * n + p in the stacks
    points = np.arange(len(x), dtype=np.int32)
    first = (best1 & 3) * len(x) + points
    second = (best2 & 3) * len(x) + points
    dx, dy = np.stack(dx).ravel(), np.stack(dy).ravel()
    i1 = np.stack(idx).ravel().take(first)
    x1, y1, x2, y2 = dx.take(first), dy.take(first), dx.take(second), dy.take(second)
    d1 = x1 * x1 + y1 * y1
    d2 = x2 * x2 + y2 * y2
    sep = np.sqrt((x1 - x2) ** 2 + (y1 - y2) ** 2)
    edge = (d2 - d1) / (2 * sep) * F32(CELL_M)
    return i1, x1 * F32(CELL_M), y1 * F32(CELL_M), edge


def _trees(x, y, density, tall, conifer_p, world, warp):
    """Crowns on a jittered lattice: (canopy height, is conifer, tone, offset to the tree's
    centre, (height of a lone crown's underside, and where its trunk enters it)) at each point.

    `density` is the chance that a lattice site holds a tree, `tall` the stand's height and
    `conifer_p` the chance that a tree is a conifer, all taken at the point itself. Sites move
    at most a quarter cell and crowns are at most 0.75 cells wide, so only the 2x2 sites nearest
    the point can cover it. `warp` (n, 2) bends the lattice by a few metres, so rows of trees
    do not line up. Trees in a stand (density > 0.6) are crowns on a solid wall of foliage, as a
    wood looks from outside. A lone spruce is a cone down to the ground; a lone birch's crown is
    an ellipsoid over the top 75% of the tree: the canopy height is its upper surface, and its
    underside is returned so that the ground view can see under it.
    """
    gx = (x + warp[:, 0]) * F32(1 / TREE_SPACING)
    gy = (y + warp[:, 1]) * F32(1 / TREE_SPACING)
    i0 = np.floor(gx)
    j0 = np.floor(gy)
    fx, fy = gx - i0, gy - j0
    i0 = i0.astype(np.int32)
    j0 = j0.astype(np.int32)
    di = np.where(fx > 0.5, 1, -1).astype(np.int32)
    dj = np.where(fy > 0.5, 1, -1).astype(np.int32)
    table = world["trees"]
    stand = density > 0.6
    best = np.zeros(len(x), dtype=F32)
    best_trait = np.zeros(len(x), dtype=F32)
    best_dx = np.zeros(len(x), dtype=F32)
    best_dy = np.zeros(len(x), dtype=F32)
    best_top = np.zeros(len(x), dtype=F32)
    for oi, oj in ((0, 0), (1, 0), (0, 1), (1, 1)):
        ci, cj = i0 + di * oi, j0 + dj * oj
        site = table.take((cj & (_TREE_TABLE - 1)) * _TREE_TABLE + (ci & (_TREE_TABLE - 1)), axis=0)
        u = site[:, 2]
        dx = (ci - i0) + site[:, 0] - fx
        dy = (cj - j0) + site[:, 1] - fy
        conifer = u < conifer_p
        size = F32(0.6) + F32(0.8) * ((u * F32(7.31)) % F32(1.0))  # relative to the stand
        radius2 = np.where(conifer, F32(0.48**2), F32(0.63**2)) * np.minimum(size, F32(1.4))
        r = np.sqrt((dx * dx + dy * dy) / radius2)
        # canopy surface: a cone for spruce, a dome for birch; in a stand the crown is the top
        # 70% (spruce) or 45% (birch) of the tree
        cone = 1 - r
        dome = np.sqrt(np.maximum(1 - r * r, 0))
        top = tall * size
        in_stand = top * (1 - np.where(conifer, F32(0.7) * r, F32(0.45) * (1 - dome)))
        lone = np.where(conifer, top * cone, top * (F32(0.625) + F32(0.375) * dome))
        h = np.where(stand, in_stand, lone)
        h = np.where((r < 1) & (site[:, 3] < density), h, 0).astype(F32)
        higher = h > best
        best = np.maximum(best, h)
        best_trait = np.where(higher, u, best_trait)
        best_top = np.where(higher, top, best_top)
        best_dx = np.where(higher, dx, best_dx)
        best_dy = np.where(higher, dy, best_dy)
    # in a stand, lower branches and young trees fill the gaps between the crowns; a gap takes
    # the stand's main kind of tree
    crowned = best > 0
    conifer = np.where(crowned, best_trait < conifer_p, conifer_p > 0.5)
    best = np.where(stand, np.maximum(best, F32(0.45) * tall), best)
    centre = (best_dx * F32(TREE_SPACING), best_dy * F32(TREE_SPACING))
    lone = ~(stand | conifer | (best == 0))
    underside = np.where(lone, F32(1.25) * best_top - best, F32(0))
    trunk_top = np.where(lone, F32(0.25) * best_top, F32(0))  # the crown's underside at the trunk
    return best, conifer, (best_trait * F32(13.7)) % F32(1.0), centre, (underside, trunk_top)


def _land(x: np.ndarray, y: np.ndarray, seed: int, coarse: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The land cover at points (x, y) in metres: a dict of flat arrays.

    `coarse` marks points seen from far away (the ground view's distant steps): there a dense
    forest gets its stand's mean canopy height instead of individual crowns, which would be
    smaller than a pixel.

    cls     class id (MEADOW ... HOUSE)
    ground  terrain elevation, m
    height  object height above the ground (trees, houses), m
    crop    crop index for FIELD points, else -1
    angle   the cell's direction (field rows, village streets), radians
    tone    0..1 variation per cell, tree or house, for colour
    patch   medium-scale noise, about -2..2 (meadow patches, soil moisture)
    depth   0..1 how far inside a water body (0 at the shore)
    base    for lone deciduous trees, the height of the crown's underside (the ground view
            sees under it, past the trunk at tree_x, tree_y, which reaches trunk_top); 0 for
            everything solid
    floor   the class on the ground: cls, except under lone trees
    """
    world = _world(seed)
    x = np.asarray(x, dtype=F32).ravel()
    y = np.asarray(y, dtype=F32).ravel()
    n = len(x)
    a = _noise(world, "land_a", x, y)
    b = _noise(world, "land_b", x, y)
    c = _noise(world, "land_c", x, y)
    ground = F32(6.0) * a[:, 2]

    # forest massifs: a low-frequency field whose edge is ragged at crown scale
    forest_val = (a[:, 0] + b[:, 0]) * F32(0.5) + F32(0.05) * c[:, 0]
    forest = forest_val > FOREST_LEVEL
    conifer_p = np.clip(F32(0.5) + F32(0.8) * c[:, 1], 0.03, 0.97).astype(F32)

    # water: lakes where another low-frequency field peaks, rivers along a smooth isoline
    lake_val = (a[:, 1] + b[:, 1]) * F32(0.5) - F32(1.1)
    river_val = F32(0.03) - np.abs(b[:, 2])
    water_val = np.maximum(lake_val * F32(0.5), river_val)
    water = water_val > 0
    depth = np.clip(water_val * F32(35), 0, 1)
    bank = (water_val > F32(-0.02)) & ~water  # a few metres of shore, where willows and alders grow

    # dirt roads along isolines of two smooth fields (village streets come below)
    road = (np.abs(a[:, 3]) < F32(0.012)) | (np.abs(b[:, 3]) < F32(0.011))

    # Voronoi cells: what each patch of open country is used for (forest massifs and water
    # take precedence over it)
    cell, to_site_x, to_site_y, edge = _voronoi(x, y, world)
    kind = world["cell_kind"].take(cell)
    crop = world["cell_crop"].take(cell)
    angle = world["cells"][4].take(cell) * F32(np.pi)
    tone = world["cells"][5].take(cell)
    kind[forest | water] = -1
    copse = forest | (kind == COPSE)

    cls = np.full(n, MEADOW, dtype=np.uint8)
    height = np.zeros(n, dtype=F32)
    field = (kind == CROP) & (edge > 2.0)  # fields keep a grass margin along their edges
    cls[field] = FIELD
    crop[~field] = -1

    # villages: plots along parallel streets in the cell's own direction
    village = (kind == VILLAGE) & ~water
    house = np.zeros(n, dtype=bool)
    iv = np.nonzero(village)[0]
    if len(iv):
        ca, sa = np.cos(angle[iv]), np.sin(angle[iv])
        dx, dy = -to_site_x[iv], -to_site_y[iv]
        along = dx * ca + dy * sa
        across = -dx * sa + dy * ca
        street = np.floor(across / STREET_EVERY + 0.5)
        across = across - street * STREET_EVERY               # -32..32, the street at 0
        plot = np.floor(along / PLOT_WIDTH)
        along = along - plot * PLOT_WIDTH                      # 0..24 within the plot
        # each plot's own random numbers, from the cell table at a hashed index
        plot_id = (plot.astype(np.int32) * 2 + (across > 0)) * 7919 + street.astype(np.int32) * 104729
        pidx = (plot_id + cell[iv]) & (_TABLE * _TABLE - 1)
        u0, u1, u2, u3 = (world["cells"][k].take(pidx) for k in range(2, 6))
        front = 7 + 4 * u0
        deep = 7 + 4 * u1
        a0 = 3 + (PLOT_WIDTH - 6 - front) * u2
        ua = (along - a0) / front
        ub = (np.abs(across) - (5.0 + 3 * u3)) / deep
        inside = (ua >= 0) & (ua <= 1) & (ub >= 0) & (ub <= 1) & (u3 < 0.85) & (edge[iv] > 14)
        t = np.where(u0 < 0.6, ub, ua)  # most ridges run along the street
        roof = HOUSE_WALL + (2.2 + 1.5 * u1) * (1 - np.abs(2 * t - 1))
        house[iv[inside]] = True
        height[iv[inside]] = roof[inside]
        tone[iv[inside]] = u2[inside]
        road[iv[(np.abs(across) < 2.5) & (edge[iv] > 4)]] = True

    # trees: dense in forests and copses (shorter towards the edge), scattered over overgrown
    # meadows and gardens, along river banks, and in lines along some field margins. Whether a
    # lattice site holds a tree is decided at each point, so a crown would be cut off where its
    # region ends; outside the woods, trees instead shrink to nothing towards a region's edge.
    tall = np.clip(F32(19) + F32(4) * c[:, 2], 13, 26).astype(F32)
    tall = np.where(copse, tall * np.clip(F32(0.55) + F32(2.5) * (forest_val - F32(FOREST_LEVEL)), 0.55, 1.0),
                    np.where(village, F32(7), F32(9))).astype(F32)
    tall[kind == COPSE] = np.maximum(tall[kind == COPSE], 15)
    density = np.zeros(n, dtype=F32)
    hedge = (edge < 4.0) & (kind != VILLAGE) & (tone < 0.3)
    scattered = np.nonzero(((kind == OVERGROWN) | (village & ~house) | bank | hedge) & ~copse)[0]
    if len(scattered):
        edge_s = edge.take(scattered)
        inside = _smoothstep(0, 6, edge_s)  # away from the cell's edge
        p, w = np.zeros(len(scattered), dtype=F32), np.zeros(len(scattered), dtype=F32)
        for where, chance, fade in (
                (kind.take(scattered) == OVERGROWN, 0.2, inside),
                (village.take(scattered), 0.1, inside),
                (bank.take(scattered), 0.25, _smoothstep(-0.02, -0.01, water_val.take(scattered))),
                (hedge.take(scattered), 0.5, _smoothstep(4.0, 1.0, edge_s))):
            p = np.where(where, np.maximum(p, F32(chance)), p)
            w = np.where(where, np.maximum(w, fade), w)
        density[scattered] = p
        tall[scattered] *= w
    density[copse] = 0.93
    density[water | road | house] = 0
    if coarse is not None:
        canopy = np.nonzero(coarse & (density > 0.9))[0]
        density[canopy] = 0
        height[canopy] = tall[canopy] * (F32(0.8) + F32(0.06) * c[canopy, 0])
        cls[canopy] = np.where(conifer_p[canopy] > 0.5, FOREST_CONIF, FOREST_DECID)
        crop[canopy] = -1
    base = np.zeros(n, dtype=F32)
    tree_x = np.zeros(n, dtype=F32)
    tree_y = np.zeros(n, dtype=F32)
    trunk_top = np.zeros(n, dtype=F32)
    floor = cls
    wooded = np.nonzero(density > 0)[0]
    if len(wooded):
        warp = c[wooded][:, (3, 0)] * F32(1.6)
        dense = copse[wooded]
        # scattered trees are mostly birch, willow and alder; spruce keeps to the forests
        conifer_here = np.where(dense, conifer_p[wooded], conifer_p[wooded] * F32(0.3))
        th, conif, tt, (to_x, to_y), (underside, trunk) = _trees(
            x[wooded], y[wooded], density[wooded], tall[wooded], conifer_here, world, warp)
        # leafy, uneven crown surfaces: they roughen silhouettes and shading, lone trees most
        th *= F32(1) + np.where(dense, F32(0.07), F32(0.16)) * _noise(world, "far", x[wooded], y[wooded])[:, 3]
        is_tree = th > 0
        floor = cls.copy()                    # what lies under lone trees
        is_forest = is_tree | copse[wooded]  # the floor between crowns is forest too
        conif = np.where(is_tree, conif, conifer_p[wooded] > 0.5)
        cls[wooded[is_forest]] = np.where(conif[is_forest], FOREST_CONIF, FOREST_DECID)
        height[wooded] = th
        tone[wooded[is_tree]] = tt[is_tree]
        crop[wooded[is_forest]] = -1
        # lone birches and willows stand on a trunk; spruce and forest edges are leafy to the ground
        lone = np.nonzero(underside > 0)[0]
        base[wooded[lone]] = underside[lone]
        trunk_top[wooded[lone]] = trunk[lone]
        tree_x[wooded[lone]] = x[wooded[lone]] + to_x[lone]
        tree_y[wooded[lone]] = y[wooded[lone]] + to_y[lone]

    cls[house] = HOUSE
    cls[road] = ROAD
    cls[water] = WATER
    crop[road | water] = -1
    height[road | water] = 0
    base[road | water] = 0
    floor = np.where(base > 0, floor, cls)
    return {"cls": cls, "floor": floor, "ground": ground, "height": height, "crop": crop, "angle": angle,
            "tone": tone, "patch": c[:, 3].copy(), "depth": depth, "base": base,
            "trunk_top": trunk_top, "tree_x": tree_x, "tree_y": tree_y}


def landcover_at(x_m, y_m, cfg: WorldConfig) -> tuple[np.ndarray, np.ndarray]:
    """Class ids and object heights (m above the ground) at points in world metres."""
    x_m, y_m = np.broadcast_arrays(np.asarray(x_m, dtype=F32), np.asarray(y_m, dtype=F32))
    land = _land(x_m, y_m, cfg.seed)
    return land["cls"].reshape(x_m.shape), land["height"].reshape(x_m.shape)


# --- colour ----------------------------------------------------------------------------------
# Albedos in display space (0..1). Each point gets a material: its class, or for fields its crop,
# or for houses its roof. A material has two colours, mixed by a per-point parameter (tone,
# row pattern, water depth, meadow patch), and then a brightness texture.

_CLASS_A = {  # first colour per class (SKY is never a material; fields and houses have their own)
    MEADOW: (0.33, 0.45, 0.19), FOREST_DECID: (0.27, 0.40, 0.14), FOREST_CONIF: (0.14, 0.23, 0.12),
    WATER: (0.20, 0.23, 0.16), ROAD: (0.58, 0.52, 0.42), HOUSE: (0.5, 0.5, 0.5), FIELD: (0.5, 0.5, 0.5),
}
_CLASS_B = {
    MEADOW: (0.50, 0.52, 0.28), FOREST_DECID: (0.38, 0.50, 0.19), FOREST_CONIF: (0.22, 0.31, 0.17),
    WATER: (0.07, 0.11, 0.10), ROAD: (0.47, 0.42, 0.34), HOUSE: (0.5, 0.5, 0.5), FIELD: (0.5, 0.5, 0.5),
}
ROOFS = [(0.56, 0.57, 0.57), (0.50, 0.27, 0.19), (0.23, 0.38, 0.29), (0.37, 0.27, 0.21),
         (0.36, 0.42, 0.50), (0.42, 0.42, 0.44), (0.62, 0.62, 0.60), (0.55, 0.33, 0.22)]
WALLS = [(0.45, 0.32, 0.21), (0.46, 0.57, 0.66), (0.42, 0.56, 0.42), (0.80, 0.70, 0.42),
         (0.82, 0.80, 0.74), (0.31, 0.23, 0.17), (0.62, 0.44, 0.28), (0.70, 0.72, 0.70)]
_FIELD_MAT, _ROOF_MAT = 8, 8 + len(CROPS)
_MAT_A = np.array([_CLASS_A.get(k, (0, 0, 0)) for k in range(8)] + [c[2] for c in CROPS] + ROOFS, dtype=F32).T.copy()
_MAT_B = np.array([_CLASS_B.get(k, (0, 0, 0)) for k in range(8)] + [c[3] for c in CROPS] + ROOFS, dtype=F32).T.copy()
_WALLS = np.array(WALLS, dtype=F32).T.copy()
# brightness texture amplitude per material: (grain, blotches, ripples)
_MAT_TEXTURE = np.array(
    [(0, 0, 0), (0.35, 0.10, 0), (0, 0, 0), (0.15, 0.08, 0), (0.15, 0.06, 0),  # sky .. conifer
     (0.02, 0.06, 0.06), (0.25, 0.08, 0), (0.05, 0.03, 0)]                      # water, road, house
    + [(0.30, 0.07, 0)] * 3 + [(0.40, 0.10, 0)] + [(0.30, 0.07, 0)] * 4         # crops (ploughed: 4th)
    + [(0.04, 0.02, 0)] * len(ROOFS),
    dtype=F32).T.copy()
FLOWERS = np.array([(0.95, 0.95, 0.92), (0.95, 0.85, 0.25), (0.62, 0.52, 0.80)], dtype=F32)


def _materials(land: dict) -> np.ndarray:
    cls = land["cls"].astype(np.int32)
    mat = np.where(land["crop"] >= 0, _FIELD_MAT + land["crop"].astype(np.int32), cls)
    roof = _ROOF_MAT + (land["tone"] * len(ROOFS)).astype(np.int32)
    return np.where(cls == HOUSE, roof, mat)


def _line(pos: np.ndarray, period: float, width: float, footprint: np.ndarray) -> np.ndarray:
    """Coverage (0..1) of lines `width` wide every `period` m, box-filtered over a footprint."""
    dist = np.abs((pos * F32(1 / period)) % F32(1) - F32(0.5)) * F32(period)  # from the midline
    half = F32(width / 2) + footprint * F32(0.5)
    footprint = np.maximum(footprint, F32(1e-3))
    return np.clip((half - dist) / footprint, 0, 1) * np.minimum(F32(width) / footprint, 1)


def _field_pattern(land: dict, idx: np.ndarray, x, y, du, dv) -> tuple[np.ndarray, np.ndarray]:
    """For field points: (colour mix towards between-the-rows, brightness change).

    Rows, tramlines, swaths and windrows run along the field's direction. Each pattern's
    frequency in cycles per pixel (from the pixel's footprint du, dv) fades it out before it
    can alias.
    """
    pick = lambda v: v.take(idx) if isinstance(v, np.ndarray) else v
    du, dv = (pick(du[0]), pick(du[1])), (pick(dv[0]), pick(dv[1]))
    angle = land["angle"].take(idx)
    crop = land["crop"].take(idx)
    ca, sa = np.cos(angle), np.sin(angle)
    across = x * ca + y * sa                                # metres across the rows
    along = y * ca - x * sa
    fp_u = du[0] * ca + du[1] * sa
    fp_v = dv[0] * ca + dv[1] * sa
    footprint = np.maximum(np.sqrt(fp_u * fp_u + fp_v * fp_v), F32(1e-3))  # m per pixel across the rows
    spacing = _CROP_SPACING.take(crop)
    rows = F32(0.5) + F32(0.5) * np.cos(across * (F32(2 * np.pi) / spacing))
    rows_visible = np.clip(F32(1.5) - footprint / spacing * F32(3), 0, 1)  # gone by 0.5 cycles/px
    # the soil between rows shows only looking along them; across, the plants hide it
    dv_len = np.sqrt(dv[0] * dv[0] + dv[1] * dv[1]) + F32(1e-6)
    rows_visible = rows_visible * _smoothstep(0.3, 0.9, np.abs(dv[1] * ca - dv[0] * sa) / dv_len)
    tramline = _line(across, 18.0, 0.5, footprint)
    swath = np.cos(across * F32(2 * np.pi / 14.0)) * np.clip(F32(3) - footprint * F32(0.43), 0, 1)
    # mown clover and harvested stubble lie in windrows
    windrow = np.where((crop == CLOVER) | (crop == STUBBLE), _line(across, 7.0, 1.4, footprint), 0)
    # streaks along the rows, 1 m across and 8 m along (uneven growth, wheel tracks)
    streak = _lookup(_textures()["detail"], across, along * F32(0.12))[:, 1]
    mix = (1 - rows) * rows_visible * F32(0.8) + F32(0.1) + windrow * F32(0.8)
    bright = F32(0.07) * streak + F32(0.05) * swath - F32(0.18) * tramline
    return mix, bright


def _albedo(land: dict, x: np.ndarray, y: np.ndarray, world: dict,
            du: tuple, dv: tuple, blades: tuple | None = None) -> np.ndarray:
    """Textured ground albedo (3, n) at points (x, y) whose land cover is `land`.

    du, dv are the world displacements (x, y) of one pixel step right and down, scalars or
    per-point arrays: patterns finer than a pixel fade to their mean instead of aliasing.
    `blades` (texture coordinates: image column, and distance along the view) adds the grass
    blades and flowers that only the ground view's foreground resolves: streaks that stand
    upright in the image.
    """
    mat = _materials(land)
    cls = land["cls"]
    patch = land["patch"]
    # the material's colour mix: depth for water, patches for meadows, rows for fields, else tone
    t = np.where(cls == WATER, land["depth"],
                 np.where(cls == MEADOW, np.clip(F32(0.35) + F32(0.35) * patch, 0, 1), land["tone"]))
    # brightness texture: blotches, ripples, and grain
    far = _noise(world, "far", x, y)
    amp = _MAT_TEXTURE.take(mat, axis=1)
    bright = F32(1) + amp[1] * (far[:, 1] + F32(0.5) * patch) + amp[2] * far[:, 2]
    field = np.nonzero(land["crop"] >= 0)[0]
    if len(field):
        mix, change = _field_pattern(land, field, x.take(field), y.take(field), du, dv)
        t[field] = mix
        bright[field] += change
    a = _MAT_A.take(mat, axis=1)
    color = a + (_MAT_B.take(mat, axis=1) - a) * t

    grain = far[:, 0] * F32(0.5)
    if blades is not None:
        fine = np.clip(F32(1.5) - np.maximum(np.abs(du[0]) + np.abs(du[1]), np.abs(dv[0]) + np.abs(dv[1])) * F32(8), 0, 1)
        near = np.nonzero(fine > 0)[0]
        b = _lookup(_textures()["detail"], blades[0].take(near), blades[1].take(near))
        fine = fine.take(near)
        grain[near] += (b[:, 0] * F32(0.5) + b[:, 1] * F32(0.3) - grain.take(near)) * fine
        # flowers in the meadow's flowering patches: rare bright specks near the camera
        flowering = np.clip(patch.take(near), 0, 1)
        flower = (cls.take(near) == MEADOW) & (b[:, 0] > F32(2.3) - F32(0.5) * flowering) & (fine > 0.3)
        if flower.any():
            kind = (np.abs(b[flower, 3]) * 3).astype(np.int32) % 3
            color[:, near[flower]] = FLOWERS.T.take(kind, axis=1)
    bright += amp[0] * grain
    return color * np.maximum(bright, F32(0.2))


# --- shooting conditions: date, sun, sky, camera tilt ----------------------------------------

SKIES = ("clear", "cumulus", "overcast")


def _sun_position(when: datetime.datetime, lat: float, lon: float) -> tuple[float, float]:
    """Sun (elevation, azimuth clockwise from north) in radians, good to about a degree."""
    day = when.timetuple().tm_yday
    declination = math.radians(23.44) * math.sin(2 * math.pi * (284 + day) / 365)
    solar_hours = when.hour + when.minute / 60 - UTC_OFFSET_H + lon / 15
    hour_angle = math.radians(15 * (solar_hours - 12))
    phi = math.radians(lat)
    elevation = math.asin(math.sin(phi) * math.sin(declination)
                          + math.cos(phi) * math.cos(declination) * math.cos(hour_angle))
    azimuth = math.atan2(math.sin(hour_angle),
                         math.cos(hour_angle) * math.sin(phi) - math.tan(declination) * math.cos(phi))
    return elevation, (azimuth + math.pi) % (2 * math.pi)


def _conditions(seed: int, sky_seed: int) -> dict:
    """Everything about a shot that is not where it stands: time, sun, sky, camera tilt."""
    rng = np.random.default_rng([seed, sky_seed, 4242])
    sky = SKIES[int(np.searchsorted([0.32, 0.8], rng.random(), side="right"))]
    day = datetime.date(int(rng.integers(2019, 2025)), 6, 1) + datetime.timedelta(days=int(rng.integers(0, 92)))
    minutes = int(rng.integers(8 * 60, 19 * 60 + 30))
    when = datetime.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60,
                             tzinfo=datetime.timezone(datetime.timedelta(hours=UTC_OFFSET_H)))
    sun_elevation, sun_azimuth = _sun_position(when, ORIGIN_LAT, ORIGIN_LON)
    jitter = rng.uniform(-1, 1, 8).astype(F32)
    if sky == "overcast":
        zenith = np.array([0.60, 0.62, 0.66], F32) + F32(0.05) * jitter[0]
        horizon = np.array([0.80, 0.81, 0.82], F32) + F32(0.04) * jitter[1]
        ambient, direct, visibility = 0.95, 0.0, 1800 + 700 * jitter[2]
    else:
        zenith = np.array([0.26, 0.45, 0.80], F32) + np.array([0.04, 0.05, 0.04], F32) * jitter[0]
        horizon = np.array([0.72, 0.80, 0.90], F32) + F32(0.04) * jitter[1]
        ambient, direct, visibility = 0.50, 0.72, 4000 + 1500 * jitter[2]
    return {
        "sky": sky, "taken_at": when.isoformat(), "sun_elevation": sun_elevation, "sun_azimuth": sun_azimuth,
        "zenith": zenith, "horizon": horizon, "ambient": F32(ambient), "direct": F32(direct),
        "visibility": F32(visibility),
        "cover": F32({"clear": 0.0, "cumulus": rng.uniform(0.25, 0.6), "overcast": 1.0}[sky]),
        "cirrus": F32(rng.uniform(0, 0.5) if sky == "clear" else 0.0),
        "cloud_offset": rng.uniform(0, 1e5, 2),
        "pitch": math.radians(rng.uniform(-2.0, 6.0)),       # camera tilted up: horizon lower
        "exposure": F32(rng.uniform(0.92, 1.08)),
        # the satellite passed at another time: late morning, clear, its own colour balance
        "tile_sun_elevation": math.radians(rng.uniform(40, 56)),
        "tile_sun_azimuth": math.radians(rng.uniform(140, 200)),
        "tile_gain": (1 + 0.05 * rng.uniform(-1, 1, 3) + 0.06 * rng.uniform(-1, 1)).astype(F32)[:, None],
    }


CLOUD_HEIGHT = 1500.0  # m


def _sky(elevation: np.ndarray, azimuth: np.ndarray, cond: dict, world: dict,
         x0: float, y0: float) -> np.ndarray:
    """Sky colour (3, n) for view directions (radians), seen from (x0, y0)."""
    e = np.clip(elevation, 0, np.pi / 2).astype(F32)
    color = cond["horizon"][:, None] + (cond["zenith"] - cond["horizon"])[:, None] * (1 - np.exp(-e * F32(2.8)))
    se, sa = cond["sun_elevation"], cond["sun_azimuth"]
    cos_sun = np.sin(e) * F32(math.sin(se)) + np.cos(e) * F32(math.cos(se)) * np.cos(azimuth - F32(sa))
    if cond["sky"] != "overcast":  # glow around the sun, brighter near the horizon
        color = color + (np.exp((cos_sun - 1) * F32(12)) * F32(0.35) + np.exp((cos_sun - 1) * F32(300)) * F32(0.8))
    if cond["cover"] > 0 or cond["cirrus"] > 0:
        # clouds on a plane: directions near the horizon reach it far away, so clouds shrink there
        dist = F32(CLOUD_HEIGHT) / np.maximum(np.tan(e), F32(0.04))
        cx = F32(x0 + cond["cloud_offset"][0]) + np.sin(azimuth).astype(F32) * dist
        cy = F32(y0 + cond["cloud_offset"][1]) + np.cos(azimuth).astype(F32) * dist
        c = _noise(world, "sky", cx, cy)
        fade = _smoothstep(0.02, 0.12, e)
        if cond["sky"] == "overcast":
            color = color * (F32(1) + F32(0.07) * c[:, 1] + F32(0.03) * c[:, 0])
        else:
            # cumulus: thresholded noise with soft edges, lit from the sun's side, grey bases
            level = F32(1.4 - 2.0 * cond["cover"])
            density = _smoothstep(0, 0.7, c[:, 0] + F32(0.35) * c[:, 3] - level) * fade
            # thick cloud is grey (its base in its own shadow), thin edges and the sunward side white
            thick = _smoothstep(0.4, 1.6, c[:, 0] - level)
            lit = np.clip(F32(1.0) - F32(0.3) * thick + F32(0.08) * c[:, 3] + F32(0.1) * cos_sun, 0.6, 1.05)
            cloud = np.array([0.97, 0.97, 0.98], F32)[:, None] * lit + np.array([0, 0, 0.03], F32)[:, None]
            color = color + (cloud - color) * density
            cirrus = _smoothstep(0.3, 1.8, c[:, 2]) * fade * cond["cirrus"]
            color = color + (F32(0.95) - color) * cirrus * F32(0.6)
    return color


# --- the satellite tile ----------------------------------------------------------------------

def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) display-space floats -> (H, W, 3) uint8."""
    return np.ascontiguousarray(np.clip(rgb * F32(255) + F32(0.5), 0, 255).astype(np.uint8).transpose(1, 2, 0))


def _render_tile(x_m: float, y_m: float, cfg: WorldConfig, cond: dict) -> np.ndarray:
    """The top-down tile centred on (x_m, y_m), north up: (tile_size, tile_size, 3) uint8."""
    world = _world(cfg.seed)
    mpp = cfg.meters_per_pixel
    n = cfg.tile_size
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


# --- the ground view -------------------------------------------------------------------------

def _depth_steps(cfg: WorldConfig) -> np.ndarray:
    """Distances (along the view axis) of the march: geometric, ~5% apart at 128 px.

    The nearest ground the camera sees is 2.3-2.9 m away (the bottom row, by the camera's tilt),
    and placement keeps trees and houses further than that, so the march starts at 2 m.
    """
    ratio = 1 + 6.8 / cfg.view_size
    start = 2.0
    count = int(math.ceil(math.log(cfg.max_depth_m / start) / math.log(ratio))) + 1
    return (start * ratio ** np.arange(count)).astype(F32)


def _paint_crowns(lone, land, d, top_row, ground_row, horizon, f, eye, x_m, y_m, ray_x, ray_y, s,
                  size, steps) -> np.ndarray:
    """The nearest lone-tree step covering each pixel (`steps` where none): a (size, size) array.

    A step inside a lone tree's crown covers the rows from the crown's top down to its underside;
    where the column's ray passes the trunk, also the rows of the trunk, down to the ground.
    Those row spans are expanded into pixels and the nearest step kept per pixel.
    """
    k, c = np.nonzero(lone)
    flat = k * size + c
    dk = d.take(k)
    ground = land["ground"].take(flat) - F32(eye)
    # the ray's distance from the trunk's axis (the column's ray is fwd + s * right)
    to_x = land["tree_x"].take(flat) - F32(x_m)
    to_y = land["tree_y"].take(flat) - F32(y_m)
    miss = np.abs(to_x * ray_y.take(c) - to_y * ray_x.take(c)) / np.sqrt(1 + s.take(c) ** 2)
    trunk = np.nonzero(miss < np.maximum(F32(0.16), F32(0.5) * dk / f))[0]  # at least half a pixel wide
    underside_row = horizon - f * (ground + land["base"].take(flat)) / dk
    trunk_top_row = horizon - f * (ground[trunk] + land["trunk_top"].take(flat[trunk])) / dk[trunk]
    tops = np.concatenate([top_row.ravel().take(flat), trunk_top_row])
    bottoms = np.concatenate([underside_row, ground_row.ravel().take(flat[trunk])])
    k, c = np.concatenate([k, k[trunk]]), np.concatenate([c, c[trunk]])
    first = np.maximum(np.ceil(tops - F32(0.5)), 0).astype(np.int64)
    last = np.minimum(np.floor(bottoms - F32(0.5)), size - 1).astype(np.int64)
    count = np.maximum(last - first + 1, 0)
    painted = np.full(size * size, steps, dtype=np.int64)
    total = int(count.sum())
    if total:
        rows = np.repeat(first - (np.cumsum(count) - count), count) + np.arange(total)
        np.minimum.at(painted, rows * size + np.repeat(c, count), np.repeat(k, count))
    return painted.reshape(size, size)


def _render_view(x_m: float, y_m: float, heading_deg: float, cfg: WorldConfig, cond: dict):
    """The ground view from eye height at (x_m, y_m), facing heading_deg (clockwise from north).

    Returns ((H, W, 3) uint8 image, (H, W) uint8 class map).
    """
    world = _world(cfg.seed)
    size = cfg.view_size
    f = F32(size / 2 / math.tan(math.radians(cfg.fov_deg) / 2))  # focal length, px
    horizon = F32(size / 2 + f * math.tan(cond["pitch"]))        # the horizon's row
    heading = math.radians(heading_deg)
    fwd = (F32(math.sin(heading)), F32(math.cos(heading)))
    right = (fwd[1], -fwd[0])
    s = (np.arange(size, dtype=F32) + F32(0.5) - F32(size / 2)) / f  # column offsets, tan of angle
    ray_x, ray_y = fwd[0] + s * right[0], fwd[1] + s * right[1]

    # march: every column samples the field at the same distances; the camera's own point is last
    d = _depth_steps(cfg)
    steps = len(d)
    px = np.append((F32(x_m) + d[:, None] * ray_x).ravel(), F32(x_m))
    py = np.append((F32(y_m) + d[:, None] * ray_y).ravel(), F32(y_m))
    coarse = np.append(np.repeat(d > 150, size), False)
    land = _land(px, py, cfg.seed, coarse)
    eye = float(land["ground"][-1]) + cfg.eye_height
    land = {k: v[:-1] for k, v in land.items()}
    ground = land["ground"].reshape(steps, size)
    height = land["height"].reshape(steps, size)
    lone = (land["base"] > 0).reshape(steps, size)       # a crown the view can see under
    top_row = horizon - f * (ground + height - F32(eye)) / d[:, None]
    ground_row = horizon - f * (ground - F32(eye)) / d[:, None]

    # front-to-back painter: a pixel shows the nearest step whose top reaches up to it. The
    # running minimum of the top rows is non-increasing along each column, so the first step
    # reaching row r is found by binary search; offsetting each column's keys by a large
    # constant searches all columns in one call. Lone trees' crowns float over the ground:
    # they are left out here (their steps count as bare ground) and painted below.
    solid_row = np.where(lone, ground_row, top_row)
    reach = np.minimum.accumulate(np.clip(solid_row, -1, size + 1), axis=0)
    span = F32(size + 4)
    keys = (-reach + np.arange(size, dtype=F32) * span).T.ravel()
    rows = np.arange(size, dtype=F32) + F32(0.5)
    queries = -rows[:, None] + np.arange(size, dtype=F32)[None, :] * span
    step = np.searchsorted(keys, queries.ravel()).reshape(size, size) - np.arange(size) * steps
    if lone.any():
        step = np.minimum(step, _paint_crowns(lone, land, d, top_row, ground_row, horizon, f, eye,
                                              x_m, y_m, ray_x, ray_y, s, size, steps))
    sky = step >= steps
    sample = np.minimum(step, steps - 1) * size + np.arange(size)  # flat index of the step
    classes = np.where(sky, SKY, land["cls"].take(sample)).astype(np.uint8)

    rgb = np.empty((3, size * size), dtype=F32)
    r = np.repeat(rows, size)
    col = np.tile(np.arange(size), size)
    flat_sample = sample.ravel()
    flat_sky = sky.ravel()
    dist = np.zeros(size * size, dtype=F32)  # distance along the view axis, for haze

    # sky pixels
    az_col = F32(heading) + np.arctan(s)
    elev = np.arctan2(horizon - rows[:, None], f * np.sqrt(1 + s * s)[None, :]).ravel()
    isky = np.nonzero(flat_sky)[0]
    if len(isky):
        rgb[:, isky] = _sky(elev[isky], az_col.take(col[isky]), cond, world, x_m, y_m)

    # object pixels (above their step's ground line): tree and house walls
    hit = ~flat_sky
    on_wall = hit & (r < ground_row.ravel().take(flat_sample)) & (land["height"].take(flat_sample) > 0)
    iw = np.nonzero(on_wall)[0]
    sun_el, sun_az = cond["sun_elevation"], cond["sun_azimuth"]
    if len(iw):
        k = flat_sample[iw]
        dk = d.take(k // size)
        cls = land["cls"].take(k)
        h = land["height"].take(k)
        z = F32(eye) - land["ground"].take(k) - (r[iw] - horizon) * dk / f  # height of the pixel above ground
        frac = np.clip(z / h, 0, 1)
        tone = land["tone"].take(k)
        tree = cls != HOUSE
        mat = np.where(tree, cls, _ROOF_MAT + (tone * len(ROOFS)).astype(np.int32))
        a = _MAT_A.take(mat, axis=1)
        color = a + (_MAT_B.take(mat, axis=1) - a) * tone
        wall = _WALLS.take((tone * 7.31 % 1 * len(WALLS)).astype(np.int32), axis=1)
        color = np.where(tree | (z > HOUSE_WALL), color, wall)
        # leaves: clumps and gaps on the vertical surface (position across the view, height),
        # the texture coarsening with distance as a pixel covers more of it
        across = px.take(k) * right[0] + py.take(k) * right[1]
        grow = F32(1) + dk * F32(1 / 40)
        leaves = _lookup(_textures()["detail"], across / (F32(0.1) * grow), z / (F32(0.1) * grow))
        clumps = _smoothstep(-0.9, 0.9, leaves[:, 3] + F32(0.6) * leaves[:, 1])
        # lower in the canopy is in shade; a stand is darkest at its foot, among the trunks
        clumps = clumps * F32(0.7) + F32(0.3) * _smoothstep(-1.2, 1.2, leaves[:, 0])
        depth_shade = F32(0.6) + F32(0.4) * frac ** F32(0.7)
        # houses: the roof above the eaves is a little darker; windows on the walls
        window = ((across % F32(3.2)) > F32(1.9)) & (z > F32(1.0)) & (z < F32(2.1))
        shade = np.where(tree, (F32(0.5) + F32(0.6) * clumps) * depth_shade,
                         np.where(z > HOUSE_WALL, F32(0.8), np.where(window, F32(0.35), F32(1.0))))
        # the trunks under lone crowns: white birch bark with dark marks, or grey-brown
        trunk = z < land["trunk_top"].take(k) + F32(0.05)
        if trunk.any():
            birch = tone < 0.6
            bark = np.where(birch, np.where(leaves[:, 0] > 0.8, F32(0.25), F32(0.78)), F32(0.33))
            color = np.where(trunk, bark * np.array([1.0, 0.98, 0.92], F32)[:, None], color)
            shade = np.where(trunk, F32(0.8), shade)
        # walls face the camera: lit when the sun is behind it, in their own shade against it
        toward_sun = ray_x.take(col[iw]) * F32(math.sin(sun_az)) + ray_y.take(col[iw]) * F32(math.cos(sun_az))
        facing = np.maximum(F32(0), -toward_sun)
        light = cond["ambient"] + cond["direct"] * (F32(0.25 * math.sin(sun_el)) + F32(0.75 * math.cos(sun_el)) * facing)
        rgb[:, iw] = color * shade * light
        dist[iw] = dk

    # ground pixels: textured at the exact point each pixel sees
    ig = np.nonzero(hit & ~on_wall)[0]
    if len(ig):
        k = flat_sample[ig]
        kd = k // size
        dk = d.take(kd)
        below = r[ig] - horizon
        exact = F32(f) * (F32(eye) - land["ground"].take(k)) / np.maximum(below, F32(1e-3))
        near_end = np.where(kd > 0, d.take(np.maximum(kd - 1, 0)), F32(1.0))
        dg = np.where(below > 0.05, np.clip(exact, near_end, dk), dk)
        cols = col[ig]
        gx = F32(x_m) + dg * ray_x.take(cols)
        gy = F32(y_m) + dg * ray_y.take(cols)
        sub = {name: v.take(k) for name, v in land.items()}
        sub["cls"] = sub["floor"]  # under a lone tree: the grass it stands in
        classes.ravel()[ig] = sub["cls"]
        # a pixel step right moves dg/f sideways; a step down moves dg^2/(f * eye height) nearer
        across_step = dg / f
        down_step = dg * dg / (f * np.maximum(F32(eye) - sub["ground"], F32(0.5)))
        du = (across_step * right[0], across_step * right[1])
        dv = (down_step * fwd[0], down_step * fwd[1])
        blade_uv = (cols.astype(F32) * F32(200 / size) + F32(x_m + y_m), (gx * fwd[0] + gy * fwd[1]) * F32(1 / 0.25))
        color = _albedo(sub, gx, gy, world, du, dv, blades=blade_uv)
        shadow = np.where(sub["base"] > 0, F32(0.45), F32(1))  # in the shade of a lone crown
        light = cond["ambient"] + cond["direct"] * F32(math.sin(sun_el)) * shadow
        rgb[:, ig] = color * light
        dist[ig] = dg

        # water mirrors the scene behind it (the image row mirrored about the horizon) and the
        # sky; more at grazing angles, rippled
        iwat = np.nonzero(sub["cls"] == WATER)[0]
        if len(iwat):
            pix = ig[iwat]
            ripple = _noise(world, "near", gx[iwat], gy[iwat], scale=1.0 + float(np.median(dg[iwat])) / 20)[:, 2]
            depression = below[iwat]
            mirror = F32(2) * horizon - r[pix] + ripple * (F32(0.4) + depression * F32(0.08))
            mrow = np.clip(np.floor(mirror), 0, size - 1).astype(np.int64)
            src = mrow * size + col[pix]
            from_image = (mirror >= 0) & (classes.ravel().take(src) != WATER)
            mirrored_elev = np.arctan2(depression, f * np.sqrt(1 + s.take(col[pix]) ** 2))
            sky_there = _sky(mirrored_elev, az_col.take(col[pix]), cond, world, x_m, y_m)
            reflected = np.where(from_image, rgb[:, src], sky_there)
            grazing = depression / np.sqrt(depression * depression + f * f)  # sine of the depression
            fresnel = F32(0.25) + F32(0.7) * (1 - grazing) ** 6
            rgb[:, pix] = rgb[:, pix] * (1 - fresnel) + reflected * F32(0.9) * fresnel

    # aerial perspective: distant things fade into the horizon's colour (sky pixels have
    # distance 0 and stay as they are)
    haze_color = _sky(np.full(size, 0.01, F32), az_col, cond, world, x_m, y_m)
    rgb = rgb.reshape(3, size, size)
    fog = (1 - np.exp(dist * -(1 / cond["visibility"]))).reshape(size, size)
    rgb += (haze_color[:, None, :] - rgb) * fog
    rgb *= cond["exposure"]
    img = _to_uint8(rgb)
    return img, classes


# --- samples ---------------------------------------------------------------------------------

def render_pair(x_m: float, y_m: float, heading_deg: float, cfg: WorldConfig, sky_seed: int) -> dict:
    """The satellite tile and the ground view at one place: {tile, view, view_classes}.

    `sky_seed` picks the shooting conditions (date and time, sun, sky, camera tilt); keep it
    fixed to walk along a path under one sky.
    """
    return _render(x_m, y_m, heading_deg, cfg, _conditions(cfg.seed, sky_seed))


def _render(x_m: float, y_m: float, heading_deg: float, cfg: WorldConfig, cond: dict) -> dict:
    view, classes = _render_view(x_m, y_m, heading_deg, cfg, cond)
    return {"tile": _render_tile(x_m, y_m, cfg, cond), "view": view, "view_classes": classes}


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

    Keys: tile, view, view_classes, photo_id, x_m, y_m, lat, lon, heading, split, sky,
    taken_at, sky_seed. The same (cfg, index) always gives the same sample.
    """
    meta = _describe(index, cfg)
    cond = meta.pop("conditions")
    return {**_render(meta["x_m"], meta["y_m"], meta["heading"], cfg, cond), **meta}


# --- the dataset folder ----------------------------------------------------------------------

def _paths(index: int) -> dict[str, str]:
    name = manifest.safe_name(photo_id(index))
    return {"photo": f"photos/{name}.jpg", "satellite": f"satellite/{name}.png", "classes": f"classes/{name}.png"}


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
        "split": meta["split"],
    }
    return photo, pair_row, files


def _write_files(files: dict) -> None:
    for path, data in files.items():
        atomic_write_bytes(path, data)


def _make_and_write(job) -> tuple[dict, dict]:
    photo, pair_row, files = _make_sample(*job)
    _write_files(files)
    return photo, pair_row


def generate(out_dir, n: int, cfg: WorldConfig | None = None, workers: int = 1, progress: bool = True) -> Path:
    """Write samples 0..n-1 of the world into a dataset folder; return the folder.

    Resumable: samples whose files exist are kept, and the manifests are rewritten at the end
    from all n samples. A folder made with another config is refused rather than mixed.
    With one worker, rendering runs in this process and a few threads write the files: each
    atomic write waits ~ms on fsync, which would otherwise double the time.
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

    jobs = [(i, cfg, out) for i in range(n)]
    rows = []
    with tqdm(total=n, desc="world", unit="pair", disable=not progress) as bar:
        if workers > 1:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for row in pool.imap(_make_and_write, jobs, chunksize=8):
                    rows.append(row)
                    bar.update()
        else:
            with ThreadPoolExecutor(max_workers=4) as writer:
                pending = deque()
                for job in jobs:
                    photo, pair_row, files = _make_sample(*job)
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

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="data/world", help="dataset folder (default data/world)")
    parser.add_argument("--n", type=int, default=3000, help="number of pairs (default 3000)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
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
