"""The conditional, heading-aware model: geometry, the condition, the losses, the loop, resume.

The geometry is checked on tiles drawn here with known answers (a mark ahead of the camera must
end up at the top of the turned tile, and a stripe at a known distance at the row the pinhole
camera puts it). The loop runs on a tiny synthetic dataset with the smoke preset's widths.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from sat2scape import geometry, manifest, runs
from sat2scape.config import ConditionalConfig, make_config
from sat2scape.files import read_jsonl
from sat2scape.models import ConditionalDiscriminator, ConditionalGenerator, Discriminator, Generator, Segmenter
from sat2scape.train_conditional import (SUMS, angles_for, condition, load_generator, mode_seeking_loss,
                                         predict_views, reconstruction_loss, semantic_loss, texture_loss, train)
from test_gan import TIMING_KEYS, write_tiny_dataset


# ---------------------------------------------------------------------------------------------
# geometry

def test_wide_tile_fits_any_turn():
    for n in (64, 128, 256):
        w = geometry.wide_tile_size(n)
        assert w >= n * math.sqrt(2) and (w - n) % 2 == 0
    assert geometry.wide_tile_size(128) == 182


@pytest.mark.parametrize("heading, east, north", [(90.0, 40, 0), (0.0, 0, 40), (180.0, 0, -40), (270.0, -40, 0),
                                                  (45.0, 28, 28)])
def test_turning_puts_what_lies_ahead_at_the_top(heading, east, north):
    wide = geometry.wide_tile_size(128)
    tile = torch.zeros(1, 1, wide, wide)
    c = wide // 2
    tile[0, 0, c - north - 2:c - north + 2, c + east - 2:c + east + 2] = 1  # a mark 40 m away along the heading
    turned = geometry.turn_tiles(tile, torch.tensor([heading]), 128)
    rows, cols = torch.nonzero(turned[0, 0] > 0.3, as_tuple=True)
    assert abs(rows.float().mean().item() - (64 - 40)) < 1.5  # 40 px above the centre
    assert abs(cols.float().mean().item() - 64) < 1.5


def test_unknown_heading_leaves_the_tile_north_up():
    tiles = torch.randint(0, 255, (2, 3, 182, 182), dtype=torch.uint8)
    out = geometry.turn_tiles(tiles, torch.tensor([float("nan"), float("nan")]), 128)
    assert out.dtype == torch.uint8 and torch.equal(out, geometry.centre_crop(tiles, 128))


def test_ipm_puts_ground_at_the_pinhole_row():
    camera = geometry.Camera()
    turned = torch.zeros(1, 3, 128, 128)
    turned[:, :, 64 - 20 - 1:64 - 20 + 1, :] = 1  # a 2 m stripe across the tile, 20 m ahead
    view, mask = geometry.warp_to_view(turned, camera)
    expected = camera.horizon_row + camera.eye_height * camera.focal / 20  # the row at d = 20 m
    lit = torch.nonzero(view[0, 0, :, 64] > 0.2).flatten().float()
    assert abs(lit.mean().item() + 0.5 - expected) < 1.0
    assert not mask[: int(camera.horizon_row)].any()  # nothing above the horizon
    assert mask[-1].all()  # the bottom row sees ground right in front


# ---------------------------------------------------------------------------------------------
# the condition and the losses

def test_angles_use_the_heading_only_where_known_and_asked():
    headings = torch.tensor([10.0, float("nan"), 200.0])
    known = angles_for(headings, "known", torch.Generator().manual_seed(0))
    assert known[0] == 10 and known[2] == 200 and 0 <= known[1] < 360
    free = angles_for(headings, "random", torch.Generator().manual_seed(0))
    assert not torch.isnan(free).any() and free[0] != 10
    with pytest.raises(ValueError, match="heading mode"):
        angles_for(headings, "north")


def test_condition_shapes_and_mask():
    wide = torch.randint(0, 255, (2, 3, 182, 182), dtype=torch.uint8)
    tile, warp = condition(wide, torch.tensor([0.0, 90.0]), 128)
    assert tile.shape == (2, 3, 128, 128) and warp.shape == (2, 4, 128, 128)
    assert set(warp[:, 3].unique().tolist()) == {0.0, 1.0}
    assert (warp[:, :3][warp[:, 3:].expand(-1, 3, -1, -1) == 0] == 0).all()  # unfilled pixels stay 0


def test_reconstruction_ignores_the_sky_and_mode_seeking_rewards_spread():
    real = torch.zeros(2, 3, 128, 128)
    other_sky = real.clone()
    other_sky[:, :, :32] = 1  # a different sky: rows the tile cannot know
    assert reconstruction_loss(other_sky, real, 16) == 0
    other_ground = real.clone()
    other_ground[:, :, 96:] = 1
    assert reconstruction_loss(other_ground, real, 16) > 0.1
    z = torch.randn(4, 4)
    same, _ = mode_seeking_loss(torch.zeros(4, 3, 8, 8), z)
    varied, spread = mode_seeking_loss(torch.randn(4, 3, 8, 8), z)
    assert varied < same / 100 and spread > 0.5


def test_texture_loss_compares_the_grounds_grain_not_its_phase():
    """A field's rows against a smooth meadow: the texture term sees what the 16x16 low-pass
    reconstruction cannot (both have the same mean), and it does not care where the rows lie."""
    rows = torch.zeros(2, 3, 128, 128)
    rows[:, :, :, 0::2] = 0.6  # one-pixel rows, mean 0.3 in every low-pass cell
    smooth = torch.full_like(rows, 0.3)
    shifted = rows.roll(1, dims=3)  # the same rows one pixel over
    assert reconstruction_loss(smooth, rows, 16) < 1e-6
    assert texture_loss(smooth, rows) > 0.2
    assert texture_loss(shifted, rows) < 0.02 and (shifted - rows).abs().mean() > 0.5
    sky_only = smooth.clone()
    sky_only[:, :, :64] = rows[:, :, :64]  # rows above the ground band do not count
    assert texture_loss(sky_only, smooth) == 0


def test_models_shapes():
    G, D = ConditionalGenerator(nz=4, ngf=8, nef=8, ncode=8), ConditionalDiscriminator(ndf=8)
    ups = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2)]
    assert len(ups) == 5 and all(m.kernel_size == (4, 4) for m in ups)  # the write-up's decoder
    view = G(torch.randn(2, 3, 128, 128), torch.randn(2, 4, 128, 128), torch.randn(2, 4))
    assert view.shape == (2, 3, 128, 128) and view.abs().max() <= 1
    assert D(view, torch.randn(2, 4, 128, 128)).shape == (2,)
    D.eval()
    warp = torch.randn(2, 4, 128, 128)
    logit, feats = D(view, warp, return_features=True)  # feature matching's activations, one per layer
    assert torch.equal(logit, D(view, warp))
    assert [f.shape[1:] for f in feats] == [(8, 64, 64), (8, 32, 32), (16, 16, 16), (32, 8, 8), (64, 4, 4)]


def test_z_rows_keeps_z_off_the_lower_rows():
    """With z's projection on the top row of the 4x4 start only, the bottom half of the view (the
    ground band) does not change with z (FiLM's z weights start at zero); with it on every row, as
    in the write-up's G, it does. The top row reaches down to row 63 through the decoder's kernels."""
    torch.manual_seed(0)
    tile, warp = torch.randn(1, 3, 128, 128).expand(2, -1, -1, -1), torch.randn(1, 4, 128, 128).expand(2, -1, -1, -1)
    z = torch.randn(2, 4)
    for z_rows, ground_moves in ((1, False), (4, True)):
        G = ConditionalGenerator(nz=4, ngf=8, nef=8, ncode=8, z_rows=z_rows).eval()
        for m in G.modules():  # weights as strong as trained ones: DCGAN's N(0, 0.02) barely passes z on
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0, 0.3)
        with torch.no_grad():
            a, b = G(tile, warp, z)  # views C x H x W
        assert (a[:, :32] - b[:, :32]).abs().mean() > 1e-3  # the sky moves either way
        assert ((a[:, 64:] - b[:, 64:]).abs().max() > 1e-3) == ground_moves
    with pytest.raises(ValueError, match="z_rows"):
        ConditionalGenerator(z_rows=5)


def test_warm_start_reproduces_the_write_ups_gan():
    """Started from a trained write-up G and D, the conditional pair outputs exactly what they
    did, whatever the condition: training then only has to learn to use the tile."""
    torch.manual_seed(0)
    G, D = Generator(nz=4, ngf=8), Discriminator(ndf=8)
    for m in [*G.modules(), *D.modules()]:  # BatchNorm away from its initial values
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.5, 0.5)
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2)
    G.eval(), D.eval()
    CG, CD = ConditionalGenerator(nz=4, ngf=8, nef=8, ncode=8), ConditionalDiscriminator(ndf=8)
    CG.start_from(G), CD.start_from(D)
    CG.eval(), CD.eval()
    z, view = torch.randn(3, 4), torch.randn(3, 3, 128, 128)
    with torch.no_grad():
        assert torch.allclose(CG(torch.randn(3, 3, 128, 128), torch.randn(3, 4, 128, 128), z), G(z), atol=1e-6)
        assert torch.allclose(CD(view, torch.randn(3, 4, 128, 128)), D(view), atol=1e-6)
    top_row = ConditionalGenerator(nz=4, ngf=8, nef=8, ncode=8, z_rows=1)  # the presets': at z = 0 still G(0)
    top_row.start_from(G)
    top_row.eval()
    with torch.no_grad():
        zero = torch.zeros(2, 4)
        assert torch.allclose(top_row(torch.randn(2, 3, 128, 128), torch.randn(2, 4, 128, 128), zero), G(zero), atol=1e-6)
    with pytest.raises(ValueError, match="widths"):
        ConditionalGenerator(nz=4, ngf=16).start_from(G)


# ---------------------------------------------------------------------------------------------
# the loop

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The GAN tests' tiny dataset, with headings (one in four unknown)."""
    root = write_tiny_dataset(tmp_path_factory.mktemp("tiny"))
    pairs = manifest.read(root, "pairs.csv")
    pairs["heading"] = [("" if i % 4 == 3 else float(i * 37 % 360)) for i in range(len(pairs))]
    manifest.write(root, "pairs.csv", pairs)
    return root


def smoke(tiny, runs_dir, **overrides) -> ConditionalConfig:
    return make_config(ConditionalConfig, "smoke", data=str(tiny), runs=str(runs_dir), threads=1, **overrides)


@pytest.fixture(scope="module")
def finished_run(tiny, tmp_path_factory):
    return train(smoke(tiny, tmp_path_factory.mktemp("runs"), checkpoint_every_steps=3), progress=False)


def test_run_directory(finished_run):
    stats = read_jsonl(finished_run / "stats.jsonl")
    assert [s["epoch"] for s in stats] == [1, 2]
    for key in ("loss_D", "loss_G_adv", "loss_rec", "loss_ms", "z_spread", "swd", "rec_fixed", "tex_fixed", "img_s"):
        assert key in stats[0], key
    assert stats[0]["tex_fixed"] > 0  # the ground's grain error, measured with the term off
    for key in ("loss_tex", "loss_sem", "loss_critic"):  # terms that are off are not logged as 0
        assert key not in stats[0], key
    assert (finished_run / "samples" / "fakes-00002.png").exists()
    G, cfg = load_generator(finished_run)
    assert cfg.heading == "known" and not G.training
    views = predict_views(G, torch.randint(0, 255, (3, 3, 64, 64), dtype=torch.uint8), torch.tensor([0.0, 90, 180]))
    assert views.shape == (3, 3, 128, 128)


def test_resume_mid_epoch_is_exact(finished_run, tiny, tmp_path):
    cfg = smoke(tiny, tmp_path, checkpoint_every_steps=3)
    run_dir = train(cfg, progress=False, max_steps=9)  # 8 steps an epoch: stops inside epoch 2
    assert runs.load_checkpoint(run_dir)["step_in_epoch"] == 1
    with open(run_dir / "stats.jsonl", "a") as f:  # a torn line from after the checkpoint
        f.write(json.dumps({"epoch": 2, "loss_D": -1.0}) + "\n" + '{"epoch": 3, "lo')
    train(cfg, resume=run_dir, progress=False)
    a, b = runs.load_checkpoint(finished_run), runs.load_checkpoint(run_dir)
    for key in ("G", "D", "G_ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"
    strip = [{k: v for k, v in s.items() if k not in TIMING_KEYS} for s in read_jsonl(finished_run / "stats.jsonl")]
    again = [{k: v for k, v in s.items() if k not in TIMING_KEYS} for s in read_jsonl(run_dir / "stats.jsonl")]
    assert strip == again


def test_discriminators_rate_follows_the_generators_with_lr_step_d_and_resumes_exactly(tiny, tmp_path):
    """lr_step_d halves D's rate with G's (the smoke preset halves after every epoch); without it
    D's stays constant. The schedule is in the checkpoint: a run cut inside epoch 2 and resumed
    ends where the whole run ends."""
    constant = read_jsonl(train(smoke(tiny, tmp_path / "a", epochs=3), progress=False) / "stats.jsonl")
    assert [s["lr_G"] for s in constant] == [2e-4, 1e-4, 5e-5]
    assert [s["lr_D"] for s in constant] == [2e-4] * 3
    whole = train(smoke(tiny, tmp_path / "b", epochs=3, lr_step_d=True), progress=False)
    assert [s["lr_D"] for s in read_jsonl(whole / "stats.jsonl")] == [2e-4, 1e-4, 5e-5]
    cut = smoke(tiny, tmp_path / "c", epochs=3, lr_step_d=True)
    resumed = train(cut, resume=train(cut, progress=False, max_steps=11), progress=False)
    a, b = runs.load_checkpoint(whole), runs.load_checkpoint(resumed)
    assert a["sched_D"] == b["sched_D"] and a["sched_D"]["last_epoch"] == 3
    for key in ("G", "D"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"


def test_feature_matching_reaches_only_the_generator(tiny, tmp_path):
    """One step with and without the feature-matching term: D's update (first in the step) is the
    same, G's differs."""
    plain = runs.load_checkpoint(train(smoke(tiny, tmp_path / "a"), progress=False, max_steps=1))
    matched = runs.load_checkpoint(train(smoke(tiny, tmp_path / "b", fm_weight=10.0), progress=False, max_steps=1))
    weights = [k for k in plain["D"] if k.endswith(("weight", "bias"))]  # not BatchNorm's running statistics
    assert weights and all(torch.equal(plain["D"][k], matched["D"][k]) for k in weights)
    assert not all(torch.equal(t, matched["G"][k]) for k, t in plain["G"].items())


def test_texture_term_reaches_only_the_generator(tiny, tmp_path):
    off = train(smoke(tiny, tmp_path / "a", tex_weight=0.0), progress=False, max_steps=1)
    on = runs.load_checkpoint(train(smoke(tiny, tmp_path / "b", tex_weight=100.0), progress=False, max_steps=1))
    plain = runs.load_checkpoint(off)
    weights = [k for k in plain["D"] if k.endswith(("weight", "bias"))]
    assert weights and all(torch.equal(plain["D"][k], on["D"][k]) for k in weights)
    assert not all(torch.equal(t, on["G"][k]) for k, t in plain["G"].items())
    assert plain["epoch_sums"][SUMS.index("loss_tex")] == 0 < on["epoch_sums"][SUMS.index("loss_tex")]


def test_semantic_loss_reads_only_the_critics_rows():
    """The critic's cross-entropy against the class maps counts rows from its `top` down: the
    sky above them may be anything."""
    torch.manual_seed(0)
    critic = Segmenter(n_classes=3, width=4, top=0.5).eval()
    views = torch.rand(2, 3, 32, 32) * 2 - 1
    maps = torch.randint(0, 3, (2, 32, 32), dtype=torch.uint8)
    other_sky = maps.clone()
    other_sky[:, :16] = 255 - other_sky[:, :16]  # ids the critic has no class for: never read
    assert torch.equal(semantic_loss(critic, views, maps), semantic_loss(critic, views, other_sky))
    logits = critic(critic.inputs(views))
    assert logits.shape == (2, 3, 16, 32)
    right = logits.argmax(1).to(torch.uint8)
    assert semantic_loss(critic, views, torch.cat([maps[:, :16], right], 1)) < semantic_loss(critic, views, maps)


@pytest.fixture(scope="module")
def tiny_with_classes(tmp_path_factory):
    """The tiny dataset with class maps: sky (0) above each photo's horizon, meadow (1) below it
    where the ground is light green, field (2) where it is dark."""
    root = write_tiny_dataset(tmp_path_factory.mktemp("tiny-classes"))
    pairs = manifest.read(root, "pairs.csv")
    pairs["heading"] = [float(i * 37 % 360) for i in range(len(pairs))]
    manifest.write(root, "pairs.csv", pairs)
    (root / "classes").mkdir()
    for path in pairs["photo_path"]:
        photo = np.asarray(Image.open(root / path)).astype(int)
        sky = photo[..., 2] > photo[..., 1]
        ground = 1 if photo[-8:, :, 1].mean() > 150 else 2
        Image.fromarray(np.where(sky, 0, ground).astype(np.uint8), mode="L").save(
            root / "classes" / f"{path.split('/')[-1].rsplit('.', 1)[0]}.png")
    return root


def test_semantic_term_trains_the_critic_and_reaches_only_the_generator(tiny, tiny_with_classes, tmp_path):
    off = runs.load_checkpoint(train(smoke(tiny_with_classes, tmp_path / "a"), progress=False, max_steps=1))
    on = runs.load_checkpoint(train(smoke(tiny_with_classes, tmp_path / "b", sem_weight=1.0), progress=False,
                                    max_steps=1))
    assert off["critic"] is None and on["critic"] is not None
    weights = [k for k in off["D"] if k.endswith(("weight", "bias"))]
    assert weights and all(torch.equal(off["D"][k], on["D"][k]) for k in weights)
    assert not all(torch.equal(t, on["G"][k]) for k, t in off["G"].items())
    assert off["epoch_sums"][SUMS.index("loss_sem")] == 0
    assert on["epoch_sums"][SUMS.index("loss_sem")] > 0 and on["epoch_sums"][SUMS.index("loss_critic")] > 0
    # the critic learns the photos' classes: its loss falls over the run (3 epochs of 8 steps)
    done = train(smoke(tiny_with_classes, tmp_path / "c", sem_weight=1.0, epochs=3, critic_lr=5e-3), progress=False)
    critic_losses = [s["loss_critic"] for s in read_jsonl(done / "stats.jsonl")]
    assert critic_losses[-1] < 0.75 * critic_losses[0], critic_losses  # measured: 1.65 -> 1.04


def test_resume_with_the_semantic_critic_is_exact(tiny_with_classes, tmp_path):
    cfg = smoke(tiny_with_classes, tmp_path / "whole", sem_weight=1.0)
    whole = runs.load_checkpoint(train(cfg, progress=False))
    cut = smoke(tiny_with_classes, tmp_path / "cut", sem_weight=1.0)
    run_dir = train(cut, progress=False, max_steps=5)
    resumed = runs.load_checkpoint(train(cut, resume=run_dir, progress=False))
    for key in ("G", "G_ema", "critic"):
        for name, tensor in whole[key].items():
            assert torch.equal(tensor, resumed[key][name]), f"{key}.{name} differs after resume"


def test_semantic_term_without_class_maps_says_what_to_do(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"class maps .*--sem-weight 0"):
        train(smoke(tiny, tmp_path, sem_weight=1.0), progress=False)
    assert not runs.list_runs(tmp_path)


def test_mismatch_term_changes_the_discriminator_step(tiny, tmp_path):
    """GAN-CLS's third D term: with it, D's first update differs (it also calls real photos beside
    another place's warp fake); without it, the step is the plain one."""
    plain = runs.load_checkpoint(train(smoke(tiny, tmp_path / "a"), progress=False, max_steps=1))
    mismatched = runs.load_checkpoint(train(smoke(tiny, tmp_path / "b", mismatch_weight=1.0), progress=False,
                                            max_steps=1))
    weights = [k for k in plain["D"] if k.endswith(("weight", "bias"))]
    assert not all(torch.equal(plain["D"][k], mismatched["D"][k]) for k in weights)


def test_discriminator_sees_each_photo_once_at_the_same_loss():
    """The loop gives D each real photo once although the batch holds it twice (two draws of z):
    in training mode the BCE and its gradients are those of the duplicated batch."""
    torch.manual_seed(0)
    D = ConditionalDiscriminator(ndf=8).train().double()  # float64: equal up to rounding
    view, warp = torch.rand(4, 3, 128, 128, dtype=torch.float64) * 2 - 1, torch.rand(4, 4, 128, 128, dtype=torch.float64)
    grads = []
    for v, w in ((view, warp), (view.repeat_interleave(2, 0), warp.repeat_interleave(2, 0))):
        D.zero_grad()
        logit = D(v, w)
        nn.functional.binary_cross_entropy_with_logits(logit, torch.ones_like(logit)).backward()
        grads.append(torch.cat([p.grad.flatten() for p in D.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-9, atol=1e-12)


def test_too_small_a_dataset_stops_before_a_run_folder(tiny, tmp_path):
    with pytest.raises(ValueError, match="needs at least"):
        train(smoke(tiny, tmp_path, max_images=4, batch_size=16), progress=False)
    assert not runs.list_runs(tmp_path)
