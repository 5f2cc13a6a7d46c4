"""Cuts as undoable plan edits (planning.cuts) on the bundled phantom: the surface and the label
voxels are cut, undo/redo restore the plan exactly, the plan file and the checks see the cut."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surgtwin.geometry.resection import ResectionError
from surgtwin.planning import case, checks, cuts
from surgtwin.planning.commands import CommandStack, LabelEditCommand
from surgtwin.planning.plan import Plan, mesh_digest
from surgtwin.planning.planfile import load_plan, save_plan
from surgtwin.segmentation.labelmap import LabelMap
from testdata import REPO

PHANTOM = REPO / "sample_dicom"


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((PHANTOM / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def built() -> Plan:
    return case.build_plan(PHANTOM)


@pytest.fixture
def plan(built) -> Plan:
    """A copy of the phantom's plan with its own label map (structures are immutable)."""
    lm = built.labelmap
    new = Plan(built.name, built.case, LabelMap(lm.geometry, lm.array.copy(), lm.labels.values()))
    for s in built.structures.values():
        new.structures.add(s)
    return new


def _centres(lm: LabelMap, mask: np.ndarray) -> np.ndarray:
    """LPS mm of the centres of the voxels of a (k, j, i) mask."""
    k, j, i = np.nonzero(mask)
    return lm.geometry.index_to_lps(np.stack([i, j, k], axis=1).astype(float))


def _state(plan: Plan) -> tuple[dict, np.ndarray, str]:
    return plan.to_dict(), plan.labelmap.array.copy(), mesh_digest(plan.structures["Bone"].mesh)


def _assert_state(plan: Plan, state: tuple[dict, np.ndarray, str]) -> None:
    doc, arr, digest = state
    assert plan.to_dict() == doc
    np.testing.assert_array_equal(plan.labelmap.array, arr)
    assert mesh_digest(plan.structures["Bone"].mesh) == digest


def test_plane_cut_through_l4_cuts_surface_and_voxels_and_undoes_exactly(plan):
    lm = plan.labelmap
    bone = plan.structures["Bone"]
    canal_voxels = lm.voxel_count("Spinal canal")
    original = bone.mesh
    before = _state(plan)
    z = 0.5  # through the L4 body, between two slices (slices at whole mm)
    command = cuts.plane_cut(plan, "Bone", [0.0, -23.0, z], [0.0, 0.0, 1.0])
    _assert_state(plan, before)  # preparing the cut changes nothing
    stack = CommandStack(plan)
    stack.push(command)
    assert stack.undo_names == ["Cut Bone (plane)"]
    # the undo record holds both surfaces and the voxels' delta in the box above the plane
    # (slices from z = 1 mm up: k = 61 on), never a copy of the label map
    (edit,) = [c.edit for c in command.commands if isinstance(c, LabelEditCommand)]
    assert edit.box[0].start == 61 and edit.box[0].stop <= lm.array.shape[0]
    surfaces = sum(m.points.nbytes + m.faces.nbytes for m in (original, command.remaining))
    assert surfaces < command.nbytes < surfaces + lm.array.nbytes
    p = command.cut.parameters
    # (a) the cut record, volumes from the surface
    assert plan.cuts["Cut 1"] is command.cut and command.cut.tool == "plane"
    assert p["point"] == [0.0, -23.0, z] and p["normal"] == [0.0, 0.0, 1.0]
    assert p["structure_mm3"] == pytest.approx(original.volume_mm3(), rel=1e-9)
    assert p["removed_mm3"] + p["remaining_mm3"] == pytest.approx(p["structure_mm3"], rel=0.005)
    # L3 and the upper half of L4 lie above the plane
    assert 0.3 * p["structure_mm3"] < p["removed_mm3"] < 0.6 * p["structure_mm3"]
    # (b) the structure's surface is the remaining part: closed, below the plane
    cut_mesh = plan.structures["Bone"].mesh
    assert cut_mesh.is_watertight()
    assert cut_mesh.volume_mm3() == pytest.approx(p["remaining_mm3"], rel=1e-6)
    assert cut_mesh.points[:, 2].max() <= z + 1e-6
    assert original.points[:, 2].max() > 40  # L3 was there
    # (c) the label voxels above the plane are cleared, and only those
    was = before[1] == bone.label_value
    now = lm.array == bone.label_value
    removed = was & ~now
    assert not (now & ~was).any()
    assert removed.sum() == p["voxels_removed"] > 0
    assert (_centres(lm, removed)[:, 2] > z).all()
    assert (_centres(lm, now)[:, 2] < z).all()
    assert p["voxels_removed"] == int((_centres(lm, was)[:, 2] > z).sum())
    assert p["voxels_removed_mm3"] == pytest.approx(p["removed_mm3"], rel=0.05)
    assert lm.voxel_count("Spinal canal") == canal_voxels
    after = _state(plan)
    # undo: the identical plan; redo: the identical cut plan
    assert stack.undo() == "Cut Bone (plane)"
    _assert_state(plan, before)
    assert plan.structures["Bone"].mesh is original
    assert stack.redo() == "Cut Bone (plane)"
    _assert_state(plan, after)
    stack.undo()
    _assert_state(plan, before)


