"""sources/http.py: the rate limiter measured at the server, retries, timeouts, safe downloads."""

from __future__ import annotations

import pytest

from sat2scape.sources.fake_servers import FakeTiles
from sat2scape.sources.http import Http, HttpError, Secret, download_image, parallel


@pytest.fixture
def tiles():
    with FakeTiles() as fake:
        yield fake


def test_rate_limiter_never_exceeds_the_limit_at_the_server(tiles):
    http = Http(rate=25)
    urls = [tiles.template.format(z=3, x=i % 8, y=i // 8 % 8) for i in range(55)]
    statuses = [reply.status for _, reply in parallel(http.get, urls, workers=6, progress=False)]
    assert statuses == [200] * len(urls)
    times = sorted(r["t"] for r in tiles.requests)
    assert tiles.rate_seen("/tiles") <= 25  # no one-second window holds more than the limit
    assert (len(times) - 1) / (times[-1] - times[0]) > 25 * 0.85  # and the limit is nearly used


def test_5xx_and_429_are_retried_then_give_up(tiles):
    url = tiles.template.format(z=1, x=0, y=0)
    tiles.fail_next = [503, 429, 500]
    assert Http(retries=3, backoff=0.01).get(url).status == 200
    tiles.fail_next = [503] * 5
    with pytest.raises(HttpError, match="after 3 attempts: HTTP 503"):
        Http(retries=2, backoff=0.01).get(url)


def test_slow_response_times_out_and_is_retried(tmp_path, tiles):
    tiles.slow_s = 0.6
    tiles.image_faults["late.jpg"] = ["slow"]  # only the first request is slow
    result = download_image(Http(timeout=0.2, retries=2, backoff=0.01), f"{tiles.url}/img/late.jpg", tmp_path / "a.jpg")
    assert result.ok and (tmp_path / "a.jpg").exists()
    assert sum(r["path"] == "/img/late.jpg" for r in tiles.requests) == 2

    tiles.image_faults["late.jpg"] = "slow"  # always slow: fails, with the reason
    result = download_image(Http(timeout=0.2, retries=1, backoff=0.01), f"{tiles.url}/img/late.jpg", tmp_path / "b.jpg")
    assert not result.ok and "Timeout" in result.reason and not (tmp_path / "b.jpg").exists()


@pytest.mark.parametrize("fault, reason", [
    ("corrupt", "not a readable image"),
    ("huge", "over the limit"),
    ("bomb", "over the limit of"),
    ("html", "is not an image"),
    ("404", "HTTP 404"),
])
def test_bad_images_are_failures_and_never_saved(tmp_path, tiles, fault, reason):
    tiles.image_faults["x.jpg"] = fault
    result = download_image(Http(retries=0), f"{tiles.url}/img/x.jpg", tmp_path / "x.jpg", max_bytes=200_000)
    assert not result.ok and reason in result.reason
    assert list(tmp_path.iterdir()) == []  # no file, no temp file


def test_good_image_is_saved_with_its_hash_and_size(tmp_path, tiles):
    from sat2scape.files import sha256_file

    result = download_image(Http(), f"{tiles.url}/img/ok.jpg", tmp_path / "ok.jpg")
    assert result.ok and (result.width, result.height) == tiles.image_size
    assert result.sha256 == sha256_file(tmp_path / "ok.jpg")


def test_token_is_redacted_from_reprs_and_errors():
    token = Secret("s3cret-token-value")
    assert "s3cret" not in repr(token) + str(token) + repr(Http(bearer=token))
    with pytest.raises(HttpError) as error:  # nothing listens on port 9: a connection error quoting the URL
        Http(bearer=token, retries=0, timeout=0.5).get("http://127.0.0.1:9/x?echo=s3cret-token-value")
    assert "s3cret" not in str(error.value) and "***" in str(error.value)


def jpeg(path, exif=None):
    """A small JPEG written by PIL, with the given EXIF (an Image.Exif or raw bytes) or none."""
    from PIL import Image

    image = Image.new("RGB", (40, 30), (90, 140, 60))
    image.save(path, format="JPEG", **({"exif": exif} if exif is not None else {}))
    return path


def gps_exif(direction, ref="T"):
    from PIL import Image

    exif = Image.Exif()
    exif[0x8825] = {0x0010: ref, 0x0011: direction}  # GPS IFD: GPSImgDirectionRef, GPSImgDirection
    return exif


def test_exif_heading_from_the_gps_ifd(tmp_path):
    from PIL import Image
    from PIL.TiffImagePlugin import IFDRational

    from sat2scape.sources.http import exif_heading

    def heading(name, exif=None):
        with Image.open(jpeg(tmp_path / name, exif)) as image:
            return exif_heading(image)

    assert heading("true.jpg", gps_exif(IFDRational(12345, 100), "T")) == (123.45, "T")
    assert heading("magnetic.jpg", gps_exif(IFDRational(7, 1), "M")) == (7.0, "M")  # recorded as given
    assert heading("plain.jpg") is None  # no EXIF at all
    assert heading("no-gps.jpg", Image.Exif()) is None
    assert heading("zero-denominator.jpg", gps_exif(IFDRational(1, 0))) is None
    assert heading("out-of-range.jpg", gps_exif(IFDRational(400, 1))) is None
    assert heading("odd-ref.jpg", gps_exif(IFDRational(90, 1), "X")) == (90.0, "")
    with pytest.warns(UserWarning):  # Pillow warns about the truncated block; the photo keeps no heading
        assert heading("garbled.jpg", b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff\x25\x88") is None


@pytest.mark.parametrize("value, expected", [
    ("12345/100", 123.45), ("90", 90.0), (" 359.99 ", 359.99), ("360/1", 0.0), (0, 0.0),
    ("1/0", None), ("abc", None), ("", None), (None, None), ("-5", None), ("nan", None), ([1, 2], None),
])
def test_parse_heading(value, expected):
    from sat2scape.sources.http import parse_heading

    assert parse_heading(value) == expected


def test_download_reports_the_files_heading(tmp_path, tiles):
    from PIL.TiffImagePlugin import IFDRational

    tiles.image_headings["north-east.jpg"] = (IFDRational(4500, 100), "M")
    result = download_image(Http(), f"{tiles.url}/img/north-east.jpg", tmp_path / "a.jpg")
    assert result.ok and (result.heading, result.heading_ref) == (45.0, "M")
    result = download_image(Http(), f"{tiles.url}/img/plain.jpg", tmp_path / "b.jpg")
    assert result.ok and (result.heading, result.heading_ref) == (None, "")
