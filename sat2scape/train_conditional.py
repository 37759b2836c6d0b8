"""Train the conditional, heading-aware generator: tile (+ heading) + free z -> the view.

    python -m sat2scape train-conditional --preset demo                 # heading-aware
    python -m sat2scape train-conditional --preset demo --heading random  # heading-free
    python -m sat2scape train-conditional --resume data/runs/00004-conditional-demo
    torchrun --nproc_per_node=2 -m sat2scape train-conditional --preset paper

The write-up squeezes a view through the 4 numbers of an unconditional G, which mostly carry the
sky and the light. This model carries what the tile says straight into the view instead:

1. The tile is turned so that the camera looks up (geometry.turn_tiles on the wide tile, so no
   corner is empty). Where the heading is unknown, or with `--heading random`, it is turned by
   a random angle each step, and the model learns the average direction.
2. The turned tile is warped into the view's frame by inverse perspective mapping
   (geometry.warp_to_view): the flat ground in front lands where the photo shows it.
3. ConditionalGenerator(tile, warp, z) decodes the view with the write-up's decoder, z projected
   onto the sky's rows only (z_rows); the ConditionalDiscriminator sees the view with the warp.

Each step takes batch_size / 2 places, each twice: once at the latent's centre z = 0 and once
with z ~ N(0, I). G minimises four terms (the demo preset's; the paper preset's real photos have no
class maps, so there the semantic term is off), and optionally two more:

    adversarial      adv_weight x the non-saturating BCE of D's logit, as in the GAN loop
    reconstruction   rec_weight x L1 between the rec_size x rec_size low-pass view and the photo's.
                     The z = 0 view is fitted on every row: it is the model's best single guess
                     of the whole view, which `predict` shows and the table scores. The random
                     draw is fitted only on the ground and horizon bands (metrics.REGIONS), what
                     the tile determines; its sky is left to z and the discriminator.
    mode seeking     ms_weight / (mean|G(c,z1) - G(c,z2)| / mean|z1 - z2| + eps) (Mao et al. 2019)
                     on the sky band: without it a conditional G learns to ignore z (pix2pix
                     notes this); with it, and the reconstruction holding the ground, draws of z
                     change the sky and the light and keep the ground.
    semantic         sem_weight x the cross-entropy of a semantic critic's labels of the view's
                     ground against the photo's class map (semantic_loss). The critic, a small
                     segmenter (models.Segmenter), learns the classes from the real photos as G
                     trains; G is asked for ground it reads as the photo's: meadow as meadow, a
                     crop field as a field, which the low-pass reconstruction cannot tell apart
                     and the adversarial term does not ask for. It needs the world's class maps.
                     With it the draws' ground classes rose from 0.635 to 0.715 (3 seeds, README).
    texture          tex_weight x the L1 between the ground's texture energy and the photo's per
                     8x8 cell (texture_loss); off by default: it cleans the chromatic speckle the
                     adversarial term leaves on meadows and gains realism, not ground classes,
                     and costs the draws' whole-view retrieval (README).
    feature matching fm_weight x the relative L1 between D's activations on the view and on the
                     photo (pix2pixHD; losses.feature_matching); off by default: at weight 5 it
                     gained ground classes at rec_weight 40 and lost them at 60, for 1.4x the
                     step time (README).

D learns real (photo, warp) against fake (view, warp) with BCE. Optionally (mismatch_weight, off by
default; it cost ground classes in both settings tried, README) it also calls a real photo beside
another place's warp fake, so that only the right tile makes a photo real (GAN-CLS, Reed et al. 2016).

G's rate follows StepLR, as the write-up's. With `lr_step_d` (the demo preset) D's rate follows the
same schedule: left constant, D wins once G's rate is halved (its loss falls from about 0.65 to 0.4
and G's adversarial loss climbs from 3.5 to 4.5), and G's ground is read less often as the photo's
classes; halved with G's, the two stay matched (D's loss about 0.5), and the z = 0 view's ground
classes read 0.753 ± 0.014 over seeds 0-5 against 0.737 ± 0.025 over seeds 0-4 (README).

Engineering as in train_gan.py: uint8 data on the device, bf16 autocast and channels_last, an
EMA copy of G (with BatchNorm statistics recomputed from its own outputs), exact resume after
kill -9 (the epoch's order is a pure function of (seed, epoch), every RNG is in the
checkpoint), torchrun DDP, a run directory with config.json, stats.jsonl, samples/ and
checkpoint.pt.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm

from . import checkpoints, data, geometry, losses, manifest, metrics, runs, runtime
from .config import ConditionalConfig, add_config_arguments, config_from_dict
from .files import append_jsonl, read_jsonl
from .images import save_grid
from .models import ConditionalDiscriminator, ConditionalGenerator, Segmenter

SUMS = ("loss_D", "loss_G_adv", "loss_rec", "loss_ms", "z_spread", "D_x", "D_G_z", "loss_tex", "loss_sem",
        "loss_critic")
HEADING_MODES = ("known", "random")
CRITIC_TOP = 0.375  # the semantic critic labels rows 48..127 of 128, as the judge does: the ground and 16 rows above
# Fields that may change when a run is resumed; every other one is the run's own.
RESUMABLE_FIELDS = ("data", "runs", "epochs", "device", "threads", "sample_every", "swd_every",
                    "checkpoint_every_steps")


# -----------------------------------------------------------------------------
# The condition: turn, warp, and the bands the reconstruction sees

def angles_for(headings: torch.Tensor, mode: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """The angle each tile is turned by: its heading where known (mode "known"), a uniform
    random angle where unknown or in mode "random" (the heading-free model)."""
    if mode not in HEADING_MODES:
        raise ValueError(f"heading mode {mode!r}: choose from {HEADING_MODES}")
    random = torch.rand(headings.shape, generator=generator).to(headings.device) * 360
    if mode == "random":
        return random
    return torch.where(torch.isnan(headings), random, headings)


def condition(wide_tiles: torch.Tensor, angles: torch.Tensor, size: int, meters_per_pixel: float = 1.0,
              camera: geometry.Camera = geometry.Camera()) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 wide (or plain) north-up tiles and turning angles -> what G and D are given:
    (the heading-up tile in [-1, 1], N x 3 x size x size;
     the warp: the tile in the view's frame and its mask, N x 4 x H x W)."""
    tile = geometry.turn_tiles(data.to_float(wide_tiles), angles, size)
    warped, mask = geometry.warp_to_view(tile, camera, meters_per_pixel)
    mask = mask.to(tile.dtype).expand(len(tile), 1, *mask.shape)
    return tile, torch.cat([warped, mask], 1)


