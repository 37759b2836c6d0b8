"""`python -m sat2scape figures`: every README figure and the demo GIF, from the code and the runs.

    figures/world.py     the built-in world's contact sheet (world_examples, datasets_examples)
    figures/diagrams.py  pipeline and layer diagrams drawn from the model definitions
    figures/gan.py       sample grid, latent traversal, loss curves
    figures/encoder.py   loss tables, prediction grids, the demo GIF's frames
    figures/conditional.py  the conditional model: one place at 8 headings, one tile with 6 z

Tables (the evaluation against baselines, the loss tables, the seed sweep, the loss ablation)
are written as markdown under assets/ and copied into the README between
`<!-- assets/NAME.md -->` and `<!-- end -->` markers, so the README always shows what the code
last measured.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

from .. import runs
from ..files import atomic_write_text

READMES = ("README.md", "README.ru.md")
BLOCK = re.compile(r"(<!-- (assets/[\w./-]+\.md) -->\n)(.*?)(<!-- end -->)", re.S)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="data/world", help="dataset folder the runs were trained on")
    parser.add_argument("--runs", default="data/runs")
    parser.add_argument("--gan-run", default=None, help="default: the newest gan run named *-demo, else the newest")
    parser.add_argument("--encoder-run", default=None, help="default: the newest encoder run named *-demo, else the newest")
    parser.add_argument("--conditional-run", default=None,
                        help="default: the newest conditional run named *-demo, else the newest")
    parser.add_argument("--out", default="assets")
    parser.add_argument("--gif", default="demo/prediction.gif")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--no-readme", action="store_true", help="do not update the README tables")


def run(args: argparse.Namespace) -> int:
    from ..manifest import ManifestError

    try:
        written = make_figures(args.data, args.runs, args.gan_run, args.encoder_run, args.out, args.gif,
                               args.frames, update_readmes=not args.no_readme, conditional_run=args.conditional_run)
    except (runs.DatasetTooSmall, ManifestError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def pick_run(runs_root: str | Path, stage: str, explicit: str | None = None) -> Path:
    """An explicit run, else the newest finished `*-demo` run of the stage, else the newest run
    (saying which and why)."""
    if explicit:
        return Path(explicit)
    found = runs.pick_latest(runs_root, stage, flag=f"--{stage}-run", prefer_suffix="-demo")
    if found is None:
        raise FileNotFoundError(f"no finished {stage} run under {runs_root}: run `python -m sat2scape demo` first")
    return found


def make_figures(data="data/world", runs_root="data/runs", gan_run=None, encoder_run=None, out="assets",
                 gif="demo/prediction.gif", frames=24, update_readmes=True, conditional_run=None) -> list[Path]:
    # Imported here: each family pulls in torch/matplotlib, and `--help` should stay instant.
    from .. import demo, evaluate, train_encoder
    from ..config import GANConfig
    from ..data import load_pairs, to_uint8
    from . import conditional, diagrams, gan, world
    from .encoder import write_loss_samples

    out = Path(out)
    # every figure below needs a held-out pair and a training pair: check before writing any
    for split in ("test", "train"):
        runs.require_pairs(data, split, 1, "the figures (the pipeline figures and the evaluation)")
    gan_run, encoder_run = pick_run(runs_root, "gan", gan_run), pick_run(runs_root, "encoder", encoder_run)
    paper = GANConfig()
    written = [world.world_examples(None, out / "world_examples.png"),
               world.world_examples(data, out / "datasets_examples.png"),
               *diagrams.architecture_diagrams(out, paper.nz, paper.ngf, paper.ndf),
               *gan.gan_figures(gan_run, out)]

    # The pipeline figures, around the first held-out pair and what the encoder makes of it.
    held_out = load_pairs(data, "test", progress=False)
    train_set = load_pairs(data, "train", max_images=3, progress=False)
    E, G = train_encoder.load_encoder(encoder_run)
    views, latents = train_encoder.predict_views(E, G, held_out.tiles[:1])
    hwc = lambda t: t.permute(1, 2, 0).numpy()  # noqa: E731  (C x H x W uint8 -> H x W x C)
    written.append(diagrams.generating_figure(hwc(held_out.tiles[0]), hwc(to_uint8(views)[0]),
                                              latents[0].numpy(), out / "generating.png"))
    written.append(diagrams.training_figure([hwc(p) for p in train_set.photos], hwc(held_out.tiles[0]),
                                            hwc(held_out.photos[0]), out / "training.png"))

    # The write-up's 3x3 loss tables, and the evaluation against baselines.
    generated, real, matrices = evaluate.loss_tables(encoder_run)
    written += write_loss_samples(out / "loss_samples", generated, real, matrices)
    if not (encoder_run / "metrics.md").exists():
        evaluate.evaluate(encoder_run, "test", oracle_images=64)
    written.append(Path(shutil.copyfile(encoder_run / "metrics.md", out / "evaluation.md")))
    if (encoder_run / "regions.md").exists():  # the same table by region of the view
        written.append(Path(shutil.copyfile(encoder_run / "regions.md", out / "regions.md")))
    # the newest encoder sweep over several seeds, the newest over several losses (the ablation),
    # and the newest conditional sweeps over several seeds and over the loss terms (the ablation)
    sweeps = [d for d in runs.list_runs(runs_root, "sweep") if (d / "metrics.md").exists()]
    def kind(sweep_dir: Path) -> str:
        return ("conditional-ablation" if "-sweep-conditional-ablation-" in sweep_dir.name
                else "conditional" if "-sweep-conditional-" in sweep_dir.name else "encoder")

    for key, name, wanted in (("seeds", "encoder_seeds.md", "encoder"), ("losses", "encoder_losses.md", "encoder"),
                              ("seeds", "conditional_seeds.md", "conditional"),
                              ("variants", "conditional_ablation.md", "conditional-ablation")):
        wide = [d for d in sweeps if kind(d) == wanted
                and len(json.loads((d / "metrics.json").read_text()).get(key, [])) > 1]
        if wide:  # a conditional sweep's summary.md is its table without the full evaluation below it
            table = next(p for p in (wide[-1] / "summary.md", wide[-1] / "metrics.md") if p.exists())
            written.append(Path(shutil.copyfile(table, out / name)))

    # the conditional model: one place at 8 headings, one tile with 6 draws of z
    conditional_run = pick_run(runs_root, "conditional", conditional_run)
    written += [conditional.around_figure(conditional_run, data, out / "conditional_around.png"),
                conditional.samples_figure(conditional_run, data, out / "conditional_samples.png")]
    written.append(demo.walk_gif(encoder_run, gif, frames, conditional_run=conditional_run))
    if update_readmes:
        written += [p for p in (update_readme(Path(name)) for name in READMES) if p]
    return written


def update_readme(readme: Path) -> Path | None:
    """Replace each `<!-- assets/X.md -->` ... `<!-- end -->` block with the file's current text."""
    if not readme.exists():
        return None
    text = readme.read_text(encoding="utf-8")

    def fill(m: re.Match) -> str:
        table = Path(m.group(2))
        body = table.read_text(encoding="utf-8").strip() + "\n" if table.exists() else m.group(3)
        return m.group(1) + body + m.group(4)

    new = BLOCK.sub(fill, text)
    if new != text:
        atomic_write_text(readme, new)
        return readme
    return None
