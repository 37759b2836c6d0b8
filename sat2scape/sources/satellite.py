"""`python -m sat2scape satellite`: a satellite tile centred on every kept photo, and pairs.csv.

    python -m sat2scape satellite --provider xyz --preset eox --data data/moscow
    python -m sat2scape satellite --provider xyz --url-template "https://host/{z}/{x}/{y}.png" --data data/moscow
    python -m sat2scape satellite --provider yandex --data data/moscow          # the write-up's source

Providers (contracts: shared/docs/api_contracts.md, sections 2-3):
- yandex: Yandex Static API 1.x, `l=sat&ll=lon,lat&z=..&size=w,h` (z <= 17, size <= 650x450,
  scale 1..4). The image comes centred on the point; its centre is cropped to the wide size.
  An XML error body (HTTP 400) stops the run with a message naming the parameter.
- xyz: any XYZ/WMTS tile service by URL template ({z}, {x}, {y}). Presets: `esri` (World
  Imagery; y before x) and `eox` (Sentinel-2 cloudless; WMTS TileMatrix/TileRow/TileCol, so
  also y before x). The zoom is the coarsest whose pixels are at least as fine as
  --meters-per-pixel; the tiles around the point are stitched so that it sits in the centre, and
  the window covering wide-size x meters-per-pixel metres is resampled to wide-size pixels.
  Tiles are cached under cache/tiles/<provider>/<z>/<x>/<y>.<ext>, so reruns and neighbouring
  photos fetch each tile once.

Note for the README (the lead's call): the current Yandex Static API (v1) has no satellite
layer; its paid version serves only the scheme map, satellite imagery being licensed to
Yandex's own apps, and whether legacy 1.x `l=sat` still answers is unverified. Yandex's and
Esri's terms do not license storing imagery for ML; EOX Sentinel-2 cloudless (CC BY-NC-SA 4.0,
~10 m/px, so zooms above ~14 add no detail) is the only preset whose licence allows research use.

Web Mercator (EPSG:3857, OSM "slippy map" tiles): n = 2^z tiles a side of `tile_px` pixels,
x = (lon + 180) / 360 * n, y = (1 - asinh(tan(lat)) / pi) / 2 * n, and a pixel spans
156543.03392 * cos(lat) / 2^z metres (256-px tiles; half that for 512-px tiles).
Yandex's own tiles are elliptical Mercator (EPSG:3395); its static images are centred on `ll`
all the same, and their m/px is taken from the same formula.

Fetched wide: every provider fetches one image of side geometry.wide_tile_size(--tile-size)
(182 for 128) around the point, at the same ground resolution, so that it can later be turned
to the photo's heading and cropped with no empty corner (geometry.turn_tiles). The usual
north-up tile is that image's centre crop (geometry.centre_crop): one request, two files.

Output: `satellite_wide/<safe_name>.png` and `satellite/<safe_name>.png` per photo, `pairs.csv`
(manifest columns, `split` by region, `heading` copied from photos.csv, `satellite_wide_path`)
for the photos the filter funnel kept (all photos if it has not run), and resumable state in
`state/satellite.jsonl` (done: a pair whose two files exist is skipped) and
`state/satellite_failed.jsonl` (why not). The run holds the folder's lock (files.folder_lock).

In code: `provider.fetch_wide(lat, lon)` gives (wide image, zoom, m/px); `provider.fetch(lat, lon)`
gives the north-up tile_size tile, its centre crop, with the same zoom and m/px (predict uses it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .. import manifest
from ..files import FolderLocked, append_jsonl, atomic_save_image, atomic_write_bytes, folder_lock, read_jsonl
from . import clean_after_crash
from .http import MAX_BYTES, Http, HttpError, SourceError, decode_image, parallel

MAX_LAT = 85.05112878
M_PER_PX_Z0 = 156543.03392  # 2*pi*6378137 / 256: metres per pixel at the equator, zoom 0, 256-px tiles
YANDEX_URL = "https://static-maps.yandex.ru/1.x/"
PAIRS_EVERY_S = 10.0


# ---------------------------------------------------------------------------------------------
# Web Mercator


def lonlat_to_pixel(lat: float, lon: float, z: int, tile_px: float = 256) -> tuple[float, float]:
    """Global pixel coordinates of a point at zoom z (the tile is the integer part / tile_px)."""
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    world = tile_px * 2 ** z
    x = (lon + 180.0) / 360.0 * world
    y = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * world
    return x, y


def tile_of(lat: float, lon: float, z: int) -> tuple[int, int]:
    x, y = lonlat_to_pixel(lat, lon, z, 1)
    return int(math.floor(x)), int(math.floor(y))


def meters_per_pixel(lat: float, z: int, tile_px: int = 256) -> float:
    return M_PER_PX_Z0 * 256 / tile_px * math.cos(math.radians(lat)) / 2 ** z


def zoom_for(lat: float, target_mpp: float, max_zoom: int, tile_px: int = 256) -> int:
    """The coarsest zoom whose pixels are at least as fine as `target_mpp` (capped at max_zoom)."""
    z = math.ceil(math.log2(meters_per_pixel(lat, 0, tile_px) / target_mpp) - 1e-9)
    return max(0, min(max_zoom, z))


# ---------------------------------------------------------------------------------------------
# Wide tiles


def wide_size(tile_size: int) -> int:
    """The side fetched for a tile_size tile (geometry.wide_tile_size: turnable to any heading)."""
    from ..geometry import wide_tile_size  # geometry imports torch; only a provider needs it here

    return wide_tile_size(tile_size)


def north_up(wide: Image.Image, tile_size: int) -> Image.Image:
    """The north-up tile: the wide image's centre crop, the very window geometry.centre_crop takes
    (and turn_tiles at heading 0), so satellite/ and a turned satellite_wide/ always agree."""
    from ..geometry import centre_crop

    chw = np.asarray(wide).transpose(2, 0, 1)  # centre_crop works on (..., H, W) arrays
    return Image.fromarray(np.ascontiguousarray(centre_crop(chw, tile_size).transpose(1, 2, 0)))


# ---------------------------------------------------------------------------------------------
# Providers


class Unavailable(Exception):
    """No image for this one point (tile 404, undecodable reply); the run goes on."""


@dataclass(frozen=True)
class Preset:
    template: str
    max_zoom: int
    attribution: str
    licence: str


PRESETS = {
    "esri": Preset(
        "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}", 18,
        "Esri, Maxar, Earthstar Geographics, and the GIS User Community",
        "Esri terms: bulk download and storage need an agreement"),
    # One layer per year (2016-2021 per EOX); swap the year in the layer name and the attribution.
    "eox": Preset(
        "https://a.tiles.maps.eox.at/wmts/1.0.0/s2cloudless-2017_3857/default/g/{z}/{y}/{x}.jpg", 18,
        "EOxCloudless https://cloudless.eox.at by EOX IT Services GmbH "
        "(Contains modified Copernicus Sentinel data 2017)",
        "CC BY-NC-SA 4.0 (non-commercial)"),
}
SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


class XYZProvider:
    """Tiles from an XYZ/WMTS URL template, stitched around each point and resampled."""

    def __init__(self, template: str, http: Http, cache_dir, name: str = "", tile_size: int = 128,
                 meters_per_px: float = 1.0, zoom: int | None = None, max_zoom: int = 19, tile_px: int = 256,
                 attribution: str = "", licence: str = ""):
        missing = [k for k in ("{z}", "{x}", "{y}") if k not in template]
        if missing:
            raise ValueError(f"--url-template {template!r} lacks {', '.join(missing)}")
        self.template, self.http = template, http
        self.name = name or "xyz-" + hashlib.sha1(template.encode()).hexdigest()[:8]
        self.cache = Path(cache_dir) / self.name
        self.tile_size, self.meters_per_px, self.zoom = tile_size, meters_per_px, zoom
        self.wide_size = wide_size(tile_size)
        self.max_zoom, self.tile_px = max_zoom, tile_px
        self.attribution = f"{attribution} (licence: {licence})" if licence else attribution
        resolution = f"z={zoom}" if zoom is not None else f"mpp={meters_per_px}"
        self.settings = f"{self.name}:{resolution}:px={tile_size}"  # outputs made otherwise are redone

    def tile(self, z: int, x: int, y: int) -> Image.Image:
        """One tile, from the cache if it is there."""
        stem = self.cache / str(z) / str(x) / str(y)
        for suffix in SUFFIX.values():
            if stem.with_suffix(suffix).exists():
                try:
                    return decode_image(stem.with_suffix(suffix).read_bytes()).convert("RGB")
                except ValueError:
                    stem.with_suffix(suffix).unlink()  # damaged cache entry: fetch again
        url = self.template.format(z=z, x=x, y=y)
        reply = self.http.get(url, max_bytes=MAX_BYTES)
        if reply.status == 404:
            raise Unavailable(f"no tile z={z} x={x} y={y} at {self.name} (HTTP 404)")
        if reply.status != 200:  # 401/403: a key is missing or refused; no other tile will work either
            raise SourceError(f"{self.name} answered HTTP {reply.status} for {url}: {reply.text[:200]}")
        if reply.content_type not in SUFFIX:
            raise Unavailable(f"tile z={z} x={x} y={y}: content type {reply.content_type!r} is not an image")
        try:
            image = decode_image(reply.content).convert("RGB")
        except ValueError as e:
            raise Unavailable(f"tile z={z} x={x} y={y}: {e}") from None
        atomic_write_bytes(stem.with_suffix(SUFFIX[reply.content_type]), reply.content)
        return image

    def fetch(self, lat: float, lon: float) -> tuple[Image.Image, int, float]:
        """The north-up tile_size tile centred on (lat, lon), its zoom, and its metres per pixel."""
        wide, zoom, mpp = self.fetch_wide(lat, lon)
        return north_up(wide, self.tile_size), zoom, mpp

    def fetch_wide(self, lat: float, lon: float) -> tuple[Image.Image, int, float]:
        """The wide_size image centred on (lat, lon), its zoom, and its metres per pixel."""
        if abs(lat) > MAX_LAT:
            raise Unavailable(f"latitude {lat} is outside Web Mercator (|lat| <= {MAX_LAT})")
        z = self.zoom if self.zoom is not None else zoom_for(lat, self.meters_per_px, self.max_zoom, self.tile_px)
        native = meters_per_pixel(lat, z, self.tile_px)
        mpp = native if self.zoom is not None else self.meters_per_px
        window = self.wide_size * mpp / native  # native pixels covering the output's ground extent
        px, py = lonlat_to_pixel(lat, lon, z, self.tile_px)
        if self.zoom is not None:  # no resampling: snap the window to whole pixels
            left, top = math.floor(px - window / 2 + 0.5), math.floor(py - window / 2 + 0.5)
        else:
            left, top = px - window / 2, py - window / 2
        x0, y0 = math.floor(left), math.floor(top)
        x1, y1 = math.ceil(left + window), math.ceil(top + window)
        n, t = 2 ** z, self.tile_px
        canvas = Image.new("RGB", (x1 - x0, y1 - y0))
        for ty in range(y0 // t, (y1 - 1) // t + 1):
            if not 0 <= ty < n:
                raise Unavailable(f"the window around {lat},{lon} leaves the map at zoom {z}")
            for tx in range(x0 // t, (x1 - 1) // t + 1):
                canvas.paste(self.tile(z, tx % n, ty), (tx * t - x0, ty * t - y0))  # x wraps at 180 degrees
        box = (left - x0, top - y0, left - x0 + window, top - y0 + window)
        if self.zoom is not None:
            return canvas.crop(tuple(map(int, box))), z, mpp
        return canvas.resize((self.wide_size, self.wide_size), Image.Resampling.LANCZOS, box=box), z, mpp


YANDEX_LIMITS = {"size": ("--size", "at most 650,450"), "zoom": ("--zoom", "0..17"), "z": ("--zoom", "0..17"),
                 "scale": ("--scale", "1.0..4.0"), "ll": ("photos.csv lat/lon", "lon,lat in degrees")}


class YandexProvider:
    """Yandex Static API 1.x: one `l=sat` image per point, centre-cropped to the wide size."""

    name = "yandex"
    attribution = "© Yandex (Static API 1.x, l=sat; licence: display on the platform only)"

    def __init__(self, http: Http, base_url: str = YANDEX_URL, zoom: int = 17, size: str = "450,450",
                 scale: float = 1.0, tile_size: int = 128, key: str = ""):
        self.http, self.base_url, self.key = http, base_url, key
        self.zoom, self.scale, self.tile_size = zoom, scale, tile_size
        self.wide_size = wide_size(tile_size)
        try:
            self.width, self.height = (int(v) for v in size.split(","))
        except ValueError:
            raise ValueError(f"--size {size!r}: expected width,height in pixels, e.g. 450,450") from None
        if self.width < self.wide_size or self.height < self.wide_size:
            raise ValueError(f"--size {size}: must be at least {self.wide_size} each way, the wide tile that "
                             f"--tile-size {tile_size} is cut from (and at most 650,450)")
        self.settings = f"yandex:z={zoom}:size={size}:scale={scale}:px={tile_size}"

    def fetch(self, lat: float, lon: float) -> tuple[Image.Image, int, float]:
        """The north-up tile_size tile centred on (lat, lon), its zoom, and its metres per pixel."""
        wide, zoom, mpp = self.fetch_wide(lat, lon)
        return north_up(wide, self.tile_size), zoom, mpp

    def fetch_wide(self, lat: float, lon: float) -> tuple[Image.Image, int, float]:
        """The wide_size image centred on (lat, lon), its zoom, and its metres per pixel."""
        params = {"l": "sat", "ll": f"{lon:.6f},{lat:.6f}", "z": self.zoom, "size": f"{self.width},{self.height}"}
        if self.scale != 1:
            params["scale"] = self.scale
        if self.key:  # only the commercial version takes a key
            params["key"] = self.key
        reply = self.http.get(self.base_url, params=params, max_bytes=MAX_BYTES)
        if reply.status == 400 and "<error>" in reply.text:
            raise SourceError(self.explain(reply.text))
        if reply.status != 200:
            raise Unavailable(f"Yandex answered HTTP {reply.status} for {lat},{lon}")
        try:
            image = decode_image(reply.content).convert("RGB")
        except ValueError as e:
            raise Unavailable(f"Yandex image for {lat},{lon}: {e}") from None
        # scale > 1 returns more pixels for the same ground (unverified); the width ratio covers either case
        mpp = meters_per_pixel(lat, self.zoom) * self.width / image.width
        if min(image.size) < self.wide_size:
            raise Unavailable(f"Yandex image for {lat},{lon} is {image.width}x{image.height}, "
                              f"smaller than the {self.wide_size} px wide tile")
        left, top = (image.width - self.wide_size) // 2, (image.height - self.wide_size) // 2
        return image.crop((left, top, left + self.wide_size, top + self.wide_size)), self.zoom, mpp

    def explain(self, xml: str) -> str:
        """`<error><message>Wrong size: 703,450</message></error>` -> which parameter, and its limits."""
        message = re.search(r"<message>(.*?)</message>", xml, re.S)
        message = message.group(1).strip() if message else xml[:200]
        param = re.match(r"Wrong (\w+)", message)
        flag, limit = YANDEX_LIMITS.get(param.group(1).lower() if param else "", ("", ""))
        hint = f" The 1.x API allows {param.group(1)} {limit}: change {flag}." if flag else ""
        return f"Yandex Static API rejected the request: {message}.{hint}"


# ---------------------------------------------------------------------------------------------
# The run


def write_pairs_csv(dataset: Path, done: dict[str, dict], photos: pd.DataFrame) -> None:
    """pairs.csv for the finished photos, in photos.csv order, with photos.csv's current heading."""
    heading = dict(zip(photos["photo_id"], photos["heading"]))
    rows = [{**done[pid], "heading": heading[pid]} for pid in photos["photo_id"] if pid in done]
    manifest.write(dataset, "pairs.csv", pd.DataFrame(rows, columns=manifest.COLUMNS["pairs.csv"]))


