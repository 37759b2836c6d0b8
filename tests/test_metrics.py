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
