"""Implants panel: catalogue, two-click placement, moving with live clearance, sizes."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, QTimer
from PyQt6.QtGui import QBrush, QColor, QPainter, QPen
from PyQt6.QtWidgets import QListWidgetItem, QSizePolicy, QTableWidgetItem, QWidget

from surgtwin.app.live_controller import STATUS_COLOURS
from surgtwin.app.panels.implant_tools import GRAB_PX, Handles3D, MoveTool, PlaceTool
from surgtwin.app.resources import load_ui
from surgtwin.app.stl_implant_dialog import StlImplantDialog
from surgtwin.paths import implants_dir
from surgtwin.planning.case import CaseError, default_implant_name
from surgtwin.planning.checks import entry_and_tip, implant_spec
from surgtwin.planning.commands import AddImplant, CompoundCommand, MoveImplant, RemoveImplant
from surgtwin.planning.implants import (
    USER_STL,
    Catalogue,
    CatalogueError,
    ImplantSpec,
    append_to_catalogue_file,
    pose_from_trajectory,
    record_parameters,
)
from surgtwin.planning.implants import Implant as LibraryImplant
from surgtwin.planning.placement import (
    snap_entry_to_surface,
    trajectory_readout,
)
from surgtwin.planning.plan import Implant

__all__ = ["ImplantsPanel", "MoveTool", "PlaceTool", "load_catalogue", "user_catalogue_file"]


def _qcolor(rgb, alpha: int = 255) -> QColor:
    return QColor(int(255 * rgb[0]), int(255 * rgb[1]), int(255 * rgb[2]), alpha)


def library_implant(record: Implant) -> LibraryImplant:
    """The library's view of a placed implant (for readouts)."""
    return LibraryImplant(record.name, implant_spec(record), np.asarray(record.pose))


def user_catalogue_file() -> Path:
    """The catalogue file the "Add STL implant" dialog appends to."""
    return implants_dir() / "user_catalogue.json"


def load_catalogue() -> tuple[Catalogue, list[str]]:
    """The built-in catalogue plus the user's catalogue files (``implants_dir()/*.json``).

    Returns
    -------
    (Catalogue, list of str)
        The catalogue, and one message per file left out (invalid, or a key already used).
    """
    specs = list(Catalogue.builtin())
    seen = {s.key for s in specs}
    problems = []
    folder = implants_dir()
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    for path in files:
        try:
            more = Catalogue.read_file(path)
            clash = next((s.key for s in more if s.key in seen), None)
            if clash is not None:
                raise CatalogueError("key already used by another catalogue", path, clash)
        except CatalogueError as exc:
            problems.append(f"Implant catalogue left out: {exc}")
            continue
        seen.update(s.key for s in more)
        specs.extend(more)
    return Catalogue(specs), problems


