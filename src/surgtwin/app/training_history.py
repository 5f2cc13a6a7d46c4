"""Training progress: a trainee's attempts (table, score over attempts, CSV) and the instructor's
view of every trainee's latest results."""

from __future__ import annotations

import html
from pathlib import Path

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QDialog,
    QFileDialog,
    QWidget,
)

from surgtwin.app.resources import load_ui
from surgtwin.app.result_table import FAIL_COLOUR, PASS_COLOUR, fill_result_table
from surgtwin.training.progress import AttemptRecord, ProgressStore

__all__ = ["ATTEMPT_COLUMNS", "LATEST_COLUMNS", "InstructorDialog", "TrainingHistoryDialog"]

ATTEMPT_COLUMNS = ("#", "Recorded", "Scenario", "Score", "Result", "Time", "Undos")
LATEST_COLUMNS = (
    "Trainee",
    "Scenario",
    "Attempts",
    "Latest score",
    "Latest result",
    "Best score",
    "Ever passed",
    "Last attempt",
)
# the plot in the app's dark theme
_BG, _AXES, _TEXT, _GRID = "#1e2124", "#15181a", "#d8dde3", "#33393f"
_LINES = ("#35b3b8", "#ffb340", "#a87aff", "#4cd964", "#ff7ab8", "#9aa4ae")


def _when(iso: str) -> str:
    """``2025-03-01 14:05`` from an ISO time (local time)."""
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if t.tzinfo is not None:
        t = t.astimezone()
    return t.strftime("%Y-%m-%d %H:%M")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes}:{s:02d}"


def _is_verdict(_column: int, text: str) -> bool:
    """Only the verdict cells of an attempt table are coloured."""
    return text in ("passed", "failed")


def _choose_csv(parent: QWidget, name: str) -> str:
    path, _ = QFileDialog.getSaveFileName(parent, "Export CSV", name, "CSV (*.csv)")
    if path and not path.lower().endswith(".csv"):
        path += ".csv"
    return path


class TrainingHistoryDialog(QDialog):
    """A trainee's attempts: table (oldest first), score over attempts per scenario, the
    selected attempt's feedback, CSV export.

    Parameters
    ----------
    store : ProgressStore
    trainee : str, optional
        Shown first (default: the first trainee of the store).
    """

    def __init__(
        self, store: ProgressStore, trainee: str | None = None, parent: QWidget | None = None
    ):
        super().__init__(parent)
        load_ui("training_history.ui", self)
        self.setObjectName("trainingHistoryDialog")
        self.store = store
        self.records: list[AttemptRecord] = []
        self.figure = Figure(figsize=(5.0, 2.8), dpi=100, facecolor=_BG)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setObjectName("scorePlot")
        self.plotLayout.addWidget(self.canvas)
        self.splitter.setSizes([260, 300])
        self.buttonBox.rejected.connect(self.reject)
        self.exportButton.clicked.connect(self.choose_export)
        trainees = store.trainees()
        if trainee and trainee not in trainees:
            trainees.insert(0, trainee)
        self.traineeCombo.addItems(trainees)
        if trainee:
            self.traineeCombo.setCurrentText(trainee)
        self.traineeCombo.currentTextChanged.connect(lambda _t: self._trainee_changed())
        self.scenarioCombo.currentIndexChanged.connect(lambda _i: self.refresh())
        self.attemptTable.itemSelectionChanged.connect(self._show_details)
        self._trainee_changed()

    @property
    def trainee(self) -> str:
        return self.traineeCombo.currentText()

    def scenario_key(self) -> str | None:
        return self.scenarioCombo.currentData()

    def _trainee_changed(self) -> None:
        """Offer the scenarios this trainee attempted."""
        self.scenarioCombo.blockSignals(True)
        self.scenarioCombo.clear()
        self.scenarioCombo.addItem("All scenarios", None)
        seen: dict[str, str] = {}
        for rec in self.store.attempts(self.trainee) if self.trainee else []:
            seen.setdefault(rec.scenario_key, rec.scenario_title)
        for key, title in seen.items():
            self.scenarioCombo.addItem(title, key)
        self.scenarioCombo.blockSignals(False)
        self.refresh()

    def refresh(self) -> None:
        """Read the store again and redraw the table and the plot."""
        self.records = (
            self.store.attempts(self.trainee, self.scenario_key()) if self.trainee else []
        )
        numbers: dict[str, int] = {}
        rows = []
        for rec in self.records:
            numbers[rec.scenario_key] = numbers.get(rec.scenario_key, 0) + 1
            cells = [
                str(numbers[rec.scenario_key]),
                _when(rec.recorded_at),
                rec.scenario_title,
                f"{rec.score:.0f}",
                "passed" if rec.passed else "failed",
                _duration(rec.time_taken_s),
                "-" if rec.undo_count is None else str(rec.undo_count),
            ]
            rows.append((cells, rec.passed))
        fill_result_table(self.attemptTable, ATTEMPT_COLUMNS, rows, 2, _is_verdict)
        n_pass = sum(r.passed for r in self.records)
        self.summaryLabel.setText(
            f"{len(self.records)} attempt{'' if len(self.records) == 1 else 's'}, {n_pass} passed"
        )
        self._plot()
        if self.records:
            self.attemptTable.selectRow(len(self.records) - 1)
        else:
            self.detailsText.setHtml("<p>No attempts recorded yet.</p>")

    def plotted(self) -> dict[str, list[float]]:
        """The scores drawn, per scenario title (in attempt order)."""
        out: dict[str, list[float]] = {}
        for rec in self.records:
            out.setdefault(rec.scenario_title, []).append(rec.score)
        return out

    def _plot(self) -> None:
        fig = self.figure
        fig.clear()
        ax = fig.add_subplot(111)
        ax.set_facecolor(_AXES)
        for spine in ax.spines.values():
            spine.set_color(_GRID)
        ax.tick_params(colors=_TEXT, labelsize=8)
        ax.grid(True, color=_GRID, linewidth=0.6)
        by_title: dict[str, list[AttemptRecord]] = {}
        for rec in self.records:
            by_title.setdefault(rec.scenario_title, []).append(rec)
        for n, (title, recs) in enumerate(by_title.items()):
            x = list(range(1, len(recs) + 1))
            y = [r.score for r in recs]
            colour = _LINES[n % len(_LINES)]
            ax.plot(x, y, "-", color=colour, linewidth=1.5, label=title)
            ax.scatter(
                x,
                y,
                c=[PASS_COLOUR.name() if r.passed else FAIL_COLOUR.name() for r in recs],
                edgecolors=colour,
                s=42,
                zorder=3,
            )
        ax.set_ylim(0, 105)
        most = max((len(v) for v in by_title.values()), default=1)
        ax.set_xlim(0.5, most + 0.5)
        ax.set_xticks(range(1, most + 1))
        ax.set_xlabel("Attempt", color=_TEXT, fontsize=9)
        ax.set_ylabel("Score", color=_TEXT, fontsize=9)
        ax.set_title(
            "Score over attempts (dots: green passed, red failed)", color=_TEXT, fontsize=9
        )
        if by_title:
            legend = ax.legend(fontsize=7, facecolor=_BG, edgecolor=_GRID, loc="lower right")
            for text in legend.get_texts():
                text.set_color(_TEXT)
        fig.tight_layout()
        self.canvas.draw_idle()

    def _show_details(self) -> None:
        rows = self.attemptTable.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.records):
            return
        rec = self.records[rows[0].row()]
        verdict = "passed" if rec.passed else "failed"
        parts = [f"<p><b>{html.escape(rec.scenario_title)}</b>: {rec.score:.0f}/100, {verdict}</p>"]
        feedback = rec.result.get("feedback") or []
        if feedback:
            items = "".join(f"<li>{html.escape(str(t))}</li>" for t in feedback)
            parts.append(f"<ul>{items}</ul>")
        if rec.attempt_file:
            parts.append(f"<p style='color:#8a939c'>{html.escape(rec.attempt_file)}</p>")
        self.detailsText.setHtml("".join(parts))

    def choose_export(self) -> None:
        path = _choose_csv(self, f"{self.trainee or 'training'}-attempts.csv")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> Path:
        """Write the shown attempts (this trainee, this scenario filter) as CSV."""
        out = self.store.export_csv(path, self.trainee or None, self.scenario_key())
        self.summaryLabel.setText(f"Exported to {out}")
        return out


