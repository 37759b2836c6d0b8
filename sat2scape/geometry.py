"""Tile-to-view geometry: turning a tile to the camera's heading, and inverse perspective mapping.

A satellite tile is north-up, 1 m/px by default, centred on the photographer. A ground photo
looks along its heading (degrees clockwise from north). Two maps connect them:

1. **Turning.** Rotate the tile so that the heading points up. The corners of a turned square
   reach sqrt(2) times further than its edges, so the source must be wider than the result:
   every source (the world, Yandex, XYZ) fetches a tile of `wide_tile_size(n)` around the same
   point, and `turn_tiles` turns and crops it to n x n. Fetch wider, turn, crop.

2. **Inverse perspective mapping (IPM).** For flat ground and a pinhole camera at height h, an
   image row at angle a below the horizon sees the ground at forward distance d = h / tan(a),
   and the column's offset from the centre gives the lateral offset x = d (u - c_x) / f. In a
   heading-up tile (camera at the centre) that ground point is the pixel (c + x, c - d), so the
   tile can be resampled into the view's frame: `ipm_grid` gives the sampling grid and
   `warp_to_view` applies it. Rows above the horizon, and ground beyond the tile's edge, have no
   source; the mask says which view pixels were filled.

`Camera()` is the built-in world's camera (world.WorldConfig: 70 degrees wide, eye at 1.7 m)
at its mean tilt (the world draws the pitch from -2..6 degrees, so the horizon moves by about
+-6 rows around row 67 of 128); real photos are assumed to be taken level-ish by the same rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def wide_tile_size(tile_size: int) -> int:
    """The side of a tile that can be turned by any angle and cropped to tile_size with no empty
    corner: tile_size * sqrt(2), rounded up to the same parity so that both share a centre."""
    wide = math.ceil(tile_size * math.sqrt(2))
    return wide + (wide - tile_size) % 2


def centre_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size window of N x C x H x W images."""
    h, w = images.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top:top + size, left:left + size]


def turn_tiles(tiles: torch.Tensor, headings_deg: torch.Tensor, size: int) -> torch.Tensor:
    """Turn north-up tiles so that each one's heading points up, and crop the centre size x size.

    `tiles` is N x C x W x W (uint8 or float; W >= wide_tile_size(size) for clean corners),
    `headings_deg` N degrees clockwise from north; NaN (unknown) leaves that tile north-up.
    Returns the same dtype. Bilinear, with the pixel grid's centre as the pivot.
    """
    n, _, h, w = tiles.shape
    if h != w:
        raise ValueError(f"tiles must be square, got {h}x{w}")
    headings = torch.as_tensor(headings_deg, dtype=torch.float64).reshape(n)
    theta = torch.deg2rad(torch.nan_to_num(headings, nan=0.0))
    if bool((theta == 0).all()):
        return centre_crop(tiles, size)
    # An output pixel (dx to the right, dy up, in pixels from the centre) of the turned tile lies
    # dy along the heading and dx to its right: east = dx cos t + dy sin t, north = dy cos t - dx sin t.
    # In grid_sample's normalised coordinates (x right, y down, +-1 at the edges): the output's
    # (xo, yo) is (dx, -dy) * 2/size and the source's is (east, -north) * 2/w.
    cos, sin = torch.cos(theta), torch.sin(theta)
    scale = size / w
    affine = torch.zeros(n, 2, 3, dtype=torch.float64)
    affine[:, 0, 0], affine[:, 0, 1] = cos * scale, -sin * scale
    affine[:, 1, 0], affine[:, 1, 1] = sin * scale, cos * scale
    grid = F.affine_grid(affine.float(), [n, tiles.shape[1], size, size], align_corners=False)
    source = tiles.float() if not tiles.is_floating_point() else tiles
    out = F.grid_sample(source, grid.to(tiles.device, source.dtype), mode="bilinear",
                        padding_mode="border", align_corners=False)
    if not tiles.is_floating_point():
        out = out.round().clamp(0, 255).to(tiles.dtype)
    return out


@dataclass(frozen=True)
class Camera:
    """A level-ish pinhole camera over flat ground (defaults: the built-in world's, mean tilt)."""

    view_size: int = 128         # square view, px
    fov_deg: float = 70.0        # horizontal field of view
    eye_height: float = 1.7      # m above the ground
    pitch_deg: float = 2.0       # tilted up: the horizon lies below the centre row

    @property
    def focal(self) -> float:
        return self.view_size / 2 / math.tan(math.radians(self.fov_deg) / 2)

    @property
    def horizon_row(self) -> float:
        """The horizon's row (continuous, rows counted from the top edge)."""
        return self.view_size / 2 + self.focal * math.tan(math.radians(self.pitch_deg))


def ipm_grid(camera: Camera = Camera(), tile_size: int = 128, meters_per_pixel: float = 1.0,
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse perspective map from a heading-up tile into the view's frame.

    Returns (grid, mask): grid is 1 x H x W x 2 in grid_sample's normalised tile coordinates,
    mask is H x W bool, True where the view pixel sees flat ground inside the tile.
    """
    n = camera.view_size
    f, horizon = camera.focal, camera.horizon_row
    rows = torch.arange(n, dtype=torch.float64) + 0.5
    cols = torch.arange(n, dtype=torch.float64) + 0.5
    below = (rows - horizon).clamp_min(1e-6)[:, None]            # px below the horizon
    forward = camera.eye_height * f / below                       # m ahead, along the view axis
    lateral = forward * (cols[None, :] - n / 2) / f                # m to the right
    half = tile_size * meters_per_pixel / 2
    # normalised tile coordinates: x right (east of a heading-up tile = the camera's right), y down
    gx = lateral / half
    gy = (-forward / half).expand_as(gx)
    mask = (rows[:, None] > horizon) & (gx.abs() <= 1) & (gy.abs() <= 1)
    grid = torch.stack([gx, gy], dim=-1).float().unsqueeze(0)
    return grid, mask


def warp_to_view(turned_tiles: torch.Tensor, camera: Camera = Camera(),
                 meters_per_pixel: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Heading-up tiles (N x C x S x S, float) warped into the view's frame by `ipm_grid`:
    (N x C x H x W views, zero where unfilled; H x W bool mask of the filled pixels)."""
    grid, mask = ipm_grid(camera, turned_tiles.shape[-1], meters_per_pixel)
    grid = grid.to(turned_tiles.device, turned_tiles.dtype).expand(len(turned_tiles), -1, -1, -1)
    views = F.grid_sample(turned_tiles, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    mask = mask.to(turned_tiles.device)
    return views * mask, mask
