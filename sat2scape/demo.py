"""The whole pipeline on the built-in world, on a 2-core CPU with native bf16, in 15 to 17.5 minutes
(README, Speed):

    python -m sat2scape demo            # data/world (3000 pairs), both models, evaluation, GIF
    python -m sat2scape demo --smoke    # tiny everything, for tests and CI (under a minute)

1. the world's paired data (`python -m sat2scape world`), unless the dataset is already there;
2. the write-up's GAN with its `demo` preset (train_gan.train);
3. the write-up's encoder with its `demo` preset, against that GAN's frozen generator;
4. the conditional, heading-aware model with its `demo` preset, started from that GAN's decoder
   (train_conditional.train); on a CPU in a process of its own beside 3 and the own part of 5,
   a core each, then on both (runtime.SideLane; `--sequential` trains it after 3);
5. the evaluation on the held-out test region, both models and the baselines side by side, by
   region of the view (printed, and written to the encoder run as metrics.md / metrics.json);
6. demo/prediction.gif: a walk along a smooth path through the held-out region, looking along
   the path; each frame the satellite tile | the write-up's view | the conditional model's view
   | the true view at that point.

Rerunning resumes: existing data is kept, an interrupted run continues from its checkpoint and
a finished one is reused (it must have been trained with the preset's current values, on the same
dataset and, for the encoder and the conditional model, from the same GAN; runs.find_run_like).
`--fresh` trains new runs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import evaluate, manifest, runs, runtime, train_conditional, train_encoder, train_gan, world
from .config import ConditionalConfig, EncoderConfig, GANConfig, make_config
from .data import load_pairs, to_uint8
from .images import image_rows, save_gif


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=None, help="world pairs to generate (default 3000; smoke 160)")
    parser.add_argument("--data", default=None, help="dataset folder (default data/world; smoke data/world-smoke)")
    parser.add_argument("--runs", default="data/runs")
    parser.add_argument("--gif", default=None,
                        help="where the walk GIF goes (default demo/prediction.gif; smoke: inside --data)")
    parser.add_argument("--frames", type=int, default=None, help="frames of the walk (default 24; smoke 6)")
    parser.add_argument("--smoke", action="store_true", help="tiny everything: seconds to a minute")
    parser.add_argument("--fresh", action="store_true", help="train new GAN and encoder runs even if finished ones exist")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads, every stage one after another; 0 = torch's default, and on a CPU "
                             "the conditional model trains beside the encoder")
    parser.add_argument("--sequential", action="store_true",
                        help="train the conditional model after the encoder, in this process")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    try:
        demo(n=args.n, data=args.data, runs_root=args.runs, gif=args.gif, frames=args.frames, smoke=args.smoke,
             fresh=args.fresh, threads=args.threads, sequential=args.sequential, progress=not args.no_progress)
    except runs.DatasetTooSmall as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def walk(start_xy: tuple[float, float], frames: int, step_m: float = 25.0) -> list[tuple[float, float, float]]:
    """(x, y, heading) along a gentle S-curve heading roughly north from `start_xy`: the camera
    looks along the path (heading in degrees clockwise from north, as in the world)."""
    length = frames * step_m
    s = np.arange(frames + 1) * step_m
    x = start_xy[0] + 0.1 * length * np.sin(2 * math.pi * s / length)
    y = start_xy[1] + s
    return [(float(x[i]), float(y[i]), math.degrees(math.atan2(x[i + 1] - x[i], y[i + 1] - y[i])) % 360)
            for i in range(frames)]


def held_out_walk(dataset: str | Path, world_cfg: world.WorldConfig, frames: int) -> list[tuple[float, float, float]]:
    """The most varied walk that starts at a test pair and stays inside the held-out region.

    Every frame must stand where the world places its photographers (world.open_ground), and
    among such walks the one whose tiles cover the most land-cover changes wins: a walk across
    one meadow shows little.
    """
    test = manifest.read(dataset, "pairs.csv").query("split == 'test'")
    offsets = np.linspace(-60, 60, 7)  # a cross of points over each tile
    walks = [walk(world.from_latlon(lat, lon), frames) for lat, lon in zip(test["lat"], test["lon"])]
    best, best_score = walks[0], -1  # if no walk passes, the first test pair's
    for path in walks:
        if not all(manifest.region_split(*world.to_latlon(x, y), cell_km=world_cfg.split_cell_km,
                                         seed=world_cfg.seed) == "test" for x, y, _ in path):
            continue
        xs, ys, heading = (np.array(v) for v in zip(*path))
        if not world.open_ground(xs, ys, heading, world_cfg).all():
            continue
        around, _ = world.landcover_at(np.concatenate([xs[:, None] + offsets, xs[:, None] + 0 * offsets], 1),
                                       np.concatenate([ys[:, None] + 0 * offsets, ys[:, None] + offsets], 1), world_cfg)
        score = int((np.diff(around, axis=0) != 0).sum()) + len(np.unique(around))
        if score > best_score:
            best, best_score = path, score
    return best


WALK_LABELS = ("satellite tile", "write-up: G(E(tile))", "conditional, heading", "true view")


def walk_gif(encoder_run: str | Path, gif: str | Path, frames: int = 60, sky_seed: int = 1,
             conditional_run: str | Path | None = None, progress: bool = True) -> Path:
    """Render a walk through the held-out region with the world, looking along the path; predict
    every tile with the write-up's encoder run (and the conditional run, given the heading), and
    write the GIF of satellite tile | write-up's view | [conditional view |] true view."""
    dataset = runs.read_config(encoder_run)["data"]
    world_cfg = world.dataset_config(dataset)
    path = held_out_walk(dataset, world_cfg, frames)
    pairs = [world.render_pair(x, y, heading, world_cfg, sky_seed=sky_seed)
             for x, y, heading in tqdm(path, desc="rendering the walk", disable=not progress, leave=False)]
    headings = torch.tensor([heading for _, _, heading in path], dtype=torch.float32)

    def stack(key):
        return torch.from_numpy(np.stack([p[key] for p in pairs])).permute(0, 3, 1, 2)

    tiles, views = stack("tile"), stack("view")
    E, G = train_encoder.load_encoder(encoder_run)
    columns = [tiles, to_uint8(train_encoder.predict_views(E, G, tiles)[0])]
    labels = list(WALK_LABELS[:2])
    if conditional_run is not None:
        G_cond, _ = train_conditional.load_generator(conditional_run)
        columns.append(to_uint8(train_conditional.predict_views(G_cond, stack("tile_wide"), headings)))
        labels.append(WALK_LABELS[2])
    columns.append(views)
    labels.append(WALK_LABELS[3])
    # at the model's own 128 px: a bicubic 2x upscale added no detail and tripled the file (3.5 MB)
    images = [image_rows([c[i:i + 1] for c in columns], labels=labels) for i in range(frames)]
    return save_gif(gif, images, duration_ms=150)


