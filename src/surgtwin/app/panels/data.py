"""Data panel: open a DICOM folder, zip or DICOMDIR (or drop one on the window), browse its
series with their findings and a thumbnail, load one on a worker; recent files."""

from __future__ import annotations

import html
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QEvent, QMimeData, QObject, Qt
from PyQt6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap
from PyQt6.QtWidgets import (
    QFileDialog,
    QHeaderView,
    QListWidgetItem,
    QMessageBox,
    QTreeWidgetItem,
    QWidget,
)

from surgtwin.app.resources import load_ui
from surgtwin.errors import DicomError, LoadCancelled
from surgtwin.imaging import findings as fc
from surgtwin.imaging.findings import Severity
from surgtwin.imaging.preview import series_preview
from surgtwin.imaging.series import Series, SeriesIndex, scan

__all__ = ["DataPanel", "ScanResult", "scan_with_previews"]

PLAN_SUFFIX = ".surgplan"
# Errors that "Load with resampling" can overcome (see surgtwin.imaging.load).
RESAMPLE_FIXES = frozenset({fc.MISSING_SLICES, fc.UNEVEN_SPACING})
SEVERITY_COLOURS = {
    Severity.INFO: "#8fb8d6",
    Severity.WARNING: "#ffb340",
    Severity.ERROR: "#ff5a4f",
}
SEVERITY_BACKGROUNDS = {Severity.WARNING: "#47371a", Severity.ERROR: "#4a2220"}
SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}
MAX_LEFT_OUT_ROWS = 500  # rows per section of the "left out" list; the rest are counted
ICON_PX = 30
THUMB_PX = 112

# Columns of the series browser.
COL_SERIES, COL_FINDINGS, COL_MODALITY, COL_SIZE, COL_SPACING, COL_FILES = range(6)
UID_ROLE = Qt.ItemDataRole.UserRole
SEVERITY_ROLE = Qt.ItemDataRole.UserRole + 1


# ---------------------------------------------------------------------------- worker side


@dataclass
class ScanResult:
    """What the scan job hands to the GUI: the index and a thumbnail per series UID."""

    path: Path
    index: SeriesIndex
    previews: dict[str, np.ndarray | None] = field(default_factory=dict)


