"""`python -m sat2scape predict`: real tiles in, views out; odd inputs explained, not crashed on."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from sat2scape import manifest
from sat2scape.__main__ import main
from sat2scape.config import ConditionalConfig, make_config
from sat2scape.predict import read_wide_tile
from sat2scape.train_conditional import condition, train
from test_encoder import tiny  # noqa: F401  (fixture)
from test_gan import write_tiny_dataset


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


# ---------------------------------------------------------------------------------------------
# the conditional, heading-aware model through the same command (issue 12, item 3)

CELL = 128 + 2  # a view and image_rows' white gap
LABELS = 16     # image_rows' strip of column labels


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    """A heading-aware and a heading-free conditional run, each trained 2 steps on a tiny dataset."""
    root = tmp_path_factory.mktemp("conditional")
    data = write_tiny_dataset(root / "data", n=24)
    pairs = manifest.read(data, "pairs.csv")
    pairs["heading"] = [float(i * 37 % 360) for i in range(len(pairs))]
    manifest.write(data, "pairs.csv", pairs)

    def run(heading):
        cfg = make_config(ConditionalConfig, "smoke", data=str(data), runs=str(root / "runs"), threads=1,
                          heading=heading)
        return train(cfg, progress=False, max_steps=2)

    return SimpleNamespace(known=run("known"), free=run("random"))


@pytest.fixture(scope="module")
def wide_tile(tmp_path_factory):
    """A 182 px noise tile (what `satellite` fetches as satellite_wide/) and its 128 px centre crop."""
    folder = tmp_path_factory.mktemp("wide")
    rng = np.random.default_rng(1)
    wide = Image.fromarray(rng.integers(0, 255, (182, 182, 3), dtype=np.uint8))
    wide.save(folder / "wide.png")
    wide.crop((27, 27, 155, 155)).save(folder / "crop.png")
    return folder / "wide.png", folder / "crop.png"


def predict(*args) -> int:
    return main(["predict", *map(str, args), "--threads", "1"])


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float32)


def cells(grid: np.ndarray, rows: int, cols: int, top: int = 0) -> np.ndarray:
    """rows x cols x 128 x 128 x 3: the views of an image_rows grid."""
    return np.stack([np.stack([grid[top + 2 + r * CELL:top + 2 + r * CELL + 128, 2 + c * CELL:2 + c * CELL + 128]
                               for c in range(cols)]) for r in range(rows)])


def test_around_makes_a_labelled_strip_of_different_views(conditional, wide_tile, tmp_path, capsys):
    out = tmp_path / "around.png"
    assert predict(wide_tile[0], "--run", conditional.known, "--around", 4, "-o", out) == 0
    grid = pixels(out)
    assert grid.shape == (LABELS + CELL + 2, 4 * CELL + 2, 3)
    views = cells(grid, 1, 4, top=LABELS)[0]
    for a in range(4):
        for b in range(a + 1, 4):
            assert np.abs(views[a] - views[b]).mean() > 0.5, f"headings {a * 90} and {b * 90} look the same"
    assert "notice" not in capsys.readouterr().out  # a wide tile turns with clean corners


def test_samples_give_one_row_each(conditional, wide_tile, tmp_path):
    out = tmp_path / "samples.png"
    assert predict(wide_tile[0], "--run", conditional.known, "--heading", 30, "--samples", 3, "-o", out) == 0
    grid = pixels(out)
    assert grid.shape == (3 * CELL + 2, CELL + 2, 3)  # one column, no labels
    rows = cells(grid, 3, 1)[:, 0]
    assert np.abs(rows[0] - rows[1]).mean() > 1 and np.abs(rows[1] - rows[2]).mean() > 1
    again = tmp_path / "again.png"
    assert predict(wide_tile[0], "--run", conditional.known, "--heading", 30, "--samples", 3, "-o", again) == 0
    assert again.read_bytes() == out.read_bytes()  # z is drawn from --seed


def test_samples_and_around_make_a_grid_per_tile(conditional, wide_tile, tmp_path):
    out = tmp_path / "grids"  # a folder of a wide and a plain tile: one grid each
    assert predict(wide_tile[0].parent, "--run", conditional.known, "--around", 3, "--samples", 2, "-o", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["crop.png", "wide.png"]
    for grid in out.iterdir():
        assert pixels(grid).shape == (LABELS + 2 * CELL + 2, 3 * CELL + 2, 3)


def test_the_same_heading_gives_the_same_bytes_and_another_does_not(conditional, wide_tile, tmp_path, capsys):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for out, heading in ((a, 135), (b, 135), (c, 225)):
        assert predict(wide_tile[0], "--run", conditional.known, "--heading", heading, "-o", out) == 0
    assert a.read_bytes() == b.read_bytes()
    assert pixels(a).shape == (128, 128, 3) and np.abs(pixels(a) - pixels(c)).mean() > 0.5
    north = tmp_path / "north.png"
    capsys.readouterr()
    assert predict(wide_tile[0], "--run", conditional.known, "-o", north) == 0
    assert "no --heading: the view looks north" in capsys.readouterr().out


def test_a_heading_free_run_ignores_the_heading(conditional, wide_tile, tmp_path, capsys):
    plain, turned = tmp_path / "plain.png", tmp_path / "turned.png"
    assert predict(wide_tile[0], "--run", conditional.free, "-o", plain) == 0
    assert "no --heading" not in capsys.readouterr().out
    assert predict(wide_tile[0], "--run", conditional.free, "--heading", 90, "-o", turned) == 0
    assert "--heading 90 ignored: the run is heading-free" in capsys.readouterr().out
    assert plain.read_bytes() == turned.read_bytes()
    assert predict(wide_tile[0], "--run", conditional.free, "--around", 4, "-o", tmp_path / "x.png") == 2
    assert "heading-free" in capsys.readouterr().err and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("flags", [["--heading", "90"], ["--samples", "2"], ["--around", "4"]])
def test_an_encoder_run_refuses_conditional_flags(tiny, wide_tile, tmp_path, capsys, flags):  # noqa: F811
    out = tmp_path / "v.png"
    assert predict(wide_tile[1], "--run", tiny.encoder_run, *flags, "-o", out) == 2
    err = capsys.readouterr().err
    assert f"{flags[0]}: {tiny.encoder_run} is an encoder run" in err and "pass a conditional run" in err
    assert "Traceback" not in err and not out.exists()


def test_the_default_run_is_the_newest_conditional_one(conditional, tiny, wide_tile, tmp_path, capsys):  # noqa: F811
    root = tmp_path / "runs"
    root.mkdir()
    os.symlink(tiny.encoder_run, root / "00002-encoder-smoke")
    out = tmp_path / "v.png"
    assert predict(wide_tile[1], "--runs", root, "-o", out) == 0  # only an encoder run: that one
    assert f"using {root / '00002-encoder-smoke'}: the newest encoder run" in capsys.readouterr().err
    os.symlink(conditional.free, root / "00000-conditional-free")
    os.symlink(conditional.known, root / "00001-conditional-known")  # older than the encoder run
    assert predict(wide_tile[0], "--runs", root, "--heading", 45, "-o", out) == 0
    err = capsys.readouterr().err
    assert f"using {root / '00001-conditional-known'}: the newest conditional run" in err
    direct = tmp_path / "direct.png"
    assert predict(wide_tile[0], "--run", conditional.known, "--heading", 45, "-o", direct) == 0
    assert out.read_bytes() == direct.read_bytes()


def test_a_wide_tile_and_its_centre_crop_agree_north_and_differ_turned(conditional, wide_tile, tmp_path, capsys):
    wide, crop = wide_tile
    big, notices, is_wide = read_wide_tile(wide)
    small, _, small_wide = read_wide_tile(crop)
    assert big.shape == (182, 182, 3) and is_wide and not notices and small.shape == (128, 128, 3) and not small_wide
    to_tensor = lambda t: torch.from_numpy(np.array(t)).permute(2, 0, 1)[None]  # noqa: E731
    a, _ = condition(to_tensor(big), torch.tensor([45.0]), 128)
    b, _ = condition(to_tensor(small), torch.tensor([45.0]), 128)
    yy, xx = np.mgrid[:128, :128] + 0.5 - 64
    r = np.hypot(yy, xx)
    diff = (a - b).abs()[0].mean(0).numpy()
    assert diff[r < 60].max() < 1e-4 and diff[r > 80].mean() > 0.1  # the same ground; the corners clamped

    def view(tile, heading):
        out = tmp_path / f"{tile.stem}-{heading}.png"
        assert predict(tile, "--run", conditional.known, "--heading", heading, "-o", out) == 0
        return pixels(out)

    assert np.abs(view(wide, 0) - view(crop, 0)).mean() < 0.5
    capsys.readouterr()
    assert np.abs(view(wide, 45) - view(crop, 45)).mean() > 0.5
    assert "corners are clamped when turned (pass a 182 px tile" in capsys.readouterr().out


def test_a_bigger_tile_is_read_as_a_wide_tile(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 256)).save(path)
    tile, notices, is_wide = read_wide_tile(path)
    assert tile.shape == (182, 182, 3) and is_wide
    assert any("300x256 is not square" in n for n in notices)
    assert any("resized from 256x256 to 182x182 (read as a wide tile)" in n for n in notices)


def test_a_place_gets_the_wide_tile_for_a_conditional_run(conditional, tmp_path, capsys):
    from sat2scape.sources.fake_servers import FakeTiles

    out = tmp_path / "view.png"
    with FakeTiles() as tiles:
        code = predict("--lat", "57.62", "--lon", "39.88", "--url-template", tiles.template, "--tile-cache", tmp_path,
                       "--run", conditional.known, "--heading", 300, "-o", out)
    printed = capsys.readouterr().out
    assert code == 0, printed
    with Image.open(tmp_path / "view-tile.png") as im:
        assert im.size == (182, 182)
    assert pixels(out).shape == (128, 128, 3)
    assert "fetched 57.62,39.88" in printed and "the wide 182 px tile): " in printed
