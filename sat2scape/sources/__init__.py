"""Data sources: geotagged photos (VK, Wikimedia Commons) and satellite tiles (Yandex, XYZ/WMTS).

    http.py          sessions, rate limits, retries, safe image downloads (every request goes here)
    photos.py        `python -m sat2scape photos vk|commons`: resumable search + download into photos.csv
    vk.py            VK photos.search over a grid of points x time windows
    commons.py       Wikimedia Commons geosearch, free licences only
    satellite.py     `python -m sat2scape satellite`: a tile per kept photo into pairs.csv
    fake_servers.py  local stand-ins for all of the above, for tests, benchmarks and SMOKE notebooks

This file holds what the sources share besides HTTP: the bounding box, the grid of search points
that covers it, and the clean-up a collector does after a crash before it resumes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

EARTH_RADIUS_M = 6371008.8
KM_PER_DEG_LAT = 111.32


class BBox(NamedTuple):
    south: float
    west: float
    north: float
    east: float

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east


def parse_bbox(text: str) -> BBox:
    """`"S,W,N,E"` in degrees -> BBox, with an error that says which number is wrong."""
    try:
        south, west, north, east = (float(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(f"--bbox {text!r}: expected four numbers S,W,N,E, e.g. 55.6,37.4,55.9,37.8") from None
    if not (-90 <= south < north <= 90):
        raise ValueError(f"--bbox {text!r}: need -90 <= south < north <= 90")
    if not (-180 <= west < east <= 180):
        raise ValueError(f"--bbox {text!r}: need -180 <= west < east <= 180 "
                         f"(boxes across the antimeridian are not supported)")
    return BBox(south, west, north, east)


def grid(bbox: BBox, spacing_km: float) -> tuple[list[tuple[float, float]], float]:
    """Centres of cells about `spacing_km` on a side that tile the box (row by row), and the radius
    in metres of the circle around a centre that covers its whole cell (half the cell's diagonal)."""
    if spacing_km <= 0:
        raise ValueError(f"grid spacing must be positive, got {spacing_km} km")
    mid_lat = (bbox.south + bbox.north) / 2
    km_per_deg_lon = max(1e-6, KM_PER_DEG_LAT * math.cos(math.radians(mid_lat)))
    rows = max(1, math.ceil((bbox.north - bbox.south) * KM_PER_DEG_LAT / spacing_km))
    cols = max(1, math.ceil((bbox.east - bbox.west) * km_per_deg_lon / spacing_km))
    dlat, dlon = (bbox.north - bbox.south) / rows, (bbox.east - bbox.west) / cols
    centres = [(round(bbox.south + (r + 0.5) * dlat, 6), round(bbox.west + (c + 0.5) * dlon, 6))
               for r in range(rows) for c in range(cols)]
    return centres, 500 * math.hypot(dlat * KM_PER_DEG_LAT, dlon * km_per_deg_lon)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def clean_after_crash(dataset, patterns: list[str]) -> None:
    """Undo what a `kill -9` can leave behind, before a stage resumes: temp files of unfinished
    atomic writes (`.<name>.<random>.tmp`, see files.atomic_write) are removed, and a torn last
    line of a state/*.jsonl log is ended, so that the next appended line does not glue onto it.

    `patterns` are globs under the dataset naming the calling stage's own files only, so that a
    stage never touches another stage's files while they are being written.
    """
    for pattern in patterns:
        for path in Path(dataset).glob(pattern):
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
            elif path.suffix == ".jsonl":
                with open(path, "rb+") as f:
                    size = f.seek(0, os.SEEK_END)
                    if size:
                        f.seek(size - 1)
                        if f.read(1) != b"\n":
                            f.write(b"\n")
