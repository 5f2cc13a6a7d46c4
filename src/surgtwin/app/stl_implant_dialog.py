"""The "Add STL implant" dialog: a mesh file becomes a user catalogue implant."""

from __future__ import annotations

import re
from collections.abc import Container
from pathlib import Path

import numpy as np
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from surgtwin.errors import SurgTwinError
from surgtwin.planning.implants import USER_STL, ImplantSpec, default_axis

__all__ = ["StlImplantDialog", "unique_key"]

MESH_FILTER = "Surface meshes (*.stl *.obj *.ply *.vtp);;All files (*)"


def unique_key(name: str, used: Container[str]) -> str:
    """A catalogue key ``user-<name in lower case and dashes>`` not in ``used``."""
    slug = re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-") or "implant"
    key, n = f"user-{slug}", 2
    while key in used:
        key, n = f"user-{slug}-{n}", n + 1
    return key


def _spin(lo: float, hi: float, value: float, decimals: int = 2) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(lo, hi)
    box.setValue(value)
    return box


class StlImplantDialog(QDialog):
    """Asks for a mesh file and its insertion axis; :attr:`spec` is the new implant once
    accepted.

    Parameters
    ----------
    used_keys : Container[str]
        Catalogue keys already taken (the new key avoids them).
    parent : QWidget, optional
    """

    def __init__(self, used_keys: Container[str] = (), parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add STL implant")
        self.used_keys = used_keys
        self.spec: ImplantSpec | None = None
        self.fileEdit = QLineEdit()
        self.fileEdit.setPlaceholderText("Mesh file (.stl, .obj, .ply, .vtp)")
        self.fileEdit.editingFinished.connect(lambda: self.set_file(self.fileEdit.text()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        file_row = QHBoxLayout()
        file_row.addWidget(self.fileEdit, 1)
        file_row.addWidget(browse)
        self.nameEdit = QLineEdit()
        self.manufacturerEdit = QLineEdit()
        self.spaceCombo = QComboBox()
        self.spaceCombo.addItems(["LPS", "RAS"])
        self.spaceCombo.setToolTip("The coordinate space the file's numbers are in")
        self.entrySpins = [_spin(-10000, 10000, 0.0) for _ in range(3)]
        self.directionSpins = [_spin(-1000, 1000, v, 4) for v in (0.0, 0.0, -1.0)]
        self.lengthSpin = _spin(0.1, 1000, 45.0)
        self.diameterSpin = _spin(0.0, 1000, 0.0)
        self.diameterSpin.setSpecialValueText("none")
        self.diameterSpin.setToolTip("Outer diameter (mm); leave at 'none' if it has none")
        form = QFormLayout()
        form.addRow("STL file", file_row)
        form.addRow("Name", self.nameEdit)
        form.addRow("Manufacturer", self.manufacturerEdit)
        form.addRow("Space", self.spaceCombo)
        for label, spins, tip in (
            ("Axis entry x, y, z (mm)", self.entrySpins, "Where the implant enters"),
            ("Direction x, y, z", self.directionSpins, "From the entry towards the tip"),
        ):
            row = QHBoxLayout()
            for box in spins:
                box.setToolTip(f"{tip}, in the file's coordinates")
                row.addWidget(box)
            form.addRow(label, row)
        form.addRow("Length (mm)", self.lengthSpin)
        form.addRow("Diameter (mm)", self.diameterSpin)
        self.errorLabel = QLabel("")
        self.errorLabel.setWordWrap(True)
        self.errorLabel.setProperty("role", "status-fail")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.errorLabel)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "STL implant", "", MESH_FILTER)
        if path:
            self.set_file(path)

    def set_file(self, path: str | Path) -> None:
        """Choose the mesh file; fills in the name and the default axis (the bounding box's
        top centre, direction -z, length the extent along it)."""
        path = str(path)
        self.fileEdit.setText(path)
        if not self.nameEdit.text().strip():
            self.nameEdit.setText(Path(path).stem)
        self._load_defaults()

    def _load_defaults(self) -> None:
        path = self.fileEdit.text().strip()
        if not path:
            return
        from surgtwin.geometry.mesh_io import import_mesh

        space = self.spaceCombo.currentText()
        try:
            points = import_mesh(path, space).points
        except (OSError, SurgTwinError, ValueError) as exc:
            self.errorLabel.setText(str(exc))
            return
        if space == "RAS":  # back to the file's numbers
            points = points * np.array([-1.0, -1.0, 1.0])
        self.errorLabel.setText("")
        direction = tuple(box.value() for box in self.directionSpins)
        try:
            entry, length = default_axis(points, direction)
        except SurgTwinError:
            entry, length = default_axis(points)
            for box, v in zip(self.directionSpins, (0.0, 0.0, -1.0), strict=True):
                box.setValue(v)
        for box, v in zip(self.entrySpins, entry, strict=True):
            box.setValue(v)
        self.lengthSpin.setValue(max(length, self.lengthSpin.minimum()))

    def build_spec(self) -> ImplantSpec:
        """The implant as filled in (ImplantSpecError or MeshIOError when it cannot be)."""
        from surgtwin.geometry.mesh_io import import_mesh

        path = self.fileEdit.text().strip()
        if not path:
            raise SurgTwinError("choose the implant's mesh file")
        space = self.spaceCombo.currentText()
        import_mesh(path, space)  # readable, in the stated space
        name = self.nameEdit.text().strip() or Path(path).stem
        parameters = {"length_mm": self.lengthSpin.value()}
        if self.diameterSpin.value() > 0:
            parameters["diameter_mm"] = self.diameterSpin.value()
        return ImplantSpec(
            unique_key(name, self.used_keys),
            USER_STL,
            name,
            self.manufacturerEdit.text().strip(),
            parameters,
            file=str(Path(path).resolve()),
            space=space,
            axis_entry=tuple(box.value() for box in self.entrySpins),
            axis_direction=tuple(box.value() for box in self.directionSpins),
        )

    def accept(self) -> None:
        try:
            self.spec = self.build_spec()
        except (OSError, SurgTwinError, ValueError) as exc:
            self.errorLabel.setText(str(exc))
            return
        super().accept()
