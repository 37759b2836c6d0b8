"""Manual review: a page of thumbnails with keep/reject toggles, saved to review.csv.

In the notebook: `review_widget("data/vk")`. By default it shows the photos the automatic stages
kept and that nobody has reviewed yet, so a review can stop and resume at any time. Each
"Save page" writes that page's decisions to review.csv atomically (a decision made again
replaces the old one). `which="rejected"` pages through the automatic rejects instead, to rescue
false rejects: a review decision is final (see manifest.kept_photo_ids). Run the funnel's
`review` stage afterwards to record the decisions in filter.csv and the report.

`contact_sheet()` writes a static HTML page of the kept and the rejected photos (grouped by the
stage that rejected them, with the reason), thumbnails embedded, for quick browsing.
"""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .. import manifest
from ..files import atomic_write_text
from .results import STAGES, status
from .quality import jpeg_bytes, thumbnail


def save(dataset: str | Path, decisions: dict[str, bool]) -> Path:
    """Merge {photo_id: keep} into review.csv, replacing earlier decisions on the same photos."""
    review = manifest.read(dataset, "review.csv", missing_ok=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    new = pd.DataFrame({"photo_id": list(decisions), "keep": list(decisions.values()), "reviewed_at": now})
    review = pd.concat([review[~review["photo_id"].isin(decisions)], new], ignore_index=True)
    return manifest.write(dataset, "review.csv", review)


def candidates(dataset: str | Path, which: str = "kept", include_reviewed: bool = False) -> pd.DataFrame:
    """Photos to review: kept ("kept") or rejected ("rejected") by the automatic stages, or "all".

    Columns: photo_id, path, stage and reason (of the automatic reject), and `keep` (the review
    decision so far, or None).
    """
    if which not in ("kept", "rejected", "all"):
        raise ValueError(f"which must be 'kept', 'rejected' or 'all', not {which!r}")
    photos = status(dataset)
    auto_rejected = (photos["stage"] != "") & (photos["stage"] != "review")
    review = manifest.read(dataset, "review.csv", missing_ok=True)
    decided = dict(zip(review["photo_id"], review["keep"]))
    photos["keep"] = photos["photo_id"].map(decided).astype(object).where(photos["photo_id"].isin(decided), None)
    chosen = {"kept": ~auto_rejected, "rejected": auto_rejected, "all": auto_rejected | True}[which]
    if not include_reviewed:
        chosen &= ~photos["photo_id"].isin(decided)
    return photos[chosen].reset_index(drop=True)


def review_widget(dataset: str | Path, which: str = "kept", include_reviewed: bool = False,
                  page_size: int = 24, columns: int = 6, thumb_px: int = 160):
    """An ipywidgets pager over `candidates(...)`; returns the widget to display."""
    import ipywidgets as W

    dataset = Path(dataset)
    todo = candidates(dataset, which, include_reviewed)
    n_pages = max(1, -(-len(todo) // page_size))
    page = {"index": 0, "decisions": {}}
    grid = W.GridBox(layout=W.Layout(grid_template_columns=f"repeat({columns}, {thumb_px + 8}px)"))
    info = W.HTML()
    prev_button = W.Button(description="◀ previous")
    next_button = W.Button(description="next ▶")
    save_button = W.Button(description="Save page, next", button_style="success")

    def tile(row) -> W.VBox:
        # Default: the review decision if there is one, else what the automatic stages decided.
        keep = row.keep if row.keep is not None else row.stage in ("", "review")
        page["decisions"][row.photo_id] = bool(keep)
        toggle = W.ToggleButtons(options=["keep", "reject"], value="keep" if keep else "reject",
                                 style={"button_width": f"{thumb_px // 2 - 4}px"})
        toggle.observe(lambda change, pid=row.photo_id: page["decisions"].__setitem__(pid, change["new"] == "keep"),
                       names="value")
        image = W.Image(value=jpeg_bytes(thumbnail(dataset / row.path, thumb_px)), format="jpeg",
                        layout=W.Layout(width=f"{thumb_px}px", height=f"{thumb_px}px", object_fit="contain"))
        label = html.escape(row.photo_id if not row.reason else f"{row.photo_id}: {row.reason}")
        caption = W.HTML(f'<div title="{label}" style="width:{thumb_px}px;overflow:hidden;'
                         f'white-space:nowrap;text-overflow:ellipsis;font-size:11px">{label}</div>')
        return W.VBox([image, toggle, caption])

    def show(index: int) -> None:
        page["index"] = index = min(max(0, index), n_pages - 1)
        page["decisions"] = {}
        grid.children = [tile(row) for row in todo.iloc[index * page_size:(index + 1) * page_size].itertuples()]
        done = candidates(dataset, which, include_reviewed=True)["keep"].notna().sum()
        info.value = (f"page {index + 1} of {n_pages} &nbsp; {len(todo)} to review, "
                      f"{done} reviewed so far ({which}) &nbsp; saved to {dataset / 'review.csv'}")

    def save_and_next(_) -> None:
        if page["decisions"]:
            save(dataset, page["decisions"])
        show(page["index"] + 1)

    prev_button.on_click(lambda _: show(page["index"] - 1))
    next_button.on_click(lambda _: show(page["index"] + 1))
    save_button.on_click(save_and_next)
    show(0)
    return W.VBox([W.HBox([prev_button, next_button, save_button]), info, grid])


def contact_sheet(dataset: str | Path, out: str | Path | None = None, per_group: int = 200,
                  thumb_px: int = 128) -> Path:
    """An HTML page of kept and rejected thumbnails, base64-embedded; up to `per_group` per group."""
    dataset = Path(dataset)
    out = Path(out) if out else dataset / "report" / "contact_sheet.html"
    photos = status(dataset)
    groups = [("kept", photos[photos["kept"]])]
    rejected = photos[~photos["kept"]]
    groups += [(f"rejected at {stage}", rejected[rejected["stage"] == stage]) for stage in STAGES]
    groups += [("not judged yet", rejected[rejected["stage"] == ""])]
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(dataset.name)}: filter contact sheet</title>",
             "<style>body{font:13px sans-serif}figure{display:inline-block;margin:3px;width:%dpx;vertical-align:top}"
             "img{width:%dpx;height:%dpx;object-fit:contain;background:#eee}figcaption{font-size:10px;"
             "overflow-wrap:anywhere}</style>" % (thumb_px, thumb_px, thumb_px),
             f"<h1>{html.escape(dataset.name)}: {int(photos['kept'].sum())} kept of {len(photos)}</h1>"]
    for title, group in groups:
        if not len(group):
            continue
        parts.append(f"<h2>{html.escape(title)} ({len(group)})</h2>")
        for row in group.head(per_group).itertuples():
            data = base64.b64encode(jpeg_bytes(thumbnail(dataset / row.path, thumb_px), quality=80)).decode()
            caption = html.escape(row.photo_id + (f": {row.reason}" if row.reason else ""))
            parts.append(f"<figure><img src='data:image/jpeg;base64,{data}' title='{caption}'>"
                         f"<figcaption>{caption}</figcaption></figure>")
        if len(group) > per_group:
            parts.append(f"<p>... and {len(group) - per_group} more</p>")
    atomic_write_text(out, "\n".join(parts) + "\n")
    return out
