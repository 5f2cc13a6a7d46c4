"""The main window on the phantom: views, orientation, live clearance, undo, save, reopen."""

from __future__ import annotations

import json

import numpy as np
import pytest
from guitools import assert_not_blank

from testdata import REPO

pytestmark = pytest.mark.gui

TRUTH = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())


def test_opens_sample_like_make_run(sample_window, artefacts):
    w = sample_window
    plan = w.session.plan
    assert {s.role for s in plan.structures.values()} >= {"bone", "critical"}
    assert list(plan.implants) == ["L4 left pedicle screw"]
    # the example screw on the ideal L4 left trajectory clears the canal by the analytic
    # distance: axis-to-canal distance minus the screw radius
    truth = TRUTH["levels"]["L4"]["pedicle_screws"]["left"]
    canal = next(r for r in w.live.readings["L4 left pedicle screw"] if r.role == "critical")
    expected = truth["min_canal_distance_mm"] - 6.5 / 2
    assert canal.clearance_mm == pytest.approx(expected, abs=0.15)
    assert canal.status == "ok" and canal.grade == "A"
    shot = w.save_screenshot(artefacts / "window-sample.png")
    assert_not_blank(shot)


def test_slice_views_keep_left_on_the_right(sample_window):
    w = sample_window
    axial = w.slice_views["axial"]
    assert axial.axes.letters == ("R", "L", "A", "P")
    marker = np.array(TRUTH["left_marker"]["centre"], dtype=float)
    w.session.set_cursor(marker)
    pos, depth = axial.lps_to_widget(marker)
    centre = axial.image_rect().center()
    assert pos.x() > centre.x(), "the patient's left marker must be on the screen's right"
    assert abs(depth) <= 1.0
    # the pixel under the marker is the marker's HU
    lps = axial.widget_to_lps(pos)
    assert w.session.volume.value_at(lps) > 2000


def test_reslice_along_the_implant(sample_window, artefacts):
    from surgtwin.planning.checks import entry_and_tip

    w = sample_window
    panel = w.show_panel("implants")
    record = w.session.plan.implants["L4 left pedicle screw"]
    entry, tip = entry_and_tip(record)
    panel.followCheck.setChecked(True)
    axial, sagittal = w.slice_views["axial"], w.slice_views["sagittal"]
    assert axial.plane is not None and sagittal.plane is not None
    for view in (axial, sagittal):
        # the implant's axis lies in both oblique planes
        for point in (entry, tip):
            _pos, depth = view.lps_to_widget(point)
            assert abs(depth) < 1e-6
        # a click maps back to the same LPS point
        pos, _ = view.lps_to_widget((entry + tip) / 2)
        assert np.allclose(view.widget_to_lps(pos), (entry + tip) / 2, atol=1e-6)
    # the oblique image shows the volume's HU at the axis midpoint (bone, window 400/1800)
    mid = (entry + tip) / 2
    grey = axial._grey
    n = grey.shape[0]
    hu = w.session.volume.value_at(mid)
    lo = axial.window_centre - axial.window_width / 2
    expected = np.clip((hu - lo) * 255 / axial.window_width, 0, 255)
    assert abs(int(grey[n // 2, n // 2]) - expected) < 40
    assert axial.plane[3] == ("R", "L", "A", "P")
    assert_not_blank(w.save_screenshot(artefacts / "window-reslice.png"))
    panel.followCheck.setChecked(False)
    assert axial.plane is None and sagittal.plane is None


def test_3d_handles_slide_and_turn_the_implant(sample_window, artefacts):
    from surgtwin.planning.checks import entry_and_tip

    w = sample_window
    panel = w.show_panel("implants")
    name = "L4 left pedicle screw"
    w.session.select_implant(name)
    panel.moveButton.setChecked(True)
    handles = panel.handles
    assert handles.enabled
    entry, tip = entry_and_tip(w.session.plan.implants[name])
    assert np.allclose(handles.widgets["entry"].GetCenter(), entry)
    assert np.allclose(handles.widgets["tip"].GetCenter(), tip)
    assert handles.widgets["tip"].GetEnabled()
    w.view3d.render_now()
    assert_not_blank(w.save_screenshot(artefacts / "window-3d-handles.png"))
    steps = len(w.session.stack.undo_names)

    # drag the tip handle 6 mm laterally (+x): the screw turns about its entry
    handles.start("tip")
    for k in range(1, 7):
        handles.moved("tip", tip + np.array([float(k), 0.0, 0.0]))
    handles.end()
    new_entry, new_tip = entry_and_tip(w.session.plan.implants[name])
    assert np.allclose(new_entry, entry, atol=1e-9)
    assert np.linalg.norm(new_tip - entry) == pytest.approx(np.linalg.norm(tip - entry))
    direction = (new_tip - entry) / np.linalg.norm(new_tip - entry)
    aim = tip + np.array([6.0, 0.0, 0.0]) - entry
    assert np.allclose(direction, aim / np.linalg.norm(aim), atol=1e-9)
    assert np.allclose(handles.widgets["tip"].GetCenter(), new_tip)
    assert len(w.session.stack.undo_names) == steps + 1

    # the entry handle slides the whole screw
    handles.start("entry")
    handles.moved("entry", new_entry + np.array([0.0, 0.0, 3.0]))
    handles.end()
    e2, t2 = entry_and_tip(w.session.plan.implants[name])
    assert np.allclose(e2 - new_entry, [0, 0, 3.0]) and np.allclose(t2 - new_tip, [0, 0, 3.0])
    w.undo()
    w.undo()
    assert np.allclose(entry_and_tip(w.session.plan.implants[name])[1], tip)
    panel.moveButton.setChecked(False)
    assert not handles.widgets["tip"].GetEnabled()
