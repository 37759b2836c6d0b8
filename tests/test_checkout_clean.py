"""The test session leaves the checkout as it found it (tracker issue 11).

conftest.CheckoutGuard snapshots the untracked and ignored files of the checkout (`git status
--porcelain --ignored`, folders file by file) when a session starts and fails the session when
the snapshot differs at its end. These tests run that guard on a scratch git checkout, in a pytest
session of its own: a test writing into data/ must fail the session, naming the path, and a
test writing only under tmp_path must not.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import checkout_changes, checkout_state

CONFTEST = Path(__file__).with_name("conftest.py")

# The scratch checkout's conftest: this repository's guard, pointed at the scratch checkout.
INNER_CONFTEST = f'''
import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("sat2scape_tests_conftest", {str(CONFTEST)!r})
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)


def pytest_configure(config):
    config.pluginmanager.register(guard.CheckoutGuard(Path(__file__).parent), "checkout-guard")
'''

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def scratch_checkout(root: Path) -> Path:
    """A git checkout shaped like this one: data/ ignored except its README, one run already there."""
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".gitignore").write_text("/data/*\n!/data/README.md\n")
    (root / "data" / "runs" / "00000-gan-demo").mkdir(parents=True)
    (root / "data" / "runs" / "00000-gan-demo" / "checkpoint.pt").write_bytes(b"x")
    (root / "data" / "README.md").write_text("datasets and runs go here\n")
    (root / "conftest.py").write_text(INNER_CONFTEST)
    subprocess.run(["git", "add", ".gitignore", "data/README.md", "conftest.py"], cwd=root, check=True)
    return root


def run_session(root: Path, test_source: str) -> subprocess.CompletedProcess:
    (root / "test_inner.py").write_text(test_source)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"],
                          cwd=root, capture_output=True, text=True, timeout=120)


def test_snapshot_sees_a_new_run_inside_an_existing_ignored_folder(tmp_path):
    root = scratch_checkout(tmp_path / "checkout")
    before = checkout_state(root)
    assert "data/runs/00000-gan-demo/checkpoint.pt" in before  # ignored folders are listed file by file
    (root / "data" / "runs" / "00001-encoder-smoke").mkdir()
    (root / "data" / "runs" / "00001-encoder-smoke" / "config.json").write_text("{}")
    (root / "data" / "runs" / "00000-gan-demo" / "checkpoint.pt").write_bytes(b"overwritten")
    (root / "data" / "README.md").write_text("a tracked file, edited: left to git diff\n")
    assert checkout_changes(before, checkout_state(root)) == [
        "data/runs/00000-gan-demo/checkpoint.pt: changed", "data/runs/00001-encoder-smoke/config.json: new"]
    assert checkout_state(tmp_path / "not-a-checkout") is None


def test_a_session_that_writes_into_data_fails(tmp_path):
    root = scratch_checkout(tmp_path / "checkout")
    out = run_session(root, '''
from pathlib import Path

def test_writes_a_smoke_run_into_the_checkout():
    run = Path("data/runs/00001-encoder-smoke")
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"smoke")
''')
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 passed" in out.stdout  # the test itself passed: the session failed on the checkout
    assert "the tests changed the checkout" in out.stdout
    assert "data/runs/00001-encoder-smoke/checkpoint.pt: new" in out.stdout


def test_a_session_that_writes_under_tmp_path_passes(tmp_path):
    root = scratch_checkout(tmp_path / "checkout")
    out = run_session(root, '''
def test_writes_a_run_under_tmp_path(tmp_path):
    (tmp_path / "runs" / "00000-gan").mkdir(parents=True)
    (tmp_path / "runs" / "00000-gan" / "checkpoint.pt").write_bytes(b"x")
''')
    assert out.returncode == 0, out.stdout + out.stderr
    assert "the tests changed the checkout" not in out.stdout
