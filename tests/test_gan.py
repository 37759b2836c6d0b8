"""The GAN stage: architecture, a D step, checkpoints, exact resume, DDP, the CLI.

Everything runs on a tiny synthetic dataset written here (sky over green ground, as JPEGs with a
pairs.csv), with the smoke preset's widths, so the whole file takes well under a minute.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn
from PIL import Image

from conftest import ROOT
from sat2scape import manifest, runs, runtime, train_gan
from sat2scape.config import GANConfig, make_config
from sat2scape.files import read_jsonl
from sat2scape.models import Discriminator, Generator
from sat2scape.checkpoints import load_discriminator, load_generator
from sat2scape.train_gan import train

TIMING_KEYS = {"epoch_time", "img_s", "swd_time"}


def write_tiny_dataset(root: Path, n: int = 72, size: int = 64, seed: int = 0) -> Path:
    """n photos of a horizon (sky above, green ground below) at random heights; 8 go to test."""
    rng = np.random.default_rng(seed)
    (root / "photos").mkdir(parents=True)
    (root / "satellite").mkdir()
    rows = []
    for i in range(n):
        img = np.empty((size, size, 3), np.float32)
        horizon = rng.integers(size // 3, 2 * size // 3)
        img[:horizon] = [100, 150, 230]
        img[horizon:] = [40, 120 + rng.integers(0, 60), 50]
        img = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / "photos" / f"{i}.jpg", quality=90)
        Image.fromarray(img[::-1]).save(root / "satellite" / f"{i}.png")
        rows.append(dict(photo_id=f"tiny:{i}", photo_path=f"photos/{i}.jpg", satellite_path=f"satellite/{i}.png",
                         lat=57.0 + i * 1e-3, lon=39.0, provider="tiny", zoom=17, meters_per_pixel=1.0,
                         attribution="", split="train" if i < n - 8 else "test"))
    manifest.write(root, "pairs.csv", pd.DataFrame(rows))
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def smoke(tiny: Path, runs_dir: Path, **overrides) -> GANConfig:
    return make_config(GANConfig, "smoke", data=str(tiny), runs=str(runs_dir), threads=1, **overrides)


# ---------------------------------------------------------------------------------------------

def test_generator_is_the_write_ups():
    G = Generator(nz=4, ngf=8)
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    projection, ups = convs[0], convs[1:]
    assert projection.in_channels == 4 and projection.stride == (1, 1) and projection.out_channels == 64
    assert len(ups) == 5 and all(m.stride == (2, 2) and m.kernel_size == (4, 4) for m in ups)
    x = G(torch.randn(3, 4) * 10)
    assert x.shape == (3, 3, 128, 128)
    assert x.min() >= -1 and x.max() <= 1


def test_discriminator_mirrors_it():
    D = Discriminator(ndf=8)
    convs = [m for m in D.main.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and all(m.stride == (2, 2) and m.kernel_size == (4, 4) for m in convs)
    logit, features = D(torch.randn(2, 3, 128, 128), return_features=True)
    assert logit.shape == (2,) and len(features) == 5 and features[-1].shape[-1] == 4


def test_a_few_d_steps_separate_an_easy_case():
    torch.manual_seed(0)
    D = Discriminator(ndf=8)
    opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion = nn.BCEWithLogitsLoss()
    real = torch.full((4, 3, 128, 128), 0.8)
    fake = torch.rand(4, 3, 128, 128) * 0.4 - 1  # dark noise: nothing like the real set

    def loss():
        return criterion(D(real), torch.ones(4)) + criterion(D(fake), torch.zeros(4))

    before = loss().item()
    for _ in range(3):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < before


# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tiny, tmp_path_factory) -> Path:
    # DiffAugment and flips on, so resuming must restore the RNG streams too
    return train(smoke(tiny, tmp_path_factory.mktemp("runs"), diffaugment="color,translation,cutout",
                       checkpoint_every_steps=3), progress=False)


def test_run_directory_and_checkpoint(finished_run):
    cfg = json.loads((finished_run / "config.json").read_text())
    assert cfg["nz"] == 4 and cfg["ngf"] == 8
    stats = read_jsonl(finished_run / "stats.jsonl")
    assert [s["epoch"] for s in stats] == [1, 2]
    for key in ("loss_D", "loss_G", "D_x", "D_G_z", "lr_G", "lr_D", "img_s", "swd", "epoch_time", "swd128"):
        assert key in stats[0], key
    assert stats[1]["lr_G"] == pytest.approx(stats[0]["lr_G"] * 0.5)  # StepLR, step size 1 in smoke
    assert (finished_run / "losses.png").exists() and (finished_run / "samples" / "fakes-00002.png").exists()

    ckpt = runs.load_checkpoint(finished_run)  # weights_only=True
    for key in ("G", "D", "G_ema", "opt_G", "opt_D", "sched_G", "epoch", "step", "step_in_epoch", "rng",
                "config", "stats_lines"):
        assert key in ckpt, key
    assert (ckpt["epoch"], ckpt["step"], ckpt["step_in_epoch"], ckpt["stats_lines"]) == (2, 8, 0, 2)

    G = load_generator(finished_run)
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    assert torch.equal(G.state_dict()["main.0.weight"], ckpt["G_ema"]["main.0.weight"])
    assert torch.equal(load_generator(finished_run, ema=False).state_dict()["main.0.weight"],
                       ckpt["G"]["main.0.weight"])
    with torch.no_grad():
        z = torch.randn(2, 4)
        assert torch.equal(G(z), G(z))  # eval mode: deterministic per z, as the encoder needs
    D = load_discriminator(finished_run)
    assert not D.training and D(torch.zeros(1, 3, 128, 128)).shape == (1,)


def test_resume_mid_epoch_is_exact(finished_run, tiny, tmp_path):
    cfg = smoke(tiny, tmp_path, diffaugment="color,translation,cutout", checkpoint_every_steps=3)
    run_dir = train(cfg, progress=False, max_steps=5)  # stops inside epoch 2, as a kill would
    assert runs.load_checkpoint(run_dir)["step_in_epoch"] == 1
    # what a kill -9 after the checkpoint could leave: a stats line from later, torn half a line
    with open(run_dir / "stats.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 2, "loss_D": -1.0}) + "\n" + '{"epoch": 3, "lo')
    train(cfg, resume=run_dir, progress=False)

    a, b = runs.load_checkpoint(finished_run), runs.load_checkpoint(run_dir)
    for key in ("G", "D", "G_ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"
    for key in ("opt_G", "opt_D"):
        for i, state in a[key]["state"].items():
            assert all(torch.equal(v, b[key]["state"][i][k]) for k, v in state.items()), key
    strip = [{k: v for k, v in s.items() if k not in TIMING_KEYS} for s in read_jsonl(finished_run / "stats.jsonl")]
    again = [{k: v for k, v in s.items() if k not in TIMING_KEYS} for s in read_jsonl(run_dir / "stats.jsonl")]
    assert strip == again


def test_resume_keeps_the_runs_config(finished_run, tiny, tmp_path, capsys):
    cfg = smoke(tiny, tmp_path, max_images=32)
    run_dir = train(cfg, progress=False, max_steps=1)
    changed = dataclasses.replace(cfg, lr_g=1.0, epochs=1)
    train(changed, resume=run_dir, progress=False)
    saved = runs.load_checkpoint(run_dir)["config"]
    assert saved["lr_g"] == cfg.lr_g and saved["epochs"] == 1
    assert "keeping the run's lr_g" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------

def _cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_cli_smoke_preset(tiny, tmp_path):
    out = _cli("-m", "sat2scape", "train-gan", "--preset", "smoke", "--data", str(tiny), "--runs", str(tmp_path),
               "--threads", "1", "--no-progress")
    assert out.returncode == 0, out.stderr
    (run_dir,) = runs.list_runs(tmp_path, "gan")
    assert runs.load_checkpoint(run_dir)["epoch"] == 2 and str(run_dir) in out.stdout


def test_ddp_two_cpu_processes(tiny, tmp_path):
    """torchrun with 2 gloo processes: one run directory, written by rank 0, both ranks' RNG saved."""
    out = _cli("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "sat2scape", "train-gan", "--preset", "smoke", "--data", str(tiny), "--runs", str(tmp_path),
               "--threads", "1", "--no-progress", "--epochs", "1", env={"OMP_NUM_THREADS": "1"}, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = runs.list_runs(tmp_path, "gan")  # rank 1 created nothing
    ckpt = runs.load_checkpoint(run_dir)
    assert ckpt["epoch"] == 1 and ckpt["step"] == 4 and len(ckpt["rng"]) == 2
    assert len(read_jsonl(run_dir / "stats.jsonl")) == 1
    assert out.stdout.count("epoch 1/1") == 1  # only rank 0 reports


# ---------------------------------------------------------------------------------------------
# A run folder appears only once it holds a checkpoint (tracker issue 11)

def _crash(*args, **kwargs):
    raise RuntimeError("simulated crash in the first step")


def test_a_run_that_fails_before_its_first_checkpoint_leaves_nothing_to_pick(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(train_gan, "diff_augment", _crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(smoke(tiny, tmp_path), progress=False)
    assert runs.list_runs(tmp_path) == [] and runs.latest_run(tmp_path, "gan") is None
    assert runs.find_run(tmp_path, "gan", "", data=str(tiny)) is None
    monkeypatch.undo()
    # the next run takes the first number, not the one after the failed run
    run_dir = train(smoke(tiny, tmp_path, epochs=1, max_images=16), progress=False)
    assert run_dir.name == "00000-gan" and runs.list_runs(tmp_path) == [run_dir]
    assert runs.latest_run(tmp_path, "gan") == run_dir


def test_a_finished_run_is_reused_only_for_the_settings_it_learnt_with(tiny, tmp_path):
    """The demo and the sweeps reuse a finished run of the same name only while the preset's values
    are still the ones it learnt with: a changed preset trains anew. Fields a resume may change
    (epochs: the run continues) do not count; fields newer than the run count at their default."""
    cfg = smoke(tiny, tmp_path, epochs=1, max_images=16, desc="demo")
    run_dir = train(cfg, progress=False)
    assert runs.find_run_like(cfg, "gan", train_gan.RESUMABLE_FIELDS) == run_dir
    assert runs.find_run_like(dataclasses.replace(cfg, epochs=3), "gan", train_gan.RESUMABLE_FIELDS) == run_dir
    assert runs.find_run_like(dataclasses.replace(cfg, lr_g=cfg.lr_g / 2), "gan", train_gan.RESUMABLE_FIELDS) is None
    assert runs.find_run_like(dataclasses.replace(cfg, data=str(tmp_path)), "gan", train_gan.RESUMABLE_FIELDS) is None
    saved = json.loads((run_dir / "config.json").read_text())
    del saved["diffaugment"]  # a run from before the field existed: it learnt with the default
    (run_dir / "config.json").write_text(json.dumps(saved))
    assert runs.find_run_like(cfg, "gan", train_gan.RESUMABLE_FIELDS) == run_dir
    assert runs.find_run_like(dataclasses.replace(cfg, diffaugment="color"), "gan", train_gan.RESUMABLE_FIELDS) is None


def test_a_failed_run_leaves_no_hidden_folder_once_its_process_exits(tiny, tmp_path):
    script = (f"import sat2scape.train_gan as t\n"
              f"from sat2scape.config import GANConfig, make_config\n"
              f"t.diff_augment = lambda *a: 1 / 0\n"
              f"t.train(make_config(GANConfig, 'smoke', data={str(tiny)!r}, runs={str(tmp_path)!r}, threads=1), "
              f"progress=False)\n")
    out = _cli("-c", script)
    assert out.returncode == 1 and "ZeroDivisionError" in out.stderr
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# The layers: training loops never import the figures, which sit on top (tracker issue 11)

def _imported_names(path: Path) -> set[str]:
    """The module and member names of every import in a source file, at the top or inside a
    function (`from ..train_gan import generate` gives "train_gan" and "generate")."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {getattr(node, "module", None) or ""} | {a.name for a in node.names}
    return found


def test_training_loops_do_not_import_figures():
    for name in ("train_gan.py", "train_encoder.py", "checkpoints.py", "images.py", "runs.py"):
        imported = _imported_names(ROOT / "sat2scape" / name)
        assert not [m for m in imported if "figures" in m], f"sat2scape/{name} imports figures: {imported}"
    imported = _imported_names(ROOT / "sat2scape" / "figures" / "gan.py")
    assert not [m for m in imported if "train_gan" in m], "figures/gan.py imports the GAN's training loop"


def test_a_grid_of_any_number_of_images():
    from sat2scape.images import image_grid

    images = torch.full((46, 3, 8, 8), 100, dtype=torch.uint8)
    grid = np.asarray(image_grid(images, ncol=8))  # 6 rows of 8, the last with 6 images
    step = 8 + 2
    assert grid.shape == (2 + 6 * step, 2 + 8 * step, 3)
    assert (grid[2 + 5 * step + 4, 2 + 5 * step + 4] == 100).all()  # image 46: row 6, column 6
    assert (grid[2 + 5 * step + 4, 2 + 6 * step + 4] == 255).all()  # no image 47: white
    assert np.asarray(image_grid(images[:1])).shape == (12, 12, 3)


PAGE_FAULTS_OF_FOUR_STEPS = """
import resource, sys, torch
from sat2scape import runtime
from sat2scape.models import Discriminator, Generator
if sys.argv[1] == "tuned":
    assert runtime.keep_freed_memory()
torch.manual_seed(0)
G, D = Generator(4, 16), Discriminator(16)
opt = torch.optim.Adam([*G.parameters(), *D.parameters()])
def step():
    opt.zero_grad()
    D(G(torch.randn(16, 4))).mean().backward()
    opt.step()
step(), step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(os.uname().sysname != "Linux", reason="keep_freed_memory tunes glibc's malloc (Linux)")
def test_training_steps_reuse_their_freed_memory():
    """With glibc's defaults every step's freed activations go back to the kernel and the next
    step faults them in again, page by page (measured: 10-46 thousand faults in 4 steps at
    width 16); after keep_freed_memory (what configure_cpu does for every stage) the steps
    reuse them (0 most times, up to 1024 now and then: one 4 MiB mapping). Broken, the two
    counts would be alike."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "GLIBC_TUNABLES")}
    faults = {mode: int(subprocess.run([sys.executable, "-c", PAGE_FAULTS_OF_FOUR_STEPS, mode], env=env, cwd=ROOT,
                                       capture_output=True, text=True, check=True).stdout)
              for mode in ("glibc", "tuned")}
    if faults["glibc"] < 4000:  # e.g. transparent huge pages for every mapping: 2 MiB a fault
        pytest.skip(f"glibc's defaults fault only {faults['glibc']} pages here: nothing to save")
    assert faults["tuned"] < faults["glibc"] / 4, faults  # 10x failed once: 1024 against 10112


def test_bf16_auto_follows_the_hardware(monkeypatch):
    """`auto` autocasts only where bf16 is native: on a CPU without AVX512-BF16 or AMX it is
    emulated (28x slower in the demo GAN step), so there it trains in fp32; `on` and `off` are obeyed."""
    cpu = torch.device("cpu")
    for native in (True, False):
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda native=native: native)
        assert runtime.native_bf16(cpu) is native
        assert runtime.use_bf16("auto", cpu) is native
        assert runtime.use_bf16("on", cpu) and not runtime.use_bf16("off", cpu)
    assert runtime.use_bf16("auto", torch.device("cuda"))
    with pytest.raises(ValueError, match="auto, on or off"):
        runtime.use_bf16("yes", cpu)
    for preset in ("paper", "demo"):  # no preset forces emulated bf16 on a CPU
        assert make_config(GANConfig, preset).bf16 == "auto"
