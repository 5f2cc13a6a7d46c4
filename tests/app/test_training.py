"""Training mode through the real window: start a bundled scenario as a trainee, place the two
L4 screws with clicks, submit, read the score and feedback, see the expert plan, look at the
progress history, retry with a medial breach; author a scenario from a plan."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from guitools import FIELD_TIMEOUT_MS, assert_not_blank, wait_idle
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtTest import QTest

from testdata import REPO

pytestmark = pytest.mark.gui

TRUTH = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
SCREWS = TRUTH["levels"]["L4"]["pedicle_screws"]
TRAINEE = "Test Resident"
KEY = "l4-bilateral"
SCORE_TIMEOUT_MS = 180_000


# ---------------------------------------------------------------------- pure helpers


def test_clock_counts_down_then_counts_the_time_over():
    from surgtwin.app.trainingwork import clock_text

    assert clock_text(0.0, 900.0) == ("15:00", False)
    assert clock_text(0.4, 900.0) == ("15:00", False)
    assert clock_text(1.0, 900.0) == ("14:59", False)
    assert clock_text(900.0, 900.0) == ("00:00", False)
    assert clock_text(942.5, 900.0) == ("+00:42", True)
    assert clock_text(187.9, None) == ("03:07", False)


def test_plane_section_of_a_box_is_its_outline():
    import trimesh

    from surgtwin.app.training_overlay import plane_section

    box = trimesh.creation.box(extents=(10.0, 20.0, 30.0))
    segments = plane_section(box.vertices, box.faces, np.zeros(3), np.array([0.0, 0.0, 1.0]))
    assert segments.shape[1:] == (2, 3) and len(segments) == 8  # two per side
    assert np.allclose(segments[..., 2], 0.0)
    assert np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1).sum() == pytest.approx(60.0)
    assert len(plane_section(box.vertices, box.faces, [0, 0, 40.0], [0, 0, 1.0])) == 0


def test_allowed_implants_in_words():
    from surgtwin.app.trainingwork import allowed_text
    from surgtwin.training import bundled_scenario

    assert allowed_text(bundled_scenario(KEY).info) == (
        "Pedicle screws: 4.5-8.5 x 25-60 mm (64 sizes)"
    )
    assert allowed_text(bundled_scenario("l4-lesion").info).startswith("No implants")


# ---------------------------------------------------------------------- through the window


def _point(view, lps) -> QPoint:
    pos, depth = view.lps_to_widget(np.asarray(lps, dtype=float))
    assert abs(depth) < 1.0, "the point is not on the shown slice"
    return QPoint(round(pos.x()), round(pos.y()))


def _place(w, qtbot, entry, target) -> str:
    """Two clicks on the axial slice with the Implants panel's Place tool."""
    panel = w.show_panel("implants")
    axial = w.slice_views["axial"]
    w.session.set_cursor(entry)
    qtbot.wait(10)
    before = set(w.session.plan.implants)
    panel.placeButton.click()
    assert w.tool is panel.place_tool
    QTest.mouseClick(axial, Qt.MouseButton.LeftButton, pos=_point(axial, entry))
    QTest.mouseClick(axial, Qt.MouseButton.LeftButton, pos=_point(axial, target))
    (name,) = set(w.session.plan.implants) - before
    return name


def _start(w, qtbot, artefacts=None):
    training = w.training
    dialog = training.open_start_dialog()
    assert dialog.isVisible()
    assert dialog.select(KEY)
    dialog.traineeCombo.setCurrentText(TRAINEE)
    assert dialog.titleLabel.text() == "Bilateral pedicle screws at L4"
    assert "15 min" in dialog.limitLabel.text()
    assert "Pedicle screws" in dialog.allowedLabel.text()
    assert "pedicle screw in each pedicle of L4" in dialog.taskText.toPlainText()
    if artefacts is not None:
        shot = artefacts / "training-start-dialog.png"
        assert dialog.grab().save(str(shot))
        assert_not_blank(shot)
    assert dialog.startButton.isEnabled()
    with qtbot.waitSignal(training.started, timeout=FIELD_TIMEOUT_MS):
        dialog.startButton.click()
    wait_idle(qtbot, w)
    return training


