"""The README never shows a picture the code cannot make, nor a table the code did not print.

Runs the smoke demo into a temporary folder, then the figures command on it, and checks that
every image both READMEs reference is one the figures command writes (or a committed asset it
wrote earlier), and that every README table block is the text of its asset file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT
from sat2scape import demo
from sat2scape.figures import BLOCK, READMES, make_figures

IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)|<img[^>]+src=\"([^\"]+)\"")


def referenced_images(readme: Path) -> set[str]:
    text = readme.read_text(encoding="utf-8")
    return {a or b for a, b in IMAGE_LINK.findall(text) if not (a or b).startswith("http")}


def test_readmes_exist_with_two_quick_start_commands():
    for name in READMES:
        text = (ROOT / name).read_text(encoding="utf-8")
        quick = text.split("\n## ")[1]
        commands = re.findall(r"```(?:bash|sh)?\n(.*?)```", quick, re.S)
        lines = [line for block in commands for line in block.strip().splitlines() if not line.startswith("#")]
        assert lines == ["make demo", "make test"], f"{name}: Quick start must hold exactly the two commands"


def test_every_readme_table_block_matches_its_asset():
    for name in READMES:
        for m in BLOCK.finditer((ROOT / name).read_text(encoding="utf-8")):
            asset = ROOT / m.group(2)
            assert asset.exists(), f"{name} embeds {m.group(2)}, which does not exist"
            assert m.group(3).strip() == asset.read_text(encoding="utf-8").strip(), \
                f"{name}: the block for {m.group(2)} is stale; run `python -m sat2scape figures`"


@pytest.mark.slow
def test_figures_command_makes_every_readme_image(tmp_path):
    data, runs_root = tmp_path / "world", tmp_path / "runs"
    demo.demo(data=str(data), runs_root=str(runs_root), gif=str(tmp_path / "walk.gif"), smoke=True, progress=False)
    out = tmp_path / "assets"
    made = make_figures(data, runs_root, out=out, gif=tmp_path / "prediction.gif", frames=3, update_readmes=False)
    made = {str(Path(p).relative_to(tmp_path)) for p in made}
    made = {p.replace("prediction.gif", "demo/prediction.gif") for p in made}
    for name in READMES:
        for image in referenced_images(ROOT / name):
            assert (ROOT / image).exists(), f"{name} references {image}, which is not in the repository"
            assert image in made, f"{name} references {image}, which `python -m sat2scape figures` does not make"
