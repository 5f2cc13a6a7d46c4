"""Export panel: 3-D models (with a print check each), segmentation, report and screenshot.

Everything goes into one output folder. The work runs on a worker through
:meth:`MainWindow.run_job` (the core writers write atomically); a failure opens the error dialog,
whose message names the file. Patient identifiers are written only when the user ticks
"Include patient identifiers".
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import Qt, QUrl
from PyQt6.QtGui import QBrush, QColor, QDesktopServices, QIcon, QPixmap
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QListWidgetItem,
    QTableWidgetItem,
    QWidget,
)

from surgtwin.app.live_controller import STATUS_COLOURS
from surgtwin.app.resources import load_ui, set_style_role
from surgtwin.app.workers import Job
from surgtwin.geometry.mesh_io import safe_file_stem
from surgtwin.planning.plan_export import (
    ExportedMesh,
    export_plan_meshes,
    write_segmentation,
)

__all__ = ["ExportPanel", "WrittenFile"]

MESH_FORMATS = (
    ("STL (binary)", "stl"),
    ("OBJ + MTL", "obj"),
    ("PLY", "ply"),
    ("GLB (glTF binary, mm)", "glb"),
    ("3MF", "3mf"),
    ("VTP (VTK XML)", "vtp"),
)
SPACES = (("LPS (DICOM patient)", "LPS"), ("RAS (3D Slicer)", "RAS"))
SEG_FORMATS = (
    ("3D Slicer (.seg.nrrd)", ".seg.nrrd"),
    ("DICOM SEG (.dcm)", ".dcm"),
    ("NIfTI (.nii.gz)", ".nii.gz"),
)
REPORT_FORMATS = (("Report as PDF", ".pdf"), ("Report as HTML", ".html"))

_ROLE = Qt.ItemDataRole.UserRole


@dataclass(frozen=True)
class WrittenFile:
    """One row of the "Files written" table.

    ``check`` is the short verdict shown in the table, ``details`` the full text shown when the
    row is selected; ``status`` ("ok", "warn", "fail" or None) colours the verdict; ``tag`` is
    shown after the file name (the coordinate space of a model).
    """

    what: str
    path: Path
    check: str = ""
    status: str | None = None
    details: str = ""
    tag: str = ""


def _colour_icon(rgb) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(QColor(*(int(255 * max(0.0, min(1.0, c))) for c in rgb[:3])))
    return QIcon(pix)


def mesh_check_text(row: ExportedMesh) -> tuple[str, str, str]:
    """The print check of one exported model: short verdict, full text, status colour."""
    problems = "; ".join(row.problems)
    if not row.watertight:
        return "NOT watertight", f"NOT watertight: {problems}", "fail"
    if row.problems:
        n = len(row.problems)
        return f"watertight, {n} print warning{'s' * (n > 1)}", f"watertight; {problems}", "warn"
    return "watertight", "watertight, ready to print", "ok"


class ExportPanel(QWidget):
    """The "Export" tab: models, segmentation, report and screenshot into one folder; the
    "Files written" table lists every file with its check."""

    def __init__(self, window):
        super().__init__(window)
        load_ui("export_panel.ui", self)
        self.window = window
        self.session = window.session
        self.written: list[WrittenFile] = []
        self.last_job: Job | None = None
        self._default_folder = ""
        for combo, items in (
            (self.formatCombo, MESH_FORMATS),
            (self.spaceCombo, SPACES),
            (self.segFormatCombo, SEG_FORMATS),
            (self.reportFormatCombo, REPORT_FORMATS),
        ):
            for text, data in items:
                combo.addItem(text, data)
            # narrow when the dock is narrow: the text elides instead of widening the panel
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(8)
        self.resultTable.verticalHeader().setVisible(False)
        self.resultTable.horizontalHeader().setStretchLastSection(True)
        self.resultTable.currentCellChanged.connect(lambda row, *_a: self._show_details(row))
        self.folderButton.clicked.connect(self.choose_folder)
        self.openFolderButton.clicked.connect(self.open_folder)
        self.includePatientCheck.toggled.connect(self._privacy_changed)
        self.allButton.clicked.connect(lambda: self._check_all(True))
        self.noneButton.clicked.connect(lambda: self._check_all(False))
        self.exportMeshesButton.clicked.connect(self.export_meshes)
        self.exportSegButton.clicked.connect(self.export_segmentation)
        self.exportReportButton.clicked.connect(self.export_report)
        self.screenshotButton.clicked.connect(self.save_screenshot)
        self.session.caseChanged.connect(self._on_case)
        self.session.planEvent.connect(self._on_plan_event)
        window.jobFinished.connect(self._job_finished)
        self._privacy_changed(False)
        self._on_case()

    # ---------------------------------------------------------------- state

    def _on_case(self) -> None:
        self._refresh_models()
        plan = self.session.plan
        has = plan is not None
        for w in (
            self.exportMeshesButton,
            self.exportSegButton,
            self.exportReportButton,
            self.screenshotButton,
        ):
            w.setEnabled(has)
        if not has:
            return
        # follow the case with the suggested folder unless the user typed their own
        text = self.folderEdit.text().strip()
        if not text or text == self._default_folder:
            self._default_folder = str(self._suggested_folder())
            self.folderEdit.setText(self._default_folder)

    def _suggested_folder(self) -> Path:
        stem = self.base_name()
        where = self.session.plan_path
        parent = where.parent if where is not None else Path.home() / "SurgTwin exports"
        return parent / f"{stem}_export"

    def _follow_suggestion(self) -> None:
        """Move the suggested folder along (plan renamed or saved elsewhere) unless the user
        chose their own."""
        if self.session.plan is not None and self.folderEdit.text().strip() == self._default_folder:
            self._default_folder = str(self._suggested_folder())
            self.folderEdit.setText(self._default_folder)

    def showEvent(self, event) -> None:
        self._follow_suggestion()
        super().showEvent(event)

    def _on_plan_event(self, event) -> None:
        if event.name in ("structures", "implants"):
            self._refresh_models()
        elif event.name == "name":
            self._follow_suggestion()

    def _refresh_models(self) -> None:
        """The plan's structures then implants, keeping what the user ticked (new ones on)."""
        before = {
            self.modelList.item(r).data(_ROLE): self.modelList.item(r).checkState()
            for r in range(self.modelList.count())
        }
        self.modelList.clear()
        plan = self.session.plan
        if plan is None:
            return
        entries = [("structure", s.name, s.name, s.color) for s in plan.structures.values()]
        entries += [
            ("implant", r.name, f"{r.name} (implant)", (0.75, 0.78, 0.82))
            for r in plan.implants.values()
        ]
        for kind, name, text, colour in entries:
            item = QListWidgetItem(_colour_icon(colour), text)
            item.setData(_ROLE, (kind, name))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(before.get((kind, name), Qt.CheckState.Checked))
            self.modelList.addItem(item)

    def _check_all(self, on: bool) -> None:
        state = Qt.CheckState.Checked if on else Qt.CheckState.Unchecked
        for r in range(self.modelList.count()):
            self.modelList.item(r).setCheckState(state)

    def set_checked(self, structures=(), implants=()) -> None:
        """Tick exactly these structures and implants (by name)."""
        wanted = {("structure", n) for n in structures} | {("implant", n) for n in implants}
        for r in range(self.modelList.count()):
            item = self.modelList.item(r)
            on = tuple(item.data(_ROLE)) in wanted
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def checked_models(self) -> tuple[list[str], list[str]]:
        """Names of the ticked (structures, implants)."""
        out: dict[str, list[str]] = {"structure": [], "implant": []}
        for r in range(self.modelList.count()):
            item = self.modelList.item(r)
            if item.checkState() == Qt.CheckState.Checked:
                kind, name = item.data(_ROLE)
                out[kind].append(name)
        return out["structure"], out["implant"]

    def _privacy_changed(self, on: bool) -> None:
        if on:
            self.privacyLabel.setText(
                "Patient identifiers WILL be written into the report, the DICOM SEG and the "
                "metadata of OBJ, PLY, VTP, GLB and 3MF files (never STL or file names)."
            )
            set_style_role(self.privacyLabel, "status-warn")
        else:
            self.privacyLabel.setText("Anonymised: no patient identifiers are written.")
            set_style_role(self.privacyLabel, "")

    @property
    def include_patient(self) -> bool:
        return self.includePatientCheck.isChecked()

    def base_name(self) -> str:
        """The plan's name as a safe file-name stem (every exported file starts with it)."""
        plan = self.session.plan
        return safe_file_stem(plan.name if plan is not None else "plan")

    # ---------------------------------------------------------------- folder

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export to folder", self.folderEdit.text())
        if path:
            self.folderEdit.setText(path)

    def open_folder(self) -> None:
        folder = Path(self.folderEdit.text().strip()).expanduser()
        if folder.is_dir():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        else:
            self._status(f"{folder} does not exist yet: nothing was exported there", "warn")

    def output_folder(self) -> Path | None:
        """The output folder, created if missing; None (and the error dialog) if impossible."""
        text = self.folderEdit.text().strip()
        if not text:
            self._status("Choose an output folder first", "warn")
            return None
        folder = Path(text).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            exc_text = f"{folder}: the folder cannot be created ({exc.strerror or exc})"
            self.window.report_error("Export failed", OSError(exc_text), traceback.format_exc())
            return None
        return folder

    # ---------------------------------------------------------------- exports

    def export_meshes(self) -> Job | None:
        """Write the ticked models in the chosen format and space, each checked for printing."""
        plan = self.session.plan
        if plan is None:
            return None
        structures, implants = self.checked_models()
        if not structures and not implants:
            self._status("Tick at least one structure or implant to export", "warn")
            return None
        folder = self.output_folder()
        if folder is None:
            return None
        fmt, space = self.formatCombo.currentData(), self.spaceCombo.currentData()
        include = self.include_patient
        volume = self.session.volume
        patient = volume.patient if volume is not None else None
        geometry = self.session.geometry
        base = f"{self.base_name()}_models" if fmt in ("glb", "3mf") else None

        def work(progress, cancel):
            return export_plan_meshes(
                plan,
                folder,
                structures=structures,
                implants=implants,
                fmt=fmt,
                space=space,
                patient=patient,
                include_patient=include,
                base_name=base,
                geometry=geometry,
                progress=progress,
                cancel=cancel,
            )

        def done(rows: list[ExportedMesh]) -> None:
            entries = []
            for row in rows:
                short, text, status = mesh_check_text(row)
                what = f"{row.name} ({row.kind}, {row.triangles:,} triangles, {space} mm)"
                for path in row.files:
                    entries.append(WrittenFile(what, path, short, status, text, space))
            n_files = len({e.path for e in entries})
            bad = sum(not r.watertight for r in rows)
            summary = f"{len(rows)} model(s), {n_files} {fmt.upper()} file(s) in {space}: "
            summary += f"{bad} NOT watertight" if bad else "all watertight"
            self._add(entries, summary, "fail" if bad else "ok", folder)

        return self._run(f"Exporting models to {folder}", work, done)

    def export_segmentation(self) -> Job | None:
        """Write the label map (format from the combo) into the output folder."""
        plan = self.session.plan
        if plan is None:
            return None
        folder = self.output_folder()
        if folder is None:
            return None
        suffix = self.segFormatCombo.currentData()
        stem = self.base_name() + ("_seg" if suffix == ".dcm" else "")
        path = folder / f"{stem}{suffix}"
        include = self.include_patient
        volume = self.session.volume

        def work(_progress, _cancel):
            return write_segmentation(plan, path, volume=volume, include_patient=include)

        def done(written: Path) -> None:
            lm = plan.labelmap
            names = ", ".join(lab.name for lab in lm.labels.values()) if lm else ""
            n = len(lm.labels) if lm else 0
            entries = [WrittenFile("Segmentation", written, f"{n} labels", None, names)]
            if suffix == ".nii.gz":
                from surgtwin.segmentation.seg_io import labels_sidecar_path

                entries.append(WrittenFile("Label table", labels_sidecar_path(written), names))
            self._add(entries, f"Segmentation written: {written.name}", "ok", folder)

        return self._run(f"Writing the segmentation {path.name}", work, done)

    def export_report(self) -> Job | None:
        """Write the plan report (PDF or HTML) through the window."""
        if self.session.plan is None:
            return None
        folder = self.output_folder()
        if folder is None:
            return None
        path = folder / f"{self.base_name()}_report{self.reportFormatCombo.currentData()}"
        who = "with patient identifiers" if self.include_patient else "anonymised"

        def done(written: Path) -> None:
            entry = WrittenFile("Report", written, who)
            self._add([entry], f"Report written: {written.name}", "ok", folder)

        job = self.window.write_report(path, include_patient=self.include_patient, on_done=done)
        self._status(f"{job.name}…", None)
        self.last_job = job
        return job

    def save_screenshot(self) -> Path | None:
        """Save the whole window as a PNG (time-stamped) into the output folder."""
        if self.session.plan is None:
            return None
        folder = self.output_folder()
        if folder is None:
            return None
        path = folder / f"{self.base_name()}_{time.strftime('%Y%m%d-%H%M%S')}.png"
        try:
            self.window.save_screenshot(path)
        except Exception as exc:
            self.window.report_error(
                "The screenshot could not be saved", exc, traceback.format_exc()
            )
            return None
        size = f"{self.window.width()} x {self.window.height()} px"
        entry = WrittenFile("Screenshot of the window", path, size)
        self._add([entry], f"Screenshot saved: {path.name}", "ok", folder)
        return path

    # ---------------------------------------------------------------- results

    def _run(self, name: str, work, done) -> Job:
        buttons = (self.exportMeshesButton, self.exportSegButton)
        for b in buttons:
            b.setEnabled(False)

        def enable(*_a) -> None:
            for b in buttons:
                b.setEnabled(self.session.plan is not None)

        self._status(f"{name}…", None)
        job = self.window.run_job(
            name,
            work,
            lambda result: (enable(), done(result)),
            on_error=lambda _e: enable(),
            on_cancel=enable,
        )
        self.last_job = job
        return job

    def _job_finished(self, name: str) -> None:
        # runs before the job's own result handler, which replaces this text on success
        if self.statusLabel.text() == f"{name}…":
            self._status(f"{name}: not completed", "fail")

    def _status(self, text: str, status: str | None, folder: Path | None = None) -> None:
        self.statusLabel.setText(text)
        self.statusLabel.setToolTip(str(folder) if folder is not None else "")
        set_style_role(self.statusLabel, f"status-{status}" if status else "")
        where = f" ({folder})" if folder is not None else ""
        self.window.statusBar().showMessage(text + where, 8000)

    def _add(
        self, entries: list[WrittenFile], summary: str, status: str | None, folder: Path
    ) -> None:
        self.written.extend(entries)
        table = self.resultTable
        for e in entries:
            row = table.rowCount()
            table.insertRow(row)
            name = QTableWidgetItem(f"{e.path.name} ({e.tag})" if e.tag else e.path.name)
            name.setToolTip(str(e.path))
            check = QTableWidgetItem(e.check)
            check.setToolTip(e.details or e.check)
            if e.status:
                rgb = STATUS_COLOURS[e.status]
                check.setForeground(QBrush(QColor(*(int(255 * c) for c in rgb))))
            table.setItem(row, 0, name)
            table.setItem(row, 1, check)
        table.resizeColumnToContents(0)
        table.setCurrentCell(table.rowCount() - 1, 0)
        table.scrollToBottom()
        self._status(summary, status, folder)
        self.scrollArea.ensureWidgetVisible(self.detailLabel)

    def _show_details(self, row: int) -> None:
        if not 0 <= row < len(self.written):
            self.detailLabel.setText("")
            return
        e = self.written[row]
        lines = [e.what, str(e.path)]
        if e.details or e.check:
            lines.append(e.details or e.check)
        self.detailLabel.setText("\n".join(lines))
