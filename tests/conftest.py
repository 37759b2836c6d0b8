"""Shared fixtures. Real images live in ../shared/real-samples/ beside the repository (never
committed); tests that need them skip with the reason where that folder is absent."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_SAMPLES = Path(os.environ.get("SAT2SCAPE_REAL_SAMPLES", ROOT.parent / "shared" / "real-samples"))


@pytest.fixture(scope="session")
def real_samples() -> Path:
    if not REAL_SAMPLES.is_dir():
        pytest.skip(f"real samples folder {REAL_SAMPLES} is absent (set SAT2SCAPE_REAL_SAMPLES to use another)")
    return REAL_SAMPLES


@pytest.fixture(autouse=True)
def _few_threads(monkeypatch):
    """Keep torch to the machine's cores; tests must not oversubscribe a 2-core CI box."""
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))


# ---------------------------------------------------------------------------------------------
# The tests leave the checkout exactly as they found it (tracker issue 11).
#
# A test that writes into the checkout (data/runs/..., a smoke dataset under data/) changes what
# the user's own commands pick up afterwards: `predict` without --run would silently use a smoke
# run. So the session snapshots the checkout's untracked and ignored files at its start and fails
# at its end when any appeared, went or (ignored ones, data/ above all) changed, listing them.
# Tests write under tmp_path instead. Edits of tracked and untracked source are left out: a
# person editing the code while a long run goes on must not fail it, and `git diff` shows them.

CACHES = re.compile(r"(^|/)(__pycache__|\.pytest_cache)(/|$)")  # kept by Python and pytest themselves
UNWATCHED = (".venv/", ".git/")  # the environment itself, walked by no one


def checkout_state(root: Path) -> dict[str, tuple] | None:
    """Every untracked and ignored path `git status --porcelain --ignored` reports, with its size
    and mtime; folders (data/ above all) file by file, so that a new run inside an existing
    data/runs/ counts too. None when `root` is not a git checkout (an sdist, a copy)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--ignored", "-z"], cwd=root,
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    state = {}
    entries = iter(out.stdout.split("\0"))
    for entry in entries:
        if not entry:
            continue
        status, path = entry[:2], entry[3:]
        if status[0] in "RC":
            next(entries, None)  # a rename's second field is its old path
        if status not in ("??", "!!") or CACHES.search(path) or path.startswith(UNWATCHED):
            continue
        full = root / path
        if path.endswith("/") and full.is_dir():
            for folder, dirs, files in os.walk(full):
                dirs[:] = [d for d in dirs if not CACHES.search(d)]
                for name in files:
                    f = Path(folder) / name
                    state[f.relative_to(root).as_posix()] = (status, *_stat(f))
        else:
            state[path] = (status, *_stat(full))
    return state


def _stat(path: Path) -> tuple:
    try:
        st = path.lstat()
        return st.st_size, st.st_mtime_ns
    except OSError:
        return ("missing",)


def checkout_changes(before: dict, after: dict) -> list[str]:
    """What differs between two checkout_state snapshots, one line per path: new and gone paths,
    and changed ignored files (data/). An untracked file that only changed is most likely source
    someone is writing, so its edits are not counted."""
    lines = [f"{p}: new" for p in after.keys() - before.keys()]
    lines += [f"{p}: gone" for p in before.keys() - after.keys()]
    lines += [f"{p}: changed" for p in before.keys() & after.keys()
              if before[p] != after[p] and "!!" in (before[p][0], after[p][0])]
    return sorted(lines)


class CheckoutGuard:
    """A pytest plugin: snapshot `root` when the session starts, fail the session when it ends
    with the checkout changed (the exit status is 1 and the summary lists the paths)."""

    def __init__(self, root: Path):
        self.root, self.before, self.changes = Path(root), None, []

    def pytest_sessionstart(self, session):
        if not hasattr(session.config, "workerinput"):  # pytest-xdist: the controller checks
            self.before = checkout_state(self.root)

    def pytest_sessionfinish(self, session):
        if self.before is None:
            return
        after = checkout_state(self.root)
        self.changes = checkout_changes(self.before, after) if after is not None else []
        if self.changes:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if self.changes:
            terminalreporter.section("the tests changed the checkout", sep="=", red=True, bold=True)
            terminalreporter.line(f"{self.root}: tests must write under tmp_path, never into the checkout "
                                  "(data/ above all); these paths differ from the session's start:", red=True)
            for line in self.changes[:30]:
                terminalreporter.line(f"  {line}", red=True)
            if len(self.changes) > 30:
                terminalreporter.line(f"  ... and {len(self.changes) - 30} more", red=True)


def pytest_configure(config):
    config.pluginmanager.register(CheckoutGuard(ROOT), "sat2scape-checkout-guard")
