"""The training panel (its own dock): the task and the running timer while the trainee plans,
then the results: score, pass/fail, a row per implant and resection, and the feedback."""

from __future__ import annotations

import html
import math
from pathlib import Path

from PyQt6.QtWidgets import (
    QHeaderView,
    QListWidgetItem,
    QSizePolicy,
    QTableWidget,
    QWidget,
)

from surgtwin.app.resources import load_ui
from surgtwin.app.result_table import FAIL_COLOUR, PASS_COLOUR, fill_result_table
from surgtwin.app.trainingwork import allowed_text
from surgtwin.training.scenario import ScenarioInfo
from surgtwin.training.scoring import ScoreResult

__all__ = [
    "IMPLANT_COLUMNS",
    "RESECTION_COLUMNS",
    "TrainingPanel",
    "implant_rows",
    "resection_rows",
]

OVERTIME_STYLE = "font-family: monospace; font-size: 22pt; font-weight: bold; color: #ff5a4f;"
CLOCK_STYLE = "font-family: monospace; font-size: 22pt; font-weight: bold; color: #d8dde3;"

IMPLANT_COLUMNS = ("Implant", "Entry mm", "Tip mm", "Angle °", "Grade", "Min clear. mm", "Score")
#: Rows shown without scrolling (six screws: L3 to L5).
MAX_TABLE_ROWS = 6
RESECTION_COLUMNS = ("Resection", "Removed", "Margin mm", "Healthy cm³", "Expert cm³", "Score")


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def implant_rows(result: ScoreResult) -> list[tuple[tuple[str, ...], bool]]:
    """Rows of the implant table (see :data:`IMPLANT_COLUMNS`) and whether each passed."""
    rows = []
    for i in result.implants:
        name = i.name if i.status == "matched" else f"{i.name} ({i.status.replace('_', ' ')})"
        cells = (
            name,
            _num(i.entry_error_mm),
            _num(i.tip_error_mm),
            _num(i.angle_error_deg),
            i.grade or "-",
            _num(i.min_clearance_mm),
            f"{i.score:.0f}" if i.status in ("matched", "missing") else "-",
        )
        rows.append((cells, i.passed))
    return rows


def resection_rows(result: ScoreResult) -> list[tuple[tuple[str, ...], bool]]:
    """Rows of the resection table (see :data:`RESECTION_COLUMNS`) and whether each passed."""
    rows = []
    for r in result.resections:
        removed = "-" if r.target_removed is None else ("yes" if r.target_removed else "NO")
        if r.target is None and r.overlap is not None:
            removed = f"overlap {r.overlap:.2f}"
        healthy = r.healthy_bone_removed_mm3
        expert = r.expert_healthy_bone_removed_mm3
        cells = (
            r.name if r.status == "done" else f"{r.name} (missing)",
            removed,
            _num(r.margin_mm),
            _num(None if healthy is None else healthy / 1000.0, 2),
            _num(None if expert is None else expert / 1000.0, 2),
            f"{r.score:.0f}",
        )
        rows.append((cells, r.passed))
    return rows


def _fill(table: QTableWidget, columns: tuple[str, ...], rows) -> None:
    # the name and the score show whether the item passed
    last = len(columns) - 1
    fill_result_table(table, columns, rows, 0, lambda c, _text: c in (0, last))
    header = table.horizontalHeader()
    rows_header = table.verticalHeader()
    rows_header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows_header.setDefaultSectionSize(table.fontMetrics().height() + 8)
    shown = min(len(rows), MAX_TABLE_ROWS)
    height = header.sizeHint().height() + sum(table.rowHeight(r) for r in range(shown))
    height += 2 * table.frameWidth() + 2
    table.setFixedHeight(height)
    table.setVisible(bool(rows))


