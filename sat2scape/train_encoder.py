"""Train the encoder: satellite tile -> 4-dim latent z, such that G(z) looks like the photo.

    python -m sat2scape train-encoder --data data/world [--gan-run RUN] [--loss custom] [--preset demo]
    python -m sat2scape train-encoder --resume data/runs/00003-encoder-custom

The generator is the GAN run's, frozen: its EMA copy where there is one, `requires_grad_(False)`
and in eval mode, so neither its weights nor its BatchNorm running statistics move. Only the
encoder learns; the loss (losses.LOSSES, picked by name) compares G(E(tile)) with the photo
taken at the tile, plus `latent_reg` times an N(0, I) prior on E(tile).

Reads top to bottom: set-up, data, models, resume, then the loop. Each epoch ends with the
validation metrics (the val split is a region the loop never trains on), a sample grid and a
checkpoint. The checkpoint holds the encoder, optimiser, scheduler, the position inside the
epoch and every RNG state; the epoch's sample order is a pure function of (seed, epoch)
(data.epoch_order), so a run resumed mid-epoch sees exactly the batches it would have seen.
A new run gets its numbered folder at its first checkpoint (runs.pending_run_dir), and a training
split smaller than one batch stops the command before any folder is made. An empty val split
only turns the validation off.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import losses, manifest, metrics, runs, runtime
from .checkpoints import load_discriminator, load_generator
from .config import EncoderConfig, add_config_arguments, config_from_dict
from .data import epoch_order, load_pairs, to_float, to_uint8
from .files import append_jsonl, read_jsonl
from .images import save_prediction_grid
from .models import Encoder, Generator

# Fields a resumed run may change; every other one is the run's own, or the continuation would
# not be the same training.
RESUMABLE_FIELDS = ("data", "runs", "epochs", "device", "threads", "sample_every", "checkpoint_every_steps")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, EncoderConfig)
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue this encoder run exactly where its "
                        "checkpoint stopped (its config.json is used; flags may change e.g. --epochs)")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps, with a checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars, one line per epoch")


def run(args: argparse.Namespace) -> int:
    cfg = runs.config_for(EncoderConfig, args)
    try:
        run_dir = train(cfg, resume=args.resume, progress=not args.no_progress, max_steps=args.max_steps)
    except (runs.DatasetTooSmall, manifest.ManifestError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(run_dir)
    return 0


def resolve_gan_run(cfg: EncoderConfig, encoder_run: Path | None = None) -> Path:
    """The GAN run to use: cfg.gan_run, else the newest GAN run with a checkpoint (saying so). A
    recorded path that no longer exists (the runs folder was moved) is looked up beside the
    encoder run."""
    if cfg.gan_run:
        path = Path(cfg.gan_run)
        if not path.exists() and encoder_run is not None and (encoder_run.parent / path.name).exists():
            path = encoder_run.parent / path.name
        if not (path / "checkpoint.pt").exists():
            raise FileNotFoundError(f"GAN run {cfg.gan_run} has no checkpoint.pt")
        return path
    path = runs.pick_latest(cfg.runs, "gan", flag="--gan-run")
    if path is None:
        raise FileNotFoundError(f"no GAN run with a checkpoint under {cfg.runs}: train one first "
                                f"(python -m sat2scape train-gan --data {cfg.data}) or pass --gan-run")
    return path


def frozen(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode (BatchNorm uses its running statistics and never updates them) and no grads."""
    return model.eval().requires_grad_(False)


def load_encoder(run_dir: str | Path, device="cpu") -> tuple[Encoder, Generator]:
    """The trained encoder of a run and the frozen generator it was trained against, both in eval
    mode on `device`: G(E(tile)) is the predicted view."""
    run_dir = Path(run_dir)
    cfg = config_from_dict(EncoderConfig, runs.read_config(run_dir))
    G = load_generator(resolve_gan_run(cfg, run_dir), device=device, ema=True)
    E = Encoder(nz=G.nz, nef=cfg.nef).to(device)
    E.load_state_dict(runs.load_checkpoint(run_dir, map_location=device)["E"])
    return frozen(E), frozen(G)


