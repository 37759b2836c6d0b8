"""Train the write-up's DCGAN on a dataset's photos.

    python -m sat2scape train-gan --preset demo                  # 128 px landscapes on a CPU
    python -m sat2scape train-gan --resume data/runs/00003-gan-demo
    torchrun --nproc_per_node=2 -m sat2scape train-gan --preset paper

The loop is the write-up's (and pytorch/examples dcgan/main.py's): each step updates D on a real
and a fake batch with BCE-with-logits, then G with the non-saturating loss; Adam(2e-4, 0.5, 0.999)
for both; StepLR on G's learning rate once per epoch; random horizontal flips of the photos.
Two options go beyond it, each measured on the built-in world (demo widths, 2447 photos):
- an EMA copy of G, used for samples, the metric and the encoder. After the demo budget its SWD
  is 94.8 against G's 113.6 (and 103.1 with G's BatchNorm statistics instead of recomputed ones,
  see standing_stats). On in every preset.
- DiffAugment (Zhao et al. 2020: colour, translation, cutout, on everything D sees). Without it,
  2 of 5 short runs (other seeds, or fp32 instead of bf16) collapsed within two epochs to D
  winning (D(x) 0.99, grey samples); with it 0 of 4, and the SWD after 8 epochs fell to 69.9
  from 106.6. It is on in the demo preset; the paper preset keeps the write-up's loop.

Everything needed to continue exactly is in checkpoint.pt: weights, optimiser and scheduler
state, the position inside the epoch and every RNG. The sample order of an epoch is a pure
function of (seed, epoch) (data.epoch_order), so a run killed mid-epoch resumes with exactly the
batches it would have seen, and reaches bit-identical weights on a CPU (on a GPU, as far as
cuDNN's algorithm choice is deterministic).

Under torchrun each rank takes every world_size-th index of the epoch's order and a batch of
batch_size // world_size, so the global batch (and the learning rate that suits it) is unchanged.

Run directory (data/runs/<NNNNN>-gan-<desc>/): config.json, stats.jsonl (one line per epoch),
samples/ (fixed-noise grids), losses.png, checkpoint.pt. It gets its number at the first
checkpoint (runs.pending_run_dir), so a run that fails before then leaves nothing to pick.

Loading a trained G or D and sampling from it live in checkpoints.py (re-exported here), the
grids and curves in images.py: this loop imports nothing from figures/, which sit on top.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm

from . import data, manifest, metrics, runs, runtime
from .checkpoints import generate, standing_stats
from .config import GANConfig, add_config_arguments
from .files import append_jsonl, read_jsonl
from .images import plot_losses, save_grid
from .models import Discriminator, Generator

SUMS = ("loss_D", "loss_G", "D_x", "D_G_z")  # per-step numbers averaged into stats.jsonl

# Fields that may change when a run is resumed; every other one is the run's own, or the
# continuation would not be the same training.
RESUMABLE_FIELDS = ("data", "runs", "epochs", "device", "threads", "sample_every", "swd_every",
                    "checkpoint_every_steps")


# -----------------------------------------------------------------------------
# DiffAugment (Zhao et al. 2020, mit-han-lab/data-efficient-gans): differentiable augmentations
# applied to real AND fake images before D, so D cannot overfit a small set while G still gets
# gradients through them. Each draws its randomness from the global torch RNG (saved for resume).

def _color(x):
    # random brightness, saturation and contrast per image; lerp(mean, x, w) = mean + w (x - mean)
    def rand():
        return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)

    x = x + (rand() - 0.5)
    x = torch.lerp(x.mean(dim=1, keepdim=True), x, rand() * 2)
    return torch.lerp(x.mean(dim=(1, 2, 3), keepdim=True), x, rand() + 0.5)


def _translation(x, ratio=0.125):
    # shift each image by up to 1/8 of its size, filling with zeros (grey in [-1, 1]): pad, then
    # crop at a per-image offset (plain slices: on CPU much cheaper than the original's gather)
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (b,)).tolist()
    tx = torch.randint(-sx, sx + 1, (b,)).tolist()
    padded = F.pad(x, [sx, sx, sy, sy]).unbind(0)  # unbind, not indexing: its backward is one stack
    return torch.stack([p[:, sy + dy:sy + dy + h, sx + dx:sx + dx + w] for p, dy, dx in zip(padded, ty, tx)])


def _cutout(x, ratio=0.5):
    # zero one square of half the size per image
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    gy, gx = torch.meshgrid(torch.arange(ch, device=x.device), torch.arange(cw, device=x.device), indexing="ij")
    gy = torch.clamp(gy + oy - ch // 2, 0, h - 1)
    gx = torch.clamp(gx + ox - cw // 2, 0, w - 1)
    mask = torch.ones(b, h, w, device=x.device, dtype=x.dtype)
    mask[torch.arange(b, device=x.device)[:, None, None], gy, gx] = 0
    return x * mask.unsqueeze(1)


AUGMENTATIONS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """Apply the comma-separated augmentations of `policy` ("" = none), in the paper's order."""
    if not policy:
        return x
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    for name in policy.split(","):
        x = AUGMENTATIONS[name.strip()](x)
    return x.contiguous(memory_format=fmt)


