"""The dialog of File > Save as training scenario: the task, title, time limit and file."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QWidget

from surgtwin.app.resources import load_ui
from surgtwin.app.trainingwork import scenario_path_for
from surgtwin.planning.plan import Plan

__all__ = ["AuthorScenarioDialog"]


class AuthorScenarioDialog(QDialog):
    """What a new scenario needs besides the plan: asked of the instructor.

    Parameters
    ----------
    plan : Plan
        The plan whose implants and cuts become the expert plan.
    """

    def __init__(self, plan: Plan, parent: QWidget | None = None):
        super().__init__(parent)
        load_ui("training_author.ui", self)
        self.setObjectName("authorScenarioDialog")
        self.plan = plan
        self.saveButton = self.buttonBox.button(QDialogButtonBox.StandardButton.Save)
        self.buttonBox.accepted.connect(self.accept)
        self.buttonBox.rejected.connect(self.reject)
        n_i, n_c = len(plan.implants), len(plan.cuts)
        self.expertLabel.setText(
            f"The expert plan: <b>{n_i} implant{'' if n_i == 1 else 's'}</b> and "
            f"<b>{n_c} cut{'' if n_c == 1 else 's'}</b> of the plan “{plan.name}”."
            + ("" if n_i or n_c else " Place implants or cuts first: there is nothing to score.")
        )
        self.has_cuts = n_c > 0
        for w in (self.caseCaption, self.caseEdit, self.caseButton):
            w.setEnabled(self.has_cuts)
        self._path_edited = False
        self.titleEdit.setText(plan.name)
        self.pathEdit.setText(str(scenario_path_for(plan.name)))
        self.titleEdit.textChanged.connect(self._title_changed)
        self.pathEdit.textEdited.connect(lambda _t: setattr(self, "_path_edited", True))
        self.taskEdit.textChanged.connect(self._update_buttons)
        self.caseEdit.textChanged.connect(lambda _t: self._update_buttons())
        self.pathEdit.textChanged.connect(lambda _t: self._update_buttons())
        self.caseButton.clicked.connect(self._choose_case)
        self.pathButton.clicked.connect(self._choose_path)
        self._update_buttons()

    # ---------------------------------------------------------------- values

    def title(self) -> str:
        return self.titleEdit.text().strip()

    def task(self) -> str:
        return self.taskEdit.toPlainText().strip()

    def time_limit_s(self) -> float | None:
        minutes = self.limitSpin.value()
        return None if minutes == 0 else 60.0 * minutes

    def case_path(self) -> Path | None:
        text = self.caseEdit.text().strip()
        return Path(text) if text and self.has_cuts else None

    def path(self) -> Path:
        return Path(self.pathEdit.text().strip())

    # ---------------------------------------------------------------- behaviour

    def _title_changed(self, text: str) -> None:
        if not self._path_edited and text.strip():
            self.pathEdit.setText(str(scenario_path_for(text.strip())))
        self._update_buttons()

    def _update_buttons(self) -> None:
        ok = bool(self.title() and self.task() and self.pathEdit.text().strip())
        ok = ok and bool(len(self.plan.implants) or len(self.plan.cuts))
        if self.has_cuts:
            ok = ok and bool(self.caseEdit.text().strip())
        self.saveButton.setEnabled(ok)

    def _choose_case(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "The case before the cuts", "", "SurgTwin plans (*.surgplan)"
        )
        if path:
            self.caseEdit.setText(path)

    def _choose_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the scenario", self.pathEdit.text(), "SurgTwin scenarios (*.surgscn)"
        )
        if path:
            if not path.lower().endswith(".surgscn"):
                path += ".surgscn"
            self._path_edited = True
            self.pathEdit.setText(path)
