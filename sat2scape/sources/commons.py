"""Wikimedia Commons geotagged files (contracts: shared/docs/api_contracts.md, section 4.3).

One request per grid point: `generator=geosearch` (ggscoord, ggsradius 10..10000 m, ggslimit,
ggsnamespace=6 for File: pages) with `prop=imageinfo|coordinates` (iiprop=url|size|mime|extmetadata,
iiurlwidth for a ~1024 px copy). The API may spread one answer over several replies with
`continue`; they are merged by page id. Geosearch itself does not page, so a point that returns
`ggslimit` files may have more: its circle is split into four half-radius circles, recursively.

Records take the camera location (the primary coordinates), the licence (`LicenseShortName`),
the author (`Artist`, HTML stripped) and the camera heading (EXIF `GPSImgDirection`, see below).
By default only free licences are kept: CC0, public domain, CC BY and CC BY-SA, any version or
port; CC BY-NC/ND, GFDL-only and the rest are dropped.
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections import Counter
from typing import Iterator

from . import KM_PER_DEG_LAT, BBox, grid
from .http import Http, SourceError, parse_heading

log = logging.getLogger(__name__)

API_URL = "https://commons.wikimedia.org/w/api.php"
MIN_RADIUS_M, MAX_RADIUS_M = 10, 10000
PHOTO_MIMES = {"image/jpeg", "image/png", "image/webp"}
FREE_LICENCE = re.compile(r"^(cc0( 1\.0)?|cc zero|public domain|pd\b.*|cc by(-sa)?( \d(\.\d)?)?( [a-z-]+)?)$", re.I)
METADATA = "LicenseShortName|LicenseUrl|Artist|DateTimeOriginal|DateTime|GPSImgDirection|GPSImgDirectionRef"

# The camera heading on Commons: what the API offers (tags as in shared/docs/api_contracts.md).
# - [V] GeoData has no heading. `prop=coordinates` takes coprop=type|name|dim|country|region|globe
#   only (GeoData includes/Api/QueryCoordinates.php), and the {{#coordinates:}} parser function
#   keeps type, scale, dim, name, region and globe of the geohack string, nothing else
#   (includes/CoordinatesParserFunction.php), so {{Location|lat|lon|heading:NN}} loses it there.
# - [V] extmetadata carries every EXIF field of the uploaded original, source "file-metadata"
#   (MediaWiki FormatMetadata::getExtendedMetadataFromFile + ExifBitmapHandler::getCommonMetaArray),
#   so GPSImgDirection and GPSImgDirectionRef come back when the camera wrote them and they are
#   listed in iiextmetadatafilter. MediaWiki keeps EXIF rationals as "num/den" text (Exif::isRational);
#   that the API returns exactly that text is [U], so parse_heading also takes a plain number.
# - [3P] The heading typed into {{Location|...|heading:NN}} is stored in structured data as
#   qualifier P7787 (heading) of P1259 (coordinates of the point of view) (a WikiShootMe issue
#   thread). Reading it needs one more API (wbgetentities on M<pageid>); not done here.
# - [U] Whether thumbnails (thumburl) keep EXIF: the downloaded file's own EXIF is only a fallback.


def strip_html(text: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text or "")).split())


def is_free(licence: str) -> bool:
    return bool(FREE_LICENCE.match(" ".join(licence.replace("_", " ").split())))


def iso_date(text: str) -> str:
    """The first `YYYY-MM-DD[ HH:MM[:SS]]` in a free-text date, as ISO 8601; "" if there is none."""
    m = re.search(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?", strip_html(text))
    if not m:
        return ""
    y, mo, d, h, mi, s = m.groups()
    return f"{y}-{mo}-{d}" + (f"T{h}:{mi}:{s or '00'}" if h else "")


class CommonsSource:
    """Searches one bounding box; used by photos.collect()."""

    name = "commons"

    def __init__(self, bbox: BBox, grid_km: float = 2.0, limit: int = 500, thumb_width: int = 1024,
                 free_only: bool = True, base_url: str = API_URL, rate: float = 2.0, retries: int = 4,
                 backoff: float = 1.0, timeout: float = 20.0):
        self.bbox = bbox
        self.points, cell_radius = grid(bbox, grid_km)
        if cell_radius > MAX_RADIUS_M:
            raise ValueError(f"--grid-km {grid_km}: a cell needs a {cell_radius:.0f} m radius, "
                             f"over the API's {MAX_RADIUS_M} m; use --grid-km 14 or less")
        self.radius = max(MIN_RADIUS_M, math.ceil(cell_radius))
        if not 1 <= limit <= 5000:
            raise ValueError(f"--limit {limit}: ggslimit must be 1..500 (5000 for bots)")
        self.limit, self.thumb_width, self.free_only = limit, thumb_width, free_only
        self.base_url = base_url
        self.http = Http(rate=rate, timeout=timeout, retries=retries, backoff=backoff)
        self.dropped = Counter()

    def __repr__(self) -> str:
        return f"CommonsSource(bbox={tuple(self.bbox)}, points={len(self.points)}, radius={self.radius})"

    def units(self) -> list[tuple[float, float, int]]:
        return [(lat, lon, self.radius) for lat, lon in self.points]

    def search(self, unit: tuple[float, float, int], done: set[str]) -> Iterator[tuple[str, list[dict]]]:
        """Yield (key, records) for this circle, after its four quarters if it came back full."""
        lat, lon, radius = unit
        key = f"{lat:.6f},{lon:.6f}:{radius}"
        if key in done:
            return
        pages = self.geosearch(lat, lon, radius)
        if len(pages) >= self.limit:
            if radius // 2 >= MIN_RADIUS_M:
                offset_m = radius / (2 * math.sqrt(2))  # quarter-cell centres; radius/2 covers each quarter
                dlat = offset_m / 1000 / KM_PER_DEG_LAT
                dlon = dlat / max(1e-6, math.cos(math.radians(lat)))
                for sy in (-1, 1):
                    for sx in (-1, 1):
                        child = (round(lat + sy * dlat, 6), round(lon + sx * dlon, 6), radius // 2)
                        yield from self.search(child, done)
            else:
                log.warning(f"{len(pages)} files within {radius} m of {lat},{lon}; some may be missed")
        yield key, [r for r in map(self.record, pages) if r]

    def geosearch(self, lat: float, lon: float, radius: int) -> list[dict]:
        """All pages of one geosearch, with `continue` replies merged by page id."""
        params = {
            "action": "query", "format": "json", "formatversion": "2",
            "generator": "geosearch", "ggscoord": f"{lat}|{lon}", "ggsradius": radius,
            "ggslimit": self.limit, "ggsnamespace": 6,
            "prop": "imageinfo|coordinates", "colimit": "max", "iiprop": "url|size|mime|extmetadata",
            "iiurlwidth": self.thumb_width, "iiextmetadatafilter": METADATA,
        }
        pages: dict[int, dict] = {}
        more: dict = {}
        while True:
            body = self.http.get(self.base_url, params={**params, **more}).json()
            if "error" in body:
                error = body["error"]
                raise SourceError(f"Commons API error {error.get('code')}: {error.get('info')}")
            found = body.get("query", {}).get("pages", [])
            for page in found.values() if isinstance(found, dict) else found:  # formatversion 1 or 2
                merged = pages.setdefault(page["pageid"], {})
                for field, value in page.items():
                    merged.setdefault(field, value)
            if "continue" not in body:
                return list(pages.values())
            more = body["continue"]

    def record(self, page: dict) -> dict | None:
        """A photos.csv row (without the download columns) for one File: page, or None to drop it."""
        info = (page.get("imageinfo") or [{}])[0]
        meta = {k: strip_html(str(v.get("value", ""))) for k, v in info.get("extmetadata", {}).items()}
        coords = page.get("coordinates") or []
        reason = ("no coordinates" if not coords
                  else "not a photo" if info.get("mime") not in PHOTO_MIMES
                  else "non-free licence" if self.free_only and not is_free(meta.get("LicenseShortName", ""))
                  else "outside bbox" if not self.bbox.contains(coords[0]["lat"], coords[0]["lon"])
                  else "")
        if reason:
            self.dropped[reason] += 1
            return None
        return {
            "photo_id": f"commons:{page['title']}", "source": "commons",
            "lat": float(coords[0]["lat"]), "lon": float(coords[0]["lon"]),
            "taken_at": iso_date(meta.get("DateTimeOriginal") or meta.get("DateTime", "")),
            "url": info.get("thumburl") or info["url"], "license": meta.get("LicenseShortName", ""),
            "author": meta.get("Artist", ""), **heading_fields(meta),
        }


def heading_fields(meta: dict[str, str]) -> dict:
    """`heading` (and `heading_ref`, T/M, for the state log) from extmetadata's EXIF GPSImgDirection."""
    heading = parse_heading(meta.get("GPSImgDirection"))
    if heading is None:
        return {"heading": ""}
    ref = meta.get("GPSImgDirectionRef", "").strip().upper()[:1]
    return {"heading": heading, "heading_ref": ref if ref in ("T", "M") else ""}
