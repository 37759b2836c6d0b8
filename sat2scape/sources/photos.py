"""`python -m sat2scape photos vk|commons`: collect geotagged photos into a dataset folder.

    python -m sat2scape photos vk --bbox 55.5,37.3,56.0,37.9 --since 2019-06-01 --until 2019-08-31 --out data/moscow
    python -m sat2scape photos commons --bbox 55.5,37.3,56.0,37.9 --out data/moscow

Both sources run in two phases, and both resume where a crash or `kill -9` stopped them:

1. search: each finished search unit (VK: grid point x time window; Commons: grid point) is one
   line in `state/<source>_search.jsonl`, holding the photos it found. A unit is written only
   when it is complete, so a rerun redoes at most the unit that was running.
2. download: each photo is saved atomically to `photos/<safe_name>.jpg` *before* its row is
   appended to `state/<source>_photos.jsonl`; a failure (corrupt, too big, not an image, HTTP
   error) goes to `state/<source>_failed.jsonl` with the reason, and no file is kept.
   The camera heading comes from the API where it has one (Commons), else from the file's EXIF
   GPSImgDirection (http.exif_heading); empty when neither knows it.

`photos.csv` is rebuilt from `state/` (rows of other sources are kept) every few seconds and at
the end, always atomically and only with rows whose file exists.
One process at a time works in a dataset folder (files.folder_lock): a second collector, the
satellite stage or the filter funnel on the same folder stops at once, naming the holder's pid.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from .. import manifest
from ..files import FolderLocked, append_jsonl, folder_lock, read_jsonl
from . import clean_after_crash, parse_bbox
from .http import MAX_BYTES, MAX_PIXELS, Http, SourceError, download_image, parallel

CSV_EVERY_S = 10.0  # rewrite photos.csv at most this often during downloads


def write_photos_csv(dataset: Path, source: str, saved: dict[str, dict]) -> None:
    """photos.csv = other sources' rows + this source's saved photos whose files exist."""
    others = manifest.read(dataset, "photos.csv", missing_ok=True)
    others = others[others["source"] != source]
    rows = pd.DataFrame([r for r in saved.values() if (dataset / r["path"]).exists()],
                        columns=manifest.COLUMNS["photos.csv"])
    manifest.write(dataset, "photos.csv", pd.concat([others, rows], ignore_index=True))


def collect(dataset, source, workers: int = 8, image_http: Http | None = None, max_bytes: int = MAX_BYTES,
            max_pixels: int = MAX_PIXELS, retry_failed: bool = False, progress: bool = True) -> dict:
    """Search `source` (a vk.VKSource or commons.CommonsSource) and download what it finds into `dataset`.

    Returns counts for a summary line. Raises SourceError when the source must stop (bad token,
    captcha, quota); everything finished so far is kept and a rerun continues from there.
    Raises files.FolderLocked at once when another collector is working in `dataset`.
    """
    dataset = Path(dataset)
    with folder_lock(dataset, f"photos {source.name}"):  # one collector per folder, or stop here
        state = dataset / "state"
        search_log = state / f"{source.name}_search.jsonl"
        photos_log = state / f"{source.name}_photos.jsonl"
        failed_log = state / f"{source.name}_failed.jsonl"
        clean_after_crash(dataset, ["photos/.*.tmp", ".photos.csv.*.tmp", f"state/{source.name}_*.jsonl"])

        done, candidates = set(), {}
        for unit in read_jsonl(search_log):
            done.add(unit["unit"])
            for record in unit["photos"]:
                candidates.setdefault(record["photo_id"], record)
        saved = {r["photo_id"]: r for r in read_jsonl(photos_log) if (dataset / r["path"]).exists()}
        failed = {r["photo_id"] for r in read_jsonl(failed_log)}
        write_photos_csv(dataset, source.name, saved)  # repair photos.csv after a crash
        counts = {"units": len(done), "new_saved": 0, "new_failed": 0}

        try:
            for unit in tqdm(source.units(), desc=f"{source.name} search", disable=not progress):
                for key, records in source.search(unit, done):
                    append_jsonl(search_log, {"unit": key, "photos": records})
                    done.add(key)
                    for record in records:
                        candidates.setdefault(record["photo_id"], record)
            counts["units"] = len(done)

            todo = [r for pid, r in candidates.items() if pid not in saved and (retry_failed or pid not in failed)]
            image_http = image_http or Http(rate=0, timeout=30, retries=3)

            def fetch(record):
                path = Path("photos") / f"{manifest.safe_name(record['photo_id'])}.jpg"
                return path, download_image(image_http, record["url"], dataset / path, max_bytes, max_pixels)

            last_csv = time.monotonic()
            for record, (path, result) in parallel(fetch, todo, workers, f"{source.name} photos", progress):
                if result.ok:
                    row = {**record, "path": path.as_posix(), "width": result.width, "height": result.height,
                           "sha256": result.sha256}
                    if record.get("heading") in ("", None) and result.heading is not None:
                        # the API's heading (Commons: the original's EXIF) first, else the downloaded
                        # file's own EXIF; the ref (T/M) stays in the state log, photos.csv has none
                        row.update(heading=result.heading, heading_ref=result.heading_ref)
                    append_jsonl(photos_log, row)  # after the file is in place, never before
                    saved[record["photo_id"]] = row
                    counts["new_saved"] += 1
                else:
                    now = dt.datetime.now(dt.timezone.utc).isoformat()
                    append_jsonl(failed_log, {"photo_id": record["photo_id"], "url": record["url"],
                                              "reason": result.reason, "at": now})
                    counts["new_failed"] += 1
                if time.monotonic() - last_csv > CSV_EVERY_S:
                    write_photos_csv(dataset, source.name, saved)
                    last_csv = time.monotonic()
        finally:
            write_photos_csv(dataset, source.name, saved)
        failed_total = len({r["photo_id"] for r in read_jsonl(failed_log)} - set(saved))
        return {**counts, "found": len(candidates), "saved": len(saved), "failed": failed_total,
                "dropped": dict(source.dropped)}


# ---------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="source", required=True, metavar="{vk,commons}")
    vk = sub.add_parser("vk", help="VK photos.search (token from VK_TOKEN or a prompt)")
    commons = sub.add_parser("commons", help="Wikimedia Commons geosearch, free licences only")
    for p, grid_km, rate in ((vk, 8.0, 3.0), (commons, 2.0, 2.0)):
        p.add_argument("--bbox", required=True, help="S,W,N,E in degrees, e.g. 55.5,37.3,56.0,37.9")
        p.add_argument("--out", required=True, help="dataset folder, e.g. data/moscow")
        p.add_argument("--grid-km", type=float, default=grid_km, help="spacing of the search points (km)")
        p.add_argument("--rate", type=float, default=rate, help="API requests per second, all threads together")
        p.add_argument("--base-url", default=None, help="API endpoint (default: the real one)")
        p.add_argument("--workers", type=int, default=8, help="parallel image downloads")
        p.add_argument("--download-rate", type=float, default=0, help="image requests per second (0 = no limit)")
        p.add_argument("--timeout", type=float, default=20.0, help="seconds to connect / between bytes")
        p.add_argument("--retries", type=int, default=4, help="extra attempts after transient errors")
        p.add_argument("--backoff", type=float, default=1.0, help="first retry wait (s), doubling")
        p.add_argument("--max-bytes", type=int, default=MAX_BYTES, help="largest image accepted")
        p.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help="decompression-bomb guard")
        p.add_argument("--retry-failed", action="store_true", help="try photos that failed before again")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
    vk.add_argument("--since", required=True, help="first upload day, YYYY-MM-DD (UTC)")
    vk.add_argument("--until", default=None, help="last upload day, YYYY-MM-DD (default: today)")
    vk.add_argument("--window-days", type=float, default=30.0, help="length of the time windows")
    vk.add_argument("--cap", type=int, default=3000,
                    help="results reachable by offset paging; windows with more are split")
    vk.add_argument("--count", type=int, default=1000, help="results per request (at most 1000)")
    vk.add_argument("--api-version", default="5.199", help="the VK API `v` parameter")
    vk.add_argument("--token-env", default="VK_TOKEN", help="environment variable holding the token")
    commons.add_argument("--limit", type=int, default=500, help="ggslimit: files per geosearch request")
    commons.add_argument("--thumb-width", type=int, default=1024, help="iiurlwidth: width of the downloaded copy")
    commons.add_argument("--all-licences", action="store_true", help="keep non-free licences too")


def make_source(args: argparse.Namespace):
    """The source object for parsed arguments (raises ValueError naming a bad field)."""
    bbox = parse_bbox(args.bbox)
    common = dict(grid_km=args.grid_km, rate=args.rate, retries=args.retries, backoff=args.backoff,
                  timeout=args.timeout)
    if args.base_url:
        common["base_url"] = args.base_url
    if args.source == "vk":
        from .vk import VKSource, get_token, parse_day

        since = parse_day(args.since, "--since")
        until = parse_day(args.until, "--until") if args.until else None
        return VKSource(get_token(args.token_env), bbox, since, until, window_days=args.window_days,
                        cap=args.cap, count=args.count, version=args.api_version, **common)
    from .commons import CommonsSource

    return CommonsSource(bbox, limit=args.limit, thumb_width=args.thumb_width,
                         free_only=not args.all_licences, **common)


def run(args: argparse.Namespace) -> int:
    try:
        source = make_source(args)
        image_http = Http(rate=args.download_rate, timeout=args.timeout, retries=args.retries, backoff=args.backoff)
        summary = collect(args.out, source, workers=args.workers, image_http=image_http, max_bytes=args.max_bytes,
                          max_pixels=args.max_pixels, retry_failed=args.retry_failed, progress=not args.no_progress)
    except ValueError as e:  # bad arguments or an unreadable photos.csv (ManifestError)
        print(f"error: {e}", file=sys.stderr)
        return 2
    except FolderLocked as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except SourceError as e:
        print(f"stopped: {e}\nEverything finished so far is saved under {Path(args.out) / 'state'}; "
              f"rerun the same command to continue.", file=sys.stderr)
        return 1
    print(f"{args.source}: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return 0
