"""Helpers for the GUI tests (importable as ``guitools``)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

FIELD_TIMEOUT_MS = 240_000


def wait_idle(qtbot, window, timeout: int = FIELD_TIMEOUT_MS) -> None:
    """Until no job runs and the distance fields are built."""
    qtbot.waitUntil(lambda: not window.jobs and not window.session.fields_building, timeout=timeout)
    qtbot.wait(20)


def assert_not_blank(image_path: Path, min_std: float = 8.0) -> None:
    """A saved screenshot shows something (not one flat colour)."""
    from PyQt6.QtGui import QImage

    img = QImage(str(image_path))
    assert not img.isNull(), image_path
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    w, h = img.width(), img.height()
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    arr = np.frombuffer(ptr, np.uint8).reshape(h, img.bytesPerLine())[:, : 3 * w]
    assert float(arr.std()) > min_std, f"{image_path} looks blank"


def close_window(w) -> None:
    """End every worker of a window, then close it (pytest-qt may have closed it already).

    Nothing of this window's then arrives in the next test: its jobs, distance fields and
    display copies are cancelled and the pools are drained while it still exists."""
    from PyQt6 import sip
    from PyQt6.QtCore import QThreadPool

    from surgtwin.app.workers import background_pool

    w.cancel_jobs()
    for job in list(w.jobs):
        job.done.wait(60)
    w.session.cancel_fields()
    w.session.wait_for_fields(120)
    for pool in (QThreadPool.globalInstance(), background_pool()):
        pool.waitForDone(120_000)
    if not sip.isdeleted(w):
        w.close()


@contextlib.contextmanager
def new_window(qtbot):
    """The main window, shown at 1440 x 900 and registered with pytest-qt; closed (its
    workers ended) when the block ends."""
    from surgtwin.app.mainwindow import MainWindow

    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    w.resize(1440, 900)
    w.show()
    qtbot.waitExposed(w)
    try:
        yield w
    finally:
        close_window(w)
