"""One place for HTTP: sessions, rate limits, retries and safe image downloads.

VK, Commons and the satellite providers all go through `Http`, so every request they make is
rate-limited by one limiter shared by all threads, retried the same way (timeouts, connection
errors, HTTP 5xx and 429), and never shows a token: the token travels only in the
`Authorization` header, is held in a `Secret` whose repr is redacted, and is scrubbed from
every error message built here.

`download_image` is the one way a remote image reaches the disk: size-capped while streaming,
content type checked, fully decoded by Pillow behind a decompression-bomb guard, and written
atomically, so a corrupt or partial download is reported as a failure and never saved. It also
reads the camera heading from the file's EXIF (`exif_heading`), for VK and Commons alike.
"""

from __future__ import annotations

import io
import json
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import requests
from PIL import Image
from tqdm.auto import tqdm

from ..files import atomic_write_bytes, sha256_bytes

log = logging.getLogger(__name__)

USER_AGENT = "sat2scape/0.1 (research data collection; https://github.com/sat2scape/sat2scape)"
MAX_BYTES = 25_000_000      # no photo or tile we want is larger
MAX_PIXELS = 50_000_000     # decompression-bomb guard, tighter than Pillow's own 89 Mpx warning


class SourceError(RuntimeError):
    """A collector has to stop. The message says why and what to do; progress is already saved."""


class HttpError(SourceError):
    """A request still failed after every retry (or cannot work at all, e.g. a malformed URL)."""


class TooLarge(Exception):
    """A response body is over the byte limit; it was not read further."""


class Secret:
    """A token that never shows itself: str() and repr() are redacted, `.value` is the text."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = str(value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def redact(self, text: str) -> str:
        return text.replace(self.value, "***") if self.value else text


class RateLimiter:
    """At most `rate` requests in any one second, shared by all threads that hold it.

    Requests are spaced evenly, (1 s + margin) / rate apart. Even spacing never bursts, and the
    margin keeps network jitter from squeezing rate + 1 requests into one second at the server.
    """

    def __init__(self, rate: float | None, margin: float = 0.05):
        self.rate = rate or 0
        self.interval = (1.0 + margin) / rate if rate and rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:  # reserve the next slot; sleep outside the lock
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


@dataclass
class Reply:
    """A finished response: the body is already read (and size-capped)."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON. A body that is not JSON means a wrong endpoint: the run must stop."""
        try:
            return json.loads(self.content)
        except ValueError:
            raise SourceError(f"{self.url}: HTTP {self.status} with a body that is not JSON; "
                              f"is the API URL right?") from None


