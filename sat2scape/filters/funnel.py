"""The filter funnel: from raw geotagged photos to clean summer landscapes.

    python -m sat2scape filter data/<name> [--stages geotag,scene,people,quality,dedupe,review]

Stages run in this order; each sees only the photos that every earlier stage kept, so the
expensive ones (the scene CNN, the people detectors) run on fewer photos:

    geotag   lat/lon valid, and not 0,0 (the default of a camera without a fix)
    scene    Places365 whitelist of summer-nature scenes           (scene.py)
    people   HOG + Haar cascades, or Faster R-CNN                  (people.py)
    quality  size, aspect, blur, exposure, greyscale; unreadable   (quality.py)
    dedupe   perceptual-hash near-duplicates, the largest kept      (dedupe.py)
    review   the decisions in review.csv, made in the notebook     (review.py)

Each stage writes its own rows to filter.csv (`photo_id, stage, keep, reason, score`). Rerunning a
stage (e.g. with another threshold) replaces that stage's rows and nothing else, and the same run
gives the same file. filter.csv is rewritten after every stage, so a crash keeps finished stages.
The final keep list is `manifest.kept_photo_ids(dataset)`.

When a rerun changes which photos reach a later stage, that stage's old rows do not cover the
newcomers; the funnel then says which stages to rerun.

The counts, the per-photo status and the stage order live in results.py, which the report and
the review read too; the report is written from those files, and never imports this module.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from tqdm.auto import tqdm

from .. import config, manifest
from ..files import FolderLocked, atomic_save_image, atomic_write_bytes, folder_lock, sha256_file
from . import dedupe, people, quality, scene
from .quality import open_rgb
from .results import STAGES, counts, sort_decisions, status  # noqa: F401 (status: part of the API)
from .weights import WeightsChecksumError, WeightsUnavailable


def _default(fn, name):
    """A stage's own default for one of its thresholds: tuned and explained where it is used."""
    return inspect.signature(fn).parameters[name].default


@dataclass
class FilterConfig:
    stages: str = ",".join(STAGES)       # which stages to (re)run, comma-separated
    report: bool = True                  # write figures and tables to <dataset>/report/
    device: str = "auto"                 # for the CNNs: auto = cuda when available
    # scene
    scene_arch: str = _default(scene.judge, "arch")            # resnet18 | resnet50
    weights: str = ""                    # a local Places365 checkpoint; "" = the official file
    whitelist: str = ""                  # comma-separated Places365 names; "" = scene.WHITELIST
    scene_threshold: float = _default(scene.judge, "threshold")  # min summed whitelist probability
    batch_size: int = _default(scene.judge, "batch_size")
    # people
    people_detector: str = _default(people.judge, "detector")  # opencv | rcnn
    hog_threshold: float = _default(people.detect_opencv, "hog_threshold")
    min_neighbors: int = _default(people.detect_opencv, "min_neighbors")
    weak_min_neighbors: int = _default(people.detect_opencv, "weak_min_neighbors")
    min_person_size: float = _default(people.detect_opencv, "min_size")  # fraction of the shorter side
    rcnn_threshold: float = _default(people.judge, "rcnn_threshold")
    rcnn_weights: str = ""               # a local Faster R-CNN state dict; "" = torchvision's file
    # quality
    min_side: int = _default(quality.problems, "min_side")
    max_aspect: float = _default(quality.problems, "max_aspect")
    min_sharpness: float = _default(quality.problems, "min_sharpness")
    min_brightness: float = _default(quality.problems, "min_brightness")
    max_brightness: float = _default(quality.problems, "max_brightness")
    max_clipped: float = _default(quality.problems, "max_clipped")
    min_chroma: float = _default(quality.problems, "min_chroma")
    min_hue_spread: float = _default(quality.problems, "min_hue_spread")
    # dedupe
    hash_radius: int = _default(dedupe.judge, "radius")



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset folder with photos.csv, e.g. data/vk")
    config.add_config_arguments(parser, FilterConfig)


def run(args: argparse.Namespace) -> int:
    cfg = config.config_from_args(FilterConfig, args)
    try:
        table = filter_dataset(args.dataset, cfg)
    except (WeightsUnavailable, WeightsChecksumError, FolderLocked) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(table.to_string())
    return 0


