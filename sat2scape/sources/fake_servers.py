"""Local stand-ins for the VK API, the Commons API, Yandex Static 1.x and XYZ/WMTS tile servers.

They follow shared/docs/api_contracts.md (section 5) closely enough that the real clients run
against them unchanged: the tests, the benchmark and the notebooks' SMOKE mode all use them.
Each fake is an `http.server.ThreadingHTTPServer` on 127.0.0.1 with an ephemeral port, run in a
background thread by a context manager:

    with FakeVK(make_vk_photos(bbox, since, until, n=200)) as vk:
        source = VKSource(Secret(vk.token), bbox, since, until, base_url=vk.api_url)

Every fake also hosts images under /img/<name>.jpg (deterministic landscape-like JPEGs), with
faults set per name in `image_faults` (a string: always; a list: one per request, then fine):
"corrupt" (truncated JPEG), "huge" (`huge_bytes` of data), "bomb" (a PNG header claiming
8000x8000 pixels), "html" (200 with text/html), "slow" (sleeps `slow_s` first), "404".
`image_headings` gives a name an EXIF camera heading (GPSImgDirection, GPSImgDirectionRef).
`fail_next` scripts HTTP errors for the next requests (e.g. [429, 429, 503]; Retry-After: 0).
Every request is appended to `requests` as a dict (time, method, path, params without any token),
which is how the tests measure the request rate at the server.
"""

from __future__ import annotations

import json
import math
import random
import struct
import threading
import time
import zlib
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from PIL import Image

from . import BBox, distance_m
from .satellite import lonlat_to_pixel

Response = tuple[int, dict, bytes]


# ---------------------------------------------------------------------------------------------
# Images


@lru_cache(maxsize=256)
def landscape_jpeg(seed: int, size: tuple[int, int] = (160, 120)) -> bytes:
    """A small summer landscape: sky gradient, hills on the horizon, fields, a few trees."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    columns = np.arange(w, dtype=np.float32)
    horizon = h * rng.uniform(0.35, 0.55) + h * 0.06 * np.sin(columns / w * rng.uniform(2, 7) + rng.uniform(0, 6))
    sky = np.stack([120 + 80 * y / h, 170 + 50 * y / h, 235 + 0 * y], -1)
    ground_colour = np.array([rng.uniform(60, 140), rng.uniform(120, 170), rng.uniform(30, 70)])
    depth = np.clip((y - horizon[None, :]) / h, 0, 1)[..., None]
    stripes = 12 * np.sin(x / rng.uniform(3, 9) + y * 0.4)[..., None]
    ground = ground_colour * (0.7 + 0.6 * depth) + stripes
    image = np.where((y < horizon[None, :])[..., None], sky, ground)
    for _ in range(rng.integers(2, 6)):  # trees: dark blobs standing on the horizon
        cx, r = rng.uniform(0, w), rng.uniform(3, 10)
        cy = np.interp(cx, columns, horizon) - r * 0.6
        image[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = (30, 70, 30)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    buffer = BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# meadow, ripe crop, conifer, ploughed field, deciduous, young crop, water, meadow
PALETTE = np.array([(92, 128, 60), (180, 168, 96), (38, 70, 40), (128, 100, 70), (60, 96, 48), (120, 150, 80),
                    (40, 70, 110), (100, 136, 70)])


def satellite_pixels(z: int, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """A top-down fake ground texture at global pixel coordinates (x0, y0) of zoom z, shape (h, w, 3).

    A pure function of the global pixel position, so neighbouring tiles join seamlessly and a
    stitched window can be checked pixel for pixel against one rendered directly.
    """
    gx = np.arange(x0, x0 + w, dtype=np.int64)[None, :]
    gy = np.arange(y0, y0 + h, dtype=np.int64)[:, None]
    field = ((gx // 48) * 73856093 ^ (gy // 48) * 19349663 ^ z * 83492791) & 0xFFFF
    image = PALETTE[field % len(PALETTE)].astype(np.float64)
    rows = np.where(field & 1, gx, gy) + (field >> 4)  # crop rows run across or along each field
    image += (8 * np.sin(rows * 0.9))[..., None]
    return np.clip(image, 0, 255).astype(np.uint8)


def with_heading(jpeg: bytes, direction, ref: str = "T") -> bytes:
    """The same picture re-saved with EXIF GPSImgDirection = `direction` (an IFDRational, a number)
    and GPSImgDirectionRef = `ref`, as a phone camera writes them."""
    image = Image.open(BytesIO(jpeg))
    exif = Image.Exif()
    exif[0x8825] = {0x0010: ref, 0x0011: direction}  # the GPS IFD
    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def encode(array: np.ndarray, fmt: str) -> bytes:
    buffer = BytesIO()
    Image.fromarray(array).save(buffer, format=fmt.upper(), **({"quality": 92} if fmt == "jpeg" else {}))
    return buffer.getvalue()


def bomb_png(width: int = 8000, height: int = 8000) -> bytes:
    """A PNG whose header claims width x height pixels, with almost no data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


