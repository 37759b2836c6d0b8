"""Held-out evaluation: retrieval behaves at its extremes, every region and class score gives the
known answer on fabricated views, and the table has every baseline."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from sat2scape import evaluate, geometry, manifest, metrics, runs, runtime, train_encoder
from sat2scape.config import EncoderConfig, make_config
from sat2scape.data import load_pairs, to_float
from sat2scape.world import CLASS_COLORS
from test_encoder import make_dataset, make_gan_run, smooth_image, smoke_config, tiny  # noqa: F401  (fixture)


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
    """A dataset without headings or class maps: every row that needs neither, and the table
    says which rows were left out and why."""
    result = evaluate.evaluate(tiny.encoder_run, oracle_images=4, oracle_steps=2, zstar_images=16, threads=2,
                               progress=False)
    saved = json.loads((tiny.encoder_run / "metrics.json").read_text())
    table = (tiny.encoder_run / "metrics.md").read_text()
    regions = (tiny.encoder_run / "regions.md").read_text()
    expected = set(evaluate.METHODS) - set(evaluate.HEADING_METHODS) - {"true_views"}
    assert set(saved["methods"]) == expected
    assert set(saved["skipped"]) == set(evaluate.HEADING_METHODS)
    assert "the dataset records no headings" in regions and "ground class acc" not in regions
    for key in expected:
        label = saved["labels"][key]
        assert label in table and label in regions, label
        row = saved["methods"][key]
        assert all(np.isfinite(row[c]) for c, _ in evaluate.COLUMNS), key
        assert all(np.isfinite(row[r][c]) for r in metrics.REGIONS for c in ("top1", "top5", "median_rank", "l1"))
    assert saved["methods"]["oracle"]["n"] == 4 and saved["methods"]["encoder"]["n"] == saved["n"] == 12
    assert saved["zstar_regression"]["images"] == 16 and saved["zstar_regression"]["tiles"] == "north"
    assert "chance" in table and table.strip().endswith(result["markdown"].split("\n\n")[0].strip())
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


# ---------------------------------------------------------------------------------------------
# Fabricated views with known answers: score_views on places painted in the class colours

class PaletteSegmenter(torch.nn.Module):
    """A perfect segmenter for views painted in the class colours: each pixel's nearest colour."""

    n_classes, bf16 = len(CLASS_COLORS), False

    def __init__(self):
        super().__init__()
        self.colors = torch.nn.Parameter(torch.tensor(CLASS_COLORS).float() / 127.5 - 1, requires_grad=False)

    def first_row(self, height):
        return 0

    def inputs(self, views):
        return views

    def forward(self, x):  # N x classes x H x W: minus the squared distance to each class colour
        return -((x[:, None] - self.colors[None, :, :, None, None]) ** 2).sum(2)


