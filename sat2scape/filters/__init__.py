"""The filter funnel: geotag, Places365 scene, people, image quality, near-duplicates, manual review.

`funnel.filter_dataset(dataset)` runs it (CLI: `python -m sat2scape filter data/<name>`); each
stage is a module here with a `judge(paths, ...)` that returns (keep, reason, score) per photo.
"""
