"""files.folder_lock: one collector, satellite stage or filter funnel per dataset folder at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import ROOT
from sat2scape import manifest
from sat2scape.__main__ import main
from sat2scape.files import FolderLocked, folder_lock
from sat2scape.sources.fake_servers import FakeCommons, FakeTiles, FakeVK

# A process that takes the folder's lock, says so, and waits to be killed.
HOLDER = """
import sys, time
from sat2scape.files import folder_lock
with folder_lock(sys.argv[1], "test holder"):
    print("locked", flush=True)
    time.sleep(120)
"""


def photos_csv(dataset) -> None:
    manifest.write(dataset, "photos.csv", pd.DataFrame([{
        "photo_id": "vk:1_1", "source": "vk", "lat": 55.75, "lon": 37.62, "path": "photos/vk_1_1.jpg"}]))


def test_a_second_holder_is_refused_at_once_and_told_the_pid(tmp_path):
    with folder_lock(tmp_path, "photos vk") as path:
        assert path.read_text().strip() == f"pid {os.getpid()}, photos vk"
        start = time.monotonic()
        with pytest.raises(FolderLocked, match=f"another collector holds .*pid {os.getpid()}, photos vk"):
            with folder_lock(tmp_path):  # a second open file: flock refuses it even in the same process
                pass
        assert time.monotonic() - start < 1
    with folder_lock(tmp_path):  # released on exit
        pass


def test_every_stage_refuses_a_held_folder_and_a_killed_holder_blocks_nothing(tmp_path, monkeypatch, capsys):
    dataset = tmp_path / "ds"
    photos_csv(dataset)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(dataset)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked", holder.stderr.read()
        monkeypatch.setenv("VK_TOKEN", FakeVK.token)
        bbox = ["--bbox", "55.70,37.50,55.74,37.56", "--grid-km", "5", "--rate", "0", "--no-progress"]
        with FakeVK([]) as vk, FakeCommons([]) as commons, FakeTiles() as tiles:
            runs = {
                "photos vk": ["photos", "vk", *bbox, "--since", "2019-06-01", "--until", "2019-06-30",
                              "--out", str(dataset), "--base-url", vk.api_url],
                "photos commons": ["photos", "commons", *bbox, "--out", str(dataset), "--base-url", commons.api_url],
                "satellite": ["satellite", "--provider", "xyz", "--url-template", tiles.template,
                              "--data", str(dataset), "--rate", "0", "--no-progress"],
                "filter": ["filter", str(dataset), "--stages", "geotag", "--report", "false"],
            }
            for verb, argv in runs.items():
                start = time.monotonic()
                assert main(argv) == 1, verb
                err = capsys.readouterr().err
                assert "another collector holds this dataset folder" in err and f"pid {holder.pid}" in err, verb
                assert time.monotonic() - start < 10, verb  # refused at once, not after waiting
            assert vk.requests == commons.requests == tiles.requests == []  # nothing was asked of any API
        assert not (dataset / "filter.csv").exists() and not (dataset / "pairs.csv").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=30)
    assert holder.returncode == -signal.SIGKILL

    # The OS released the dead holder's lock: the next run goes ahead (its lock file still names the dead pid).
    assert f"pid {holder.pid}" in (dataset / "state" / "collector.lock").read_text()
    assert main(runs["filter"]) == 0
    assert set(manifest.read(dataset, "filter.csv")["stage"]) == {"geotag"}
    assert f"pid {os.getpid()}, filter" in (dataset / "state" / "collector.lock").read_text()


def test_a_mistyped_dataset_folder_is_not_created_by_the_lock(tmp_path, capsys):
    assert main(["satellite", "--provider", "xyz", "--preset", "eox", "--data", str(tmp_path / "typo")]) == 2
    assert "photos.csv does not exist" in capsys.readouterr().err
    with pytest.raises(manifest.ManifestError, match="photos.csv does not exist"):
        main(["filter", str(tmp_path / "typo"), "--stages", "geotag"])
    assert not (tmp_path / "typo").exists()
