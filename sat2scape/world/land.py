"""The land-cover and height field: what is where, and how tall it stands.

`_land(x, y, seed)` is the one field both renderers (tile.py, view.py) look at; `landcover_at`
is its public face. `_world(seed)` holds a world's constants: each noise lookup's transform and
the random tables of Voronoi cells and tree sites.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .config import WorldConfig
from .noise import _LOOKUPS, _N, F32, _noise, _smoothstep, _textures

# --- classes ---------------------------------------------------------------------------------

SKY, MEADOW, FIELD, FOREST_DECID, FOREST_CONIF, WATER, ROAD, HOUSE = range(8)
CLASS_NAMES = ("sky", "meadow", "field", "forest_decid", "forest_conif", "water", "road", "house")
# Display colours of the classes; also the palette of the class-map PNGs.
CLASS_COLORS = np.array([
    (135, 190, 235), (120, 190, 80), (230, 200, 90), (40, 130, 40),
    (20, 70, 40), (40, 90, 200), (170, 140, 110), (200, 60, 50),
], dtype=np.uint8)

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
