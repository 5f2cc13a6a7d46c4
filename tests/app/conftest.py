"""GUI fixtures: the real main window under Xvfb (pytest-xvfb), opened on the phantom.

Screenshots go to ``SURGTWIN_ARTEFACTS`` (default ``<repo>/.artefacts``) so they can be looked
at after a run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from guitools import FIELD_TIMEOUT_MS, new_window, wait_idle

from testdata import REPO


@pytest.fixture(scope="session")
def artefacts() -> Path:
    path = Path(os.environ.get("SURGTWIN_ARTEFACTS", REPO / ".artefacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def window(qtbot):
    with new_window(qtbot) as w:
        yield w


@pytest.fixture
def sample_window(window, qtbot):
    """The window on the bundled phantom, as ``make run`` opens it (bone, canal, one screw),
    with the live clearance ready."""
    with qtbot.waitSignal(window.caseOpened, timeout=FIELD_TIMEOUT_MS):
        window.open_path(REPO / "sample_dicom")
    wait_idle(qtbot, window)
    return window
