"""GAN training speed: our loop against a plain reference loop, same data, same machine, one run.

    python benchmarks/train_gan.py --threads 2                       # paper width (ngf = ndf = 64)
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python benchmarks/train_gan.py

reference  torchvision ImageFolder decoding the JPEGs every epoch through a DataLoader, fp32,
           contiguous memory, the dcgan example's step (D real, D fake, then G through a D that
           also computes its weight gradients)
ours       sat2scape.train_gan.train itself: photos decoded once into the uint8 cache and kept on
           the device, channels_last, bf16 autocast (--bf16), D frozen during the G step, EMA

Both train the same Generator/Discriminator at 128 px on the first --images training photos of
--data. They alternate, one epoch each per round, for --rounds rounds, and the median epoch of
the rounds after the first (which warms up oneDNN) is reported: on a shared machine, load from
other processes then falls on both loops alike.
Prints img/s, the ratio, the work per image (FLOPs of one reference step, counted by
torch.utils.flop_counter) and the achieved GFLOP/s next to a large convolution's and a matmul's
measured on this machine. The allocator matters on CPU: run it with and without tcmalloc.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
import timeit
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
from torch.utils.flop_counter import FlopCounterMode
from torchvision.datasets import ImageFolder

from sat2scape import data, runtime
from sat2scape.config import GANConfig, make_config
from sat2scape.files import read_jsonl
from sat2scape.models import Discriminator, Generator
from sat2scape.train_gan import train


def reference_step(G, D, opt_G, opt_D, real, nz):
    """pytorch/examples dcgan/main.py's step, with BCE-with-logits as our D has no sigmoid."""
    criterion = nn.BCEWithLogitsLoss()
    b = real.shape[0]
    D.zero_grad()
    criterion(D(real), torch.ones(b)).backward()
    fake = G(torch.randn(b, nz))
    criterion(D(fake.detach()), torch.zeros(b)).backward()
    opt_D.step()
    G.zero_grad()
    criterion(D(fake), torch.ones(b)).backward()
    opt_G.step()


class ReferenceLoop:
    """The plain loop: ImageFolder decoding JPEGs every epoch, fp32, contiguous memory."""

    def __init__(self, photo_dir: Path, cfg: GANConfig):
        dataset = ImageFolder(str(photo_dir), transform=T.Compose([
            T.Resize(cfg.image_size), T.CenterCrop(cfg.image_size), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)]))
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
        torch.manual_seed(0)
        self.G, self.D = Generator(cfg.nz, cfg.ngf), Discriminator(cfg.ndf)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
        self.nz = cfg.nz

    def epoch(self) -> tuple[float, list[float]]:
        """Seconds for one epoch, and each step's seconds (without the data loading)."""
        step_times = []
        t_epoch = time.perf_counter()
        for real, _ in self.loader:
            t0 = time.perf_counter()
            # the same random horizontal flip as ours, on the batch
            real = torch.where(torch.rand(len(real), 1, 1, 1) < 0.5, real.flip(3), real)
            reference_step(self.G, self.D, self.opt_G, self.opt_D, real, self.nz)
            step_times.append(time.perf_counter() - t0)
        return time.perf_counter() - t_epoch, step_times


def step_gflop_per_image(cfg: GANConfig, batch: int = 4) -> float:
    G, D = Generator(cfg.nz, cfg.ngf), Discriminator(cfg.ndf)
    opt_G, opt_D = torch.optim.SGD(G.parameters(), lr=0), torch.optim.SGD(D.parameters(), lr=0)
    with FlopCounterMode(display=False) as counter:
        reference_step(G, D, opt_G, opt_D, torch.zeros(batch, 3, cfg.image_size, cfg.image_size), cfg.nz)
    return counter.get_total_flops() / batch / 1e9


