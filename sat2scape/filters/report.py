"""The funnel's report, written to `<dataset>/report/`:

    funnel.csv          photos in, kept and rejected per stage, and the final keep list; `with_heading`:
                        how many of the kept photos have a known camera heading
    funnel.png          the same as bars: photos left after each stage
    rejects.png         example rejects of each stage, with their reasons
    scene_classes.png   the most frequent Places365 top classes (when the scene stage ran)
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; the notebook shows the saved PNGs
import matplotlib.pyplot as plt  # noqa: E402

from .. import manifest  # noqa: E402
from ..files import atomic_write, atomic_write_text  # noqa: E402
from .results import STAGES, counts, status  # noqa: E402
from .quality import thumbnail  # noqa: E402
from .scene import WHITELIST  # noqa: E402


def write(dataset: str | Path, examples: int = 6) -> dict[str, Path]:
    """Write every report file that the dataset's filter.csv supports; return their paths.

    Everything comes from the files the funnel wrote (photos.csv, filter.csv, review.csv), read
    through results.py, so the report can be redrawn without rerunning a stage."""
    dataset = Path(dataset)
    out = dataset / "report"
    table = counts(dataset)
    paths = {"table": atomic_write_text(out / "funnel.csv", table.to_csv())}
    paths["funnel"] = _save(funnel_figure(table), out / "funnel.png")
    fig = rejects_figure(dataset, examples)
    if fig is not None:
        paths["rejects"] = _save(fig, out / "rejects.png")
    fig = scene_figure(dataset)
    if fig is not None:
        paths["scene_classes"] = _save(fig, out / "scene_classes.png")
    return paths


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def funnel_figure(table):
    """Horizontal bars: photos left after each stage that ran (a stage judges all that reach it)."""
    labels = list(table.index)
    values = [table["in"].iloc[0]] + [table.loc[s, "kept"] for s in labels[1:]]
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(labels) + 1))
    bars = ax.barh(labels[::-1], values[::-1], color=["#3a7d44"] + ["#8fbc8f"] * (len(labels) - 1))
    for bar, stage in zip(bars, labels[::-1]):
        rejected = table.loc[stage, "rejected"]
        note = f" {int(bar.get_width())}" + (f"  (-{int(rejected)})" if rejected and stage != "final" else "")
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, note, va="center", fontsize=9)
    ax.set_xlabel("photos left")
    final = table.loc["final"]
    ax.set_title(f"Filter funnel ({int(final['with_heading'])} of {int(final['kept'])} kept photos "
                 f"have a camera heading)")
    ax.set_xlim(0, max(values) * 1.25 or 1)
    return fig


def rejects_figure(dataset: Path, examples: int = 6):
    """A row of example rejects (thumbnail + reason) per stage; None when nothing was rejected."""
    photos = status(dataset)
    rows = [(s, photos[(photos["stage"] == s) & ~photos["kept"]].head(examples)) for s in STAGES]  # not rescued
    rows = [(s, r) for s, r in rows if len(r)]
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), examples, figsize=(2 * examples, 2.4 * len(rows)), squeeze=False)
    for (stage, rejects), line in zip(rows, axes):
        line[0].set_ylabel(stage, fontsize=12)
        for ax, row in zip(line, list(rejects.itertuples()) + [None] * examples):
            ax.set_xticks([])
            ax.set_yticks([])
            if row is None:
                ax.axis("off")
                continue
            ax.imshow(thumbnail(dataset / row.path, 192))
            ax.set_title("\n".join(textwrap.wrap(row.reason, 28)[:3]), fontsize=7)
    fig.suptitle("Examples of rejects per stage")
    fig.tight_layout()
    return fig


def scene_figure(dataset: Path, top: int = 25):
    """Bars of the most frequent top-1 scene classes, green for whitelisted ones; None without a scene stage."""
    decisions = manifest.read(dataset, "filter.csv", missing_ok=True)
    reasons = decisions.loc[decisions["stage"] == "scene", "reason"]
    classes = reasons.map(lambda r: (re.match(r"top (\S+)", r) or [None, None])[1]).dropna()
    if not len(classes):
        return None
    freq = classes.value_counts().head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.28 * len(freq) + 1))
    ax.barh(freq.index, freq.to_numpy(), color=["#3a7d44" if c in WHITELIST else "#aaaaaa" for c in freq.index])
    ax.set_xlabel("photos (top-1 class)")
    ax.set_title(f"Places365 top classes of {len(classes)} photos (green: whitelisted by default)")
    return fig
