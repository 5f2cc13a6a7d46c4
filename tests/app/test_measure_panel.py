"""The Measure panel on the phantom: distances and angles by clicks on the slices and on the
3-D surfaces, saved in the plan, undoable; the distance map of the bone to the canal."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from guitools import assert_not_blank
from slice_mouse import click

from testdata import REPO

pytestmark = pytest.mark.gui

TRUTH = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
SCREWS = TRUTH["levels"]["L4"]["pedicle_screws"]
HALF_VOXEL_MM = 0.5 * min(TRUTH["image"]["spacing"])


def _axial_at(window, z: float):
    window.session.set_cursor((0.0, 0.0, z))
    view = window.slice_views["axial"]
    assert view.slice_position_mm() == pytest.approx(z, abs=1e-6)
    return view


def test_distance_between_the_l4_screw_entries_by_clicks(sample_window, artefacts):
    w = sample_window
    plan = w.session.plan
    panel = w.show_panel("measure")
    left, right = (np.array(SCREWS[s]["entry"], dtype=float) for s in ("left", "right"))
    axial = _axial_at(w, float(left[2]))
    panel.distanceButton.click()
    assert w.tool is panel.tools["distance"]
    click(axial, left)
    assert not plan.measurements, "one click is half a distance"
    click(axial, right)
    (m,) = plan.measurements.values()
    assert m.kind == "distance" and m.name == "Distance 1"
    assert m.value == pytest.approx(float(np.linalg.norm(right - left)), abs=HALF_VOXEL_MM)
    assert panel.measurementList.count() == 1
    assert panel.measurementList.item(0).text() == f"Distance 1: {m.value:.1f} mm"
    assert_not_blank(w.save_screenshot(artefacts / "measure-distance.png"))

    w.undo()
    assert not plan.measurements and panel.measurementList.count() == 0
    w.redo()
    assert list(plan.measurements) == ["Distance 1"]
    panel.measurementList.setCurrentRow(0)
    panel.removeButton.click()
    assert not plan.measurements
    w.undo()
    assert list(plan.measurements) == ["Distance 1"]
    panel.distanceButton.click()
    assert w.tool is None


def test_angle_of_three_clicked_points(sample_window):
    w = sample_window
    plan = w.session.plan
    panel = w.show_panel("measure")
    left, right = (np.array(SCREWS[s]["entry"], dtype=float) for s in ("left", "right"))
    vertex = np.array([0.0, -20.0, left[2]])
    axial = _axial_at(w, float(left[2]))
    panel.angleButton.click()
    for p in (left, vertex, right):
        click(axial, p)
    (m,) = plan.measurements.values()
    u, v = left - vertex, right - vertex
    expected = math.degrees(math.acos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v)))
    assert m.kind == "angle"
    assert m.value == pytest.approx(expected, abs=0.5)
    assert panel.measurementList.item(0).text().endswith("°")
    panel.angleButton.click()


def test_distance_by_clicks_on_the_3d_surface(sample_window, qtbot, artefacts):
    w = sample_window
    plan = w.session.plan
    panel = w.show_panel("measure")
    view3d = w.view3d
    view3d.render_now()
    renderer = view3d.plotter.renderer
    mesh = plan.structures["Bone"].mesh
    cam = np.array(renderer.GetActiveCamera().GetPosition())
    # two bone vertices nearest the camera in two halves of the spine: surely visible
    order = np.argsort(np.linalg.norm(mesh.points - cam, axis=1))
    upper = next(mesh.points[i] for i in order if mesh.points[i][2] > 10)
    lower = next(mesh.points[i] for i in order if mesh.points[i][2] < -10)
    panel.distanceButton.click()
    picked = []
    for p in (upper, lower):
        renderer.SetWorldPoint(*p, 1.0)
        renderer.WorldToDisplay()
        x, y, _z = renderer.GetDisplayPoint()
        point = view3d.pick(round(x), round(y))
        assert point is not None
        assert np.linalg.norm(point - p) < 1.5, "the click lands on the surface under it"
        picked.append(point)
        view3d.picked.emit(point)  # what a click without drag emits
    (m,) = plan.measurements.values()
    assert np.allclose(m.points, picked)
    assert m.value == pytest.approx(float(np.linalg.norm(upper - lower)), abs=2.0)
    assert len(panel._actors) == 2  # the line and its label over the 3-D scene
    qtbot.wait(50)
    assert_not_blank(w.save_screenshot(artefacts / "measure-3d.png"))
    panel.distanceButton.click()


def test_distance_map_of_the_bone_to_the_canal(sample_window, qtbot, artefacts):
    w = sample_window
    panel = w.show_panel("measure")
    dmap = panel.distance_map
    assert panel.surfaceCombo.currentData() == "Bone"
    assert panel.otherCombo.currentData() == "structure:Spinal canal"
    panel.showMapButton.click()
    qtbot.waitUntil(lambda: dmap.shown, timeout=60_000)
    values = dmap.scalars()
    assert len(values) == len(w.session.plan.structures["Bone"].mesh.points)
    # the canal runs through the vertebral foramina: the bone touches it
    assert -1.0 < float(values.min()) < 1.0
    assert float(values.max()) > 20.0
    bar = "Distance to Spinal canal (mm)"
    assert bar in w.view3d.plotter.scalar_bars
    assert "Closest" in panel.mapLabel.text()
    assert_not_blank(w.save_screenshot(artefacts / "measure-distance-map.png"))

    # to the example screw: recomputed from its surface and pose
    panel.otherCombo.setCurrentIndex(panel.otherCombo.findData("implant:L4 left pedicle screw"))
    panel.showMapButton.click()
    qtbot.waitUntil(lambda: dmap.result is not None and dmap.result.other.startswith("implant"))
    assert np.isfinite(dmap.scalars()).all()
    assert "Distance to L4 left pedicle screw (mm)" in w.view3d.plotter.scalar_bars
    assert bar not in w.view3d.plotter.scalar_bars

    panel.clearMapButton.click()
    assert not dmap.shown and not w.view3d.plotter.scalar_bars
    full, _lod, visible = w.view3d._structure_actors["Bone"]
    assert visible and full.GetVisibility()
