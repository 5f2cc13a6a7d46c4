"""The Resect panel on the phantom: plane, box, sphere and lasso cuts, preview, apply, undo,
remove, and the margin around the L4 lesion."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import vtk
from guitools import assert_not_blank
from PyQt6.QtCore import Qt
from PyQt6.QtTest import QTest
from slice_mouse import click, drag

from testdata import REPO

pytestmark = pytest.mark.gui

TRUTH = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
L4 = TRUTH["levels"]["L4"]
LESION = TRUTH["lesion"]


def _panel(window, structure: str = "Bone", tool: str = "plane"):
    panel = window.show_panel("resect")
    panel.set_structure(structure)
    panel.set_tool(tool)
    return panel


def _wait_jobs(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.jobs, timeout=60_000)
    qtbot.wait(10)


def _preview(qtbot, window, panel) -> dict:
    panel.previewButton.click()
    _wait_jobs(qtbot, window)
    assert panel.previewing, panel.hintLabel.text()
    return panel.result()


def test_plane_cut_through_l4_body_preview_apply_undo_remove(sample_window, qtbot, artefacts):
    w = sample_window
    plan = w.session.plan
    panel = _panel(w)
    bone = plan.structures["Bone"]
    original = bone.mesh
    volume0 = abs(original.volume_mm3())
    voxels0 = plan.labelmap.voxel_count(bone.label_value)
    # set the plane with the 3-D handle: through the L4 body's centre, removing what is above
    handle = panel.plane_widget
    assert handle is not None
    handle.SetOrigin(*L4["body_centre"])
    handle.SetNormal(0.0, 0.0, 1.0)
    handle.InvokeEvent(vtk.vtkCommand.EndInteractionEvent)
    assert np.allclose(panel.point(), L4["body_centre"], atol=0.05)
    assert np.allclose(panel.normal(), (0, 0, 1), atol=1e-3)

    result = _preview(qtbot, w, panel)
    command = panel.prepared
    assert command.remaining.is_watertight() and command.resected.is_watertight()
    kept, removed = abs(command.remaining.volume_mm3()), abs(command.resected.volume_mm3())
    assert kept + removed == pytest.approx(volume0, rel=0.005)
    assert result["removed_mm3"] + result["remaining_mm3"] == pytest.approx(volume0, rel=0.005)
    # everything above the plane goes: L3, its discs' neighbours and the top half of L4
    assert command.resected.points[:, 2].min() >= L4["body_centre"][2] - 0.01
    assert command.remaining.points[:, 2].max() <= L4["body_centre"][2] + 0.01
    assert plan.structures["Bone"].mesh is original, "a preview must not change the plan"
    assert "mm³" in panel.removedLabel.text()
    assert_not_blank(w.save_screenshot(artefacts / "resect-plane-preview.png"))

    panel.applyButton.click()  # the previewed command, pushed as it is
    assert not w.jobs
    cut_name = command.cut.name
    assert list(plan.cuts) == [cut_name]
    assert plan.structures["Bone"].mesh is command.remaining
    assert plan.labelmap.voxel_count(bone.label_value) < voxels0
    assert panel.cutList.count() == 1 and cut_name in panel.cutList.item(0).text()
    assert "applied" in panel.resultBox.title()
    assert_not_blank(w.save_screenshot(artefacts / "resect-plane-applied.png"))

    w.undo()
    assert not plan.cuts and panel.cutList.count() == 0
    assert plan.structures["Bone"].mesh is original
    assert plan.labelmap.voxel_count(bone.label_value) == voxels0

    w.redo()
    assert panel.remove_cut(cut_name)
    assert not plan.cuts
    assert plan.structures["Bone"].mesh is original
    assert plan.labelmap.voxel_count(bone.label_value) == voxels0
    w.undo()  # the removal
    assert list(plan.cuts) == [cut_name]
    assert plan.structures["Bone"].mesh is command.remaining


def test_plane_from_a_line_on_a_slice(sample_window, qtbot):
    w = sample_window
    panel = _panel(w)
    axial = w.slice_views["axial"]
    z = float(L4["body_centre"][2])
    w.session.set_cursor((0.0, -23.0, z))
    panel.drawButton.setChecked(True)
    assert w.tool is panel.tool
    # a left-right line across the body, 10 mm in front of its centre: the front is removed
    drag(axial, (-30.0, -33.0, z), (30.0, -33.0, z))
    assert np.allclose(panel.point(), (0.0, -33.0, z), atol=0.05)
    assert np.allclose(panel.normal(), (0.0, -1.0, 0.0), atol=1e-3)
    result = _preview(qtbot, w, panel)
    assert panel.prepared.resected.points[:, 1].max() <= -33.0 + 0.01
    assert result["removed_mm3"] > 0
    panel.flip_normal()
    assert not panel.previewing, "changing the tool drops the stale preview"
    assert np.allclose(panel.normal(), (0.0, 1.0, 0.0), atol=1e-3)
    panel.drawButton.setChecked(False)
    assert w.tool is None


def test_box_around_the_lesion_reports_margin_and_removal(sample_window, qtbot, artefacts):
    w = sample_window
    plan = w.session.plan
    panel = _panel(w, tool="box")
    centre = np.array(LESION["centre"], dtype=float)
    # the lesion becomes a target structure, grown from the crosshair
    w.session.set_cursor(centre)
    panel.growTargetButton.click()
    _wait_jobs(qtbot, w)
    target = plan.structures["Target 1"]
    assert target.role == "target"
    assert abs(target.mesh.volume_mm3()) == pytest.approx(LESION["volume_mm3"], rel=0.15)
    assert "Target 1" in panel.targetsLabel.text()
    assert panel.structureCombo.findData("Target 1") < 0, "targets are not offered for cutting"

    # en bloc: a 22 mm box centred on the 6 mm lesion leaves a 5 mm margin
    panel.cursorButton.click()
    panel.set_box_size((22.0, 22.0, 22.0))
    result = _preview(qtbot, w, panel)
    assert result["target_removed"] is True
    assert result["margin_mm"] == pytest.approx(11.0 - LESION["radius_mm"], abs=0.6)
    assert "fully removed" in panel.targetLabel.text()
    assert panel.marginLabel.text().endswith("mm")
    assert_not_blank(w.save_screenshot(artefacts / "resect-box-lesion.png"))

    # an intralesional cut: part of the lesion stays behind
    panel.set_box_size((8.0, 8.0, 8.0))
    result = _preview(qtbot, w, panel)
    assert result["target_removed"] is False
    assert result["margin_mm"] < 0
    assert "NOT" in panel.targetLabel.text()

    panel.applyButton.click()
    assert len(plan.cuts) == 1
    cut = next(iter(plan.cuts.values()))
    assert cut.tool == "box" and cut.parameters["target_removed"] is False


def test_sphere_by_click_and_lasso_cuts(sample_window, qtbot, artefacts):
    w = sample_window
    panel = _panel(w, tool="sphere")
    axial = w.slice_views["axial"]
    centre = np.array(L4["body_centre"], dtype=float)
    w.session.set_cursor(centre)
    panel.drawButton.setChecked(True)
    drag(axial, centre, centre + np.array([8.0, 0.0, 0.0]))  # press the centre, drag the radius
    assert np.allclose(panel.point(), centre, atol=0.01)
    assert panel.radiusSpin.value() == pytest.approx(8.0, abs=0.05)
    result = _preview(qtbot, w, panel)
    # wholly inside the body: the removed part is the sphere itself
    assert result["removed_mm3"] == pytest.approx(4 / 3 * math.pi * 8.0**3, rel=0.005)

    # a square lasso on the axial view around the body, cut through (all levels)
    panel.set_tool("polygon")
    assert panel.drawButton.isChecked()
    square = [(-10.0, -30.0), (10.0, -30.0), (10.0, -16.0), (-10.0, -16.0)]
    for x, y in square[:-1]:
        click(axial, (x, y, centre[2]))
    click(axial, (30.0, 30.0, centre[2]))  # a slip: Backspace takes it back
    QTest.keyClick(axial, Qt.Key.Key_Backspace)
    click(axial, (*square[-1], centre[2]), double=True)
    assert panel.polygon is not None and len(panel.polygon) == 4
    assert panel.polygon_view == "axial"
    assert_not_blank(w.save_screenshot(artefacts / "resect-lasso.png"))
    result = _preview(qtbot, w, panel)
    resected = panel.prepared.resected
    lo, hi = resected.points.min(axis=0), resected.points.max(axis=0)
    assert lo[0] >= -10.01 and hi[0] <= 10.01 and lo[1] >= -30.01 and hi[1] <= -15.99
    assert hi[2] - lo[2] > 60, "a lasso without depth cuts through every level"
    assert result["removed_mm3"] > 0
    panel.drawButton.setChecked(False)
