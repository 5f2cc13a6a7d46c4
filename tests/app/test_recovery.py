"""Autosave recovery after a crash, and the File > Save / Open round trip, through the window."""

from __future__ import annotations

import numpy as np
import pytest
from guitools import FIELD_TIMEOUT_MS, new_window, wait_idle
from PyQt6.QtWidgets import QMessageBox

from testdata import REPO

pytestmark = pytest.mark.gui

SCREW = "L4 left pedicle screw"


def open_and_wait(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.caseOpened, timeout=FIELD_TIMEOUT_MS):
        window.open_path(path)
    wait_idle(qtbot, window)
    assert window.last_error is None


def edit_plan(window) -> None:
    """Move the screw and change the canal's colour and safety margin: two undo steps."""
    from surgtwin.planning.commands import MoveImplant, SetStructureProperty

    plan = window.session.plan
    pose = np.array(plan.implants[SCREW].pose)
    pose[:3, 3] += (1.25, -2.0, 0.5)
    window.session.push(MoveImplant(plan, SCREW, pose))
    window.session.push(
        SetStructureProperty(plan, "Spinal canal", color=(0.2, 0.4, 0.9), margin_mm=3.0)
    )


def snapshot(plan) -> dict:
    """What must survive a save or a crash: everything, voxels and poses exactly."""
    return {
        "dict": plan.to_dict(),
        "labels": np.array(plan.labelmap.array, copy=True),
        "poses": {name: np.array(r.pose, copy=True) for name, r in plan.implants.items()},
        "structures": list(plan.structures.values()),
    }


def same_plan(plan, expected: dict) -> None:
    assert plan.to_dict() == expected["dict"]
    assert np.array_equal(np.asarray(plan.labelmap.array), expected["labels"])
    assert list(plan.implants) == list(expected["poses"])
    for name, pose in expected["poses"].items():
        assert np.array_equal(plan.implants[name].pose, pose)
    assert list(plan.structures.values()) == expected["structures"]


def test_recovery_after_a_crash(qtbot, monkeypatch, tmp_path):
    from surgtwin.app.main import offer_recovery
    from surgtwin.paths import autosave_dir
    from surgtwin.planning.planfile import find_recoverable, load_plan

    monkeypatch.setenv("SURGTWIN_DATA_DIR", str(tmp_path / "data"))
    with new_window(qtbot) as w:
        open_and_wait(qtbot, w, REPO / "sample_dicom")
        edit_plan(w)
        edited = snapshot(w.session.plan)
        assert edited["poses"][SCREW][0, 3] != 0 and w.session.stack.is_dirty
        # the first autosave is due at once; it is written on a worker (wait for it here)
        autosave = w.session.autosave_now(now=1.0e9, wait=True)
        assert autosave is not None and autosave.parent == autosave_dir()
        assert w.session.autosave_now(now=1.0e9 + 1.0) is None, "not again within the interval"
        # the crash: the window goes without saving, its autosave stays
    assert autosave.is_file()
    assert find_recoverable(autosave_dir()) == [autosave]

    asked = []

    def answer_yes(parent, title, text, buttons):
        asked.append((title, text))
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer_yes)
    with new_window(qtbot) as w2:
        with qtbot.waitSignal(w2.caseOpened, timeout=FIELD_TIMEOUT_MS):
            job = offer_recovery(w2)
        assert job is not None
        wait_idle(qtbot, w2)
        assert len(asked) == 1 and asked[0][0] == "Recover unsaved work?"
        assert "Plan" in asked[0][1]
        recovered = w2.session.plan
        same_plan(recovered, edited)
        assert w2.session.volume is not None, "the images are found again"
        # unsaved, pointing to no file: Save asks where, the title shows the star
        assert w2.session.stack.is_dirty and w2.session.plan_path is None
        assert w2.windowTitle().startswith("Plan *")
        assert str(autosave) not in w2.recent_files()
        assert autosave.is_file(), "kept until the recovered plan is saved"
        # undoing cannot make it look saved
        assert not w2.session.stack.can_undo and w2.session.stack.is_dirty
        assert w2.save_to(tmp_path / "recovered.surgplan")
        assert not autosave.exists() and find_recoverable(autosave_dir()) == []
        saved = load_plan(tmp_path / "recovered.surgplan")
        assert saved.name == "recovered"  # a plan is named after its file
        same_plan(saved, {**edited, "dict": {**edited["dict"], "name": "recovered"}})


def test_no_question_without_autosave_and_no_deletes(window, monkeypatch, tmp_path):
    from surgtwin.app.main import offer_recovery
    from surgtwin.paths import autosave_dir
    from surgtwin.planning.commands import CommandStack, SetNote
    from surgtwin.planning.plan import Plan
    from surgtwin.planning.planfile import Autosaver

    monkeypatch.setenv("SURGTWIN_DATA_DIR", str(tmp_path / "data"))

    def must_not_ask(*_a):
        raise AssertionError("nothing to recover: no question")

    monkeypatch.setattr(QMessageBox, "question", must_not_ask)
    assert offer_recovery(window) is None
    plan = Plan("Left hip")
    stack = CommandStack(plan)
    stack.push(SetNote(plan, "cup 52 mm"))
    autosave_dir().mkdir(parents=True)
    autosave = Autosaver(plan, stack, autosave_dir()).maybe_save(0.0)
    assert autosave is not None and autosave.is_file()
    monkeypatch.setattr(QMessageBox, "question", lambda *_a: QMessageBox.StandardButton.No)
    assert offer_recovery(window) is None
    assert not autosave.exists(), "declined: the autosave is deleted"
    assert window.session.plan is None


def test_save_and_open_round_trip(sample_window, qtbot, tmp_path):
    w = sample_window
    edit_plan(w)
    assert w.windowTitle().startswith("Plan *")
    path = tmp_path / "x.surgplan"
    assert w.save_to(path)
    assert w.session.stack.is_clean and w.session.plan_path == path
    assert w.windowTitle().startswith("x ")
    with new_window(qtbot) as w2:
        open_and_wait(qtbot, w2, path)
        same_plan(w2.session.plan, snapshot(w.session.plan))
        assert w2.session.plan_path == path and w2.session.stack.is_clean
        assert w2.session.volume is not None
        assert w2.session.volume.geometry.shape == w2.session.plan.labelmap.geometry.shape
