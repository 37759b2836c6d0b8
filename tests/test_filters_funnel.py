"""The funnel end to end: stage order, rows per stage, reruns, idempotence, the CLI, the report."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import REAL_SAMPLES
from sat2scape import manifest, world
from sat2scape.__main__ import main
from sat2scape.filters import funnel, review, scene
from sat2scape.filters.funnel import FilterConfig
from test_filters_quality import broken_corpus


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch):
    monkeypatch.setenv("SAT2SCAPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SAT2SCAPE_OFFLINE", "1")


@pytest.fixture(scope="module")
def nature_weights(tmp_path_factory):
    """Places365-format weights that see every photo as /f/field/wild (the real ones are unreachable)."""
    return scene.random_checkpoint(tmp_path_factory.mktemp("weights") / "field.pth.tar", favour="/f/field/wild")


def test_world_dataset_passes_scene_and_people(tmp_path, nature_weights):
    """The built-in world's views: nobody is in them, so the people stage keeps them all."""
    dataset = tmp_path / "world"
    world.generate(dataset, 16, world.WorldConfig())
    funnel.filter_dataset(dataset, stages="geotag,scene,people", weights=str(nature_weights), device="cpu",
                          report=False)
    decisions = manifest.read(dataset, "filter.csv")
    assert len(decisions) == 3 * len(manifest.read(dataset, "photos.csv"))
    assert decisions["keep"].all(), decisions[~decisions["keep"]]


def test_the_report_counts_photos_with_a_heading(tmp_path):
    images = {f"view{i}": funnel.synthetic_landscape(i) for i in range(4)}
    images["small"] = funnel.synthetic_landscape(9, size=(120, 90))  # rejected by the quality stage
    dataset = funnel.dataset_from_images(tmp_path / "ds", images)
    photos = manifest.read(dataset, "photos.csv")
    photos["heading"] = [10.0, None, 250.5, None, 90.0]  # view0, view2 and the small one have a heading
    manifest.write(dataset, "photos.csv", photos)
    table = funnel.filter_dataset(dataset, stages="geotag,quality")
    assert table["with_heading"].to_dict() == {"photos.csv": 3, "geotag": 3, "quality": 2, "final": 2}
    assert table.loc["final", ["in", "kept", "rejected"]].tolist() == [5, 4, 1]
    report = pd.read_csv(dataset / "report" / "funnel.csv", index_col="stage")
    assert report["with_heading"].to_dict() == table["with_heading"].to_dict()


def test_rerunning_a_stage_replaces_only_its_rows(tmp_path, real_samples, capsys):
    images = {p.stem: p for p in sorted((real_samples / "nature").glob("*.jpg"))}
    dataset = funnel.dataset_from_images(tmp_path / "ds", images)
    cheap = dict(report=False, stages="geotag,quality,dedupe")
    funnel.filter_dataset(dataset, **cheap)
    before = manifest.read(dataset, "filter.csv")

    funnel.filter_dataset(dataset, report=False, stages="quality", min_side=330)  # 512x320 photos now fail
    after = manifest.read(dataset, "filter.csv")
    for stage in ("geotag", "dedupe"):
        assert after[after["stage"] == stage].equals(before[before["stage"] == stage])
    quality = after[after["stage"] == "quality"]
    assert (~quality["keep"]).sum() == 8 and quality["reason"].str.startswith("too small").sum() == 8

    funnel.filter_dataset(dataset, report=False, stages="dedupe")  # dedupe now sees the 4 taller photos
    capsys.readouterr()
    funnel.filter_dataset(dataset, report=False, stages="quality")  # 8 photos reach dedupe unjudged
    assert "dedupe (8 photos)" in capsys.readouterr().err


