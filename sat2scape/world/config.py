"""The world's settings and fixed constants: WorldConfig, where the world lies, its version."""

from __future__ import annotations

from dataclasses import dataclass

ORIGIN_LAT, ORIGIN_LON = 57.6, 39.9  # the world's centre: countryside near Yaroslavl
METERS_PER_DEG_LAT = 111_320.0
UTC_OFFSET_H = 3                     # Moscow time
# Bump when the same config would write different bytes. 2: the tile is the centre crop of one
# wider render (satellite_wide/), so its edges changed (shadows from beyond, blur across them).
WORLD_VERSION = 2


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
