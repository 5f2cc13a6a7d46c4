"""The two-handle range slider: the handle nearest the mouse follows it; values stay ordered."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt

from surgtwin.app.range_slider import RangeSlider

pytestmark = pytest.mark.gui


def test_drag_moves_the_nearest_handle(qtbot):
    s = RangeSlider()
    qtbot.addWidget(s)
    s.resize(410, 44)
    s.setBounds(0, 400)
    s.setValues(100, 300)
    s.setHistogram(np.arange(40))
    s.show()
    qtbot.waitExposed(s)
    seen = []
    s.rangeChanged.connect(lambda lo, hi: seen.append((lo, hi)))
    y = 22
    qtbot.mousePress(s, Qt.MouseButton.LeftButton, pos=QPoint(round(s._x_of(290)), y))
    qtbot.mouseMove(s, QPoint(round(s._x_of(350)), y))
    qtbot.mouseRelease(s, Qt.MouseButton.LeftButton, pos=QPoint(round(s._x_of(350)), y))
    lo, hi = s.values()
    assert lo == 100 and hi == pytest.approx(350, abs=2)
    # the low handle cannot pass the high one
    qtbot.mousePress(s, Qt.MouseButton.LeftButton, pos=QPoint(round(s._x_of(110)), y))
    qtbot.mouseMove(s, QPoint(round(s._x_of(399)), y))
    assert s.low() == s.high()
    qtbot.keyClick(s, Qt.Key.Key_Left)
    assert s.low() == s.high() - 1
    assert seen and seen[-1] == s.values()
    s.setValues(500, -20)  # swapped and clamped
    assert s.values() == (0, 400)
