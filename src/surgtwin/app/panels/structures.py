"""Structures panel: the plan's structures with role, safety margin, colour, visibility,
opacity and name; adding one from a mesh file; removing one. Every change is an undo step.

A structure made from a label follows its label: colour, visibility, opacity and name are
changed on the label (so the slices and the 3-D view agree), the role on both; the safety
margin belongs to the structure only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QIcon, QPainter, QPixmap
from PyQt6.QtWidgets import QColorDialog, QFileDialog, QTableWidgetItem, QWidget

from surgtwin.app.resources import load_ui
from surgtwin.app.workers import Job
from surgtwin.planning.commands import (
    AddCut,
    AddStructure,
    CompoundCommand,
    LabelEditCommand,
    RemoveCut,
    RemoveStructure,
    SetStructureProperty,
)
from surgtwin.planning.plan import ROLES, Structure, default_margin_mm
from surgtwin.segmentation.labelmap import EXTRA_COLOURS, Label, Role

__all__ = ["StructuresPanel", "colour_icon", "role_changes"]

#: The colour :func:`~surgtwin.geometry.mesh_import.import_mesh` gives a file without one.
DEFAULT_MESH_COLOUR = (0.9, 0.9, 0.9)


def colour_icon(rgb, size: int = 14) -> QIcon:
    """A small square swatch of an RGB (0..1) colour."""
    pix = QPixmap(size, size)
    pix.fill(QColor(0, 0, 0, 0))
    p = QPainter(pix)
    p.setPen(QColor(20, 20, 20))
    p.setBrush(QColor(round(255 * rgb[0]), round(255 * rgb[1]), round(255 * rgb[2])))
    p.drawRect(0, 0, size - 1, size - 1)
    p.end()
    return QIcon(pix)


def role_changes(structure: Structure, role: str) -> dict:
    """The property changes of giving ``structure`` a new role: a margin left at the old role's
    default takes the new role's default (a structure made critical gets 2 mm)."""
    changes: dict = {"role": role}
    if structure.margin_mm == default_margin_mm(structure.role):
        changes["margin_mm"] = default_margin_mm(role)
    return changes