# -----------------------------------------------------------------------------

def train(cfg: GANConfig | None = None, resume: str | Path | None = None, progress: bool = True,
          max_steps: int = 0) -> Path:
    """Train (or, with `resume`, continue) a GAN run; return its run directory.

    `max_steps` stops after that many global steps with a checkpoint, as an interruption would
    (used by the tests of exact resume); 0 = train to cfg.epochs.
    """
    # ---- where and how this process runs
    rank, world_size = runtime.init_distributed()
    master = rank == 0  # only rank 0 writes files
    ckpt = None
    if resume is not None:
        ckpt = runs.load_checkpoint(resume)
        cfg = runs.resumed_config(GANConfig, ckpt["config"], cfg, RESUMABLE_FIELDS)
    assert cfg is not None, "train() needs a config or a run to resume"
    runtime.configure_cpu(cfg.threads)
    device = runtime.pick_device(cfg.device)
    bf16 = runtime.use_bf16(cfg.bf16, device)
    ctx = runtime.autocast(device, bf16)
    mf = torch.channels_last if cfg.channels_last else torch.contiguous_format

    # ---- data: photos decoded once into the uint8 cache, the whole set moved to the device once.
    # Every step takes a full batch (the last partial one is dropped, as every rank must step
    # together), so a split smaller than one batch would never train: stop before any run folder.
    batch = cfg.batch_size // world_size  # per rank; the global batch stays batch_size
    runs.require_pairs(cfg.data, "train", batch * world_size, f"train-gan with a batch of {batch * world_size}",
                       cfg.max_images, batch=True)
    photos = data.load_pairs(cfg.data, "train", cfg.image_size, cfg.max_images,
                             progress=progress and master, with_tiles=False).photos.to(device)
    n = len(photos)
    steps_per_epoch = n // (batch * world_size)

    # ---- models and optimisers (same init on every rank: seeded before construction)
    runtime.seed_everything(cfg.seed)
    G_raw = Generator(cfg.nz, cfg.ngf).to(device, memory_format=mf)
    D_raw = Discriminator(cfg.ndf).to(device, memory_format=mf)
    G_ema = copy.deepcopy(G_raw).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
    opt_G = torch.optim.Adam(G_raw.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_D = torch.optim.Adam(D_raw.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    sched_G = torch.optim.lr_scheduler.StepLR(opt_G, step_size=cfg.lr_step_size, gamma=cfg.lr_gamma)
    # a separate stream per rank for z, flips and augmentations
    runtime.seed_everything(cfg.seed * 1000 + rank + 1)

    # everything checkpoint.pt holds by name, beside the counters below
    parts = {"G": G_raw, "D": D_raw, "G_ema": G_ema, "opt_G": opt_G, "opt_D": opt_D, "sched_G": sched_G}
    epoch, step, step_in_epoch = 0, 0, 0
    sums = torch.zeros(len(SUMS), device=device)  # the epoch so far, over this rank's batches
    epoch_time = 0.0  # training seconds of the epoch so far (survives a mid-epoch resume)
    run_dir = None
    if ckpt is not None:
        run_dir = Path(resume)
        runs.load_state_dicts(parts, ckpt)
        epoch, step, step_in_epoch = ckpt["epoch"], ckpt["step"], ckpt["step_in_epoch"]
        sums, epoch_time = ckpt["epoch_sums"].to(device), ckpt["epoch_time"]
        runtime.restore_rng(ckpt["rng"], rank, world_size, reseed=cfg.seed * 1000 + rank + 1 + step)
        if master:
            runs.trim_stats(run_dir, ckpt["stats_lines"])
            runs.write_config(run_dir, cfg)  # e.g. a new number of epochs
    elif master:
        run_dir = runs.pending_run_dir(cfg.runs, "gan", cfg.desc)  # numbered at the first checkpoint
        runs.write_config(run_dir, cfg)
    run_dir = Path(runtime.broadcast(str(run_dir), world_size))  # every rank returns the same one
    if world_size > 1:
        G = DDP(G_raw, device_ids=[device.index] if device.type == "cuda" else None)
        D = DDP(D_raw, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        G, D = G_raw, D_raw
    stats_lines = len(read_jsonl(run_dir / "stats.jsonl")) if master else 0

    # fixed noise for the sample grids and the metric, and a fixed real subset to compare with
    gen = torch.Generator().manual_seed(cfg.seed)
    fixed_z = torch.randn(64, cfg.nz, generator=gen)
    swd_n = min(cfg.swd_images, n)
    swd_z = torch.randn(swd_n, cfg.nz, generator=gen)
    swd_real = data.to_float(photos[torch.randperm(n, generator=gen)[:swd_n].to(device)].cpu())
    sampler = G_ema if G_ema is not None else G_raw  # what samples, the metric and the encoder use

    def checkpoint():
        """All ranks call this (they gather RNG states); rank 0 writes checkpoint.pt atomically
        (the first one also gives a new run its numbered name)."""
        nonlocal run_dir
        rng = runtime.gathered_rng_states(world_size)
        if not master:
            return
        run_dir = runs.save_checkpoint(run_dir, {
            **runs.state_dicts(parts), "epoch": epoch, "step": step, "step_in_epoch": step_in_epoch,
            "epoch_sums": sums.cpu(), "epoch_time": epoch_time,
            "rng": rng, "config": dataclasses.asdict(cfg), "stats_lines": stats_lines,
        })

    def refresh_ema_stats():
        # the saved and sampled EMA copy gets BatchNorm statistics that match its weights; the
        # next step's EMA update overwrites them again, so this never changes the training
        if master and G_ema is not None:
            standing_stats(G_ema, cfg.nz, seed=cfg.seed, ctx=ctx)

    if master and ckpt is None and cfg.sample_every:
        save_grid(data.to_float(photos[:64].cpu()), run_dir / "samples" / "reals.png")
    if master:
        where = f"new run in {run_dir} (numbered at its first checkpoint)" if runs.is_pending(run_dir) else run_dir
        print(f"{where}: {n} photos, {steps_per_epoch} steps/epoch x {cfg.epochs} epochs, "
              f"batch {batch} x {world_size} rank(s), {device}, bf16 {'on' if bf16 else 'off'}, "
              f"channels_last {cfg.channels_last}, DiffAugment {cfg.diffaugment or 'off'}, "
              f"EMA {cfg.ema_decay or 'off'}")

    criterion = nn.BCEWithLogitsLoss()
    ones = torch.ones(batch, device=device)
    zeros = torch.zeros(batch, device=device)
    while epoch < cfg.epochs:
        order = data.epoch_order(n, epoch, cfg.seed, rank, world_size).to(device)
        G.train()
        D.train()
        bar = tqdm(range(step_in_epoch, steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (progress and master), leave=False, initial=step_in_epoch, total=steps_per_epoch)
        t0 = time.perf_counter()
        for i in bar:
            real = data.to_float(photos[order[i * batch:(i + 1) * batch]])
            if cfg.hflip:
                flip = torch.rand(batch, 1, 1, 1, device=device) < 0.5
                real = torch.where(flip, real.flip(3), real)
            real = real.contiguous(memory_format=mf)

            # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
            opt_D.zero_grad(set_to_none=True)
            z = torch.randn(batch, cfg.nz, device=device)
            with ctx:
                fake = G(z)
                logit_real = D(diff_augment(real, cfg.diffaugment))
            loss_real = criterion(logit_real.float(), ones)
            loss_real.backward()  # one backward per forward: what DDP needs, as in the dcgan example
            with ctx:
                logit_fake = D(diff_augment(fake.detach(), cfg.diffaugment))
            loss_fake = criterion(logit_fake.float(), zeros)
            loss_fake.backward()
            opt_D.step()

            # (2) Update G: maximise log D(G(z)), the non-saturating loss. D is frozen and called
            # outside DDP: its weight gradients would be thrown away, and skipping them is faster.
            opt_G.zero_grad(set_to_none=True)
            D_raw.requires_grad_(False)
            with ctx:
                logit_gen = D_raw(diff_augment(fake, cfg.diffaugment))
            loss_G = criterion(logit_gen.float(), ones)
            loss_G.backward()
            opt_G.step()
            D_raw.requires_grad_(True)

            if G_ema is not None:
                runtime.update_ema(G_ema, G_raw, step, cfg.ema_decay)

            step += 1
            step_in_epoch = i + 1
            # per-step numbers stay on the device (no GPU sync); read only for the bar, every few steps
            losses = torch.stack([(loss_real + loss_fake).detach(), loss_G.detach(),
                                  torch.sigmoid(logit_real.detach().float()).mean(),
                                  torch.sigmoid(logit_fake.detach().float()).mean()])
            sums += losses
            if progress and master and (i % 10 == 0 or i + 1 == steps_per_epoch):
                bar.set_postfix(loss_D=f"{float(losses[0]):.3f}", loss_G=f"{float(losses[1]):.3f}",
                                D_x=f"{float(losses[2]):.2f}", D_G_z=f"{float(losses[3]):.2f}")
            interrupted = bool(max_steps) and step >= max_steps
            if interrupted or (cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0
                               and step_in_epoch < steps_per_epoch):
                epoch_time += time.perf_counter() - t0
                refresh_ema_stats()
                checkpoint()
                t0 = time.perf_counter()
            if interrupted:
                bar.close()
                return run_dir
        bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize()
        epoch_time += time.perf_counter() - t0

        # ---- end of epoch: the learning-rate schedule, stats, metric, samples, checkpoint
        lr_G = opt_G.param_groups[0]["lr"]  # the rate this epoch trained with
        sched_G.step()
        epoch += 1
        refresh_ema_stats()
        if master:
            record = {"epoch": epoch, "step": step, "epoch_time": round(epoch_time, 3),
                      "img_s": round(steps_per_epoch * batch * world_size / max(epoch_time, 1e-9), 2),
                      "lr_G": lr_G, "lr_D": opt_D.param_groups[0]["lr"],
                      **dict(zip(SUMS, (sums / steps_per_epoch).tolist()))}
            if cfg.swd_every and (epoch % cfg.swd_every == 0 or epoch == cfg.epochs):
                t_swd = time.perf_counter()
                record.update(metrics.swd(generate(sampler, swd_z, ctx=ctx), swd_real, seed=cfg.seed))
                record["swd_time"] = round(time.perf_counter() - t_swd, 3)
            append_jsonl(run_dir / "stats.jsonl", record)
            stats_lines += 1
            if epoch == cfg.epochs or (cfg.sample_every and epoch % cfg.sample_every == 0):
                if cfg.sample_every:
                    save_grid(generate(sampler, fixed_z, ctx=ctx), run_dir / "samples" / f"fakes-{epoch:05d}.png")
                plot_losses(read_jsonl(run_dir / "stats.jsonl"), run_dir / "losses.png")
            msg = " ".join(f"{k} {record[k]:.4g}" for k in ("loss_D", "loss_G", "D_x", "D_G_z", "img_s", "swd")
                           if k in record)
            (tqdm.write if progress else print)(f"epoch {epoch}/{cfg.epochs} {msg} ({epoch_time:.1f} s)")
        step_in_epoch, epoch_time = 0, 0.0
        sums.zero_()
        checkpoint()
    return run_dir


# -----------------------------------------------------------------------------
# command line: python -m sat2scape train-gan

def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, GANConfig)
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue this run exactly where its checkpoint stopped "
                             "(its config.json is used; flags may change e.g. --epochs)")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps, with a checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars, one line per epoch")


def run(args: argparse.Namespace) -> int:
    cfg = runs.config_for(GANConfig, args)
    try:
        run_dir = train(cfg, resume=args.resume, progress=not args.no_progress, max_steps=args.max_steps)
    except (runs.DatasetTooSmall, manifest.ManifestError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if runtime.finish_distributed():
        print(run_dir)
    return 0
