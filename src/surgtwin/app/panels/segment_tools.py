"""The Segment panel's tools on the slice views: grow from a click, and the paint / erase
brush (previewed while drawn, written as one undo step on release)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtGui import QColor, QPainter, QPainterPath, QPen

if TYPE_CHECKING:
    from surgtwin.app.panels.segment import SegmentPanel

__all__ = ["ERASE_COLOUR", "BrushTool", "GrowTool"]

ERASE_COLOUR = QColor(255, 90, 80)


class GrowTool:
    """A click on a slice seeds region growing into the selected label."""

    def __init__(self, panel: SegmentPanel):
        self.panel = panel

    def press(self, _view, lps, _event) -> bool:
        self.panel.grow_at(lps)
        return True


class BrushTool:
    """Paint (or erase) by dragging on a slice. The stroke is previewed while drawn and written
    as one undo step on release."""

    def __init__(self, panel: SegmentPanel, erase: bool):
        self.panel = panel
        self.erase = erase
        self.points: list[np.ndarray] = []
        self.view = None
        self.plane: tuple[int, int] | None = None
        self.hover_point: tuple[object, np.ndarray] | None = None

    def press(self, view, lps, _event) -> bool:
        if self.panel.session.plan is None or self.panel.session.plan.labelmap is None:
            return False
        self.view = view
        self.plane = None if self.panel.ballCheck.isChecked() else self.panel.plane_of(view)
        self.points = [np.asarray(lps, dtype=float)]
        self.panel.update_slices()
        return True

    def move(self, _view, lps, _event) -> bool:
        if not self.points:
            return False
        lps = np.asarray(lps, dtype=float)
        r = self.panel.radiusSpin.value()
        last = self.points[-1]
        dist = float(np.linalg.norm(lps - last))
        if dist < r / 4:
            return True
        # in-between centres keep the previewed stroke continuous on fast moves
        steps = max(1, math.ceil(dist / (r / 2)))
        self.points.extend(last + (lps - last) * (s / steps) for s in range(1, steps + 1))
        self.panel.update_slices()
        return True

    def release(self, _view, lps, _event) -> bool:
        if not self.points:
            return False
        points, plane = self.points, self.plane
        if np.linalg.norm(np.asarray(lps, dtype=float) - points[-1]) > 0:
            points.append(np.asarray(lps, dtype=float))
        self.points, self.view = [], None
        self.panel.apply_stroke(points, plane, self.erase)
        self.panel.update_slices()
        return True

    def hover(self, view, lps, _event) -> bool:
        """The brush outline follows the mouse."""
        self.hover_point = (view, np.asarray(lps, dtype=float))
        view.update()
        return False

    def draw(self, p: QPainter, view, radius_mm: float, colour: QColor) -> None:
        """The stroke so far (its cut through this slice) and the brush outline under the
        mouse, in ``colour`` (the erase colour when erasing)."""
        r = radius_mm
        mmpp = view.mm_per_pixel()
        colour = ERASE_COLOUR if self.erase else colour
        if self.points:
            path = QPainterPath()
            path.setFillRule(Qt.FillRule.WindingFill)
            for point in self.points:
                pos, depth = view.lps_to_widget(point)
                if self.plane is not None:
                    if view is not self.view:
                        continue  # a 2-D brush paints on its own slice only
                    rr = r
                elif abs(depth) < r:
                    rr = math.sqrt(r * r - depth * depth)
                else:
                    continue
                path.addEllipse(pos, rr / mmpp, rr / mmpp)
            fill = QColor(colour)
            fill.setAlpha(150)
            p.fillPath(path.simplified(), fill)
        hover = self.hover_point
        if hover is not None and hover[0] is view and not self.points:
            pos, _ = view.lps_to_widget(hover[1])
            p.setPen(QPen(colour, 1.5))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawEllipse(QPointF(pos), r / mmpp, r / mmpp)
