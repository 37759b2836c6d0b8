"""Diagrams drawn from the code itself: layer diagrams traced from the real models, and the two
pipeline figures (inference and training) drawn around real images from a dataset.

Nothing here is hand-maintained: change a layer in models.py and `python -m sat2scape figures`
redraws generator.png, discriminator.png and encoder.png with the new shapes.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..files import atomic_write
from ..models import Discriminator, Encoder, Generator

LAYER_COLOURS = {"ConvTranspose2d": "#7fb3d5", "Conv2d": "#f0b27a", "input": "#d5dbdb"}


def trace_layers(model: nn.Module, example: torch.Tensor) -> list[dict]:
    """Run one forward pass and group the executed leaf modules into blocks: a convolution and
    the normalisation/activation that follow it. Each block records its output shape."""
    executed: list[tuple[nn.Module, tuple]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: executed.append((m, tuple(o.shape[1:]))))
             for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model.eval()(example)
    for h in hooks:
        h.remove()
    blocks = [{"kind": "input", "label": "input", "shape": tuple(example.shape[1:])}]
    for module, shape in executed:
        name = type(module).__name__
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            k, s, p = module.kernel_size[0], module.stride[0], module.padding[0]
            blocks.append({"kind": name, "label": f"{'ConvT' if 'Transpose' in name else 'Conv'} {k}x{k} /{s}",
                           "shape": shape, "extra": []})
        else:
            blocks[-1].setdefault("extra", []).append(
                {"BatchNorm2d": "BN", "ReLU": "ReLU", "LeakyReLU": "LReLU 0.2", "Tanh": "tanh"}.get(name, name))
            blocks[-1]["shape"] = shape
    return blocks


def _shape_text(shape: tuple) -> str:
    return "x".join(str(s) for s in shape) if len(shape) > 1 else f"{shape[0]}"


def layer_diagram(model: nn.Module, example: torch.Tensor, title: str, out: str | Path) -> Path:
    """One box per block: height grows with the spatial size, width with the channel count."""
    blocks = trace_layers(model, example)
    fig, ax = plt.subplots(figsize=(1.55 * len(blocks), 3.4), dpi=110)
    x = 0.0
    centres = []
    for b in blocks:
        c = b["shape"][0]
        hw = b["shape"][1] if len(b["shape"]) > 1 else 1
        h = 0.5 + 2.2 * math.log2(hw + 1) / 8
        w = 0.25 + 0.55 * math.log2(c + 1) / 10
        ax.add_patch(FancyBboxPatch((x, -h / 2), w, h, boxstyle="round,pad=0.02",
                                    fc=LAYER_COLOURS.get(b["kind"], "#d5dbdb"), ec="#34495e", lw=1))
        ax.text(x + w / 2, h / 2 + 0.12, b["label"], ha="center", va="bottom", fontsize=8, weight="bold")
        extra = " + ".join(b.get("extra", []))
        ax.text(x + w / 2, -h / 2 - 0.1, f"{_shape_text(b['shape'])}\n{extra}", ha="center", va="top", fontsize=7.5)
        centres.append((x, x + w))
        x += w + 0.75
    for (_, right), (left, _) in zip(centres, centres[1:]):
        ax.add_patch(FancyArrowPatch((right + 0.04, 0), (left - 0.04, 0), arrowstyle="-|>", mutation_scale=10, color="#555"))
    params = sum(p.numel() for p in model.parameters())
    ax.set_title(f"{title}  ({params / 1e6:.2f}M parameters; shapes are channels x height x width)", fontsize=9)
    ax.set_xlim(-0.3, x - 0.4)
    ax.set_ylim(-2.2, 2.0)
    ax.axis("off")
    return save_figure(fig, out)


def save_figure(fig, out: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically, with fixed metadata so reruns give identical bytes."""
    path = atomic_write(out, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight",
                                                   metadata={"Software": None}))
    plt.close(fig)
    return path


def architecture_diagrams(out_dir: str | Path, nz: int = 4, ngf: int = 64, ndf: int = 64, nef: int = 64) -> list[Path]:
    out_dir = Path(out_dir)
    torch.manual_seed(0)
    image = torch.zeros(1, 3, 128, 128)
    return [
        layer_diagram(Generator(nz, ngf), torch.zeros(1, nz, 1, 1), f"Generator (ngf={ngf})", out_dir / "generator.png"),
        layer_diagram(Discriminator(ndf), image, f"Discriminator (ndf={ndf})", out_dir / "discriminator.png"),
        layer_diagram(Encoder(nz, nef), image, f"Encoder (nef={nef})", out_dir / "encoder.png"),
    ]


# ---------------------------------------------------------------------------------------------
# Pipeline figures