class ImplantsPanel(QWidget):
    def __init__(self, window):
        super().__init__(window)
        load_ui("implants_panel.ui", self)
        self.window = window
        self.session = window.session
        self.catalogue, problems = load_catalogue()
        self.place_tool = PlaceTool(self)
        self._drawn: dict[tuple[int, str], QRectF] = {}
        self._styled_role = None
        self._last_table = 0.0
        self._table_timer = QTimer(self)
        self._table_timer.setSingleShot(True)
        self._table_timer.setInterval(260)
        self._table_timer.timeout.connect(self._show_readings)
        self.move_tool = MoveTool(self)
        self.handles = Handles3D(self)
        for kind in self.catalogue.kinds():
            self.kindCombo.addItem(kind.replace("_", " "), kind)
        self.kindCombo.currentIndexChanged.connect(self._fill_specs)
        i = self.kindCombo.findData("pedicle_screw")
        self.kindCombo.setCurrentIndex(max(i, 0))
        self._fill_specs()
        if problems:
            window.statusBar().showMessage("; ".join(problems), 15000)
        self.addStlButton.clicked.connect(self.add_stl_implant)
        self.placeButton.toggled.connect(self._place_toggled)
        self.moveButton.toggled.connect(self._move_toggled)
        self.snapButton.clicked.connect(self.snap_entry)
        self.deleteButton.clicked.connect(self.delete_current)
        self.sizeButton.clicked.connect(self.apply_size)
        self.implantList.currentItemChanged.connect(self._list_selected)
        self.followCheck.toggled.connect(lambda _on: self._reslice())
        self.readoutTable.horizontalHeader().setStretchLastSection(True)
        # a changing readout must not lay the dock out again at every drag step
        for label in (self.statusLabel, self.trajectoryLabel):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.statusLabel.setFixedHeight(self.statusLabel.sizeHint().height() + 4)
        self.trajectoryLabel.setFixedHeight(
            2 * self.trajectoryLabel.fontMetrics().lineSpacing() + 6
        )
        self.readoutTable.verticalHeader().setVisible(False)
        self.session.caseChanged.connect(self._refresh_list)
        self.session.planEvent.connect(self._on_plan_event)
        self.session.currentImplantChanged.connect(self._on_current)
        window.live.readingsChanged.connect(self._on_readings)
        for view in window.slice_views.values():
            view.overlays.append(self.draw_overlay)
        self._refresh_list()

    # ---------------------------------------------------------------- catalogue

    def _fill_specs(self) -> None:
        kind = self.kindCombo.currentData()
        self.specList.clear()
        for spec in self.catalogue.of_kind(kind) if kind else []:
            d, length = spec.diameter_mm, spec.length_mm
            size = f"{d:g} x {length:g} mm" if d else f"{length:g} mm"
            item = QListWidgetItem(f"{size}  {spec.name}")
            item.setData(Qt.ItemDataRole.UserRole, spec.key)
            self.specList.addItem(item)
        default = {"pedicle_screw": "6.5"}.get(kind)
        row = 0
        if default:
            for r in range(self.specList.count()):
                if self.specList.item(r).text().startswith(default + " x 45"):
                    row = r
        if self.specList.count():
            self.specList.setCurrentRow(row)

    def selected_spec(self) -> ImplantSpec | None:
        item = self.specList.currentItem()
        if item is None:
            return None
        key = item.data(Qt.ItemDataRole.UserRole)
        return next((s for s in self.catalogue if s.key == key), None)

    def set_catalogue(self, catalogue: Catalogue) -> None:
        """Offer only ``catalogue``'s implants (the training mode restricts them to what a
        scenario allows, and gives the whole catalogue back afterwards)."""
        kind = self.kindCombo.currentData()
        self.catalogue = catalogue
        self.kindCombo.blockSignals(True)
        self.kindCombo.clear()
        for k in catalogue.kinds():
            self.kindCombo.addItem(k.replace("_", " "), k)
        i = self.kindCombo.findData(kind)
        if i < 0:
            i = max(self.kindCombo.findData("pedicle_screw"), 0)
        self.kindCombo.setCurrentIndex(i)
        self.kindCombo.blockSignals(False)
        self._fill_specs()

    def add_stl_implant(self) -> StlImplantDialog:
        """Open the "Add STL implant" dialog; once accepted, the implant is added to the
        user catalogue file, the catalogue reloaded and the implant selected. Returns the
        dialog (it is window-modal, not blocking)."""
        used = {s.key for s in load_catalogue()[0]}
        dialog = StlImplantDialog(used, self.window)
        dialog.accepted.connect(lambda: self.add_user_spec(dialog.spec))
        dialog.open()
        return dialog

    def add_user_spec(self, spec: ImplantSpec | None) -> bool:
        """Append ``spec`` to the user catalogue, reload the catalogue and select it."""
        if spec is None:
            return False
        try:
            append_to_catalogue_file(user_catalogue_file(), spec)
        except CatalogueError as exc:
            self.window.statusBar().showMessage(f"Cannot add {spec.name}: {exc}", 10000)
            return False
        catalogue, problems = load_catalogue()
        self.set_catalogue(catalogue)
        self.select_spec(spec.key)
        message = f"Added {spec.name} to your implant catalogue"
        self.window.statusBar().showMessage("; ".join([message, *problems]), 8000)
        return True

    def select_spec(self, key: str) -> bool:
        """Show ``key``'s kind and select it in the size list."""
        if key not in self.catalogue:
            return False
        i = self.kindCombo.findData(self.catalogue[key].kind)
        self.kindCombo.setCurrentIndex(i)
        for r in range(self.specList.count()):
            if self.specList.item(r).data(Qt.ItemDataRole.UserRole) == key:
                self.specList.setCurrentRow(r)
                return True
        return False

    # ---------------------------------------------------------------- tools

    def _place_toggled(self, on: bool) -> None:
        if on:
            self.moveButton.setChecked(False)
            self.place_tool.entry = None
            self.window.set_tool(self.place_tool)
            self.window.statusBar().showMessage("Click the entry point on a slice or surface")
        elif self.window.tool is self.place_tool:
            self.window.set_tool(None)

    def _move_toggled(self, on: bool) -> None:
        if on:
            self.placeButton.setChecked(False)
            self.window.set_tool(self.move_tool)
        elif self.window.tool is self.move_tool:
            self.window.set_tool(None)
        self.handles.set_enabled(on)

    # ---------------------------------------------------------------- edits

    def current_record(self) -> Implant | None:
        plan, name = self.session.plan, self.session.current_implant
        if plan is None or not name or name not in plan.implants:
            return None
        return plan.implants[name]

    def place(self, entry, target, spec: ImplantSpec | None = None) -> str | None:
        """Place the selected catalogue implant from ``entry`` towards ``target`` (LPS mm),
        as one undo step; returns its name."""
        plan = self.session.plan
        spec = spec or self.selected_spec()
        if plan is None or spec is None:
            return None
        entry, target = np.asarray(entry, float), np.asarray(target, float)
        if np.linalg.norm(target - entry) < 1.0:
            self.window.statusBar().showMessage("Entry and target are the same point", 5000)
            return None
        name = default_implant_name(plan, spec.kind)
        if spec.kind.endswith("screw"):
            side = "left" if entry[0] > self._midline_x() else "right"
            level = self._level_at(entry)
            label = f"{level + ' ' if level else ''}{side} {spec.kind.replace('_', ' ')}"
            name = label if label not in plan.implants else name
        elif spec.kind == USER_STL and spec.name not in plan.implants:
            name = spec.name
        pose = pose_from_trajectory(entry, target, spec.length_mm)
        record = Implant(name, spec.kind, spec.key, record_parameters(spec), pose)
        self.session.push(AddImplant(plan, record))
        self.session.select_implant(name)
        self.placeButton.setChecked(False)
        self.moveButton.setChecked(True)
        return name

    def _midline_x(self) -> float:
        sl = self.session.slicer
        if sl is None:
            return 0.0
        b = sl.geometry.bounds()
        return (b[0] + b[1]) / 2

    def _level_at(self, point) -> str:
        """The vertebral level under a point, from the bundled phantom's truth (else "")."""
        plan = self.session.plan
        source = plan.case.source_path if plan is not None else ""
        if not source:
            return ""
        from surgtwin.planning.case import phantom_ground_truth

        try:
            truth = phantom_ground_truth(source)
        except Exception:
            return ""
        if not truth:
            return ""
        z = float(point[2])
        for level, data in truth.get("levels", {}).items():
            lo, hi = data.get("body_z_range", (math.inf, -math.inf))
            if lo - 3 <= z <= hi + 3:
                return level
        return ""

    def move_to(self, pose, drag_id=None) -> None:
        record = self.current_record()
        if record is None:
            return
        self.session.push(MoveImplant(self.session.plan, record.name, pose, drag_id=drag_id))

    def snap_entry(self) -> None:
        record = self.current_record()
        bone = self._bone_field()
        if record is None:
            return
        if bone is None:
            self.window.statusBar().showMessage("No bone distance map yet", 5000)
            return
        entry, tip = entry_and_tip(record)
        try:
            new_entry = snap_entry_to_surface(entry, tip, bone)
        except Exception as exc:
            self.window.statusBar().showMessage(f"Cannot snap: {exc}", 6000)
            return
        length = float(np.linalg.norm(tip - entry))
        pose = pose_from_trajectory(new_entry, tip, length) if length else record.pose
        self.session.push(
            MoveImplant(self.session.plan, record.name, pose, name=f"Snap {record.name} to bone")
        )

    def apply_size(self) -> None:
        record = self.current_record()
        if record is None:
            return
        try:
            spec = self.catalogue.nearest(
                record.kind, self.diameterSpin.value(), self.lengthSpin.value()
            )
        except KeyError as exc:
            self.window.statusBar().showMessage(str(exc), 5000)
            return
        if spec.key == record.spec_key:
            return
        entry, tip = entry_and_tip(record)
        pose = pose_from_trajectory(entry, tip, spec.length_mm)
        new = Implant(record.name, spec.kind, spec.key, record_parameters(spec), pose)
        plan = self.session.plan
        index = plan.implants.index(record.name)
        self.session.push(
            CompoundCommand(
                plan,
                f"Resize {record.name} to {spec.name}",
                [RemoveImplant(plan, record.name), AddImplant(plan, new, index=index)],
            )
        )
        self.session.select_implant(record.name)

    def delete_current(self) -> None:
        record = self.current_record()
        if record is not None:
            self.session.push(RemoveImplant(self.session.plan, record.name))

    def _bone_field(self):
        plan = self.session.plan
        if plan is None:
            return None
        for s in plan.structures.values():
            if s.role == "bone" and s.name in self.session.fields:
                return self.session.fields[s.name]
        return None

    # ---------------------------------------------------------------- display

    def _refresh_list(self) -> None:
        self.implantList.blockSignals(True)
        self.implantList.clear()
        plan = self.session.plan
        if plan is not None:
            for name in plan.implants:
                item = QListWidgetItem(name)
                item.setData(Qt.ItemDataRole.UserRole, name)
                status = self.window.live.status(name)
                item.setForeground(QBrush(_qcolor(STATUS_COLOURS[status])))
                self.implantList.addItem(item)
                if name == self.session.current_implant:
                    self.implantList.setCurrentItem(item)
        self.implantList.blockSignals(False)
        self._show_readings()

    def _list_selected(self, item, _prev) -> None:
        if item is not None:
            self.session.select_implant(item.data(Qt.ItemDataRole.UserRole))

    def _on_plan_event(self, event) -> None:
        if event.name == "implants" and event.kind in ("added", "removed"):
            self._refresh_list()

    def _on_current(self, _name: str) -> None:
        self._refresh_list()
        self._reslice()
        self.handles.set_enabled(self.moveButton.isChecked())
        record = self.current_record()
        if record is not None:
            lib = library_implant(record)
            if lib.spec.diameter_mm:
                self.diameterSpin.setValue(lib.spec.diameter_mm)
            self.lengthSpin.setValue(lib.spec.length_mm)

    def _on_readings(self, name: str) -> None:
        for r in range(self.implantList.count()):
            item = self.implantList.item(r)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                item.setForeground(QBrush(_qcolor(STATUS_COLOURS[self.window.live.status(name)])))
        if name == self.session.current_implant:
            self._show_readings_soon()
            self._reslice()
            if self.handles.enabled:
                self.handles.sync()
        self._update_slices(name)
        self.window.view3d.request_render()

    def _footprint(self, view, name: str) -> QRectF:
        """Where an implant (and, for the current one, its clearance line and label) is drawn
        on a view, in widget pixels."""
        plan = self.session.plan
        rect = QRectF()
        if plan is None or name not in plan.implants:
            return rect
        record = plan.implants[name]
        try:
            entry, tip = entry_and_tip(record)
            diameter = implant_spec(record).diameter_mm or 2.0
        except (CaseError, ValueError):
            return rect
        pad = max(2.0, diameter / view.mm_per_pixel()) / 2 + GRAB_PX
        points = [view.lps_to_widget(entry)[0], view.lps_to_widget(tip)[0]]
        xs, ys = [q.x() for q in points], [q.y() for q in points]
        rect = QRectF(
            min(xs) - pad, min(ys) - pad, max(xs) - min(xs) + 2 * pad, max(ys) - min(ys) + 2 * pad
        )
        worst = self.window.live.worst(name) if name == self.session.current_implant else None
        if worst is not None:
            for point in (worst.closest_implant, worst.closest_structure):
                q = view.lps_to_widget(point)[0]
                rect = rect.united(QRectF(q.x() - 8, q.y() - 30, 200, 40))
        return rect

    def _update_slices(self, name: str) -> None:
        """Repaint only where the implant was and is (dragging then costs a small part of
        each view, not three whole views)."""
        for view in self.window.slice_views.values():
            if view.plane is not None:
                view.update()
                continue
            now = self._footprint(view, name)
            key = (id(view), name)
            before = self._drawn.get(key)
            self._drawn[key] = now
            dirty = now if before is None else now.united(before)
            if dirty.isEmpty():
                continue
            view.update(dirty.toAlignedRect().adjusted(-2, -2, 2, 2))

    def _reslice(self) -> None:
        """With "Reslice along the implant": the axial and sagittal views show the oblique
        planes containing the current implant's axis; otherwise the orthogonal slices."""
        from surgtwin.planning.report_render import oblique_planes

        views = self.window.slice_views
        record = self.current_record()
        if not self.followCheck.isChecked() or record is None:
            for key in ("axial", "sagittal"):
                views[key].clear_oblique()
            return
        entry, tip = entry_and_tip(record)
        planes = dict((p[0], p[1:]) for p in oblique_planes(entry, tip))
        for key, plane in (("axial", "axial-oblique"), ("sagittal", "sagittal-oblique")):
            centre, h, v, letters = planes[plane]
            views[key].set_oblique(centre, h, v, letters)

    def _show_readings_soon(self) -> None:
        """The status line at once; the table and trajectory numbers at most every 250 ms
        while an implant is dragged, and when it stops (each update lays the dock out again,
        which costs as much as a frame on software OpenGL)."""
        now = time.monotonic()
        if now - self._last_table >= 0.25 or not self.window.view3d.interacting:
            self._show_readings()
            return
        self._show_status()
        if not self._table_timer.isActive():
            self._table_timer.start()

    def _show_readings(self) -> None:
        self._last_table = time.monotonic()
        record = self.current_record()
        table = self.readoutTable
        if record is None:
            table.setRowCount(0)
            self.statusLabel.setText("No implant selected")
            self.statusLabel.setProperty("role", "")
            self.trajectoryLabel.setText("")
            self._restyle()
            return
        readings = self.window.live.readings.get(record.name, [])
        table.setRowCount(len(readings))
        for row, r in enumerate(readings):
            if r.role == "bone":
                value = "contained" if r.clearance_mm >= 0 else f"exits {-r.clearance_mm:.1f} mm"
            else:
                value = r.text
            cells = [
                f"{r.structure} ({r.role})",
                value,
                r.status.upper() if r.role != "bone" else "-",
                r.grade or "-",
            ]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col in (1, 2) and r.role != "bone":
                    item.setForeground(QBrush(_qcolor(STATUS_COLOURS[r.status])))
                table.setItem(row, col, item)
        if not self.window.view3d.interacting:
            table.resizeColumnsToContents()
        self._show_status()
        try:
            lib = library_implant(record)
            info = trajectory_readout(lib, self._bone_field(), self._midline_x())
        except Exception:
            self.trajectoryLabel.setText("")
            return
        text = (
            f"Axial {info['axial_deg']:+.1f}° (medial +), sagittal {info['sagittal_deg']:+.1f}° "
            f"(cranial +), length {info['length_mm']:.1f} mm"
        )
        if info["in_bone_mm"] is not None:
            text += f", {info['in_bone_mm']:.1f} mm in bone"
        self.trajectoryLabel.setText(text)

    def _show_status(self) -> None:
        record = self.current_record()
        if record is None:
            return
        status = self.window.live.status(record.name)
        worst = self.window.live.worst(record.name)
        if status is None:
            self.statusLabel.setText(f"{record.name}: clearance not available yet")
            self.statusLabel.setProperty("role", "")
        else:
            word = {"ok": "Clear", "warn": "Within margin", "fail": "Breach"}[status]
            self.statusLabel.setText(f"{record.name}: {word}, {worst.structure} {worst.text}")
            self.statusLabel.setProperty("role", f"status-{status}")
        self._restyle()

    def _restyle(self) -> None:
        role = self.statusLabel.property("role")
        if role == self._styled_role:
            return
        self._styled_role = role
        self.statusLabel.style().unpolish(self.statusLabel)
        self.statusLabel.style().polish(self.statusLabel)

    def draw_overlay(self, p: QPainter, view) -> None:
        """Each implant's axis on a slice (width = its diameter), the current one's closest
        point joined to the structure, and the pending entry while placing."""
        plan = self.session.plan
        if plan is None:
            return
        mmpp = view.mm_per_pixel()
        for record in plan.implants.values():
            try:
                entry, tip = entry_and_tip(record)
                diameter = implant_spec(record).diameter_mm
            except (CaseError, ValueError):
                continue
            a, da = view.lps_to_widget(entry)
            b, db = view.lps_to_widget(tip)
            near = min(abs(da), abs(db)) < 3.0 or da * db < 0
            colour = _qcolor(
                STATUS_COLOURS[self.window.live.status(record.name)], 230 if near else 90
            )
            width = max(2.0, (diameter or 2.0) / mmpp)
            pen = QPen(colour, width)
            pen.setCapStyle(Qt.PenCapStyle.FlatCap)
            p.setPen(pen)
            p.drawLine(a, b)
            if record.name == self.session.current_implant:
                p.setPen(QPen(QColor(255, 255, 255, 200), 1.5))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawEllipse(b, GRAB_PX * 0.6, GRAB_PX * 0.6)
        worst = self.window.live.worst(self.session.current_implant)
        if worst is not None:
            a, da = view.lps_to_widget(worst.closest_implant)
            b, db = view.lps_to_widget(worst.closest_structure)
            if min(abs(da), abs(db)) < 6.0:
                colour = _qcolor(STATUS_COLOURS[worst.status])
                p.setPen(QPen(colour, 2))
                p.drawLine(a, b)
                p.drawText(QPointF(b.x() + 6, b.y() - 6), worst.text)
        if self.window.tool is self.place_tool and self.place_tool.entry is not None:
            a, _ = view.lps_to_widget(self.place_tool.entry)
            p.setPen(QPen(QColor(80, 200, 255), 2))
            p.drawEllipse(a, 5, 5)