def download(dataset, provider, workers: int = 4, retry_failed: bool = False, progress: bool = True) -> dict:
    """Fetch a wide tile and its north-up crop for every kept photo of `dataset` (all photos if the
    funnel has not run). Raises files.FolderLocked at once when another process works in `dataset`."""
    dataset = Path(dataset)
    photos = manifest.read(dataset, "photos.csv")  # before the lock, so a wrong path creates no folder
    with folder_lock(dataset, f"satellite {provider.name}"):  # one process per folder, or stop here
        clean_after_crash(dataset, ["satellite/.*.tmp", "satellite_wide/.*.tmp", "cache/tiles/**/.*.tmp",
                                    ".pairs.csv.*.tmp", "state/satellite*.jsonl"])
        kept = manifest.kept_photo_ids(dataset)
        if kept is not None:
            photos = photos[photos["photo_id"].isin(set(kept))]
        done_log, failed_log = dataset / "state" / "satellite.jsonl", dataset / "state" / "satellite_failed.jsonl"
        # Done means both files exist: records from before the wide tiles (no satellite_wide_path) are redone.
        done = {r["photo_id"]: r for r in read_jsonl(done_log)
                if r.get("settings") == provider.settings and r.get("satellite_wide_path")
                and (dataset / r["satellite_path"]).exists() and (dataset / r["satellite_wide_path"]).exists()}
        failed = {r["photo_id"] for r in read_jsonl(failed_log) if r.get("settings") == provider.settings}
        todo = [row for row in photos.itertuples()
                if row.photo_id not in done and (retry_failed or row.photo_id not in failed)]
        counts = {"photos": len(photos), "new": 0, "new_failed": 0}

        def fetch(row):
            try:
                wide, zoom, mpp = provider.fetch_wide(float(row.lat), float(row.lon))  # the one request
            except (Unavailable, HttpError) as e:
                return str(e)
            name = f"{manifest.safe_name(row.photo_id)}.png"
            wide_path, path = Path("satellite_wide") / name, Path("satellite") / name
            atomic_save_image(dataset / wide_path, wide)
            atomic_save_image(dataset / path, north_up(wide, provider.tile_size))
            return {"photo_id": row.photo_id, "photo_path": row.path, "satellite_path": path.as_posix(),
                    "satellite_wide_path": wide_path.as_posix(),
                    "lat": float(row.lat), "lon": float(row.lon), "provider": provider.name, "zoom": zoom,
                    "meters_per_pixel": round(mpp, 4), "attribution": provider.attribution,
                    "split": manifest.region_split(float(row.lat), float(row.lon)), "settings": provider.settings}

        last_csv = time.monotonic()
        try:
            for row, result in parallel(fetch, todo, workers, f"{provider.name} tiles", progress):
                if isinstance(result, dict):
                    append_jsonl(done_log, result)  # after both PNGs are in place, never before
                    done[row.photo_id] = result
                    counts["new"] += 1
                else:
                    append_jsonl(failed_log, {"photo_id": row.photo_id, "reason": result, "settings": provider.settings,
                                              "at": dt.datetime.now(dt.timezone.utc).isoformat()})
                    counts["new_failed"] += 1
                if time.monotonic() - last_csv > PAIRS_EVERY_S:
                    write_pairs_csv(dataset, done, photos)
                    last_csv = time.monotonic()
        finally:
            write_pairs_csv(dataset, done, photos)
        return {**counts, "pairs": sum(pid in done for pid in photos["photo_id"])}


