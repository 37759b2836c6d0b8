"""The built-in world's contact sheet: satellite tiles over the ground views taken there.

    world_examples(None)             renders the default world's first 8 samples
    world_examples("data/world")     shows the first 8 pairs of a generated dataset folder

One column per sample: its id, sky and heading, then the satellite tile (north up), the ground
view, and the view's class map; a legend of the classes below. Deterministic: the same samples
give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .. import manifest, world
from ..files import atomic_save_image

PAD = 4
LABEL_H = 28


def _from_dataset(dataset: Path, n: int) -> list[dict]:
    pairs = manifest.read(dataset, "pairs.csv").head(n)
    photos = manifest.read(dataset, "photos.csv").set_index("photo_id")
    samples = []
    for row in pairs.itertuples():
        classes_path = dataset / "classes" / (Path(row.photo_path).stem + ".png")
        heading = photos.loc[row.photo_id, "heading"]
        samples.append({
            "photo_id": row.photo_id,
            "caption": f"{row.split}" + ("" if np.isnan(heading) else f", {heading:.0f}°"),
            "tile": np.asarray(Image.open(dataset / row.satellite_path).convert("RGB")),
            "view": np.asarray(Image.open(dataset / row.photo_path).convert("RGB")),
            "view_classes": np.asarray(Image.open(classes_path)) if classes_path.exists() else None,
        })
    return samples


def _rendered(n: int, cfg: world.WorldConfig) -> list[dict]:
    samples = []
    for i in range(n):
        s = world.sample(i, cfg)
        s["caption"] = f"{s['sky']}, {s['heading']:.0f}°"
        samples.append(s)
    return samples


def world_examples(dataset: str | Path | None = None, out: str | Path = "assets/world_examples.png",
                   n: int = 8, cfg: world.WorldConfig | None = None) -> Path:
    """Write the contact sheet of n pairs from `dataset` (None: render the world `cfg`)."""
    samples = _from_dataset(Path(dataset), n) if dataset is not None else _rendered(n, cfg or world.WorldConfig())
    size = max(max(s["tile"].shape[0], s["view"].shape[0]) for s in samples)
    rows = 3
    legend_h = 22
    width = PAD + len(samples) * (size + PAD)
    height = LABEL_H + rows * (size + PAD) + PAD + legend_h
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=11)
    for c, s in enumerate(samples):
        x = PAD + c * (size + PAD)
        draw.text((x + size / 2, 8), s["photo_id"], fill="black", font=font, anchor="mm")
        draw.text((x + size / 2, 21), s["caption"], fill=(90, 90, 90), font=font, anchor="mm")
        classes = s["view_classes"]
        images = [s["tile"], s["view"],
                  world.CLASS_COLORS[classes] if classes is not None else np.full_like(s["view"], 255)]
        for r, image in enumerate(images):
            tile = Image.fromarray(np.ascontiguousarray(image))
            if tile.size != (size, size):
                tile = tile.resize((size, size), Image.Resampling.BICUBIC)
            sheet.paste(tile, (x, LABEL_H + r * (size + PAD)))
    # legend: one swatch per class
    y = height - legend_h + 4
    x = PAD
    for name, color in zip(world.CLASS_NAMES, world.CLASS_COLORS):
        draw.rectangle((x, y, x + 12, y + 12), fill=tuple(int(v) for v in color))
        draw.text((x + 16, y + 6), name.replace("_", " "), fill="black", font=font, anchor="lm")
        x += 16 + int(draw.textlength(name, font=font)) + 14
    return atomic_save_image(out, sheet)


if __name__ == "__main__":
    import sys

    print(world_examples(sys.argv[1] if len(sys.argv) > 1 else None))
