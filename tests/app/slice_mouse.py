"""Mouse events on a slice view at exact (sub-pixel) positions, for the GUI tests."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QEvent, QPointF, Qt
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtWidgets import QApplication

LEFT = Qt.MouseButton.LeftButton
NONE = Qt.MouseButton.NoButton


def _send(view, kind: QEvent.Type, pos: QPointF, button, buttons) -> None:
    event = QMouseEvent(
        kind, pos, view.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(view, event)


def widget_pos(view, lps) -> QPointF:
    """Where an LPS point (mm) is on the view (it should lie in the shown slice)."""
    pos, depth = view.lps_to_widget(np.asarray(lps, dtype=float))
    assert abs(depth) < 0.51, f"the point is {depth:.2f} mm off the {view.orientation} slice"
    return pos


def click(view, lps, double: bool = False) -> None:
    """A left click (or double-click) at an LPS point of the shown slice."""
    pos = widget_pos(view, lps)
    _send(view, QEvent.Type.MouseButtonPress, pos, LEFT, LEFT)
    _send(view, QEvent.Type.MouseButtonRelease, pos, LEFT, NONE)
    if double:
        _send(view, QEvent.Type.MouseButtonDblClick, pos, LEFT, LEFT)
        _send(view, QEvent.Type.MouseButtonRelease, pos, LEFT, NONE)


def drag(view, start_lps, end_lps, steps: int = 5) -> None:
    """Press at one LPS point, move in steps to another and release there."""
    a, b = widget_pos(view, start_lps), widget_pos(view, end_lps)
    _send(view, QEvent.Type.MouseButtonPress, a, LEFT, LEFT)
    for t in np.linspace(0.0, 1.0, steps + 1)[1:]:
        _send(view, QEvent.Type.MouseMove, a + (b - a) * float(t), NONE, LEFT)
    _send(view, QEvent.Type.MouseButtonRelease, b, LEFT, NONE)
