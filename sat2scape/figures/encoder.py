"""The encoder's figures: prediction grids (tile | G(E(tile)) | photo), the write-up's 3x3 loss
tables (as markdown and as figures), and the frames of the demo GIF.

Images come in as uint8 tensors N x 3 x H x W (data.to_uint8 of the [-1, 1] ones). The grids
and the GIF writer live in images.py, below the training loops that also use them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from ..files import atomic_save_image, atomic_write, atomic_write_text
from ..images import to_pil as _pil


# ---------------------------------------------------------------------------------------------
# The write-up's loss comparison: 3 generated views against 3 real photos, one table per loss.

def loss_table_markdown(matrix: torch.Tensor, name: str) -> str:
    """Rows = generated views, columns = real photos; the lowest (best) value in each row in bold.
    A loss that suits the task puts the bold on the diagonal: each prediction is closest to the
    photo actually taken at its tile."""
    n, m = matrix.shape
    lines = [f"| {name} | " + " | ".join(f"real {j + 1}" for j in range(m)) + " |",
             "|---|" + "---:|" * m]
    for i in range(n):
        best = int(matrix[i].argmin())
        cells = [f"**{v:.4f}**" if j == best else f"{v:.4f}" for j, v in enumerate(matrix[i].tolist())]
        lines.append(f"| generated {i + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def loss_table_figure(generated: torch.Tensor, real: torch.Tensor, matrix: torch.Tensor, name: str):
    """The table as a figure: real photos across the top, generated views down the side, the loss
    between them in each cell, the best in each row boxed in green."""
    n, m = matrix.shape
    fig, axes = plt.subplots(n + 1, m + 1, figsize=(1.6 * (m + 1), 1.6 * (n + 1)))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].axis("off")
    axes[0, 0].text(0.5, 0.5, f"{name}\n(lower is better)", ha="center", va="center", fontsize=10)
    for j in range(m):
        axes[0, j + 1].imshow(real[j].permute(1, 2, 0).cpu().numpy())
        axes[0, j + 1].set_title(f"real {j + 1}", fontsize=9)
    for i in range(n):
        axes[i + 1, 0].imshow(generated[i].permute(1, 2, 0).cpu().numpy())
        axes[i + 1, 0].set_ylabel(f"generated {i + 1}", fontsize=9)
        best = int(matrix[i].argmin())
        for j in range(m):
            ax = axes[i + 1, j + 1]
            ax.set_facecolor("#e8f5e9" if j == best else "white")
            ax.text(0.5, 0.5, f"{matrix[i, j]:.4f}", ha="center", va="center", fontsize=11,
                    fontweight="bold" if j == best else "normal", transform=ax.transAxes)
            for spine in ax.spines.values():
                spine.set_color("#2e7d32" if j == best else "#bbbbbb")
                spine.set_linewidth(2.5 if j == best else 0.8)
    fig.tight_layout()
    return fig


def write_loss_samples(out_dir: str | Path, generated: torch.Tensor, real: torch.Tensor,
                       matrices: dict[str, torch.Tensor]) -> list[Path]:
    """Save the images (generated_1.png ..., real_1.png ...), one table figure per loss
    (table_<loss>.png) and all tables as markdown (tables.md) into out_dir."""
    out_dir = Path(out_dir)
    written = []
    for kind, images in (("generated", generated), ("real", real)):
        for i, image in enumerate(images):
            written.append(atomic_save_image(out_dir / f"{kind}_{i + 1}.png", _pil(image)))
    for name, matrix in matrices.items():
        fig = loss_table_figure(generated, real, matrix, name)
        written.append(atomic_write(out_dir / f"table_{name}.png", lambda f: fig.savefig(f, format="png", dpi=100)))
        plt.close(fig)
    markdown = "\n\n".join(loss_table_markdown(m, name) for name, m in matrices.items())
    written.append(atomic_write_text(out_dir / "tables.md", markdown + "\n"))
    return written


# ---------------------------------------------------------------------------------------------
# Training curves (the demo GIF is written by images.save_gif).

def training_curves(stats: list[dict], keys=("loss", "val_loss", "val_top5", "val_ssim")):
    """One small panel per stats.jsonl key against the epoch."""
    keys = [k for k in keys if any(k in s for s in stats)]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        rows = [(s["epoch"], s[key]) for s in stats if key in s]
        ax.plot(*zip(*rows), marker="o", ms=3)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return fig
