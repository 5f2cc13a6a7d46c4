"""Shared fixtures: the real test data, the bundled phantom, a clean volume cache per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from testdata import REPO, require_data


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
