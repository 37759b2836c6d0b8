"""Held-out evaluation: retrieval behaves at its extremes, and the table has every baseline."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import torch

from sat2scape import evaluate, metrics, runs
from sat2scape.data import to_float
from test_encoder import smooth_image, smoke_config, tiny  # noqa: F401  (fixture)


def photo_batch(n, seed=0):
    rng = np.random.default_rng(seed)
    return to_float(torch.from_numpy(np.stack([smooth_image(rng, 32) for _ in range(n)])).permute(0, 3, 1, 2))


def test_retrieval_of_a_perfect_predictor_is_top1():
    photos = photo_batch(40)
    summary = metrics.retrieval_summary(metrics.retrieval_ranks(photos.clone(), photos))
    assert summary["top1"] == 1.0 and summary["median_rank"] == 1


def test_retrieval_of_a_shuffled_predictor_is_chance():
    photos = photo_batch(40)
    g = torch.Generator().manual_seed(0)
    runs = [metrics.retrieval_summary(metrics.retrieval_ranks(photos[torch.randperm(40, generator=g)], photos))
            for _ in range(50)]
    top1, top5 = np.mean([r["top1"] for r in runs]), np.mean([r["top5"] for r in runs])
    median = np.mean([r["median_rank"] for r in runs])
    assert abs(top1 - 1 / 40) < 0.02 and abs(top5 - 5 / 40) < 0.04
    assert abs(median - 20.5) < 4


def test_retrieval_of_a_subset_ranks_among_all_photos():
    photos = photo_batch(30)
    index = torch.tensor([3, 7, 11])
    ranks = metrics.retrieval_ranks(photos[index], photos, true_index=index)
    assert ranks.tolist() == [1, 1, 1]
    assert metrics.retrieval_summary(ranks, gallery=30)["chance_top5"] == 5 / 30


def test_nearest_neighbour_finds_the_same_tile():
    tiles = ((photo_batch(10) + 1) * 127.5).round().to(torch.uint8)
    assert evaluate.nearest_neighbour(tiles[[4, 2]], tiles).tolist() == [4, 2]


def test_evaluation_table_has_every_baseline(tiny):  # noqa: F811
    result = evaluate.evaluate(tiny.encoder_run, oracle_images=4, oracle_steps=2, threads=2, progress=False)
    saved = json.loads((tiny.encoder_run / "metrics.json").read_text())
    table = (tiny.encoder_run / "metrics.md").read_text()
    assert set(saved["methods"]) == set(evaluate.METHODS)
    for key, label in evaluate.METHODS.items():
        assert label in table, label
        row = saved["methods"][key]
        assert all(np.isfinite(row[c]) for c, _ in evaluate.COLUMNS), key
    assert saved["methods"]["oracle"]["n"] == 4 and saved["methods"]["encoder"]["n"] == saved["n"] == 12
    assert "chance" in table and result["markdown"] in table
    # the mean photo predicts one image for every tile, so its ranks are a permutation of 1..12:
    # exactly chance (torch's median of 1..12 is the lower middle value, 6)
    assert saved["methods"]["mean_photo"]["median_rank"] == 6.0


def test_sweep_reports_margins_per_seed_and_reuses_finished_runs(tiny, tmp_path):  # noqa: F811
    """Two seeds: one encoder each, margins = encoder top-5 minus each baseline's, and a rerun
    trains nothing new (it finds the finished runs)."""
    base = replace(smoke_config(tiny), runs=str(tmp_path), gan_run=str(tiny.gan_run), epochs=1, desc="t")
    first = evaluate.sweep(base, seeds=[0, 1], loss_names=["mse"], progress=False)
    margins = first["margins"]["mse"]
    for i, seed in enumerate([0, 1]):
        methods = first["results"][("mse", seed)]["methods"]
        assert margins["top5"][i] == methods["encoder"]["top5"]
        assert margins["over_mean_photo"][i] == methods["encoder"]["top5"] - methods["mean_photo"]["top5"]
        assert margins["over_random_latent"][i] == methods["encoder"]["top5"] - methods["random_latent"]["top5"]
    assert "mse seed 0" in first["markdown"] and "mse seed 1" in first["markdown"]
    assert (first["run_dir"] / "metrics.md").exists()
    encoders = runs.list_runs(tmp_path, "encoder")
    assert len(encoders) == 2
    evaluate.sweep(base, seeds=[0, 1], loss_names=["mse"], progress=False)
    assert runs.list_runs(tmp_path, "encoder") == encoders


def test_linear_layout_recovers_a_linear_tile_to_photo_map():
    """When each photo's colour layout is a linear function of its tile's (here: the channels
    swapped and darkened), the ridge baseline learns it and retrieves every held-out photo."""
    tiles = ((photo_batch(120, seed=1) + 1) * 127.5).round().to(torch.uint8)
    photos = (tiles.float()[:, [2, 0, 1]] * 0.6 + 20).round().to(torch.uint8)
    views = evaluate.linear_layout(tiles[:100], photos[:100], tiles[100:], ridge=1e-3)
    assert views.shape == (20, 3, 32, 32) and views.min() >= -1 and views.max() <= 1
    ranks = metrics.retrieval_ranks(views, to_float(photos[100:]))
    assert ranks.tolist() == [1] * 20
    assert (views - to_float(photos[100:])).abs().mean() < 0.05