def test_demo_dataset_rejects_each_plant_at_its_stage_and_reruns_identically(tmp_path, nature_weights):
    """Real nature photos (or synthetic views) plus one planted reject per check, through every stage."""
    dataset = funnel.demo_dataset(tmp_path / "demo", REAL_SAMPLES if REAL_SAMPLES.is_dir() else None, n=6)
    cfg = FilterConfig(weights=str(nature_weights), device="cpu")
    table = funnel.filter_dataset(dataset, cfg)
    status = funnel.status(dataset).set_index("photo_id")
    expected = {"demo:nowhere": "geotag", "demo:broken": "scene", "demo:blurred": "quality", "demo:dark": "quality",
                "demo:greyscale": "quality", "demo:tiny": "quality", "demo:duplicate": "dedupe"}
    if "demo:astronaut" in status.index:
        expected["demo:astronaut"] = "people"
    assert status.loc[list(expected), "stage"].to_dict() == expected
    assert (status.loc[list(expected), "reason"] != "").all()
    assert status.drop(index=list(expected))["kept"].all()  # the landscapes pass every stage
    assert table.loc["final", "kept"] == len(manifest.kept_photo_ids(dataset)) == len(status) - len(expected)
    for name in ("funnel.csv", "funnel.png", "rejects.png", "scene_classes.png"):
        assert (dataset / "report" / name).stat().st_size > 0

    first = (dataset / "filter.csv").read_bytes()
    funnel.filter_dataset(dataset, cfg, report=False)
    assert (dataset / "filter.csv").read_bytes() == first

    # A review decision is final: it rejects a kept photo and rescues a rejected one.
    kept = manifest.kept_photo_ids(dataset)
    review.save(dataset, {kept[0]: False, "demo:dark": True})
    funnel.filter_dataset(dataset, stages="review", report=False)
    rows = manifest.read(dataset, "filter.csv").query("stage == 'review'").set_index("photo_id")
    assert rows.loc[kept[0], "reason"] == "rejected in review" and not rows.loc[kept[0], "keep"]
    assert rows.loc[kept[1], "reason"] == "pending review" and rows.loc[kept[1], "keep"]
    final = manifest.kept_photo_ids(dataset)
    assert kept[0] not in final and "demo:dark" in final


def test_broken_files_do_not_crash_the_funnel(tmp_path, real_samples, nature_weights):
    from PIL import Image

    corpus = broken_corpus(tmp_path / "files", Image.open(real_samples / "nature" / "Dune.jpg").convert("RGB"))
    corpus["missing"] = corpus["one_pixel"][0], "FileNotFoundError"  # listed in photos.csv, then deleted
    dataset = funnel.dataset_from_images(tmp_path / "ds", {name: path for name, (path, _) in corpus.items()})
    (dataset / "photos" / "local_missing.png").unlink()
    funnel.filter_dataset(dataset, weights=str(nature_weights), device="cpu", report=False)
    first = (dataset / "filter.csv").read_bytes()
    funnel.filter_dataset(dataset, weights=str(nature_weights), device="cpu", report=False)
    assert (dataset / "filter.csv").read_bytes() == first  # error messages too are the same every run
    status = funnel.status(dataset).set_index("photo_id")
    for name, (_, expected) in corpus.items():
        row = status.loc[f"local:{name}"]
        if expected:  # unreadable files stop at the scene stage, the rest at quality
            assert not row["kept"] and row["stage"] in ("scene", "quality") and expected in row["reason"], name
        else:  # the readable odd modes are all the same photo: one is kept, the others are its duplicates
            assert row["kept"] or row["stage"] == "dedupe", (name, row["reason"])


def test_cli(tmp_path, real_samples, nature_weights, capsys):
    images = {p.stem: p for p in sorted((real_samples / "nature").glob("*.jpg"))[:3]}
    dataset = funnel.dataset_from_images(tmp_path / "ds", images)
    assert main(["filter", str(dataset), "--stages", "geotag,quality", "--report", "false"]) == 0
    assert main(["filter", str(dataset), "--stages", "scene"]) == 1
    err = capsys.readouterr().err
    assert "http://places2.csail.mit.edu/models_places365/resnet18_places365.pth.tar" in err
    assert main(["filter", str(dataset), "--stages", "scene", "--weights", str(nature_weights),
                 "--scene-threshold", "0.9", "--device", "cpu"]) == 0
    assert set(manifest.read(dataset, "filter.csv")["stage"]) == {"geotag", "scene", "quality"}
    with pytest.raises(ValueError, match="unknown stage"):
        funnel.filter_dataset(dataset, stages="geotag,faces")
