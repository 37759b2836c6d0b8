"""sources/vk.py + sources/photos.py against the fake VK API: paging, windows, errors, resume, secrecy."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from sat2scape import manifest
from sat2scape.__main__ import main
from sat2scape.files import read_jsonl, sha256_file
from sat2scape.sources import BBox
from sat2scape.sources.fake_servers import FakeVK, make_vk_photos
from sat2scape.sources.http import Secret, SourceError
from sat2scape.sources.photos import collect
from sat2scape.sources.vk import VKSource, get_token, largest_size, parse_day

BBOX = BBox(55.70, 37.50, 55.74, 37.56)  # about 4 x 4 km: one grid point at --grid-km 5
SINCE, UNTIL = parse_day("2019-06-01", "since"), parse_day("2019-06-30", "until")
CLI_RANGE = ["--bbox", "55.70,37.50,55.74,37.56", "--since", "2019-06-01", "--until", "2019-06-30"]


def vk_photos(n: int, **kwargs) -> list[dict]:
    return make_vk_photos(BBOX, SINCE, UNTIL + 86399, n=n, **kwargs)


def source(fake: FakeVK, **kwargs) -> VKSource:
    settings = dict(grid_km=5, window_days=30, rate=0, backoff=0.01, base_url=fake.api_url)
    return VKSource(Secret(fake.token), BBOX, SINCE, UNTIL, **{**settings, **kwargs})


def geotagged_ids(photos: list[dict]) -> set[str]:
    return {f"vk:{p['owner_id']}_{p['id']}" for p in photos if p["geo"]}


def saved_ids(out) -> list[str]:
    return list(manifest.read(out, "photos.csv")["photo_id"])


def test_windows_past_the_cap_are_halved_and_every_photo_comes_once(tmp_path):
    photos = vk_photos(150)
    with FakeVK(photos, paging_cap=40) as fake:
        summary = collect(tmp_path, source(fake, cap=40, count=20), progress=False)
        offsets = [int(r["params"]["offset"]) for r in fake.requests if r["path"].startswith("/method/")]
    ids = saved_ids(tmp_path)
    assert len(ids) == len(set(ids)) and set(ids) == geotagged_ids(photos)
    assert max(offsets) < 40 and summary["units"] > 4  # split into windows small enough to page
    assert summary["dropped"]["no geotag"] == len(photos) - len(ids)


def test_duplicates_across_windows_and_cells_are_deduped(tmp_path):
    photos = vk_photos(40)
    with FakeVK(photos, slop_s=3 * 86400) as fake:  # neighbouring windows overlap by 3 days each side
        collect(tmp_path, source(fake, grid_km=2, window_days=5), progress=False)
    found = [r["photo_id"] for unit in read_jsonl(tmp_path / "state" / "vk_search.jsonl") for r in unit["photos"]]
    ids = saved_ids(tmp_path)
    assert len(found) > 2 * len(set(found))  # the fake really did repeat them
    assert sorted(ids) == sorted(set(ids)) and set(ids) == geotagged_ids(photos)


def test_largest_size_by_area_else_by_letter():
    def size(letter, w, h):
        return {"type": letter, "url": f"u/{letter}", "width": w, "height": h}

    assert largest_size([size("s", 75, 56), size("x", 604, 453), size("m", 130, 97)])["type"] == "x"
    assert largest_size([size("s", 0, 0), size("y", 0, 0), size("x", 0, 0), size("m", 0, 0)])["type"] == "y"
    assert largest_size([size("o", 0, 0), size("m", 0, 0)])["type"] == "m"  # proportional beats the crop
    assert largest_size([{"type": "x", "width": 1, "height": 1}]) is None  # no URL at all


def test_zero_sizes_still_get_the_largest_url(tmp_path):
    photos = vk_photos(30, zero_sizes=0.5, no_geo=0)
    with FakeVK(photos) as fake:
        collect(tmp_path, source(fake), progress=False)
    df = manifest.read(tmp_path, "photos.csv")
    assert len(df) == 30 and df["url"].str.endswith("_y.jpg").all()
    assert (df["width"] > 0).all() and df["taken_at"].str.match(r"2019-06-\d\dT\d\d:\d\d:\d\dZ").all()


def test_exif_heading_reaches_photos_csv(tmp_path):
    from PIL.TiffImagePlugin import IFDRational

    photos = vk_photos(6, zero_sizes=0, no_geo=0)
    names = [f"vk_{p['owner_id']}_{p['id']}_y.jpg" for p in photos]
    with FakeVK(photos) as fake:
        fake.image_headings[names[0]] = (IFDRational(3150, 10), "T")
        fake.image_headings[names[1]] = (IFDRational(12, 1), "M")
        fake.image_headings[names[2]] = (IFDRational(5, 0), "T")  # a corrupt value: no heading
        collect(tmp_path, source(fake), progress=False)
    ids = [f"vk:{p['owner_id']}_{p['id']}" for p in photos]
    heading = manifest.read(tmp_path, "photos.csv").set_index("photo_id")["heading"]
    assert heading[ids[0]] == 315.0 and heading[ids[1]] == 12.0
    assert heading[ids[2:]].isna().all()
    refs = {r["photo_id"]: r.get("heading_ref") for r in read_jsonl(tmp_path / "state" / "vk_photos.jsonl")}
    assert refs[ids[0]] == "T" and refs[ids[1]] == "M" and refs[ids[2]] is None


def test_corrupt_oversized_and_non_images_are_recorded_failed_and_not_saved(tmp_path):
    photos = vk_photos(12, no_geo=0)
    with FakeVK(photos) as fake:
        for p, fault in zip(photos, ["corrupt", "huge", "html"]):
            fake.image_faults[f"vk_{p['owner_id']}_{p['id']}_y.jpg"] = fault
        summary = collect(tmp_path, source(fake), max_bytes=500_000, progress=False)
    reasons = " | ".join(r["reason"] for r in read_jsonl(tmp_path / "state" / "vk_failed.jsonl"))
    assert summary["failed"] == 3 and reasons.count(" | ") == 2
    assert "not a readable image" in reasons and "over the limit" in reasons and "is not an image" in reasons
    assert len(saved_ids(tmp_path)) == 9 and len(list((tmp_path / "photos").iterdir())) == 9


def test_error_6_bursts_are_retried(tmp_path):
    photos = vk_photos(30)
    with FakeVK(photos, errors_at={1: 6, 2: 6, 3: 6, 5: 1, 6: 10}) as fake:
        collect(tmp_path, source(fake, window_days=10, retries=4), progress=False)
        assert fake.calls == 3 + 5  # three windows, five errors retried
    assert set(saved_ids(tmp_path)) == geotagged_ids(photos)


def test_default_rate_keeps_under_the_servers_limit(tmp_path):
    with FakeVK(vk_photos(10), rate_limit=3) as fake:  # the fake answers error 6 above 3 requests/s
        collect(tmp_path, source(fake, window_days=5, rate=3, retries=0), progress=False)  # retries=0: a 6 would stop
        assert fake.calls == 6 and fake.rate_seen("/method/") <= 3


@pytest.mark.parametrize("code, advice", [(5, "token"), (14, "captcha"), (29, "quota"), (100, "parameter")])
def test_stop_codes_save_progress_and_a_rerun_continues(tmp_path, code, advice):
    photos = vk_photos(40)
    with FakeVK(photos, errors_at={4: code}) as fake:
        with pytest.raises(SourceError, match=f"VK error {code} .*{advice}"):
            collect(tmp_path, source(fake, window_days=5), progress=False)
        assert len(read_jsonl(tmp_path / "state" / "vk_search.jsonl")) == 3  # the three windows before it
        assert saved_ids(tmp_path) == []  # photos.csv written, consistent, empty
        fake.errors_at.clear()
        summary = collect(tmp_path, source(fake, window_days=5), progress=False)
        assert fake.calls == 4 + 3  # only the windows not yet done
    assert summary["units"] == 6 and set(saved_ids(tmp_path)) == geotagged_ids(photos)


def test_skip_codes_skip_the_window(tmp_path):
    with FakeVK(vk_photos(20), errors_at={2: 30}) as fake:
        summary = collect(tmp_path, source(fake, window_days=10), progress=False)
    assert summary["units"] == 3 and summary["dropped"]["skipped windows"] == 1


def test_bad_settings_name_the_field(tmp_path, monkeypatch, capsys):
    with FakeVK([]) as fake:
        with pytest.raises(ValueError, match="--count"):
            source(fake, count=1001)
        with pytest.raises(SourceError, match="VK error 100"):  # the server enforces it too
            source(fake).call("photos.search", lat=55.7, long=37.5, radius=6000, count=1001)
    assert main(["photos", "vk", "--bbox", "55.7,37.5,55.6", "--since", "2019-06-01", "--out", str(tmp_path)]) == 2
    assert "--bbox" in capsys.readouterr().err
    monkeypatch.delenv("VK_TOKEN", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # not a terminal: no prompt possible
    with pytest.raises(ValueError, match="VK_TOKEN is not set"):
        get_token()
    assert main(["photos", "vk", *CLI_RANGE, "--out", str(tmp_path)]) == 2
    assert "export VK_TOKEN" in capsys.readouterr().err


def test_token_never_appears_in_logs_errors_or_files(tmp_path, caplog, capsys, monkeypatch):
    caplog.set_level(logging.DEBUG)  # urllib3 included
    monkeypatch.delenv("VK_TOKEN", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    with FakeVK(vk_photos(20), errors_at={2: 6, 3: 5}) as fake:
        src = source(fake, window_days=10)
        with pytest.raises(SourceError) as error:
            collect(tmp_path, src, progress=False)
        assert main(["photos", "vk", *CLI_RANGE, "--out", str(tmp_path), "--base-url", fake.api_url,
                     "--backoff", "0.01", "--no-progress"]) == 2  # no VK_TOKEN in this environment
        monkeypatch.setenv("VK_TOKEN", fake.token)
        assert main(["photos", "vk", *CLI_RANGE, "--out", str(tmp_path), "--base-url", fake.api_url,
                     "--grid-km", "5", "--backoff", "0.01", "--rate", "0", "--no-progress"]) == 0
    shown = "".join([caplog.text, *capsys.readouterr(), str(error.value), repr(error.value), repr(src), repr(src.http)])
    assert "VK error 5" in shown and fake.token not in shown
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert len(files) > 10 and not any(fake.token.encode() in f.read_bytes() for f in files)


def test_kill_and_resume_leaves_a_consistent_dataset(tmp_path):
    """A collector killed with SIGKILL mid-search and mid-download, then rerun: no duplicates,
    no partial or temp files, and every row's file exists with its recorded sha256."""
    photos = vk_photos(70)
    out = tmp_path / "data"
    with FakeVK(photos, latency=0.04) as fake:
        command = [sys.executable, "-m", "sat2scape", "photos", "vk", *CLI_RANGE, "--out", str(out),
                   "--base-url", fake.api_url, "--grid-km", "5", "--window-days", "5", "--rate", "0",
                   "--workers", "2", "--backoff", "0.01", "--no-progress"]
        env = {**os.environ, "VK_TOKEN": fake.token, "PYTHONPATH": str(ROOT)}
        outputs = []
        for log, lines in (("vk_search.jsonl", 2), ("vk_photos.jsonl", 15), ("vk_photos.jsonl", 40)):
            run = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 30
            while len(read_jsonl(out / "state" / log)) < lines and time.monotonic() < deadline and run.poll() is None:
                time.sleep(0.005)
            run.send_signal(signal.SIGKILL)
            outputs.append(run.communicate(timeout=30))
            assert run.returncode == -signal.SIGKILL, outputs[-1]
        final = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=60)
        outputs.append((final.stdout, final.stderr))
        assert final.returncode == 0, final.stderr.decode()

    df = manifest.read(out, "photos.csv")
    assert df["photo_id"].is_unique and set(df["photo_id"]) == geotagged_ids(photos)
    for row in df.itertuples():
        assert sha256_file(out / row.path) == row.sha256
    assert sorted(p.relative_to(out).as_posix() for p in (out / "photos").iterdir()) == sorted(df["path"])
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not any(fake.token.encode() in f.read_bytes() for f in out.rglob("*") if f.is_file())
    assert not any(fake.token.encode() in b"".join(o) for o in outputs)
