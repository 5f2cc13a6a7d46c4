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
