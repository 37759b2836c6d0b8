"""What the filter funnel decided, read back from the dataset folder's files.

The funnel writes filter.csv; the report, the review widget and the contact sheet read it through
here. This module sits below all of them and imports none of them, so no filter module imports
another in a circle (tests/test_import_graph.py checks the whole package).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import manifest

# The funnel's stages, in the order they run (see funnel.py).
STAGES = ("geotag", "scene", "people", "quality", "dedupe", "review")


def sort_decisions(decisions: pd.DataFrame, photos: pd.DataFrame) -> pd.DataFrame:
    """Stage order, then photos.csv order: the same decisions always give the same file."""
    order = {pid: i for i, pid in enumerate(photos["photo_id"])}
    key = decisions["stage"].map({s: i for i, s in enumerate(STAGES)}).fillna(len(STAGES)) * (len(order) + 1)
    key = key + decisions["photo_id"].map(order).fillna(len(order))
    return decisions.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def status(dataset: str | Path) -> pd.DataFrame:
    """Per photo: `kept` (final, as manifest.kept_photo_ids), the first `stage` that rejected it and why."""
    dataset = Path(dataset)
    photos = manifest.read(dataset, "photos.csv")
    decisions = manifest.read(dataset, "filter.csv", missing_ok=True)
    rejects = sort_decisions(decisions[~decisions["keep"]], photos).drop_duplicates("photo_id")
    out = photos[["photo_id", "path"]].merge(rejects[["photo_id", "stage", "reason"]], on="photo_id", how="left")
    out = out.fillna({"stage": "", "reason": ""})
    out["kept"] = out["photo_id"].isin(set(manifest.kept_photo_ids(dataset) or []))
    return out


def counts(dataset: str | Path) -> pd.DataFrame:
    """Photos in, kept and rejected per stage, with the final keep list at the bottom.

    `with_heading` counts the kept photos whose camera heading is known (photos.csv `heading`):
    only those can have their satellite tile turned to the view's direction.
    """
    dataset = Path(dataset)
    photos = manifest.read(dataset, "photos.csv")
    decisions = manifest.read(dataset, "filter.csv", missing_ok=True)
    has_heading = set(photos.loc[photos["heading"].notna(), "photo_id"])
    rows = {"photos.csv": (len(photos), len(photos), 0, len(has_heading))}
    for stage in STAGES:
        d = decisions[decisions["stage"] == stage]
        if len(d):
            kept = d.loc[d["keep"], "photo_id"]
            rows[stage] = (len(d), len(kept), int((~d["keep"]).sum()), int(kept.isin(has_heading).sum()))
    final = manifest.kept_photo_ids(dataset)
    final = list(photos["photo_id"]) if final is None else final
    rows["final"] = (len(photos), len(final), len(photos) - len(final), len(has_heading.intersection(final)))
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["in", "kept", "rejected", "with_heading"])
    table.index.name = "stage"
    return table
