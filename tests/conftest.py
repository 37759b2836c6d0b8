"""Shared fixtures. Real images live in ../shared/real-samples/ beside the repository (never
committed); tests that need them skip with the reason where that folder is absent."""

from __future__ import annotations

import os
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
