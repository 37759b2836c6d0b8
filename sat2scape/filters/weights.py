"""Pretrained weight files: one place that downloads, checks and caches them.

A file is looked up in the cache (`~/.cache/sat2scape/weights/`, or `$SAT2SCAPE_CACHE/weights/`),
downloaded there on first use, and checked against its sha256 every time it is used. When it
cannot be had (no network, or `SAT2SCAPE_OFFLINE=1`), `WeightsUnavailable` says in one message
which file to download from where and where to put it.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from ..files import atomic_write, sha256_file


class WeightsUnavailable(RuntimeError):
    """A weight file is not on disk and cannot be downloaded."""


class WeightsChecksumError(RuntimeError):
    """A weight file on disk is not the file its sha256 names."""


def cache_dir() -> Path:
    root = os.environ.get("SAT2SCAPE_CACHE") or Path.home() / ".cache" / "sat2scape"
    return Path(root).expanduser() / "weights"


def offline() -> bool:
    """True when downloads are switched off (`SAT2SCAPE_OFFLINE=1`), e.g. on CI without network."""
    return os.environ.get("SAT2SCAPE_OFFLINE", "").lower() in ("1", "true", "yes")


def verify(path: str | os.PathLike, sha256: str | None) -> str:
    """Check `path` against `sha256` and return the file's digest.

    `sha256` may be a prefix, as torchvision puts in its file names (`...-dd69338a.pth`); None
    checks nothing, and the digest is printed so that it can be recorded.
    """
    digest = sha256_file(path)
    if sha256 is None:
        print(f"{path}: sha256 {digest} (no known checksum to compare with)")
    elif not digest.startswith(sha256.lower()):
        raise WeightsChecksumError(
            f"{path} has sha256 {digest}, but {sha256} was expected: the file is damaged or is "
            f"another file. Delete it and run again to download it afresh."
        )
    return digest


def fetch(url: str, sha256: str | None, dest: str | os.PathLike | None = None) -> Path:
    """The verified local copy of `url`: from `dest` (default: the cache), downloaded if absent."""
    dest = Path(dest) if dest is not None else cache_dir() / url.rsplit("/", 1)[-1]
    if not dest.exists():
        if offline():
            raise unavailable(url, dest, "downloads are switched off (SAT2SCAPE_OFFLINE=1)")
        try:
            _download(url, dest, sha256)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise unavailable(url, dest, f"the download failed ({e})") from None
    verify(dest, sha256)
    return dest


def unavailable(url: str, dest: Path, why: str) -> WeightsUnavailable:
    return WeightsUnavailable(
        f"{dest.name} is not on this machine and {why}. Download it from\n    {url}\n"
        f"and put it at\n    {dest}\n(or pass its path with --weights)."
    )


def _download(url: str, dest: Path, sha256: str | None) -> None:
    """Stream `url` into `dest` atomically; a wrong checksum leaves nothing behind."""
    def write(f):
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}") as bar:
                while block := response.read(1 << 20):
                    digest.update(block)
                    f.write(block)
                    bar.update(len(block))
        if sha256 is not None and not digest.hexdigest().startswith(sha256.lower()):
            raise WeightsChecksumError(f"{url} downloaded with sha256 {digest.hexdigest()}, expected {sha256}")

    atomic_write(dest, write)
