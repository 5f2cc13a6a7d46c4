"""Measure panel: distances (two clicks) and angles (three clicks) on slices and 3-D surfaces.

Measurements are plan records (:class:`~surgtwin.planning.plan.Measurement`, LPS mm), added and
removed by commands, so they are undoable and saved with the plan. They are drawn on the slice
views (bright where they lie in the slice, dashed where they are only projected onto it) and in
the 3-D view (lines and labels on top of the surfaces). A click in the 3-D view lands on the
surface under the mouse (:attr:`View3D.picked`).

The panel also holds the distance map (:mod:`surgtwin.app.panels.distance_map`).
"""

from __future__ import annotations

import numpy as np
import vtk
from PyQt6.QtCore import QEvent, QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QPainter, QPen, QPolygonF
from PyQt6.QtWidgets import QListWidgetItem, QWidget
from vtkmodules.util import numpy_support

from surgtwin.app.panels.distance_map import DistanceMap
from surgtwin.app.resources import load_ui
from surgtwin.planning.commands import AddMeasurement, RemoveMeasurement
from surgtwin.planning.plan import Measurement

__all__ = ["MeasurePanel", "MeasureTool", "measurement_text"]

POINTS_NEEDED = {"distance": 2, "angle": 3}
HINTS = {
    "distance": "Click the two ends on a slice or on a 3-D surface. Escape starts again.",
    "angle": "Click three points, the vertex second, on slices or 3-D surfaces. "
    "Escape starts again.",
}
COLOUR = (0.35, 0.85, 1.0)
DRAFT_COLOUR = (1.0, 0.85, 0.25)


def _qcolor(rgb, alpha: int = 255) -> QColor:
    return QColor(int(255 * rgb[0]), int(255 * rgb[1]), int(255 * rgb[2]), alpha)


def measurement_text(m: Measurement) -> str:
    """``"12.3 mm"`` or ``"45.6°"``."""
    return f"{m.value:.1f} mm" if m.kind == "distance" else f"{m.value:.1f}°"


def default_measurement_name(plan, kind: str) -> str:
    """``"Distance <n>"`` / ``"Angle <n>"`` with the first number not in use."""
    n = 1 + sum(1 for m in plan.measurements.values() if m.kind == kind)
    while f"{kind.capitalize()} {n}" in plan.measurements:
        n += 1
    return f"{kind.capitalize()} {n}"


class MeasureTool:
    """Collects the clicks of one measurement (slice views and 3-D picks)."""

    def __init__(self, panel: MeasurePanel, kind: str):
        self.panel = panel
        self.kind = kind
        self.points: list[np.ndarray] = []
        self.hover_point: np.ndarray | None = None

    def press(self, _view, lps, event) -> bool:
        if event is not None and event.type() == QEvent.Type.MouseButtonDblClick:
            return True  # the double-click's first press counted already
        self.add(lps)
        return True

    def pick3d(self, lps) -> None:
        self.add(lps)

    def hover(self, _view, lps, _event) -> bool:
        if self.points:
            self.hover_point = np.asarray(lps, dtype=float)
            self.panel.refresh_slices()
        return False

    def key(self, _view, event) -> bool:
        if event.key() == Qt.Key.Key_Escape and self.points:
            self.clear()
        elif event.key() == Qt.Key.Key_Backspace and self.points:
            self.points.pop()
        else:
            return False
        self.panel.refresh_views()
        return True

    def add(self, lps) -> None:
        self.points.append(np.asarray(lps, dtype=float).reshape(3))
        if len(self.points) == POINTS_NEEDED[self.kind]:
            points, self.points, self.hover_point = self.points, [], None
            self.panel.add_measurement(self.kind, points)
        self.panel.refresh_views()

    def clear(self) -> None:
        self.points = []
        self.hover_point = None