def _expert_poses():
    from surgtwin.training import load_scenario

    reference = load_scenario(KEY)
    reference.unlock_results()
    return {i.name: np.asarray(i.pose) for i in reference.expert_plan().implants.values()}


def _assert_expert_hidden(w) -> None:
    from surgtwin.training import ExpertPlanLocked

    training = w.training
    assert not training.scenario.results_unlocked
    assert training.scenario._expert_records is None  # not even read from the scenario yet
    with pytest.raises(ExpertPlanLocked):
        training.scenario.expert_plan()
    assert not training.overlay.shown and training.overlay.implants == []
    assert training.overlay.actor_names() == []
    assert not any("expert" in str(k).lower() for k in w.view3d.plotter.renderer.actors)
    assert not training.panel.showing_results


def _drag_medially(w, qtbot, name: str, mm: float) -> None:
    """Drag a right screw's body ``mm`` towards the midline (+x) on the axial view."""
    axial = w.slice_views["axial"]
    record = w.session.plan.implants[name]
    w.session.select_implant(name)
    panel = w.show_panel("implants")
    if not panel.moveButton.isChecked():
        panel.moveButton.click()
    pose = np.asarray(record.pose)
    w.session.set_cursor(pose[:3, 3] + 20.0 * pose[:3, 2])
    qtbot.wait(10)
    start = _point(axial, pose[:3, 3] + 20.0 * pose[:3, 2])
    px = round(mm / axial.mm_per_pixel())
    QTest.mousePress(axial, Qt.MouseButton.LeftButton, pos=start)
    for k in range(1, 9):
        QTest.mouseMove(axial, QPoint(start.x() + round(px * k / 8), start.y()))
    QTest.mouseRelease(axial, Qt.MouseButton.LeftButton, pos=QPoint(start.x() + px, start.y()))
    assert np.asarray(w.session.plan.implants[name].pose)[0, 3] > pose[0, 3] + 0.8 * mm