def fabricated_places(n=40, size=128, seed=0):
    """n places: class maps (sky above a horizon on rows ~55..75 of 128, ground in vertical
    stripes of random classes) and views painted in the class colours, with a per-place tint
    (so that every region, the sky too, tells the places apart) and a little pixel noise."""
    g = torch.Generator().manual_seed(seed)
    classes = torch.zeros(n, size, size, dtype=torch.long)
    for i in range(n):
        horizon = int(torch.randint(size * 55 // 128, size * 75 // 128, (1,), generator=g))
        edges = [0, *sorted(torch.randint(1, size, (3,), generator=g).tolist()), size]
        for c0, c1 in zip(edges, edges[1:]):
            classes[i, horizon:, c0:c1] = int(torch.randint(1, len(CLASS_COLORS), (1,), generator=g))
    colours = torch.tensor(CLASS_COLORS).float()[classes].permute(0, 3, 1, 2)  # N x 3 x H x W
    tint = (torch.rand(n, 3, 1, 1, generator=g) - 0.5) * 24
    noise = (torch.rand(n, 3, size, size, generator=g) - 0.5) * 6
    views = ((colours + tint + noise).clamp(0, 255) / 127.5 - 1)
    return views, classes.to(torch.uint8)


def fabricated_context(views, classes):
    return evaluate.HeldOut("fabricated", "test", None, views, classes, PaletteSegmenter())


def test_the_truth_scores_perfectly_in_every_region():
    views, classes = fabricated_places()
    row = evaluate.score_views(views.clone(), fabricated_context(views, classes))
    for region in metrics.REGIONS:
        assert row[region]["top1"] == 1.0 and row[region]["median_rank"] == 1.0, region
        assert row[region]["l1"] == 0.0, region
    assert row["class"] == {"acc": 1.0, "miou": 1.0, "front_acc": 1.0}
    assert metrics.class_scores(classes, classes, len(CLASS_COLORS)) == row["class"]  # the substitute is exact
    assert row["top1"] == row["whole"]["top1"] and row["l1"] == row["whole"]["l1"] == 0.0
    other = fabricated_places(seed=1)[0]  # realism: the truth is closer to itself than other places are
    assert row["swd"] < evaluate.score_views(other, fabricated_context(views, classes))["swd"]


def test_a_view_from_another_place_scores_at_chance_in_every_region():
    views, _ = fabricated_places(size=64)
    g = torch.Generator().manual_seed(0)
    rows = [metrics.region_scores(views[torch.randperm(40, generator=g)], views) for _ in range(50)]
    for region in metrics.REGIONS:
        top1 = np.mean([r[region]["top1"] for r in rows])
        top5 = np.mean([r[region]["top5"] for r in rows])
        median = np.mean([r[region]["median_rank"] for r in rows])
        assert abs(top1 - 1 / 40) < 0.02 and abs(top5 - 5 / 40) < 0.04 and abs(median - 20.5) < 4, region


def test_a_constant_view_scores_as_the_mean_photo_does():
    """One view for every place ranks all photos in one fixed order: exactly chance, whatever
    the view (the mean photo is one such view), in every region."""
    views, classes = fabricated_places()
    ctx = fabricated_context(views, classes)
    mean_photo = evaluate.score_views(views.mean(0, keepdim=True).expand_as(views), ctx)
    constant = evaluate.score_views(views[7:8].expand_as(views), ctx)
    chance = evaluate.chance_row(40)
    for region in metrics.REGIONS:
        for key in ("top1", "top5", "median_rank"):
            assert constant[region][key] == mean_photo[region][key], (region, key)
        assert constant[region]["top1"] == pytest.approx(chance["top1"])
        assert constant[region]["top5"] == pytest.approx(chance["top5"])
        assert constant[region]["median_rank"] == 20.0  # torch's median of 1..40: the lower middle


def test_draws_average_the_per_place_scores_and_keep_the_first_draws_set_scores():
    views, classes = fabricated_places()
    ctx = fabricated_context(views, classes)
    shuffled = views[torch.randperm(40, generator=torch.Generator().manual_seed(3))]
    both = evaluate.score_views([views, shuffled], ctx)
    one, two = evaluate.score_views(views, ctx), evaluate.score_views(shuffled, ctx)
    for region in metrics.REGIONS:
        for key in ("top1", "top5", "median_rank", "l1"):
            assert both[region][key] == pytest.approx((one[region][key] + two[region][key]) / 2), (region, key)
    assert both["top5"] == both["whole"]["top5"] and both["l1"] == both["whole"]["l1"] and both["n"] == 40
    assert both["psnr"] == one["psnr"] and both["class"] == one["class"] and both["swd"] == one["swd"] != two["swd"]
    assert two["class"]["acc"] < 1


# ---------------------------------------------------------------------------------------------
# The baselines' building blocks

def test_ridge_fit_picks_its_penalty_by_leave_one_out():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(80, 12, generator=g, dtype=torch.float64)
    y = x @ torch.randn(12, 3, generator=g, dtype=torch.float64) + 2
    predict, lam = evaluate.ridge_fit(x, y, (1e-6, 1.0, 100.0))
    assert lam == 1e-6 and torch.allclose(predict(x[:5]), y[:5], atol=1e-4)
    noise = torch.randn(80, 3, generator=g, dtype=torch.float64)  # nothing to learn: shrink to the mean
    assert evaluate.ridge_fit(x, noise, (1e-6, 1.0, 100.0))[1] == 100.0


def test_geometric_warp_recovers_a_colour_map_of_the_warped_ground():
    """Photos that are the warped tile under a colour map (0.6 x + 0.1) and a uniform grey
    elsewhere: the warp baseline fits the map and fills the rest with the mean photo."""
    tiles = ((photo_batch(30, seed=2) + 1) * 127.5).round().to(torch.uint8)
    tiles = torch.nn.functional.interpolate(tiles.float(), size=128, mode="bilinear").round().to(torch.uint8)
    camera = geometry.Camera()
    warped, mask = geometry.warp_to_view(tiles.float() / 255, camera)
    photos = (torch.where(mask, 0.6 * warped + 0.1, torch.tensor(0.5)) * 255).round().to(torch.uint8)
    views = evaluate.geometric_warp(tiles[:20], photos[:20], tiles[20:], camera)
    truth = to_float(photos[20:])
    assert (views - truth)[:, :, mask].abs().max() < 0.02
    assert (views - truth)[:, :, ~mask].abs().max() < 0.01 and mask.float().mean() > 0.2


def test_zstar_regression_recovers_a_linear_map_from_the_tile_to_the_latent():
    tiles = ((photo_batch(120, seed=4) + 1) * 127.5).round().to(torch.uint8)
    tiles = torch.nn.functional.interpolate(tiles.float(), size=128, mode="bilinear").round().to(torch.uint8)
    layout = evaluate.tile_layout(tiles, crop=evaluate.kept_by_any_turn(128)).float()
    z = layout @ torch.randn(layout.shape[1], 4, generator=torch.Generator().manual_seed(0)) * 0.1
    predicted, lam = evaluate.zstar_regression(tiles[:100], z[:100], tiles[100:])
    assert lam == min(evaluate.ZSTAR_RIDGES)
    assert (predicted - z[100:]).abs().max() < 0.1 * z.abs().mean()


# ---------------------------------------------------------------------------------------------
# The whole evaluation on a dataset like the world's: headings, wide tiles, class maps

@pytest.fixture(scope="module")
def world_like(tmp_path_factory):
    """make_dataset's smooth random pairs, plus what the world writes beside them: a heading
    per pair, wide tiles and class maps; a random-init GAN and a smoke encoder named like the
    demo's (…-encoder-smoke)."""
    root = tmp_path_factory.mktemp("world_like")
    data = make_dataset(root / "data")
    table = manifest.read(data, "pairs.csv")
    rng = np.random.default_rng(1)
    (data / "classes").mkdir()
    (data / "satellite_wide").mkdir()
    wide = geometry.wide_tile_size(128)
    for photo_path in table["photo_path"]:
        stem = Path(photo_path).stem
        ids = np.zeros((128, 128), np.uint8)
        ids[64:] = rng.integers(1, 8)
        ids[96:, :64] = rng.integers(1, 8)
        im = Image.fromarray(ids, mode="P")
        im.putpalette(CLASS_COLORS.ravel().tolist())
        im.save(data / "classes" / f"{stem}.png")
        Image.fromarray(smooth_image(rng, wide)).save(data / "satellite_wide" / f"{stem}.png")
    table["heading"] = [f"{h:.2f}" for h in rng.uniform(0, 360, len(table))]
    table["satellite_wide_path"] = [f"satellite_wide/{Path(p).stem}.png" for p in table["photo_path"]]
    manifest.write(data, "pairs.csv", table)
    runs_root = root / "runs"
    gan_run = make_gan_run(runs_root)
    cfg = make_config(EncoderConfig, "smoke", data=str(data), runs=str(runs_root), gan_run=str(gan_run),
                      threads=2, desc="smoke")
    return SimpleNamespace(data=data, runs=runs_root, encoder_run=train_encoder.train(cfg, progress=False))


def test_every_row_and_column_on_a_world_like_dataset(world_like):
    held_out = load_pairs(world_like.data, "test", progress=False)
    truth = to_float(held_out.photos)
    extra = {"conditional": ("a conditional model's views", [truth, truth.flip(0)])}
    result = evaluate.evaluate(world_like.encoder_run, oracle_images=4, oracle_steps=2, zstar_images=16, threads=2,
                               progress=False, extra_methods=extra)
    saved = json.loads((world_like.encoder_run / "metrics.json").read_text())
    regions = (world_like.encoder_run / "regions.md").read_text()
    assert set(saved["methods"]) == set(evaluate.METHODS) | {"conditional"} and not saved["skipped"]
    assert saved["order"][:2] == list(result["methods"])[:2] == ["encoder", "conditional"]
    for key, row in saved["methods"].items():
        assert saved["labels"][key] in regions, key
        assert all(np.isfinite(row[r][c]) for r in metrics.REGIONS for c in ("top1", "top5", "median_rank", "l1"))
        assert set(row["class"]) == {"acc", "miou", "front_acc"} and np.isfinite(row["swd"]), key
    assert saved["zstar_regression"]["tiles"] == "heading"
    # the segmenter: trained once with the encoder run's preset, reused by the next evaluation
    segmenters = runs.list_runs(world_like.runs, "segmenter")
    assert [d.name.split("-", 1)[1] for d in segmenters] == ["segmenter-smoke"]
    assert saved["segmenter"]["run"] == str(segmenters[0])
    assert saved["methods"]["conditional"]["top1"] == 0.5  # one draw is the truth, the other a swap
    assert saved["regions"] == {"whole": [0, 128], "ground": [64, 128], "horizon": [40, 80], "sky": [0, 40]}
    assert "ground class acc" in regions and "the ceiling of that column" in regions
    assert result["markdown"].count("| chance |") == 2
    evaluate.evaluate(world_like.encoder_run, oracle_images=0, zstar_images=0, threads=2, progress=False)
    assert runs.list_runs(world_like.runs, "segmenter") == segmenters


def test_sample_spread_measures_what_the_draws_change_by_region():
    base = torch.zeros(2, 3, 128, 128)
    still = metrics.sample_spread([base, base.clone(), base.clone()])
    assert all(still[r] == 0 for r in metrics.REGIONS)
    moving = [base.clone() for _ in range(2)]
    moving[0][:, :, :40] = -1.0  # the sky band: 0 and 1 in [0, 1] units across two draws
    moving[1][:, :, :40] = 1.0
    moving[1][:, :, 100:] = 0.2  # a little of the ground: 0.5 and 0.6 in [0, 1] units
    spread = metrics.sample_spread(moving)
    assert spread["sky"] == pytest.approx(2 ** -0.5)  # std of {0, 1} with Bessel's correction
    assert spread["ground"] == pytest.approx(0.1 * 2 ** -0.5 * 28 / 64)
    assert spread["sky_over_ground"] == pytest.approx(spread["sky"] / spread["ground"])
    assert evaluate.score_views(moving, fabricated_context(*fabricated_places(n=2)))["spread"] == spread
    with pytest.raises(ValueError, match="at least 2 draws"):
        metrics.sample_spread([base])


def test_conditional_ablation_trains_each_variant_once_and_tabulates_it(world_like, tmp_path):
    """Two variants of the loss on the world-like dataset: a smoke run each, one table with a row
    per variant and draw, the spread column; a rerun trains nothing new."""
    variants = {"all three terms": {}, "no mode seeking": {"ms_weight": 0.0}}
    options = dict(oracle_images=0, zstar_images=0, threads=2, progress=False)
    first = evaluate.conditional_sweep(world_like.encoder_run, [0], modes=("known",), preset="smoke",
                                       variants=variants, **options)
    made = runs.list_runs(world_like.runs, "conditional")
    assert sorted(d.name.split("-", 2)[2] for d in made) == ["smoke-heading_known-seed_0",
                                                              "smoke-heading_known-seed_0-ms_weight_0"]
    assert [runs.read_config(d)["ms_weight"] for d in made if d.name.endswith("ms_weight_0")] == [0.0]
    assert first["run_dir"].name.endswith("sweep-conditional-ablation-smoke")
    saved = json.loads((first["run_dir"] / "metrics.json").read_text())
    assert list(saved["variants"]) == list(variants)
    for variant in variants:
        assert f"conditional, {variant}, heading known (z = 0), 1 seed |" in first["markdown"]
        samples = first["summary"][f"{variant}: known_samples"]
        assert len(samples["spread"]) == 1 and samples["spread"][0] > 0 and len(samples["whole"]) == 1
        assert first["summary"][f"{variant}: known"]["spread"] == []  # one view per place: no spread
    assert "| encoder G(E(tile)) |" in first["markdown"]
    summary = (first["run_dir"] / "summary.md").read_text()  # what the README embeds: the table alone
    assert first["markdown"] in summary and "| SSIM" not in summary
    assert "| SSIM" in (first["run_dir"] / "metrics.md").read_text()
    evaluate.conditional_sweep(world_like.encoder_run, [0], modes=("known",), preset="smoke", variants=variants,
                               **options)
    assert runs.list_runs(world_like.runs, "conditional") == made


def test_a_conditional_sweep_trains_two_runs_at_a_time_on_a_cpu(world_like, tmp_path, monkeypatch):
    """Seeds 2 and 3 with torch's own threads: on a CPU of 2 cores or more seed 3 trains in a side
    lane beside seed 2; both runs end up in the table, and a rerun trains nothing new."""
    lanes = []

    class CountedLane(runtime.SideLane):
        def __init__(self, *args, **kwargs):
            lanes.append(args[0].__name__)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(runtime, "SideLane", CountedLane)
    options = dict(oracle_images=0, zstar_images=0, threads=0, progress=False)
    before = runs.list_runs(world_like.runs, "conditional")  # the other sweeps' runs: seeds 0
    sweep = evaluate.conditional_sweep(world_like.encoder_run, [2, 3], modes=("known",), preset="smoke", **options)
    side_by_side = runtime.side_lane_helps(runtime.pick_device(), 0)
    assert lanes == (["train_conditional_runs"] if side_by_side else [])
    made = [d for d in runs.list_runs(world_like.runs, "conditional") if d not in before]
    assert sorted(d.name.split("-", 2)[2] for d in made) == ["smoke-heading_known-seed_2", "smoke-heading_known-seed_3"]
    assert all((d / "checkpoint.pt").exists() for d in made)
    assert len(sweep["summary"]["known"]["whole"]) == 2
    assert "| conditional, heading known (z = 0), 2 seeds |" in sweep["markdown"]
    evaluate.conditional_sweep(world_like.encoder_run, [2, 3], modes=("known",), preset="smoke", **options)
    assert runs.list_runs(world_like.runs, "conditional") == before + made


def test_sweep_cells_give_mean_and_spread_over_seeds_and_one_seed_alone():
    assert evaluate.mean_sd([0.1, 0.3]) == "0.200 ± 0.141"
    assert evaluate.mean_sd([0.2]) == "0.200"  # no "± 0.000" that reads as a measured spread
    assert evaluate.mean_sd([-0.01, 0.03], sign="+") == "+0.010 ± 0.028"
    assert evaluate.mean_sd([]) == ""
