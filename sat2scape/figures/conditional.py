"""The conditional model's figures: one place at 8 headings, and one tile with 6 draws of z.

    around_figure(run_dir, "data/world", "assets/conditional_around.png")
    samples_figure(run_dir, "data/world", "assets/conditional_samples.png")
    explorer(run_dir, "data/world")     # notebook sliders for the heading and z

Both stand at a held-out pair of the built-in world. The world can render the true view at any
heading from the same spot under the same sky, so the look-around compares each predicted view
with the view a person would really see there when turning on the spot.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from .. import data, manifest, train_conditional, world
from ..files import atomic_save_image
from ..images import image_rows


def held_out_place(dataset: str | Path, index: int = 0) -> dict:
    """The `index`-th test pair of a world dataset, rendered again: where it stands (x_m, y_m),
    its heading and its sky (sky_seed), so that it can be seen at any other heading."""
    test = manifest.read(dataset, "pairs.csv").query("split == 'test'").reset_index(drop=True)
    if test.empty:
        raise manifest.ManifestError(f"{Path(dataset) / 'pairs.csv'} has no test pairs to show")
    photo_id = test["photo_id"].iloc[index % len(test)]
    return world.sample(int(photo_id.split(":")[1]), world.dataset_config(dataset))  # world:000042 -> 42


def _uint8(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def around_figure(run_dir: str | Path, dataset: str | Path, out: str | Path, headings: int = 8,
                  index: int = 0) -> Path:
    """Columns: `headings` directions from the place's own heading; rows: the heading-up tile,
    the predicted view (z = 0), the true view the world renders there."""
    cfg, place = world.dataset_config(dataset), held_out_place(dataset, index)
    angles = (place["heading"] + 360 / headings * np.arange(headings)) % 360
    pairs = [world.render_pair(place["x_m"], place["y_m"], float(a), cfg, place["sky_seed"]) for a in angles]
    wide = _uint8([p["tile_wide"] for p in pairs])
    G, _ = train_conditional.load_generator(run_dir)
    angles_t = torch.tensor(angles, dtype=torch.float32)
    predicted = data.to_uint8(train_conditional.predict_views(G, wide, angles_t))
    turned, _ = train_conditional.condition(wide, angles_t, cfg.tile_size)
    columns = [torch.stack([data.to_uint8(turned)[i], predicted[i], torch.from_numpy(pairs[i]["view"]).permute(2, 0, 1)])
               for i in range(headings)]
    return atomic_save_image(out, image_rows(columns, labels=[f"{a:.0f}°" for a in angles], scale=1))


def samples_figure(run_dir: str | Path, dataset: str | Path, out: str | Path, samples: int = 6,
                   index: int = 0, seed: int = 0) -> Path:
    """One row: the heading-up tile, `samples` views from draws of z, and the true view."""
    held_out = data.load_pairs(dataset, "test", progress=False)
    i = index % len(held_out.ids)
    wide = held_out.turnable_tiles[i:i + 1]
    G, cfg = train_conditional.load_generator(run_dir)
    angle = held_out.headings[i:i + 1] if cfg.heading == "known" else torch.tensor([float("nan")])
    z = torch.randn(samples, G.nz, generator=torch.Generator().manual_seed(seed))
    views = data.to_uint8(train_conditional.predict_views(G, wide.expand(samples, -1, -1, -1),
                                                          angle.expand(samples), z=z))
    turned, _ = train_conditional.condition(wide, angle, held_out.tiles.shape[-1])
    columns = [data.to_uint8(turned), *views.split(1), held_out.photos[i:i + 1]]
    labels = ["tile, heading up", *[f"z #{k + 1}" for k in range(samples)], "true view"]
    return atomic_save_image(out, image_rows(columns, labels=labels))


def explorer(run_dir: str | Path, dataset: str | Path, index: int = 0):
    """ipywidgets: a held-out tile, a heading slider and one slider per latent number; the view
    is predicted again whenever a slider moves. For notebooks (display(explorer(...)))."""
    import ipywidgets as widgets

    held_out = data.load_pairs(dataset, "test", progress=False)
    i = index % len(held_out.ids)
    wide = held_out.turnable_tiles[i:i + 1]
    G, cfg = train_conditional.load_generator(run_dir)
    start = float(held_out.headings[i]) if cfg.heading == "known" and not held_out.headings[i].isnan() else 0.0
    heading = widgets.FloatSlider(value=start, min=0, max=359, step=1, description="heading °")
    latents = [widgets.FloatSlider(value=0, min=-2.5, max=2.5, step=0.1, description=f"z[{k}]") for k in range(G.nz)]
    picture = widgets.Image(format="png", width=384)

    def update(_=None):
        angle = torch.tensor([heading.value])
        z = torch.tensor([[s.value for s in latents]])
        view = data.to_uint8(train_conditional.predict_views(G, wide, angle, z=z))
        turned, _ = train_conditional.condition(wide, angle, held_out.tiles.shape[-1])
        grid = image_rows([data.to_uint8(turned), view, held_out.photos[i:i + 1]],
                          labels=["tile, heading up", "predicted view", "photo (its own heading)"], scale=2)
        buffer = io.BytesIO()
        grid.save(buffer, format="PNG")
        picture.value = buffer.getvalue()

    for slider in (heading, *latents):
        slider.observe(update, names="value")
    update()
    return widgets.VBox([picture, heading, *latents])
