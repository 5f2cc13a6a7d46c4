"""Shared fixtures: the real test data, the bundled phantom, a clean volume cache per test."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from testdata import REPO, require_data


def pytest_configure(config):
    """Tests never touch the user's real SurgTwin data or cache folders."""
    root = Path(tempfile.mkdtemp(prefix="surgtwin-test-"))
    os.environ.setdefault("SURGTWIN_DATA_DIR", str(root / "data"))
    os.environ.setdefault("SURGTWIN_CACHE_DIR", str(root / "cache"))


@pytest.fixture
def data_dir() -> Path:
    return require_data()


@pytest.fixture
def sample_dir() -> Path:
    return REPO / "sample_dicom"


@pytest.fixture(autouse=True)
def _fresh_volume_cache():
    from surgtwin.imaging import DEFAULT_CACHE

    DEFAULT_CACHE.clear()
    yield
    DEFAULT_CACHE.clear()
