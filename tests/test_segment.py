"""The segmenter: reads the world's class maps, learns more than the majority class from a tiny
world in seconds, and a finished run is reused instead of trained again."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from sat2scape import data, manifest, metrics, runs, segment, world
from sat2scape.config import SegmenterConfig, make_config
from sat2scape.data import load_pairs


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    """A small built-in world whose first 64 pairs train and the next 24 are held out (by row,
    not region: a world this small has almost no val or test region)."""
    root = tmp_path_factory.mktemp("segment") / "world"
    world.generate(root, 88, progress=False)
    table = manifest.read(root, "pairs.csv")
    table["split"] = ["train"] * 64 + ["test"] * 24
    manifest.write(root, "pairs.csv", table)
    return root


def config(data, runs_root, **overrides) -> SegmenterConfig:
    # one thread: at width 8 a second one costs more in waiting than it gains (~10 CPU-seconds)
    values = dict(data=str(data), runs=str(runs_root), threads=1, width=8, epochs=30, batch_size=8, lr=1e-2,
                  desc="tiny")
    return make_config(SegmenterConfig, "smoke", **{**values, **overrides})


def majority_scores(tiny_world, true: torch.Tensor) -> dict:
    """The majority baseline's class scores: the most frequent ground class of the training views,
    everywhere."""
    train = load_pairs(tiny_world, "train", progress=False, with_tiles=False)
    train_ground = metrics.crop_region(data.load_class_maps(tiny_world, train.table, 128, progress=False), "ground")
    majority = int(torch.bincount(train_ground.flatten().long()).argmax())
    return metrics.class_scores(torch.full_like(true, majority), true, len(world.CLASS_NAMES))


def test_class_maps_are_read_as_ids_and_resized_by_nearest(tmp_path):
    ids = np.zeros((128, 128), np.uint8)
    ids[64:, :] = 2
    ids[64:, :32] = 7
    (tmp_path / "classes").mkdir()
    im = Image.fromarray(ids, mode="P")
    im.putpalette(world.CLASS_COLORS.ravel().tolist())
    im.save(tmp_path / "classes" / "world_000000.png")
    table = manifest.empty("pairs.csv")
    table.loc[0, "photo_path"] = "photos/world_000000.jpg"
    assert data.class_map_paths(table) == ["classes/world_000000.png"]
    assert data.has_class_maps(tmp_path, table)
    full = data.load_class_maps(tmp_path, table, 128, progress=False)
    assert full.dtype == torch.uint8 and torch.equal(full[0], torch.from_numpy(ids))
    half = data.load_class_maps(tmp_path, table, 64, progress=False)
    assert half.shape == (1, 64, 64) and set(half.unique().tolist()) == {0, 2, 7}
    assert torch.equal(data.load_class_maps(tmp_path, table, 64, progress=False), half)  # from the cache
    assert not data.has_class_maps(tmp_path / "elsewhere", table)


def test_segmenter_beats_the_majority_class_on_held_out_views(tiny_world, tmp_path):
    run_dir = segment.train(config(tiny_world, tmp_path / "runs"), progress=False)
    assert run_dir.name == "00000-segmenter-tiny" and (run_dir / "checkpoint.pt").exists()
    model = segment.load_segmenter(run_dir)
    held_out = load_pairs(tiny_world, "test", progress=False, with_tiles=False)
    true = data.load_class_maps(tiny_world, held_out.table, 128, progress=False)
    pred = segment.segment(model, held_out.photos)
    assert pred.shape == true.shape and (pred[:, :48] == segment.UNLABELLED).all()  # top 0.375: rows 48..
    scores = metrics.class_scores(pred, true, len(world.CLASS_NAMES))
    baseline = majority_scores(tiny_world, true)
    assert scores["acc"] > baseline["acc"] + 0.05, (scores, baseline)
    assert scores["miou"] > baseline["miou"]


def test_a_finished_run_is_reused_and_a_failed_one_leaves_no_number(tiny_world, tmp_path):
    cfg = config(tiny_world, tmp_path / "runs", epochs=1, max_images=16)
    first = segment.ensure(cfg, progress=False)
    again = segment.ensure(make_config(SegmenterConfig, "smoke", **{**cfg.__dict__, "threads": 2}), progress=False)
    assert again == first and runs.list_runs(tmp_path / "runs", "segmenter") == [first]
    other = segment.ensure(config(tiny_world, tmp_path / "runs", epochs=1, max_images=16, seed=1), progress=False)
    assert other != first  # other settings: a new run
    bare = tmp_path / "no-classes"  # the same pairs without their class maps
    bare.mkdir()
    (bare / "photos").symlink_to(tiny_world / "photos", target_is_directory=True)
    (bare / "pairs.csv").write_bytes((tiny_world / "pairs.csv").read_bytes())
    with pytest.raises(FileNotFoundError, match="no class maps"):
        segment.train(config(bare, tmp_path / "runs"), progress=False)
    assert len(runs.list_runs(tmp_path / "runs", "segmenter")) == 2
    assert sorted(p.name for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")) == []


def test_a_warp_segmenter_learns_the_views_classes_from_the_tile(tiny_world, tmp_path):
    """--input warp: the same network learns the views' class maps from the warped tile (what the
    conditional model is given); on held-out places it beats the majority class, it reloads with
    its four input channels, and the view segmenter of the same settings is a run apart."""
    cfg = config(tiny_world, tmp_path / "runs", input="warp")
    run_dir = segment.ensure(cfg, progress=False)
    model = segment.load_segmenter(run_dir)
    assert model.stem[0][0].in_channels == 5  # warp RGB, its mask, the row
    held_out, warps = segment.labelled_images(cfg, "test")
    assert warps.shape == (24, 4, 128, 128) and warps.dtype == torch.float32
    true = data.load_class_maps(tiny_world, held_out.table, 128, progress=False)
    scores = metrics.class_scores(segment.segment(model, warps), true, len(world.CLASS_NAMES))
    baseline = majority_scores(tiny_world, true)
    assert scores["acc"] > baseline["acc"], (scores, baseline)
    view_run = segment.ensure(config(tiny_world, tmp_path / "runs", epochs=1), progress=False)
    assert view_run != run_dir
    # a view segmenter from before `input` existed (no such key in its config.json) is still reused
    saved = runs.read_config(view_run)
    del saved["input"]
    (view_run / "config.json").write_text(json.dumps(saved))
    assert segment.ensure(config(tiny_world, tmp_path / "runs", epochs=1), progress=False) == view_run
    assert segment.ensure(cfg, progress=False) == run_dir
    with pytest.raises(ValueError, match="choose from"):
        segment.labelled_images(config(tiny_world, tmp_path / "runs", input="tile"), "test")