@torch.no_grad()
def predict_views(E: Encoder, G: Generator, tiles: torch.Tensor, batch_size: int = 64,
                  bf16: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 tiles N x 3 x H x W (any device) -> (views as [-1, 1] float on the CPU, latents)."""
    device = next(E.parameters()).device
    views, latents = [], []
    for i in range(0, len(tiles), batch_size):
        with runtime.autocast(device, bf16):
            z = E(to_float(tiles[i:i + batch_size].to(device)))
            views.append(G(z).float().cpu())
        latents.append(z.float().cpu())
    return torch.cat(views), torch.cat(latents)


def validate(E, G, loss_fn, val, cfg: EncoderConfig, bf16: bool) -> tuple[dict, torch.Tensor]:
    """Loss, paired metrics and retrieval of G(E(tile)) on the val split; also the views."""
    E.eval()
    device = next(E.parameters()).device
    views, z = predict_views(E, G, val.tiles, cfg.batch_size, bf16)
    photos = to_float(val.photos)
    with torch.no_grad():
        loss = torch.cat([loss_fn(views[i:i + cfg.batch_size].to(device), photos[i:i + cfg.batch_size].to(device))
                          for i in range(0, len(views), cfg.batch_size)]).cpu()
    E.train()
    out = {"val_loss": (loss + cfg.latent_reg * losses.latent_prior(z)).mean().item()}
    out.update({f"val_{k}": v for k, v in metrics.paired_metrics(views, photos).items()})
    summary = metrics.retrieval_summary(metrics.retrieval_ranks(views, photos))
    out.update({f"val_{k}": summary[k] for k in ("top1", "top5", "median_rank", "chance_top5")})
    out["val_z_norm"] = z.norm(dim=1).mean().item()
    return out, views


def train(cfg: EncoderConfig | None = None, resume: str | Path | None = None, progress: bool = True,
          max_steps: int = 0) -> Path:
    """Train (or, with `resume`, continue) an encoder run; return its run directory.

    A resumed run keeps its own config.json, except the RESUMABLE_FIELDS taken from `cfg` when
    one is given (e.g. more epochs). A finished run returns at once, so callers may simply
    resume whatever run they have. `max_steps` stops after that many optimiser steps in this
    call, with a checkpoint, as an interruption would (tests; time-boxed runs); 0 = no limit.
    """
    # -------------------------------------------------------------------- set-up and run directory
    checkpoint = None
    if resume:
        run_dir = Path(resume)
        saved = config_from_dict(EncoderConfig, runs.read_config(run_dir))
        cfg = saved if cfg is None else replace(saved, **{f: getattr(cfg, f) for f in RESUMABLE_FIELDS})
        runs.write_config(run_dir, cfg)
        if (run_dir / "checkpoint.pt").exists():
            checkpoint = runs.load_checkpoint(run_dir)
            if checkpoint["epoch"] >= cfg.epochs:
                if progress:
                    print(f"{run_dir}: already trained for {cfg.epochs} epochs")
                return run_dir
    assert cfg is not None, "train() needs a config or a run to resume"
    if cfg.loss not in losses.LOSSES:
        raise ValueError(f"unknown loss {cfg.loss!r}; choose from {sorted(losses.LOSSES)}")
    runtime.configure_cpu(cfg.threads)
    device = runtime.pick_device(cfg.device)
    bf16 = runtime.use_bf16(cfg.bf16, device)
    if not resume:
        cfg = replace(cfg, gan_run=str(resolve_gan_run(cfg)))  # recorded, so evaluation finds the same G
    runtime.seed_everything(cfg.seed)

    # -------------------------------------------------------------------- data (uint8, on device)
    # Every step takes a full batch (the last partial one is dropped, as DCGAN does), so a split
    # smaller than one batch would never train: stop here, before any run folder is made.
    batch_size = cfg.batch_size
    runs.require_pairs(cfg.data, "train", batch_size, f"train-encoder with a batch of {batch_size}",
                       cfg.max_images, batch=True)
    train_set = load_pairs(cfg.data, "train", cfg.image_size, cfg.max_images, progress=progress)
    val = None
    if runs.split_size(cfg.data, "val"):
        val = load_pairs(cfg.data, "val", cfg.image_size, cfg.val_images, progress=progress)
    else:
        print(f"note: {cfg.data}/pairs.csv has no val pairs; training without validation metrics")
    tiles, photos = train_set.tiles.to(device), train_set.photos.to(device)
    n = len(tiles)
    steps_per_epoch = n // batch_size
    if not resume:
        run_dir = runs.pending_run_dir(cfg.runs, "encoder", cfg.desc or cfg.loss)  # numbered at the first checkpoint
        runs.write_config(run_dir, cfg)

    # -------------------------------------------------------------------- models
    gan_run = resolve_gan_run(cfg, run_dir)
    G = frozen(load_generator(gan_run, device=device, ema=True))
    D = frozen(load_discriminator(gan_run, device=device)) if cfg.loss in losses.USES_DISCRIMINATOR else None
    E = Encoder(nz=G.nz, nef=cfg.nef).to(device)
    if cfg.channels_last:
        for model in (G, D, E):
            if model is not None:
                model.to(memory_format=torch.channels_last)
    loss_fn = losses.make_loss(cfg.loss, discriminator=D, layout_weight=cfg.layout_weight,
                               fm_weight=cfg.fm_weight)
    opt = torch.optim.Adam(E.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step_size, gamma=cfg.lr_gamma)

    # -------------------------------------------------------------------- resume
    epoch, step_in_epoch, global_step, loss_sum = 0, 0, 0, 0.0
    if checkpoint is not None:
        E.load_state_dict(checkpoint["E"])
        opt.load_state_dict(checkpoint["opt"])
        sched.load_state_dict(checkpoint["sched"])
        epoch, step_in_epoch = checkpoint["epoch"], checkpoint["step_in_epoch"]
        global_step, loss_sum = checkpoint["global_step"], checkpoint["loss_sum"]
        runtime.set_rng_state(checkpoint["rng"])
        runs.trim_stats(run_dir, checkpoint["stats_lines"])
        if progress:
            print(f"resuming {run_dir} at epoch {epoch}, step {step_in_epoch}/{steps_per_epoch}")

    def save():
        nonlocal run_dir  # the first checkpoint gives a new run its numbered name
        run_dir = runs.save_checkpoint(run_dir, {
            "E": E.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
            "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step,
            "loss_sum": loss_sum, "rng": runtime.rng_state(), "config": asdict(cfg),
            "stats_lines": len(read_jsonl(run_dir / "stats.jsonl")),
        })

    # -------------------------------------------------------------------- the loop
    steps_this_call = 0
    E.train()
    while epoch < cfg.epochs:
        order = epoch_order(n, epoch, cfg.seed)
        t0, images = time.time(), 0
        bar = tqdm(desc=f"encoder epoch {epoch + 1}/{cfg.epochs}", total=steps_per_epoch,
                   initial=step_in_epoch, disable=not progress, leave=False)
        while step_in_epoch < steps_per_epoch:
            idx = order[step_in_epoch * batch_size:(step_in_epoch + 1) * batch_size].to(device)
            tile, photo = to_float(tiles[idx]), to_float(photos[idx])
            if cfg.hflip:  # mirror the tile and its view together: the world mirrored is still a world
                flip = (torch.rand(len(idx)) < 0.5).to(device).view(-1, 1, 1, 1)
                tile = torch.where(flip, tile.flip(3), tile)
                photo = torch.where(flip, photo.flip(3), photo)
            if cfg.rot90:  # turn the tile alone: the view's heading is unknown to the encoder anyway
                k = torch.randint(0, 4, (len(idx),)).to(device)
                tile = torch.stack([tile.rot90(r, (2, 3)) for r in range(4)])[k, torch.arange(len(idx), device=device)]
            if cfg.channels_last:
                tile = tile.contiguous(memory_format=torch.channels_last)
            with runtime.autocast(device, bf16):
                z = E(tile)
                loss = loss_fn(G(z), photo).mean() + cfg.latent_reg * losses.latent_prior(z).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

            loss_sum += loss.item()
            images += len(idx)
            step_in_epoch += 1
            global_step += 1
            steps_this_call += 1
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.4f}")
            stop = bool(max_steps) and steps_this_call >= max_steps
            if global_step % cfg.checkpoint_every_steps == 0 or stop:
                save()  # mid-epoch: resumes at the next batch of this epoch
            if stop:
                bar.close()
                return run_dir
        bar.close()

        # end of epoch: validation, stats, samples, then the checkpoint at the next epoch's start
        sched.step()
        seconds = time.time() - t0
        record = {"epoch": epoch + 1, "step": global_step, "loss": loss_sum / steps_per_epoch,
                  "lr": opt.param_groups[0]["lr"], "img_per_s": images / max(seconds, 1e-9), "seconds": seconds}
        if val is not None:
            val_record, views = validate(E, G, loss_fn, val, cfg, bf16)
            record.update(val_record)
            if (epoch + 1) % cfg.sample_every == 0 or epoch + 1 == cfg.epochs:
                k = min(8, len(views))
                save_prediction_grid(run_dir / "samples" / f"epoch-{epoch + 1:04d}.png",
                                     val.tiles[:k], to_uint8(views[:k]), val.photos[:k])
        append_jsonl(run_dir / "stats.jsonl", record)
        shown = {k: record[k] for k in ("loss", "val_loss", "val_ssim", "val_top5") if k in record}
        (tqdm.write if progress else print)(f"encoder epoch {epoch + 1}/{cfg.epochs}: " + ", ".join(
            f"{k} {v:.4f}" for k, v in shown.items()) + f" ({record['img_per_s']:.0f} img/s, {seconds:.1f} s)")
        epoch, step_in_epoch, loss_sum = epoch + 1, 0, 0.0
        save()
    return run_dir
