"""Image quality: real photos pass, planted problems and broken files each get a reason."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps

from sat2scape.filters import quality


def real_photos(real_samples: Path) -> list[Path]:
    """The nature photos and the CVUSA/Dayton ground views: all usable photos, none with people."""
    return (sorted((real_samples / "nature").glob("*.jpg")) + sorted((real_samples / "cvusa").glob("*_ground.jpg"))
            + sorted((real_samples / "dayton").glob("*_ground.png")))


def test_real_photos_pass_quality(real_samples):
    photos = real_photos(real_samples)
    assert len(photos) >= 12
    results = quality.judge(photos)
    failed = {p.name: reason for p, (keep, reason, _) in zip(photos, results) if not keep}
    assert not failed


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def broken_corpus(folder: Path, photo: Image.Image) -> dict[str, tuple[Path, str]]:
    """Awkward files made from `photo`: name -> (path, part of the expected reason; "" = kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    good = folder / "good.jpg"
    photo.save(good, quality=92)
    files["truncated"] = folder / "truncated.jpg", "not a readable image"
    files["truncated"][0].write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    files["zero_bytes"] = folder / "zero.jpg", "not a readable image"
    files["zero_bytes"][0].write_bytes(b"")
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    files["png_alpha"] = folder / "alpha.png", "transparent"
    rgba.save(files["png_alpha"][0])
    files["png_opaque_alpha"] = folder / "opaque_alpha.png", ""
    photo.convert("RGBA").save(files["png_opaque_alpha"][0])
    files["cmyk_jpeg"] = folder / "cmyk.jpg", ""
    photo.convert("CMYK").save(files["cmyk_jpeg"][0], quality=92)
    files["png16_rgb"] = folder / "rgb16.png", ""
    cv2.imwrite(str(files["png16_rgb"][0]), (np.asarray(photo)[..., ::-1].astype(np.uint16) * 257))
    files["png16_grey"] = folder / "grey16.png", "greyscale"
    cv2.imwrite(str(files["png16_grey"][0]), np.asarray(photo.convert("L")).astype(np.uint16) * 257)
    files["one_pixel"] = folder / "one.png", "too small"
    files["missing"] = folder / "missing.jpg", "FileNotFoundError"
    Image.new("RGB", (1, 1), (90, 140, 60)).save(files["one_pixel"][0])
    # Decompression bombs: valid headers declaring 10^10 pixels (past PIL's own guard) or 81 MP
    # (past ours), and hardly any data.
    for name, side, reason in (("bomb", 100_000, "DecompressionBombError"), ("bomb_81mp", 9_000, "over the limit")):
        header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
        data = _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        files[name] = folder / f"{name}.png", reason
        files[name][0].write_bytes(b"\x89PNG\r\n\x1a\n" + data + _png_chunk(b"IEND", b""))
    good.unlink()
    return files


@pytest.fixture
def photo(real_samples) -> Image.Image:
    return Image.open(real_samples / "nature" / "Dune.jpg").convert("RGB")


def test_broken_files_each_get_a_reason(tmp_path, photo):
    corpus = broken_corpus(tmp_path, photo)
    results = quality.judge([path for path, _ in corpus.values()])
    for (name, (_, expected)), (keep, reason, _) in zip(corpus.items(), results):
        assert keep == (expected == ""), (name, reason)
        assert expected in reason and " at 0x" not in reason, (name, reason)  # reasons must not vary by run


def test_odd_modes_decode_to_the_same_picture(tmp_path, photo):
    corpus = broken_corpus(tmp_path, photo)
    reference = np.asarray(photo, dtype=float)
    for name in ("cmyk_jpeg", "png16_rgb", "png_opaque_alpha"):
        decoded = quality.open_rgb(corpus[name][0])
        assert decoded.mode == "RGB" and decoded.size == photo.size
        assert np.abs(np.asarray(decoded, dtype=float) - reference).mean() < 8, name
    grey = np.asarray(quality.open_rgb(corpus["png16_grey"][0]), dtype=float)[..., 0]
    assert np.abs(grey - np.asarray(photo.convert("L"))).max() <= 1  # 16 bits scaled, not clipped


def test_planted_problems_are_named(photo):
    m = quality.measure
    cases = {
        "blurry": photo.filter(ImageFilter.GaussianBlur(2)),
        "too dark": Image.eval(photo, lambda v: v // 10),
        "too bright": Image.eval(photo, lambda v: 235 + v // 16),
        "greyscale": photo.convert("L").convert("RGB"),
        "monochrome": ImageOps.colorize(photo.convert("L"), "#2b1a0e", "#f5e6c8"),
        "too small": photo.resize((200, 125)),
        "elongated": photo.crop((0, 0, photo.width, photo.width // 3)).resize((1200, 400)),
    }
    for expected, im in cases.items():
        reasons = quality.problems(m(im))
        assert any(r.startswith(expected) for r in reasons), (expected, reasons)
    assert quality.problems(m(photo)) == []


def test_thumbnail_of_a_broken_file_is_a_placeholder(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"nope")
    assert quality.thumbnail(tmp_path / "x.jpg", 64).size == (64, 64)
