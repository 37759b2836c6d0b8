"""The segmenter: a small fully convolutional network that labels every pixel of a view with
its land-cover class, to judge predicted views by what they show (pix2pix's FCN-score).

    python -m sat2scape.segment --data data/world --preset demo     # train (or reuse) one

It learns from the world's true views and their class maps (`classes/<id>.png`, palette PNGs
whose pixel values are `world.CLASS_NAMES` ids), on the train split only, so it never sees a
held-out view. Every run goes to its own directory `data/runs/<NNNNN>-segmenter-<desc>/` with
config.json, stats.jsonl (per epoch: loss, training pixel accuracy; at the end the class scores
on the ground region of the val split's views) and checkpoint.pt, written once at the end: the
run gets its number then (runs.pending_run_dir), so every numbered segmenter run is finished, and
`ensure_segmenter` reuses the newest one with the same settings on the same dataset.

The network (`Segmenter`): a small U-Net over the view's rows from `top` down (the demo preset
labels rows 48..127, enough for the ground region 64..127, at ~60% of the cost of a whole
view), with a fourth input channel holding the row (where in the view a pixel is: sky above,
its reflection in water below). Its logits are upsampled to the view's size.

Before it judges anyone it must be trustworthy: evaluate.py prints its accuracy on the true
held-out views (the "true views" row, the ceiling of every class score).

With `--input warp` the same network learns the same class maps from the warp instead of the
view: the heading-up tile mapped into the view's frame, what the conditional model is given
(train_conditional.condition). Its val score says how much of the view's classes the tile
alone can tell, with labels to learn from, a bound no tile-to-view model is held to exactly but
should be read against:

    python -m sat2scape.segment --data data/world --preset demo --input warp --desc warp
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import manifest, metrics, runs, runtime
from .config import SegmenterConfig, add_config_arguments, config_from_args, make_config
from .data import epoch_order, has_class_maps, load_class_maps, load_pairs, to_float
from .files import append_jsonl, read_jsonl
from .models import Segmenter
from .train_conditional import condition
from .world import CLASS_NAMES

INPUTS = {"view": 3, "warp": 4}  # what a segmenter labels, and its channels (the warp: RGB and its mask)

# Fields that do not change what a run learns: a finished run with other values is reused
# (runs.find_run_like; the run's name and folder never count).
IGNORED_FIELDS = ("device", "threads")

UNLABELLED = 255  # class id of the rows above the segmenter's `top`


@torch.no_grad()
def segment(model: Segmenter, views: torch.Tensor, batch_size: int = 64, bf16: bool | None = None) -> torch.Tensor:
    """Class ids (uint8 N x H x W, on the CPU) of views in [-1, 1] (or uint8 images); rows above
    the model's `top` are UNLABELLED. bf16 defaults to the precision the model was trained in."""
    bf16 = getattr(model, "bf16", False) if bf16 is None else bf16
    device = next(model.parameters()).device
    model.eval()
    n, _, h, w = views.shape
    out = torch.full((n, h, w), UNLABELLED, dtype=torch.uint8)
    top = model.first_row(h)
    for i in range(0, n, batch_size):
        chunk = views[i:i + batch_size].to(device)
        chunk = to_float(chunk) if chunk.dtype == torch.uint8 else chunk.float()
        with runtime.autocast(device, bf16):
            out[i:i + batch_size, top:] = model(model.inputs(chunk)).argmax(1).to(torch.uint8).cpu()
    return out


# --- training ----------------------------------------------------------------------------------

def labelled_images(cfg: SegmenterConfig, split: str, progress: bool = False):
    """(the split's pairs, what the segmenter labels in [-1, 1]: views N x 3 x H x W, or warps
    N x 4 x H x W)."""
    if cfg.input not in INPUTS:
        raise ValueError(f"segmenter input {cfg.input!r}: choose from {sorted(INPUTS)}")
    warp = cfg.input == "warp"
    pairs = load_pairs(cfg.data, split, max_images=cfg.max_images if split == "train" else 0,
                       progress=progress, with_tiles=warp)
    if not warp:
        return pairs, to_float(pairs.photos)
    # the photo's heading where known, else north-up (turn_tiles leaves NaN unturned)
    return pairs, condition(pairs.turnable_tiles, pairs.headings, pairs.photos.shape[-1], pairs.meters_per_pixel)[1]


