"""Manual review: decisions merge into review.csv, the review resumes, the widget saves pages."""

from __future__ import annotations

import pytest

from sat2scape import manifest
from sat2scape.filters import funnel, review


@pytest.fixture
def dataset(tmp_path):
    images = {f"view{i}": funnel.synthetic_landscape(i) for i in range(5)}
    images["small"] = funnel.synthetic_landscape(9, size=(120, 90))
    dataset = funnel.dataset_from_images(tmp_path / "ds", images)
    funnel.filter_dataset(dataset, stages="geotag,quality", report=False)
    return dataset


def test_decisions_merge_and_the_review_resumes(dataset):
    assert list(review.candidates(dataset)["photo_id"]) == [f"local:view{i}" for i in range(5)]
    assert list(review.candidates(dataset, "rejected")["photo_id"]) == ["local:small"]

    review.save(dataset, {"local:view0": False, "local:small": True})
    assert len(review.candidates(dataset)) == 4  # reviewed photos are not shown again...
    again = review.candidates(dataset, include_reviewed=True).set_index("photo_id")
    assert len(again) == 5 and again.loc["local:view0", "keep"] is False  # ...unless asked for

    review.save(dataset, {"local:view0": True})  # a new decision replaces the old one
    saved = manifest.read(dataset, "review.csv").set_index("photo_id")
    assert len(saved) == 2 and saved.loc["local:view0", "keep"] and saved.loc["local:small", "keep"]
    assert "local:small" in manifest.kept_photo_ids(dataset)  # rescued from the quality stage


def test_widget_pages_and_saves(dataset):
    widget = review.review_widget(dataset, page_size=2)
    (prev_button, next_button, save_button), info, grid = widget.children[0].children, *widget.children[1:]
    assert len(grid.children) == 2 and "page 1 of 3" in info.value
    grid.children[1].children[1].value = "reject"  # the second photo's toggle
    save_button.click()
    saved = manifest.read(dataset, "review.csv").set_index("photo_id")["keep"].to_dict()
    assert saved == {"local:view0": True, "local:view1": False}
    assert "page 2 of 3" in info.value
    next_button.click()
    assert "page 3 of 3" in info.value and len(grid.children) == 1
    assert len(review.review_widget(dataset).children[2].children) == 3  # a new session resumes


def test_contact_sheet(dataset):
    path = review.contact_sheet(dataset)
    page = path.read_text()
    assert path == dataset / "report" / "contact_sheet.html"
    assert "<h2>kept (5)</h2>" in page and "<h2>rejected at quality (1)</h2>" in page
    assert page.count("data:image/jpeg;base64,") == 6 and "too small" in page
