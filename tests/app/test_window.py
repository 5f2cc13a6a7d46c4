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
