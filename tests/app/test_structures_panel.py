"""The Structures panel on the phantom as ``make run`` opens it (bone, spinal canal, the example
L4 left screw): margins, roles, visibility, colours, names, mesh import and removal, each an
undo step that the 3-D view, the slices and the live clearance follow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pyvista as pv
from guitools import assert_not_blank
from PyQt6.QtCore import Qt

from surgtwin.app.live_controller import STATUS_COLOURS
from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.mesh_export import export_meshes
from surgtwin.planning.case import CANAL_NAME
from testdata import REPO

pytestmark = pytest.mark.gui

TRUTH = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
SCREW = "L4 left pedicle screw"


@pytest.fixture
def structures(sample_window):
    return sample_window, sample_window.show_panel("structures")


def actor_of(w, name):
    return w.view3d._structure_actors[name][0]


def test_canal_margin_2_to_4_mm_turns_the_screw_to_warn(structures, qtbot, artefacts):
    w, panel = structures
    plan = w.session.plan
    panel.select(CANAL_NAME)
    assert panel.current_name() == CANAL_NAME
    assert panel.marginSpin.value() == 2.0  # critical structures default to 2 mm
    canal = next(r for r in w.live.readings[SCREW] if r.structure == CANAL_NAME)
    # the ideal screw clears the canal by about 2.9 mm: ok at 2 mm, within a 4 mm margin
    assert 2.5 < canal.clearance_mm < 3.5
    assert w.live.status(SCREW) == "ok"
    steps = len(w.session.stack.undo_names)
    panel.marginSpin.setValue(4.0)
    assert plan.structures[CANAL_NAME].margin_mm == 4.0
    assert w.session.stack.undo_names[steps:] == [f"Set safety margin of {CANAL_NAME} to 4 mm"]
    assert w.live.status(SCREW) == "warn"
    colour = w.view3d._implant_actors[SCREW].GetProperty().GetColor()
    assert colour == pytest.approx(STATUS_COLOURS["warn"])
    row = panel._row_of(CANAL_NAME)
    assert panel.structureTable.item(row, 3).text() == "4 mm"
    assert "Within margin" in w.panels["implants"].statusLabel.text()
    shot = w.save_screenshot(artefacts / "structures-canal-margin.png")
    assert_not_blank(shot)
    w.undo()
    assert plan.structures[CANAL_NAME].margin_mm == 2.0
    assert panel.marginSpin.value() == 2.0
    assert w.live.status(SCREW) == "ok"


def test_visibility_colour_role_are_undoable_and_shown(structures, qtbot):
    w, panel = structures
    plan, lm = w.session.plan, w.session.plan.labelmap
    row = panel._row_of("Bone")
    # visibility: the table's tick box -> label and structure, 3-D actor and slice overlay
    panel.structureTable.item(row, 0).setCheckState(Qt.CheckState.Unchecked)
    assert not plan.structures["Bone"].visible and not lm.label("Bone").visible
    assert not actor_of(w, "Bone").GetVisibility()
    assert w.slice_views["axial"]._label_lut()[lm.label("Bone").value][3] == 0
    w.undo()
    assert plan.structures["Bone"].visible and actor_of(w, "Bone").GetVisibility()
    # colour
    panel.set_colour("Bone", (1.0, 0.0, 0.0))
    assert actor_of(w, "Bone").GetProperty().GetColor() == pytest.approx((1.0, 0.0, 0.0))
    assert lm.label("Bone").color == (1.0, 0.0, 0.0)
    w.undo()
    assert actor_of(w, "Bone").GetProperty().GetColor() != pytest.approx((1.0, 0.0, 0.0))
    # opacity
    panel.select("Bone")
    panel.opacitySpin.setValue(40)
    assert actor_of(w, "Bone").GetProperty().GetOpacity() == pytest.approx(0.4)
    w.undo()
    assert actor_of(w, "Bone").GetProperty().GetOpacity() == pytest.approx(1.0)
    # role: a canal that is no longer guarded drops out of the screw's readout
    panel.select(CANAL_NAME)
    panel.roleCombo.setCurrentIndex(panel.roleCombo.findData("other"))
    panel.roleCombo.activated.emit(panel.roleCombo.currentIndex())
    s = plan.structures[CANAL_NAME]
    assert s.role == "other" and s.margin_mm == 0.0 and str(lm.label(CANAL_NAME).role) == "other"
    assert w.session.stack.undo_names[-1] == f"Make {CANAL_NAME} other"
    assert w.live.status(SCREW) is None
    w.undo()
    assert plan.structures[CANAL_NAME].role == "critical"
    assert plan.structures[CANAL_NAME].margin_mm == 2.0
    assert w.live.status(SCREW) == "ok"


def test_rename_follows_the_label_in_one_step(structures, qtbot):
    w, panel = structures
    plan, lm = w.session.plan, w.session.plan.labelmap
    panel.select(CANAL_NAME)
    panel.nameEdit.setText("Canal")
    qtbot.keyClick(panel.nameEdit, Qt.Key.Key_Return)
    assert "Canal" in plan.structures and CANAL_NAME not in plan.structures
    assert lm.label("Canal").value == plan.structures["Canal"].label_value
    assert panel.current_name() == "Canal"
    assert w.session.stack.undo_names[-1] == f"Rename {CANAL_NAME} to Canal"
    assert not panel.rename("Canal", "bone")  # taken (names are case-insensitive)
    w.undo()
    assert CANAL_NAME in plan.structures and lm.label(CANAL_NAME)


def test_add_structure_from_a_mesh_file_and_remove_it(structures, qtbot, tmp_path, artefacts):
    w, panel = structures
    plan = w.session.plan
    ball = pv.Sphere(radius=6.0, center=(30.0, 20.0, 10.0), theta_resolution=24)
    mesh = Mesh.from_pyvista(ball, name="Lesion", color=(0.8, 0.3, 0.8))
    (path,) = export_meshes([mesh], tmp_path, "stl", "LPS")
    steps = len(w.session.stack.undo_names)
    panel.add_mesh_file(path, "LPS")
    qtbot.waitUntil(lambda: not w.jobs, timeout=60_000)
    assert w.last_error is None, w.last_error
    name = panel.current_name()
    s = plan.structures[name]
    assert s.source == "mesh" and s.mesh.is_watertight()
    assert np.asarray(s.mesh.points).mean(axis=0) == pytest.approx((30.0, 20.0, 10.0), abs=0.2)
    assert name in w.view3d._structure_actors
    assert len(w.session.stack.undo_names) == steps + 1
    shot = w.save_screenshot(artefacts / "structures-panel.png")
    assert_not_blank(shot)
    qtbot.mouseClick(panel.removeButton, Qt.MouseButton.LeftButton)
    assert name not in plan.structures and name not in w.view3d._structure_actors
    w.undo()
    assert plan.structures[name].source == "mesh" and name in w.view3d._structure_actors
