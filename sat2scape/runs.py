"""Run directories, as in stylegan2-ada-pytorch: data/runs/<NNNNN>-<stage>-<desc>/

    config.json     the full config of the run
    stats.jsonl     one JSON line per epoch (losses, learning rates, img/s, metrics)
    samples/        image grids
    checkpoint.pt   everything needed to resume exactly, written atomically
    metrics.json    evaluation results
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import torch

from .files import atomic_torch_save, atomic_write_json

RUN_NAME = re.compile(r"^(\d{5})-([a-z]+)(?:-(.*))?$")


def list_runs(runs_root: str | Path, stage: str | None = None) -> list[Path]:
    """Run directories under runs_root, oldest first, optionally only one stage's."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    runs = []
    for d in root.iterdir():
        m = RUN_NAME.match(d.name)
        if d.is_dir() and m and (stage is None or m.group(2) == stage):
            runs.append((int(m.group(1)), d))
    return [d for _, d in sorted(runs)]


def new_run_dir(runs_root: str | Path, stage: str, desc: str = "") -> Path:
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(RUN_NAME.match(d.name).group(1)) for d in list_runs(root)]
    name = f"{max(numbers, default=-1) + 1:05d}-{stage}"
    if desc:
        name += "-" + re.sub(r"[^A-Za-z0-9._-]+", "_", desc)
    run_dir = root / name
    run_dir.mkdir()
    return run_dir


def latest_run(runs_root: str | Path, stage: str) -> Path | None:
    """The newest run of a stage that has a checkpoint."""
    runs = [d for d in list_runs(runs_root, stage) if (d / "checkpoint.pt").exists()]
    return runs[-1] if runs else None


def find_run(runs_root: str | Path, stage: str, desc: str, **config) -> Path | None:
    """The newest run of `stage` named `*-<desc>` with a checkpoint and these config.json values:
    a finished one to reuse, or an interrupted one to resume (the demo and the seed sweep)."""
    for run_dir in reversed(list_runs(runs_root, stage)):
        if run_dir.name.endswith("-" + desc) and (run_dir / "checkpoint.pt").exists():
            saved = read_config(run_dir)
            if all(saved.get(k) == v for k, v in config.items()):
                return run_dir
    return None


def write_config(run_dir: Path, config) -> None:
    atomic_write_json(run_dir / "config.json", dataclasses.asdict(config))


def read_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run directory?")
    return json.loads(path.read_text())


def save_checkpoint(run_dir: Path, state: dict) -> Path:
    return atomic_torch_save(Path(run_dir) / "checkpoint.pt", state)


def load_checkpoint(run_dir: str | Path, map_location="cpu") -> dict:
    path = Path(run_dir) / "checkpoint.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: train first, or pass the right run directory")
    return torch.load(path, map_location=map_location, weights_only=True)