def test_check_sees_the_cut_bone(plan, truth):
    """An ideal L4 screw holds 45 mm of axis in bone; with the vertebral bodies cut off in front
    of y = -20 mm, only the part behind the plane (30 mm along y: 30 / cos 15° = 31.06 mm of
    axis) does, and the screw's tip now sticks out of the bone. Undo brings the purchase back."""
    s = truth["levels"]["L4"]["pedicle_screws"]["left"]
    case.place_implant(
        plan, "pedicle_screw", s["entry"], s["target"], diameter_mm=6.5, length_mm=45
    )
    geo = case.CaseGeometry(plan)

    def bone_row():
        (implant,) = checks.check_plan(plan, geo).implants
        return next(c for c in implant.checks if c.structure == "Bone")

    row = bone_row()
    assert row.purchase["axis_in_bone_mm"] == pytest.approx(45.0, abs=0.5)
    assert row.grade == "A" and row.status == "ok"
    stack = CommandStack(plan)
    stack.push(cuts.plane_cut(plan, "Bone", [0.0, -20.0, 0.0], [0.0, -1.0, 0.0], geometry=geo))
    cut = bone_row()
    expected = 30.0 / np.cos(np.radians(15.0))
    assert cut.purchase["axis_in_bone_mm"] == pytest.approx(expected, abs=0.5)
    assert cut.purchase["surface_in_bone_fraction"] < row.purchase["surface_in_bone_fraction"]
    # the tip is 13.5 mm in front of the plane: out of the bone
    assert cut.grade == "E" and cut.status == "fail" and cut.min_clearance_mm < -10.0
    assert not checks.check_plan(plan, geo).to_dict()["passed"]
    stack.undo()  # the same CaseGeometry follows the plan back
    again = bone_row()
    assert again.purchase == row.purchase and again.grade == "A"