def ensure_world(n: int, data: str | Path, progress: bool = True) -> Path:
    """The world's paired dataset at `data` with at least n pairs; generated only when short."""
    have = len(manifest.read(data, "pairs.csv")) if (Path(data) / "pairs.csv").exists() else 0
    if have < n:
        print(f"world: generating {n} pairs into {data}")
        world.generate(data, n, workers=0, progress=progress)  # a rendering process per core
    else:
        print(f"world: {data} has {have} pairs; kept")
    return Path(data)


def check_splits(preset: str, data: str | Path) -> None:
    """Stop before any run folder when a split is too small for the whole pipeline: a full batch
    of training pairs for each of the two trainings, and a held-out pair for the evaluation."""
    for cls, stage, per_batch in ((GANConfig, "GAN", 1), (EncoderConfig, "encoder", 1),
                                  (ConditionalConfig, "conditional model", 2)):  # 2 views (z) per place
        cfg = make_config(cls, preset)
        need = cfg.batch_size // per_batch
        runs.require_pairs(data, "train", need, f"the demo's {stage} ({preset} preset, a batch of {need} pairs)",
                           cfg.max_images)
    runs.require_pairs(data, "test", 1, "the demo's evaluation and walk")


def ensure_run(stage: str, preset: str, data: str | Path, gan_run: str | Path | None = None,
               runs_root: str | Path = "data/runs", threads: int = 0, fresh: bool = False, progress: bool = True,
               **overrides) -> Path:
    """A run of `stage` ("gan", "encoder" or "conditional") with `preset` and `overrides` (e.g.
    loss="mse", heading="random", seed=1) on `data`, against (the encoder) or started from (the
    conditional model) `gan_run`: the newest matching run, resumed (a no-op when finished), or
    a new one. Its name is <NNNNN>-<stage>-<preset>[-<key>_<value>...]."""
    cls, loop = {"gan": (GANConfig, train_gan), "encoder": (EncoderConfig, train_encoder),
                 "conditional": (ConditionalConfig, train_conditional)}[stage]
    desc = "-".join([preset, *(f"{k}_{v}" for k, v in overrides.items())])
    link = {} if gan_run is None else {"gan_run": str(gan_run)}
    cfg = make_config(cls, preset, data=str(data), runs=str(runs_root), desc=desc, threads=threads, **link, **overrides)
    run_dir = None if fresh else runs.find_run_like(cfg, stage, loop.RESUMABLE_FIELDS)
    print(f"{stage} ({desc}): " + (f"resuming {run_dir}" if run_dir else "new run"))
    return loop.train(cfg, resume=run_dir, progress=progress)