def filter_dataset(dataset: str | Path, cfg: FilterConfig | None = None, **overrides) -> pd.DataFrame:
    """Run the requested stages on `dataset`, update filter.csv, and return the funnel counts."""
    dataset = Path(dataset)
    cfg = replace(cfg or FilterConfig(), **overrides)
    requested = [s.strip() for s in cfg.stages.split(",") if s.strip()]
    unknown = sorted(set(requested) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; the stages are {list(STAGES)}")
    photos = manifest.read(dataset, "photos.csv")  # before the lock, so a wrong path creates no folder
    with folder_lock(dataset, "filter"):  # no collector may rewrite photos.csv under the funnel
        decisions = manifest.read(dataset, "filter.csv", missing_ok=True)
        for stage in STAGES:
            if stage not in requested:
                continue
            alive = survivors(photos, decisions, STAGES[:STAGES.index(stage)])
            print(f"{stage}: {len(alive)} photos")
            results = _judge(stage, alive, dataset, cfg) if len(alive) else []
            rows = pd.DataFrame(results, columns=["keep", "reason", "score"])
            rows.insert(0, "photo_id", alive["photo_id"].to_numpy())
            rows.insert(1, "stage", stage)
            decisions = sort_decisions(pd.concat([decisions[decisions["stage"] != stage], rows]), photos)
            manifest.write(dataset, "filter.csv", decisions)
        _warn_uncovered(photos, decisions)
        if cfg.report:
            from . import report  # matplotlib, only when a report is asked for

            report.write(dataset)
        return counts(dataset)


def survivors(photos: pd.DataFrame, decisions: pd.DataFrame, stages) -> pd.DataFrame:
    """The photos that no decision of `stages` rejected, in photos.csv order."""
    judged = decisions[decisions["stage"].isin(list(stages))]
    rejected = set(judged.loc[~judged["keep"].astype(bool), "photo_id"])
    return photos[~photos["photo_id"].isin(rejected)]


def _judge(stage: str, alive: pd.DataFrame, dataset: Path, cfg: FilterConfig) -> list:
    """(keep, reason, score) for each photo in `alive`, by one stage."""
    paths = [dataset / p for p in alive["path"]]
    progress = lambda: tqdm(paths, desc=stage, unit="photo")  # noqa: E731
    if stage == "geotag":
        return [geotag(lat, lon) for lat, lon in zip(alive["lat"], alive["lon"])]
    if stage == "scene":
        whitelist = [s.strip() for s in cfg.whitelist.split(",") if s.strip()] or scene.WHITELIST
        return scene.judge(paths, arch=cfg.scene_arch, weights=cfg.weights or None, whitelist=whitelist,
                           threshold=cfg.scene_threshold, batch_size=cfg.batch_size, device=cfg.device)
    if stage == "people":
        return people.judge(progress(), detector=cfg.people_detector, hog_threshold=cfg.hog_threshold,
                            min_neighbors=cfg.min_neighbors, weak_min_neighbors=cfg.weak_min_neighbors,
                            min_size=cfg.min_person_size, rcnn_threshold=cfg.rcnn_threshold,
                            rcnn_weights=cfg.rcnn_weights or None, device=cfg.device)
    if stage == "quality":
        return quality.judge(progress(), min_side=cfg.min_side,
                             max_aspect=cfg.max_aspect, min_sharpness=cfg.min_sharpness,
                             min_brightness=cfg.min_brightness, max_brightness=cfg.max_brightness,
                             max_clipped=cfg.max_clipped, min_chroma=cfg.min_chroma,
                             min_hue_spread=cfg.min_hue_spread)
    if stage == "dedupe":
        return dedupe.judge(progress(), alive["photo_id"], radius=cfg.hash_radius)
    if stage == "review":
        review = manifest.read(dataset, "review.csv", missing_ok=True)
        decided = dict(zip(review["photo_id"], review["keep"]))
        return [(decided.get(pid, True), review_reason(decided.get(pid)), None) for pid in alive["photo_id"]]
    raise ValueError(stage)


def geotag(lat: float, lon: float) -> tuple[bool, str, None]:
    if not (np.isfinite(lat) and np.isfinite(lon)):
        return False, "no geotag", None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return False, f"invalid geotag {lat}, {lon}", None
    if abs(lat) < 1e-6 and abs(lon) < 1e-6:
        return False, "geotag 0,0: a missing position, not a place", None
    return True, "", None


def review_reason(keep: bool | None) -> str:
    return {None: "pending review", True: "kept in review", False: "rejected in review"}[keep]


def _warn_uncovered(photos: pd.DataFrame, decisions: pd.DataFrame) -> None:
    """Name the stages whose rows miss photos that now reach them (after an earlier stage's rerun)."""
    stale = []
    for i, stage in enumerate(STAGES):
        rows = decisions[decisions["stage"] == stage]
        if len(rows):
            alive = survivors(photos, decisions, STAGES[:i])
            missing = int((~alive["photo_id"].isin(rows["photo_id"])).sum())
            if missing:
                stale.append(f"{stage} ({missing} photos)")
    if stale:
        print(f"warning: photos reach stages that have not judged them: {', '.join(stale)}; "
              f"rerun those with --stages so they are not kept unchecked", file=sys.stderr)


# A dataset folder from image files: for tests, benchmarks and the notebook's demo.

def dataset_from_images(out_dir: str | Path, images: dict, source: str = "local", seed: int = 0,
                        centre: tuple[float, float] = (55.75, 37.62)) -> Path:
    """Write `images` ({name: PIL image or file path}) as a dataset with photos.csv.

    Files are copied byte for byte (so broken ones stay broken); PIL images are saved as JPEG.
    Positions are scattered about `centre` (Moscow) from `seed`.
    """
    out_dir = Path(out_dir)
    (out_dir / "photos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for name, image in images.items():
        photo_id = f"{source}:{name}"
        suffix = Path(image).suffix.lower() if not isinstance(image, Image.Image) else ".jpg"
        rel = Path("photos") / f"{manifest.safe_name(photo_id)}{suffix or '.jpg'}"
        if isinstance(image, Image.Image):
            atomic_save_image(out_dir / rel, image.convert("RGB"), quality=92)
        else:
            atomic_write_bytes(out_dir / rel, Path(image).read_bytes())
        try:
            with Image.open(out_dir / rel) as im:
                width, height = im.size
        except Exception:  # a broken file keeps empty sizes; the funnel will say why
            width = height = ""
        lat, lon = centre + rng.normal(0, 0.5, 2)
        rows.append(dict(photo_id=photo_id, source=source, lat=round(lat, 6), lon=round(lon, 6),
                         taken_at="2019-07-01T12:00:00", url="", path=rel.as_posix(), width=width,
                         height=height, sha256=sha256_file(out_dir / rel), license="", author="", heading=""))
    manifest.write(out_dir, "photos.csv", pd.DataFrame(rows))
    return out_dir


def synthetic_landscape(seed: int, size: tuple[int, int] = (512, 384)) -> Image.Image:
    """A crude summer view (sky, tree line, textured meadow), for when no real photos are at hand."""
    rng = np.random.default_rng(seed)
    w, h = size
    y = np.linspace(0, 1, h)[:, None, None]
    horizon = int(h * rng.uniform(0.35, 0.55))
    sky = np.array([90, 150, 230]) + (np.array([200, 225, 250]) - [90, 150, 230]) * y / 0.6
    img = np.broadcast_to(sky, (h, w, 3)).copy()
    trees = horizon - np.abs(np.cumsum(rng.normal(0, 2.5, w))) % (h * 0.15)  # a ragged tree line
    rows = np.arange(h)[:, None]
    img[(rows >= trees[None, :]) & (rows < horizon)] = [40, 80, 35]
    ground = np.array([90, 150, 50]) * rng.uniform(0.8, 1.1, 3)
    img[horizon:] = ground + rng.normal(0, 18, (h - horizon, w, 1))  # grass texture keeps it sharp
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def demo_dataset(out_dir: str | Path, real_samples: str | Path | None = None, n: int = 12) -> Path:
    """A small dataset that gives every stage something to do.

    `n` summer photos (the real nature samples if `real_samples` exists, else synthetic views), plus
    one planted reject per check: a photo at 0,0, a person, a near-duplicate, a blurred, a dark,
    a greyscale, a tiny and an unreadable file.
    """
    out_dir = Path(out_dir)
    nature = sorted((Path(real_samples) / "nature").glob("*.jpg"))[:n] if real_samples else []
    images: dict = {p.stem: p for p in nature} or {f"view{i:02d}": synthetic_landscape(i) for i in range(n)}
    base = open_rgb(nature[0]) if nature else images["view00"]
    try:
        from skimage import data  # a test dependency: ships a public-domain portrait

        images["astronaut"] = Image.fromarray(data.astronaut())
    except ImportError:
        pass
    images["duplicate"] = base.resize((base.width * 4 // 5, base.height * 4 // 5))
    images["blurred"] = base.filter(ImageFilter.GaussianBlur(4)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    images["dark"] = Image.eval(base, lambda v: v // 12).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    images["greyscale"] = base.convert("L").convert("RGB").rotate(180)
    images["tiny"] = base.resize((96, 64))
    images["nowhere"] = synthetic_landscape(99)  # placed at 0,0 below
    broken = out_dir / "broken.jpg"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    images["broken"] = broken
    dataset_from_images(out_dir, images, source="demo")
    broken.unlink()
    photos = manifest.read(out_dir, "photos.csv")
    photos.loc[photos["photo_id"] == "demo:nowhere", ["lat", "lon"]] = 0.0
    manifest.write(out_dir, "photos.csv", photos)
    return out_dir