def test_training_attempt_submit_results_history_retry(window, qtbot, tmp_path, artefacts):
    from surgtwin.training import ProgressStore, load_attempt

    w = window
    training = _start(w, qtbot, artefacts)
    assert training.active and training.trainee == TRAINEE
    assert w.training.dock.isVisible()
    plan = w.session.plan
    assert plan is training.plan
    assert len(plan.implants) == 0 and len(plan.cuts) == 0
    assert {"Bone", "Spinal canal"} <= set(plan.structures)
    assert w.session.volume is not None
    # the catalogue offers the scenario's implants only
    implants_panel = w.panels["implants"]
    kinds = implants_panel.kindCombo
    assert [kinds.itemData(i) for i in range(kinds.count())] == ["pedicle_screw"]
    assert all(training.info.allows(s.key) for s in implants_panel.catalogue)
    assert not implants_panel.addStlButton.isEnabled(), "no own implants during an attempt"
    _assert_expert_hidden(w)

    # the timer runs (counting down the 15 minutes)
    first = training.clock()
    assert first.startswith("14:") or first == "15:00"
    qtbot.waitUntil(lambda: training.clock() != first, timeout=3000)
    assert training.clock().startswith("14:")
    assert training.tracker.elapsed_s < 60.0

    # the two screws, clicked at the ground truth's entries and targets
    left = _place(w, qtbot, SCREWS["left"]["entry"], SCREWS["left"]["target"])
    right = _place(w, qtbot, SCREWS["right"]["entry"], SCREWS["right"]["target"])
    assert {left, right} == {"L4 left pedicle screw", "L4 right pedicle screw"}
    _assert_expert_hidden(w)
    shot = w.save_screenshot(artefacts / "training-panel.png")
    assert_not_blank(shot)

    with qtbot.waitSignal(training.scored, timeout=SCORE_TIMEOUT_MS):
        training.panel.submitButton.click()
    sub = training.submission
    result = sub.result
    assert result.passed and result.score >= 90.0
    assert result.trainee == TRAINEE and result.time_taken_s > 1.0
    panel = training.panel
    assert panel.showing_results
    assert panel.scoreLabel.text() == f"{result.score:.0f} / 100"
    assert panel.verdictLabel.text() == "PASSED"
    assert panel.implantTable.rowCount() == 2
    names = {panel.implantTable.item(r, 0).text() for r in range(2)}
    assert names == {"L4 left pedicle screw", "L4 right pedicle screw"}
    assert float(panel.implantTable.item(0, 1).text()) < 2.0  # entry error, mm
    assert any("within every tolerance" in t for t in panel.feedback())
    # now the expert plan is shown, in its own colour, in 3-D and on the slices
    assert training.scenario.results_unlocked
    assert training.overlay.shown and len(training.overlay.implants) == 2
    assert len(training.overlay.actor_names()) == 2
    w.refresh_views()
    qtbot.wait(100)  # the dock takes the results' height
    shot = w.save_screenshot(artefacts / "training-results.png")
    assert_not_blank(shot)

    # recorded in the progress store (the tests' data folder) and saved as an attempt file
    store = ProgressStore()
    (rec,) = store.attempts(TRAINEE)
    assert rec.id == sub.attempt_id and rec.scenario_key == KEY
    assert rec.score == pytest.approx(result.score) and rec.passed
    assert sub.attempt_file.is_file() and rec.attempt_file == str(sub.attempt_file)
    # the attempt file holds the trainee's plan only, never the expert plan
    with zipfile.ZipFile(sub.attempt_file) as z:
        members = z.namelist()
        blob = b"".join(z.read(n) for n in members)
    assert not any("expert" in n.lower() for n in members)
    assert b"surgtwin-expert-plan" not in blob and b"expert" not in blob.lower()
    saved, meta = load_attempt(sub.attempt_file)
    assert meta.trainee == TRAINEE and meta.scenario_key == KEY
    assert set(saved.implants) == {left, right}
    for name in (left, right):
        assert np.allclose(saved.implants[name].pose, plan.implants[name].pose)

    # Retry: the same scenario, clean, blind again
    with qtbot.waitSignal(training.started, timeout=FIELD_TIMEOUT_MS):
        panel.retryButton.click()
    wait_idle(qtbot, w)
    assert w.session.plan is not plan and len(w.session.plan.implants) == 0
    assert training.submission is None and training.active
    _assert_expert_hidden(w)
    assert training.tracker.elapsed_s < 30.0
    assert training.clock() == "15:00" or training.clock().startswith("14:")

    # an attempt with the right screw pushed medially into the canal
    _place(w, qtbot, SCREWS["left"]["entry"], SCREWS["left"]["target"])
    right = _place(w, qtbot, SCREWS["right"]["entry"], SCREWS["right"]["target"])
    _drag_medially(w, qtbot, right, 5.0)
    expert = _expert_poses()
    for record in w.session.plan.implants.values():
        assert not any(np.allclose(record.pose, pose) for pose in expert.values())
    _assert_expert_hidden(w)
    with qtbot.waitSignal(training.scored, timeout=SCORE_TIMEOUT_MS):
        training.panel.submitButton.click()
    second = training.submission
    assert second.result.score < result.score - 5.0
    assert not second.result.passed
    assert panel.verdictLabel.text() == "FAILED"
    breach = [t for t in panel.feedback() if "medial breach" in t]
    assert breach and right in breach[0] and "spinal canal" in breach[0]
    _, meta = load_attempt(second.attempt_file)
    assert meta.undo_count == 0
    saved, _ = load_attempt(second.attempt_file)
    for record in saved.implants.values():
        assert not any(np.allclose(record.pose, pose) for pose in expert.values())
    qtbot.wait(100)
    shot = w.save_screenshot(artefacts / "training-results-breach.png")
    assert_not_blank(shot)

    # the progress history lists both attempts and plots them
    history = training.show_history()
    qtbot.waitExposed(history)
    assert history.trainee == TRAINEE
    assert history.attemptTable.rowCount() == 2
    scores = history.plotted()["Bilateral pedicle screws at L4"]
    assert scores == pytest.approx([result.score, second.result.score])
    assert history.attemptTable.item(1, 4).text() == "failed"
    assert "medial breach" in history.detailsText.toPlainText()
    shot = artefacts / "training-history.png"
    assert history.grab().save(str(shot))
    assert_not_blank(shot)
    csv_file = history.export_csv(tmp_path / "history.csv")
    lines = csv_file.read_text().splitlines()
    assert lines[0].startswith("attempt_id,trainee,scenario") and len(lines) == 1 + 4
    history.close()

    # the instructor sees the trainee's latest result
    instructor = training.show_instructor()
    qtbot.waitExposed(instructor)
    assert instructor.resultTable.rowCount() == 1
    row = [instructor.resultTable.item(0, c).text() for c in range(3)]
    assert row == [TRAINEE, "Bilateral pedicle screws at L4", "2"]
    shot = artefacts / "training-instructor.png"
    assert instructor.grab().save(str(shot))
    assert_not_blank(shot)
    instructor.close()

    # End training: the plan stays, the whole catalogue is back
    panel.endButton.click()
    assert not training.active and not training.dock.isVisible()
    assert not training.overlay.shown and training.overlay.actor_names() == []
    assert implants_panel.kindCombo.count() > 1
    assert implants_panel.addStlButton.isEnabled()
    assert len(w.session.plan.implants) == 2


