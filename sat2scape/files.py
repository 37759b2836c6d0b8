"""Atomic file writes and hashing: the one place where anything is written to disk safely.

Every file the pipeline produces goes through here, so a crash or `kill -9` leaves either the
old file or the new one, never half of one.
`folder_lock` keeps a second writer (collector, satellite stage, filter funnel) out of a dataset folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write a file through `write(fileobj)` into a temp file beside it, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_save_image(path: str | os.PathLike, image, **save_kwargs) -> Path:
    """Save a PIL image atomically; the format comes from the file's suffix."""
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".gif": "GIF"}[Path(path).suffix.lower()]
    return atomic_write(path, lambda f: image.save(f, format=fmt, **save_kwargs))


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line. A torn last line (crash mid-write) is skipped by read_jsonl."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash
    return records


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# One writer per dataset folder


class FolderLocked(RuntimeError):
    """Another process (a collector, the satellite stage, the filter funnel) holds the dataset folder."""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "") -> Iterator[Path]:
    """Hold `<folder>/state/collector.lock` for the duration, or raise FolderLocked at once.

    Two collectors on one folder would double the request rate against a per-token limit and
    rewrite each other's CSVs, so the second one must refuse to start. The lock is an OS lock
    (flock), not the file's existence: the OS releases it when the holder exits, however it
    dies, so a `kill -9`'d run never blocks the next one. The file holds the holder's pid and
    `what` it is, for the message; it is never deleted (deleting a lock file lets a third
    process lock a fresh file while a second still holds the old one).
    """
    path = Path(folder) / "state" / "collector.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+", encoding="utf-8")
    try:
        if not _try_lock(f):
            try:
                f.seek(0)
                holder = f.read().strip() or "pid unknown"
            except OSError:  # Windows: the holder's locked byte cannot be read
                holder = "pid unknown"
            raise FolderLocked(
                f"{folder}: another collector holds this dataset folder ({holder}; lock {path}). "
                f"Wait for it to finish or stop it, then rerun; two at once would double the request "
                f"rate and overwrite each other's files.")
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}" + (f", {what}" if what else "") + "\n")
        f.flush()
        yield path
    finally:
        f.close()  # closing the descriptor releases the lock


def _try_lock(f) -> bool:
    """Take an exclusive lock on an open file without waiting; False if another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: msvcrt locks a byte range, also released when the process dies
        try:
            import msvcrt
        except ImportError:
            warnings.warn("no file locking on this platform: nothing stops two collectors sharing a folder")
            return True
        try:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
