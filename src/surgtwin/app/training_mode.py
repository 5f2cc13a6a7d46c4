"""Training mode in the window: a trainee rehearses a scenario against a hidden expert plan.

Training > Start training… asks for the trainee's name and a scenario; the scenario's case opens
(on a worker) with nothing planned, and the Training dock shows the task, the allowed implants
and a timer. The Implants panel offers only the implants the scenario allows. The expert's
plan is never loaded into the window before the attempt is submitted: the scenario keeps it
locked and nothing here asks for it until the score is in.

Submit saves the trainee's plan as an attempt file (``<data folder>/training/attempts``),
scores it and records it in the progress store (one worker job), then shows the results and
overlays the expert's plan in violet. Retry starts the same scenario again from a clean case;
Abandon stops without scoring.

The timer counts down a scenario's time limit. At 0 it turns red, warns once and goes on
counting the time over: the attempt is *not* submitted for the trainee (a half-placed screw
would be scored as missing), and the scenario's over-time penalty applies when they submit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PyQt6.QtCore import QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QDockWidget, QMessageBox, QWidget

from surgtwin.app.training_overlay import ExpertOverlay
from surgtwin.app.training_panel import TrainingPanel
from surgtwin.app.trainingwork import (
    Submission,
    TrainingCase,
    author_and_save,
    clock_text,
    open_training_case,
    submit_attempt,
)
from surgtwin.app.workers import Job
from surgtwin.training.attempt import AttemptTracker
from surgtwin.training.progress import ProgressStore
from surgtwin.training.scenario import Scenario, ScenarioInfo, copy_plan

__all__ = ["TICK_MS", "TrainingMode"]

log = logging.getLogger(__name__)

#: How often the timer's display is refreshed (ms); the time itself comes from the tracker.
TICK_MS = 250
TRAINEE_SETTING = "training/trainee"


class TrainingMode(QObject):
    """The training mode of a main window (its menu actions, dock, timer and overlay).

    Signals
    -------
    started : an attempt began (its case is shown, the timer runs)
    scored(Submission) : the attempt was saved, scored and recorded; the results are shown
    ended : the training mode closed (abandoned, ended, or another case was opened)
    """

    started = pyqtSignal()
    scored = pyqtSignal(object)
    ended = pyqtSignal()

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.scenario: Scenario | None = None
        self.info: ScenarioInfo | None = None
        self.trainee = ""
        self.tracker: AttemptTracker | None = None
        self.plan = None
        self.submission: Submission | None = None
        self.dialog = None  # the last dialog opened (tests read it)
        #: Seconds, monotonic: what the attempt's time is measured with (tests replace it).
        self.time_source: Callable[[], float] = time.monotonic
        self._job: Job | None = None
        self._warned = False
        self._saved_catalogue = None

        self.panel = TrainingPanel(window)
        self.dock = QDockWidget("Training", window)
        self.dock.setObjectName("trainingDock")
        self.dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.dock.setWidget(self.panel)
        self.dock.setTitleBarWidget(QWidget(self.dock))  # the panel's header names it
        # a strip above the views (not above the workflow dock, which needs its height)
        window.setCorner(Qt.Corner.TopRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        window.addDockWidget(Qt.DockWidgetArea.TopDockWidgetArea, self.dock)
        self.dock.hide()
        self.overlay = ExpertOverlay(window)
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

        p = self.panel
        p.submitButton.clicked.connect(lambda: self.submit())
        p.abandonButton.clicked.connect(lambda: self.abandon())
        p.retryButton.clicked.connect(lambda: self.retry())
        p.historyButton.clicked.connect(lambda: self.show_history())
        p.endButton.clicked.connect(lambda: self.end())
        p.expertCheck.toggled.connect(self.overlay.set_visible)
        self.session.caseChanged.connect(self._on_case_changed)
        for name, slot in (
            ("actionTrainingStart", self.open_start_dialog),
            ("actionTrainingHistory", self.show_history),
            ("actionTrainingInstructor", self.show_instructor),
            ("actionSaveScenario", self.open_author_dialog),
        ):
            action = getattr(window, name, None)
            if action is not None:
                action.triggered.connect(lambda _c=False, s=slot: s())

    # ---------------------------------------------------------------- state

    @property
    def active(self) -> bool:
        """An attempt is under way or its results are shown."""
        return self.scenario is not None

    @property
    def submitted(self) -> bool:
        return self.submission is not None

    def store(self) -> ProgressStore:
        return ProgressStore()

    def last_trainee(self) -> str:
        return str(self.window._settings().value(TRAINEE_SETTING, "") or "")

    def _status(self, text: str, ms: int = 8000) -> None:
        self.window.statusBar().showMessage(text, ms)

    def _show_dock(self) -> None:
        """Show the dock at the height its current page needs."""
        self.dock.show()
        self.dock.raise_()
        height = self.panel.sizeHint().height()
        self.window.resizeDocks([self.dock], [height], Qt.Orientation.Vertical)

    # ---------------------------------------------------------------- starting

    def open_start_dialog(self):
        """Training > Start training…: the trainee's name and a scenario (non-blocking; Start
        opens the scenario, after asking to abandon an attempt under way). Returns the
        dialog."""
        from surgtwin.app.training_start import TrainingStartDialog
        from surgtwin.errors import SurgTwinError
        from surgtwin.training.bundled import list_scenarios

        try:
            trainees = self.store().trainees()
        except SurgTwinError as exc:
            self._status(f"Progress store unavailable: {exc}")
            trainees = []
        dialog = TrainingStartDialog(list_scenarios(), trainees, self.last_trainee(), self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def accepted() -> None:
            info = dialog.scenario()
            if info is None or not dialog.trainee():
                return
            if self.active and not self.submitted and not self._confirm_abandon():
                return
            self.start(info.location, dialog.trainee())

        dialog.accepted.connect(accepted)
        dialog.open()
        self.dialog = dialog
        return dialog

    def start(self, location: str, trainee: str) -> Job:
        """Open the scenario ``location`` (bundled key, file or folder) for ``trainee`` on a
        worker; the attempt begins once its case is shown (:attr:`started`)."""
        trainee = trainee.strip()
        if not trainee:
            raise ValueError("a training attempt needs the trainee's name")
        self.window._settings().setValue(TRAINEE_SETTING, trainee)
        if self.active:
            self.end(None, hide=False)
        self.panel.show_loading(trainee)
        self._show_dock()

        def work(progress, cancel):
            return open_training_case(location, progress=progress, cancel=cancel)

        def failed(_exc) -> None:
            self.dock.hide()

        return self.window.run_job(
            "Opening the training scenario",
            work,
            lambda tc: self._opened(tc, trainee),
            on_error=failed,
            on_cancel=self.dock.hide,
        )

    def _opened(self, tc: TrainingCase, trainee: str) -> None:
        self.scenario, self.info = tc.scenario, tc.scenario.info
        self.plan, self.trainee, self.submission = tc.case.plan, trainee, None
        self.window.show_case(tc.case)
        self.tracker = AttemptTracker(
            self.session.stack, self.info.key, trainee, clock=self.time_source
        )
        self._restrict_catalogue()
        self.panel.show_attempt(self.info, trainee)
        self._show_dock()
        self._warned = False
        self._tick()
        self.timer.start()
        key = "resect" if self.info.allowed_implants == () else "implants"
        if key in self.window.panels:
            self.window.show_panel(key)
        self._status(f"Training: {self.info.title}. The clock is running.")
        self.started.emit()

    def _restrict_catalogue(self) -> None:
        """The Implants panel offers only the implants the scenario allows."""
        from surgtwin.planning.implants import Catalogue

        panel = self.window.panels.get("implants")
        if panel is None or not hasattr(panel, "set_catalogue"):
            return
        if self._saved_catalogue is None:
            self._saved_catalogue = panel.catalogue
        allowed = [s for s in self._saved_catalogue if self.info.allows(s.key)]
        panel.set_catalogue(Catalogue(allowed))
        panel.addStlButton.setEnabled(False)  # a trainee plans with the scenario's implants

    def _restore_catalogue(self) -> None:
        panel = self.window.panels.get("implants")
        if panel is not None and self._saved_catalogue is not None:
            panel.set_catalogue(self._saved_catalogue)
            panel.addStlButton.setEnabled(True)
        self._saved_catalogue = None

    # ---------------------------------------------------------------- the clock

    def clock(self) -> str:
        """The timer's text as shown."""
        return self.panel.timerLabel.text()

    def _tick(self) -> None:
        if self.tracker is None or self.info is None:
            return
        text, over = clock_text(self.tracker.elapsed_s, self.info.time_limit_s)
        self.panel.set_clock(text, over)
        if over and not self._warned:
            self._warned = True
            penalty = self.info.weights.over_time_penalty
            self.panel.warn_time_up(penalty)
            self._status(f"Time is up: submit now; going over the limit costs {penalty:g} points")

    # ---------------------------------------------------------------- submitting

    def submit(self) -> Job | None:
        """Finish the attempt: save, score and record it on a worker; the results follow
        (:attr:`scored`). None when there is no attempt to submit."""
        if not self.active or self.submitted or self._job is not None:
            return None
        if self.session.plan is not self.plan:
            return None
        meta = self.tracker.finish()
        self.timer.stop()
        self._tick()
        self.panel.set_busy(True)
        snapshot = copy_plan(self.plan, records=True)
        scenario = self.scenario

        def work(progress, cancel):
            return submit_attempt(snapshot, scenario, meta, progress=progress, cancel=cancel)

        def stopped(_exc=None) -> None:
            self._job = None
            self.panel.set_busy(False)

        self._job = self.window.run_job(
            "Scoring the attempt",
            work,
            lambda sub: self._scored(sub, scenario),
            on_error=stopped,
            on_cancel=stopped,
        )
        return self._job

    def _scored(self, sub: Submission, scenario: Scenario) -> None:
        self._job = None
        if scenario is not self.scenario:
            return  # training ended meanwhile; the attempt is recorded all the same
        self.submission = sub
        scenario.unlock_results()
        expert = scenario.expert_plan()
        self.overlay.show(expert.implants.values(), expert.cuts.values())
        self.panel.show_results(sub.result, sub.attempt_file)
        self._show_dock()
        self.window.view3d.request_render()
        verdict = "passed" if sub.result.passed else "failed"
        self._status(f"Attempt scored: {sub.result.score:.0f}/100, {verdict}", 15000)
        self.scored.emit(sub)

    # ---------------------------------------------------------------- retry, abandon, end

    def retry(self) -> Job | None:
        """The same scenario again, from a clean case (the expert plan locked again)."""
        if self.info is None:
            return None
        return self.start(self.info.location, self.trainee)

    def _confirm_abandon(self) -> bool:
        stack = self.session.stack
        if stack is None or not stack.can_undo:
            return True
        answer = QMessageBox.question(
            self.window,
            "Abandon the attempt?",
            "Your attempt has not been submitted. Abandon it without a score?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def abandon(self, confirm: bool = True) -> bool:
        """Stop the attempt without scoring it (asks first when something was planned)."""
        if not self.active:
            return False
        if confirm and not self.submitted and not self._confirm_abandon():
            return False
        self.end("Training attempt abandoned: not scored")
        return True

    def end(self, message: str | None = "Training ended; the plan stays open", hide=True) -> None:
        """Leave the training mode: the timer stops, the expert overlay goes, the catalogue is
        whole again; the current plan stays open."""
        self.timer.stop()
        if self.tracker is not None:
            self.tracker.finish()
        self.overlay.clear()
        self._restore_catalogue()
        was_active = self.active
        self.scenario = self.info = self.tracker = self.plan = self.submission = None
        self._warned = False
        if hide:
            self.dock.hide()
        if message and was_active:
            self._status(message)
        if was_active:
            self.ended.emit()

    def _on_case_changed(self) -> None:
        if self.active and self.session.plan is not self.plan:
            self.end("Training ended: another case was opened")

    # ---------------------------------------------------------------- progress

    def show_history(self, trainee: str | None = None):
        """Training > Progress history…: the trainee's attempts (non-blocking)."""
        from surgtwin.app.training_history import TrainingHistoryDialog

        name = trainee or self.trainee or self.last_trainee() or None
        dialog = TrainingHistoryDialog(self.store(), name, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.dialog = dialog
        return dialog

    def show_instructor(self):
        """Training > Instructor view…: every trainee's latest results (non-blocking)."""
        from surgtwin.app.training_history import InstructorDialog

        dialog = InstructorDialog(self.store(), self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.dialog = dialog
        return dialog

    # ---------------------------------------------------------------- authoring

    def open_author_dialog(self):
        """File > Save as training scenario…: the task and file of a scenario made of the
        current plan (non-blocking; Save writes it on a worker)."""
        from surgtwin.app.training_author import AuthorScenarioDialog

        if self.session.plan is None:
            self._status("Open a plan first: its implants and cuts become the expert plan")
            return None
        dialog = AuthorScenarioDialog(self.session.plan, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def accepted() -> None:
            path = dialog.path()
            if path.exists():
                answer = QMessageBox.question(
                    self.window,
                    "Replace the scenario?",
                    f"{path} exists. Replace it?",
                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                )
                if answer != QMessageBox.StandardButton.Yes:
                    return
            self.author(
                dialog.task(),
                path,
                title=dialog.title(),
                time_limit_s=dialog.time_limit_s(),
                case_path=dialog.case_path(),
            )

        dialog.accepted.connect(accepted)
        dialog.open()
        self.dialog = dialog
        return dialog

    def author(
        self,
        task: str,
        path,
        *,
        title: str | None = None,
        time_limit_s: float | None = None,
        case_path=None,
    ) -> Job:
        """Write a scenario made of the current plan to ``path`` on a worker."""
        snapshot = copy_plan(self.session.plan, records=True)

        def work(progress, cancel):
            return author_and_save(
                snapshot,
                task,
                path,
                title=title,
                time_limit_s=time_limit_s,
                case_path=case_path,
                progress=progress,
                cancel=cancel,
            )

        def done(out) -> None:
            self._status(f"Training scenario saved: {out}", 15000)

        return self.window.run_job("Saving the training scenario", work, done)
