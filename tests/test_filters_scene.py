"""Places365 scene filter: checkpoint format, categories, the whitelist rule, and weight handling."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sat2scape.files import sha256_file
from sat2scape.filters import scene, weights

# sha256 of CSAILVision/places365's categories_places365.txt (6833 bytes, no final newline), as
# pinned by several independent projects.
CATEGORIES_SHA256 = "2affba635eb657e7ca95f4e6cc69bd9fac29ef4c32aeb83cafdfcd06ec6a1ea6"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAT2SCAPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAT2SCAPE_OFFLINE", "1")


def test_categories_are_the_official_file():
    path = Path(scene.__file__).with_name("categories_places365.txt")
    assert sha256_file(path) == CATEGORIES_SHA256
    names = scene.categories()
    assert len(names) == 365 and names[0] == "/a/airfield" and names[364] == "/z/zen_garden"
    assert names[141] == "/f/field/wild" and names[151] == "/f/forest_path"
    assert set(scene.WHITELIST) <= set(names)
    with pytest.raises(ValueError, match="/m/meadow"):
        scene.whitelist_indices(["/f/forest_path", "/m/meadow"])


def test_official_checkpoint_format_and_whitelist_rule(tmp_path, real_samples):
    photos = sorted((real_samples / "nature").glob("*.jpg"))[:2]
    nature = scene.random_checkpoint(tmp_path / "nature.pth.tar", favour="/f/forest_path")
    kitchen = scene.load_model("resnet18", scene.random_checkpoint(tmp_path / "kitchen.pth.tar", favour="/k/kitchen"))

    kept = scene.judge(photos, weights=nature, device="cpu")
    assert all(keep for keep, _, _ in kept)
    assert all(reason == "top /f/forest_path 1.00" and score > 0.99 for _, reason, score in kept)

    rejected = scene.judge(photos, model=kitchen, device="cpu")
    assert not any(keep for keep, _, _ in rejected)
    assert all(reason.startswith("top /k/kitchen 1.00; summer nature 0.00 < 0.5") for _, reason, _ in rejected)

    # The rule sums the whitelist: a kitchen-only whitelist keeps what the default one rejects.
    flipped = scene.judge(photos, model=kitchen, whitelist=["/k/kitchen"], device="cpu")
    assert all(keep for keep, _, _ in flipped)


def test_loader_strips_the_dataparallel_prefix_and_keeps_weights(tmp_path):
    import torch

    path = scene.random_checkpoint(tmp_path / "w.pth.tar", favour="/f/forest_path")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["arch"] == "resnet18" and all(k.startswith("module.") for k in raw["state_dict"])
    model = scene.load_model("resnet18", path)
    assert torch.equal(model.conv1.weight, raw["state_dict"]["module.conv1.weight"])
    assert not model.training
    with pytest.raises(ValueError, match="resnet18"):
        scene.load_model("vgg16", path)


def test_unreadable_photo_is_rejected_with_its_reason(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    path = scene.random_checkpoint(tmp_path / "w.pth.tar", favour="/f/forest_path")
    [(keep, reason, score)] = scene.judge([tmp_path / "bad.jpg"], weights=path, device="cpu")
    assert not keep and reason.startswith("not a readable image") and score is None


def test_missing_weights_offline_name_the_url_and_the_path():
    with pytest.raises(weights.WeightsUnavailable) as e:
        scene.load_model("resnet18")
    message = str(e.value)
    assert "http://places2.csail.mit.edu/models_places365/resnet18_places365.pth.tar" in message
    assert str(weights.cache_dir() / "resnet18_places365.pth.tar") in message
    assert "--weights" in message


def test_failed_download_gives_the_same_message(monkeypatch):
    monkeypatch.delenv("SAT2SCAPE_OFFLINE")

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(weights.WeightsUnavailable, match="(?s)download failed.*resnet50_places365.pth.tar"):
        scene.load_model("resnet50")
    assert not list(weights.cache_dir().glob("*"))  # nothing half-written left behind


def test_wrong_sha256_is_a_clear_error(tmp_path):
    path = scene.random_checkpoint(tmp_path / "w.pth.tar")
    with pytest.raises(weights.WeightsChecksumError, match="0000 was expected"):
        scene.load_model("resnet18", path, sha256="0" * 64)
    # A file in the cache that is not the official one is refused too, with what to do.
    cached = weights.cache_dir() / "resnet18_places365.pth.tar"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(path.read_bytes())
    with pytest.raises(weights.WeightsChecksumError, match="Delete it"):
        scene.load_model("resnet18")


def test_download_is_verified_then_cached(tmp_path, monkeypatch):
    monkeypatch.delenv("SAT2SCAPE_OFFLINE")
    payload = b"weights" * 1000
    served = []

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(payload))}

    def serve(url, timeout):
        served.append(url)
        return Response(payload)

    monkeypatch.setattr(urllib.request, "urlopen", serve)
    url = "http://example.org/model.pth"
    with pytest.raises(weights.WeightsChecksumError):
        weights.fetch(url, "f" * 64)
    assert not (weights.cache_dir() / "model.pth").exists()
    digest = hashlib.sha256(payload).hexdigest()
    path = weights.fetch(url, digest)
    assert path == weights.cache_dir() / "model.pth" and path.read_bytes() == payload
    assert weights.fetch(url, digest[:8]) == path and len(served) == 2  # cached: no third download
