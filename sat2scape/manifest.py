"""The dataset folder's CSV files: their columns, validation, and atomic writes.

A dataset folder `data/<name>/` is the contract between pipeline stages:

    photos.csv   written by a photo source (world, vk, commons)
    filter.csv   written by the filter funnel, one row per photo per stage
    review.csv   written by the manual review
    pairs.csv    written by a satellite source (or the world), the training manifest

Every reader goes through `read()`, which checks the columns and names the file and the
field when something is wrong.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import pandas as pd

from .files import atomic_write_text

COLUMNS: dict[str, list[str]] = {
    "photos.csv": [
        "photo_id", "source", "lat", "lon", "taken_at", "url", "path",
        "width", "height", "sha256", "license", "author", "heading",
    ],
    "filter.csv": ["photo_id", "stage", "keep", "reason", "score"],
    "review.csv": ["photo_id", "keep", "reviewed_at"],
    "pairs.csv": [
        "photo_id", "photo_path", "satellite_path", "lat", "lon", "provider",
        "zoom", "meters_per_pixel", "attribution", "split", "heading", "satellite_wide_path",
    ],
}

# Columns a file written before they existed may lack: read() adds them empty.
#   heading              the photo's camera heading, degrees clockwise from north (empty: unknown)
#   satellite_wide_path  a wider tile around the same point (geometry.wide_tile_size), so that it
#                        can be turned to the heading and cropped without empty corners
OPTIONAL: dict[str, list[str]] = {"pairs.csv": ["heading", "satellite_wide_path"]}

# Columns that must be present and non-empty in every row.
REQUIRED: dict[str, list[str]] = {
    "photos.csv": ["photo_id", "source", "lat", "lon", "path"],
    "filter.csv": ["photo_id", "stage", "keep"],
    "review.csv": ["photo_id", "keep"],
    "pairs.csv": ["photo_id", "photo_path", "satellite_path", "lat", "lon", "split"],
}

NUMERIC = {"lat", "lon", "width", "height", "heading", "score", "zoom", "meters_per_pixel"}
BOOLEAN = {"keep"}
SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A dataset file is missing, or a column or value in it is wrong."""


def safe_name(photo_id: str) -> str:
    """A photo id made safe as a file name: `vk:123_456` -> `vk_123_456`."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(photo_id)).strip("._")
    if not name:
        raise ManifestError(f"photo_id {photo_id!r} gives an empty file name")
    if len(name) > 150:  # keep under file-system limits, stay unique
        name = name[:130] + "_" + hashlib.sha1(str(photo_id).encode()).hexdigest()[:16]
    return name


def _to_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no"}:
        return False
    raise ValueError(value)


def validate(df: pd.DataFrame, kind: str, source: str | Path = "") -> pd.DataFrame:
    """Check a manifest's columns and values; return it with numeric and bool columns typed."""
    where = str(source) or kind
    if kind not in COLUMNS:
        raise ManifestError(f"unknown manifest kind {kind!r}; expected one of {sorted(COLUMNS)}")
    df = df.assign(**{c: "" for c in OPTIONAL.get(kind, []) if c not in df.columns})
    missing = [c for c in COLUMNS[kind] if c not in df.columns]
    if missing:
        raise ManifestError(
            f"{where}: missing column(s) {missing}; a {kind} needs {COLUMNS[kind]}"
        )
    df = df.copy()
    for col in REQUIRED[kind]:
        empty = df[col].isna() | (df[col].astype(str).str.strip() == "")
        if empty.any():
            row = int(empty.to_numpy().nonzero()[0][0])
            raise ManifestError(f"{where}: row {row + 2}: field {col!r} is empty")
    for col in NUMERIC & set(COLUMNS[kind]):
        converted = pd.to_numeric(df[col].replace("", None), errors="coerce")
        bad = converted.isna() & df[col].notna() & (df[col].astype(str).str.strip() != "")
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise ManifestError(
                f"{where}: row {row + 2}: field {col!r} = {df[col].iloc[row]!r} is not a number"
            )
        df[col] = converted
    for col in BOOLEAN & set(COLUMNS[kind]):
        try:
            df[col] = df[col].map(_to_bool).astype(bool)
        except ValueError as e:
            raise ManifestError(f"{where}: field {col!r} has {e.args[0]!r}; use true/false") from None
    if "lat" in df.columns and len(df):
        if ((df["lat"] < -90) | (df["lat"] > 90)).any() or ((df["lon"] < -180) | (df["lon"] > 180)).any():
            raise ManifestError(f"{where}: lat must be in [-90, 90] and lon in [-180, 180]")
    if kind in ("photos.csv", "pairs.csv") and df["photo_id"].duplicated().any():
        dup = df.loc[df["photo_id"].duplicated(), "photo_id"].iloc[0]
        raise ManifestError(f"{where}: photo_id {dup!r} appears more than once")
    if kind == "pairs.csv" and not df["split"].isin(SPLITS).all():
        bad = df.loc[~df["split"].isin(SPLITS), "split"].iloc[0]
        raise ManifestError(f"{where}: split {bad!r} is not one of {SPLITS}")
    return df