class StructuresPanel(QWidget):
    """The Structures tab: the plan's structures and their display and safety properties.

    Parameters
    ----------
    window : MainWindow
        Gives the session and ``run_job`` (mesh files are read on a worker).
    """

    def __init__(self, window):
        super().__init__(window)
        load_ui("structures_panel.ui", self)
        self.window = window
        self.session = window.session
        self._updating = False
        self._select_after: str | None = None
        self._edit_serial = 0
        for role in ROLES:
            self.roleCombo.addItem(role, role)
        for space in ("LPS", "RAS"):
            self.spaceCombo.addItem(space, space)
        table = self.structureTable
        table.verticalHeader().setVisible(False)
        header = table.horizontalHeader()
        header.setSectionResizeMode(1, header.ResizeMode.Stretch)
        for col in (0, 2, 3, 4):
            header.setSectionResizeMode(col, header.ResizeMode.ResizeToContents)
        table.itemChanged.connect(self._item_changed)
        table.currentCellChanged.connect(lambda *_a: self._show_selected())
        self.nameEdit.returnPressed.connect(self._name_entered)
        self.roleCombo.activated.connect(self._role_chosen)
        self.marginSpin.valueChanged.connect(self._margin_changed)
        self.marginSpin.editingFinished.connect(self._end_edit)
        self.opacitySpin.valueChanged.connect(self._opacity_changed)
        self.colourButton.clicked.connect(self._choose_colour)
        self.addMeshButton.clicked.connect(self._choose_mesh)
        self.removeButton.clicked.connect(self._remove_clicked)
        self.session.caseChanged.connect(self._refresh)
        self.session.planEvent.connect(self._on_plan_event)
        self._refresh()

    # ---------------------------------------------------------------- selection

    def current_name(self) -> str | None:
        """The selected structure's name (None when nothing is selected)."""
        row = self.structureTable.currentRow()
        item = self.structureTable.item(row, 1) if row >= 0 else None
        plan = self.session.plan
        if item is None or plan is None:
            return None
        name = item.data(Qt.ItemDataRole.UserRole)
        return name if name in plan.structures else None

    def select(self, name: str) -> None:
        for row in range(self.structureTable.rowCount()):
            if self.structureTable.item(row, 1).data(Qt.ItemDataRole.UserRole) == name:
                self.structureTable.setCurrentCell(row, 1)
                return

    def _status(self, text: str, ms: int = 6000) -> None:
        self.window.statusBar().showMessage(text, ms)

    # ---------------------------------------------------------------- table

    def _refresh(self) -> None:
        table = self.structureTable
        plan = self.session.plan
        keep = self._select_after or self.current_name()
        self._select_after = None
        self._updating = True
        table.setRowCount(0)
        names = list(plan.structures) if plan is not None else []
        for row, name in enumerate(names):
            table.insertRow(row)
            self._fill_row(row, plan.structures[name])
            if name == keep:
                table.setCurrentCell(row, 1)
        if table.currentRow() < 0 and table.rowCount():
            table.setCurrentCell(0, 1)
        self._updating = False
        for w in (self.detailBox, self.removeButton, self.addMeshButton, self.spaceCombo):
            w.setEnabled(plan is not None)
        self._show_selected()

    def _fill_row(self, row: int, s: Structure) -> None:
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        show = QTableWidgetItem()
        show.setFlags(flags | Qt.ItemFlag.ItemIsUserCheckable)
        show.setCheckState(Qt.CheckState.Checked if s.visible else Qt.CheckState.Unchecked)
        show.setIcon(colour_icon(s.color))
        name = QTableWidgetItem(s.name)
        name.setFlags(flags | Qt.ItemFlag.ItemIsEditable)
        name.setData(Qt.ItemDataRole.UserRole, s.name)
        role = QTableWidgetItem(s.role)
        role.setFlags(flags)
        margin = QTableWidgetItem(f"{s.margin_mm:g} mm")
        margin.setFlags(flags)
        margin.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        source = QTableWidgetItem(s.source)
        source.setFlags(flags)
        for col, item in enumerate((show, name, role, margin, source)):
            self.structureTable.setItem(row, col, item)

    def _row_of(self, name: str) -> int:
        for row in range(self.structureTable.rowCount()):
            if self.structureTable.item(row, 1).data(Qt.ItemDataRole.UserRole) == name:
                return row
        return -1

    def _on_plan_event(self, event) -> None:
        if event.name != "structures":
            return
        row = self._row_of(str(event.key))
        if event.kind == "changed" and row >= 0:
            self._updating = True
            self._fill_row(row, event.new)
            self._updating = False
            if str(event.key) == self.current_name():
                self._show_selected()
        else:
            self._refresh()

    def _show_selected(self) -> None:
        name = self.current_name()
        self.detailBox.setEnabled(name is not None)
        self.removeButton.setEnabled(name is not None)
        if name is None:
            self.infoLabel.setText("")
            return
        self._edit_serial += 1
        s = self.session.plan.structures[name]
        was, self._updating = self._updating, True
        self.nameEdit.setText(s.name)
        self.roleCombo.setCurrentIndex(max(0, self.roleCombo.findData(s.role)))
        self.marginSpin.setValue(s.margin_mm)
        self.opacitySpin.setValue(round(100 * s.opacity))
        self.colourButton.setIcon(colour_icon(s.color))
        self._updating = was
        info = "From the label map" if s.source == "label" else "Imported surface"
        if s.mesh is not None:
            info += f"; surface of {len(s.mesh.faces):,} triangles"
            volume = abs(s.mesh.volume_mm3())
            info += f", {volume / 1000:.1f} ml" if volume >= 1000 else f", {volume:.0f} mm³"
        elif s.source == "label":
            info += "; no surface built yet (Segment: Build 3D)"
        self.infoLabel.setText(info)

    # ---------------------------------------------------------------- widgets -> edits

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating:
            return
        name = self.structureTable.item(item.row(), 1).data(Qt.ItemDataRole.UserRole)
        if item.column() == 0:
            self.set_visible(name, item.checkState() == Qt.CheckState.Checked)
        elif item.column() == 1 and not self.rename(name, item.text().strip()):
            self._updating = True
            item.setText(name)  # refused (or unchanged): show the name it has
            self._updating = False

    def _name_entered(self) -> None:
        name = self.current_name()
        if name is not None and not self.rename(name, self.nameEdit.text().strip()):
            self.nameEdit.setText(name)

    def _role_chosen(self, _index: int) -> None:
        name = self.current_name()
        if name is not None and not self._updating:
            self.set_role(name, self.roleCombo.currentData())

    def _margin_changed(self, value: float) -> None:
        name = self.current_name()
        if name is not None and not self._updating:
            self.set_margin(name, value, drag_id=("margin", name, self._edit_serial))

    def _end_edit(self) -> None:
        self._edit_serial += 1

    def _opacity_changed(self, percent: int) -> None:
        name = self.current_name()
        if name is not None and not self._updating:
            self.set_opacity(name, percent / 100.0)

    def _choose_colour(self) -> None:
        name = self.current_name()
        if name is None:
            return
        rgb = self.session.plan.structures[name].color
        start = QColor(round(255 * rgb[0]), round(255 * rgb[1]), round(255 * rgb[2]))
        colour = QColorDialog.getColor(start, self, f"Colour of {name}")
        if colour.isValid():
            self.set_colour(name, (colour.redF(), colour.greenF(), colour.blueF()))

    def _choose_mesh(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Add a structure from a mesh file",
            "",
            "Surface meshes (*.stl *.obj *.ply *.vtp);;All files (*)",
        )
        if path:
            self.add_mesh_file(path, self.spaceCombo.currentData())

    def _remove_clicked(self) -> None:
        name = self.current_name()
        if name is not None:
            self.remove(name)

    # ---------------------------------------------------------------- edits (undoable)

    def _label_of(self, s: Structure) -> Label | None:
        lm = self.session.plan.labelmap
        if s.source != "label" or lm is None or s.label_value not in lm.labels:
            return None
        return lm.labels[s.label_value]

    def _display_change(self, name: str, step: str, **changes) -> bool:
        """Colour, visibility or opacity: on the label when the structure follows one."""
        plan = self.session.plan
        s = plan.structures[name]
        changes = {k: v for k, v in changes.items() if getattr(s, k) != v}
        if not changes:
            return False
        label = self._label_of(s)
        if label is not None and all(getattr(label, k) != v for k, v in changes.items()):
            edit = plan.labelmap.update_label(step, label.value, **changes)
            self.session.push(LabelEditCommand(plan, edit))
        else:
            self.session.push(SetStructureProperty(plan, name, **changes))
        return True

    def set_visible(self, name: str, visible: bool) -> bool:
        """Show or hide a structure (3-D view and, for a label, the slices)."""
        step = f"{'Show' if visible else 'Hide'} {name}"
        return self._display_change(name, step, visible=visible)

    def set_colour(self, name: str, rgb) -> bool:
        """Colour of a structure, RGB 0..1."""
        rgb = tuple(round(float(c), 4) for c in rgb)
        return self._display_change(name, f"Set colour of {name}", color=rgb)

    def set_opacity(self, name: str, opacity: float) -> bool:
        """Opacity 0..1 of a structure."""
        return self._display_change(name, f"Set opacity of {name}", opacity=float(opacity))

    def set_role(self, name: str, role: str) -> bool:
        """Role of a structure (and of its label); a default margin follows the role."""
        plan = self.session.plan
        s = plan.structures[name]
        if s.role == role:
            return False
        step = f"Make {name} {role}"
        commands = []
        label = self._label_of(s)
        if label is not None and str(label.role) != role:
            edit = plan.labelmap.update_label(step, label.value, role=Role(role))
            commands.append(LabelEditCommand(plan, edit))
        commands.append(SetStructureProperty(plan, name, **role_changes(s, role)))
        self.session.push(
            commands[0] if len(commands) == 1 else CompoundCommand(plan, step, commands)
        )
        return True

    def set_margin(self, name: str, margin_mm: float, drag_id=None) -> bool:
        """Safety margin of a structure in mm (the live clearance judges implants by it)."""
        plan = self.session.plan
        if plan.structures[name].margin_mm == float(margin_mm):
            return False
        command = SetStructureProperty(plan, name, drag_id=drag_id, margin_mm=float(margin_mm))
        command.name = f"Set safety margin of {name} to {margin_mm:g} mm"
        self.session.push(command)
        return True

    def rename(self, name: str, new: str) -> bool:
        """Rename a structure (its label and the cuts naming it follow) as one undo step."""
        plan = self.session.plan
        new = new.strip()
        s = plan.structures[name]
        lm = plan.labelmap
        label = self._label_of(s)
        taken = {n.lower() for n in plan.structures if n != name}
        if label is not None:
            taken |= {n.lower() for n in lm.names() if n != label.name}
        if not new or new.lower() in taken:
            self._status(f"Cannot rename {name}: {new!r} is empty or the name of another one")
            return False
        if new == name:
            return False
        step = f"Rename {name} to {new}"
        self._select_after = new
        if label is not None:
            edit = lm.update_label(step, label.value, name=new)
            try:
                self.session.push(LabelEditCommand(plan, edit))
            except ValueError as exc:
                self._status(str(exc))
                return False
            return True
        index = plan.structures.index(name)
        commands = [
            RemoveStructure(plan, name),
            AddStructure(plan, dataclasses.replace(s, name=new), index=index),
        ]
        for key, cut in plan.cuts.items():
            if cut.structure == name:
                cut_index = plan.cuts.index(key)
                commands += [
                    RemoveCut(plan, key),
                    AddCut(plan, dataclasses.replace(cut, structure=new), index=cut_index),
                ]
        self.session.push(CompoundCommand(plan, step, commands))
        return True

    def remove(self, name: str) -> None:
        """Remove a structure from the plan (a label's voxels stay)."""
        self.session.push(RemoveStructure(self.session.plan, name))

    def add_mesh_file(self, path, space: str = "LPS", role: str = "other") -> Job | None:
        """Read a surface file on a worker and add it as a structure (one undo step)."""
        from surgtwin.geometry.mesh_import import import_mesh

        plan = self.session.plan
        if plan is None:
            self._status("Open a case first")
            return None
        path = Path(path)

        def work(_progress, _cancel):
            return import_mesh(path, space, role=role)

        def done(mesh) -> None:
            if self.session.plan is not plan:
                return
            taken = {n.lower() for n in plan.structures}
            base = mesh.name or path.stem
            name, n = base, 2
            while name.lower() in taken:
                name, n = f"{base} {n}", n + 1
            colour = tuple(mesh.color)
            if colour == DEFAULT_MESH_COLOUR:  # the file has none (STL): one not yet in use
                used = {s.color for s in plan.structures.values()}
                colour = next((c for c in EXTRA_COLOURS if c not in used), colour)
            structure = Structure(name, role, colour, source="mesh", mesh=mesh)
            self._select_after = name
            self.session.push(AddStructure(plan, structure, name=f"Add {name} from {path.name}"))
            if not mesh.is_watertight():
                self._status(f"{name}: the surface is not closed; clearance to it is approximate")

        return self.window.run_job(f"Reading {path.name}", work, done)
