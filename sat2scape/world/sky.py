"""Shooting conditions (date, sun, sky, camera tilt, the satellite's pass) and the sky's colour."""

from __future__ import annotations

import datetime
import math

import numpy as np

from .config import ORIGIN_LAT, ORIGIN_LON, UTC_OFFSET_H
from .noise import F32, _noise, _smoothstep

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