def scan_with_previews(
    path: str | os.PathLike,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ScanResult:
    """Scan ``path`` (headers only), then decode one middle image per series for its preview.

    Runs on a worker; a preview that cannot be made is ``None``, never an error.
    """
    path = Path(path)
    index = scan(path, progress=progress, cancel=cancel)
    result = ScanResult(path, index)
    n = len(index.series)
    for i, series in enumerate(index.series, start=1):
        if cancel is not None and cancel():
            raise LoadCancelled("scan cancelled")
        result.previews[series.uid] = series_preview(series, THUMB_PX)
        if progress is not None:
            progress(i, n)
    return result


def nothing_to_show(result: ScanResult) -> DicomError | None:
    """The error to show when a scan found no image series at all (else ``None``)."""
    index, path = result.index, result.path
    if index.series:
        return None
    if index.non_images:
        kinds = sorted({o.kind for o in index.non_images})
        return DicomError(
            f"no image series found, only {len(index.non_images)} other DICOM object(s) "
            f"({', '.join(kinds)}), which SurgTwin does not open",
            str(path),
        )
    if len(index.skipped) == 1 and Path(index.skipped[0].path) == path:
        return DicomError(f"this file cannot be opened: {index.skipped[0].reason}", str(path))
    if index.skipped:
        first = index.skipped[0]
        return DicomError(
            f"no DICOM images found; {len(index.skipped)} file(s) left out (e.g. {first.path}: "
            f"{first.reason})",
            str(path),
        )
    return DicomError("the folder holds no files", str(path))


def resample_fixable(series: Series) -> bool:
    """True when the series is refused only for missing slices or uneven spacing."""
    errors = series.errors()
    return (
        bool(errors) and series.geometry is not None and {f.code for f in errors} <= RESAMPLE_FIXES
    )


def series_size(series: Series) -> tuple[int, int, int]:
    """Columns x rows x slices of the volume the series loads as (voxels)."""
    grid = series.grid
    if grid is not None:
        return tuple(int(v) for v in grid.size)
    return (series.first.columns, series.first.rows, len(series.slices))


def worst_severity(series: Series) -> Severity | None:
    if not series.findings:
        return None
    return max((f.severity for f in series.findings), key=SEVERITY_RANK.__getitem__)


def _one_line(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------- Qt helpers


def grey_pixmap(arr: np.ndarray | None) -> QPixmap | None:
    """A QPixmap of a uint8 (rows, columns) thumbnail."""
    if arr is None or arr.ndim != 2 or arr.size == 0:
        return None
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w = arr.shape
    image = QImage(arr.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QPixmap.fromImage(image)


def _placeholder_icon() -> QIcon:
    pix = QPixmap(ICON_PX, ICON_PX)
    pix.fill(QColor("#2b3035"))
    return QIcon(pix)


class DataPanel(QWidget):
    """The Data tab: source buttons, series browser, load buttons and recent files.

    Dropping a folder or file anywhere on the main window scans it here; a dropped
    ``.surgplan`` opens the plan.
    """

    def __init__(self, window):
        super().__init__(window)
        load_ui("data_panel.ui", self)
        self.window = window
        self.session = window.session
        self.result: ScanResult | None = None
        self._scan_job = None
        self._load_job = None
        self._placeholder = _placeholder_icon()
        tree = self.seriesTree
        header = tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.skippedTree.header().setStretchLastSection(True)
        self.recentList.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.browserSplitter.setStretchFactor(0, 4)
        self.browserSplitter.setStretchFactor(1, 0)
        self.browserSplitter.setStretchFactor(2, 1)
        self.browserSplitter.setSizes([320, THUMB_PX + 4, 70])
        self.openFolderButton.clicked.connect(self.choose_folder)
        self.openFileButton.clicked.connect(self.choose_file)
        tree.currentItemChanged.connect(lambda *_: self._selection_changed())
        tree.itemActivated.connect(lambda *_: self.activate_selected())
        self.loadSegmentButton.clicked.connect(lambda: self.load_selected(segment=True))
        self.loadOnlyButton.clicked.connect(lambda: self.load_selected(segment=False))
        self.resampleButton.clicked.connect(lambda: self.load_selected(resample=True))
        self.recentList.itemClicked.connect(self._recent_clicked)
        window.recentChanged.connect(self.refresh_recent)
        window.jobFinished.connect(self._job_finished)
        window.setAcceptDrops(True)
        window.installEventFilter(self)
        self._show_skipped(None)
        self._selection_changed()
        self.refresh_recent()

    # ---------------------------------------------------------------- choosing a source

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Open a DICOM folder")
        if path:
            self.scan(path)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.window,
            "Open a DICOM zip, DICOMDIR or file",
            "",
            "DICOM sources (*.zip DICOMDIR *.dcm *.DCM *.ima *.IMA);;All files (*)",
        )
        if path:
            self.scan(path)

    def open_dropped(self, paths: list[Path]) -> None:
        """Open what was dropped on the window: a plan opens; anything else is scanned.
        Several files from one folder scan that folder; other mixes scan the first item."""
        if not paths:
            return
        path = paths[0]
        if len(paths) > 1:
            folders = {p.parent for p in paths}
            if len(folders) == 1 and all(p.is_file() for p in paths):
                path = folders.pop()
                note = f"{len(paths)} files dropped: scanning their folder {path}"
            else:
                note = f"{len(paths)} items dropped: scanning the first, {path}"
            self.window.statusBar().showMessage(note, 10000)
        if path.suffix.lower() == PLAN_SUFFIX and path.is_file():
            if self._may_replace_case():
                self.window.open_path(path)
            return
        self.scan(path)

    # ---------------------------------------------------------------- scanning

    def scan(self, path: str | os.PathLike):
        """Scan ``path`` on a worker (progress and Cancel in the status bar), then list its
        series here; returns the job."""
        path = Path(path)
        if self._scan_job is not None:
            self._scan_job.cancel()
        self.window.show_panel("data")
        self.sourceLabel.setText(f"Scanning {path} …")

        def work(progress, cancel):
            return scan_with_previews(path, progress, cancel)

        def done(result: ScanResult) -> None:
            if job is self._scan_job:
                self._scan_job = None
                self.show_scan(result)

        def ended(*_args) -> None:
            if job is self._scan_job:
                self._scan_job = None
                self.sourceLabel.setText(self._source_text())

        job = self.window.run_job(
            f"Scanning {path.name or path}", work, done, on_error=ended, on_cancel=ended
        )
        self._scan_job = job
        return job

    def _source_text(self) -> str:
        if self.result is None:
            return "Or drop a DICOM folder, zip, DICOMDIR or .surgplan on the window."
        index = self.result.index
        n_ok = len(index.loadable())
        left = len(index.skipped) + len(index.non_images)
        text = f"{self.result.path}: {len(index.series)} series, {n_ok} loadable"
        return text + (f", {left} left out" if left else "")

    def show_scan(self, result: ScanResult) -> None:
        """List a scan's series (the largest loadable one selected) and what was left out."""
        self.result = result
        self.sourceLabel.setText(self._source_text())
        self.sourceLabel.setToolTip(str(result.path))
        tree = self.seriesTree
        tree.blockSignals(True)
        tree.clear()
        for series in result.index.series:
            tree.addTopLevelItem(self._series_item(series, result.previews.get(series.uid)))
        tree.blockSignals(False)
        for col in range(tree.columnCount()):
            tree.resizeColumnToContents(col)
        # the dock is narrow: keep the findings in view, long descriptions elide
        tree.setColumnWidth(COL_SERIES, min(max(tree.columnWidth(COL_SERIES), 110), 160))
        tree.setColumnWidth(COL_FINDINGS, min(tree.columnWidth(COL_FINDINGS), 160))
        self._show_skipped(result)
        loadable = result.index.loadable()
        best = max(loadable, key=lambda s: math.prod(s.grid.size)) if loadable else None
        self.select_series(best.uid if best else None)
        if best is None and result.index.series:
            tree.setCurrentItem(tree.topLevelItem(0))
        self._selection_changed()
        error = nothing_to_show(result)
        if error is not None:
            self.window.report_error(f"Nothing to open in {result.path.name or result.path}", error)

    def _series_item(self, series: Series, preview: np.ndarray | None) -> QTreeWidgetItem:
        size = series_size(series)
        grid = series.grid
        spacing = "×".join(f"{v:.2f}" for v in grid.spacing) if grid is not None else "-"
        codes = ", ".join(dict.fromkeys(f.code for f in series.findings))
        texts = {
            COL_SERIES: _one_line(series.description) or "(no description)",
            COL_MODALITY: series.modality or "?",
            COL_SIZE: "×".join(str(v) for v in size),
            COL_FINDINGS: codes,
            COL_SPACING: spacing,
            COL_FILES: str(series.n_files),
        }
        item = QTreeWidgetItem([texts[col] for col in sorted(texts)])
        item.setData(COL_SERIES, UID_ROLE, series.uid)
        pixmap = grey_pixmap(preview)
        item.setIcon(COL_SERIES, QIcon(pixmap) if pixmap is not None else self._placeholder)
        item.setToolTip(
            COL_SERIES,
            f"{_one_line(series.description, 300)}\nSeries UID {series.uid}\n"
            f"First file {series.first.ref.name}",
        )
        worst = worst_severity(series)
        item.setData(COL_FINDINGS, SEVERITY_ROLE, str(worst) if worst else "")
        if series.findings:
            item.setToolTip(
                COL_FINDINGS,
                "\n".join(f"{f.severity.upper()} {f.code}: {f.message}" for f in series.findings),
            )
        if worst is not None:
            item.setForeground(COL_FINDINGS, QBrush(QColor(SEVERITY_COLOURS[worst])))
            if worst in SEVERITY_BACKGROUNDS:
                # the whole row says it: amber = loads with a caveat, red = refused as it is
                item.setForeground(COL_SERIES, QBrush(QColor(SEVERITY_COLOURS[worst])))
                item.setBackground(COL_FINDINGS, QBrush(QColor(SEVERITY_BACKGROUNDS[worst])))
        return item

    def _show_skipped(self, result: ScanResult | None) -> None:
        tree = self.skippedTree
        tree.clear()
        if result is None:
            return
        index = result.index
        root = str(result.path)

        def short(name: str) -> str:
            if "!" in name and name.startswith(root):  # a zip member
                return name.split("!", 1)[1]
            try:
                rel = os.path.relpath(name, root)
            except ValueError:
                return name
            if rel == ".":  # the scanned path is this very file
                return os.path.basename(name)
            return name if rel.startswith("..") else rel

        sections = [
            (
                f"Skipped files ({len(index.skipped)})",
                [(s.path, s.reason) for s in index.skipped],
            ),
            (
                f"DICOM objects that are not images ({len(index.non_images)})",
                [
                    (
                        o.ref.name,
                        f"{o.kind}{' (' + o.modality + ')' if o.modality else ''}"
                        f"{': ' + _one_line(o.description, 60) if o.description else ''}",
                    )
                    for o in index.non_images
                ],
            ),
        ]
        for title, rows in sections:
            if not rows:
                continue
            top = QTreeWidgetItem([title, ""])
            top.setFirstColumnSpanned(True)
            for name, reason in rows[:MAX_LEFT_OUT_ROWS]:
                child = QTreeWidgetItem([short(name), _one_line(reason, 200)])
                child.setToolTip(0, name)
                child.setToolTip(1, reason)
                top.addChild(child)
            if len(rows) > MAX_LEFT_OUT_ROWS:
                top.addChild(QTreeWidgetItem([f"… and {len(rows) - MAX_LEFT_OUT_ROWS} more", ""]))
            tree.addTopLevelItem(top)
            top.setFirstColumnSpanned(True)
            # folded away, unless they are all there is (then they are the explanation)
            top.setExpanded(not index.series)
        if not tree.topLevelItemCount():
            tree.addTopLevelItem(QTreeWidgetItem(["Nothing was left out", ""]))
        tree.resizeColumnToContents(0)
        tree.setColumnWidth(0, min(tree.columnWidth(0), 220))

    # ---------------------------------------------------------------- selection

    def series_item(self, uid: str) -> QTreeWidgetItem | None:
        tree = self.seriesTree
        for row in range(tree.topLevelItemCount()):
            item = tree.topLevelItem(row)
            if item.data(COL_SERIES, UID_ROLE) == uid:
                return item
        return None

    def select_series(self, uid: str | None) -> None:
        item = self.series_item(uid) if uid else None
        self.seriesTree.setCurrentItem(item)
        if item is not None:
            self.seriesTree.scrollToItem(item)

    def selected_series(self) -> Series | None:
        item = self.seriesTree.currentItem()
        if item is None or self.result is None:
            return None
        uid = item.data(COL_SERIES, UID_ROLE)
        return next((s for s in self.result.index.series if s.uid == uid), None)

    def _selection_changed(self) -> None:
        series = self.selected_series()
        self._show_details(series)
        self._update_buttons()

    def _update_buttons(self) -> None:
        series = self.selected_series()
        busy = self._load_job is not None
        ok = series is not None and series.loadable and not busy
        self.loadSegmentButton.setEnabled(ok)
        self.loadOnlyButton.setEnabled(ok)
        fixable = series is not None and resample_fixable(series)
        self.resampleButton.setVisible(fixable)
        self.resampleButton.setEnabled(fixable and not busy)

    def _show_details(self, series: Series | None) -> None:
        if series is None:
            self.thumbLabel.setPixmap(QPixmap())
            self.thumbLabel.setText("")
            if self.result is None:
                text = "Open a folder, zip or DICOMDIR to list its series."
            elif not self.result.index.series:
                text = "No image series found."
            else:
                text = "Select a series."
            self.detailsLabel.setText(text)
            return
        pixmap = grey_pixmap(self.result.previews.get(series.uid) if self.result else None)
        if pixmap is None:
            self.thumbLabel.setPixmap(QPixmap())
            self.thumbLabel.setText("no preview")
        else:
            self.thumbLabel.setText("")
            self.thumbLabel.setPixmap(
                pixmap.scaled(
                    THUMB_PX,
                    THUMB_PX,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
        first = series.first
        size = "×".join(str(v) for v in series_size(series))
        grid = series.grid
        spacing = f", {'×'.join(f'{v:.2f}' for v in grid.spacing)} mm" if grid else ""
        facts = [first.modality or "?", f"{size} voxels{spacing}", f"{series.n_files} file(s)"]
        if first.body_part:
            facts.append(first.body_part)
        if first.manufacturer:
            facts.append(first.manufacturer)
        parts = [
            f"<b>{html.escape(_one_line(series.description) or '(no description)')}</b>",
            html.escape(" · ".join(facts)),
        ]
        for f in series.findings:
            colour = SEVERITY_COLOURS[f.severity]
            parts.append(
                f'<span style="color:{colour}"><b>{html.escape(f.code)}</b></span> '
                f"{html.escape(f.message)}"
            )
        if series.loadable:
            pass  # its findings say all there is to say
        elif resample_fixable(series):
            parts.append("<i>Refused as it is: “Load with resampling” interpolates it.</i>")
        else:
            parts.append("<i>This series cannot be loaded.</i>")
        self.detailsLabel.setText("<br>".join(parts))

    # ---------------------------------------------------------------- loading

    def activate_selected(self):
        """Double-click / Enter: load and segment a loadable series, else say why not."""
        series = self.selected_series()
        if series is None:
            return None
        if series.loadable:
            return self.load_selected(segment=True)
        hint = " (use Load with resampling)" if resample_fixable(series) else ""
        first = series.errors()[0].message if series.errors() else "no usable geometry"
        self.window.statusBar().showMessage(f"This series cannot be loaded: {first}{hint}", 10000)
        return None

    def load_selected(self, segment: bool = True, resample: bool = False):
        """Load the selected series on a worker (progress and Cancel in the status bar);
        ``resample`` loads a series with missing slices or uneven spacing onto a uniform grid,
        without automatic segmentation. Returns the job, or None when nothing was started."""
        series = self.selected_series()
        if series is None or self.result is None or self._load_job is not None:
            return None
        if resample and not (series.loadable or resample_fixable(series)):
            return None
        if not resample and not series.loadable:
            return self.activate_selected()
        if not self._may_replace_case():
            return None
        self._load_job = self.window.open_path(
            self.result.path,
            series_uid=series.uid,
            segment=segment and not resample,
            resample=resample,
        )
        self._update_buttons()
        return self._load_job

    def _job_finished(self, _name: str) -> None:
        if self._load_job is not None and self._load_job not in self.window.jobs:
            self._load_job = None
            self._update_buttons()

    def _may_replace_case(self) -> bool:
        """Before replacing the shown case: offer to save unsaved changes (False = cancel)."""
        stack = self.session.stack
        if not self.window.confirm_close or stack is None or not stack.is_dirty:
            return True
        answer = QMessageBox.question(
            self.window,
            "Unsaved plan",
            "The plan has unsaved changes. Save them before opening another case?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            return self.window.save()
        return True

    # ---------------------------------------------------------------- recent files

    def refresh_recent(self) -> None:
        lst = self.recentList
        lst.clear()
        for entry in self.window.recent_files():
            p = Path(entry)
            kind = "plan" if p.suffix.lower() == PLAN_SUFFIX else "DICOM"
            item = QListWidgetItem(f"{p.name or entry}  ({kind})  {p.parent}")
            item.setData(Qt.ItemDataRole.UserRole, entry)
            item.setToolTip(entry)
            if not p.exists():
                item.setForeground(QBrush(QColor("#6b737b")))
                item.setToolTip(f"{entry} (not found)")
            lst.addItem(item)
        self.recentBox.setVisible(lst.count() > 0)

    def _recent_clicked(self, item: QListWidgetItem) -> None:
        self.open_recent(item.data(Qt.ItemDataRole.UserRole))

    def open_recent(self, entry: str | os.PathLike):
        """A recent plan reopens; a recent DICOM source is scanned again to choose a series."""
        path = Path(entry)
        if path.suffix.lower() == PLAN_SUFFIX:
            if self._may_replace_case():
                return self.window.open_path(path)
            return None
        return self.scan(path)

    # ---------------------------------------------------------------- drag and drop

    @staticmethod
    def dropped_paths(mime: QMimeData | None) -> list[Path]:
        if mime is None or not mime.hasUrls():
            return []
        return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.window:
            kind = event.type()
            if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
                if self.dropped_paths(event.mimeData()):
                    event.acceptProposedAction()
                    return True
            elif kind == QEvent.Type.Drop:
                paths = self.dropped_paths(event.mimeData())
                if paths:
                    event.acceptProposedAction()
                    self.open_dropped(paths)
                    return True
        return super().eventFilter(obj, event)