def _node(ax, xy, text, colour="#f0b27a", w=1.5, h=0.8):
    ax.add_patch(FancyBboxPatch((xy[0] - w / 2, xy[1] - h / 2), w, h, boxstyle="round,pad=0.05", fc=colour, ec="#34495e"))
    ax.text(xy[0], xy[1], text, ha="center", va="center", fontsize=9, weight="bold")


def _image(ax, xy, image: np.ndarray, caption: str, size=1.6):
    ax.imshow(image, extent=(xy[0] - size / 2, xy[0] + size / 2, xy[1] - size / 2, xy[1] + size / 2), zorder=2)
    ax.text(xy[0], xy[1] - size / 2 - 0.12, caption, ha="center", va="top", fontsize=8.5)


def _arrow(ax, a, b, text=""):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, color="#555", lw=1.2))
    if text:
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.15, text, ha="center", va="bottom", fontsize=7.5, color="#333")


def _canvas(width, height):
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def generating_figure(tile: np.ndarray, view: np.ndarray, z: np.ndarray, out: str | Path) -> Path:
    """Inference: satellite tile -> encoder -> 4 numbers -> generator -> view."""
    fig, ax = _canvas(10, 2.6)
    _image(ax, (0, 0), tile, "satellite tile\n128x128x3")
    _node(ax, (2.1, 0), "Encoder\nE")
    ax.text(4.6, 0, "z = [" + ", ".join(f"{v:+.2f}" for v in z) + "]", ha="center", va="center", fontsize=9,
            bbox=dict(boxstyle="round", fc="#d5f5e3", ec="#34495e"))
    _node(ax, (7.1, 0), "Generator\nG", colour="#7fb3d5")
    _image(ax, (9.4, 0), view, "predicted view\n128x128x3")
    for a, b in [(0.85, 1.3), (2.9, 3.3), (5.9, 6.3), (7.9, 8.55)]:
        _arrow(ax, (a, 0), (b, 0))
    ax.set_xlim(-1, 10.4)
    ax.set_ylim(-1.4, 1.1)
    return save_figure(fig, out)


def training_figure(photos: list[np.ndarray], tile: np.ndarray, photo: np.ndarray, out: str | Path) -> Path:
    """The two training stages: (1) a DCGAN on photos alone; (2) the encoder against frozen G."""
    fig, ax = _canvas(10, 5.2)
    ax.text(-0.9, 2.05, "Stage 1: DCGAN on ground photos", fontsize=10, weight="bold")
    ax.text(0, 1.1, "z ~ N(0, I)\n4 numbers", ha="center", va="center", fontsize=9,
            bbox=dict(boxstyle="round", fc="#d5f5e3", ec="#34495e"))
    _node(ax, (2.2, 1.1), "G", colour="#7fb3d5", w=0.9)
    _node(ax, (5.6, 1.1), "D", w=0.9)
    for i, p in enumerate(photos[:3]):
        _image(ax, (3.4 + 0.75 * i, 0.35), p, "", size=0.7)
    ax.text(4.15, -0.15, "real photos", ha="center", va="top", fontsize=8)
    ax.text(7.4, 1.1, "real / fake?\nBCE, Adam, StepLR on G", ha="center", va="center", fontsize=8.5)
    _arrow(ax, (0.8, 1.1), (1.7, 1.1))
    _arrow(ax, (2.7, 1.1), (5.1, 1.1), "fake photos")
    _arrow(ax, (4.9, 0.55), (5.3, 0.8))
    _arrow(ax, (6.1, 1.1), (6.5, 1.1))

    ax.text(-0.9, -0.75, "Stage 2: encoder into the frozen generator", fontsize=10, weight="bold")
    _image(ax, (0, -2.1), tile, "satellite tile", size=1.3)
    _node(ax, (2.0, -2.1), "E", w=0.9)
    _node(ax, (4.0, -2.1), "G (frozen)", colour="#aeb6bf", w=1.5)
    ax.text(6.4, -2.1, "loss( G(E(tile)), photo )\nmse | ssim | ms-ssim | custom", ha="center", va="center", fontsize=8.5,
            bbox=dict(boxstyle="round", fc="#fdebd0", ec="#34495e"))
    _image(ax, (9.0, -2.1), photo, "photo taken there", size=1.3)
    _arrow(ax, (0.7, -2.1), (1.5, -2.1))
    _arrow(ax, (2.5, -2.1), (3.2, -2.1), "z")
    _arrow(ax, (4.8, -2.1), (5.1, -2.1))
    _arrow(ax, (8.3, -2.1), (7.75, -2.1))
    ax.set_xlim(-1, 9.8)
    ax.set_ylim(-3.1, 2.4)
    return save_figure(fig, out)
