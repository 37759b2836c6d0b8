"""Two lanes against one: two training stages side by side, a core each, against one process on
all the cores, on the same machine in one run (`make demo` trains the encoder and the conditional
model side by side: runtime.SideLane).

    python benchmarks/lanes.py [--data data/world] [--images 960]

The real training loops (the CLI, demo presets: the write-up's GAN and the conditional model,
started from a GAN run under --runs) train a few short epochs over --images training pairs;
the median epoch after the first (which warms oneDNN up) is read from each run's stats.jsonl.

  alone, all threads    each stage by itself, torch's default threads (what one process gets)
  alone, 1 thread       each stage by itself on one thread
  side by side          both at once, two 1-thread processes

Printed: seconds per epoch, the speed-up of all threads over one, and the work done per second
side by side against one after the other on all threads (1.0 = no gain): the sum over the two
stages of (epoch alone on all threads / epoch side by side).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from sat2scape import runs

STAGES = {  # stage: (CLI verb, epochs, images per epoch as a multiple of --images): ~equal times
    "GAN": ("train-gan", 6, 2),
    "conditional": ("train-conditional", 3, 1),
}


def command(stage: str, args, runs_root: str, threads: int, gan_run: str) -> list[str]:
    verb, epochs, scale = STAGES[stage]
    cmd = [sys.executable, "-m", "sat2scape", verb, "--preset", "demo", "--data", args.data, "--runs", runs_root,
           "--epochs", str(epochs), "--max-images", str(scale * args.images), "--swd-every", "0",
           "--sample-every", "0", "--threads", str(threads), "--no-progress"]
    return cmd + (["--gan-run", gan_run] if stage == "conditional" else [])


def epoch_seconds(runs_root: str) -> dict[str, float]:
    """{stage: median epoch time after the first} of the runs under runs_root."""
    out = {}
    for run_dir in sorted(Path(runs_root).iterdir()):
        stage = "GAN" if "-gan" in run_dir.name else "conditional"
        lines = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
        out[stage] = statistics.median(line["epoch_time"] for line in lines[1:])
    return out


def measure(stages: list[str], args, threads: int, gan_run: str) -> dict[str, float]:
    """Run `stages` at once (one process each, `threads` threads each); their epoch times."""
    with tempfile.TemporaryDirectory() as runs_root:
        procs = [subprocess.Popen(command(s, args, runs_root, threads, gan_run), stdout=subprocess.DEVNULL)
                 for s in stages]
        if any(p.wait() for p in procs):
            sys.exit(f"a training run failed: {[p.args for p in procs]}")
        return epoch_seconds(runs_root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/world")
    parser.add_argument("--runs", default="data/runs", help="where the demo's GAN run is (the conditional model starts from it)")
    parser.add_argument("--images", type=int, default=960, help="training pairs per conditional epoch (the GAN: twice)")
    args = parser.parse_args()
    gan_run = runs.latest_run(args.runs, "gan", "-demo")
    if gan_run is None:
        sys.exit(f"no finished demo GAN run under {args.runs}: run `make demo` (or train-gan --preset demo) first")
    cores = torch.get_num_threads()
    print(f"torch {torch.__version__}, {cores} threads by default, {os.cpu_count()} CPUs; "
          f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '') or '(none)'}; GAN run {gan_run}")
    t0 = time.time()
    alone = {s: measure([s], args, 0, str(gan_run))[s] for s in STAGES}
    single = {s: measure([s], args, 1, str(gan_run))[s] for s in STAGES}
    side = measure(list(STAGES), args, 1, str(gan_run))
    print(f"\n| stage | alone, {cores} threads | alone, 1 thread | side by side, 1 thread each | "
          f"{cores} threads over 1 |")
    print("|---|---:|---:|---:|---:|")
    for s in STAGES:
        print(f"| {s} epoch | {alone[s]:.1f} s | {single[s]:.1f} s | {side[s]:.1f} s | {single[s] / alone[s]:.2f}x |")
    gain = sum(alone[s] / side[s] for s in STAGES)
    print(f"\nwork per second side by side against one after the other on {cores} threads: {gain:.2f}x "
          f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