def test_box_and_sphere_cuts_inside_the_l4_body(plan, truth):
    lm = plan.labelmap
    value = plan.structures["Bone"].label_value
    centre = np.array(truth["levels"]["L4"]["body_centre"])
    stack = CommandStack(plan)
    box = cuts.cut_structure(plan, "Bone", "box", {"centre": centre, "size": [10, 10, 10]})
    stack.push(box)
    p = box.cut.parameters
    assert p["removed_mm3"] == pytest.approx(1000.0, rel=1e-6)  # wholly inside the body
    assert p["remaining_mm3"] == pytest.approx(p["structure_mm3"] - 1000.0, rel=1e-9)
    # the voxels whose centres lie inside the box, counted here independently
    after = lm.array == value
    stack.undo()
    before = lm.array == value
    stack.redo()
    inside = np.all(np.abs(_centres(lm, before) - centre) < 5.0, axis=1)
    assert p["voxels_removed"] == int(inside.sum()) == int(before.sum() - after.sum())
    assert int(inside.sum()) == 13 * 12 * 9  # 0.8 x 0.8 x 1 mm voxels, centres strictly inside
    sphere = cuts.cut_structure(
        plan, "Bone", "sphere", {"centre": centre + np.array([0, 0, 9]), "radius": 3}
    )
    stack.push(sphere)
    q = sphere.cut.parameters
    assert q["removed_mm3"] == pytest.approx(4 / 3 * np.pi * 27, rel=2e-3)
    assert q["structure_mm3"] == pytest.approx(p["remaining_mm3"], rel=1e-9)  # the box is gone
    assert plan.structures["Bone"].mesh.is_watertight()
    assert list(plan.cuts) == ["Cut 1", "Cut 2"]


def test_polygon_cut_from_the_core(plan, truth):
    """A 10 x 10 mm square drawn in an axial view at z = -5 mm, cut 10 mm deep (looking +z): the
    same 1000 mm³ block as the box."""
    c = np.array(truth["levels"]["L4"]["body_centre"])
    square = [c + np.array([dx, dy, -5.0]) for dx, dy in ((-5, -5), (5, -5), (5, 5), (-5, 5))]
    command = cuts.cut_structure(
        plan, "Bone", "polygon", {"points": square, "direction": [0, 0, 1], "depth": 10.0}
    )
    command.do()
    assert command.cut.parameters["removed_mm3"] == pytest.approx(1000.0, rel=1e-6)
    assert command.cut.parameters["voxels_removed"] == 13 * 12 * 9
    command.undo()
    assert "Cut 1" not in plan.cuts


def test_cut_plan_saves_and_loads_the_cut_structure(plan, tmp_path):
    CommandStack(plan).push(cuts.plane_cut(plan, "Bone", [0, 0, 0.5], [0, 0, 1]))
    path = save_plan(plan, tmp_path / "cut.surgplan")
    loaded = load_plan(path)
    assert loaded.to_dict() == plan.to_dict()
    np.testing.assert_array_equal(loaded.labelmap.array, plan.labelmap.array)
    mesh = loaded.structures["Bone"].mesh
    assert mesh_digest(mesh) == mesh_digest(plan.structures["Bone"].mesh)
    assert mesh.is_watertight() and mesh.points[:, 2].max() <= 0.5 + 1e-6
    assert mesh.metadata["resection"] == "remaining"


def test_cut_errors(plan):
    with pytest.raises(case.CaseError, match="does not cut"):
        cuts.plane_cut(plan, "Bone", [0, 0, 500], [0, 0, 1])
    with pytest.raises(case.CaseError, match="removes all"):
        cuts.plane_cut(plan, "Bone", [0, 0, -500], [0, 0, 1])
    with pytest.raises(case.CaseError, match="unknown cutting tool"):
        cuts.cut_structure(plan, "Bone", "saw", {})
    with pytest.raises(case.CaseError, match="Liver"):
        cuts.plane_cut(plan, "Liver", [0, 0, 0], [0, 0, 1])
    with pytest.raises(ResectionError, match="centre"):
        cuts.cut_structure(plan, "Bone", "sphere", {"radius": 3})
    with pytest.raises(ResectionError, match="radius"):
        cuts.cut_structure(plan, "Bone", "sphere", {"centre": [0, 0, 0], "radius": -1})
    CommandStack(plan).push(cuts.plane_cut(plan, "Bone", [0, 0, 0.5], [0, 0, 1], name="top"))
    with pytest.raises(case.CaseError, match="exists already"):
        cuts.plane_cut(plan, "Bone", [0, 0, -20.5], [0, 0, -1], name="top")