def read(dataset: str | Path, kind: str, missing_ok: bool = False) -> pd.DataFrame:
    """Read and validate `dataset/kind` (e.g. read("data/world", "pairs.csv"))."""
    path = Path(dataset) / kind
    if not path.exists():
        if missing_ok:
            return empty(kind)
        raise ManifestError(
            f"{path} does not exist. Create it with the stage that writes {kind} "
            f"(see `python -m sat2scape --help`)."
        )
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: not a readable CSV ({e})") from None
    return validate(df, kind, path)


def empty(kind: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS[kind]})


def write(dataset: str | Path, kind: str, df: pd.DataFrame) -> Path:
    """Validate and write `dataset/kind` atomically, with the documented column order."""
    path = Path(dataset) / kind
    df = validate(df.reindex(columns=COLUMNS[kind]), kind, path)
    return atomic_write_text(path, df.to_csv(index=False))


def region_split(lat: float, lon: float, cell_km: float = 2.0, seed: int = 0,
                 fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """Assign a point to train/val/test by the region cell it falls in, never at random per photo.

    The earth is cut into cells of about `cell_km` on a side; each cell goes wholly to one split
    by a hash of (seed, cell), so nearby photos (which share a view) never straddle splits.
    """
    km_per_deg_lat = 111.32
    km_per_deg_lon = max(1e-6, 111.32 * math.cos(math.radians(lat)))
    cell = (math.floor(lat * km_per_deg_lat / cell_km), math.floor(lon * km_per_deg_lon / cell_km))
    u = int(hashlib.sha1(f"{seed}:{cell[0]}:{cell[1]}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if u < fractions[0]:
        return "train"
    return "val" if u < fractions[0] + fractions[1] else "test"


def kept_photo_ids(dataset: str | Path) -> list[str] | None:
    """The filter funnel's final keep list, in photos.csv order; None if the funnel has not run.

    A photo is kept when every stage that judged it in filter.csv kept it. A manual decision in
    review.csv is final for the photos it covers: it can reject a photo or rescue a false reject.
    """
    dataset = Path(dataset)
    if not (dataset / "filter.csv").exists():
        return None
    photos = read(dataset, "photos.csv")
    decisions = read(dataset, "filter.csv")
    rejected = set(decisions.loc[~decisions["keep"], "photo_id"])
    judged = set(decisions["photo_id"])
    kept = {pid for pid in photos["photo_id"] if pid in judged and pid not in rejected}
    review = read(dataset, "review.csv", missing_ok=True)
    for pid, keep in zip(review["photo_id"], review["keep"]):
        (kept.add if keep else kept.discard)(pid)
    return [pid for pid in photos["photo_id"] if pid in kept]
