"""VK `photos.search` over a grid of points x time windows (contracts: shared/docs/api_contracts.md, section 1).

The bounding box is covered by a grid of points; each point is searched with the smallest
allowed `radius` (10, 100, 800, 6000 or 50000 m) that covers its grid cell. Time is cut into
windows (`start_time`..`end_time`, both inclusive, in unix seconds). A window is paged with
`offset`/`count` (count <= 1000). VK serves only the first few thousand results of a query
(the ~3000 cap is unverified, so it is a setting), so a window whose `count` is over the cap is
split in two halves, recursively, until every half can be paged to the end.

Records keep only photos with `lat`/`long` inside the box. The URL is the largest size by
width x height; photos uploaded before 2012 may report 0x0 sizes, and then the size letter
decides, largest first: w (2560) z (1080) y (807) x (604) r (510 crop) q (320 crop) p (200 crop)
m (130) o (130 crop) s (75); other letters after those. `taken_at` is VK's `date`, the *upload*
time (VK gives no capture time). The licence is recorded as "VK terms": VK photos carry none.

Errors: 1, 6, 9, 10 are retried with backoff (6 waits at least 1/rate, 9 ten times longer);
15, 18, 30, 200 skip the window; 5 (token), 14 (captcha), 29 (daily quota), 100 (a bad
parameter) and anything else stop the run with a message saying what to do, progress saved.

The token comes from the VK_TOKEN environment variable or a getpass prompt, is sent only as
`Authorization: Bearer`, and lives in an `http.Secret`: it is never printed, logged or saved.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import sys
import time
from collections import Counter
from typing import Iterator

from . import BBox, grid
from .http import Http, Secret, SourceError

log = logging.getLogger(__name__)

API_URL = "https://api.vk.com/method"
RADII_M = (10, 100, 800, 6000, 50000)
SIZE_LETTERS = ("w", "z", "y", "x", "r", "q", "p", "m", "o", "s")  # largest first
LICENSE = "VK terms (no licence given)"
DAY_S = 86400

RETRY = {1, 6, 9, 10}
SKIP = {15, 18, 30, 200}
WHAT_TO_DO = {
    5: "the token is invalid or expired: get a new one (dev.vk.com/en/api/access-token/getting-started), "
       "put it in VK_TOKEN and rerun",
    14: "VK wants a captcha: wait an hour, lower --rate, and rerun",
    29: "the daily quota for photos.search is used up: rerun tomorrow",
    100: "VK rejected a parameter: check --bbox, --since/--until, --count (<= 1000) and --api-version",
}


class Skipped(Exception):
    """VK refused this one request (private, deleted, access denied); the run goes on."""


def _can_prompt() -> bool:
    """A person can answer a prompt: a terminal, or a running notebook kernel (not merely an
    imported ipykernel, which test runners and tools also pull in)."""
    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    if type(shell).__name__ == "ZMQInteractiveShell":
        return True
    return sys.stdin is not None and sys.stdin.isatty()


def get_token(env: str = "VK_TOKEN") -> Secret:
    """The VK token from `env`, else a getpass prompt (a terminal or a notebook); never echoed."""
    value = os.environ.get(env, "").strip()
    if not value:
        if not _can_prompt():
            raise ValueError(f"{env} is not set: export {env}=<your VK access token> and rerun "
                             f"(a user or service key; it is never printed or saved)")
        import getpass

        value = getpass.getpass(f"VK access token ({env} is not set): ").strip()
        if not value:
            raise ValueError("no VK token given")
    return Secret(value)


def parse_day(text: str, field: str) -> int:
    """`YYYY-MM-DD` -> unix seconds of that day's midnight, UTC."""
    try:
        day = dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise ValueError(f"{field} {text!r}: expected a date YYYY-MM-DD, e.g. 2019-06-01") from None
    return int(day.timestamp())


def largest_size(sizes: list[dict]) -> dict | None:
    """The biggest entry of a photo's `sizes` by width x height, then by letter (for 0x0 sizes)."""
    def rank(size):
        letter = size.get("type", "")
        order = SIZE_LETTERS.index(letter) if letter in SIZE_LETTERS else len(SIZE_LETTERS)
        return (int(size.get("width") or 0) * int(size.get("height") or 0), -order)

    sizes = [s for s in sizes if s.get("url") or s.get("src")]
    return max(sizes, key=rank) if sizes else None


