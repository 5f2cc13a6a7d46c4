"""Tests of the implant placement helpers (snapping, moves, nudges, readouts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surgtwin.planning import placement as P
from surgtwin.planning.implants import Catalogue, Implant, angulation, pose_from_trajectory
from testdata import REPO


@pytest.fixture(scope="module")
def phantom():
    from surgtwin.geometry.sdf import StructureField
    from surgtwin.imaging import load
    from surgtwin.segmentation import presets

    gt = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
    vol = load(REPO / "sample_dicom", cache=None)
    bone = StructureField.from_mask(presets.bone(vol), vol.geometry, name="bone")
    return gt, bone


@pytest.fixture(scope="module")
def spec():
    return Catalogue.builtin()["pedicle-6.5x45"]


def _l4(gt, side="left"):
    s = gt["levels"]["L4"]["pedicle_screws"][side]
    return np.array(s["entry"]), np.array(s["target"])


def _off_line(p, a, b):
    u = (b - a) / np.linalg.norm(b - a)
    return float(np.linalg.norm(np.cross(p - a, u)))


# ---------------------------------------------------------------------------- snapping
@pytest.mark.parametrize("side", ["left", "right"])
def test_snap_from_5mm_outside_returns_to_surface(phantom, side):
    gt, bone = phantom
    entry, target = _l4(gt, side)
    u = (target - entry) / np.linalg.norm(target - entry)
    start = entry - 5.0 * u  # 5 mm posterior of the ideal entry, in the soft tissue
    assert bone.sample(start)[0][0] > 1.0  # outside (oblique surface)
    snapped = P.snap_entry_to_surface(start, target, bone)
    assert abs(bone.sample(snapped)[0][0]) < 0.05
    assert _off_line(snapped, start, target) < 1e-6
    # it moved forward by 5 mm, onto the ideal entry (measured: within 0.003 mm)
    assert np.dot(snapped - start, u) == pytest.approx(5.0, abs=0.1)
    assert np.linalg.norm(snapped - entry) < 0.1


def test_snap_from_inside_backs_out_to_the_same_surface(phantom):
    gt, bone = phantom
    entry, target = _l4(gt)
    u = (target - entry) / np.linalg.norm(target - entry)
    outside = P.snap_entry_to_surface(entry - 5.0 * u, target, bone)
    inside = P.snap_entry_to_surface(entry + 3.0 * u, target, bone)
    assert bone.sample(entry + 3.0 * u)[0][0] < 0
    assert abs(bone.sample(inside)[0][0]) < 0.05
    assert _off_line(inside, entry, target) < 1e-6
    assert np.linalg.norm(inside - outside) < 0.05


def test_snap_errors(phantom):
    gt, bone = phantom
    entry, target = _l4(gt)
    u = (target - entry) / np.linalg.norm(target - entry)
    with pytest.raises(P.PlacementError, match="no surface"):
        P.snap_entry_to_surface(entry - 40.0 * u, target, bone, max_search_mm=10.0)
    with pytest.raises(P.PlacementError, match="same point"):
        P.snap_entry_to_surface(entry, entry, bone)
    with pytest.raises(P.PlacementError, match="step_mm"):
        P.snap_entry_to_surface(entry, target, bone, step_mm=0.0)


# ---------------------------------------------------------------------------- moves
def test_rotate_about_entry_keeps_entry_and_turns_axial_angle(spec):
    gt = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
    for side, sign in (("left", -1.0), ("right", 1.0)):
        entry, target = _l4(gt, side)
        screw = Implant.on_trajectory(side, spec, entry, target)
        axial0, sagittal0 = angulation(screw)
        assert axial0 == pytest.approx(15.0, abs=1e-3)
        for angle in (1.0, 5.0, -7.5):
            pose = P.rotate_about_entry(screw.pose, (0, 0, 1), angle, screw.entry)
            moved = Implant(side, spec, pose)
            assert np.allclose(moved.entry, screw.entry, atol=1e-9)
            axial, sagittal = angulation(moved)
            # +angle about S (right-handed, L towards P) turns a left screw lateral
            assert axial - axial0 == pytest.approx(sign * angle, abs=1e-9)
            assert sagittal == pytest.approx(sagittal0, abs=1e-9)
            assert np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-12)


def test_translate_and_slide(spec):
    screw = Implant.on_trajectory("s", spec, (20.0, 10.0, 2.0), (8.0, -33.0, 2.0))
    moved = P.translate(screw.pose, (1.0, -2.0, 3.0))
    assert np.allclose(moved[:3, 3] - screw.pose[:3, 3], (1.0, -2.0, 3.0), atol=1e-12)
    assert np.array_equal(moved[:3, :3], screw.pose[:3, :3])
    slid = Implant("s", spec, P.slide_along_axis(screw.pose, 3.0))
    d_entry, d_tip = slid.entry - screw.entry, slid.tip - screw.tip
    assert np.allclose(d_entry, d_tip, atol=1e-12)
    # positive advances: along the insertion direction (entry towards tip), 3 mm
    assert np.allclose(d_entry, -3.0 * screw.axis, atol=1e-12)
    back = P.slide_along_axis(slid.pose, -3.0)
    assert np.allclose(back, screw.pose, atol=1e-12)


def test_moves_do_not_modify_their_input(spec):
    pose = pose_from_trajectory((0, 0, 0), (0, -40, 0), 45.0)
    before = pose.copy()
    P.translate(pose, (1, 1, 1))
    P.slide_along_axis(pose, 2.0)
    P.rotate_about_entry(pose, (1, 0, 0), 10.0, (0, 0, 0))
    P.nudge(pose, "L")
    assert np.array_equal(pose, before)


# ---------------------------------------------------------------------------- nudges
@pytest.mark.parametrize(
    ("letter", "delta"),
    [
        ("L", (0.5, 0, 0)),
        ("R", (-0.5, 0, 0)),
        ("P", (0, 0.5, 0)),
        ("A", (0, -0.5, 0)),
        ("S", (0, 0, 0.5)),
        ("I", (0, 0, -0.5)),
    ],
)
def test_nudge_translations_follow_patient_letters(spec, letter, delta):
    pose = pose_from_trajectory((20.0, 10.0, 2.0), (8.0, -33.0, 2.0), 45.0)
    moved = P.nudge(pose, letter)
    assert np.allclose(moved[:3, 3] - pose[:3, 3], delta, atol=1e-12)
    assert np.array_equal(moved[:3, :3], pose[:3, :3])
    assert np.allclose(P.nudge(pose, letter.lower(), 2.0)[:3, 3] - pose[:3, 3], 4 * np.array(delta))


@pytest.mark.parametrize("letter", list("LRAPSI"))
def test_360_one_degree_nudges_return_the_pose(spec, letter):
    screw = Implant.on_trajectory("s", spec, (20.0, 10.0, 2.0), (8.0, -33.0, 2.0))
    pose = screw.pose
    for _ in range(360):
        pose = P.nudge(pose, letter, rotate=True, entry=screw.entry)
        assert np.allclose(Implant("s", spec, pose).entry, screw.entry, atol=1e-9)
    assert np.allclose(pose, screw.pose, atol=1e-9)
    # one nudge is 1 degree; L and R turn opposite ways
    one = P.nudge(screw.pose, letter, rotate=True, entry=screw.entry)
    cos = np.clip((np.trace(one[:3, :3] @ screw.pose[:3, :3].T) - 1) / 2, -1, 1)
    assert np.degrees(np.arccos(cos)) == pytest.approx(1.0, abs=1e-9)


def test_nudge_left_and_right_rotations_cancel(spec):
    screw = Implant.on_trajectory("s", spec, (20.0, 10.0, 2.0), (8.0, -33.0, 2.0))
    there = P.nudge(screw.pose, "L", rotate=True, entry=screw.entry)
    back = P.nudge(there, "R", rotate=True, entry=screw.entry)
    assert np.allclose(back, screw.pose, atol=1e-12)


def test_nudge_errors():
    with pytest.raises(P.PlacementError, match="unknown direction"):
        P.nudge(np.eye(4), "X")
    with pytest.raises(P.PlacementError, match="entry"):
        P.nudge(np.eye(4), "L", rotate=True)
    with pytest.raises(P.PlacementError, match="axis"):
        P.rotate_about_entry(np.eye(4), (0, 0, 0), 5.0, (0, 0, 0))


# ---------------------------------------------------------------------------- readouts
def test_trajectory_readout(phantom, spec):
    gt, bone = phantom
    entry, target = _l4(gt)
    screw = Implant.on_trajectory("L4 left", spec, entry, target)
    r = P.trajectory_readout(screw)
    assert r["axial_deg"] == pytest.approx(15.0, abs=1e-3)
    assert r["sagittal_deg"] == pytest.approx(0.0, abs=1e-9)
    assert r["length_mm"] == 45.0
    assert np.allclose(r["entry_lps"], entry, atol=1e-9)
    assert np.allclose(
        r["tip_lps"], entry + 45.0 * (target - entry) / np.linalg.norm(target - entry)
    )
    assert r["in_bone_mm"] is None
    r = P.trajectory_readout(screw, bone)
    # the ideal entry is on the posterior surface: nearly all of the 45 mm axis is in bone
    assert 43.0 < r["in_bone_mm"] <= 45.0
    outside = Implant("out", spec, P.slide_along_axis(screw.pose, -10.0))
    assert P.trajectory_readout(outside, bone)["in_bone_mm"] == pytest.approx(
        r["in_bone_mm"] - 10.0, abs=0.5
    )


def test_nearest_length():
    cat = Catalogue.builtin()
    assert P.nearest_length(cat, "pedicle_screw", 6.5, 44.5) == 45.0
    gt = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
    entry, target = _l4(gt)
    assert P.nearest_length(cat, "pedicle_screw", 6.5, np.linalg.norm(target - entry)) == 45.0
    assert P.nearest_length(cat, "pedicle_screw", 6.5, 42.5) == 40.0  # tie: shorter
    assert P.nearest_length(cat, "pedicle_screw", None, 200.0) == max(
        s.length_mm for s in cat.of_kind("pedicle_screw")
    )
    with pytest.raises(KeyError):
        P.nearest_length(cat, "no_such_kind", 6.5, 40.0)
