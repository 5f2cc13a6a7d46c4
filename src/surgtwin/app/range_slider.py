"""A slider with two handles (a low and a high value), drawn over the image's histogram."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QKeyEvent, QMouseEvent, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

__all__ = ["RangeSlider"]

HANDLE_W = 9.0
MARGIN = HANDLE_W / 2 + 1


class RangeSlider(QWidget):
    """Pick a value range (integers, e.g. HU) by dragging two handles.

    The histogram of the values (log counts), when given, is drawn behind the track so the
    range can be put between the peaks of two tissues.

    Signals
    -------
    rangeChanged(int, int) : the low or the high value changed
    """

    rangeChanged = pyqtSignal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._min, self._max = -1024, 3071
        self._low, self._high = 226, 3071
        self._active = "high"
        self._dragging = False
        self._histogram: np.ndarray | None = None
        self.setMinimumHeight(44)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setToolTip("Drag the handles to choose the range; arrow keys move the last one used")

    # ---------------------------------------------------------------- values

    def sizeHint(self) -> QSize:
        return QSize(240, 44)

    def bounds(self) -> tuple[int, int]:
        return self._min, self._max

    def setBounds(self, minimum: int, maximum: int) -> None:
        """The values the handles can take (inclusive)."""
        self._min, self._max = int(minimum), max(int(minimum) + 1, int(maximum))
        self.setValues(self._low, self._high)
        self.update()

    def values(self) -> tuple[int, int]:
        return self._low, self._high

    def low(self) -> int:
        return self._low

    def high(self) -> int:
        return self._high

    def setValues(self, low: int, high: int) -> None:
        """Set both handles (swapped if given the wrong way round, clamped to the bounds)."""
        low, high = sorted((int(low), int(high)))
        low = int(np.clip(low, self._min, self._max))
        high = int(np.clip(high, self._min, self._max))
        if (low, high) != (self._low, self._high):
            self._low, self._high = low, high
            self.update()
            self.rangeChanged.emit(low, high)

    def setHistogram(self, counts: np.ndarray | None) -> None:
        """Counts of equal-width bins spanning the bounds (None: no histogram)."""
        self._histogram = None if counts is None else np.asarray(counts, dtype=float)
        self.update()

    # ---------------------------------------------------------------- geometry

    def _track(self) -> QRectF:
        return QRectF(MARGIN, 2, self.width() - 2 * MARGIN, self.height() - 4)

    def _x_of(self, value: float) -> float:
        t = self._track()
        return t.left() + (value - self._min) / (self._max - self._min) * t.width()

    def _value_at(self, x: float) -> int:
        t = self._track()
        frac = (x - t.left()) / max(t.width(), 1.0)
        return round(self._min + float(np.clip(frac, 0.0, 1.0)) * (self._max - self._min))

    # ---------------------------------------------------------------- painting

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        t = self._track()
        p.fillRect(t, QColor("#15181a"))
        xl, xh = self._x_of(self._low), self._x_of(self._high)
        p.fillRect(QRectF(xl, t.top(), xh - xl, t.height()), QColor(47, 111, 115, 150))
        hist = self._histogram
        if hist is not None and hist.size and hist.max() > 0:
            h = np.log1p(hist)
            h = h / h.max()
            path = QPainterPath(QPointF(t.left(), t.bottom()))
            n = len(h)
            for i, v in enumerate(h):
                x0 = t.left() + i / n * t.width()
                x1 = t.left() + (i + 1) / n * t.width()
                y = t.bottom() - v * (t.height() - 4)
                path.lineTo(x0, y)
                path.lineTo(x1, y)
            path.lineTo(t.right(), t.bottom())
            path.closeSubpath()
            p.fillPath(path, QColor(170, 180, 190, 110))
        p.setPen(QPen(QColor("#454d55"), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(t)
        for which, x in (("low", xl), ("high", xh)):
            active = which == self._active and self.hasFocus()
            colour = QColor("#ffffff") if active else QColor("#8fd3d6")
            p.setPen(QPen(QColor("#0b0d0e"), 1))
            p.setBrush(colour)
            p.drawRoundedRect(QRectF(x - HANDLE_W / 2, t.top(), HANDLE_W, t.height()), 2, 2)
        p.end()

    # ---------------------------------------------------------------- mouse and keys

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        x = event.position().x()
        dl, dh = abs(x - self._x_of(self._low)), abs(x - self._x_of(self._high))
        if dl == dh:  # handles on top of each other: move the one the drag goes towards
            self._active = "low" if x < self._x_of(self._low) else "high"
        else:
            self._active = "low" if dl < dh else "high"
        self._dragging = True
        self._move_active(self._value_at(x))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging:
            self._move_active(self._value_at(event.position().x()))

    def mouseReleaseEvent(self, _event: QMouseEvent) -> None:
        self._dragging = False

    def keyPressEvent(self, event: QKeyEvent) -> None:
        step = 10 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1
        if event.key() in (Qt.Key.Key_Left, Qt.Key.Key_Down):
            self._move_active((self._low if self._active == "low" else self._high) - step)
        elif event.key() in (Qt.Key.Key_Right, Qt.Key.Key_Up):
            self._move_active((self._low if self._active == "low" else self._high) + step)
        else:
            super().keyPressEvent(event)

    def _move_active(self, value: int) -> None:
        if self._active == "low":
            self.setValues(min(value, self._high), self._high)
        else:
            self.setValues(self._low, max(value, self._low))