def peak_gflops() -> dict[str, float]:
    """A large 3x3 convolution (fp32, fp32 channels_last, bf16 channels_last) and a 2048^2 matmul."""

    def best(fn, flops):  # GFLOP/s of the fastest of 5 runs, after a warm-up run
        fn()
        return flops / min(timeit.repeat(fn, number=1, repeat=5)) / 1e9

    x = torch.randn(32, 256, 32, 32)
    w = torch.randn(256, 256, 3, 3)
    conv_flops = 2 * 32 * 256 * 256 * 9 * 32 * 32
    xc, wc = x.to(memory_format=torch.channels_last), w.to(memory_format=torch.channels_last)
    a = torch.randn(2048, 2048)
    with torch.no_grad():
        return {
            "conv fp32": best(lambda: F.conv2d(x, w, padding=1), conv_flops),
            "conv fp32 channels_last": best(lambda: F.conv2d(xc, wc, padding=1), conv_flops),
            "conv bf16 channels_last": best(lambda: F.conv2d(xc.bfloat16(), wc.bfloat16(), padding=1), conv_flops),
            "matmul fp32 2048^2": best(lambda: a @ a, 2 * 2048 ** 3),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/world", help="dataset folder with pairs.csv")
    parser.add_argument("--images", type=int, default=256, help="training photos used")
    parser.add_argument("--rounds", type=int, default=3, help="one epoch of each loop per round; the first warms up")
    parser.add_argument("--ngf", type=int, default=64, help="G and D width (paper: 64)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--bf16", default="auto", choices=["auto", "on", "off"], help="ours: bf16 autocast (auto: where the CPU has it natively)")
    parser.add_argument("--channels-last", default="true", choices=["true", "false"])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    runtime.configure_cpu(args.threads)
    preload = os.environ.get("LD_PRELOAD", "")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, allocator: "
          f"{'tcmalloc' if 'tcmalloc' in preload else 'jemalloc' if 'jemalloc' in preload else 'glibc malloc'}")

    cfg = make_config(GANConfig, "paper", data=args.data, ngf=args.ngf, ndf=args.ngf, batch_size=args.batch_size,
                      epochs=1, max_images=args.images, bf16=args.bf16,
                      channels_last=args.channels_last == "true", device="cpu", threads=args.threads,
                      swd_every=0, sample_every=0, checkpoint_every_steps=0)
    table = data.load_pairs(args.data, "train", cfg.image_size, args.images, progress=False, with_tiles=False).table
    with tempfile.TemporaryDirectory() as tmp:
        # the same photos as an ImageFolder (one class), by symlink
        folder = Path(tmp) / "photos" / "all"
        folder.mkdir(parents=True)
        for i, rel in enumerate(table["photo_path"]):
            (folder / f"{i:06d}{Path(rel).suffix}").symlink_to((Path(args.data) / rel).resolve())

        reference = None if args.skip_reference else ReferenceLoop(Path(tmp) / "photos", cfg)
        ours_s, ref_s, ref_steps = [], [], []
        for r in range(args.rounds):
            # ours: a one-epoch run of train() itself; its stats time the steps of the epoch
            run_dir = train(dataclasses.replace(cfg, runs=str(Path(tmp) / "runs")), progress=False)
            ours_s.append(read_jsonl(run_dir / "stats.jsonl")[-1]["epoch_time"])
            line = f"round {r + 1}: ours {ours_s[-1]:.1f} s"
            if reference is not None:
                seconds, step_times = reference.epoch()
                ref_s.append(seconds)
                ref_steps += step_times if r else []
                line += f", reference {seconds:.1f} s"
            print(line)
    measured = slice(1, None) if args.rounds > 1 else slice(None)
    steps = len(table) // args.batch_size
    ours_epoch = statistics.median(ours_s[measured])
    ours_img_s = steps * args.batch_size / ours_epoch

    gflop = step_gflop_per_image(cfg)
    peaks = peak_gflops()
    print(f"\n{len(table)} photos, batch {args.batch_size}, ngf = ndf = {args.ngf}, 128 px, {steps} steps per "
          f"epoch, median epoch of rounds 2..{args.rounds}")
    print(f"work: {gflop:.2f} GFLOP per image per GAN step (reference step, FlopCounterMode)")
    print(f"{'loop':<12}{'epoch s':>9}{'img/s':>9}{'GFLOP/s':>10}")
    print(f"{'ours':<12}{ours_epoch:>9.1f}{ours_img_s:>9.1f}{ours_img_s * gflop:>10.0f}")
    if ref_s:
        ref_epoch = statistics.median(ref_s[measured])
        ref_img_s = steps * args.batch_size / ref_epoch
        print(f"{'reference':<12}{ref_epoch:>9.1f}{ref_img_s:>9.1f}{ref_img_s * gflop:>10.0f}"
              f"   (its median step without data loading: {args.batch_size / statistics.median(ref_steps or [ref_epoch / steps]):.1f} img/s)")
        print(f"ratio ours / reference: {ours_img_s / ref_img_s:.2f}x")
    for name, value in peaks.items():
        print(f"peak {name:<26}{value:>8.0f} GFLOP/s")


if __name__ == "__main__":
    main()
