"""GUI fixtures: the real main window under Xvfb (pytest-xvfb), opened on the phantom.

Screenshots go to ``SURGTWIN_ARTEFACTS`` (default ``<repo>/.artefacts``) so they can be looked
at after a run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from guitools import FIELD_TIMEOUT_MS, wait_idle

from testdata import REPO


@pytest.fixture(scope="session")
def artefacts() -> Path:
    path = Path(os.environ.get("SURGTWIN_ARTEFACTS", REPO / ".artefacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def window(qtbot):
    from surgtwin.app.mainwindow import MainWindow

    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    w.resize(1440, 900)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.cancel_jobs()
    for job in list(w.jobs):
        job.done.wait(60)
    job = w.session._field_job
    if job is not None:
        job.cancel()
        job.done.wait(120)
    for j in list(w.view3d._lod_jobs):
        j.cancel()
    # every worker ends before the next test: nothing of this window's arrives in the next one
    # (pytest-qt has closed the window already; its closeEvent waited for the panels' pools)
    from PyQt6 import sip
    from PyQt6.QtCore import QThreadPool

    from surgtwin.app.workers import background_pool

    for pool in (QThreadPool.globalInstance(), background_pool()):
        pool.waitForDone(120_000)
    if not sip.isdeleted(w):
        w.close()


@pytest.fixture
def sample_window(window, qtbot):
    """The window on the bundled phantom, as ``make run`` opens it (bone, canal, one screw),
    with the live clearance ready."""
    with qtbot.waitSignal(window.caseOpened, timeout=FIELD_TIMEOUT_MS):
        window.open_path(REPO / "sample_dicom")
    wait_idle(qtbot, window)
    return window
