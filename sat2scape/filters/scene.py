"""Scene filter: keep photos that Places365 sees as mid-latitude summer nature.

A ResNet18 (default) or ResNet50 trained on Places365 by its authors (CSAIL) gives a softmax over
365 scene classes. A photo is kept when the summed probability of the whitelisted classes is at
least the threshold: summing lets "forest path 0.3 + forest road 0.3" count as nature, where a
top-1 rule would reject it.

The official checkpoints are `{"epoch", "arch", "state_dict", ...}` dicts saved from a
DataParallel model, so every key starts with `module.`; the loader strips it. They are read with
`torch.load(weights_only=True)`: tensors and plain containers only, no code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torchvision import models, transforms
from tqdm.auto import tqdm

from ..runtime import pick_device
from . import weights as weight_files
from .quality import ImageError, open_rgb

# The official CSAIL files. CSAIL publishes no checksums; these sha256 values are the ones pinned
# by several independent projects for the same URLs (they agree, and one records checking the
# bytes served by places2.csail.mit.edu: 45,506,139 for ResNet18). This project has not yet
# downloaded the files itself (written offline): the first download will confirm or refuse them.
WEIGHTS = {
    "resnet18": ("http://places2.csail.mit.edu/models_places365/resnet18_places365.pth.tar",
                 "2f4759217d470da2b803f8f66cd4488a066406b555a5fb95ee9a4663f9f05588"),
    "resnet50": ("http://places2.csail.mit.edu/models_places365/resnet50_places365.pth.tar",
                 "46529c86902bd0cfb0ea562a30b2850c28d2620d96282b3db9c318e1d774f6c5"),
}

# Summer landscapes of the mid-latitudes: fields, meadows, forests, rivers and lakes, the
# countryside. Left out on purpose: snow and ice, deserts, tropics (rainforest, bamboo), the sea
# coast, mountains above the tree line, and anything built or indoors. Places365 has no "meadow"
# class; meadows land in field/wild, pasture and hayfield.
WHITELIST = (
    "/c/corn_field", "/c/creek", "/f/farm", "/f/field/cultivated", "/f/field/wild", "/f/field_road",
    "/f/forest/broadleaf", "/f/forest_path", "/f/forest_road", "/h/hayfield", "/l/lake/natural",
    "/m/marsh", "/o/orchard", "/p/pasture", "/p/pond", "/r/river", "/s/swamp", "/t/tree_farm",
    "/v/valley", "/v/vegetable_garden", "/w/wheat_field",
)

# As the official demo (run_placesCNN_basic.py): shorter side to 256, centre 224, ImageNet stats.
# max_size only matters past 4:1 (rejected by the quality stage anyway): a 2x2000 sliver would
# otherwise become a 256x256000 tensor.
PREPROCESS = transforms.Compose([
    transforms.Resize(256, max_size=1024),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])


@lru_cache(maxsize=1)
def categories() -> tuple[str, ...]:
    """The 365 official class names (`/a/airfield`, ...), in output order."""
    text = resources.files(__package__).joinpath("categories_places365.txt").read_text()
    names = []
    for i, line in enumerate(text.splitlines()):
        name, index = line.rsplit(" ", 1)
        assert int(index) == i, f"categories_places365.txt line {i + 1} has index {index}"
        names.append(name)
    assert len(names) == 365, len(names)
    return tuple(names)


def whitelist_indices(whitelist=WHITELIST) -> list[int]:
    index = {name: i for i, name in enumerate(categories())}
    unknown = [name for name in whitelist if name not in index]
    if unknown:
        raise ValueError(f"not Places365 classes: {unknown}; see sat2scape/filters/categories_places365.txt")
    return [index[name] for name in whitelist]


def load_model(arch: str = "resnet18", weights: str | os.PathLike | None = None,
               sha256: str | None = None) -> torch.nn.Module:
    """A Places365 classifier in eval mode.

    `weights=None` uses the official file, downloaded to the cache and checked against its
    sha256. A local file is used as given (checked only if `sha256` is passed).
    """
    if arch not in WEIGHTS:
        raise ValueError(f"arch must be one of {sorted(WEIGHTS)}, not {arch!r}")
    url, official_sha256 = WEIGHTS[arch]
    if weights is None:
        path = weight_files.fetch(url, official_sha256)
    else:
        path = Path(weights)
        if not path.exists():
            raise weight_files.unavailable(url, path, "the file given does not exist")
        weight_files.verify(path, sha256)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint.get("state_dict", checkpoint)  # also accept a bare state dict
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = getattr(models, arch)(num_classes=365)
    model.load_state_dict(state)
    return model.eval()


def random_checkpoint(path: str | os.PathLike, arch: str = "resnet18", favour: str | None = None,
                      seed: int = 0) -> Path:
    """A checkpoint in the official format with random weights, for tests and benchmarks.

    `favour` names a class that then wins on every image (its fc bias dominates), so that the
    whitelist rule can be checked without the real weights.
    """
    torch.manual_seed(seed)
    model = getattr(models, arch)(num_classes=365)
    if favour is not None:
        with torch.no_grad():
            model.fc.weight.zero_()
            model.fc.bias.zero_()
            model.fc.bias[categories().index(favour)] = 20.0
    state = {f"module.{k}": v for k, v in model.state_dict().items()}  # as saved from DataParallel
    torch.save({"epoch": 90, "arch": arch, "state_dict": state, "best_prec1": 0.0}, path)
    return Path(path)



def _load(path) -> tuple[torch.Tensor | None, str | None]:
    try:
        return PREPROCESS(open_rgb(path)), None
    except ImageError as e:
        return None, str(e)


@torch.inference_mode()
def classify(model: torch.nn.Module, paths, batch_size: int, device: str) -> Iterator[tuple[np.ndarray | None, str | None]]:
    """Per path, in order: the softmax over the 365 classes, or None and why the file is unreadable."""
    paths = list(paths)
    dev = pick_device(device)
    model = model.to(dev)
    with ThreadPoolExecutor(4) as pool:  # PIL decodes without the GIL: a batch's files load in parallel
        for start in tqdm(range(0, len(paths), batch_size), desc="scene", unit="batch"):
            loaded = list(pool.map(_load, paths[start:start + batch_size]))
            batch = [x for x, _ in loaded if x is not None]
            probs = iter(torch.softmax(model(torch.stack(batch).to(dev)).float(), dim=1).cpu().numpy()
                         if batch else [])
            for x, error in loaded:
                yield (next(probs) if x is not None else None), error


def decide(probs: np.ndarray | None, error: str | None, whitelist_idx: list[int],
           threshold: float) -> tuple[bool, str, float | None]:
    """Keep when the whitelist's summed probability reaches `threshold`; reason names the top class."""
    if error is not None:
        return False, error, None
    names = categories()
    top = int(np.argmax(probs))
    score = float(probs[whitelist_idx].sum())
    reason = f"top {names[top]} {probs[top]:.2f}"
    if score < threshold:
        return False, f"{reason}; summer nature {score:.2f} < {threshold}", round(score, 4)
    return True, reason, round(score, 4)


def judge(paths, arch: str = "resnet18", weights=None, whitelist=WHITELIST, threshold: float = 0.5,
          batch_size: int = 32, device: str = "auto", model=None) -> list[tuple[bool, str, float | None]]:
    """(keep, reason, score) per path; the score is the whitelist probability."""
    idx = whitelist_indices(whitelist)
    model = model if model is not None else load_model(arch, weights)
    return [decide(p, e, idx, threshold) for p, e in classify(model, paths, batch_size, device)]
