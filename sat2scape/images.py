"""Pictures written to disk: image grids, the GIF, the GAN's loss curves.

Knows nothing of training or of the figures: the training loops call it for the sample grids in
their run directories, and figures/ builds the README's pictures on top of it. Images come in as
uint8 tensors N x 3 x H x W (data.to_uint8 of the [-1, 1] ones) unless a function says otherwise.
Every file goes through files.atomic_*, so a crash never leaves half a PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .data import to_uint8
from .files import atomic_save_image, atomic_write

PREDICTION_LABELS = ("satellite tile", "predicted view", "true view")


def to_pil(image: torch.Tensor) -> Image.Image:
    """One uint8 image 3 x H x W as a PIL image."""
    return Image.fromarray(image.permute(1, 2, 0).cpu().numpy())


def image_rows(columns: list[torch.Tensor], labels=PREDICTION_LABELS, pad: int = 2,
               scale: int = 1) -> Image.Image:
    """A grid with one column per tensor (each N_c x 3 x H x W uint8) and one row per image,
    white gaps of `pad` px, and the column labels on a strip above (None: no strip). Columns may
    be shorter than the first (a grid whose last row is not full): their missing cells stay white."""
    n = max(len(c) for c in columns)
    _, _, h, w = columns[0].shape
    h, w = h * scale, w * scale
    label_h = 16 * scale if labels else 0
    grid = Image.new("RGB", (len(columns) * (w + pad) + pad, label_h + n * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=11 * scale)
    for c, images in enumerate(columns):
        x = pad + c * (w + pad)
        if labels:
            draw.text((x + w / 2, label_h / 2 + 1), labels[c], fill="black", font=font, anchor="mm")
        for r in range(len(images)):
            tile = to_pil(images[r])
            if scale != 1:
                tile = tile.resize((w, h), Image.Resampling.BICUBIC)
            grid.paste(tile, (x, label_h + pad + r * (h + pad)))
    return grid


def image_grid(images: torch.Tensor, ncol: int = 8, scale: int = 1) -> Image.Image:
    """uint8 images in reading order, ncol to a row (fewer columns when there are fewer images);
    a last row that is not full is left white where images are missing."""
    ncol = max(1, min(ncol, len(images)))
    return image_rows([images[c::ncol] for c in range(ncol)], labels=None, scale=scale)


def save_grid(images: torch.Tensor, path: str | Path, ncol: int = 8, scale: int = 1) -> Path:
    """Images in [-1, 1] (N x 3 x H x W, any N >= 1) as a PNG grid of ncol columns."""
    return atomic_save_image(path, image_grid(to_uint8(images), ncol, scale))


def save_prediction_grid(path: str | Path, tiles: torch.Tensor, predictions: torch.Tensor,
                         photos: torch.Tensor) -> Path:
    """Rows of satellite tile | predicted view | true view (all uint8)."""
    return atomic_save_image(path, image_rows([tiles, predictions, photos]))


def save_gif(path: str | Path, frames: list[Image.Image], duration_ms: int = 120) -> Path:
    """An endlessly looping GIF. One shared palette keeps the colours from flickering between
    frames (per-frame palettes make the sky shimmer)."""
    strip = Image.fromarray(np.concatenate([np.asarray(f) for f in frames], axis=0))
    palette = strip.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    quantized = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    return atomic_save_image(path, quantized[0], save_all=True, append_images=quantized[1:],
                             duration=duration_ms, loop=0, optimize=False)


# ---------------------------------------------------------------------------------------------
# The GAN's curves from its stats.jsonl: written into the run directory while it trains, and
# into assets/ by the figures. matplotlib is imported on first use, so `--help` stays instant.

def loss_figure(stats: list[dict]):
    """Three panels against the epoch: the two losses, D's mean outputs, and the SWD (x 1e3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """A matplotlib figure as a PNG, atomically, with fixed metadata so reruns give identical
    bytes; then closed (a long loop must not pile figures up)."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight",
                                                        metadata={"Software": None}))
    finally:
        plt.close(fig)


def plot_losses(stats: list[dict], path: str | Path) -> Path:
    return save_figure(loss_figure(stats), path)
