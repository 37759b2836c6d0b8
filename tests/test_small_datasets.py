"""Small datasets (tracker issue 11): every command trains, evaluates and draws on any dataset
with one batch of training pairs; a split too small for a command stops it before any run
folder is made, with a message naming the file, the split, its size and what to do.

One small built-in world is generated per module; each case is a folder whose pairs.csv gives
its first rows the split sizes under test (the images are shared by symlinks), so a case costs
no rendering. Everything runs the smoke preset for one epoch at smoke widths.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sat2scape import demo, evaluate, manifest, runs, train_encoder, train_gan, world
from sat2scape.__main__ import main
from sat2scape.config import EncoderConfig, GANConfig, make_config
from sat2scape.files import read_jsonl
from sat2scape.figures import make_figures


@pytest.fixture(scope="module")
def base_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small") / "world"
    world.generate(root, 80, progress=False)
    return root


def dataset(base: Path, out: Path, train: int, val: int = 0, test: int = 2) -> Path:
    """A copy of `base` whose pairs.csv holds its first rows as `train`, `val` and `test` pairs."""
    table = manifest.read(base, "pairs.csv")
    assert len(table) >= train + val + test, "make the module's world bigger"
    out.mkdir(parents=True)
    for item in base.iterdir():
        if item.is_dir() and item.name != "cache":
            (out / item.name).symlink_to(item.resolve(), target_is_directory=True)
        elif item.is_file() and item.name != "pairs.csv":
            (out / item.name).write_bytes(item.read_bytes())  # world.json: the hints and the walk read it
    rows = table.iloc[:train + val + test].copy()
    rows["split"] = ["train"] * train + ["val"] * val + ["test"] * test
    manifest.write(out, "pairs.csv", rows)
    return out


def gan_config(data: Path, runs_root: Path, **overrides) -> GANConfig:
    values = dict(data=str(data), runs=str(runs_root), threads=2, epochs=1, max_images=0, **overrides)
    return make_config(GANConfig, "smoke", **values)


def encoder_config(data: Path, runs_root: Path, **overrides) -> EncoderConfig:
    values = dict(data=str(data), runs=str(runs_root), threads=2, epochs=1, max_images=0, **overrides)
    return make_config(EncoderConfig, "smoke", **values)


def entries(folder: Path) -> list[str]:
    """Everything in a folder, hidden entries included (a pending run is hidden)."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------------------------------------
# Training

@pytest.mark.parametrize("n", [46, 65])
def test_gan_trains_on_any_number_of_photos_that_fills_a_batch(base_world, tmp_path, n):
    """46 photos crashed in the grid of reals.png (46 is not a multiple of its 8 columns)."""
    data = dataset(base_world, tmp_path / "data", train=n)
    run_dir = train_gan.train(gan_config(data, tmp_path / "runs"), progress=False)
    assert entries(tmp_path / "runs") == ["00000-gan"]
    assert runs.load_checkpoint(run_dir)["step"] == n // 16  # the last partial batch is dropped
    assert (run_dir / "samples" / "reals.png").exists() and (run_dir / "samples" / "fakes-00001.png").exists()
    assert "swd" in read_jsonl(run_dir / "stats.jsonl")[0]


@pytest.mark.parametrize("n", [1, 7])
def test_a_split_smaller_than_one_batch_stops_before_any_run_folder(base_world, tmp_path, n):
    data = dataset(base_world, tmp_path / "data", train=n)
    runs_root = tmp_path / "runs"
    with pytest.raises(runs.DatasetTooSmall) as e:
        train_gan.train(gan_config(data, runs_root), progress=False)
    message = str(e.value)
    assert f"{data / 'pairs.csv'}: split 'train' has {n} pair" in message and "a batch of 16" in message
    assert f"lower --batch-size to {n} or less" in message and "generate more pairs" in message
    assert entries(runs_root) == []

    gan_run = train_gan.train(gan_config(data, runs_root, batch_size=n), progress=False)  # a batch that fits
    with pytest.raises(runs.DatasetTooSmall, match=f"split 'train' has {n} pair"):
        train_encoder.train(encoder_config(data, runs_root, gan_run=str(gan_run)), progress=False)
    assert entries(runs_root) == [gan_run.name]


