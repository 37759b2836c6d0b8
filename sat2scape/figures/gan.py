"""The GAN's figures: fixed-noise sample grids, the latent traversal, the loss and SWD curves.

    gan_figures(run_dir, "assets")   writes gan_results.png, gan_traversal.png, gan_losses.png

Everything is a pure function of the run (its checkpoint, its stats.jsonl and a seed), so
regenerating the figures of the same run gives the same bytes. The grid and the loss curves
themselves are images.py's (the training loop writes them into its run directory too), and the
trained G comes from checkpoints.py: figures sit on top and no training module imports them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import runs
from ..checkpoints import generate, load_generator
from ..config import GANConfig
from ..data import to_uint8
from ..files import atomic_save_image, read_jsonl
from ..images import image_rows, plot_losses, save_grid


def _latest_gan_run(run_dir) -> Path:
    if run_dir is not None:
        return Path(run_dir)
    found = runs.pick_latest(GANConfig.runs, "gan", flag="run_dir")
    if found is None:
        raise FileNotFoundError(f"no GAN run with a checkpoint under {GANConfig.runs}: train one first "
                                "(python -m sat2scape train-gan)")
    return found


def sample_grid(run_dir, out: str | Path, n: int = 64, ncol: int = 8, seed: int = 0) -> Path:
    """G_ema(z) for n fixed z drawn from `seed` (the same z as training's samples/ grids)."""
    G = load_generator(run_dir)
    z = torch.randn(n, G.nz, generator=torch.Generator().manual_seed(seed))
    return save_grid(generate(G, z), out, ncol=ncol)


def traversal(run_dir, out: str | Path, steps: int = 9, span: float = 2.5, seed: int = 0) -> Path:
    """One row per latent dimension: that number swept over [-span, span], the others held at a
    random z from `seed`. (Not at 0: z = 0 is no typical sample of a 4-dim normal, whose norm is
    about 2, and a bias-free projection maps it to a constant 4x4 map, so G(0) is a flat texture.)"""
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