def known_rows(size: int) -> slice:
    """The rows of the ground and horizon bands (metrics.REGIONS) in a size-row low-pass view."""
    rows = [metrics.region_rows(name, size) for name in ("horizon", "ground")]
    return slice(min(r.start for r in rows), max(r.stop for r in rows))


def reconstruction_loss(fake: torch.Tensor, real: torch.Tensor, size: int, rows: slice | None = None) -> torch.Tensor:
    """L1 between size x size low-pass views, on the ground and horizon bands (default) or `rows`."""
    rows = known_rows(size) if rows is None else rows
    low_fake = F.adaptive_avg_pool2d(fake.float(), size)[:, :, rows]
    low_real = F.adaptive_avg_pool2d(real.float(), size)[:, :, rows]
    return (low_fake - low_real).abs().mean()


def pair_reconstruction_loss(fake: torch.Tensor, real: torch.Tensor, size: int) -> torch.Tensor:
    """The reconstruction of a batch of pairs (z = 0, z ~ N) per place: the view at the latent's
    centre is fitted on every row, so that it is the model's best single guess of the whole view
    (what `predict` shows); a random draw only on the rows the tile determines, its sky is free."""
    return 0.5 * (reconstruction_loss(fake[0::2], real[0::2], size, slice(None))
                  + reconstruction_loss(fake[1::2], real[1::2], size))


def texture_loss(fake: torch.Tensor, real: torch.Tensor, cell: int = 8, region: str = "ground") -> torch.Tensor:
    """L1 between the texture energy of view and photo on `region`: per channel and per cell x cell
    patch, the mean absolute difference from a 3x3 local mean. It tells a smooth meadow from a
    field's rows; the low-pass reconstruction cannot see either, and the adversarial term left
    chromatic speckle on meadows that the judge reads as a field's soil."""
    rows = metrics.region_rows(region, fake.shape[-2])

    def energy(x):
        x = x[:, :, rows].float()
        return F.avg_pool2d((x - F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)).abs(), cell)
    return (energy(fake) - energy(real)).abs().mean()


