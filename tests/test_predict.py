"""`python -m sat2scape predict`: real tiles in, views out; odd inputs explained, not crashed on."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sat2scape.__main__ import main
from test_encoder import tiny  # noqa: F401  (fixture)


def test_predict_a_real_tile_resized_with_a_notice(tiny, real_samples, tmp_path, capsys):  # noqa: F811
    tiles = sorted(real_samples.glob("cvusa/*_aerial.jpg"))
    if not tiles:
        pytest.skip(f"no cvusa/*_aerial.jpg under {real_samples}")
    out = tmp_path / "view.png"
    assert main(["predict", str(tiles[0]), "--run", str(tiny.encoder_run), "-o", str(out), "--threads", "2"]) == 0
    printed = capsys.readouterr().out
    assert "notice:" in printed and "resized from 256x256 to 128x128" in printed
    with Image.open(out) as im:
        assert im.size == (128, 128) and im.mode == "RGB"


def test_predict_a_folder_into_a_folder_converting_modes(tiny, tmp_path, capsys):  # noqa: F811
    folder = tmp_path / "tiles"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (100, 150), dtype=np.uint8), mode="L").save(folder / "b.png")
    Image.fromarray(rng.integers(0, 255, (128, 128, 4), dtype=np.uint8), mode="RGBA").save(folder / "c.png")
    (folder / "notes.txt").write_text("not a tile")  # ignored: not an image suffix
    out = tmp_path / "views"
    assert main(["predict", str(folder), "--run", str(tiny.encoder_run), "-o", str(out), "--threads", "2"]) == 0
    printed = capsys.readouterr().out
    assert "b.png: mode L converted to RGB" in printed and "150x100 is not square" in printed
    assert "c.png: mode RGBA converted to RGB" in printed
    assert not any("a.png" in line for line in printed.splitlines() if line.startswith("notice"))
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]


def test_predict_rejects_a_non_image_by_name(tiny, tmp_path, capsys):  # noqa: F811
    bogus = tmp_path / "tile.png"
    bogus.write_text("this is not a PNG")
    assert main(["predict", str(bogus), "--run", str(tiny.encoder_run), "-o", str(tmp_path / "v.png")]) == 2
    err = capsys.readouterr().err
    assert str(bogus) in err and "not an image" in err and "Traceback" not in err
    assert not (tmp_path / "v.png").exists()


def test_predict_fetches_the_tile_for_a_place(tiny, tmp_path, capsys):  # noqa: F811
    from sat2scape.sources.fake_servers import FakeTiles

    out = tmp_path / "view.png"
    with FakeTiles() as tiles:
        code = main(["predict", "--lat", "57.62", "--lon", "39.88", "--url-template", tiles.template,
                     "--tile-cache", str(tmp_path), "--run", str(tiny.encoder_run), "-o", str(out)])
    assert code == 0, capsys.readouterr()
    assert out.exists() and (tmp_path / "view-tile.png").exists()
    assert "fetched 57.62,39.88" in capsys.readouterr().out


def test_predict_names_a_missing_run(tmp_path, capsys):
    tile = tmp_path / "t.png"
    Image.new("RGB", (128, 128)).save(tile)
    assert main(["predict", str(tile), "--run", str(tmp_path / "nope"), "-o", str(tmp_path / "v.png")]) == 2
    assert "not a trained encoder run" in capsys.readouterr().err