class MeasurePanel(QWidget):
    """Distances and angles in the plan, and the distance map."""

    def __init__(self, window):
        super().__init__(window)
        load_ui("measure_panel.ui", self)
        self.window = window
        self.session = window.session
        self.tools = {kind: MeasureTool(self, kind) for kind in POINTS_NEEDED}
        self._actors: list = []
        self.distanceButton.toggled.connect(lambda on: self._tool_toggled("distance", on))
        self.angleButton.toggled.connect(lambda on: self._tool_toggled("angle", on))
        self.removeButton.clicked.connect(self.remove_selected)
        self.goToButton.clicked.connect(self.go_to_selected)
        self.show3dCheck.toggled.connect(lambda _on: self._update_3d())
        self.measurementList.itemDoubleClicked.connect(lambda _item: self.go_to_selected())
        self.session.caseChanged.connect(self._on_case)
        self.session.planEvent.connect(self._on_plan_event)
        for view in window.slice_views.values():
            view.overlays.append(self.draw_overlay)
        self.distance_map = DistanceMap(self)
        self._on_case()

    # ---------------------------------------------------------------- tools

    def _buttons(self):
        return {"distance": self.distanceButton, "angle": self.angleButton}

    def _tool_toggled(self, kind: str, on: bool) -> None:
        tool = self.tools[kind]
        tool.clear()
        if on:
            for other, button in self._buttons().items():
                if other != kind:
                    button.setChecked(False)
            self.window.set_tool(tool)
            self.hintLabel.setText(HINTS[kind])
            self.window.statusBar().showMessage(HINTS[kind], 8000)
        elif self.window.tool is tool:
            self.window.set_tool(None)
        self.refresh_views()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        for button in self._buttons().values():
            button.setChecked(False)  # another panel's turn: give the mouse back

    def start(self, kind: str) -> MeasureTool:
        """Start measuring a ``"distance"`` or an ``"angle"`` (as the buttons do)."""
        self._buttons()[kind].setChecked(True)
        return self.tools[kind]

    def active_tool(self) -> MeasureTool | None:
        tool = self.window.tool
        return tool if any(tool is t for t in self.tools.values()) else None

    # ---------------------------------------------------------------- edits

    def add_measurement(self, kind: str, points, name: str | None = None) -> str | None:
        """Add a measurement (LPS mm points) as one undo step; returns its name."""
        plan = self.session.plan
        if plan is None:
            return None
        name = name or default_measurement_name(plan, kind)
        m = Measurement(name, kind, tuple(tuple(float(c) for c in p) for p in points))
        self.session.push(AddMeasurement(plan, m))
        self.window.statusBar().showMessage(f"{name}: {measurement_text(m)}", 8000)
        self._select(name)
        return name

    def remove_selected(self) -> None:
        name = self.selected()
        plan = self.session.plan
        if name is not None and plan is not None and name in plan.measurements:
            self.session.push(RemoveMeasurement(plan, name))

    def selected(self) -> str | None:
        item = self.measurementList.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def go_to_selected(self) -> None:
        plan, name = self.session.plan, self.selected()
        if plan is None or name not in plan.measurements:
            return
        pts = np.asarray(plan.measurements[name].points)
        self.session.set_cursor(pts[1] if len(pts) == 3 else pts.mean(axis=0))

    # ---------------------------------------------------------------- display

    def _on_case(self) -> None:
        for tool in self.tools.values():
            tool.clear()
        self._refresh_list()
        self._update_3d()

    def _on_plan_event(self, event) -> None:
        if event.name == "measurements":
            self._refresh_list()
            self._update_3d()
            self.refresh_slices()

    def _refresh_list(self) -> None:
        current = self.selected()
        self.measurementList.clear()
        plan = self.session.plan
        if plan is None:
            return
        for m in plan.measurements.values():
            item = QListWidgetItem(f"{m.name}: {measurement_text(m)}")
            item.setData(Qt.ItemDataRole.UserRole, m.name)
            self.measurementList.addItem(item)
        self._select(current)

    def _select(self, name: str | None) -> None:
        for row in range(self.measurementList.count()):
            if self.measurementList.item(row).data(Qt.ItemDataRole.UserRole) == name:
                self.measurementList.setCurrentRow(row)
                return

    def refresh_slices(self) -> None:
        for view in self.window.slice_views.values():
            view.update()

    def refresh_views(self) -> None:
        self.refresh_slices()
        self._update_3d()

    def _update_3d(self) -> None:
        """Lines, points and labels of the measurements, drawn over the surfaces."""
        renderer = self.window.view3d.plotter.renderer
        for actor in self._actors:
            renderer.RemoveActor(actor)
        self._actors = []
        plan = self.session.plan
        if plan is not None and self.show3dCheck.isChecked():
            for m in plan.measurements.values():
                pts = np.asarray(m.points)
                self._actors.append(_overlay_lines(pts, COLOUR))
                anchor = pts[1] if m.kind == "angle" else pts.mean(axis=0)
                self._actors.append(_overlay_label(anchor, f"{m.name}: {measurement_text(m)}"))
        tool = self.active_tool()
        if tool is not None and tool.points:
            self._actors.append(_overlay_lines(np.asarray(tool.points), DRAFT_COLOUR))
        for actor in self._actors:
            renderer.AddActor(actor)
        self.window.view3d.request_render()

    def draw_overlay(self, p: QPainter, view) -> None:
        """Each measurement on the slice: solid where it lies in it, dashed when projected."""
        plan = self.session.plan
        if plan is None:
            return
        spacing = max(1.0, float(view.session.slicer.lps_spacing[view.axes.normal]))
        for m in plan.measurements.values():
            placed = [view.lps_to_widget(q) for q in m.points]
            near = all(abs(depth) <= spacing for _pos, depth in placed)
            self._draw(p, [pos for pos, _d in placed], COLOUR, near, measurement_text(m))
        tool = self.active_tool()
        if tool is not None and tool.points:
            pts = [view.lps_to_widget(q)[0] for q in tool.points]
            if tool.hover_point is not None:
                pts.append(view.lps_to_widget(tool.hover_point)[0])
            self._draw(p, pts, DRAFT_COLOUR, True, "")

    @staticmethod
    def _draw(p: QPainter, pts: list[QPointF], rgb, near: bool, text: str) -> None:
        colour = _qcolor(rgb, 255 if near else 110)
        style = Qt.PenStyle.SolidLine if near else Qt.PenStyle.DashLine
        p.setPen(QPen(colour, 2 if near else 1, style))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPolyline(QPolygonF(pts))
        for q in pts:
            p.drawEllipse(q, 3.0, 3.0)
        if text and near:
            anchor = pts[1] if len(pts) == 3 else (pts[0] + pts[-1]) / 2
            at = anchor + QPointF(8, -8)
            box = QRectF(p.fontMetrics().boundingRect(text)).translated(at).adjusted(-3, -1, 3, 1)
            p.fillRect(box, QColor(0, 0, 0, 160))
            p.setPen(QPen(colour))
            p.drawText(at, text)