# Failures worth another try: the network, the server's own errors, throttling.
TRANSIENT = (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


class Http:
    """Rate-limited, retrying HTTP with one `requests.Session` per thread.

    rate      requests per second over all threads (0 = unlimited)
    timeout   seconds to connect and between bytes of the response
    retries   extra attempts after a timeout, connection error, HTTP 5xx or 429
    backoff   first wait between attempts in seconds; doubles each time (429's Retry-After wins if longer)
    bearer    token sent as `Authorization: Bearer ...`
    """

    def __init__(self, rate: float = 0, timeout: float = 20.0, retries: int = 4, backoff: float = 1.0,
                 bearer: Secret | None = None, user_agent: str = USER_AGENT):
        self.limiter = RateLimiter(rate)
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.bearer, self.user_agent = bearer, user_agent
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"Http(rate={self.limiter.rate}, timeout={self.timeout}, retries={self.retries})"

    def redact(self, text: str) -> str:
        return self.bearer.redact(text) if self.bearer else text

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def get(self, url: str, params: Mapping | None = None, max_bytes: int | None = None) -> Reply:
        return self.request("GET", url, params=params, max_bytes=max_bytes)

    def post(self, url: str, data: Mapping | None = None, max_bytes: int | None = None) -> Reply:
        return self.request("POST", url, data=data, max_bytes=max_bytes)

    def request(self, method: str, url: str, params: Mapping | None = None, data: Mapping | None = None,
                max_bytes: int | None = None) -> Reply:
        """One request with retries. Returns any reply below 500 other than 429 (callers judge 4xx)."""
        headers = {"User-Agent": self.user_agent}
        if self.bearer:
            headers["Authorization"] = f"Bearer {self.bearer.value}"
        for attempt in range(self.retries + 1):
            self.limiter.wait()
            wait = self.backoff * 2 ** attempt
            try:
                with self._session().request(method, url, params=params, data=data, headers=headers,
                                             timeout=self.timeout, stream=True) as r:
                    reply = Reply(r.status_code, r.headers, _read_body(r, max_bytes), r.url)
            except TRANSIENT as e:
                problem = f"{type(e).__name__}: {e}"
            except requests.RequestException as e:  # a malformed URL and the like: retrying cannot help
                raise HttpError(self.redact(f"{method} {url} failed: {e}")) from None
            else:
                if reply.status != 429 and reply.status < 500:
                    return reply
                problem = f"HTTP {reply.status}"
                wait = max(wait, _retry_after(reply))
            if attempt < self.retries:
                log.info(self.redact(f"{method} {url}: {problem}; retry {attempt + 1}/{self.retries} in {wait:.2f} s"))
                time.sleep(wait)
        raise HttpError(self.redact(f"{method} {url} failed after {self.retries + 1} attempts: {problem}"))


def _read_body(r: requests.Response, max_bytes: int | None) -> bytes:
    if max_bytes is not None:
        declared = r.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"{declared} bytes is over the limit of {max_bytes}")
    chunks, size = [], 0
    for chunk in r.iter_content(1 << 16):
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise TooLarge(f"more than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(reply: Reply, cap: float = 60.0) -> float:
    value = reply.headers.get("Retry-After", "")
    return min(float(value), cap) if value.replace(".", "", 1).isdigit() else 0.0


# ---------------------------------------------------------------------------------------------
# Images


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode image bytes fully. Raises ValueError for bombs, truncated and corrupt files."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > max_pixels:  # checked from the header, before decoding
            raise ValueError(f"{image.width}x{image.height} is over the limit of {max_pixels} pixels")
        image.load()  # a truncated file fails here, not later in someone else's code
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(f"not a readable image ({type(e).__name__}: {e})") from None
    return image


# The camera heading in EXIF (CIPA DC-008, the GPS IFD): GPSImgDirectionRef (0x0010) is "T" (true
# north) or "M" (magnetic north), GPSImgDirection (0x0011) a RATIONAL in degrees, 0.00 to 359.99,
# clockwise. The value is recorded as given: a magnetic heading is not corrected for declination
# (about 11 degrees east around Moscow), the ref is kept beside it in state/<source>_photos.jsonl.
GPS_IFD, GPS_IMG_DIRECTION_REF, GPS_IMG_DIRECTION = 0x8825, 0x0010, 0x0011


def parse_heading(value) -> float | None:
    """Degrees clockwise from north from an EXIF rational, a number, or text like "12345/100" or
    "123.45"; None for anything else (empty, x/0, NaN, outside 0..360, not a number)."""
    try:
        if isinstance(value, str):
            text = value.strip()
            if "/" in text:
                num, den = text.split("/", 1)
                value = float(num) / float(den) if float(den) else math.nan
            else:
                value = float(text)
        heading = float(value)  # PIL's IFDRational is a number; x/0 gives NaN
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not math.isfinite(heading) or not 0 <= heading <= 360:
        return None
    return round(heading % 360, 2)


def exif_heading(image: Image.Image) -> tuple[float, str] | None:
    """(heading, ref) from a decoded image's EXIF GPSImgDirection, or None if absent or unreadable.

    ref is "T" (true north), "M" (magnetic north) or "" when the file does not say.
    """
    try:
        gps = image.getexif().get_ifd(GPS_IFD)
    except Exception:  # a corrupt EXIF block must not cost the photo; it only has no heading
        return None
    heading = parse_heading(gps.get(GPS_IMG_DIRECTION))
    if heading is None:
        return None
    ref = str(gps.get(GPS_IMG_DIRECTION_REF) or "").strip("\x00 ").upper()
    return heading, ref if ref in ("T", "M") else ""


@dataclass
class Download:
    ok: bool
    reason: str = ""
    sha256: str = ""
    width: int = 0
    height: int = 0
    heading: float | None = None  # EXIF GPSImgDirection, degrees clockwise from north
    heading_ref: str = ""         # "T" true or "M" magnetic north, "" if not given


def download_image(http: Http, url: str, path, max_bytes: int = MAX_BYTES,
                   max_pixels: int = MAX_PIXELS) -> Download:
    """Fetch an image and save it as a JPEG at `path` atomically, or say why not."""
    try:
        reply = http.get(url, max_bytes=max_bytes)
    except (HttpError, TooLarge) as e:
        return Download(False, str(e))
    if reply.status != 200:
        return Download(False, f"HTTP {reply.status}")
    if not reply.content_type.startswith("image/"):
        return Download(False, f"content type {reply.content_type or 'missing'!r} is not an image")
    try:
        image = decode_image(reply.content, max_pixels)
    except ValueError as e:
        return Download(False, str(e))
    if image.format == "JPEG" and image.mode == "RGB":
        data = reply.content  # keep the file as served: re-encoding a JPEG only loses quality
    else:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=95)
        data = buffer.getvalue()
    atomic_write_bytes(path, data)
    heading, ref = exif_heading(image) or (None, "")  # from the served file: a re-encoded copy has no EXIF
    return Download(True, "", sha256_bytes(data), image.width, image.height, heading, ref)


def parallel(fn: Callable, items: Iterable, workers: int = 8, desc: str = "",
             progress: bool = True) -> Iterator[tuple[Any, Any]]:
    """Run `fn(item)` on a thread pool and yield `(item, result)` as each finishes, with a progress bar.

    If the consumer stops (an exception, a break), queued items are cancelled and running ones
    finish before this returns, so no thread is left writing behind the caller's back.
    """
    pool = ThreadPoolExecutor(max(1, workers))
    try:
        futures = {pool.submit(fn, item): item for item in items}
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc, disable=not progress):
            yield futures[future], future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
