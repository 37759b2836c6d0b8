"""The ground view: the land field seen from eye height through a pinhole camera."""

from __future__ import annotations

import math

import numpy as np

from .colour import _MAT_A, _MAT_B, _ROOF_MAT, _WALLS, ROOFS, WALLS, _albedo, _to_uint8
from .config import WorldConfig
from .land import HOUSE, HOUSE_WALL, SKY, WATER, _land, _world
from .noise import F32, _lookup, _noise, _smoothstep, _textures
from .sky import _sky


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