# ---------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", required=True, choices=["yandex", "xyz"])
    parser.add_argument("--data", required=True, help="dataset folder with photos.csv, e.g. data/moscow")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="xyz: a known tile service")
    parser.add_argument("--url-template", help="xyz: tile URL with {z} {x} {y}; overrides the preset's")
    parser.add_argument("--attribution", default="", help="xyz with --url-template: attribution to record")
    parser.add_argument("--licence", default="", help="xyz with --url-template: licence to record")
    parser.add_argument("--tile-size", type=int, default=128, help="output size in pixels")
    parser.add_argument("--meters-per-pixel", type=float, default=1.0, help="xyz: output ground resolution")
    parser.add_argument("--zoom", type=int, default=None, help="fixed zoom (xyz: no resampling; yandex: default 17)")
    parser.add_argument("--max-zoom", type=int, default=None, help="xyz: deepest zoom the service has")
    parser.add_argument("--tile-px", type=int, default=256, choices=[256, 512], help="xyz: the service's tile size")
    parser.add_argument("--size", default="450,450", help="yandex: requested image size w,h (<= 650,450)")
    parser.add_argument("--scale", type=float, default=1.0, help="yandex: scale 1.0..4.0")
    parser.add_argument("--base-url", default=YANDEX_URL, help="yandex: API endpoint")
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second, all threads together")
    parser.add_argument("--workers", type=int, default=4, help="photos processed in parallel")
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--retries", type=int, default=4)
    parser.add_argument("--backoff", type=float, default=1.0)
    parser.add_argument("--retry-failed", action="store_true", help="try photos that failed before again")
    parser.add_argument("--no-progress", action="store_true")


