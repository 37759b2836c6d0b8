"""sources/satellite.py: tile maths, stitching, XYZ and Yandex providers, cache, pairs.csv."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sat2scape import manifest
from sat2scape.__main__ import main
from sat2scape.files import read_jsonl
from sat2scape.sources.fake_servers import FakeTiles, FakeYandex, satellite_pixels
from sat2scape.sources.http import Http, SourceError
from sat2scape.sources.satellite import (XYZProvider, YandexProvider, download, lonlat_to_pixel, meters_per_pixel,
                                         tile_of, zoom_for)

MOSCOW = (55.75363, 37.62007)


def make_dataset(path, points) -> list[str]:
    ids = [f"vk:1_{i}" for i in range(len(points))]
    rows = [{"photo_id": pid, "source": "vk", "lat": lat, "lon": lon, "path": f"photos/{manifest.safe_name(pid)}.jpg"}
            for pid, (lat, lon) in zip(ids, points)]
    manifest.write(path, "photos.csv", pd.DataFrame(rows))
    return ids


def tile_corner(x: int, y: int, z: int) -> tuple[float, float]:
    n = 2 ** z
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / n)))), x / n * 360 - 180


def test_tile_maths_moscow():
    assert tile_of(*MOSCOW, 17) == (79233, 40974)
    assert round(meters_per_pixel(MOSCOW[0], 17), 3) == 0.672
    assert round(meters_per_pixel(MOSCOW[0], 17, tile_px=512), 3) == 0.336
    assert zoom_for(MOSCOW[0], 1.0, max_zoom=19) == 17 and zoom_for(MOSCOW[0], 1.0, max_zoom=14) == 14
    assert lonlat_to_pixel(0, 0, 1) == (256, 256)


@pytest.mark.parametrize("order", ["zyx", "zxy"])
def test_stitched_window_is_centred_on_the_point(tmp_path, order):
    lat, lon = tile_corner(79233, 40974, 17)  # a tile corner: the window needs four tiles
    with FakeTiles(order=order, fmt="png") as fake:
        provider = XYZProvider(fake.template, Http(), tmp_path / "tiles", zoom=17)
        image, zoom, mpp = provider.fetch(lat + 1e-5, lon + 1e-5)
        assert sum(r["path"].startswith("/tiles/") for r in fake.requests) == 4
    px, py = lonlat_to_pixel(lat + 1e-5, lon + 1e-5, 17)
    expected = satellite_pixels(17, math.floor(px - 64 + 0.5), math.floor(py - 64 + 0.5), 128, 128)
    assert (np.asarray(image) == expected).all()
    assert zoom == 17 and round(mpp, 3) == 0.672


def test_resampled_to_the_ground_resolution(tmp_path):
    with FakeTiles(fmt="png") as fake:
        provider = XYZProvider(fake.template, Http(), tmp_path / "tiles", meters_per_px=1.0, tile_size=96)
        image, zoom, mpp = provider.fetch(*MOSCOW)
    assert image.size == (96, 96) and zoom == 17 and mpp == 1.0
    window = 96 / meters_per_pixel(MOSCOW[0], 17)  # ~143 native pixels
    px, py = lonlat_to_pixel(*MOSCOW, 17)
    native = satellite_pixels(17, round(px - window / 2), round(py - window / 2), round(window), round(window))
    assert np.abs(np.asarray(image).mean((0, 1)) - native.mean((0, 1))).max() < 4


def test_404_is_recorded_429_retried_and_tiles_cached(tmp_path):
    ids = make_dataset(tmp_path, [MOSCOW, (55.70, 37.50), (55.80, 37.70)])
    with FakeTiles(max_zoom=16) as fake:
        http = Http(backoff=0.01)
        summary = download(tmp_path, XYZProvider(fake.template, http, tmp_path / "cache", zoom=17), progress=False)
        assert summary["new_failed"] == 3 and len(manifest.read(tmp_path, "pairs.csv")) == 0
        assert all("HTTP 404" in r["reason"] for r in read_jsonl(tmp_path / "state" / "satellite_failed.jsonl"))

        fake.fail_next = [429, 429, 429]
        provider = XYZProvider(fake.template, http, tmp_path / "cache", max_zoom=16)  # 1 m/px from zoom 16
        assert download(tmp_path, provider, workers=2, progress=False)["pairs"] == 3
        tile_requests = sum(r["path"].startswith("/tiles/16/") for r in fake.requests)
        assert tile_requests > 3 and not fake.fail_next

        for done in (tmp_path / "satellite").iterdir():  # outputs lost, the cache kept: no tile fetched again
            done.unlink()
        assert download(tmp_path, provider, progress=False)["new"] == 3
        assert sum(r["path"].startswith("/tiles/16/") for r in fake.requests) == tile_requests
    pairs = manifest.read(tmp_path, "pairs.csv")
    assert list(pairs["photo_id"]) == ids and (pairs["zoom"] == 16).all() and (pairs["meters_per_pixel"] == 1.0).all()
    assert all(Image.open(tmp_path / p).size == (128, 128) for p in pairs["satellite_path"])


def test_pairs_follow_the_kept_photos_with_a_split_by_region(tmp_path):
    ids = make_dataset(tmp_path, [MOSCOW, (55.70, 37.50), (55.80, 37.70), (55.9, 37.2)])
    manifest.write(tmp_path, "filter.csv", pd.DataFrame(
        {"photo_id": ids, "stage": "scene", "keep": [True, False, True, True]}))
    with FakeTiles() as fake:
        provider = XYZProvider(fake.template, Http(), tmp_path / "cache", attribution="Fake", licence="CC0")
        assert download(tmp_path, provider, progress=False) == {"photos": 3, "new": 3, "new_failed": 0, "pairs": 3}
    pairs = manifest.read(tmp_path, "pairs.csv")
    assert list(pairs["photo_id"]) == [ids[0], ids[2], ids[3]]
    assert list(pairs["split"]) == [manifest.region_split(r.lat, r.lon) for r in pairs.itertuples()]
    assert (pairs["attribution"] == "Fake (licence: CC0)").all()
    assert download(tmp_path, provider, progress=False)["new"] == 0  # a rerun has nothing left to do


def test_yandex_centre_crop_and_xml_errors_name_the_parameter(tmp_path):
    make_dataset(tmp_path, [MOSCOW])
    with FakeYandex() as fake:
        image, zoom, mpp = YandexProvider(Http(), fake.api_url).fetch(*MOSCOW)
        px, py = lonlat_to_pixel(*MOSCOW, 17)
        expected = satellite_pixels(17, math.floor(px - 225) + 161, math.floor(py - 225) + 161, 128, 128)
        assert image.size == (128, 128) and zoom == 17 and round(mpp, 3) == 0.672
        assert np.abs(np.asarray(image).astype(int) - expected).mean() < 6  # JPEG, so not exact
        with pytest.raises(SourceError, match=r"Wrong size: 700,450\. .* at most 650,450: change --size"):
            download(tmp_path, YandexProvider(Http(), fake.api_url, size="700,450"), progress=False)
        with pytest.raises(SourceError, match="Wrong zoom: 18.*--zoom"):
            YandexProvider(Http(), fake.api_url, zoom=18).fetch(*MOSCOW)
        with pytest.raises(SourceError, match="Wrong scale: 5.*--scale"):
            YandexProvider(Http(), fake.api_url, scale=5).fetch(*MOSCOW)


def test_one_wide_fetch_gives_the_wide_tile_and_its_north_up_crop(tmp_path):
    """Yandex: one request per photo; satellite/ is the centre crop of satellite_wide/; pairs.csv
    copies the heading; fetch() (what predict uses) still gives the same north-up 128 tile."""
    ids = make_dataset(tmp_path, [MOSCOW, (55.70, 37.50)])
    photos = manifest.read(tmp_path, "photos.csv")
    photos.loc[photos["photo_id"] == ids[0], "heading"] = 30.5
    manifest.write(tmp_path, "photos.csv", photos)
    with FakeYandex() as fake:
        provider = YandexProvider(Http(), fake.api_url)
        assert download(tmp_path, provider, progress=False)["new"] == 2
        assert sum(r["path"] == "/1.x/" for r in fake.requests) == 2  # one fetch per pair, not two
        assert {r["params"]["size"] for r in fake.requests} == {"450,450"}
        tile, zoom, mpp = provider.fetch(*MOSCOW)
    pairs = manifest.read(tmp_path, "pairs.csv").set_index("photo_id")
    assert pairs.loc[ids[0], "heading"] == 30.5 and np.isnan(pairs.loc[ids[1], "heading"])
    for pid in ids:
        wide = np.asarray(Image.open(tmp_path / pairs.loc[pid, "satellite_wide_path"]))
        north_up = np.asarray(Image.open(tmp_path / pairs.loc[pid, "satellite_path"]))
        assert pairs.loc[pid, "satellite_wide_path"] == f"satellite_wide/{manifest.safe_name(pid)}.png"
        assert wide.shape == (182, 182, 3) and north_up.shape == (128, 128, 3)
        assert (north_up == wide[27:155, 27:155]).all()  # the centre crop, on the same pixel grid
    assert (np.asarray(tile) == np.asarray(Image.open(tmp_path / pairs.loc[ids[0], "satellite_path"]))).all()
    assert zoom == pairs.loc[ids[0], "zoom"] and round(mpp, 4) == pairs.loc[ids[0], "meters_per_pixel"]
    with pytest.raises(ValueError, match="--size 150,150: must be at least 182"):
        YandexProvider(Http(), fake.api_url, size="150,150")


@pytest.mark.parametrize("zoom", [17, None])  # a fixed zoom (no resampling) and resampled to 1 m/px
def test_xyz_wide_tile_is_the_same_ground_at_the_same_resolution(tmp_path, zoom):
    with FakeTiles(fmt="png") as fake:
        provider = XYZProvider(fake.template, Http(), tmp_path / "tiles", zoom=zoom)
        wide, z, mpp = provider.fetch_wide(*MOSCOW)
        tile, z2, mpp2 = provider.fetch(*MOSCOW)
    assert wide.size == (182, 182) and tile.size == (128, 128) and (z, mpp) == (z2, mpp2)
    assert (np.asarray(tile) == np.asarray(wide)[27:155, 27:155]).all()
    if zoom is not None:  # no resampling: the wide window is the native pixels around the point
        px, py = lonlat_to_pixel(*MOSCOW, 17)
        expected = satellite_pixels(17, math.floor(px - 91 + 0.5), math.floor(py - 91 + 0.5), 182, 182)
        assert (np.asarray(wide) == expected).all()


def test_resume_redoes_pairs_missing_either_file(tmp_path):
    ids = make_dataset(tmp_path, [MOSCOW, (55.70, 37.50), (55.80, 37.70)])
    with FakeTiles() as fake:
        provider = XYZProvider(fake.template, Http(), tmp_path / "cache")
        assert download(tmp_path, provider, progress=False)["new"] == 3
        assert download(tmp_path, provider, progress=False)["new"] == 0  # both files there: skipped
        (tmp_path / "satellite_wide" / f"{manifest.safe_name(ids[1])}.png").unlink()
        assert download(tmp_path, provider, progress=False)["new"] == 1
        # A record written before the wide tiles (no satellite_wide_path) is fetched again.
        log = tmp_path / "state" / "satellite.jsonl"
        records = read_jsonl(log)
        del records[0]["satellite_wide_path"]
        log.write_text("".join(json.dumps(r) + "\n" for r in records))
        assert download(tmp_path, provider, progress=False)["new"] == 1
    pairs = manifest.read(tmp_path, "pairs.csv")
    assert list(pairs["photo_id"]) == ids
    assert all((tmp_path / p).exists() for p in [*pairs["satellite_path"], *pairs["satellite_wide_path"]])


def test_cli(tmp_path, capsys):
    assert main(["satellite", "--provider", "xyz", "--preset", "eox", "--data", str(tmp_path)]) == 2
    assert "photos.csv does not exist" in capsys.readouterr().err
    make_dataset(tmp_path, [MOSCOW, (55.70, 37.50)])
    assert main(["satellite", "--provider", "xyz", "--data", str(tmp_path)]) == 2
    assert "--preset" in capsys.readouterr().err
    with FakeTiles() as fake:
        assert main(["satellite", "--provider", "xyz", "--url-template", fake.template, "--data", str(tmp_path),
                     "--rate", "0", "--no-progress"]) == 0
    assert "pairs=2" in capsys.readouterr().out