def _overlay_lines(points: np.ndarray, rgb) -> vtk.vtkActor2D:
    """A polyline through LPS points, drawn in 2-D over the 3-D scene (never hidden)."""
    poly = vtk.vtkPolyData()
    vpts = vtk.vtkPoints()
    vpts.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(points, float), deep=True))
    poly.SetPoints(vpts)
    lines = vtk.vtkCellArray()
    lines.InsertNextCell(len(points))
    for i in range(len(points)):
        lines.InsertCellPoint(i)
    poly.SetLines(lines)
    verts = vtk.vtkCellArray()
    for i in range(len(points)):
        verts.InsertNextCell(1)
        verts.InsertCellPoint(i)
    poly.SetVerts(verts)
    coord = vtk.vtkCoordinate()
    coord.SetCoordinateSystemToWorld()
    mapper = vtk.vtkPolyDataMapper2D()
    mapper.SetInputData(poly)
    mapper.SetTransformCoordinate(coord)
    actor = vtk.vtkActor2D()
    actor.SetMapper(mapper)
    prop = actor.GetProperty()
    prop.SetColor(*rgb)
    prop.SetLineWidth(3)
    prop.SetPointSize(9)
    return actor


def _overlay_label(point: np.ndarray, text: str) -> vtk.vtkTextActor:
    label = vtk.vtkTextActor()
    label.SetInput(text)
    pos = label.GetPositionCoordinate()
    pos.SetCoordinateSystemToWorld()
    pos.SetValue(*(float(c) for c in point))
    prop = label.GetTextProperty()
    prop.SetFontSize(15)
    prop.SetColor(*COLOUR)
    prop.SetBackgroundColor(0, 0, 0)
    prop.SetBackgroundOpacity(0.6)
    return label
