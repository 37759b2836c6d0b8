"""Colour: each point's albedo from its land cover (materials, crops, roofs, field patterns)."""

from __future__ import annotations

import numpy as np

from .land import (CLOVER, CROPS, FIELD, FOREST_CONIF, FOREST_DECID, HOUSE, MEADOW, ROAD, STUBBLE, WATER,
                   _CROP_SPACING)
from .noise import F32, _lookup, _noise, _smoothstep, _textures

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


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) display-space floats -> (H, W, 3) uint8."""
    return np.ascontiguousarray(np.clip(rgb * F32(255) + F32(0.5), 0, 255).astype(np.uint8).transpose(1, 2, 0))
