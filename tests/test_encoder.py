"""The encoder stage: shapes, a frozen generator, the run directory, exact resume.

The helpers here (a tiny paired dataset, a GAN run of random-init networks, one trained smoke
encoder) are shared with test_losses, test_evaluate and test_predict: no test needs a real
world or a trained GAN, only the files and shapes the stages exchange.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sat2scape import manifest, runs, train_encoder
from sat2scape.config import EncoderConfig, GANConfig, make_config
from sat2scape.models import Discriminator, Encoder, Generator


def smooth_image(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """A random low-frequency colour image (a 4x4 colour field upsampled): photo-like statistics."""
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))


def make_dataset(root, splits=(("train", 64), ("val", 8), ("test", 12)), seed=0):
    """A dataset folder with pairs.csv, photos/ and satellite/ of smooth random images."""
    rng = np.random.default_rng(seed)
    (root / "photos").mkdir(parents=True)
    (root / "satellite").mkdir()
    rows = []
    for split, count in splits:
        for _ in range(count):
            i = len(rows)
            Image.fromarray(smooth_image(rng)).save(root / "photos" / f"world_{i:06d}.jpg")
            Image.fromarray(smooth_image(rng)).save(root / "satellite" / f"world_{i:06d}.png")
            rows.append({"photo_id": f"world:{i:06d}", "photo_path": f"photos/world_{i:06d}.jpg",
                         "satellite_path": f"satellite/world_{i:06d}.png", "lat": 55.0 + i * 1e-3,
                         "lon": 37.0, "provider": "world", "zoom": 17, "meters_per_pixel": 1.0,
                         "attribution": "", "split": split})
    manifest.write(root, "pairs.csv", pd.DataFrame(rows))
    return root


def make_gan_run(runs_root, ngf=8, ndf=8, seed=0):
    """A GAN run directory of random-init networks, in train_gan's checkpoint format."""
    torch.manual_seed(seed)
    run_dir = runs.new_run_dir(runs_root, "gan", "test")
    runs.write_config(run_dir, GANConfig(ngf=ngf, ndf=ndf, runs=str(runs_root)))
    G, D = Generator(4, ngf), Discriminator(ndf)
    runs.save_checkpoint(run_dir, {"G": G.state_dict(), "D": D.state_dict(), "G_ema": G.state_dict(),
                                   "epoch": 1})
    return run_dir


def smoke_config(world, **overrides) -> EncoderConfig:
    values = dict(data=str(world.data), runs=str(world.runs), gan_run=str(world.gan_run), threads=2)
    return make_config(EncoderConfig, "smoke", **{**values, **overrides})


_CACHE: dict = {}


def tiny_world_and_encoder(tmp_path_factory):
    """One dataset, one GAN run and one trained smoke encoder per test session."""
    if "world" not in _CACHE:
        root = tmp_path_factory.mktemp("tiny")
        world = SimpleNamespace(data=make_dataset(root / "world"), runs=root / "runs")
        world.gan_run = make_gan_run(world.runs)
        world.encoder_run = train_encoder.train(smoke_config(world), progress=False)
        _CACHE["world"] = world
    return _CACHE["world"]


@pytest.fixture
def tiny(tmp_path_factory):
    return tiny_world_and_encoder(tmp_path_factory)


def test_shapes():
    E, G = Encoder(nz=4, nef=8), Generator(nz=4, ngf=8)
    z = E(torch.randn(2, 3, 128, 128))
    assert z.shape == (2, 4)
    assert G(z).shape == (2, 3, 128, 128)


def test_training_writes_the_run_directory(tiny):
    run_dir = tiny.encoder_run
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["gan_run"] == str(tiny.gan_run) and cfg["loss"] == "custom"
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert [s["epoch"] for s in stats] == [1, 2]
    for key in ("loss", "val_loss", "val_ssim", "val_ms-ssim", "val_psnr", "val_l1", "val_top5"):
        assert np.isfinite(stats[-1][key]), key
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["epoch-0001.png", "epoch-0002.png"]
    checkpoint = runs.load_checkpoint(run_dir)
    assert checkpoint["epoch"] == 2 and checkpoint["step_in_epoch"] == 0
    E, G = train_encoder.load_encoder(run_dir)
    assert not E.training and not G.training


