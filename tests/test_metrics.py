"""Set metrics: the sliced Wasserstein distance ranks image sets as it should; FID/KID skip cleanly."""

from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from sat2scape import metrics


def landscapes(n: int, seed: int) -> torch.Tensor:
    """Horizon scenes with texture at every scale: sky over ground, plus smooth and fine noise."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(128).view(1, 1, 128, 1)
    horizon = torch.randint(40, 90, (n, 1, 1, 1), generator=g)
    sky, ground = torch.tensor([-0.2, 0.2, 0.8]).view(1, 3, 1, 1), torch.tensor([-0.6, 0.1, -0.7]).view(1, 3, 1, 1)
    x = torch.where(rows < horizon, sky, ground).expand(n, 3, 128, 128)
    x = x + 0.3 * F.interpolate(torch.randn(n, 3, 16, 16, generator=g), 128, mode="bicubic")
    return (x + 0.1 * torch.randn(n, 3, 128, 128, generator=g)).clamp(-1, 1)


def test_laplacian_pyramid_reconstructs_the_image():
    x = landscapes(2, 0)
    levels = metrics.laplacian_pyramid(x)
    assert [lv.shape[-1] for lv in levels] == [128, 64, 32, 16]
    y = levels[-1]
    for band in reversed(levels[:-1]):  # collapse: upsample the coarser image, add the band back
        up = torch.zeros_like(band)
        up[:, :, ::2, ::2] = y
        y = band + metrics._blur(up, gain=4.0)
    assert torch.allclose(y, x, atol=1e-5)


def test_paired_metrics_in_chunks_equal_the_whole_batch_and_rank_blur_below_identity():
    real = landscapes(37, 3)  # not a multiple of the chunk: the last chunk is short
    blurred = F.avg_pool2d(real, 5, 1, 2, count_include_pad=False)
    whole = {name: fn(blurred, real).mean().item() for name, fn in metrics.PAIRED_METRICS.items()}
    chunked = metrics.paired_metrics(blurred, real, chunk=8)
    assert chunked == pytest.approx(whole, rel=1e-5)
    same = metrics.paired_metrics(real, real)
    assert same["ssim"] == pytest.approx(1.0) and same["ms-ssim"] == pytest.approx(1.0) and same["l1"] == 0
    assert chunked["ssim"] < 0.95 and chunked["l1"] > 0.005 and chunked["psnr"] < same["psnr"]


def test_swd_ranks_real_below_blurred_below_noise():
    real, other = landscapes(32, 1), landscapes(32, 2)
    blurred = F.interpolate(F.interpolate(other, scale_factor=0.25, mode="area"), 128, mode="bilinear")
    noise = torch.rand(32, 3, 128, 128, generator=torch.Generator().manual_seed(3)) * 2 - 1
    d = {name: metrics.swd(x, real) for name, x in (("real", other), ("blurred", blurred), ("noise", noise))}
    assert set(d["real"]) == {"swd128", "swd64", "swd32", "swd16", "swd"}
    assert d["real"]["swd"] < d["blurred"]["swd"] < d["noise"]["swd"]
    assert d["real"]["swd128"] < d["blurred"]["swd128"]  # blur shows at the finest level
    assert metrics.swd(other, real) == d["real"]  # private seeded generator: reproducible
    assert "swd" in metrics.SET_METRICS and {"fid", "kid"} <= set(metrics.SET_METRICS)


def test_fid_and_kid_are_skipped_with_a_reason(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # as if not installed: import fails
    x = landscapes(4, 0)
    assert metrics.set_metrics(x, x, names=("fid", "kid")) == {}
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("skipped" in s and "pip install torch-fidelity" in s for s in lines)


def test_fid_without_inception_weights_says_where_to_put_them(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch_fidelity", types.ModuleType("torch_fidelity"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    x = landscapes(4, 0)
    assert metrics.set_metrics(x, x, names=("fid",)) == {}
    out = capsys.readouterr().out
    assert f"no Inception weights at {tmp_path / 'checkpoints' / metrics.INCEPTION_FILE}" in out
    assert metrics.INCEPTION_URL in out


# ---------------------------------------------------------------------------------------------
# Regions of the view and the ground-class score

def test_regions_are_the_documented_bands_at_any_size():
    rows = {name: metrics.region_rows(name, 128) for name in metrics.REGIONS}
    assert {k: (r.start, r.stop) for k, r in rows.items()} == {
        "whole": (0, 128), "ground": (64, 128), "horizon": (40, 80), "sky": (0, 40)}
    assert (metrics.region_rows("ground", 64).start, metrics.region_rows("sky", 64).stop) == (32, 20)
    assert metrics.front_patch(128) == (slice(100, 128), slice(32, 96))
    x = landscapes(3, 0)
    assert torch.equal(metrics.region_descriptor(x, "whole"), metrics.retrieval_descriptor(x))
    assert metrics.region_descriptor(x, "ground").shape == (3, 3 * 8 * 16)  # the bottom 8 of 16 cell rows
    assert metrics.crop_region(x, "sky").shape[-2] == 40
    with pytest.raises(ValueError, match="unknown region"):
        metrics.region_rows("clouds", 128)


def test_region_scores_match_the_whole_view_retrieval_and_l1():
    photos, other = landscapes(12, 1), landscapes(12, 2)
    scores = metrics.region_scores(other, photos)
    whole = metrics.retrieval_summary(metrics.retrieval_ranks(other, photos))
    assert all(scores["whole"][k] == whole[k] for k in ("top1", "top5", "median_rank"))
    assert scores["whole"]["l1"] == pytest.approx(metrics.l1_per_image(other, photos).mean().item())
    ground = metrics.retrieval_ranks(other, photos, region="ground")
    assert scores["ground"]["median_rank"] == ground.float().median().item()
    # a subset ranked among all photos, as the oracle's rows are
    index = torch.tensor([2, 5])
    assert metrics.region_scores(photos[index], photos, index)["sky"]["top1"] == 1.0


def test_class_scores_known_answers():
    true = torch.zeros(2, 8, 8, dtype=torch.uint8)
    true[:, 4:] = 1                      # ground rows 4..7: class 1 ...
    true[0, 4:, :2] = 2                  # ... with a strip of class 2 in view 0
    pred = true.clone()
    pred[0, 4:, :2] = 1                  # view 0's strip mislabelled as 1
    scores = metrics.class_scores(pred, true, n_classes=3)
    assert scores["acc"] == pytest.approx(1 - 8 / 64)        # 8 of the 64 ground pixels wrong
    # IoU: class 1 = 56 / 64; class 2 = 0 / 8; class 0 absent from the ground of both: left out
    assert scores["miou"] == pytest.approx((56 / 64 + 0) / 2)
    assert scores["front_acc"] == 1.0    # the front patch (rows 6..7, columns 2..5) is class 1 in both
    unlabelled = pred.clone()
    unlabelled[:, 4:6] = 255             # pixels a segmenter did not label count as wrong
    assert metrics.class_scores(unlabelled, true, 3)["acc"] == pytest.approx(28 / 64)  # 32 unlabelled, 4 wrong
