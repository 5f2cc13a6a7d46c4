"""The dialog that starts a training attempt: the trainee's name and a scenario."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QListWidgetItem,
    QWidget,
)

from surgtwin.app.resources import load_ui
from surgtwin.app.trainingwork import allowed_text
from surgtwin.training.scenario import ScenarioInfo

__all__ = ["TrainingStartDialog", "limit_text"]


def limit_text(limit_s: float | None) -> str:
    """``"15 min"``, ``"90 s"`` or ``"none"``."""
    if limit_s is None:
        return "none"
    if limit_s >= 60 and limit_s % 60 == 0:
        return f"{limit_s / 60:g} min"
    return f"{limit_s / 60:.1f} min" if limit_s >= 60 else f"{limit_s:g} s"


class TrainingStartDialog(QDialog):
    """Choose the trainee and the scenario.

    Parameters
    ----------
    scenarios : sequence of ScenarioInfo
        As :func:`surgtwin.training.list_scenarios` gives them (bundled first).
    trainees : sequence of str
        Names already in the progress store (offered in the trainee box).
    last_trainee : str
        Shown first (the name used last time).
    """

    def __init__(
        self,
        scenarios: Sequence[ScenarioInfo],
        trainees: Sequence[str] = (),
        last_trainee: str = "",
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        load_ui("training_start.ui", self)
        self.setObjectName("trainingStartDialog")
        self.startButton = self.buttonBox.button(QDialogButtonBox.StandardButton.Ok)
        self.startButton.setText("Start")
        self.buttonBox.accepted.connect(self.accept)
        self.buttonBox.rejected.connect(self.reject)
        names = list(dict.fromkeys([n for n in (last_trainee, *trainees) if n]))
        self.traineeCombo.addItems(names)
        self.traineeCombo.setCurrentText(last_trainee)
        self.traineeCombo.lineEdit().setPlaceholderText("Your name")
        self.traineeCombo.editTextChanged.connect(lambda _t: self._update_buttons())
        self.scenarioList.currentItemChanged.connect(lambda _c, _p: self._show_current())
        self.scenarioList.itemDoubleClicked.connect(lambda _i: self._start_if_ready())
        self.openButton.clicked.connect(self.choose_file)
        for info in scenarios:
            self.add_scenario(info)
        if self.scenarioList.count():
            self.scenarioList.setCurrentRow(0)
        self._show_current()

    def add_scenario(self, info: ScenarioInfo) -> QListWidgetItem:
        """List a scenario (bundled ones say so; others show where they come from)."""
        text = info.title if info.source == "bundled" else f"{info.title}  [{info.key}]"
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, info)
        item.setToolTip(info.task)
        self.scenarioList.addItem(item)
        return item

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a training scenario", "", "SurgTwin scenarios (*.surgscn);;All files (*)"
        )
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> ScenarioInfo | None:
        """Add the scenario in ``path`` to the list and select it (None if unreadable)."""
        from surgtwin.errors import SurgTwinError
        from surgtwin.training.scenario import load_scenario

        try:
            info = load_scenario(path).info
        except (SurgTwinError, OSError) as exc:
            self.sourceLabel.setText(f"Cannot use {Path(path).name}: {exc}")
            return None
        self.scenarioList.setCurrentItem(self.add_scenario(info))
        return info

    # ---------------------------------------------------------------- state

    def scenario(self) -> ScenarioInfo | None:
        item = self.scenarioList.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def trainee(self) -> str:
        return self.traineeCombo.currentText().strip()

    def select(self, key: str) -> bool:
        """Select the scenario with this key; False when it is not listed."""
        for row in range(self.scenarioList.count()):
            info = self.scenarioList.item(row).data(Qt.ItemDataRole.UserRole)
            if info.key == key:
                self.scenarioList.setCurrentRow(row)
                return True
        return False

    def _show_current(self) -> None:
        info = self.scenario()
        if info is None:
            self.titleLabel.setText("No scenario")
            self.taskText.setHtml("")
            for label in (self.limitLabel, self.allowedLabel, self.sourceLabel):
                label.setText("")
        else:
            self.titleLabel.setText(info.title)
            self.taskText.setHtml(f"<p>{html.escape(info.task)}</p>")
            self.limitLabel.setText(limit_text(info.time_limit_s))
            self.allowedLabel.setText(allowed_text(info))
            self.sourceLabel.setText(
                "bundled with SurgTwin (the lumbar phantom)"
                if info.source == "bundled"
                else info.source
            )
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.startButton.setEnabled(bool(self.trainee()) and self.scenario() is not None)

    def _start_if_ready(self) -> None:
        if self.startButton.isEnabled():
            self.accept()
