"""Near-duplicates: the largest copy of a view is kept, the others name it."""

from __future__ import annotations

from PIL import Image, ImageEnhance, ImageFilter

from sat2scape.filters import dedupe


def test_copies_are_rejected_in_favour_of_the_largest(tmp_path, real_samples):
    nature = sorted((real_samples / "nature").glob("*.jpg"))
    dune = Image.open(real_samples / "nature" / "Dune.jpg").convert("RGB")
    copies = {
        "small": dune.resize((dune.width // 2, dune.height // 2)),
        "large": dune.resize((dune.width * 2, dune.height * 2)),
        "brighter": ImageEnhance.Brightness(dune).enhance(1.2),
        "softer": dune.filter(ImageFilter.GaussianBlur(1.5)),
        "recompressed": dune,
    }
    paths = list(nature)
    for name, im in copies.items():
        im.save(tmp_path / f"{name}.jpg", quality=60)
        paths.append(tmp_path / f"{name}.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"")
    paths.append(tmp_path / "broken.jpg")
    ids = [p.stem for p in paths]

    results = dict(zip(ids, dedupe.judge(paths, ids)))
    assert results["large"] == (True, "", 0.0)
    for name in ["Dune", "small", "brighter", "softer", "recompressed"]:
        keep, reason, distance = results[name]
        assert not keep and reason.startswith("near-duplicate of large (distance") and distance <= 8, name
    assert all(results[p.stem][0] for p in nature if p.stem != "Dune")  # different photos all stay
    assert not results["broken"][0] and results["broken"][1].startswith("not a readable image")

    strict = dict(zip(ids, dedupe.judge(paths, ids, radius=0)))
    assert strict["softer"][0] or strict["brighter"][0]  # radius 0: only identical hashes are duplicates
