"""People filter: real photos without people pass, the astronaut portrait is rejected."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sat2scape.filters import people, weights
from test_filters_quality import real_photos

data = pytest.importorskip("skimage.data", reason="scikit-image ships the astronaut photo")


def test_real_photos_have_nobody_in_them(real_samples):
    photos = [p for p in real_photos(real_samples) if "dayton" not in p.parts]  # rural views; cuts test time
    results = people.judge(photos)
    found = {p.name: reason for p, (keep, reason, _) in zip(photos, results) if not keep}
    assert not found


def test_astronaut_is_rejected_by_the_face_detector(tmp_path, real_samples):
    astronaut = Image.fromarray(data.astronaut())
    landscape = Image.open(real_samples / "nature" / "Dune.jpg").convert("RGB")
    landscape.paste(astronaut.resize((120, 120)), (300, 150))  # a small portrait inside a landscape
    cases = {"astronaut.jpg": astronaut, "small.jpg": astronaut.resize((200, 200)), "pasted.jpg": landscape}
    for name, im in cases.items():
        im.save(tmp_path / name, quality=92)
    results = people.judge([tmp_path / name for name in cases])
    for name, (keep, reason, score) in zip(cases, results):
        assert not keep and "face" in reason and score >= 1, (name, reason)


def test_detectors_survive_any_image_size():
    rng = np.random.default_rng(0)
    for w, h in [(1, 1), (96, 64), (63, 127), (64, 128), (2, 900), (900, 2)]:  # OpenCV's HOG crashed on 96x64
        people.detect_opencv(Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))


def test_rcnn_without_weights_offline_names_the_url_and_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("SAT2SCAPE_OFFLINE", "1")
    with pytest.raises(weights.WeightsUnavailable) as e:
        people.judge([tmp_path / "x.jpg"], detector="rcnn")
    assert "https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth" in str(e.value)
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "fasterrcnn_resnet50_fpn_v2_coco-dd69338a.pth") in str(e.value)


def test_rcnn_path_runs(real_samples):
    """The Faster R-CNN code path with an untrained model; the small MobileNet variant of the same
    detector API keeps this fast (no weights can be downloaded here)."""
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=91).eval()
    [(keep, reason, score)] = people.judge([real_samples / "nature" / "Dune.jpg"], detector="rcnn",
                                           rcnn_threshold=1.01, model=model, device="cpu")
    assert keep and reason == "" and 0 <= score <= 1
