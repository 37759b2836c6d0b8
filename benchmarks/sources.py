"""Benchmark the data sources against the local fake servers (no network needed).

    python benchmarks/sources.py

1. Rate limit: requests per second held at the server vs the configured limit, through the VK
   client at its default 3 req/s and through `Http` at 20 req/s from 8 threads. "max in 1 s" is
   the most requests the server saw in any one-second window; it must never exceed the limit.
2. Image downloads: throughput with 8 threads vs sequential, from a host that adds 50 ms of
   latency to every image (as a distant CDN would).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sat2scape.sources import BBox
from sat2scape.sources.fake_servers import FakeTiles, FakeVK, make_vk_photos
from sat2scape.sources.http import Http, Secret, download_image, parallel
from sat2scape.sources.vk import VKSource, parse_day


def held_rate(fake, prefix: str) -> tuple[int, float, int]:
    times = sorted(r["t"] for r in fake.requests if r["path"].startswith(prefix))
    return len(times), (len(times) - 1) / (times[-1] - times[0]), fake.rate_seen(prefix)


def rate_through_vk(limit: float = 3.0, windows: int = 12) -> tuple[int, float, int]:
    bbox = BBox(55.70, 37.50, 55.74, 37.56)
    since = parse_day("2019-06-01", "since")
    with FakeVK(make_vk_photos(bbox, since, since + windows * 86400, n=50), rate_limit=limit) as fake:
        source = VKSource(Secret(fake.token), bbox, since, since + (windows - 1) * 86400, grid_km=5,
                          window_days=1, rate=limit, retries=0,  # retries=0: an error 6 would stop it
                          base_url=fake.api_url)
        for unit in source.units():
            list(source.search(unit, set()))
        return held_rate(fake, "/method/")


def rate_through_http(limit: float = 20.0, requests: int = 60, threads: int = 8) -> tuple[int, float, int]:
    with FakeTiles() as fake:
        http = Http(rate=limit)
        urls = [fake.template.format(z=4, x=i % 16, y=i // 16) for i in range(requests)]
        list(parallel(http.get, urls, threads, progress=False))
        return held_rate(fake, "/tiles/")


def download_throughput(workers: int, images: int = 48, latency: float = 0.05) -> float:
    with FakeTiles(latency=latency) as fake, tempfile.TemporaryDirectory() as folder:
        http = Http()
        jobs = [(f"{fake.url}/img/photo{i}.jpg", Path(folder) / f"{i}.jpg") for i in range(images)]
        start = time.perf_counter()
        results = [r for _, r in parallel(lambda job: download_image(http, *job), jobs, workers, progress=False)]
        elapsed = time.perf_counter() - start
        assert all(r.ok for r in results)
        return images / elapsed


def main() -> None:
    print("1. rate limit, measured at the fake server")
    print(f"   {'client':<28}{'limit':>7}{'requests':>10}{'held req/s':>12}{'max in 1 s':>12}{'held/limit':>12}")
    for name, limit, (count, rate, most) in (("VK client (default)", 3.0, rate_through_vk(3.0)),
                                             ("Http, 8 threads", 20.0, rate_through_http(20.0))):
        print(f"   {name:<28}{limit:>7.0f}{count:>10}{rate:>12.2f}{most:>12}{rate / limit:>12.2f}")
        assert most <= limit, f"{name}: {most} requests in one second, over the limit of {limit}"

    print("\n2. image downloads, 48 images, 50 ms latency each")
    sequential = download_throughput(workers=1)
    threaded = download_throughput(workers=8)
    print(f"   sequential   {sequential:6.1f} images/s")
    print(f"   8 threads    {threaded:6.1f} images/s   speed-up x{threaded / sequential:.1f}")


if __name__ == "__main__":
    main()