@pytest.mark.parametrize("n, batch", [(1, 1), (7, 4)])
def test_a_few_pairs_train_both_stages_and_evaluate(base_world, tmp_path, n, batch):
    """The smallest datasets that fill a batch, through GAN, encoder (with a one-pair val split)
    and the evaluation on a one-pair test split: every baseline and the oracle."""
    data = dataset(base_world, tmp_path / "data", train=n, val=1, test=1)
    gan_run = train_gan.train(gan_config(data, tmp_path / "runs", batch_size=batch), progress=False)
    enc_run = train_encoder.train(encoder_config(data, tmp_path / "runs", gan_run=str(gan_run), batch_size=batch),
                                  progress=False)
    assert "val_top5" in read_jsonl(enc_run / "stats.jsonl")[0]
    result = evaluate.evaluate(enc_run, "test", oracle_images=8, oracle_steps=2, device="cpu", progress=False)
    assert set(result["methods"]) == set(evaluate.METHODS)
    for method, row in result["methods"].items():
        assert row["n"] == 1 and all(torch.isfinite(torch.tensor(row[k])) for k, _ in evaluate.COLUMNS), method


def test_encoder_trains_without_val_pairs_and_evaluation_names_an_empty_test_split(base_world, tmp_path, capsys):
    data = dataset(base_world, tmp_path / "data", train=46, val=0, test=0)
    gan_run = train_gan.train(gan_config(data, tmp_path / "runs"), progress=False)
    enc_run = train_encoder.train(encoder_config(data, tmp_path / "runs", gan_run=str(gan_run)), progress=False)
    assert "has no val pairs; training without validation metrics" in capsys.readouterr().out
    assert enc_run.name == "00001-encoder-custom" and "val_loss" not in read_jsonl(enc_run / "stats.jsonl")[0]

    assert main(["evaluate", "--run", str(enc_run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{data / 'pairs.csv'}: split 'test' has 0 pairs" in err and "generate more pairs" in err
    assert "Traceback" not in err and not list(enc_run.glob("metrics*"))


def test_cli_names_the_split_and_makes_no_run_folder(base_world, tmp_path, capsys):
    data = dataset(base_world, tmp_path / "data", train=46)
    runs_root = tmp_path / "runs"
    code = main(["train-gan", "--data", str(data), "--preset", "smoke", "--runs", str(runs_root),
                 "--max-images", "7", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert "split 'train' has 46 pairs, 7 of them used (--max-images 7)" in err and "raise --max-images" in err
    assert entries(runs_root) == []


# ---------------------------------------------------------------------------------------------
# The demo and the figures

def test_demo_with_an_empty_test_split_stops_before_any_run_folder(base_world, tmp_path, capsys):
    data = dataset(base_world, tmp_path / "data", train=46, val=4, test=0)
    runs_root = tmp_path / "runs"
    assert main(["demo", "--smoke", "--n", "50", "--data", str(data), "--runs", str(runs_root), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "split 'test' has 0 pairs" in err and "the demo's evaluation" in err
    assert entries(runs_root) == []
    out = tmp_path / "assets"
    assert main(["figures", "--data", str(data), "--runs", str(runs_root), "--out", str(out),
                 "--gif", str(tmp_path / "walk.gif"), "--no-readme"]) == 2
    assert "split 'test' has 0 pairs" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_demo_and_figures_on_a_small_world_without_val_pairs(base_world, tmp_path):
    data = dataset(base_world, tmp_path / "data", train=46, val=0, test=2)
    runs_root = tmp_path / "runs"
    produced = demo.demo(n=48, data=str(data), runs_root=str(runs_root), gif=str(tmp_path / "walk.gif"),
                         frames=2, smoke=True, sequential=True, progress=False)  # test_readme's demo: side by side
    assert produced["gif"].exists() and produced["metrics"].exists()
    # both models, and the segmenter the evaluation trains for the ground-class score
    assert entries(runs_root) == ["00000-gan-smoke", "00001-encoder-smoke", "00002-conditional-smoke",
                                  "00003-segmenter-smoke"]
    made = make_figures(data, runs_root, out=tmp_path / "assets", gif=tmp_path / "prediction.gif", frames=2,
                        update_readmes=False)
    assert all(Path(p).exists() for p in made) and (tmp_path / "assets" / "gan_results.png") in made