def make_provider(http: Http, data, provider: str, preset: str | None = None, url_template: str | None = None,
                  attribution: str = "", licence: str = "", tile_size: int = 128, meters_per_pixel: float = 1.0,
                  zoom: int | None = None, max_zoom: int | None = None, tile_px: int = 256, size: str = "450,450",
                  scale: float = 1.0, base_url: str = YANDEX_URL):
    """A provider from the command line's settings (the notebook calls this too)."""
    if provider == "yandex":
        return YandexProvider(http, base_url, 17 if zoom is None else zoom, size, scale, tile_size)
    if provider != "xyz":
        raise ValueError(f"--provider {provider!r}: choose yandex or xyz")
    if not (preset or url_template):
        raise ValueError("--provider xyz needs --preset (esri, eox) or --url-template")
    known = PRESETS.get(preset) if preset else None
    if preset and not known:
        raise ValueError(f"--preset {preset!r}: choose from {sorted(PRESETS)}")
    return XYZProvider(url_template or known.template, http, Path(data) / "cache" / "tiles",
                       name=preset if known and not url_template else "", tile_size=tile_size,
                       meters_per_px=meters_per_pixel, zoom=zoom,
                       max_zoom=max_zoom or (known.max_zoom if known else 19), tile_px=tile_px,
                       attribution=attribution or (known.attribution if known else ""),
                       licence=licence or (known.licence if known else ""))


def run(args: argparse.Namespace) -> int:
    try:
        http = Http(rate=args.rate, timeout=args.timeout, retries=args.retries, backoff=args.backoff)
        provider = make_provider(http, args.data, args.provider, args.preset, args.url_template, args.attribution,
                                 args.licence, args.tile_size, args.meters_per_pixel, args.zoom, args.max_zoom,
                                 args.tile_px, args.size, args.scale, args.base_url)
        summary = download(args.data, provider, args.workers, args.retry_failed, not args.no_progress)
    except ValueError as e:  # bad arguments, or a missing/unreadable photos.csv (ManifestError)
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FolderLocked as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except SourceError as e:
        print(f"stopped: {e}\nFinished tiles are kept; rerun the same command to continue.", file=sys.stderr)
        return 1
    print("satellite: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return 0
