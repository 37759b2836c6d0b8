"""Command line: `python -m sat2scape <verb> ...`, one verb per pipeline stage.

Each verb lives in its stage's module, which defines `add_arguments(parser)` and `run(args)`.
Modules are imported only when their verb is used, so `--help` is instant and a verb that
needs torch does not slow down one that does not.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# verb -> (module, one-line help), in pipeline order
VERBS: dict[str, tuple[str, str]] = {
    "world": ("sat2scape.world", "generate paired satellite tiles and ground views from the built-in world"),
    "photos": ("sat2scape.sources.photos", "collect geotagged photos (vk | commons) into a dataset folder"),
    "filter": ("sat2scape.filters.funnel", "run the filter funnel (scene, people, quality, duplicates, review)"),
    "satellite": ("sat2scape.sources.satellite", "download a satellite tile for every kept photo (yandex | xyz)"),
    "train-gan": ("sat2scape.train_gan", "train the DCGAN on a dataset's photos"),
    "train-encoder": ("sat2scape.train_encoder", "train the tile encoder against a frozen generator"),
    "train-conditional": ("sat2scape.train_conditional", "train the conditional, heading-aware generator (tile + heading + z -> view)"),
    "train-segmenter": ("sat2scape.segment", "train (or reuse) the segmenter behind the ground-class score"),
    "evaluate": ("sat2scape.evaluate", "evaluate an encoder run on the held-out region against baselines"),
    "predict": ("sat2scape.predict", "predict the ground view for satellite tiles"),
    "demo": ("sat2scape.demo", "the whole pipeline on the built-in world: data, GAN, encoder, evaluation, GIF"),
    "figures": ("sat2scape.figures", "regenerate every README figure under assets/ from the latest runs"),
}


def _usage() -> str:
    width = max(map(len, VERBS))
    lines = ["usage: python -m sat2scape <verb> [options]", "", "verbs:"]
    lines += [f"  {verb:<{width}}  {help_}" for verb, (_, help_) in VERBS.items()]
    lines += ["", "`python -m sat2scape <verb> --help` shows a verb's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        print(f"unknown verb {verb!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, help_ = VERBS[verb]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"python -m sat2scape {verb}", description=help_)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