def train(cfg: SegmenterConfig, progress: bool = True) -> Path:
    """Train a segmenter on the train split's views and class maps; return its run directory."""
    runtime.configure_cpu(cfg.threads)
    runtime.seed_everything(cfg.seed)
    device = runtime.pick_device(cfg.device)
    bf16 = runtime.use_bf16(cfg.bf16, device)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    pairs, images = labelled_images(cfg, "train", progress)
    if not has_class_maps(cfg.data, pairs.table):
        raise FileNotFoundError(f"{cfg.data} has no class maps (classes/<id>.png) for its views: "
                                "the segmenter learns from the built-in world's")
    model = Segmenter(width=cfg.width, top=cfg.top, channels=INPUTS[cfg.input]).to(device, memory_format=memory_format)
    size = pairs.photos.shape[-1]
    inputs = model.inputs(images)
    targets = load_class_maps(cfg.data, pairs.table, size, progress)[:, model.first_row(size):].long()
    run_dir = runs.pending_run_dir(cfg.runs, "segmenter", cfg.desc)  # numbered at its checkpoint, the end
    runs.write_config(run_dir, cfg)

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = math.ceil(len(inputs) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.15)
    flips = torch.Generator().manual_seed(cfg.seed)
    t0 = time.time()
    for epoch in range(cfg.epochs):
        model.train()
        order = epoch_order(len(inputs), epoch, cfg.seed)
        total, correct, pixels = 0.0, 0, 0
        for i in tqdm(range(0, len(order), cfg.batch_size), desc=f"segmenter epoch {epoch + 1}/{cfg.epochs}",
                      disable=not progress, leave=False):
            index = order[i:i + cfg.batch_size]
            x, y = inputs[index].to(device), targets[index].to(device)
            if torch.rand(1, generator=flips).item() < 0.5:  # a mirrored view has the mirrored classes
                x, y = x.flip(-1), y.flip(-1)
            with runtime.autocast(device, bf16):
                logits = model(x.contiguous(memory_format=memory_format))
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(index)
            correct += (logits.argmax(1) == y).sum().item()
            pixels += y.numel()
        append_jsonl(run_dir / "stats.jsonl", {"epoch": epoch + 1, "loss": total / len(inputs),
                                              "train_acc": correct / pixels, "seconds": time.time() - t0})
    model.eval()
    result = {"epoch": cfg.epochs, "seconds": time.time() - t0, **validate(model, cfg, bf16, progress)}
    append_jsonl(run_dir / "stats.jsonl", result)
    return runs.save_checkpoint(run_dir, {"model": model.state_dict(), "width": cfg.width, "top": cfg.top,
                                          "input": cfg.input, "class_names": list(CLASS_NAMES), "bf16": bf16,
                                          "val": result})


def validate(model: Segmenter, cfg: SegmenterConfig, bf16: bool = False, progress: bool = False) -> dict:
    """Class scores on the ground region of the val split's true views, or their warps (empty
    without a val split)."""
    try:
        val, images = labelled_images(cfg, "val", progress)
    except manifest.ManifestError:
        return {}
    if not has_class_maps(cfg.data, val.table):
        return {}
    true = load_class_maps(cfg.data, val.table, val.photos.shape[-1], progress)
    pred = segment(model, images, bf16=bf16)
    return {f"val_ground_{k}": v for k, v in metrics.class_scores(pred, true, len(CLASS_NAMES)).items()}


def ensure(cfg: SegmenterConfig, fresh: bool = False, progress: bool = True) -> Path:
    """The newest finished segmenter run with `cfg`'s settings on its dataset, reused, or a new
    one trained now."""
    # runs from before `input` existed count at its default, views
    run_dir = None if fresh else runs.find_run_like(cfg, "segmenter", IGNORED_FIELDS)
    if run_dir is not None:
        return run_dir
    if progress:
        print(f"segmenter ({cfg.desc}): training on the train views of {cfg.data}")
    return train(cfg, progress=progress)


def ensure_segmenter(data: str | Path, preset: str = "demo", runs_root: str | Path = "data/runs", threads: int = 0,
                     fresh: bool = False, progress: bool = True, **overrides) -> Path:
    """`ensure` for the `preset` (and `overrides`) on `data`; the run is named after the preset."""
    cfg = make_config(SegmenterConfig, preset, data=str(data), runs=str(runs_root), threads=threads,
                      **{"desc": preset, **overrides})
    return ensure(cfg, fresh, progress)


def load_segmenter(run_dir: str | Path, device: str | torch.device = "cpu") -> Segmenter:
    """The trained segmenter of a finished run, in eval mode; `segment` applies it."""
    state = runs.load_checkpoint(run_dir, map_location=device)
    model = Segmenter(len(state["class_names"]), state["width"], state["top"],
                      INPUTS[state.get("input", "view")]).to(device)
    model.load_state_dict(state["model"])
    model.bf16 = bool(state.get("bf16", False))  # the precision it was trained (and validated) in
    return model.eval().requires_grad_(False)


# --- command line ------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, SegmenterConfig)
    parser.add_argument("--fresh", action="store_true", help="train a new run even if a finished one exists")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(SegmenterConfig, args)
    if not cfg.desc:
        cfg.desc = args.preset
    run_dir = ensure(cfg, args.fresh, not args.no_progress)
    final = read_jsonl(run_dir / "stats.jsonl")[-1]
    print(f"{run_dir}: " + ", ".join(f"{k} {v:.4f}" for k, v in final.items() if k.startswith("val")))
    return 0


if __name__ == "__main__":
    import sys
    parser = argparse.ArgumentParser(prog="python -m sat2scape.segment", description="train (or reuse) a segmenter")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