def demo(n: int | None = None, data: str | None = None, runs_root: str = "data/runs", gif: str | None = None,
         frames: int | None = None, smoke: bool = False, fresh: bool = False, threads: int = 0,
         sequential: bool = False, progress: bool = True) -> dict:
    t0 = time.time()
    preset = "smoke" if smoke else "demo"
    n = n or (160 if smoke else 3000)
    data = data or ("data/world-smoke" if smoke else "data/world")
    gif = Path(gif or (Path(data) / "prediction.gif" if smoke else "demo/prediction.gif"))
    frames = frames or (6 if smoke else 24)

    print("== 1/6 data")
    ensure_world(n, data, progress)
    check_splits(preset, data)
    print("== 2/6 the write-up's GAN")
    gan_run = ensure_run("gan", preset, data, None, runs_root, threads, fresh, progress)
    # The encoder and the conditional model both start from the GAN, not from each other. On a CPU
    # they train side by side, a core each (two 1-thread processes get more done than one process
    # on 2 threads: runtime.SideLane), and the conditional model takes both cores once the encoder
    # and the evaluation's own part are done.
    side, cond_run = None, None
    if not sequential and runtime.side_lane_helps(runtime.pick_device(), threads):
        lane_threads = 1
        print("== 3/6 the write-up's encoder here, and beside it, in a process of its own, "
              "4/6 the conditional model (started from the GAN's decoder)")
        side = runtime.SideLane(ensure_run, "conditional", preset, data, gan_run, runs_root, 1, fresh, False)
    else:
        lane_threads = threads
        print("== 3/6 the write-up's encoder")
    enc_run = ensure_run("encoder", preset, data, gan_run, runs_root, lane_threads, fresh, progress)
    if side is None:
        print("== 4/6 the conditional, heading-aware model (started from the GAN's decoder)")
        cond_run = ensure_run("conditional", preset, data, gan_run, runs_root, threads, fresh, progress)

    def conditional_run() -> Path:
        nonlocal side, cond_run
        if side is not None:  # this lane is done: the side lane gets its core and is waited for
            print("== 4/6 the conditional model: on all cores now")
            cond_run, side = side.finish(), None
        return cond_run

    # evaluation on the held-out region (the oracle on a subset: it fits a latent per photo)
    metrics_md = enc_run / "metrics.md"

    def newer(path: Path, run: Path) -> bool:
        return path.stat().st_mtime > (run / "checkpoint.pt").stat().st_mtime

    if metrics_md.exists() and newer(metrics_md, enc_run) and newer(metrics_md, conditional_run()):
        print(f"== 5/6 evaluation: {metrics_md} is up to date")
        table = metrics_md.read_text()
    else:
        print("== 5/6 evaluation on the held-out test region, both models, by region of the view")
        held_out = evaluate.held_out_context(data, "test", segmenter_preset=preset, runs_root=runs_root,
                                             threads=lane_threads, progress=progress)
        table = evaluate.evaluate(enc_run, "test", oracle_images=8 if smoke else 64, zstar_images=16 if smoke else 128,
                                  oracle_steps=5 if smoke else 50, threads=lane_threads, progress=progress,
                                  context=held_out,  # the conditional rows come last, once that model is done
                                  extra_methods=lambda: evaluate.conditional_methods([conditional_run()],
                                                                                     held_out.pairs))["markdown"]
    print(table)
    cond_run = conditional_run()

    print(f"== 6/6 walk through the held-out region: {frames} frames")
    walk_gif(enc_run, gif, frames, conditional_run=cond_run, progress=progress)

    produced = {"data": Path(data), "gan_run": gan_run, "encoder_run": enc_run, "conditional_run": cond_run,
                "metrics": metrics_md, "gif": gif}
    print(f"\ndone in {time.time() - t0:.0f} s; produced:")
    for name, path in produced.items():
        print(f"  {name:12s} {path}")
    return produced
