"""People filter: reject photos with a person or a face in them.

Two detectors:
  opencv  (default, offline) OpenCV's HOG pedestrian detector plus Haar cascades for frontal
          faces, profile faces (both directions), full bodies and upper bodies. Fast on a CPU,
          weak on small or partly hidden people.
  rcnn    torchvision's Faster R-CNN (ResNet50-FPN v2, COCO), class "person". Much more accurate,
          and much slower on a CPU (see benchmarks/filters.py); its weights are downloaded on
          first use.

Defaults were tuned on the real samples: the 12 nature photos and 16 CVUSA/Dayton ground views
pass, the astronaut portrait (skimage) is rejected at full size, at 200 px and pasted small into a
landscape. The stock `frontalface_default` cascade fires on leaf veins (Blinds.jpg) even with 12
neighbours, so faces use `frontalface_alt`. The upper-body cascade fires on a dune (a CMYK copy
of Dune.jpg) with up to 7 neighbours, so the weak cascades need 8 (`weak_min_neighbors`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch

from ..runtime import pick_device
from . import weights as weight_files
from .quality import ImageError, open_rgb

WORK_SIDE = 640  # detect on the photo scaled to this longer side: people smaller than that don't matter

# name -> (cascade file, whether it is one of the weaker cascades that needs more neighbours)
CASCADES = {
    "face": ("haarcascade_frontalface_alt.xml", False),
    "profile face": ("haarcascade_profileface.xml", True),
    "full body": ("haarcascade_fullbody.xml", True),
    "upper body": ("haarcascade_upperbody.xml", True),
}


@lru_cache(maxsize=None)
def _cascade(filename: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / filename))
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not load {filename} from {cv2.data.haarcascades}")
    return cascade


@lru_cache(maxsize=1)
def _hog() -> cv2.HOGDescriptor:
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def _work_image(im) -> np.ndarray:
    rgb = np.array(im)  # a writable copy: torch.from_numpy warns on PIL's read-only buffer
    h, w = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return rgb


def detect_opencv(im, hog_threshold: float = 0.3, min_neighbors: int = 3, weak_min_neighbors: int = 8,
                  min_size: float = 0.05) -> dict[str, int]:
    """Detections per kind ("person (HOG)", "face", ...) in a PIL image; empty when nobody is seen.

    `hog_threshold` is the SVM score a HOG window must reach; `min_size` is the smallest face
    searched for, as a fraction of the image's shorter side (twice that for bodies and profiles).
    """
    rgb = _work_image(im)
    grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    side = max(12, round(min_size * min(grey.shape)))
    found = {}
    if grey.shape[0] >= 128 and grey.shape[1] >= 64:  # HOG's window; OpenCV crashes on smaller images
        _, hog_weights = _hog().detectMultiScale(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), winStride=(8, 8),
                                                 padding=(8, 8), scale=1.05)
        hits = int((np.ravel(hog_weights) >= hog_threshold).sum()) if len(hog_weights) else 0
        if hits:
            found["person (HOG)"] = hits
    for name, (filename, weak) in CASCADES.items():
        images = [grey, cv2.flip(grey, 1)] if name == "profile face" else [grey]  # it sees one side only
        # The weak cascades misfire and cost most at small scales, so they look for people twice as big.
        size = 2 * side if weak else side
        n = sum(len(_cascade(filename).detectMultiScale(
            g, scaleFactor=1.15, minNeighbors=weak_min_neighbors if weak else min_neighbors,
            minSize=(size, size))) for g in images)
        if n:
            found[name] = n
    return found


# Faster R-CNN, the accurate option.
RCNN_CLASS_PERSON = 1  # COCO category index in torchvision's detection models


def load_rcnn(weights: str | os.PathLike | None = None) -> torch.nn.Module:
    """Faster R-CNN ResNet50-FPN v2 with COCO weights: torchvision's file, fetched into torch's hub cache."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_V2_Weights, fasterrcnn_resnet50_fpn_v2

    spec = FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1
    if weights is None:
        filename = spec.url.rsplit("/", 1)[-1]
        prefix = filename.rsplit("-", 1)[-1].split(".")[0]  # torchvision names files by a sha256 prefix
        path = weight_files.fetch(spec.url, prefix, Path(torch.hub.get_dir()) / "checkpoints" / filename)
    else:
        path = Path(weights)
        if not path.exists():
            raise weight_files.unavailable(spec.url, path, "the file given does not exist")
    model = fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=91)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


@torch.inference_mode()
def detect_rcnn(model: torch.nn.Module, im, threshold: float = 0.7) -> tuple[int, float]:
    """(number of people scoring >= threshold, best person score) in a PIL image."""
    device = next(model.parameters()).device
    x = torch.from_numpy(_work_image(im)).permute(2, 0, 1).float().div(255)
    out = model([x.to(device)])[0]
    scores = out["scores"][out["labels"] == RCNN_CLASS_PERSON].cpu()
    return int((scores >= threshold).sum()), float(scores.max()) if len(scores) else 0.0


def judge(paths, detector: str = "opencv", rcnn_threshold: float = 0.7, rcnn_weights=None,
          device: str = "auto", model=None, **opencv_args) -> list[tuple[bool, str, float | None]]:
    """(keep, reason, score) per path. Score: detections found (opencv) or best person score (rcnn).

    `opencv_args` go to `detect_opencv` (hog_threshold, min_neighbors, ...).
    """
    if detector not in ("opencv", "rcnn"):
        raise ValueError(f"detector must be 'opencv' or 'rcnn', not {detector!r}")
    if detector == "rcnn":
        model = (model if model is not None else load_rcnn(rcnn_weights)).to(pick_device(device))
    out = []
    for path in paths:
        try:
            im = open_rgb(path)
        except ImageError as e:
            out.append((False, str(e), None))
            continue
        if detector == "opencv":
            found = detect_opencv(im, **opencv_args)
            reason = "people: " + ", ".join(f"{kind} x{n}" for kind, n in found.items())
            out.append((not found, reason if found else "", float(sum(found.values()))))
        else:
            n, best = detect_rcnn(model, im, rcnn_threshold)
            out.append((n == 0, f"people: {n} person(s), best score {best:.2f}" if n else "", round(best, 4)))
    return out
