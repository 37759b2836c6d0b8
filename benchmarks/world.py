"""How fast the built-in world makes a dataset, against the target of 3000 pairs in 60 s on one core.

    python benchmarks/world.py            # 3000 pairs
    python benchmarks/world.py --n 300    # a quicker look
    python benchmarks/world.py --workers 2 --stage-n 0   # also the processes `make demo` uses

Prints, for one process:
  1. render only (tiles + view + class map) and render + encode (JPEG, PNGs) on the first
     `--stage-n` samples, as ms per pair;
  2. the whole `generate` (placement, render, encode, atomic writes, manifests) of `--n` pairs
     into a temporary folder: pairs/s, ms/pair, and the ratio to the 50 pairs/s target;
  3. with --workers N > 1, the same `generate` in N processes, and its speed-up over one;
  4. the split counts of the manifest it wrote.
Wall time is what the target is about; CPU time (this process, all threads) is printed beside
it, because on a shared machine other processes stretch wall time but not CPU time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sat2scape import manifest, world  # noqa: E402

TARGET_PAIRS_PER_S = 3000 / 60


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="pairs to generate (default 3000)")
    parser.add_argument("--stage-n", type=int, default=200, help="pairs for the render/encode split (default 200)")
    parser.add_argument("--workers", type=int, default=1, help="also time generate in this many processes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = world.WorldConfig(seed=args.seed)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")

    world.sample(0, cfg)  # build the noise textures and the world's tables once
    m = args.stage_n
    if m:
        metas = [world._describe(i, cfg) for i in range(m)]
        wall, cpu = clocks()
        pairs = [world.render_pair(d["x_m"], d["y_m"], d["heading"], cfg, d["sky_seed"]) for d in metas]
        render_wall, render_cpu = (t1 - t0 for t1, t0 in zip(clocks(), (wall, cpu)))
        wall, cpu = clocks()
        for p in pairs:
            world._encode(p["view"], "JPEG", quality=cfg.jpeg_quality)
            world._encode(p["tile"], "PNG", compress_level=1)
            world._encode(p["tile_wide"], "PNG", compress_level=1)
            world._class_png(p["view_classes"])
        encode_wall, encode_cpu = (t1 - t0 for t1, t0 in zip(clocks(), (wall, cpu)))
        print(f"render only       {render_wall / m * 1e3:6.1f} ms/pair wall, {render_cpu / m * 1e3:6.1f} ms CPU  ({m} pairs)")
        print(f"render + encode   {(render_wall + encode_wall) / m * 1e3:6.1f} ms/pair wall, "
              f"{(render_cpu + encode_cpu) / m * 1e3:6.1f} ms CPU")

    rates = {}
    for workers in sorted({1, args.workers}):
        with tempfile.TemporaryDirectory(prefix="world-bench-") as tmp:
            wall, cpu = clocks()
            out = world.generate(Path(tmp) / "world", args.n, cfg, workers=workers, progress=False)
            gen_wall, gen_cpu = (t1 - t0 for t1, t0 in zip(clocks(), (wall, cpu)))
            pairs_csv = manifest.read(out, "pairs.csv")
        rates[workers] = rate = args.n / gen_wall
        cpu_note = (f", {gen_cpu:.1f} s CPU ({gen_cpu / args.n * 1e3:.1f} ms/pair)" if workers == 1
                    else " (the CPU time is in the worker processes)")
        print(f"generate {args.n} pairs, {workers} process(es): {gen_wall:.1f} s wall "
              f"({gen_wall / args.n * 1e3:.1f} ms/pair, {rate:.1f} pairs/s){cpu_note}")
        if workers == 1:
            print(f"ratio to the target of {TARGET_PAIRS_PER_S:.0f} pairs/s (3000 in 60 s): "
                  f"{rate / TARGET_PAIRS_PER_S:.2f}x wall, {args.n / gen_cpu / TARGET_PAIRS_PER_S:.2f}x by CPU time")
    if args.workers > 1:
        print(f"{args.workers} processes against 1: {rates[args.workers] / rates[1]:.2f}x")
    counts = pairs_csv["split"].value_counts()
    print("splits: " + ", ".join(f"{s} {counts.get(s, 0)} ({counts.get(s, 0) / len(pairs_csv):.1%})" for s in manifest.SPLITS))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
