"""Throughput of each filter stage: images per second on this machine.

    python benchmarks/filters.py                 # 100 images, CPU
    python benchmarks/filters.py --n 200 --rcnn-n 100 --device cuda

The images are the real samples (nature, CVUSA and Dayton ground views) cycled with random crops
and resizes to --n files of 320-1024 px (synthetic views where the samples are absent), written
as JPEG, so every stage pays for decoding as it does in the funnel. The scene stage runs ResNet18
with random-init weights in the official checkpoint format, and Faster R-CNN with random-init
weights on the first --rcnn-n images: the pretrained files cannot be downloaded here, and the
compute is the same.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sat2scape import runtime
from sat2scape.filters import dedupe, funnel, people, quality, scene

REAL_SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "real-samples"


def images(n: int, seed: int = 0) -> list[Image.Image]:
    sources = [Image.open(p).convert("RGB") for p in sorted(REAL_SAMPLES.glob("*/*.jpg")) + sorted(REAL_SAMPLES.glob("*/*.png"))
               if "aerial" not in p.name]
    sources = sources or [funnel.synthetic_landscape(i) for i in range(8)]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        im = sources[i % len(sources)]
        w, h = im.size
        x, y = rng.integers(0, w // 8 + 1), rng.integers(0, h // 8 + 1)  # a random crop, then a size a phone might give
        im = im.crop((x, y, x + w * 7 // 8, y + h * 7 // 8))
        side = int(rng.integers(320, 1025))
        out.append(im.resize((side, max(1, side * im.height // im.width))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--device", default="cpu", help="for the scene CNN")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rcnn-n", type=int, default=5, help="images for the (slow on CPU) Faster R-CNN")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    runtime.configure_cpu(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, im in enumerate(images(args.n)):
            paths.append(Path(tmp) / f"{i:04d}.jpg")
            im.save(paths[-1], quality=90)
        model = scene.load_model("resnet18", scene.random_checkpoint(Path(tmp) / "resnet18.pth.tar"))
        scene.judge(paths[:4], model=model, device=args.device)  # warm-up: first-call kernel setup

        from torchvision.models.detection import fasterrcnn_resnet50_fpn_v2

        rcnn = fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=91).eval()
        few = paths[:args.rcnn_n]
        people.judge(few[:1], detector="rcnn", model=rcnn, device=args.device)  # warm-up

        stages = {  # name -> (images, run)
            "quality": (paths, lambda: quality.judge(paths)),
            "people (HOG + 4 Haar)": (paths, lambda: people.judge(paths)),
            "dedupe (phash)": (paths, lambda: dedupe.judge(paths, [p.stem for p in paths])),
            f"scene (ResNet18, {args.device})": (paths, lambda: scene.judge(
                paths, model=model, batch_size=args.batch_size, device=args.device)),
            f"people (Faster R-CNN, {args.device})": (few, lambda: people.judge(
                few, detector="rcnn", model=rcnn, device=args.device)),
        }
        rows = []
        for name, (done, fn) in stages.items():
            t0 = time.perf_counter()
            fn()
            rows.append((name, len(done), time.perf_counter() - t0))

    import torch

    print(f"\nJPEGs of 320-1024 px, torch threads {torch.get_num_threads()}")
    print(f"{'stage':<36} {'images':>6} {'seconds':>8} {'images/s':>9}")
    for name, n, seconds in rows:
        print(f"{name:<36} {n:6d} {seconds:8.2f} {n / seconds:9.1f}")
    print("The CNNs run with random weights (the pretrained files cannot be downloaded here); "
          "their speed is that of the real models.")


if __name__ == "__main__":
    main()
