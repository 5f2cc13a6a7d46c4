"""The surgeon's workflow through the real window: place a screw with two clicks, drag it
into the canal (the readout turns red with a negative clearance), undo (green again), save,
reopen (identical plan)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from guitools import FIELD_TIMEOUT_MS, assert_not_blank, wait_idle
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtTest import QTest

from testdata import REPO

pytestmark = pytest.mark.gui

TRUTH = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
RIGHT = TRUTH["levels"]["L4"]["pedicle_screws"]["right"]


def _point(view, lps) -> QPoint:
    pos, depth = view.lps_to_widget(np.asarray(lps, dtype=float))
    assert abs(depth) < 1.0, "the point is not on the shown slice"
    return QPoint(round(pos.x()), round(pos.y()))


def _canal(window, name):
    return next(r for r in window.live.readings[name] if r.role == "critical")


def test_place_drag_undo_save_reopen(sample_window, qtbot, tmp_path, artefacts):
    w = sample_window
    plan = w.session.plan
    panel = w.show_panel("implants")
    axial = w.slice_views["axial"]
    w.session.set_cursor(RIGHT["entry"])
    qtbot.wait(10)

    # two clicks on the axial slice: entry, then target
    panel.placeButton.click()
    assert w.tool is panel.place_tool
    QTest.mouseClick(axial, Qt.MouseButton.LeftButton, pos=_point(axial, RIGHT["entry"]))
    QTest.mouseClick(axial, Qt.MouseButton.LeftButton, pos=_point(axial, RIGHT["target"]))
    assert "L4 right pedicle screw" in plan.implants
    name = "L4 right pedicle screw"
    assert w.session.current_implant == name
    record = plan.implants[name]
    # the entry lies where clicked (within a pixel) and the axis aims at the target
    entry = np.asarray(record.pose)[:3, 3] + 45.0 * np.asarray(record.pose)[:3, 2]
    assert np.linalg.norm(entry - RIGHT["entry"]) < 2 * axial.mm_per_pixel() + 0.5
    canal = _canal(w, name)
    assert canal.status == "ok" and canal.clearance_mm > 2.0
    assert "Clear" in panel.statusLabel.text()

    # drag the screw's body 5 mm medially (towards +x for a right screw): into the canal
    assert w.tool is panel.move_tool
    middle = np.asarray(record.pose)[:3, 3] + 20.0 * np.asarray(record.pose)[:3, 2]
    start = _point(axial, middle)
    px = 5.0 / axial.mm_per_pixel()
    QTest.mousePress(axial, Qt.MouseButton.LeftButton, pos=start)
    for k in range(1, 11):
        QTest.mouseMove(axial, QPoint(start.x() + round(px * k / 10), start.y()))
        qtbot.wait(5)
    QTest.mouseRelease(
        axial, Qt.MouseButton.LeftButton, pos=QPoint(start.x() + round(px), start.y())
    )
    moved = np.asarray(plan.implants[name].pose)[:3, 3] - np.asarray(record.pose)[:3, 3]
    # the screw follows the mouse exactly: pixels moved x mm per pixel
    assert moved[0] == pytest.approx(round(px) * axial.mm_per_pixel(), abs=0.01)
    assert abs(moved[1]) < 1e-6 and abs(moved[2]) < 1e-6
    canal = _canal(w, name)
    assert canal.status == "fail" and canal.collides
    assert canal.clearance_mm < -1.0
    assert canal.grade in ("B", "C")
    assert "Breach" in panel.statusLabel.text()
    assert panel.statusLabel.property("role") == "status-fail"
    assert "-" in w.view3d.clearance_label
    w.save_screenshot(artefacts / "workflow-breach.png")
    # the whole drag is one undo step
    assert w.session.stack.undo_names[-1] == f"Move {name}"
    assert w.session.stack.undo_names.count(f"Move {name}") == 1

    assert w.actionUndo.shortcut().toString() == "Ctrl+Z"
    assert w.actionUndo.text() == f"&Undo Move {name}"
    w.actionUndo.trigger()
    assert np.allclose(plan.implants[name].pose, record.pose)
    canal = _canal(w, name)
    assert canal.status == "ok" and canal.clearance_mm > 2.0
    assert "Clear" in panel.statusLabel.text()

    out = tmp_path / "case.surgplan"
    assert w.save_to(out)
    before = plan.to_dict()
    assert w.windowTitle().startswith("case ")

    with qtbot.waitSignal(w.caseOpened, timeout=FIELD_TIMEOUT_MS):
        w.open_path(out)
    wait_idle(qtbot, w)
    again = w.session.plan
    assert again is not plan
    assert again.to_dict() == before
    assert np.array_equal(again.labelmap.array, plan.labelmap.array)
    assert w.session.volume is not None
    assert _canal(w, name).status == "ok"
    shot = w.save_screenshot(artefacts / "workflow-reopened.png")
    assert_not_blank(shot)


def _wait_jobs(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.jobs, timeout=FIELD_TIMEOUT_MS)
    assert window.last_error is None, window.last_error.informativeText()


def test_whole_workflow_from_the_images(window, qtbot, tmp_path, artefacts):
    """Open the sample's images -> segment bone (preset) and the canal (a click) -> build 3-D
    -> place a screw with two clicks -> into the canal (red, negative) -> undo (green) -> save
    -> reopen (identical) -> export STL (watertight)."""
    import trimesh

    w = window
    with qtbot.waitSignal(w.caseOpened, timeout=FIELD_TIMEOUT_MS):
        w.open_path(REPO / "sample_dicom", segment=False)
    wait_idle(qtbot, w)
    assert not w.session.plan.structures and not w.session.plan.labelmap.array.any()

    seg = w.show_panel("segment")
    qtbot.mouseClick(seg.preset_buttons["bone"], Qt.MouseButton.LeftButton)
    _wait_jobs(qtbot, w)
    seg.new_label("Spinal canal", "critical")
    seg.rangeCombo.setCurrentIndex(seg.rangeCombo.findText("CSF", Qt.MatchFlag.MatchStartsWith))
    seg.rangeCombo.activated.emit(seg.rangeCombo.currentIndex())
    seed = np.array(TRUTH["levels"]["L4"]["canal"]["centre"], dtype=float)
    w.session.set_cursor(seed)
    qtbot.mouseClick(seg.growButton, Qt.MouseButton.LeftButton)
    axial = w.slice_views["axial"]
    QTest.mouseClick(axial, Qt.MouseButton.LeftButton, pos=_point(axial, seed))
    _wait_jobs(qtbot, w)
    lm = w.session.plan.labelmap
    assert lm.volume_mm3("Spinal canal") == pytest.approx(TRUTH["canal"]["volume_mm3"], rel=0.05)
    qtbot.mouseClick(seg.buildButton, Qt.MouseButton.LeftButton)
    _wait_jobs(qtbot, w)
    plan = w.session.plan
    roles = {s.name: s.role for s in plan.structures.values()}
    assert roles == {"Bone": "bone", "Spinal canal": "critical"}
    assert plan.structures["Spinal canal"].margin_mm == 2.0
    wait_idle(qtbot, w)

    left = TRUTH["levels"]["L4"]["pedicle_screws"]["left"]
    panel = w.show_panel("implants")
    w.session.set_cursor(left["entry"])
    panel.placeButton.click()
    QTest.mouseClick(axial, Qt.MouseButton.LeftButton, pos=_point(axial, left["entry"]))
    QTest.mouseClick(axial, Qt.MouseButton.LeftButton, pos=_point(axial, left["target"]))
    name = w.session.current_implant
    assert name == "L4 left pedicle screw"
    wait_idle(qtbot, w)
    canal = _canal(w, name)
    # analytic: the ideal axis passes 6.1 mm from the canal; minus the 3.25 mm screw radius
    assert canal.clearance_mm == pytest.approx(left["min_canal_distance_mm"] - 3.25, abs=0.4)
    assert canal.status == "ok"
    record = plan.implants[name]

    # 5 mm medially (towards -x for a left screw), with the keyboard this time: 10 nudges
    axial.setFocus()
    for _ in range(10):
        QTest.keyClick(axial, Qt.Key.Key_Left)
    moved = np.asarray(plan.implants[name].pose)[:3, 3] - np.asarray(record.pose)[:3, 3]
    assert np.allclose(moved, [-5.0, 0.0, 0.0], atol=1e-9)
    canal = _canal(w, name)
    assert canal.status == "fail" and canal.clearance_mm < -1.0
    assert "Breach" in panel.statusLabel.text()
    assert w.session.stack.undo_names[-1] == f"Move {name}", "ten nudges are one step"
    w.actionUndo.trigger()
    assert np.allclose(plan.implants[name].pose, record.pose)
    assert _canal(w, name).status == "ok"

    out = tmp_path / "workflow.surgplan"
    assert w.save_to(out)
    before = plan.to_dict()
    with qtbot.waitSignal(w.caseOpened, timeout=FIELD_TIMEOUT_MS):
        w.open_path(out)
    wait_idle(qtbot, w)
    assert w.session.plan.to_dict() == before
    assert np.array_equal(w.session.plan.labelmap.array, lm.array)

    export = w.show_panel("export")
    export.set_checked(structures=["Bone", "Spinal canal"], implants=[name])
    export.formatCombo.setCurrentIndex(export.formatCombo.findData("stl"))
    export.folderEdit.setText(str(tmp_path / "stl"))
    with qtbot.waitSignal(w.jobFinished, timeout=FIELD_TIMEOUT_MS):
        qtbot.mouseClick(export.exportMeshesButton, Qt.MouseButton.LeftButton)
    _wait_jobs(qtbot, w)
    files = sorted((tmp_path / "stl").glob("*.stl"))
    assert [f.name for f in files] == [
        "Bone.stl",
        "L4_left_pedicle_screw.stl",
        "Spinal_canal.stl",
    ]
    for f in files:
        assert trimesh.load(f, force="mesh").is_watertight, f
    assert_not_blank(w.save_screenshot(artefacts / "workflow-from-images.png"))