def test_generator_stays_frozen(tiny, monkeypatch):
    """Training steps move the encoder but neither G's weights nor its BatchNorm statistics."""
    loaded = {}

    def capture(*args, **kwargs):
        loaded["G"] = real_loader(*args, **kwargs)
        loaded["before"] = {k: v.clone() for k, v in loaded["G"].state_dict().items()}
        return loaded["G"]

    real_loader = train_encoder.load_generator
    monkeypatch.setattr(train_encoder, "load_generator", capture)
    run_dir = train_encoder.train(smoke_config(tiny, desc="frozen"), progress=False, max_steps=3)
    G = loaded["G"]
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    after = G.state_dict()
    assert any("running_mean" in k for k in after)  # the buffers are checked too
    for key, value in loaded["before"].items():
        assert torch.equal(value, after[key]), f"generator {key} changed"
    assert runs.load_checkpoint(run_dir)["global_step"] == 3


def test_resume_is_exact(tiny):
    """Stopped mid-epoch and resumed, a run ends with exactly the weights of an uninterrupted one."""
    straight = train_encoder.train(smoke_config(tiny, desc="straight", checkpoint_every_steps=2), progress=False)
    stopped = train_encoder.train(smoke_config(tiny, desc="stopped", checkpoint_every_steps=2),
                                  progress=False, max_steps=5)  # 4 steps per epoch: stops inside epoch 2
    assert runs.load_checkpoint(stopped)["step_in_epoch"] == 1
    train_encoder.train(None, resume=stopped, progress=False)
    a, b = runs.load_checkpoint(straight), runs.load_checkpoint(stopped)
    for key in a["E"]:
        assert torch.equal(a["E"][key], b["E"][key]), key
    assert a["global_step"] == b["global_step"] == 8
    stats_a = (straight / "stats.jsonl").read_text().splitlines()
    stats_b = (stopped / "stats.jsonl").read_text().splitlines()
    drop = ("img_per_s", "seconds")
    assert [{k: v for k, v in json.loads(s).items() if k not in drop} for s in stats_a] == \
           [{k: v for k, v in json.loads(s).items() if k not in drop} for s in stats_b]


def test_commands_say_which_newest_run_they_picked(tiny, tmp_path, capsys):
    """Given no run, train-encoder (its GAN), predict, evaluate and figures each print the run
    they picked and why: a smoke run that happens to be newer is never used silently."""
    from PIL import Image

    from sat2scape.__main__ import main
    from sat2scape.figures import pick_run

    assert train_encoder.resolve_gan_run(smoke_config(tiny, gan_run="")) == tiny.gan_run
    assert (f"using {tiny.gan_run}: the newest gan run with a checkpoint under {tiny.runs}; "
            "pass --gan-run to use another") in capsys.readouterr().err

    newest = runs.latest_run(tiny.runs, "encoder")
    why = f"using {newest}: the newest encoder run with a checkpoint under {tiny.runs}"
    tile = tmp_path / "tile.png"
    Image.new("RGB", (128, 128), "green").save(tile)
    assert main(["predict", str(tile), "--runs", str(tiny.runs), "-o", str(tmp_path / "view.png")]) == 0
    err = capsys.readouterr().err  # predict prefers conditional runs, and says there is none
    assert why in err and "pass --run to use another" in err
    assert main(["evaluate", "--runs", str(tiny.runs), "--oracle-images", "0", "--no-progress",
                 "--device", "cpu"]) == 0
    assert f"{why}; pass --run to use another" in capsys.readouterr().err
    assert pick_run(tiny.runs, "encoder") == newest
    assert f"{why} (none is named *-demo); pass --encoder-run" in capsys.readouterr().err
