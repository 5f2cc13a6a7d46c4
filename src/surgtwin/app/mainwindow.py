"""The main window: 3-D view and three slice views, workflow panels, history, menus."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QSettings, Qt, QThreadPool, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QImage, QPainter
from PyQt6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QWidget,
)

from surgtwin import __version__
from surgtwin.app.casework import OpenedCase, open_dicom_case, open_plan_case
from surgtwin.app.dialogs import show_error
from surgtwin.app.live_controller import LiveClearance
from surgtwin.app.resources import load_ui, stylesheet
from surgtwin.app.session import Session
from surgtwin.app.slice_view import SliceView
from surgtwin.app.training_mode import TrainingMode
from surgtwin.app.view3d import View3D
from surgtwin.app.workers import Job, start_job

__all__ = ["MainWindow"]

log = logging.getLogger(__name__)

MAX_RECENT = 8


class MainWindow(QMainWindow):
    """SurgTwin's workstation window.

    Signals
    -------
    caseOpened : a case (DICOM or plan) finished opening and is shown
    jobFinished(str) : a background job ended (its name), whatever the outcome
    recentChanged : the recent-files list changed
    """

    caseOpened = pyqtSignal()
    jobFinished = pyqtSignal(str)
    recentChanged = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        load_ui("mainwindow.ui", self)
        self.setStyleSheet(stylesheet())
        self.session = Session(self)
        self.live = LiveClearance(self.session, self)
        self.view3d = View3D(self.session, self.live, self)
        self.view3dLayout.addWidget(self.view3d)
        self.slice_views: dict[str, SliceView] = {}
        for orientation, layout in (
            ("axial", self.axialLayout),
            ("coronal", self.coronalLayout),
            ("sagittal", self.sagittalLayout),
        ):
            view = SliceView(self.session, orientation, self)
            layout.addWidget(view)
            self.slice_views[orientation] = view
        self.jobs: list[Job] = []
        self.confirm_close = True
        self.last_error = None
        self.tool = None
        self.panels: dict[str, QWidget] = {}
        self._build_status_bar()
        self._connect_actions()
        self.session.historyChanged.connect(self._refresh_history)
        self.session.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.session.caseChanged.connect(self._update_title)
        self.view3d.picked.connect(self._on_pick3d)
        self._add_panels()
        self.training = TrainingMode(self)
        self._refresh_history()
        self._update_title()
        self._refresh_recent()

    # ---------------------------------------------------------------- layout

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.cursorLabel = QLabel("", self)
        self.cursorLabel.setObjectName("cursorLabel")
        bar.addPermanentWidget(self.cursorLabel)
        box = QWidget(self)
        lay = QHBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        self.jobLabel = QLabel("", box)
        self.jobProgress = QProgressBar(box)
        self.jobProgress.setObjectName("jobProgress")
        self.jobProgress.setMaximumWidth(180)
        self.jobCancel = QPushButton("Cancel", box)
        self.jobCancel.setObjectName("jobCancel")
        self.jobCancel.clicked.connect(self.cancel_jobs)
        for w in (self.jobLabel, self.jobProgress, self.jobCancel):
            lay.addWidget(w)
        box.setVisible(False)
        self.jobBox = box
        bar.addPermanentWidget(box)
        self.session.cursorChanged.connect(self._show_cursor)

    def _show_cursor(self, p) -> None:
        text = f"L {p[0]:+.1f}  P {p[1]:+.1f}  S {p[2]:+.1f} mm"
        vol = self.session.volume
        if vol is not None:
            with contextlib.suppress(Exception):
                text += f"   {vol.value_at(p):.0f} {vol.info.units or ''}".rstrip()
        self.cursorLabel.setText(text)

    def _add_panels(self) -> None:
        from surgtwin.app.panels import PANELS

        for key, factory in PANELS:
            try:
                panel = factory(self)
            except Exception as exc:  # a broken panel must not take the window down
                log.exception("panel %s failed", key)
                self.statusBar().showMessage(f"The {key} panel could not be created: {exc}")
                continue
            self.panels[key] = panel
            self.panelTabs.addTab(panel, panel.windowTitle() or key.capitalize())

    def show_panel(self, key: str) -> QWidget:
        panel = self.panels[key]
        self.panelTabs.setCurrentWidget(panel)
        return panel

    def _connect_actions(self) -> None:
        self.actionOpenDicom.triggered.connect(self.choose_dicom)
        self.actionOpenPlan.triggered.connect(self.choose_plan)
        self.actionSave.triggered.connect(self.save)
        self.actionSaveAs.triggered.connect(self.save_as)
        self.actionReport.triggered.connect(self.choose_report)
        self.actionScreenshot.triggered.connect(self.choose_screenshot)
        self.actionQuit.triggered.connect(self.close)
        self.actionUndo.triggered.connect(self.undo)
        self.actionRedo.triggered.connect(self.redo)
        self.actionResetViews.triggered.connect(self.reset_views)
        for action, preset in (
            (self.actionPresetBone, "bone"),
            (self.actionPresetSoft, "soft tissue"),
            (self.actionPresetLung, "lung"),
            (self.actionPresetBrain, "brain"),
        ):
            action.triggered.connect(lambda _c=False, p=preset: self.set_window_preset(p))
        self.actionAbout.triggered.connect(self._about)
        self.historyList.itemClicked.connect(self._history_clicked)

    # ---------------------------------------------------------------- jobs

    def run_job(
        self,
        name: str,
        fn: Callable[[Callable, Callable], Any],
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> Job:
        """Run ``fn(progress, cancel)`` on a worker with progress and Cancel in the status bar;
        ``on_done(result)`` runs on the GUI thread. Failures open the error dialog."""
        job = Job(name, fn)
        self.jobs.append(job)

        def finish() -> None:
            if job in self.jobs:
                self.jobs.remove(job)
            self.jobBox.setVisible(bool(self.jobs))
            self.jobFinished.emit(name)

        def done(result) -> None:
            finish()
            if on_done is not None:
                try:
                    on_done(result)
                except Exception as exc:
                    import traceback

                    self.report_error(f"{name} failed", exc, traceback.format_exc())

        def failed(exc, details) -> None:
            finish()
            if on_error is not None:
                on_error(exc)
            self.report_error(f"{name} failed", exc, details)

        def cancelled() -> None:
            finish()
            self.statusBar().showMessage(f"{name}: cancelled", 5000)
            if on_cancel is not None:
                on_cancel()

        job.signals.progress.connect(self._job_progress)
        job.signals.finished.connect(done)
        job.signals.failed.connect(failed)
        job.signals.cancelled.connect(cancelled)
        self.jobLabel.setText(name + "…")
        # determinate until the job reports: a busy bar animates, and with the OpenGL 3-D view
        # in the window every animation frame recomposes the whole window (tens of ms per
        # frame on software OpenGL), which starves the event loop while the job runs
        self.jobProgress.setRange(0, 1)
        self.jobProgress.setValue(0)
        self.jobBox.setVisible(True)
        start_job(job)
        return job

    def _job_progress(self, done: int, total: int) -> None:
        self.jobProgress.setRange(0, max(total, 1))
        self.jobProgress.setValue(done)

    def cancel_jobs(self) -> None:
        for job in list(self.jobs):
            job.cancel()

    def report_error(self, title: str, exc: BaseException, details: str = "") -> None:
        log.warning("%s: %s", title, exc)
        self.last_error = show_error(self, title, exc, details)

    # ---------------------------------------------------------------- opening

    def choose_dicom(self) -> None:
        data = self.panels.get("data")
        if data is not None:  # scan first; the Data panel's browser chooses the series
            self.show_panel("data")
            data.choose_folder()
            return
        path = QFileDialog.getExistingDirectory(self, "Open a DICOM folder")
        if path:
            self.open_path(path)

    def choose_plan(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a plan", "", "SurgTwin plans (*.surgplan);;All files (*)"
        )
        if path:
            self.open_path(path)

    def open_path(
        self,
        path: str | Path,
        series_uid: str | None = None,
        segment: bool = True,
        resample: bool = False,
    ) -> Job:
        """Open a plan file, or a DICOM folder/zip/DICOMDIR (segmented as ``make run`` shows);
        ``resample`` loads a series with missing slices or uneven spacing on a uniform grid."""
        path = Path(path)
        if path.suffix.lower() == ".surgplan":

            def work(progress, cancel):
                return open_plan_case(path, progress=progress, cancel=cancel)

            name = f"Opening {path.name}"
        else:

            def work(progress, cancel):
                return open_dicom_case(
                    path,
                    series_uid=series_uid,
                    segment=segment,
                    resample=resample,
                    progress=progress,
                    cancel=cancel,
                )

            name = "Loading and segmenting" if segment else "Loading series"
        return self.run_job(name, work, lambda case: self.show_case(case, path))

    def show_case(self, case: OpenedCase, source: Path | None = None) -> None:
        self.session.set_case(case.volume, case.plan, case.path)
        for w in case.warnings:
            self.statusBar().showMessage(w, 15000)
        if source is not None:
            self._remember_recent(source)
        # straight to work: implants placed -> their panel; else segmentation
        key = "implants" if case.plan.implants else "segment"
        if key in self.panels:
            self.show_panel(key)
        self.view3d.request_render()
        self.caseOpened.emit()

    # ---------------------------------------------------------------- recent files

    def _settings(self) -> QSettings:
        from surgtwin.paths import data_dir

        return QSettings(str(data_dir() / "settings.ini"), QSettings.Format.IniFormat)

    def recent_files(self) -> list[str]:
        value = self._settings().value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _remember_recent(self, path: Path) -> None:
        p = str(Path(path).resolve())
        items = [p] + [r for r in self.recent_files() if r != p]
        self._settings().setValue("recent", items[:MAX_RECENT])
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        menu = self.menuRecent
        menu.clear()
        items = self.recent_files()
        for item in items:
            act = QAction(item, self)
            act.triggered.connect(lambda _c=False, p=item: self.open_path(p))
            menu.addAction(act)
        menu.setEnabled(bool(items))
        self.recentChanged.emit()

    # ---------------------------------------------------------------- saving

    def save(self) -> bool:
        if self.session.plan is None:
            return False
        if self.session.plan_path is None:
            return self.save_as()
        return self.save_to(self.session.plan_path)

    def save_as(self) -> bool:
        if self.session.plan is None:
            return False
        path, _ = QFileDialog.getSaveFileName(
            self, "Save plan", "plan.surgplan", "SurgTwin plans (*.surgplan)"
        )
        if not path:
            return False
        if not path.lower().endswith(".surgplan"):
            path += ".surgplan"
        return self.save_to(Path(path))

    def save_to(self, path: Path) -> bool:
        from surgtwin.planning.planfile import save_plan

        session = self.session
        try:
            if session.autosaver is not None:
                session.autosaver.discard()
            session.plan.name = Path(path).stem
            save_plan(session.plan, path)
        except Exception as exc:
            import traceback

            self.report_error("The plan could not be saved", exc, traceback.format_exc())
            return False
        session.plan_path = Path(path)
        session.stack.set_clean()
        self._remember_recent(Path(path))
        self._update_title()
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def choose_report(self) -> None:
        if self.session.plan is None:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Save report", "report.pdf", "PDF (*.pdf);;HTML (*.html)"
        )
        if path:
            self.write_report(path)

    def write_report(
        self,
        path: str | Path,
        include_patient: bool = False,
        on_done: Callable[[Path], None] | None = None,
    ) -> Job:
        """Write the plan's report (.pdf or .html) on a worker; anonymised unless
        ``include_patient``. ``on_done(path)`` runs on the GUI thread once it is written."""
        from surgtwin.planning.report import write_report

        plan = self.session.plan

        def work(progress, cancel):
            return write_report(plan, path, include_patient=include_patient)

        def done(_result) -> None:
            self.statusBar().showMessage(f"Report written: {path}", 8000)
            if on_done is not None:
                on_done(Path(path))

        return self.run_job(f"Writing the report {Path(path).name}", work, done)

    # ---------------------------------------------------------------- screenshots

    def grab_image(self) -> QImage:
        """The whole window as shown, the OpenGL 3-D view included."""
        self.view3d.render_now()
        image = self.grab().toImage()
        shot = self.view3d.plotter.screenshot(return_img=True)
        if shot is not None:
            import numpy as np

            arr = np.ascontiguousarray(shot[:, :, :3])
            h, w = arr.shape[:2]
            gl = QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
            top_left = self.view3d.plotter.interactor.mapTo(self, self.view3d.rect().topLeft())
            ratio = image.devicePixelRatio() or 1.0
            painter = QPainter(image)
            target = self.view3d.plotter.interactor.rect()
            target.moveTo(top_left)
            painter.drawImage(
                target, gl.scaled(int(target.width() * ratio), int(target.height() * ratio))
            )
            painter.end()
        return image

    def save_screenshot(self, path: str | Path) -> Path:
        """Save the window as an image (format from the suffix), atomically; OSError names the
        file when it cannot be written."""
        from surgtwin.fileio import atomic_write

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        image = self.grab_image()

        def error(problem: str, where) -> OSError:
            return OSError(f"{where}: {problem}")

        with atomic_write([path], error=error, suffixes=[path.suffix]) as (tmp,):
            if not image.save(str(tmp)):
                raise OSError(f"{path}: the screenshot could not be written")
        return path

    def choose_screenshot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save screenshot", "surgtwin.png", "PNG (*.png)"
        )
        if path:
            self.save_screenshot(path)

    # ---------------------------------------------------------------- history

    def undo(self) -> None:
        name = self.session.undo()
        if name:
            self.statusBar().showMessage(f"Undone: {name}", 4000)

    def redo(self) -> None:
        name = self.session.redo()
        if name:
            self.statusBar().showMessage(f"Redone: {name}", 4000)

    def _refresh_history(self) -> None:
        stack = self.session.stack
        lst = self.historyList
        lst.clear()
        lst.addItem(QListWidgetItem("Opened case"))
        if stack is None:
            self.actionUndo.setEnabled(False)
            self.actionRedo.setEnabled(False)
            self._update_title()
            return
        done = stack.undo_names
        undone = stack.redo_names
        for name in done:
            lst.addItem(QListWidgetItem(name))
        for name in undone:
            item = QListWidgetItem(name)
            item.setForeground(Qt.GlobalColor.gray)
            lst.addItem(item)
        lst.setCurrentRow(len(done))
        self.actionUndo.setEnabled(stack.can_undo)
        self.actionRedo.setEnabled(stack.can_redo)
        self.actionUndo.setText(f"&Undo {done[-1]}" if done else "&Undo")
        self.actionRedo.setText(f"&Redo {undone[0]}" if undone else "&Redo")
        self._update_title()

    def _history_clicked(self, item: QListWidgetItem) -> None:
        stack = self.session.stack
        if stack is None:
            return
        row = self.historyList.row(item)
        while len(stack.undo_names) > row and stack.can_undo:
            stack.undo()
        while len(stack.undo_names) < row and stack.can_redo:
            stack.redo()

    def _update_title(self) -> None:
        plan = self.session.plan
        if plan is None:
            self.setWindowTitle(f"SurgTwin {__version__}")
            return
        dirty = self.session.stack is not None and self.session.stack.is_dirty
        self.setWindowTitle(f"{plan.name}{' *' if dirty else ''} - SurgTwin {__version__}")

    # ---------------------------------------------------------------- views

    def set_window_preset(self, name: str) -> None:
        for view in self.slice_views.values():
            view.set_preset(name)

    def reset_views(self) -> None:
        for view in self.slice_views.values():
            view.reset_view()
        self.view3d.reset_camera()
        self.view3d.request_render()

    def set_tool(self, tool) -> None:
        """Give the mouse on the slice views (and clicks on the 3-D view) to ``tool``."""
        self.tool = tool
        for view in self.slice_views.values():
            view.tool = tool
            view.setCursor(
                Qt.CursorShape.CrossCursor if tool is not None else Qt.CursorShape.ArrowCursor
            )

    def _on_pick3d(self, point) -> None:
        if self.tool is not None and hasattr(self.tool, "pick3d"):
            self.tool.pick3d(point)
        else:
            self.session.set_cursor(point)

    def refresh_views(self) -> None:
        for view in self.slice_views.values():
            view.update()
        self.view3d.request_render()

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About SurgTwin",
            f"SurgTwin {__version__}\nSurgical planning on the patient's digital twin.\n"
            "GPL-3.0-or-later. Not a certified medical device.",
        )

    # ---------------------------------------------------------------- closing

    def closeEvent(self, event: QCloseEvent) -> None:
        stack = self.session.stack
        if self.confirm_close and stack is not None and stack.is_dirty:
            answer = QMessageBox.question(
                self,
                "Unsaved plan",
                "The plan has unsaved changes. Save them before closing?",
                QMessageBox.StandardButton.Save
                | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel,
            )
            if answer == QMessageBox.StandardButton.Cancel:
                event.ignore()
                return
            if answer == QMessageBox.StandardButton.Save and not self.save():
                event.ignore()
                return
            if answer == QMessageBox.StandardButton.Discard and self.session.autosaver:
                self.session.autosaver.discard()
        elif stack is not None and stack.is_clean and self.session.autosaver is not None:
            self.session.autosaver.discard()
        self.cancel_jobs()
        self.session.cancel_fields()
        # the panels' own pools end their (short) jobs before the panels go
        for pool in self.findChildren(QThreadPool):
            pool.waitForDone(10_000)
        self.view3d.close_plotter()
        super().closeEvent(event)
