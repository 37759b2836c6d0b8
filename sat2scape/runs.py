"""Run directories, as in stylegan2-ada-pytorch: data/runs/<NNNNN>-<stage>-<desc>/

    config.json     the full config of the run
    stats.jsonl     one JSON line per epoch (losses, learning rates, img/s, metrics)
    samples/        image grids
    checkpoint.pt   everything needed to resume exactly, written atomically
    metrics.json    evaluation results

A training run exists under its numbered name only once it has a checkpoint: it starts in a
hidden `.pending-<token>-<stage>-<desc>/` folder (pending_run_dir) and save_checkpoint renames it
to the next free number at its first checkpoint. So a run that fails before then is never
listed, never picked as "the newest run" and takes no number; its process removes the hidden
folder when it exits, and one killed outright (kill -9) leaves it behind, ignored, to delete.

Commands that default to "the newest run" say which run they picked and why (pick_latest), and
commands check that a dataset split is large enough before they make any run folder
(require_pairs).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import re
import secrets
import shutil
import sys
from pathlib import Path

import torch

from .files import atomic_torch_save, atomic_write_json, atomic_write_text, read_jsonl

RUN_NAME = re.compile(r"^(\d{5})-([a-z]+)(?:-(.*))?$")
PENDING_NAME = re.compile(r"^\.pending-[0-9a-f]+-(.+)$")  # the rest is "<stage>[-<desc>]"


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


def _stage_desc(stage: str, desc: str) -> str:
    return stage + ("-" + re.sub(r"[^A-Za-z0-9._-]+", "_", desc) if desc else "")


def _next_number(root: Path) -> int:
    return max((int(RUN_NAME.match(d.name).group(1)) for d in list_runs(root)), default=-1) + 1


def new_run_dir(runs_root: str | Path, stage: str, desc: str = "") -> Path:
    """A numbered run directory, made now (for results written at once, e.g. a sweep's tables;
    a training run starts with pending_run_dir instead)."""
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    run_dir = root / f"{_next_number(root):05d}-{_stage_desc(stage, desc)}"
    run_dir.mkdir()
    return run_dir


def pending_run_dir(runs_root: str | Path, stage: str, desc: str = "") -> Path:
    """A hidden run directory for a training that has not written its first checkpoint yet.

    save_checkpoint renames it to <NNNNN>-<stage>-<desc> at that checkpoint. Until then no
    listing sees it, so a run that dies early is never picked and takes no number. When this
    process exits, a pending directory that never got its checkpoint is removed."""
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    run_dir = root / f".pending-{secrets.token_hex(4)}-{_stage_desc(stage, desc)}"
    run_dir.mkdir()
    atexit.register(shutil.rmtree, run_dir, ignore_errors=True)  # a no-op once it is renamed
    return run_dir


def is_pending(run_dir: str | Path) -> bool:
    return PENDING_NAME.match(Path(run_dir).name) is not None


def publish(run_dir: Path) -> Path:
    """Give a pending run directory the next free number; return its new path."""
    m = PENDING_NAME.match(run_dir.name)
    if m is None:
        return run_dir
    root = run_dir.parent
    number = _next_number(root)
    while True:
        target = root / f"{number:05d}-{m.group(1)}"
        try:
            target.mkdir()  # reserves the number against a concurrent run; taken: try the next
        except FileExistsError:
            number += 1
            continue
        os.replace(run_dir, target)  # a directory may replace an empty one (POSIX)
        return target


def latest_run(runs_root: str | Path, stage: str, suffix: str = "") -> Path | None:
    """The newest run of a stage that has a checkpoint (and whose name ends with `suffix`)."""
    runs = [d for d in list_runs(runs_root, stage)
            if (d / "checkpoint.pt").exists() and d.name.endswith(suffix)]
    return runs[-1] if runs else None


def pick_latest(runs_root: str | Path, stage: str | tuple[str, ...], flag: str,
                prefer_suffix: str = "") -> Path | None:
    """latest_run for a command that was given no run: prints which run it picked and why, so a
    smoke or ablation run that happens to be newer is never used silently. `flag` is the
    command's option to choose another; `prefer_suffix` (e.g. "-demo") is tried first. `stage`
    may be several stages in order of preference, e.g. ("conditional", "encoder"): the first
    one that has a run with a checkpoint is used."""
    stages, skipped = ((stage,) if isinstance(stage, str) else tuple(stage)), []
    for i, stage in enumerate(stages):
        if i == len(stages) - 1 or latest_run(runs_root, stage) is not None:
            break
        skipped.append(stage)
    why = f"the newest {stage} run with a checkpoint under {runs_root}"
    if skipped:
        why += f" (no {' or '.join(skipped)} run has one)"
    run_dir = latest_run(runs_root, stage, prefer_suffix) if prefer_suffix else None
    if run_dir is not None:
        why = f"the newest {stage} run named *{prefer_suffix} with a checkpoint under {runs_root}"
    else:
        run_dir = latest_run(runs_root, stage)
        if run_dir is not None and prefer_suffix:
            why += f" (none is named *{prefer_suffix})"
    if run_dir is not None:
        print(f"using {run_dir}: {why}; pass {flag} to use another", file=sys.stderr)
    return run_dir


def find_run(runs_root: str | Path, stage: str, desc: str, defaults: dict | None = None, **config) -> Path | None:
    """The newest run of `stage` named `*-<desc>` with a checkpoint and these config.json values:
    a finished one to reuse, or an interrupted one to resume (the demo and the seed sweep).
    `defaults`: the values of fields added later, for runs whose config.json predates them."""
    defaults = defaults or {}
    for run_dir in reversed(list_runs(runs_root, stage)):
        if run_dir.name.endswith("-" + desc) and (run_dir / "checkpoint.pt").exists():
            saved = {**defaults, **read_config(run_dir)}
            if all(saved.get(k) == v for k, v in config.items()):
                return run_dir
    return None


def find_run_like(config, stage: str, resumable: tuple[str, ...] = ()) -> Path | None:
    """find_run for a config dataclass: the newest run named `*-<config.desc>` that learns what
    `config` would. Every field must match but those a resume may change (`resumable`, the
    loop's RESUMABLE_FIELDS; `data` still must), so a preset whose values changed since a run
    was made trains anew instead of reusing it. A field newer than a run counts at its default."""
    defaults = {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}
    fields = {k: v for k, v in dataclasses.asdict(config).items()
              if k not in ("runs", "desc") and (k == "data" or k not in resumable)}
    return find_run(config.runs, stage, config.desc, defaults=defaults, **fields)


def write_config(run_dir: Path, config) -> None:
    atomic_write_json(run_dir / "config.json", dataclasses.asdict(config))


def read_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run directory?")
    return json.loads(path.read_text())


def save_checkpoint(run_dir: Path, state: dict) -> Path:
    """Write checkpoint.pt atomically; return the run directory, which a pending run's first
    checkpoint renames to its numbered name (callers continue with the returned path)."""
    atomic_torch_save(Path(run_dir) / "checkpoint.pt", state)
    return publish(Path(run_dir))


def state_dicts(parts: dict) -> dict:
    """{name: part.state_dict()} of models, optimisers and schedulers (None stays None)."""
    return {name: None if part is None else part.state_dict() for name, part in parts.items()}


def load_state_dicts(parts: dict, checkpoint: dict) -> None:
    """The inverse of state_dicts: load each part (that is not None) from the checkpoint."""
    for name, part in parts.items():
        if part is not None:
            part.load_state_dict(checkpoint[name])


def trim_stats(run_dir: str | Path, lines: int) -> None:
    """Keep the first `lines` lines of stats.jsonl: a crash between a stats line and the next
    checkpoint must not leave a line that the resumed run writes again."""
    stats = read_jsonl(Path(run_dir) / "stats.jsonl")[:lines]
    atomic_write_text(Path(run_dir) / "stats.jsonl",
                      "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in stats))


def config_for(cls: type, args):
    """A training command's config: with --resume the run's own config.json and only the flags
    given explicitly on top; otherwise the preset and the flags (config.config_from_args)."""
    from .config import config_from_args, config_from_dict

    if not getattr(args, "resume", None):
        return config_from_args(cls, args)
    explicit = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if getattr(args, f.name) is not None}
    return dataclasses.replace(config_from_dict(cls, read_config(args.resume)), **explicit)


def resumed_config(cls: type, saved: dict, given, resumable: tuple[str, ...]):
    """The config a resumed run continues with: its checkpoint's, with only the `resumable`
    fields (e.g. epochs, device) taken from `given`; any other difference is reported and
    ignored, or the continuation would not be the same training."""
    from .config import config_from_dict

    cfg = config_from_dict(cls, saved)
    if given is None:
        return cfg
    changes = {}
    for f in dataclasses.fields(cls):
        new, old = getattr(given, f.name), getattr(cfg, f.name)
        if new != old:
            if f.name in resumable:
                changes[f.name] = new
            else:
                print(f"resume: keeping the run's {f.name}={old!r} (ignoring {new!r})")
    return dataclasses.replace(cfg, **changes)


def load_checkpoint(run_dir: str | Path, map_location="cpu") -> dict:
    path = Path(run_dir) / "checkpoint.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: train first, or pass the right run directory")
    return torch.load(path, map_location=map_location, weights_only=True)


# -----------------------------------------------------------------------------
# Checks a command makes before it creates any run directory

class DatasetTooSmall(ValueError):
    """A split of a dataset has fewer pairs than a command needs."""


def split_size(dataset: str | Path, split: str) -> int:
    from . import manifest  # pandas: only when a command checks a dataset

    return int((manifest.read(dataset, "pairs.csv")["split"] == split).sum())


def require_pairs(dataset: str | Path, split: str, need: int, purpose: str, max_images: int = 0,
                  batch: bool = False) -> int:
    """The number of pairs of `split` a command will use (at most `max_images` when that is
    set). Below `need` it raises DatasetTooSmall naming the file, the split, its size, what needs
    more and what to do; `batch`: `need` is a batch size, which --batch-size can lower."""
    have = split_size(dataset, split)
    used = min(have, max_images) if max_images else have
    if used >= need:
        return used
    size = f"{have} pair{'s' * (have != 1)}"
    fixes = []
    if used != have:
        size += f", {used} of them used (--max-images {max_images})"
        fixes.append("raise --max-images (0 = all)")
    if batch and used:
        fixes.append(f"lower --batch-size to {used} or less")
    if (Path(dataset) / "world.json").exists():
        fixes.append(f"generate more pairs (python -m sat2scape world --n N --out {dataset}; the splits "
                     "are cut by region, so a small world has small val and test splits)")
    else:
        fixes.append("add pairs to the split (collect more, or edit the split column of pairs.csv)")
    raise DatasetTooSmall(f"{Path(dataset) / 'pairs.csv'}: split {split!r} has {size}, but {purpose} needs "
                          f"at least {need}. To fix: " + "; or ".join(fixes) + ".")
