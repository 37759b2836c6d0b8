"""The GAN's figures: fixed-noise sample grids, the latent traversal, the loss and SWD curves.

    gan_figures(run_dir, "assets")   writes gan_results.png, gan_traversal.png, gan_losses.png

Everything is a pure function of the run (its checkpoint, its stats.jsonl and a seed), so
regenerating the figures of the same run gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch

from .. import runs
from ..config import GANConfig
from ..data import to_uint8
from ..files import atomic_save_image, read_jsonl
from .diagrams import save_figure
from .encoder import image_rows


def save_grid(images: torch.Tensor, path: str | Path, ncol: int = 8, scale: int = 1) -> Path:
    """Images in [-1, 1] (N x 3 x H x W) as a grid of ncol columns with thin white gaps."""
    images = to_uint8(images)
    return atomic_save_image(path, image_rows([images[c::ncol] for c in range(ncol)], labels=None,
                                              scale=scale))


def loss_figure(stats: list[dict]):
    """Three panels against the epoch: the two losses, D's mean outputs, and the SWD (x 1e3)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    epochs = [s["epoch"] for s in stats]
    for key, label in (("loss_D", "loss D"), ("loss_G", "loss G")):
        axes[0].plot(epochs, [s[key] for s in stats], label=label)
    for key, label in (("D_x", "D(x)"), ("D_G_z", "D(G(z))")):
        axes[1].plot(epochs, [s[key] for s in stats], label=label)
    axes[1].set_ylim(0, 1)
    rows = [s for s in stats if "swd" in s]
    for key in sorted({k for s in rows for k in s if k.startswith("swd") and k[3:].isdigit()},
                      key=lambda k: -int(k[3:])):
        axes[2].plot([s["epoch"] for s in rows], [s[key] for s in rows], lw=0.8, alpha=0.6,
                     label=f"{key[3:]} px")
    if rows:
        axes[2].plot([s["epoch"] for s in rows], [s["swd"] for s in rows], "k-o", ms=3, label="average")
    for ax, title in zip(axes, ("losses", "discriminator outputs", "sliced Wasserstein distance x1e3")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_losses(stats: list[dict], path: str | Path) -> Path:
    return save_figure(loss_figure(stats), path)


def _latest_gan_run(run_dir) -> Path:
    if run_dir is not None:
        return Path(run_dir)
    found = runs.latest_run(GANConfig.runs, "gan")
    if found is None:
        raise FileNotFoundError("no GAN run with a checkpoint under data/runs: train one first")
    return found


def sample_grid(run_dir, out: str | Path, n: int = 64, ncol: int = 8, seed: int = 0) -> Path:
    """G_ema(z) for n fixed z drawn from `seed` (the same z as training's samples/ grids)."""
    from ..train_gan import generate, load_generator

    G = load_generator(run_dir)
    z = torch.randn(n, G.nz, generator=torch.Generator().manual_seed(seed))
    return save_grid(generate(G, z), out, ncol=ncol)


def traversal(run_dir, out: str | Path, steps: int = 9, span: float = 2.5, seed: int = 0) -> Path:
    """One row per latent dimension: that number swept over [-span, span], the others held at a
    random z from `seed`. (Not at 0: z = 0 is no typical sample of a 4-dim normal, whose norm is
    about 2, and a bias-free projection maps it to a constant 4x4 map, so G(0) is a flat texture.)"""
    from ..train_gan import generate, load_generator

    G = load_generator(run_dir)
    values = torch.linspace(-span, span, steps)
    z = torch.randn(G.nz, generator=torch.Generator().manual_seed(seed)).repeat(G.nz, steps, 1)
    for d in range(G.nz):
        z[d, :, d] = values
    images = to_uint8(generate(G, z.reshape(-1, G.nz)))
    images = images.reshape(G.nz, steps, *images.shape[1:])
    columns = [images[:, c] for c in range(steps)]
    return atomic_save_image(out, image_rows(columns, labels=[f"z_row = {v:+.1f}" for v in values.tolist()]))


def gan_figures(run_dir=None, out_dir: str | Path = "assets") -> list[Path]:
    """gan_results.png, gan_traversal.png and gan_losses.png of a run (default: the latest)."""
    run_dir, out_dir = _latest_gan_run(run_dir), Path(out_dir)
    return [sample_grid(run_dir, out_dir / "gan_results.png", n=32),
            traversal(run_dir, out_dir / "gan_traversal.png"),
            plot_losses(read_jsonl(run_dir / "stats.jsonl"), out_dir / "gan_losses.png")]
