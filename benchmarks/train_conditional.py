"""Conditional training speed: our loop against a plain fp32 loop, same data, same machine, one run.

    python benchmarks/train_conditional.py --threads 2 [--ngf 32]

reference  a torch Dataset that decodes each photo and wide tile with PIL every epoch through a
           DataLoader, fp32, contiguous memory, and a step that lets D compute its weight
           gradients during G's update (as the dcgan example does); the same models, condition
           (turn + warp), losses and pairs-with-two-z batches
ours       sat2scape.train_conditional.train itself: uint8 cache on the device, channels_last,
           bf16 autocast, D frozen during the G step, EMA

They alternate, one epoch each per round, for --rounds rounds; the median epoch of the rounds
after the first (which warms up oneDNN) is reported, so load from other processes falls on both.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

from sat2scape import data, geometry
from sat2scape.config import ConditionalConfig, make_config
from sat2scape.files import read_jsonl
from sat2scape.models import ConditionalDiscriminator
from sat2scape.train_conditional import (angles_for, condition, make_generator, mode_seeking_loss,
                                         pair_reconstruction_loss, train)


class Pairs(torch.utils.data.Dataset):
    """Photo, wide tile and heading of each pair, decoded from disk on every access."""

    def __init__(self, dataset: str, table, size: int):
        self.dataset, self.table, self.size = Path(dataset), table.reset_index(drop=True), size
        self.wide = geometry.wide_tile_size(size)

    def __len__(self):
        return len(self.table)

    def __getitem__(self, i):
        row = self.table.iloc[i]
        photo = torch.from_numpy(data.load_image(self.dataset / row["photo_path"], self.size)).permute(2, 0, 1)
        wide_path = row["satellite_wide_path"] or row["satellite_path"]
        wide = torch.from_numpy(data.load_image(self.dataset / wide_path, self.wide)).permute(2, 0, 1)
        return photo, wide, torch.tensor(float(row["heading"]) if row["heading"] == row["heading"] else float("nan"))


def reference_epoch(G, D, opt_G, opt_D, loader, cfg: ConditionalConfig) -> float:
    criterion = nn.BCEWithLogitsLoss()
    t0 = time.perf_counter()
    for photo, wide, heading in loader:
        tile, warp = condition(wide, angles_for(heading, cfg.heading), cfg.image_size)
        tile, warp, real = (x.repeat_interleave(2, 0) for x in (tile, warp, data.to_float(photo)))
        z = torch.randn(len(tile), cfg.nz)
        z[0::2] = 0
        judged = slice(None) if cfg.adv_point else slice(1, None, 2)
        D.zero_grad()
        fake = G(tile, warp, z)
        logit = D(real[judged], warp[judged])
        criterion(logit, torch.ones_like(logit)).backward()
        logit = D(fake[judged].detach(), warp[judged])
        criterion(logit, torch.zeros_like(logit)).backward()
        opt_D.step()
        G.zero_grad()
        logit = D(fake[judged], warp[judged])
        loss = (cfg.adv_weight * criterion(logit, torch.ones_like(logit))
                + cfg.rec_weight * pair_reconstruction_loss(fake, real, cfg.rec_size)
                + cfg.ms_weight * mode_seeking_loss(fake, z)[0])
        loss.backward()
        opt_G.step()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/world")
    parser.add_argument("--images", type=int, default=512, help="training pairs used")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ngf", type=int, default=32, help="G, D and tile-encoder width (demo: 32)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    preload = os.environ.get("LD_PRELOAD", "")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, allocator: "
          f"{'tcmalloc' if 'tcmalloc' in preload else 'jemalloc' if 'jemalloc' in preload else 'glibc malloc'}")
    cfg = make_config(ConditionalConfig, "paper", data=args.data, ngf=args.ngf, ndf=args.ngf, nef=args.ngf,
                      batch_size=args.batch_size, epochs=1, max_images=args.images, bf16="auto", device="cpu",
                      threads=args.threads, swd_every=0, sample_every=0, checkpoint_every_steps=0, ema_decay=0.999)
    table = data.load_pairs(args.data, "train", cfg.image_size, args.images, progress=False).table
    torch.manual_seed(0)
    G, D = make_generator(cfg), ConditionalDiscriminator(cfg.ndf)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    loader = torch.utils.data.DataLoader(Pairs(args.data, table, cfg.image_size), batch_size=args.batch_size // 2,
                                         shuffle=True, drop_last=True)
    ours, reference = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            run_dir = train(dataclasses.replace(cfg, runs=str(Path(tmp) / "runs")), progress=False)
            ours.append(read_jsonl(run_dir / "stats.jsonl")[-1]["epoch_time"])
            reference.append(reference_epoch(G, D, opt_G, opt_D, loader, cfg))
            print(f"round {r + 1}: ours {ours[-1]:.1f} s, reference {reference[-1]:.1f} s")
    measured = slice(1, None) if args.rounds > 1 else slice(None)
    views = len(table) // (args.batch_size // 2) * args.batch_size  # two views per place
    ours_s, ref_s = statistics.median(ours[measured]), statistics.median(reference[measured])
    print(f"\n{len(table)} pairs, {args.batch_size} views per step ({args.batch_size // 2} places x 2 z), "
          f"ngf = ndf = nef = {args.ngf}, median epoch of rounds 2..{args.rounds}")
    print(f"{'loop':<12}{'epoch s':>9}{'views/s':>9}")
    print(f"{'ours':<12}{ours_s:>9.1f}{views / ours_s:>9.1f}")
    print(f"{'reference':<12}{ref_s:>9.1f}{views / ref_s:>9.1f}")
    print(f"ratio ours / reference: {ref_s / ours_s:.2f}x")


if __name__ == "__main__":
    main()