def test_save_as_training_scenario_then_start_and_abandon(window, qtbot):
    from surgtwin.app.casework import OpenedCase
    from surgtwin.planning.case import place_implant
    from surgtwin.training import load_scenario

    w = window
    plan = load_scenario(KEY).case_plan("My L4 case")
    for side in ("left", "right"):
        s = SCREWS[side]
        place_implant(plan, "pedicle_screw", s["entry"], s["target"], diameter_mm=6.0)
    expert_names = set(plan.implants)
    w.show_case(OpenedCase(None, plan))

    dialog = w.training.open_author_dialog()
    assert "2 implants" in dialog.expertLabel.text()
    assert not dialog.saveButton.isEnabled()  # no task yet
    dialog.titleEdit.setText("My L4 screws")
    dialog.taskEdit.setPlainText("Place both L4 pedicle screws, 6 mm.")
    dialog.limitSpin.setValue(5)
    path = dialog.path()
    assert path.name == "my-l4-screws.surgscn" and path.parent.name == "scenarios"
    assert dialog.saveButton.isEnabled()
    with qtbot.waitSignal(w.jobFinished, timeout=60_000):
        dialog.saveButton.click()
    assert w.last_error is None
    scenario = load_scenario(path)
    assert scenario.title == "My L4 screws" and scenario.info.time_limit_s == 300.0
    assert scenario.expert_counts() == (2, 0)

    # it is listed for trainees, and starts blind (on a clock the test controls)
    now = [1000.0]
    w.training.time_source = lambda: now[0]
    start = w.training.open_start_dialog()
    assert start.traineeCombo.currentText() == w.training.last_trainee()
    assert start.select("my-l4-screws")
    assert "5 min" in start.limitLabel.text()
    start.traineeCombo.setCurrentText(TRAINEE)
    with qtbot.waitSignal(w.training.started, timeout=FIELD_TIMEOUT_MS):
        start.startButton.click()
    assert w.training.last_trainee() == TRAINEE
    assert w.training.info.key == "my-l4-screws"
    assert len(w.session.plan.implants) == 0
    assert not expert_names & set(w.session.plan.implants)
    assert w.training.clock() == "05:00"
    _assert_expert_hidden(w)

    # at 0 the clock turns red and counts the time over; the attempt stays open
    now[0] += 299.2
    qtbot.waitUntil(lambda: w.training.clock() == "00:01", timeout=2000)
    now[0] += 42.0
    qtbot.waitUntil(lambda: w.training.clock() == "+00:41", timeout=2000)
    panel = w.training.panel
    assert "Time is up" in panel.hintLabel.text() and "10 points" in panel.hintLabel.text()
    assert "#ff5a4f" in panel.timerLabel.styleSheet()
    assert panel.clockCaption.text() == "Over time"
    assert w.training.active and not w.training.submitted and panel.submitButton.isEnabled()

    assert w.training.abandon(confirm=False)
    assert not w.training.active and not w.training.dock.isVisible()
    from surgtwin.training import ProgressStore

    assert ProgressStore().attempts(TRAINEE, "my-l4-screws") == []
