"""sources/commons.py against the fake Commons API: continue paging, licences, authors, full circles."""

from __future__ import annotations

import pytest

from sat2scape import manifest
from sat2scape.__main__ import main
from sat2scape.files import read_jsonl
from sat2scape.sources import BBox
from sat2scape.sources.commons import CommonsSource, is_free, iso_date, strip_html
from sat2scape.sources.fake_servers import FakeCommons, make_commons_files
from sat2scape.sources.photos import collect

BBOX = BBox(55.70, 37.50, 55.74, 37.56)


def free_photo_ids(files: list[dict]) -> set[str]:
    return {f"commons:{f['title']}" for f in files if is_free(f["licence"]) and f["mime"] == "image/jpeg"}


@pytest.mark.parametrize("licence, free", [
    ("CC BY-SA 4.0", True), ("CC BY 2.0", True), ("CC0", True), ("Public domain", True), ("PD-self", True),
    ("CC BY-SA 3.0 de", True), ("CC BY-NC-SA 2.0", False), ("CC BY-ND 4.0", False), ("GFDL", False), ("", False),
])
def test_free_licences(licence, free):
    assert is_free(licence) is free


def test_metadata_text_helpers():
    assert strip_html('<a href="//x">Walker &amp; Co</a>\n<br/>') == "Walker & Co"
    assert iso_date("<time>2019-07-14 12:30:00</time>") == "2019-07-14T12:30:00"
    assert iso_date("summer 2019") == ""


def test_continue_replies_are_merged_and_only_free_photos_kept(tmp_path):
    files = make_commons_files(BBOX, n=35)
    with FakeCommons(files, batch=4) as fake:
        summary = collect(tmp_path, CommonsSource(BBOX, grid_km=5, rate=0, base_url=fake.api_url), progress=False)
        api_calls = sum(r["path"] == "/w/api.php" for r in fake.requests)
    df = manifest.read(tmp_path, "photos.csv")
    assert api_calls == 9  # 35 files, image info 4 at a time
    assert set(df["photo_id"]) == free_photo_ids(files) and df["photo_id"].is_unique
    assert df["license"].map(is_free).all() and not df["author"].str.contains("<").any()
    assert df["taken_at"].str.match(r"2019-07-\d\dT12:\d\d:00").all()
    assert summary["dropped"]["non-free licence"] > 0 and summary["dropped"]["not a photo"] > 0


def test_heading_comes_from_extmetadata(tmp_path):
    """GeoData has no heading; extmetadata has the original's EXIF GPSImgDirection when asked for it."""
    files = make_commons_files(BBOX, n=24)
    with FakeCommons(files) as fake:  # its thumbnails carry no EXIF: a heading can only come from the API
        collect(tmp_path, CommonsSource(BBOX, grid_km=5, rate=0, base_url=fake.api_url), progress=False)
        asked = [r["params"].get("iiextmetadatafilter", "") for r in fake.requests if r["path"] == "/w/api.php"]
    assert all({"GPSImgDirection", "GPSImgDirectionRef"} <= set(a.split("|")) for a in asked)
    heading = manifest.read(tmp_path, "photos.csv").set_index("photo_id")["heading"]
    expected = {f"commons:{f['title']}": f["heading"] for f in files if f"commons:{f['title']}" in heading.index}
    with_heading = {pid: h for pid, h in expected.items() if h}
    assert len(with_heading) >= 3 and len(expected) > len(with_heading)
    for pid, h in expected.items():
        if h:
            num, den = map(int, h[0].split("/"))
            assert heading[pid] == pytest.approx(num / den), pid
        else:
            assert heading.isna()[pid], pid
    refs = {r["photo_id"]: r.get("heading_ref") for r in read_jsonl(tmp_path / "state" / "commons_photos.jsonl")}
    assert {refs[pid] for pid in with_heading} == {"T", "M"}


def test_full_circles_are_split_until_nothing_is_missed(tmp_path):
    files = make_commons_files(BBOX, n=40)
    with FakeCommons(files, batch=50) as fake:
        source = CommonsSource(BBOX, grid_km=5, limit=8, rate=0, base_url=fake.api_url)
        summary = collect(tmp_path, source, progress=False)
    assert summary["units"] > 5  # the one circle came back full and was quartered, recursively
    df = manifest.read(tmp_path, "photos.csv")
    assert set(df["photo_id"]) == free_photo_ids(files) and df["photo_id"].is_unique


def test_cli_and_settings_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="--grid-km"):
        CommonsSource(BBox(55, 37, 56, 38), grid_km=20)  # a cell would need more than the API's 10 km radius
    files = make_commons_files(BBOX, n=12)
    with FakeCommons(files) as fake:
        assert main(["photos", "commons", "--bbox", "55.70,37.50,55.74,37.56", "--out", str(tmp_path),
                     "--base-url", fake.api_url, "--grid-km", "5", "--rate", "0", "--no-progress"]) == 0
    assert "saved=" in capsys.readouterr().out
    assert set(manifest.read(tmp_path, "photos.csv")["photo_id"]) == free_photo_ids(files)
