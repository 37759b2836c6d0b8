"""Prediction speed: latency of one tile (batch 1) and throughput of batches of 64.

    python benchmarks/predict.py --run data/runs/00003-encoder-custom --threads 2
    python benchmarks/predict.py --nef 64 --ngf 64        # random-init networks at paper width

Times G(E(tile)) as `predict` runs it (sat2scape.train_encoder.predict_views: uint8 in, float
view out), after warm-up, as the median of --n repeats. Prints the latency per tile at batch 1,
the tiles/s at batch 64, and their ratio (how much batching buys).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sat2scape import runtime
from sat2scape.models import Encoder, Generator
from sat2scape.train_encoder import frozen, load_encoder, predict_views


def median_seconds(fn, n: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="encoder run (default: random-init networks of --nef/--ngf)")
    parser.add_argument("--nef", type=int, default=32)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--n", type=int, default=30, help="repeats; the median is reported")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()

    runtime.configure_cpu(args.threads)
    device = runtime.pick_device(args.device)
    if args.run:
        E, G = load_encoder(args.run, device)
        what = args.run
    else:
        E, G = frozen(Encoder(4, args.nef).to(device)), frozen(Generator(4, args.ngf).to(device))
        what = f"random-init nef={args.nef} ngf={args.ngf}"
    tiles = torch.randint(0, 256, (args.batch, 3, 128, 128), dtype=torch.uint8)

    def once(batch):
        predict_views(E, G, batch, batch_size=len(batch), bf16=args.bf16)
        if device.type == "cuda":
            torch.cuda.synchronize()

    single = median_seconds(lambda: once(tiles[:1]), args.n)
    batched = median_seconds(lambda: once(tiles), max(3, args.n // 5))
    per_tile_batched = batched / args.batch
    print(f"{what} on {device} ({torch.get_num_threads()} threads, bf16 {'on' if args.bf16 else 'off'})")
    print(f"batch 1:  {single * 1e3:.1f} ms per tile (median of {args.n}), {1 / single:.1f} tiles/s")
    print(f"batch {args.batch}: {args.batch / batched:.1f} tiles/s ({per_tile_batched * 1e3:.2f} ms per tile)")
    print(f"ratio batch {args.batch} vs single: {single / per_tile_batched:.2f}x throughput")


if __name__ == "__main__":
    main()
