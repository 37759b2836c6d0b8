"""A trained GAN out of its run directory, and sampling from G.

    G = load_generator("data/runs/00003-gan-demo")     # the EMA copy, frozen, in eval mode
    views = generate(G, torch.randn(16, G.nz))

Below both training loops and the figures: train_gan uses standing_stats and generate while it
trains, train_encoder and evaluate load the frozen G (and D for the feature-matching loss), and
figures/ draws samples. Not in runs.py, which is the file layer (names, config.json,
checkpoint.pt) and stays free of the networks; not in models.py, which is the architecture only.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from . import runs, runtime
from .config import GANConfig, config_from_dict
from .models import Discriminator, Generator


def gan_config(run_dir: str | Path) -> GANConfig:
    return config_from_dict(GANConfig, runs.read_config(run_dir))


def load_generator(run_dir: str | Path, device="cpu", ema: bool = True) -> Generator:
    """The trained G of a run, frozen in eval mode; the EMA weights when the run kept them."""
    cfg = gan_config(run_dir)
    ckpt = runs.load_checkpoint(run_dir)
    G = Generator(cfg.nz, cfg.ngf)
    G.load_state_dict(ckpt["G_ema"] if ema and ckpt.get("G_ema") is not None else ckpt["G"])
    return G.to(device).eval().requires_grad_(False)


def load_discriminator(run_dir: str | Path, device="cpu") -> Discriminator:
    cfg = gan_config(run_dir)
    D = Discriminator(cfg.ndf)
    D.load_state_dict(runs.load_checkpoint(run_dir)["D"])
    return D.to(device).eval().requires_grad_(False)


@torch.no_grad()
def standing_stats(G: nn.Module, nz: int, batches: int = 4, batch_size: int = 64, seed: int = 0,
                   ctx=None) -> None:
    """Recompute G's BatchNorm statistics from its own samples (BigGAN's "standing stats").

    An EMA copy of G has averaged weights but no matching BatchNorm statistics, so in eval mode
    its outputs drift; averaging the batch statistics over a few batches of z fixes that.
    A private generator keeps this deterministic and out of training's RNG stream."""
    device = next(G.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over the batches below
    G.train()
    for _ in range(batches):
        z = torch.randn(batch_size, nz, generator=gen).to(device)
        with ctx or runtime.autocast(device, False):
            G(z)
    for bn in bns:
        bn.momentum = 0.1
    G.eval()


@torch.no_grad()
def generate(G: nn.Module, z: torch.Tensor, batch_size: int = 64, ctx=None) -> torch.Tensor:
    """G(z) in eval mode, in batches, as float32 on the CPU."""
    device = next(G.parameters()).device
    was_training = G.training
    G.eval()
    out = []
    for chunk in z.split(batch_size):
        with ctx or runtime.autocast(device, False):
            out.append(G(chunk.to(device)).float().cpu())
    G.train(was_training)
    return torch.cat(out)