def _json(obj) -> Response:
    return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(obj).encode()


# ---------------------------------------------------------------------------------------------
# The server


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query))
        if method == "POST":
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            params.update(parse_qsl(body.decode("utf-8")))
        fake = self.server.fake
        try:
            status, headers, body = fake.respond(method, url.path, params, self.headers)
        except Exception as e:  # a bug in a fake should look like a server error, not hang the client
            status, headers, body = 500, {"Content-Type": "text/plain"}, repr(e).encode()
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing to tell anyone

    def log_message(self, *args):
        pass


class FakeServer:
    """Base: start/stop, the request log, latency, and image hosting under /img/."""

    def __init__(self, latency: float = 0.0, image_size: tuple[int, int] = (160, 120)):
        self.latency = latency            # seconds added to every response
        self.image_size = image_size
        self.image_faults: dict[str, str | list[str]] = {}
        self.image_headings: dict[str, tuple] = {}  # name -> (GPSImgDirection, ref) written into its EXIF
        self.huge_bytes = 2_000_000
        self.slow_s = 1.0
        self.fail_next: list[int] = []    # HTTP statuses for the next requests, e.g. [429, 503]
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def respond(self, method: str, path: str, params: dict, headers) -> Response:
        hidden = {k: v for k, v in params.items() if k != "access_token"}
        self.requests.append({"t": time.monotonic(), "method": method, "path": path, "params": hidden})
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            status = self.fail_next.pop(0) if self.fail_next else 0
        if status:
            return status, {"Content-Type": "text/plain", "Retry-After": "0"}, b"try again later"
        if path.startswith("/img/"):
            return self.image(path[len("/img/"):])
        return self.handle(method, path, params, headers)

    def handle(self, method: str, path: str, params: dict, headers) -> Response:
        return 404, {"Content-Type": "text/plain"}, b"not found"

    def image(self, name: str) -> Response:
        with self._lock:
            fault = self.image_faults.get(name, "")
            if isinstance(fault, list):
                fault = fault.pop(0) if fault else ""
        jpeg = {"Content-Type": "image/jpeg"}
        if fault == "slow":
            time.sleep(self.slow_s)
        if fault == "404":
            return 404, {"Content-Type": "text/plain"}, b"not found"
        if fault == "html":
            return 200, {"Content-Type": "text/html"}, b"<html><body>Moved</body></html>"
        if fault == "bomb":
            return 200, {"Content-Type": "image/png"}, bomb_png()
        data = landscape_jpeg(zlib.crc32(name.encode()), self.image_size)
        if name in self.image_headings:
            data = with_heading(data, *self.image_headings[name])
        if fault == "corrupt":
            return 200, jpeg, data[: len(data) // 2]
        if fault == "huge":
            return 200, jpeg, data + bytes(self.huge_bytes)
        return 200, jpeg, data

    def rate_seen(self, path_prefix: str = "/") -> int:
        """The most requests to paths under `path_prefix` in any one-second window (sliding)."""
        times = sorted(r["t"] for r in self.requests if r["path"].startswith(path_prefix))
        most, first = 0, 0
        for last, t in enumerate(times):
            while t - times[first] >= 1.0:
                first += 1
            most = max(most, last - first + 1)
        return most


# ---------------------------------------------------------------------------------------------
# VK


VK_MESSAGES = {
    1: "Unknown error occurred", 3: "Unknown method passed", 5: "User authorization failed: invalid access_token",
    6: "Too many requests per second",
    9: "Flood control", 10: "Internal server error", 14: "Captcha needed", 15: "Access denied",
    18: "User was deleted or banned", 29: "Rate limit reached", 30: "This profile is private",
    100: "One of the parameters specified was missing or invalid", 200: "Access denied",
}
VK_RADII = (10, 100, 800, 6000, 50000)


def make_vk_photos(bbox: BBox, since: int, until: int, n: int = 200, seed: int = 0,
                   no_geo: float = 0.1, zero_sizes: float = 0.1) -> list[dict]:
    """`n` photos at random places in the box and times in [since, until]: a share without a
    geotag (searchable, but `lat`/`long` hidden) and a share of old photos with 0x0 sizes."""
    rng = random.Random(seed)
    return [{
        "id": 456000000 + i, "owner_id": rng.choice([1, -1]) * rng.randint(1000, 999999),
        "date": rng.randint(since, until),
        "lat": rng.uniform(bbox.south, bbox.north), "lon": rng.uniform(bbox.west, bbox.east),
        "geo": rng.random() >= no_geo, "zero_sizes": rng.random() < zero_sizes,
    } for i in range(n)]


class FakeVK(FakeServer):
    """`photos.search` at /method/photos.search (GET or POST, Bearer header or access_token).

    paging_cap   results reachable by offset (the unverified ~3000); later offsets return no items
    rate_limit   error 6 when more requests than this arrive within one second (None: off)
    errors_at    {n: code}: the n-th call (1-based) answers with VK error `code`
    slop_s       widen the time filter by this many seconds each side, so photos near a window's
                 edge come back in both neighbouring windows (VK's filters are approximate)
    """

    token = "fake-vk-token-7f3a9c1e5b"

    def __init__(self, photos: list[dict], paging_cap: int = 3000, rate_limit: float | None = None,
                 errors_at: dict[int, int] | None = None, slop_s: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.photos = sorted(photos, key=lambda p: (-p["date"], p["id"]))  # newest first, like sort=0
        self.paging_cap, self.rate_limit, self.slop_s = paging_cap, rate_limit, slop_s
        self.errors_at = dict(errors_at or {})
        self.calls = 0

    @property
    def api_url(self) -> str:
        return self.url + "/method"

    def handle(self, method, path, params, headers) -> Response:
        if not path.startswith("/method/"):
            return super().handle(method, path, params, headers)
        if path != "/method/photos.search":
            return self.error(3, params)
        with self._lock:
            self.calls += 1
            call, now = self.calls, time.monotonic()
            recent = [r for r in self.requests if r["path"] == path and now - r["t"] < 1.0]
        if headers.get("Authorization", "") != f"Bearer {self.token}" and params.get("access_token") != self.token:
            return self.error(5, params)
        if call in self.errors_at:
            return self.error(self.errors_at[call], params)
        if self.rate_limit is not None and len(recent) > self.rate_limit:
            return self.error(6, params)
        try:
            count, offset = int(params.get("count", 100)), int(params.get("offset", 0))
            radius = int(params.get("radius", 5000))
            lat, lon = float(params["lat"]), float(params["long"])
            start, end = int(params.get("start_time", 0)), int(params.get("end_time", 2 ** 40))
        except (KeyError, ValueError):
            return self.error(100, params)
        if not 0 <= count <= 1000 or radius not in VK_RADII or "v" not in params:
            return self.error(100, params)
        matches = [p for p in self.photos if start - self.slop_s <= p["date"] <= end + self.slop_s
                   and distance_m(lat, lon, p["lat"], p["lon"]) <= radius]
        page = matches[offset:min(offset + count, self.paging_cap)] if offset < self.paging_cap else []
        return _json({"response": {"count": len(matches), "items": [self.render(p) for p in page]}})

    def render(self, p: dict) -> dict:
        """A photos_photo object as the schema describes it."""
        name = f"vk_{p['owner_id']}_{p['id']}"
        sizes = [{"type": t, "url": f"{self.url}/img/{name}_{t}.jpg",
                  "width": 0 if p["zero_sizes"] else w, "height": 0 if p["zero_sizes"] else h}
                 for t, w, h in (("s", 75, 56), ("m", 130, 97), ("x", 604, 453), ("y", 807, 605))]
        item = {"id": p["id"], "album_id": -7, "owner_id": p["owner_id"], "date": p["date"],
                "has_tags": False, "text": "", "sizes": sizes}
        if p["geo"]:
            item.update(lat=round(p["lat"], 6), long=round(p["lon"], 6))
        return item

    def error(self, code: int, params: dict) -> Response:
        echo = [{"key": "method", "value": "photos.search"}] + [
            {"key": k, "value": v} for k, v in params.items() if k != "access_token"]
        error = {"error_code": code, "error_msg": VK_MESSAGES.get(code, "Unknown error occurred"),
                 "request_params": echo}
        if code == 14:
            error.update(captcha_sid="123456789", captcha_img=f"{self.url}/captcha.php?sid=123456789")
        return _json({"error": error})


# ---------------------------------------------------------------------------------------------
# Wikimedia Commons


LICENCES = ["CC BY-SA 4.0", "CC BY 2.0", "CC0", "Public domain", "CC BY-NC-SA 2.0", "CC BY-SA 3.0 de", "GFDL"]


def make_commons_files(bbox: BBox, n: int = 50, seed: int = 0) -> list[dict]:
    """`n` geotagged File: pages in the box with a mix of free and non-free licences; every third
    has a camera heading in its EXIF (GPSImgDirection as MediaWiki keeps it, "num/den", and a ref)."""
    rng = random.Random(seed)
    return [{
        "pageid": 9000000 + i, "title": f"File:Field near the river {i}.jpg",
        "lat": rng.uniform(bbox.south, bbox.north), "lon": rng.uniform(bbox.west, bbox.east),
        "licence": LICENCES[i % len(LICENCES)], "mime": "image/jpeg" if i % 11 else "image/svg+xml",
        "artist": f'<a href="//commons.wikimedia.org/wiki/User:W{i}" title="User:W{i}">Walker &amp; Co {i}</a>',
        "date": f"2019-07-{1 + i % 28:02d} 12:{i % 60:02d}:00",
        "heading": (f"{i * 4111 % 36000}/100", "TM"[i % 2]) if i % 3 == 0 else None,
    } for i in range(n)]


class FakeCommons(FakeServer):
    """`action=query&generator=geosearch&prop=imageinfo|coordinates` at /w/api.php (formatversion 2).

    Image info comes `batch` pages per reply, with `continue` for the rest, as MediaWiki does
    when a prop cannot fit one reply; coordinates come with every reply. extmetadata holds the
    licence, the artist, the date and, for files that have one, the EXIF camera heading
    (GPSImgDirection, GPSImgDirectionRef); as in MediaWiki, `iiextmetadatafilter` keeps only the
    fields it lists. GeoData's coordinates carry no heading (see sources/commons.py).
    """

    def __init__(self, files: list[dict], batch: int = 10, **kwargs):
        super().__init__(**kwargs)
        self.files, self.batch = files, batch

    @property
    def api_url(self) -> str:
        return self.url + "/w/api.php"

    def handle(self, method, path, params, headers) -> Response:
        if path != "/w/api.php":
            return super().handle(method, path, params, headers)
        if params.get("action") != "query" or params.get("generator") != "geosearch":
            return _json({"error": {"code": "badvalue", "info": "this fake only knows generator=geosearch"}})
        radius, limit = int(params.get("ggsradius", 500)), int(params.get("ggslimit", 10))
        if not 10 <= radius <= 10000:
            info = f'Invalid value "{radius}" for integer parameter "ggsradius": must be between 10 and 10000'
            return _json({"error": {"code": "outofrange", "info": info}})
        lat, lon = (float(v) for v in params["ggscoord"].split("|"))
        found = [] if params.get("ggsnamespace") != "6" else sorted(
            (f for f in self.files if distance_m(lat, lon, f["lat"], f["lon"]) <= radius),
            key=lambda f: distance_m(lat, lon, f["lat"], f["lon"]))[:limit]
        first = int(params.get("iicontinue", 0))
        pages = []
        for i, f in enumerate(found):
            page = {"pageid": f["pageid"], "ns": 6, "title": f["title"],
                    "coordinates": [{"lat": f["lat"], "lon": f["lon"], "primary": True, "globe": "earth"}]}
            if first <= i < first + self.batch:
                name = f"commons_{f['pageid']}"
                page["imageinfo"] = [{
                    "url": f"{self.url}/img/{name}_orig.jpg", "thumburl": f"{self.url}/img/{name}.jpg",
                    "width": 4000, "height": 3000, "mime": f["mime"],
                    "extmetadata": self.extmetadata(f, params.get("iiextmetadatafilter", ""))}]
            pages.append(page)
        body = {"batchcomplete": True, "query": {"pages": pages}} if pages else {"batchcomplete": True}
        if first + self.batch < len(found):
            body = {"continue": {"iicontinue": str(first + self.batch), "continue": "||"}, **body}
            del body["batchcomplete"]
        return _json(body)


    @staticmethod
    def extmetadata(f: dict, wanted: str) -> dict:
        meta = {"LicenseShortName": f["licence"], "Artist": f["artist"], "DateTimeOriginal": f["date"]}
        if f.get("heading"):
            meta["GPSImgDirection"], meta["GPSImgDirectionRef"] = f["heading"]
        keep = set(wanted.split("|")) if wanted else set(meta)
        return {k: {"value": v} for k, v in meta.items() if k in keep}


# ---------------------------------------------------------------------------------------------
# Satellite: Yandex Static 1.x and tile servers


class FakeYandex(FakeServer):
    """Yandex Static API 1.x at /1.x/: a satellite image centred on `ll`, or 400 with an XML error."""

    @property
    def api_url(self) -> str:
        return self.url + "/1.x/"

    def handle(self, method, path, params, headers) -> Response:
        if path.rstrip("/") != "/1.x":
            return super().handle(method, path, params, headers)
        try:
            lon, lat = (float(v) for v in params["ll"].split(","))
        except (KeyError, ValueError):
            return self.xml_error(f"Wrong ll: {params.get('ll', '')}")
        z = params.get("z", "12")
        if not z.isdigit() or int(z) > 17:
            return self.xml_error(f"Wrong zoom: {z}")
        size = params.get("size", "450,450")
        try:
            w, h = (int(v) for v in size.split(","))
        except ValueError:
            return self.xml_error(f"Wrong size: {size}")
        if not (1 <= w <= 650 and 1 <= h <= 450):
            return self.xml_error(f"Wrong size: {size}")
        scale = float(params.get("scale", 1))
        if not 1.0 <= scale <= 4.0:
            return self.xml_error(f"Wrong scale: {params['scale']}")
        if params.get("l") not in ("sat", "map", "sat,skl"):
            return self.xml_error(f"Wrong layer: {params.get('l', '')}")
        sw, sh = round(w * scale), round(h * scale)
        px, py = lonlat_to_pixel(lat, lon, int(z), 256 * scale)
        image = satellite_pixels(int(z), math.floor(px - sw / 2), math.floor(py - sh / 2), sw, sh)
        return 200, {"Content-Type": "image/jpeg"}, encode(image, "jpeg")

    @staticmethod
    def xml_error(message: str) -> Response:
        body = ('<?xml version="1.0" encoding="utf-8"?>\n'
                f"<error><status>400</status><message>{message}</message></error>")
        return 400, {"Content-Type": "text/xml; charset=utf-8"}, body.encode()


class FakeTiles(FakeServer):
    """256-px tiles at /tiles/{z}/{y}/{x}.<fmt> (order="zyx": Esri, WMTS) or /tiles/{z}/{x}/{y} ("zxy").

    404 outside 0..2^z-1 or above max_zoom; throttling (429) and outages (5xx) come from `fail_next`.
    """

    def __init__(self, order: str = "zyx", fmt: str = "jpeg", max_zoom: int = 19, **kwargs):
        super().__init__(**kwargs)
        self.order, self.fmt, self.max_zoom = order, fmt, max_zoom

    @property
    def template(self) -> str:
        first, second = ("{y}", "{x}") if self.order == "zyx" else ("{x}", "{y}")
        return f"{self.url}/tiles/{{z}}/{first}/{second}.{'jpg' if self.fmt == 'jpeg' else self.fmt}"

    def handle(self, method, path, params, headers) -> Response:
        parts = path.split("/")
        if len(parts) != 5 or parts[1] != "tiles":
            return super().handle(method, path, params, headers)
        try:
            z, a, b = int(parts[2]), int(parts[3]), int(parts[4].split(".")[0])
        except ValueError:
            return 404, {"Content-Type": "text/plain"}, b"bad tile path"
        x, y = (b, a) if self.order == "zyx" else (a, b)
        if z > self.max_zoom or not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
            return 404, {"Content-Type": "text/plain"}, b"tile out of range"
        image = satellite_pixels(z, x * 256, y * 256, 256, 256)
        return 200, {"Content-Type": f"image/{self.fmt}"}, encode(image, self.fmt)
