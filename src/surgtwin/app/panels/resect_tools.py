"""The Resect panel's tools on the slice views: the mouse (plane line, box/sphere centre and
size, polygon lasso) and the drawing of the tool where it meets each slice.

The tool edits the panel's values (point, normal, size, radius, lasso) through the panel's
setters; the panel keeps the cut itself (preview, apply, remove).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtCore import QEvent, QPointF, Qt
from PyQt6.QtGui import QColor, QPainter, QPen, QPolygonF

if TYPE_CHECKING:
    from surgtwin.app.panels.resect import ResectPanel

__all__ = ["PREVIEW_RED", "SLICE_VIEW_DIRECTION", "TOOL_COLOUR", "SliceCutTool", "unit_vector"]

#: The direction each slice view looks in (into the screen), LPS: the axial view from the feet,
#: the coronal from the front, the sagittal from the patient's left.
SLICE_VIEW_DIRECTION = {
    "axial": (0.0, 0.0, 1.0),
    "coronal": (0.0, 1.0, 0.0),
    "sagittal": (-1.0, 0.0, 0.0),
}
#: Colour of the part a cut removes (RGB 0..1): the 3-D preview and the plane's arrow.
PREVIEW_RED = (0.95, 0.15, 0.12)
TOOL_COLOUR = QColor(255, 150, 40)


def unit_vector(v) -> np.ndarray | None:
    """``v`` scaled to length 1, or None when it is (nearly) zero or not finite."""
    v = np.asarray(v, dtype=float)
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 and math.isfinite(n) else None


class SliceCutTool:
    """The mouse on the slice views while the resect panel draws its tool."""

    def __init__(self, panel: ResectPanel):
        self.panel = panel
        self.start: np.ndarray | None = None  # press position (plane line, box/sphere centre)
        self.end: np.ndarray | None = None
        self.view = None
        self.lasso: list[np.ndarray] = []
        self.lasso_view: str | None = None
        self.hover_point: np.ndarray | None = None

    # plane line, box and sphere: press, drag, release
    def press(self, view, lps, event) -> bool:
        kind = self.panel.tool_kind()
        lps = np.asarray(lps, dtype=float)
        if kind == "polygon":
            return self._lasso_press(view, lps, event)
        self.start, self.end, self.view = lps, lps, view
        if kind in ("box", "sphere"):
            self.panel.set_point(lps)
        view.update()
        return True

    def move(self, view, lps, _event) -> bool:
        if self.start is None or view is not self.view:
            return False
        self.end = np.asarray(lps, dtype=float)
        kind = self.panel.tool_kind()
        delta = self.end - self.start
        if kind == "sphere" and np.linalg.norm(delta) > 0.5:
            self.panel.radiusSpin.setValue(float(np.linalg.norm(delta)))
        elif kind == "box":
            sizes = self.panel.box_size()
            for axis in range(3):
                if axis != view.axes.normal and abs(delta[axis]) > 0.25:
                    sizes[axis] = max(1.0, 2.0 * abs(delta[axis]))
            self.panel.set_box_size(sizes)
        view.update()
        return True

    def release(self, view, lps, _event) -> bool:
        if self.start is None:
            return False
        start, end = self.start, np.asarray(lps, dtype=float)
        self.start = self.end = None
        if self.panel.tool_kind() == "plane" and view is self.view:
            self.panel.plane_from_line(start, end, view.orientation)
        self.view = None
        view.update()
        return True

    def pick3d(self, lps) -> None:
        """A click on a 3-D surface moves the plane's point or the box's/sphere's centre."""
        if self.panel.tool_kind() != "polygon":
            self.panel.set_point(lps)
        self.panel.window.session.set_cursor(lps)

    # polygon lasso
    def _lasso_press(self, view, lps, event) -> bool:
        if event is not None and event.type() == QEvent.Type.MouseButtonDblClick:
            self.close_lasso()
            return True
        if self.lasso_view != view.orientation or self.panel.polygon is not None:
            self.lasso = []
            self.panel.set_polygon(None, None)
        self.lasso_view = view.orientation
        self.lasso.append(lps)
        self.panel.refresh_slices()
        return True

    def hover(self, _view, lps, _event) -> bool:
        if self.lasso and self.panel.tool_kind() == "polygon" and self.panel.polygon is None:
            self.hover_point = np.asarray(lps, dtype=float)
            self.panel.refresh_slices()
        return False

    def key(self, _view, event) -> bool:
        if self.panel.tool_kind() != "polygon":
            return False
        k = event.key()
        if k in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.close_lasso()
        elif k == Qt.Key.Key_Backspace and self.lasso:
            self.lasso.pop()
        elif k == Qt.Key.Key_Escape:
            self.lasso = []
            self.panel.set_polygon(None, None)
        else:
            return False
        self.panel.refresh_slices()
        return True

    def close_lasso(self) -> None:
        # a double-click's first press added its point already; drop exact repeats
        points: list[np.ndarray] = []
        for p in self.lasso:
            if not points or np.linalg.norm(p - points[-1]) > 1e-6:
                points.append(p)
        if len(points) < 3:
            self.panel.window.statusBar().showMessage("A lasso needs at least 3 corners", 5000)
            return
        self.panel.set_polygon(np.array(points), self.lasso_view)
        self.lasso = []
        self.hover_point = None

    def clear(self) -> None:
        self.start = self.end = self.view = None
        self.lasso = []
        self.hover_point = None

    # drawing on the slice views
    def draw(self, p: QPainter, view) -> None:
        """The tool where it meets the slice (orange), and the line or lasso being drawn."""
        kind = self.panel.tool_kind()
        p.setPen(QPen(TOOL_COLOUR, 2))
        p.setBrush(Qt.BrushStyle.NoBrush)
        if kind == "plane":
            self._draw_plane(p, view)
        elif kind == "box":
            self._draw_box(p, view)
        elif kind == "sphere":
            self._draw_sphere(p, view)
        else:
            self._draw_lasso(p, view)
        if (
            self.start is not None
            and self.end is not None
            and self.view is view
            and kind == "plane"
        ):
            p.setPen(QPen(QColor(255, 255, 255), 1.5, Qt.PenStyle.DashLine))
            p.drawLine(view.lps_to_widget(self.start)[0], view.lps_to_widget(self.end)[0])

    @staticmethod
    def _slice_corners(view) -> list[np.ndarray]:
        r = view.image_rect()
        pts = [r.topLeft(), r.topRight(), r.bottomRight(), r.bottomLeft()]
        return [view.widget_to_lps(QPointF(q)) for q in pts]

    def _draw_plane(self, p: QPainter, view) -> None:
        n, o = self.panel.normal(), self.panel.point()
        corners = self._slice_corners(view)
        f = [float(np.dot(c - o, n)) for c in corners]
        ends = []
        for a in range(4):
            b = (a + 1) % 4
            if (f[a] > 0) != (f[b] > 0):
                t = f[a] / (f[a] - f[b])
                ends.append(corners[a] + t * (corners[b] - corners[a]))
        if len(ends) < 2:
            return
        a, b = view.lps_to_widget(ends[0])[0], view.lps_to_widget(ends[1])[0]
        p.drawLine(a, b)
        mid_lps = (ends[0] + ends[1]) / 2
        mid = view.lps_to_widget(mid_lps)[0]
        tip = view.lps_to_widget(mid_lps + n * 5.0)[0]
        d = tip - mid
        length = math.hypot(d.x(), d.y())
        if length > 1e-6:  # an arrow towards the side removed
            u = QPointF(d.x() / length, d.y() / length)
            end = mid + u * 24.0
            p.setPen(QPen(QColor(*[int(255 * c) for c in PREVIEW_RED]), 2))
            p.drawLine(mid, end)
            side = QPointF(-u.y(), u.x())
            p.drawLine(end, end - u * 7.0 + side * 4.0)
            p.drawLine(end, end - u * 7.0 - side * 4.0)

    def _draw_box(self, p: QPainter, view) -> None:
        c, size = self.panel.point(), self.panel.box_size()
        axis = view.axes.normal
        here = view.slice_position_mm()
        if abs(here - c[axis]) > size[axis] / 2:
            p.setPen(QPen(TOOL_COLOUR, 1, Qt.PenStyle.DotLine))
        u, v = [a for a in range(3) if a != axis]
        corners = []
        for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            q = c.copy()
            q[axis] = here
            q[u] += su * size[u] / 2
            q[v] += sv * size[v] / 2
            corners.append(view.lps_to_widget(q)[0])
        p.drawPolygon(QPolygonF(corners))

    def _draw_sphere(self, p: QPainter, view) -> None:
        c, r = self.panel.point(), float(self.panel.radiusSpin.value())
        d = view.slice_position_mm() - c[view.axes.normal]
        centre = view.lps_to_widget(c)[0]
        if abs(d) >= r:
            p.setPen(QPen(TOOL_COLOUR, 1, Qt.PenStyle.DotLine))
            p.drawEllipse(centre, 3.0, 3.0)
            return
        rad = math.sqrt(r * r - d * d) / view.mm_per_pixel()
        p.drawEllipse(centre, rad, rad)

    def _draw_lasso(self, p: QPainter, view) -> None:
        polygon = self.panel.polygon
        if polygon is not None and self.panel.polygon_view == view.orientation:
            pts = [view.lps_to_widget(q)[0] for q in polygon]
            p.drawPolygon(QPolygonF(pts))
        elif self.lasso and self.lasso_view == view.orientation:
            pts = [view.lps_to_widget(q)[0] for q in self.lasso]
            p.drawPolyline(QPolygonF(pts))
            for q in pts:
                p.drawEllipse(q, 2.5, 2.5)
            if self.hover_point is not None:
                p.setPen(QPen(TOOL_COLOUR, 1, Qt.PenStyle.DashLine))
                p.drawLine(pts[-1], view.lps_to_widget(self.hover_point)[0])
