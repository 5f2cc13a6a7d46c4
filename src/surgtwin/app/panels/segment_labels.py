"""The Segment panel's label list: the table of labels (shown, name, role, volume), and adding,
renaming, recolouring, showing/hiding and deleting labels, each one undo step."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QColorDialog, QTableWidgetItem

from surgtwin.app.panels.structures import colour_icon, role_changes
from surgtwin.planning.commands import (
    CompoundCommand,
    LabelEditCommand,
    RemoveStructure,
    SetStructureProperty,
)

__all__ = ["LabelListMixin", "qcolor", "unique_name"]


def qcolor(rgb, alpha: int = 255) -> QColor:
    """A QColor from RGB 0..1 and an alpha 0..255."""
    return QColor(round(255 * rgb[0]), round(255 * rgb[1]), round(255 * rgb[2]), alpha)


def unique_name(name: str, taken) -> str:
    """``name``, or ``name 2``, ``name 3``… when it is taken (case-insensitive)."""
    low = {t.lower() for t in taken}
    if name.lower() not in low:
        return name
    n = 2
    while f"{name} {n}".lower() in low:
        n += 1
    return f"{name} {n}"


class LabelListMixin:
    """The label table of :class:`~surgtwin.app.panels.segment.SegmentPanel` and the edits of
    a label's properties (the panel gives ``labelTable``, ``labelmap()``, ``session``…)."""

    def _refresh_labels(self) -> None:
        table = self.labelTable
        lm = self.labelmap()
        keep = self._select_after if self._select_after is not None else self.current_value()
        self._select_after = None
        self._updating = True
        table.setRowCount(0)
        labels = sorted(lm.labels.values(), key=lambda lab: lab.value) if lm is not None else []
        vv = lm.geometry.voxel_volume_mm3 if lm is not None else 1.0
        for row, lab in enumerate(labels):
            table.insertRow(row)
            show = QTableWidgetItem()
            show.setFlags(
                Qt.ItemFlag.ItemIsUserCheckable
                | Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
            )
            show.setCheckState(Qt.CheckState.Checked if lab.visible else Qt.CheckState.Unchecked)
            show.setIcon(colour_icon(lab.color))
            show.setData(Qt.ItemDataRole.UserRole, lab.value)
            name = QTableWidgetItem(lab.name)
            name.setFlags(
                Qt.ItemFlag.ItemIsEditable
                | Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
            )
            role = QTableWidgetItem(str(lab.role))
            role.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            volume = QTableWidgetItem(self._volume_text(lab.value, vv))
            volume.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            volume.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for col, item in enumerate((show, name, role, volume)):
                table.setItem(row, col, item)
            if lab.value == keep:
                table.setCurrentCell(row, 1)
        if table.currentRow() < 0 and table.rowCount():
            table.setCurrentCell(0, 1)
        self._updating = False
        self._show_selected()

    def _volume_text(self, value: int, voxel_mm3: float) -> str:
        if self._counts is None or value >= len(self._counts):
            return "…"
        ml = self._counts[value] * voxel_mm3 / 1000.0
        return f"{ml:.1f} ml" if ml >= 1 else f"{ml * 1000:.0f} mm³"

    def _show_selected(self) -> None:
        value = self.current_value()
        lm = self.labelmap()
        has = value is not None
        for w in (
            self.colourButton,
            self.roleCombo,
            self.opacitySpin,
            self.deleteLabelButton,
            self.refineBox,
        ):
            w.setEnabled(has)
        if not has or lm is None:
            return
        lab = lm.labels[value]
        was, self._updating = self._updating, True
        self.roleCombo.setCurrentIndex(max(0, self.roleCombo.findData(str(lab.role))))
        self.opacitySpin.setValue(round(100 * lab.opacity))
        self.colourButton.setIcon(colour_icon(lab.color))
        self._updating = was
        self.update_slices()

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._updating:
            return
        row = item.row()
        value = self.labelTable.item(row, 0).data(Qt.ItemDataRole.UserRole)
        if item.column() == 0:
            self.set_label(value, visible=item.checkState() == Qt.CheckState.Checked)
        elif item.column() == 1:
            self.set_label(value, name=item.text().strip())

    def _choose_colour(self) -> None:
        value = self.current_value()
        lm = self.labelmap()
        if value is None or lm is None:
            return
        colour = QColorDialog.getColor(qcolor(lm.labels[value].color), self, "Label colour")
        if colour.isValid():
            rgb = (colour.redF(), colour.greenF(), colour.blueF())
            self.set_label(value, color=tuple(round(c, 4) for c in rgb))

    def _role_chosen(self, _index: int) -> None:
        value = self.current_value()
        if value is not None and not self._updating:
            self.set_label(value, role=self.roleCombo.currentData())

    def _opacity_changed(self, percent: int) -> None:
        value = self.current_value()
        if value is not None and not self._updating:
            self.set_label(value, opacity=percent / 100.0)

    def new_label(self, name: str | None = None, role: str = "other") -> int | None:
        """Add an empty label (one undo step) and select it; returns its value."""
        lm, plan = self.labelmap(), self.session.plan
        if lm is None:
            return None
        taken = list(lm.names()) + list(plan.structures)
        lab = lm.new_label(unique_name(name or "Label", taken), role)
        labels = dict(lm.labels)
        labels[lab.value] = lab
        edit = lm.set_labels(f"New label {lab.name}", labels)
        self._select_after = lab.value
        self.session.push(LabelEditCommand(plan, edit))
        return lab.value

    def set_label(self, value: int, **changes) -> bool:
        """Rename, recolour, show/hide, change the role or opacity of a label as one undo step
        (its 3-D structure follows)."""
        lm, plan = self.labelmap(), self.session.plan
        if lm is None or value not in lm.labels:
            return False
        lab = lm.labels[value]
        changes = {k: v for k, v in changes.items() if getattr(lab, k) != v}
        if "role" in changes:
            changes["role"] = type(lab.role)(changes["role"])
        if not changes:
            return False
        if "name" in changes:
            new = changes["name"]
            own = {s.name for s in plan.structures.values() if s.label_value == value}
            taken = [n for n in lm.names() if n != lab.name] + [
                n for n in plan.structures if n not in own
            ]
            if not new or new.lower() in {t.lower() for t in taken}:
                self._status(f"Cannot rename {lab.name}: the name {new!r} is empty or in use")
                self._refresh_labels()
                return False
            step = f"Rename {lab.name} to {new}"
        elif "visible" in changes:
            step = f"{'Show' if changes['visible'] else 'Hide'} {lab.name}"
        else:
            step = f"Set {', '.join(changes)} of {lab.name}"
        edit = lm.update_label(step, value, **changes)
        commands = [LabelEditCommand(plan, edit)]
        if "role" in changes:
            for s in plan.structures.values():
                if s.source == "label" and s.label_value == value and s.role != changes["role"]:
                    commands.append(
                        SetStructureProperty(plan, s.name, **role_changes(s, str(changes["role"])))
                    )
        self._select_after = value
        try:
            self.session.push(
                commands[0] if len(commands) == 1 else CompoundCommand(plan, step, commands)
            )
        except ValueError as exc:
            self._status(str(exc))
            self._refresh_labels()
            return False
        return True

    def _delete_clicked(self) -> None:
        value = self.current_value()
        if value is not None:
            self.delete_label(value)

    def delete_label(self, value: int) -> None:
        """Delete a label, its voxels and its structures, as one undo step."""
        lm, plan = self.labelmap(), self.session.plan
        if lm is None or value not in lm.labels:
            return
        name = lm.labels[value].name
        labels = {v: lab for v, lab in lm.labels.items() if v != value}
        step = f"Delete label {name}"
        edit = lm.set_labels(step, labels)
        commands = [LabelEditCommand(plan, edit)]
        for s in list(plan.structures.values()):
            if s.source == "label" and s.label_value == value:
                commands.append(RemoveStructure(plan, s.name))
        self.session.push(
            commands[0] if len(commands) == 1 else CompoundCommand(plan, step, commands)
        )