class TrainingPanel(QWidget):
    """What the trainee sees of the training mode (the buttons are wired by
    :class:`~surgtwin.app.training_mode.TrainingMode`)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        load_ui("training_panel.ui", self)
        self.setObjectName("trainingPanel")
        self.feedbackList.setSpacing(1)
        self._show_page(self.attemptPage)

    def _show_page(self, page: QWidget) -> None:
        """Show one page; the stack takes the height of that page only (the dock fits it)."""
        for other in (self.attemptPage, self.resultsPage):
            policy = QSizePolicy.Policy.Preferred if other is page else QSizePolicy.Policy.Ignored
            other.setSizePolicy(policy, policy)
        self.pages.setCurrentWidget(page)
        self.pages.adjustSize()
        self.adjustSize()

    # ---------------------------------------------------------------- attempt

    def show_attempt(self, info: ScenarioInfo, trainee: str) -> None:
        """The attempt page: the task, the allowed implants, the timer at its start."""
        self.titleLabel.setText(info.title)
        self.traineeLabel.setText(f"Trainee: {trainee}")
        self.taskText.setHtml(f"<p>{html.escape(info.task)}</p>")
        self.allowedLabel.setText(f"<b>Implants:</b> {html.escape(allowed_text(info))}")
        self.clockCaption.setText("Time left" if info.time_limit_s is not None else "Time")
        self.hintLabel.setText(
            "Plan with the workflow panels (Implants: Place, then click the entry and the "
            "target). The expert's plan is shown once you submit."
        )
        self.set_busy(False)
        self._show_page(self.attemptPage)

    def show_loading(self, trainee: str) -> None:
        """While the scenario's case opens."""
        self.titleLabel.setText("Opening the scenario…")
        self.traineeLabel.setText(f"Trainee: {trainee}")
        self.taskText.setHtml("")
        self.allowedLabel.setText("")
        self.hintLabel.setText("")
        self.set_clock("--:--", False)
        self.set_busy(True)
        self.submitButton.setText("Submit")
        self._show_page(self.attemptPage)

    def set_clock(self, text: str, over_time: bool) -> None:
        self.timerLabel.setText(text)
        self.timerLabel.setStyleSheet(OVERTIME_STYLE if over_time else CLOCK_STYLE)
        if over_time:
            self.clockCaption.setText("Over time")

    def warn_time_up(self, penalty: float) -> None:
        self.hintLabel.setText(
            f"Time is up. Submit when you are ready: going over the limit costs {penalty:g} points."
        )
        self.hintLabel.setStyleSheet("color: #ff5a4f; font-weight: bold;")

    def set_busy(self, busy: bool) -> None:
        """While the attempt is scored: no second Submit."""
        self.submitButton.setEnabled(not busy)
        self.abandonButton.setEnabled(not busy)
        self.submitButton.setText("Scoring…" if busy else "Submit")
        if not busy:
            self.hintLabel.setStyleSheet("color: #aeb6bf;")

    # ---------------------------------------------------------------- results

    def show_results(self, result: ScoreResult, attempt_file: Path | None = None) -> None:
        """The results page."""
        self.scoreLabel.setText(f"{result.score:.0f} / 100")
        colour = PASS_COLOUR if result.passed else FAIL_COLOUR
        self.scoreLabel.setStyleSheet(
            f"font-size: 22pt; font-weight: bold; color: {colour.name()};"
        )
        self.verdictLabel.setText("PASSED" if result.passed else "FAILED")
        self.verdictLabel.setStyleSheet(
            f"font-size: 14pt; font-weight: bold; color: {colour.name()};"
        )
        facts = []
        if result.time_taken_s is not None:
            minutes, seconds = divmod(round(result.time_taken_s), 60)
            facts.append(f"time {minutes}:{seconds:02d}")
        if result.undo_count is not None:
            facts.append(f"{result.undo_count} undo{'' if result.undo_count == 1 else 's'}")
        lost = sum(result.penalties.values())
        if lost:
            facts.append(f"{lost:g} penalty points")
        self.summaryLabel.setText(", ".join(facts).capitalize())
        _fill(self.implantTable, IMPLANT_COLUMNS, implant_rows(result))
        _fill(self.resectionTable, RESECTION_COLUMNS, resection_rows(result))
        self.feedbackList.clear()
        for text in result.feedback:
            self.feedbackList.addItem(QListWidgetItem(f"• {text}"))
        self.fileLabel.setText(f"Attempt saved as {attempt_file}" if attempt_file else "")
        self.expertCheck.setChecked(True)
        self._show_page(self.resultsPage)

    def feedback(self) -> list[str]:
        """The feedback sentences shown (without their bullets)."""
        return [self.feedbackList.item(r).text()[2:] for r in range(self.feedbackList.count())]

    @property
    def showing_results(self) -> bool:
        return self.pages.currentWidget() is self.resultsPage