class InstructorDialog(QDialog):
    """Every trainee's latest result per scenario, their number of attempts and best score.

    Parameters
    ----------
    store : ProgressStore
    """

    def __init__(self, store: ProgressStore, parent: QWidget | None = None):
        super().__init__(parent)
        load_ui("training_instructor.ui", self)
        self.setObjectName("instructorDialog")
        self.store = store
        self.rows = []
        self.history: TrainingHistoryDialog | None = None
        self.buttonBox.rejected.connect(self.reject)
        self.exportButton.clicked.connect(self.choose_export)
        self.historyButton.clicked.connect(self.open_history)
        self.resultTable.doubleClicked.connect(lambda _i: self.open_history())
        self.refresh()

    def refresh(self) -> None:
        self.rows = self.store.latest_results()
        table_rows = []
        for r in self.rows:
            cells = [
                r.trainee,
                r.scenario_title,
                str(r.attempts),
                f"{r.latest.score:.0f}",
                "passed" if r.latest.passed else "failed",
                f"{r.best_score:.0f}",
                "yes" if r.passed_ever else "no",
                _when(r.latest.recorded_at),
            ]
            table_rows.append((cells, r.latest.passed))
        fill_result_table(self.resultTable, LATEST_COLUMNS, table_rows, 1, _is_verdict)
        trainees = {r.trainee for r in self.rows}
        self.summaryLabel.setText(
            f"{len(trainees)} trainee{'' if len(trainees) == 1 else 's'}, "
            f"{sum(r.attempts for r in self.rows)} attempts"
            + ("" if self.rows else ": none recorded yet")
        )
        self.historyButton.setEnabled(bool(self.rows))
        if self.rows:
            self.resultTable.selectRow(0)

    def selected_trainee(self) -> str | None:
        rows = self.resultTable.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self.rows):
            return None
        return self.rows[rows[0].row()].trainee

    def open_history(self) -> TrainingHistoryDialog | None:
        trainee = self.selected_trainee()
        if trainee is None:
            return None
        self.history = TrainingHistoryDialog(self.store, trainee, self)
        self.history.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.history.show()
        return self.history

    def choose_export(self) -> None:
        path = _choose_csv(self, "training-all-trainees.csv")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str | Path) -> Path:
        """Write every attempt of every trainee as CSV."""
        out = self.store.export_csv(path)
        self.summaryLabel.setText(f"Exported to {out}")
        return out
