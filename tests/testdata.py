"""Where the real test data lives (``SURGTWIN_TEST_DATA``, default ``../shared/data``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("SURGTWIN_TEST_DATA", REPO.parent / "shared" / "data"))


def require_data(*parts: str) -> Path:
    """The path of a test data item; skip when missing, except under CI=true where it fails."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        message = f"test data not found: {path} (set SURGTWIN_TEST_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