class VKSource:
    """Searches one bounding box and time range; used by photos.collect()."""

    name = "vk"

    def __init__(self, token: Secret, bbox: BBox, since: int, until: int | None = None, grid_km: float = 8.0,
                 window_days: float = 30.0, cap: int = 3000, count: int = 1000, version: str = "5.199",
                 base_url: str = API_URL, rate: float = 3.0, retries: int = 4, backoff: float = 1.0,
                 timeout: float = 20.0):
        if not 1 <= count <= 1000:
            raise ValueError(f"--count {count}: VK allows 1..1000 results per request")
        if cap < count:
            raise ValueError(f"--cap {cap} must be at least --count {count}")
        if window_days <= 0:
            raise ValueError(f"--window-days {window_days}: must be positive")
        if until is None:  # today, at day granularity, so a rerun on the same day sees the same windows
            until = parse_day(dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"), "--until")
        if until < since:
            raise ValueError("--until is before --since")
        self.bbox, self.since, self.until_end = bbox, since, until + DAY_S - 1
        self.points, cell_radius = grid(bbox, grid_km)
        fitting = [r for r in RADII_M if r >= cell_radius]
        if not fitting:
            raise ValueError(f"--grid-km {grid_km}: a cell needs a {cell_radius:.0f} m radius, over VK's 50000 m")
        self.radius = fitting[0]
        self.window_s = int(window_days * DAY_S)
        self.cap, self.count, self.version = cap, count, version
        self.base_url = base_url.rstrip("/")
        self.retries, self.backoff, self.rate = retries, backoff, rate
        # Http's own retries cover the network and HTTP 5xx; VK's error codes are handled in call().
        self.http = Http(rate=rate, timeout=timeout, retries=retries, backoff=backoff, bearer=token)
        self.dropped = Counter()

    def __repr__(self) -> str:
        return f"VKSource(bbox={tuple(self.bbox)}, points={len(self.points)}, radius={self.radius})"

    def call(self, method: str, **params) -> dict:
        """One API call (POST form, Bearer token), with VK's error codes handled as documented above."""
        for attempt in itertools.count():
            body = self.http.post(f"{self.base_url}/{method}", data={**params, "v": self.version}).json()
            if "response" in body:
                return body["response"]
            error = body.get("error") or {}
            code, message = int(error.get("error_code", 0)), self.http.redact(str(error.get("error_msg", "")))
            if code in RETRY and attempt < self.retries:
                wait = self.backoff * 2 ** attempt
                if code == 6 and self.rate:  # too many requests per second: let a slot pass first
                    wait = max(wait, 1 / self.rate)
                if code == 9:  # flood control: back off for longer
                    wait *= 10
                log.info(f"VK error {code} ({message}); retry {attempt + 1}/{self.retries} in {wait:.2f} s")
                time.sleep(wait)
                continue
            if code in SKIP:
                raise Skipped(f"VK error {code} ({message})")
            advice = WHAT_TO_DO.get(code, "retries are used up" if code in RETRY
                                    else "see dev.vk.com/en/reference/errors")
            raise SourceError(f"VK error {code} ({message}) on {method}: {advice}")

    def units(self) -> list[tuple[float, float, int, int]]:
        """Grid point x time window, as (lat, lon, start, end) with inclusive unix-second bounds."""
        windows, start = [], self.since
        while start <= self.until_end:
            end = min(start + self.window_s - 1, self.until_end)
            windows.append((start, end))
            start = end + 1
        return [(lat, lon, start, end) for lat, lon in self.points for start, end in windows]

    def search(self, unit: tuple[float, float, int, int], done: set[str]) -> Iterator[tuple[str, list[dict]]]:
        """Yield (key, records) for each finished window under `unit`, halving windows over the cap."""
        lat, lon, start, end = unit
        key = f"{lat:.6f},{lon:.6f}:{start}-{end}"
        if key in done:
            return
        query = dict(lat=lat, long=lon, radius=self.radius, start_time=start, end_time=end, sort=0)
        try:
            page = self.call("photos.search", **query, offset=0, count=self.count)
            total = int(page["count"])
            if total > self.cap and end > start:
                middle = (start + end) // 2
                yield from self.search((lat, lon, start, middle), done)
                yield from self.search((lat, lon, middle + 1, end), done)
                yield key, []  # the halves hold the photos; this marks the split as done
                return
            if total > self.cap:
                log.warning(f"{total} photos in one second at {lat},{lon}; only the first {self.cap} are reachable")
            items, offset = list(page["items"]), self.count
            while page["items"] and offset < min(total, self.cap):
                page = self.call("photos.search", **query, offset=offset, count=min(self.count, self.cap - offset))
                items += page["items"]
                offset += self.count
        except Skipped as e:
            log.warning(f"skipping window {key}: {e}")
            self.dropped["skipped windows"] += 1
            yield key, []
            return
        yield key, [r for r in map(self.record, items) if r]

    def record(self, item: dict) -> dict | None:
        """A photos.csv row (without the download columns) for one `photos_photo`, or None to drop it."""
        if item.get("lat") is None or item.get("long") is None:
            self.dropped["no geotag"] += 1
            return None
        lat, lon = float(item["lat"]), float(item["long"])
        if not self.bbox.contains(lat, lon):  # search circles reach past the box's edges
            self.dropped["outside bbox"] += 1
            return None
        size = largest_size(item.get("sizes") or [])
        if size is None:
            self.dropped["no image url"] += 1
            return None
        owner = item["owner_id"]
        return {
            "photo_id": f"vk:{owner}_{item['id']}", "source": "vk", "lat": lat, "lon": lon,
            "taken_at": dt.datetime.fromtimestamp(int(item["date"]), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "url": size.get("url") or size.get("src"), "license": LICENSE, "author": str(owner), "heading": "",
        }
