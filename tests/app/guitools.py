"""Helpers for the GUI tests (importable as ``guitools``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIELD_TIMEOUT_MS = 240_000


def wait_idle(qtbot, window, timeout: int = FIELD_TIMEOUT_MS) -> None:
    """Until no job runs and the distance fields are built."""
    qtbot.waitUntil(lambda: not window.jobs and window.session._field_job is None, timeout=timeout)
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
