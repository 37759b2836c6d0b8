"""Held-out evaluation of an encoder run against baselines, side by side in one table.

    python -m sat2scape evaluate --run data/runs/00003-encoder-custom [--split test]
    python -m sat2scape evaluate --seeds 0,1,2 [--losses mse,ssim,custom] --preset demo --data data/world

The held-out split is a region the encoder never saw (pairs.csv splits by region). Every method
predicts one view per held-out tile; each is scored against the true photo with the paired
metrics (SSIM, MS-SSIM, PSNR, L1) and with retrieval: the rank of the true photo among all
held-out photos by descriptor distance to the prediction (metrics.retrieval_ranks).

    encoder             G(E(tile)), the run being evaluated
    nearest neighbour   the photo of the training pair whose tile looks most like the query tile
                        (the retrieval descriptor, a 16x16 colour layout, applied to tiles)
    linear layout       no generator: ridge regression from the tile's 16x16 colour layout to
                        the photo's, upsampled; the blurred view a linear model reads off the
                        tile, so it shows how much of a view the tile predicts at all
    mean photo          the mean training photo, the same for every tile
    random latent       G(z) for z ~ N(0, I): a realistic view that ignores the tile (the mean
                        of 10 draws of z, as one draw's retrieval is a roll of the dice)
    oracle              G(z*) with z* fitted to the true photo itself (Adam on z through the
                        frozen G, the encoder's own loss): the best any encoder could do with
                        this generator, an upper bound

The mean photo predicts one image for every tile, so it ranks the held-out photos in one fixed
order and its retrieval is exactly chance. Results go to the run directory as metrics.json and
metrics.md (`metrics-<split>.*` for a split other than test).

With `--seeds` (and/or `--losses`) the command instead trains one small encoder per seed (and
loss) against the same generator, evaluates each, and reports the encoder's retrieval top-5
margin over the mean-photo and random-latent baselines, mean and spread over the seeds, in a
`<NNNNN>-sweep-*` run directory.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import losses, metrics, runs, runtime
from .config import EncoderConfig, add_config_arguments, config_from_args, config_from_dict
from .data import load_pairs, to_float, to_uint8
from .files import atomic_write_json, atomic_write_text
from .train_encoder import load_encoder, predict_views, resolve_gan_run, train
from .train_gan import generate, load_discriminator

METHODS = {  # key -> row label in the table
    "encoder": "encoder G(E(tile))",
    "nearest_neighbour": "nearest neighbour (tile descriptor)",
    "linear_layout": "linear regression: tile → 16x16 photo layout (no G)",
    "mean_photo": "mean training photo",
    "random_latent": "G(random z)",
    "oracle": "oracle: z fitted to the photo (upper bound)",
}
RANDOM_DRAWS = 10  # G(random z) is scored as the mean over this many draws of z
COLUMNS = [("ssim", "SSIM ↑"), ("ms-ssim", "MS-SSIM ↑"), ("psnr", "PSNR ↑"), ("l1", "L1 ↓"),
           ("top1", "top-1 ↑"), ("top5", "top-5 ↑"), ("median_rank", "median rank ↓")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", help="encoder run directory (default: the newest encoder run under --runs)")
    parser.add_argument("--split", default="test", choices=["test", "val", "train"])
    parser.add_argument("--oracle-images", type=int, default=None,
                        help="fit the oracle latent for the first N held-out photos (-1: all, 0: skip; default "
                             "128, with --seeds/--losses 0); each costs --oracle-steps generator passes")
    parser.add_argument("--oracle-steps", type=int, default=50)
    parser.add_argument("--seeds", help="comma list: train one encoder per seed with the settings below, "
                                        "evaluate each and report margins over the baselines")
    parser.add_argument("--losses", help="comma list of losses to train and compare (the ablation)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    group = parser.add_argument_group("encoder settings for --seeds / --losses (and --device, --threads)")
    add_config_arguments(group, EncoderConfig)


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(EncoderConfig, args)
    sweeping = bool(args.seeds or args.losses)
    oracle_images = args.oracle_images if args.oracle_images is not None else (0 if sweeping else 128)
    oracle = dict(oracle_images=oracle_images, oracle_steps=args.oracle_steps)
    if sweeping:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [cfg.seed]
        names = args.losses.split(",") if args.losses else [cfg.loss]
        result = sweep(cfg, seeds, names, split=args.split, progress=not args.no_progress, **oracle)
        print(result["markdown"])
        print(f"\nwritten: {result['run_dir'] / 'metrics.md'}")
        return 0
    run_dir = Path(args.run) if args.run else runs.latest_run(cfg.runs, "encoder")
    if run_dir is None:
        print(f"no encoder run under {cfg.runs}; pass --run or train one (python -m sat2scape train-encoder)")
        return 2
    result = evaluate(run_dir, args.split, device=args.device or "auto", threads=args.threads or 0,
                      progress=not args.no_progress, **oracle)
    print(result["markdown"])
    print(f"\nwritten: {result['paths'][0]}, {result['paths'][1]}")
    return 0


def nearest_neighbour(query_tiles: torch.Tensor, train_tiles: torch.Tensor) -> torch.Tensor:
    """Index of the training tile closest to each query tile, by the 16x16 colour descriptor."""
    d = torch.cdist(metrics.retrieval_descriptor(to_float(query_tiles)),
                    metrics.retrieval_descriptor(to_float(train_tiles)))
    return d.argmin(1)


def linear_layout(train_tiles: torch.Tensor, train_photos: torch.Tensor, query_tiles: torch.Tensor,
                  size: int = 16, ridge: float = 2.5) -> torch.Tensor:
    """Ridge regression from each tile's size x size colour layout to its photo's, fitted on the
    training pairs and applied to `query_tiles` (uint8); returns views in [-1, 1] at full size.

    A least-squares predictor may stay blurred where the tile is ambiguous (the sky, the far
    horizon), which G(E(tile)) cannot: G must commit to one sharp scene. On retrieval, whose
    descriptor is this same layout, that is an advantage, and the row says how much of a view is
    predictable from the tile by the simplest model.
    """
    def layout(images):  # the retrieval descriptor, in [0, 1]
        return metrics.retrieval_descriptor(to_float(images), size).double()

    x, y = layout(train_tiles), layout(train_photos)
    x_mean, y_mean = x.mean(0), y.mean(0)
    xc = x - x_mean
    weights = torch.linalg.solve(xc.T @ xc + ridge * torch.eye(x.shape[1], dtype=x.dtype), xc.T @ (y - y_mean))
    pred = ((layout(query_tiles) - x_mean) @ weights + y_mean).float().view(-1, 3, size, size) * 2 - 1
    return torch.nn.functional.interpolate(pred, size=query_tiles.shape[-1], mode="bilinear",
                                           align_corners=False).clamp(-1, 1)


def fit_latents(G, photos: torch.Tensor, loss_fn, latent_reg: float, steps: int = 50, lr: float = 0.1,
                batch_size: int = 64, bf16: bool = False, progress: bool = True) -> torch.Tensor:
    """The oracle: for each photo, z* = argmin_z loss(G(z), photo) + latent_reg·½‖z‖², by Adam from
    z = 0 (G's mean latent), a batch of photos at a time. Each z only affects its own image, so the
    summed loss gives every z its own gradient. Returns the fitted latents on the CPU."""
    device = next(G.parameters()).device
    fitted = []
    for i in tqdm(range(0, len(photos), batch_size), desc="oracle latents", disable=not progress, leave=False):
        target = photos[i:i + batch_size].to(device)
        z = torch.zeros(len(target), G.nz, device=device, requires_grad=True)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            with runtime.autocast(device, bf16):
                loss = (loss_fn(G(z), target) + latent_reg * losses.latent_prior(z)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        fitted.append(z.detach().cpu())
    return torch.cat(fitted)


def score(pred: torch.Tensor, photos: torch.Tensor, index: torch.Tensor | None = None) -> dict:
    """Paired metrics against the true photos, and retrieval among all of `photos`."""
    target = photos if index is None else photos[index]
    row = metrics.paired_metrics(pred, target)
    ranks = metrics.retrieval_ranks(pred, photos, true_index=index)
    summary = metrics.retrieval_summary(ranks, gallery=len(photos))
    row.update({k: summary[k] for k in ("top1", "top5", "median_rank")})
    row["n"] = len(pred)
    return row


def markdown_table(methods: dict[str, dict], chance: dict, title_column: str = "method") -> str:
    lines = [f"| {title_column} | " + " | ".join(label for _, label in COLUMNS) + " | n |",
             "|---|" + "---:|" * (len(COLUMNS) + 1)]
    for key, row in methods.items():
        cells = [f"{row[c]:.3f}" if c != "median_rank" else f"{row[c]:.1f}" for c, _ in COLUMNS]
        lines.append(f"| {METHODS.get(key, key)} | " + " | ".join(cells) + f" | {row['n']} |")
    lines.append("| chance | | | | | " + f"{chance['top1']:.3f} | {chance['top5']:.3f} | "
                 f"{chance['median_rank']:.1f} | |")
    return "\n".join(lines)


def evaluate(run_dir: str | Path, split: str = "test", oracle_images: int = 128, oracle_steps: int = 50,
             device: str = "auto", threads: int = 0, seed: int = 0, progress: bool = True,
             write: bool = True) -> dict:
    """Score an encoder run and the baselines on `split`; write metrics(.json|.md) into the run."""
    run_dir = Path(run_dir)
    cfg = config_from_dict(EncoderConfig, runs.read_config(run_dir))
    runtime.set_threads(threads)
    device = runtime.pick_device(device)
    bf16 = runtime.use_bf16(cfg.bf16, device)
    E, G = load_encoder(run_dir, device)
    held_out = load_pairs(cfg.data, split, cfg.image_size, progress=progress)
    train_set = load_pairs(cfg.data, "train", cfg.image_size, cfg.max_images, progress=progress)
    photos = to_float(held_out.photos)
    n = len(photos)

    methods = {"encoder": score(predict_views(E, G, held_out.tiles, bf16=bf16)[0], photos)}
    nn_index = nearest_neighbour(held_out.tiles, train_set.tiles)
    methods["nearest_neighbour"] = score(to_float(train_set.photos[nn_index]), photos)
    methods["linear_layout"] = score(linear_layout(train_set.tiles, train_set.photos, held_out.tiles), photos)
    mean_photo = to_float(train_set.photos).mean(0, keepdim=True)
    methods["mean_photo"] = score(mean_photo.expand_as(photos), photos)
    # a random view hits its photo by luck alone; averaging draws measures that luck, not one roll
    gen = torch.Generator().manual_seed(seed)
    draws = [score(generate(G, torch.randn(n, G.nz, generator=gen), ctx=runtime.autocast(device, bf16)), photos)
             for _ in range(RANDOM_DRAWS)]
    methods["random_latent"] = {**{k: sum(d[k] for d in draws) / RANDOM_DRAWS for k in draws[0]}, "n": n}
    n_oracle = n if oracle_images < 0 else min(oracle_images, n)
    if n_oracle:
        D = (load_discriminator(resolve_gan_run(cfg, run_dir), device=device)
             if cfg.loss in losses.USES_DISCRIMINATOR else None)
        loss_fn = losses.make_loss(cfg.loss, discriminator=D, layout_weight=cfg.layout_weight,
                                   fm_weight=cfg.fm_weight)
        z_star = fit_latents(G, photos[:n_oracle], loss_fn, cfg.latent_reg, oracle_steps, bf16=bf16,
                             progress=progress)
        methods["oracle"] = score(generate(G, z_star, ctx=runtime.autocast(device, bf16)), photos,
                                  torch.arange(n_oracle))

    chance = metrics.retrieval_summary(torch.ones(n), gallery=n)
    chance = {k: chance[f"chance_{k}"] for k in ("top1", "top5", "median_rank")}
    markdown = markdown_table(methods, chance)
    result = {
        "run": str(run_dir), "gan_run": str(resolve_gan_run(cfg, run_dir)), "split": split, "n": n,
        "loss": cfg.loss, "seed": cfg.seed, "methods": methods, "chance": chance,
        "oracle": {"images": n_oracle, "steps": oracle_steps, "loss": cfg.loss},
        "markdown": markdown,
    }
    if write:
        stem = "metrics" if split == "test" else f"metrics-{split}"
        note = (f"Held-out split `{split}` of `{cfg.data}`: {n} pairs; retrieval ranks among all {n} photos."
                + (f" Oracle on the first {n_oracle} photos, {oracle_steps} Adam steps on z." if n_oracle else ""))
        result["paths"] = [atomic_write_json(run_dir / f"{stem}.json", {k: v for k, v in result.items() if k != "markdown"}),
                           atomic_write_text(run_dir / f"{stem}.md", f"{note}\n\n{markdown}\n")]
    return result


def distinct_examples(photos: torch.Tensor, count: int = 3) -> list[int]:
    """`count` typical but different photos: among the 80% nearest the mean (by the retrieval
    descriptor; the farthest hold oddities such as a view into a wall of leaves), a greedy
    farthest-point pick, so a table compares different scenes rather than three similar fields."""
    desc = metrics.retrieval_descriptor(to_float(photos))
    typical = (desc - desc.mean(0)).norm(dim=1).argsort()[:max(count, len(desc) * 4 // 5)]
    chosen = [int(typical[0])]
    while len(chosen) < min(count, len(photos)):
        far = torch.cdist(desc[typical], desc[chosen]).min(1).values.argmax()
        chosen.append(int(typical[far]))
    return chosen


def loss_tables(run_dir: str | Path, names=("mse", "ssim", "custom"), split: str = "test", count: int = 3,
                device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """The write-up's comparison on held-out pairs: `count` generated views G(E(tile)) against the
    `count` real photos of the same places, one matrix per loss (rows generated, columns real).
    Returns (generated, real) as uint8 and {loss name: matrix}."""
    run_dir = Path(run_dir)
    cfg = config_from_dict(EncoderConfig, runs.read_config(run_dir))
    E, G = load_encoder(run_dir, device)
    D = load_discriminator(resolve_gan_run(cfg, run_dir), device=device)
    held_out = load_pairs(cfg.data, split, cfg.image_size, progress=False)
    index = distinct_examples(held_out.photos, count)
    generated = predict_views(E, G, held_out.tiles[index])[0]
    real = to_float(held_out.photos[index])
    matrices = {name: losses.loss_matrix(losses.make_loss(name, discriminator=D, layout_weight=cfg.layout_weight,
                                                           fm_weight=cfg.fm_weight), generated, real)
                for name in names}
    return to_uint8(generated), held_out.photos[index], matrices


def sweep(base: EncoderConfig, seeds: list[int], loss_names: list[str], split: str = "test",
          oracle_images: int = 0, oracle_steps: int = 50, progress: bool = True) -> dict:
    """Train and evaluate one encoder per (loss, seed); tabulate the encoder rows and the top-5
    margins over the mean-photo and random-latent baselines (mean ± std and min over seeds)."""
    results = {}
    for name in loss_names:
        for seed in seeds:
            cfg = replace(base, loss=name, seed=seed, desc=f"{base.desc or 'sweep'}-{name}-s{seed}")
            cfg.gan_run = str(resolve_gan_run(cfg))
            # a rerun reuses finished encoders and resumes an interrupted one
            previous = runs.find_run(cfg.runs, "encoder", cfg.desc, data=cfg.data, gan_run=cfg.gan_run)
            run_dir = train(cfg, resume=previous, progress=progress)
            results[(name, seed)] = evaluate(run_dir, split, oracle_images, oracle_steps, device=cfg.device,
                                             threads=cfg.threads, seed=seed, progress=progress)
    sweep_dir = runs.new_run_dir(base.runs, "sweep", base.desc or "encoder")
    rows = {f"{name} seed {seed}": r["methods"]["encoder"] for (name, seed), r in results.items()}
    chance = next(iter(results.values()))["chance"]
    lines = [markdown_table(rows, chance, title_column="encoder (loss, seed)"), "",
             "| loss | top-5 | margin over mean photo | margin over G(random z) | min margin over seeds "
             "| median rank | G(random z) median rank |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    margins = {}
    for name in loss_names:
        top5 = [results[(name, s)]["methods"]["encoder"]["top5"] for s in seeds]
        over_mean = [t - results[(name, s)]["methods"]["mean_photo"]["top5"] for t, s in zip(top5, seeds)]
        over_random = [t - results[(name, s)]["methods"]["random_latent"]["top5"] for t, s in zip(top5, seeds)]
        median = [results[(name, s)]["methods"]["encoder"]["median_rank"] for s in seeds]
        random_median = [results[(name, s)]["methods"]["random_latent"]["median_rank"] for s in seeds]
        margins[name] = {"top5": top5, "over_mean_photo": over_mean, "over_random_latent": over_random,
                         "median_rank": median, "random_latent_median_rank": random_median}

        def pm(values, digits=3):
            spread = statistics.stdev(values) if len(values) > 1 else 0
            return f"{statistics.mean(values):+.{digits}f} ± {spread:.{digits}f}"
        lines.append(f"| {name} | {pm(top5)[1:]} | {pm(over_mean)} | {pm(over_random)} | "
                     f"{min(over_mean + over_random):+.3f} | {pm(median, 1)[1:]} | {pm(random_median, 1)[1:]} |")
    markdown = "\n".join(lines)
    atomic_write_json(sweep_dir / "metrics.json", {
        "seeds": seeds, "losses": loss_names, "split": split, "margins": margins,
        "runs": {f"{name}-s{seed}": r["run"] for (name, seed), r in results.items()},
        "methods": {f"{name}-s{seed}": r["methods"] for (name, seed), r in results.items()}})
    atomic_write_text(sweep_dir / "metrics.md", f"Seeds {seeds} on split `{split}`, {len(seeds)} encoder{'s' * (len(seeds) > 1)} per loss, "
                      f"preset-sized as configured (epochs {base.epochs}, nef {base.nef}).\n\n{markdown}\n")
    return {"run_dir": sweep_dir, "margins": margins, "markdown": markdown, "results": results}
