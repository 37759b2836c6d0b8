"""The memory allocator's share of CPU training speed: one GAN step, three mallocs, one run.

    python benchmarks/allocator.py --threads 2 [--ngf 32] [--batch-size 32] [--rounds 3]

glibc     the process as Python starts it: glibc malloc with its defaults, which give every
          freed block above the mmap threshold back to the kernel
tuned     the same glibc after runtime.configure_cpu (mallopt: no mmap-served blocks, no
          trimming), what every sat2scape stage does
tcmalloc  glibc replaced through LD_PRELOAD (Debian's libtcmalloc-minimal4), where installed

Each setting runs in a fresh process (an allocator cannot be swapped inside one): the write-up's
G and D at --ngf, channels_last and fp32 as train_gan runs them on a CPU without native bf16, a
D step on real and fake and a G step, --steps steps of which the first two warm oneDNN up. The
processes alternate over --rounds rounds, so load from other processes falls on all of them;
the median step of each setting over the rounds is reported with its page faults and system
time per step.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def child(args: argparse.Namespace) -> None:
    import torch

    from sat2scape import runtime
    from sat2scape.models import Discriminator, Generator

    if args.child == "tuned":
        runtime.configure_cpu(args.threads)
    elif args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cl = torch.channels_last
    G, D = Generator(4, args.ngf).to(memory_format=cl), Discriminator(args.ngf).to(memory_format=cl)
    opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    criterion = torch.nn.BCEWithLogitsLoss()
    real = torch.rand(args.batch_size, 3, 128, 128).mul(2).sub(1).contiguous(memory_format=cl)
    ones, zeros = torch.ones(args.batch_size), torch.zeros(args.batch_size)
    times, faults, system = [], [], []
    for _ in range(args.steps):
        before = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        fake = G(torch.randn(args.batch_size, 4))
        opt_D.zero_grad()
        (criterion(D(real).flatten(), ones) + criterion(D(fake.detach()).flatten(), zeros)).backward()
        opt_D.step()
        opt_G.zero_grad()
        criterion(D(fake).flatten(), ones).backward()
        opt_G.step()
        times.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_SELF)
        faults.append(after.ru_minflt - before.ru_minflt)
        system.append(after.ru_stime - before.ru_stime)
    warm = slice(2, None)
    print(json.dumps({"step_s": statistics.median(times[warm]), "faults": statistics.median(faults[warm]),
                      "system_s": statistics.median(system[warm])}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ngf", type=int, default=32, help="G and D width (demo: 32)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--child", choices=("glibc", "tuned", "tcmalloc"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    settings = {"glibc": {}, "tuned": {}}
    tcmalloc = sorted(glob.glob("/usr/lib/*/libtcmalloc_minimal.so.4"))
    if tcmalloc:
        settings["tcmalloc"] = {"LD_PRELOAD": tcmalloc[0]}
    else:
        print("tcmalloc: not installed (apt-get install libtcmalloc-minimal4), left out")
    base_env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "GLIBC_TUNABLES")}
    results = {name: [] for name in settings}
    for r in range(args.rounds):
        for name, extra in settings.items():
            cmd = [sys.executable, __file__, "--child", name, "--ngf", str(args.ngf), "--batch-size",
                   str(args.batch_size), "--steps", str(args.steps), "--threads", str(args.threads)]
            out = subprocess.run(cmd, env={**base_env, **extra}, capture_output=True, text=True, check=True)
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {name:<9} {results[name][-1]['step_s']:.3f} s/step", flush=True)

    print(f"\nGAN step, ngf = ndf = {args.ngf}, batch {args.batch_size}, fp32 channels_last, "
          f"median over {args.rounds} processes of the median of steps 3..{args.steps}")
    print(f"{'malloc':<10}{'s/step':>8}{'img/s':>8}{'faults/step':>13}{'sys s/step':>12}{'vs glibc':>10}")
    base = statistics.median(r["step_s"] for r in results["glibc"])
    for name, rows in results.items():
        step = statistics.median(r["step_s"] for r in rows)
        print(f"{name:<10}{step:>8.3f}{args.batch_size / step:>8.1f}"
              f"{statistics.median(r['faults'] for r in rows):>13.0f}"
              f"{statistics.median(r['system_s'] for r in rows):>12.3f}{base / step:>9.2f}x")


if __name__ == "__main__":
    main()