def semantic_loss(critic: Segmenter, views: torch.Tensor, class_maps: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the critic's labels of `views` against their class maps (uint8 N x H x W),
    on the rows the critic labels. The critic learns it on the photos; G is asked for views that
    the critic labels as it labels the photo of the same place (CyCADA's semantic consistency,
    Hoffman et al. 2018, with the classifier trained on the real views as G trains, as OASIS's
    segmenting discriminator is, Schoenfeld et al. 2021)."""
    logits = critic(critic.inputs(views))
    return F.cross_entropy(logits.float(), class_maps[:, critic.first_row(views.shape[-2]):].long())


def mode_seeking_loss(fake: torch.Tensor, z: torch.Tensor, region: str = "sky") -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs (0, 1), (2, 3), ... share a condition. The spread between the two views of a place
    is measured on `region` (metrics.REGIONS): z is asked to move what the tile cannot know, the
    sky, while the reconstruction holds the ground. Returns (the loss, the mean pixel spread)."""
    rows = metrics.region_rows(region, fake.shape[-2])
    spread = (fake[0::2, :, rows] - fake[1::2, :, rows]).float().abs().mean(dim=(1, 2, 3))
    dz = (z[0::2] - z[1::2]).abs().mean(dim=1)
    return (1 / (spread / dz + 1e-5)).mean(), spread.mean()


# -----------------------------------------------------------------------------
# Loading a trained run, and prediction (predict, evaluate and the demo use these)

def make_generator(cfg: ConditionalConfig) -> ConditionalGenerator:
    return ConditionalGenerator(cfg.nz, cfg.ngf, cfg.nef, cfg.ncode, z_rows=cfg.z_rows)


def load_generator(run_dir: str | Path, device="cpu", ema: bool = True) -> tuple[ConditionalGenerator, ConditionalConfig]:
    """The trained conditional G of a run (EMA weights where kept), frozen, and the run's config."""
    cfg = config_from_dict(ConditionalConfig, runs.read_config(run_dir))
    ckpt = runs.load_checkpoint(run_dir)
    G = make_generator(cfg)
    G.load_state_dict(ckpt["G_ema"] if ema and ckpt.get("G_ema") is not None else ckpt["G"])
    return G.to(device).eval().requires_grad_(False), cfg


@torch.no_grad()
def predict_views(G: ConditionalGenerator, wide_tiles: torch.Tensor, angles: torch.Tensor,
                  z: torch.Tensor | None = None, meters_per_pixel: float = 1.0, size: int = 128,
                  batch_size: int = 64, bf16: bool = False) -> torch.Tensor:
    """Views for uint8 north-up tiles (wide ones preferably) turned by `angles` (degrees; NaN =
    north-up), with latents z (default 0, the latent's centre): [-1, 1] float on the CPU."""
    device = next(G.parameters()).device
    z = torch.zeros(len(wide_tiles), G.nz) if z is None else z
    out = []
    for i in range(0, len(wide_tiles), batch_size):
        tile, warp = condition(wide_tiles[i:i + batch_size].to(device), angles[i:i + batch_size].to(device),
                               size, meters_per_pixel)
        with runtime.autocast(device, bf16):
            out.append(G(tile, warp, z[i:i + batch_size].to(device)).float().cpu())
    return torch.cat(out)


@torch.no_grad()
def standing_stats(G: ConditionalGenerator, tiles: torch.Tensor, warps: torch.Tensor, batch_size: int = 64,
                   seed: int = 0, ctx=None) -> None:
    """Recompute the EMA generator's BatchNorm statistics from its own outputs on these
    conditions (see train_gan.standing_stats: EMA weights come without matching statistics).

    The batches mirror training's: every other row at z = 0. Training normalises such mixed
    batches, so statistics from random z alone shift the z = 0 view, the point prediction:
    measured on the demo run, whole / ground top-5 0.057 / 0.171 with random-z statistics,
    0.152 / 0.276 with these."""
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over the batches below
    G.train()
    for i in range(0, len(tiles), batch_size):
        z = torch.randn(len(tiles[i:i + batch_size]), G.nz, generator=gen).to(tiles.device)
        z[0::2] = 0
        with ctx or runtime.autocast(tiles.device, False):
            G(tiles[i:i + batch_size], warps[i:i + batch_size], z)
    for bn in bns:
        bn.momentum = 0.1
    G.eval()


# -----------------------------------------------------------------------------

def train(cfg: ConditionalConfig | None = None, resume: str | Path | None = None, progress: bool = True,
          max_steps: int = 0) -> Path:
    """Train (or, with `resume`, continue) a conditional run; return its run directory.
    `max_steps` stops after that many global steps with a checkpoint, as an interruption would."""
    # ---- where and how this process runs
    rank, world_size = runtime.init_distributed()
    master = rank == 0
    ckpt = None
    if resume is not None:
        ckpt = runs.load_checkpoint(resume)
        cfg = runs.resumed_config(ConditionalConfig, ckpt["config"], cfg, RESUMABLE_FIELDS)
    assert cfg is not None, "train() needs a config or a run to resume"
    if cfg.heading not in HEADING_MODES:
        raise ValueError(f"--heading {cfg.heading!r}: choose from {HEADING_MODES}")
    runtime.configure_cpu(cfg.threads)
    device = runtime.pick_device(cfg.device)
    bf16 = runtime.use_bf16(cfg.bf16, device)
    ctx = runtime.autocast(device, bf16)
    mf = torch.channels_last if cfg.channels_last else torch.contiguous_format

    # ---- data: photos, wide tiles and headings, uint8 on the device. Every step takes a full
    # batch, so a split smaller than one batch would never train: stop before any run folder.
    places = max(1, cfg.batch_size // 2 // world_size)  # per rank; each place is seen with two draws of z
    batch = 2 * places
    runs.require_pairs(cfg.data, "train", places * world_size,
                       f"train-conditional with {places * world_size} places a batch", cfg.max_images, batch=True)
    pairs = data.load_pairs(cfg.data, "train", cfg.image_size, cfg.max_images, progress=progress and master)
    photos = pairs.photos.to(device)
    wide = pairs.turnable_tiles.to(device)
    headings = pairs.headings.to(device)
    mpp = pairs.meters_per_pixel
    n = len(photos)
    steps_per_epoch = n // (places * world_size)
    class_maps = None
    if cfg.sem_weight:
        if not data.has_class_maps(cfg.data, pairs.table):
            raise FileNotFoundError(
                f"{cfg.data}: the semantic term (sem_weight {cfg.sem_weight}) learns from class maps "
                "(classes/<photo id>.png, which the built-in world writes) and this dataset has none: "
                "train with --sem-weight 0")
        class_maps = data.load_class_maps(cfg.data, pairs.table, cfg.image_size, progress and master).to(device)

    # ---- models and optimisers (the same init on every rank)
    runtime.seed_everything(cfg.seed)
    G_raw = make_generator(cfg)
    D_raw = ConditionalDiscriminator(cfg.ndf)
    if cfg.gan_run and ckpt is None:  # start from the write-up's trained decoder and critic
        G_raw.start_from(checkpoints.load_generator(cfg.gan_run))
        D_raw.start_from(checkpoints.load_discriminator(cfg.gan_run))
    G_raw, D_raw = G_raw.to(device, memory_format=mf), D_raw.to(device, memory_format=mf)
    # the semantic critic: a small segmenter that learns the classes of the real views as G trains
    critic_raw = (Segmenter(width=cfg.critic_width, top=CRITIC_TOP).to(device, memory_format=mf)
                  if cfg.sem_weight else None)
    G_ema = copy.deepcopy(G_raw).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
    opt_G = torch.optim.Adam(G_raw.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_D = torch.optim.Adam(D_raw.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    sched_G = torch.optim.lr_scheduler.StepLR(opt_G, step_size=cfg.lr_step_size, gamma=cfg.lr_gamma)
    sched_D = (torch.optim.lr_scheduler.StepLR(opt_D, step_size=cfg.lr_step_size, gamma=cfg.lr_gamma)
               if cfg.lr_step_d else None)
    opt_critic = torch.optim.Adam(critic_raw.parameters(), lr=cfg.critic_lr) if critic_raw is not None else None
    runtime.seed_everything(cfg.seed * 1000 + rank + 1)  # a stream per rank for z, turns, flips

    parts = {"G": G_raw, "D": D_raw, "G_ema": G_ema, "opt_G": opt_G, "opt_D": opt_D, "sched_G": sched_G,
             "sched_D": sched_D, "critic": critic_raw, "opt_critic": opt_critic}
    epoch, step, step_in_epoch = 0, 0, 0
    sums = torch.zeros(len(SUMS), device=device)  # the epoch so far, over this rank's batches
    epoch_time = 0.0
    run_dir = None
    if ckpt is not None:  # exactly where the checkpoint stopped, as in train_gan
        run_dir = Path(resume)
        runs.load_state_dicts(parts, ckpt)
        epoch, step, step_in_epoch = ckpt["epoch"], ckpt["step"], ckpt["step_in_epoch"]
        sums, epoch_time = ckpt["epoch_sums"].to(device), ckpt["epoch_time"]
        sums = F.pad(sums, (0, len(SUMS) - len(sums)))  # a checkpoint from before loss_tex / loss_sem were logged
        runtime.restore_rng(ckpt["rng"], rank, world_size, reseed=cfg.seed * 1000 + rank + 1 + step)
        if master:
            runs.trim_stats(run_dir, ckpt["stats_lines"])
            runs.write_config(run_dir, cfg)
    elif master:
        run_dir = runs.pending_run_dir(cfg.runs, "conditional", cfg.desc)  # numbered at the first checkpoint
        runs.write_config(run_dir, cfg)
    run_dir = Path(runtime.broadcast(str(run_dir), world_size))
    if world_size > 1:
        G, D, critic = (DDP(m, device_ids=[device.index] if device.type == "cuda" else None) if m is not None else None
                        for m in (G_raw, D_raw, critic_raw))
    else:
        G, D, critic = G_raw, D_raw, critic_raw
    stats_lines = len(read_jsonl(run_dir / "stats.jsonl")) if master else 0

    # fixed conditions, z and photos for the sample grids, the metric and the EMA statistics
    gen = torch.Generator().manual_seed(cfg.seed)
    fixed = torch.randperm(n, generator=gen)[:max(min(cfg.swd_images, n), 8)].to(device)
    fixed_angles = angles_for(headings[fixed].cpu(), cfg.heading, gen).to(device)
    fixed_tile, fixed_warp = condition(wide[fixed], fixed_angles, cfg.image_size, mpp)
    fixed_z = torch.randn(len(fixed), cfg.nz, generator=gen).to(device)
    fixed_real = data.to_float(photos[fixed].cpu())
    sampler = G_ema if G_ema is not None else G_raw

    def samples(z=fixed_z):
        with torch.no_grad():
            was = sampler.training
            sampler.eval()
            out = torch.cat([sampler(fixed_tile[i:i + 64], fixed_warp[i:i + 64], z[i:i + 64]).float().cpu()
                             for i in range(0, len(fixed), 64)])
            sampler.train(was)
        return out

    def checkpoint():
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
        if master and G_ema is not None:
            standing_stats(G_ema, fixed_tile, fixed_warp, seed=cfg.seed, ctx=ctx)

    if master and ckpt is None and cfg.sample_every:
        k = min(8, len(fixed))
        save_grid(torch.cat([fixed_tile[:k].cpu(), fixed_warp[:k, :3].cpu(), fixed_real[:k]]),
                  run_dir / "samples" / "conditions.png", ncol=k)
        print(f"{run_dir}: {n} pairs, {steps_per_epoch} steps/epoch x {cfg.epochs} epochs, "
              f"{places} places x 2 z x {world_size} rank(s), heading {cfg.heading}, {device}, "
              f"bf16 {'on' if bf16 else 'off'}, EMA {cfg.ema_decay or 'off'}")

    criterion = nn.BCEWithLogitsLoss()
    judged = slice(None) if cfg.adv_point else slice(1, None, 2)  # the rows D sees: all, or the random draws
    while epoch < cfg.epochs:
        order = data.epoch_order(n, epoch, cfg.seed, rank, world_size).to(device)
        G.train()
        D.train()
        bar = tqdm(range(step_in_epoch, steps_per_epoch), desc=f"conditional epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (progress and master), leave=False, initial=step_in_epoch, total=steps_per_epoch)
        t0 = time.perf_counter()
        for i in bar:
            idx = order[i * places:(i + 1) * places]
            tile, warp = condition(wide[idx], angles_for(headings[idx], cfg.heading), cfg.image_size, mpp)
            real = data.to_float(photos[idx])
            if cfg.hflip:  # the world mirrored left-right is still a world: tile, warp and view together
                flip = torch.rand(places, 1, 1, 1, device=device) < 0.5
                tile, warp, real = (torch.where(flip, x.flip(3), x) for x in (tile, warp, real))
            # every place twice, each with its own z: the pairs feed the mode-seeking term
            tile, warp, real = (x.repeat_interleave(2, 0).contiguous(memory_format=mf) for x in (tile, warp, real))
            if class_maps is not None:
                maps = class_maps[idx]
                maps = torch.where(flip[:, 0], maps.flip(2), maps) if cfg.hflip else maps
                maps = maps.repeat_interleave(2, 0)
            z = torch.randn(batch, cfg.nz, device=device)
            z[0::2] = 0  # the first view of each place at the latent's centre: the point prediction

            # (1) Update D: real (photo, warp) pairs against fake ones. Each photo sits in the batch
            # twice; D sees it once: the same BCE mean and BatchNorm statistics at half the cost.
            opt_D.zero_grad(set_to_none=True)
            with ctx:
                fake = G(tile, warp, z)
                logit_real = D(real[0::2], warp[0::2])
            loss_real = criterion(logit_real.float(), torch.ones_like(logit_real, dtype=torch.float))
            loss_real.backward()
            if cfg.mismatch_weight:  # a real photo beside another place's warp is fake too (GAN-CLS)
                with ctx:
                    logit_mismatch = D(real[0::2], warp[0::2].roll(1, 0))
                loss_mismatch = cfg.mismatch_weight * criterion(
                    logit_mismatch.float(), torch.zeros_like(logit_mismatch, dtype=torch.float))
                loss_mismatch.backward()  # one backward per D call, as DDP expects
                loss_real = loss_real + loss_mismatch.detach()  # D's loss in stats.jsonl
            with ctx:
                logit_fake = D(fake[judged].detach(), warp[judged])
            loss_fake = criterion(logit_fake.float(), torch.zeros_like(logit_fake, dtype=torch.float))
            loss_fake.backward()
            opt_D.step()
            loss_critic = torch.zeros((), device=device)
            if critic is not None:  # (1b) the semantic critic learns the photos' classes
                critic.train()
                opt_critic.zero_grad(set_to_none=True)
                with ctx:
                    loss_critic = semantic_loss(critic, real[0::2], maps[0::2])
                loss_critic.backward()
                opt_critic.step()

            # (2) Update G: fool D, match the low-pass ground and horizon, draw ground the critic
            # reads as the photo's classes (and, with tex_weight, the photo's grain), keep z alive
            opt_G.zero_grad(set_to_none=True)
            D_raw.requires_grad_(False)
            with ctx:
                logit_gen = D_raw(fake[judged], warp[judged])
            loss_adv = criterion(logit_gen.float(), torch.ones_like(logit_gen, dtype=torch.float))
            loss_rec = pair_reconstruction_loss(fake, real, cfg.rec_size)
            loss_ms, spread = mode_seeking_loss(fake, z)
            # with the term off its value is logged only per epoch, on the fixed places (tex_fixed):
            # at every step it would cost a tenth of the step
            loss_tex = texture_loss(fake, real) if cfg.tex_weight else torch.zeros((), device=device)
            loss_sem = torch.zeros((), device=device)
            if critic_raw is not None:  # the critic judges with the photos' BatchNorm statistics, as the judge does
                critic_raw.eval().requires_grad_(False)
                with ctx:
                    loss_sem = semantic_loss(critic_raw, fake, maps)
                critic_raw.requires_grad_(True)
            loss_G = (cfg.adv_weight * loss_adv + cfg.rec_weight * loss_rec + cfg.tex_weight * loss_tex
                      + cfg.sem_weight * loss_sem + cfg.ms_weight * loss_ms)
            if cfg.fm_weight:  # optional: pix2pixHD's feature matching, as the encoder's custom loss has it
                with ctx:
                    judge = functools.partial(D_raw, warp=warp[judged])
                    loss_G = loss_G + cfg.fm_weight * losses.feature_matching(fake[judged], real[judged], judge).mean()
            loss_G.backward()
            opt_G.step()
            D_raw.requires_grad_(True)

            if G_ema is not None:
                runtime.update_ema(G_ema, G_raw, step, cfg.ema_decay)

            step += 1
            step_in_epoch = i + 1
            numbers = torch.stack([(loss_real + loss_fake).detach(), loss_adv.detach(), loss_rec.detach(),
                                   loss_ms.detach(), spread.detach(),
                                   torch.sigmoid(logit_real.detach().float()).mean(),
                                   torch.sigmoid(logit_fake.detach().float()).mean(), loss_tex.detach(),
                                   loss_sem.detach(), loss_critic.detach()])
            sums += numbers
            if progress and master and (i % 10 == 0 or i + 1 == steps_per_epoch):
                bar.set_postfix(loss_D=f"{float(numbers[0]):.3f}", rec=f"{float(numbers[2]):.3f}",
                                spread=f"{float(numbers[4]):.3f}")
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

        # ---- end of epoch: schedule, stats, metric, samples, checkpoint
        lr_G, lr_D = opt_G.param_groups[0]["lr"], opt_D.param_groups[0]["lr"]
        sched_G.step()
        if sched_D is not None:
            sched_D.step()
        epoch += 1
        refresh_ema_stats()
        if master:
            record = {"epoch": epoch, "step": step, "epoch_time": round(epoch_time, 3),
                      "img_s": round(steps_per_epoch * batch * world_size / max(epoch_time, 1e-9), 2),
                      "lr_G": lr_G, "lr_D": lr_D, **dict(zip(SUMS, (sums / steps_per_epoch).tolist()))}
            for key, on in (("loss_tex", cfg.tex_weight), ("loss_sem", critic_raw is not None),
                            ("loss_critic", critic_raw is not None)):
                if not on:  # a term that is off is not logged as a 0
                    del record[key]
            if cfg.swd_every and (epoch % cfg.swd_every == 0 or epoch == cfg.epochs):
                fakes = samples()
                record.update(metrics.swd(fakes, fixed_real, seed=cfg.seed))
                record["rec_fixed"] = reconstruction_loss(fakes, fixed_real, cfg.rec_size).item()
                record["tex_fixed"] = texture_loss(fakes, fixed_real).item()
            append_jsonl(run_dir / "stats.jsonl", record)
            stats_lines += 1
            if cfg.sample_every and (epoch % cfg.sample_every == 0 or epoch == cfg.epochs):
                k = min(8, len(fixed))
                # rows: the heading-up tile, the warp, three draws of z, and the photo
                draws = [samples(torch.randn(len(fixed), cfg.nz, generator=torch.Generator().manual_seed(s))
                                 .to(device))[:k] for s in range(3)]
                save_grid(torch.cat([fixed_tile[:k].cpu(), fixed_warp[:k, :3].cpu(), *draws, fixed_real[:k]]),
                          run_dir / "samples" / f"fakes-{epoch:05d}.png", ncol=k)
            msg = " ".join(f"{k} {record[k]:.4g}" for k in ("loss_D", "loss_G_adv", "loss_rec", "z_spread",
                                                             "img_s", "swd") if k in record)
            (tqdm.write if progress else print)(f"conditional epoch {epoch}/{cfg.epochs} {msg} ({epoch_time:.1f} s)")
        step_in_epoch, epoch_time = 0, 0.0
        sums.zero_()
        checkpoint()
    return run_dir


# -----------------------------------------------------------------------------
# command line: python -m sat2scape train-conditional

def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, ConditionalConfig)
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue this run exactly where its checkpoint stopped (flags may change e.g. --epochs)")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps, with a checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars, one line per epoch")


def run(args: argparse.Namespace) -> int:
    cfg = runs.config_for(ConditionalConfig, args)
    try:
        run_dir = train(cfg, resume=args.resume, progress=not args.no_progress, max_steps=args.max_steps)
    except (runs.DatasetTooSmall, manifest.ManifestError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if runtime.finish_distributed():
        print(run_dir)
    return 0
