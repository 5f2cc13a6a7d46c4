"""Live clearance of a moving implant (the app's readout) against label and mesh structures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pyvista as pv

from surgtwin.geometry.mesh import Mesh
from surgtwin.planning.case import CaseGeometry, build_plan, place_implant
from surgtwin.planning.checks import entry_and_tip
from surgtwin.planning.live import live_readings, worst_status
from surgtwin.planning.plan import Structure
from testdata import REPO

TRUTH = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def plan():
    plan = build_plan(REPO / "sample_dicom")
    screw = TRUTH["levels"]["L4"]["pedicle_screws"]["left"]
    place_implant(
        plan,
        "pedicle_screw",
        screw["entry"],
        screw["target"],
        diameter_mm=6.5,
        length_mm=45,
        name="S",
    )
    return plan


def _fields(plan):
    geo = CaseGeometry(plan)
    return {s.name: geo.field(s) for s in plan.structures.values()}


def test_ideal_screw_reads_the_analytic_canal_clearance(plan):
    readings = live_readings(plan, plan.implants["S"], _fields(plan))
    canal = next(r for r in readings if r.role == "critical")
    truth = TRUTH["levels"]["L4"]["pedicle_screws"]["left"]["min_canal_distance_mm"] - 3.25
    assert canal.clearance_mm == pytest.approx(truth, abs=0.1)
    assert canal.status == "ok" and canal.grade == "A" and not canal.collides
    bone = next(r for r in readings if r.role == "bone")
    assert bone.grade == "A" and bone.status == "ok"
    assert worst_status(readings) == "ok"


def test_a_mesh_structure_gets_a_field_and_a_live_reading(plan):
    """A critical structure imported as a surface (a nerve, a vessel) is voxelised on the
    plan's grid for its distance field: the live readout sees it like a segmented one."""
    entry, tip = entry_and_tip(plan.implants["S"])
    axis = (tip - entry) / np.linalg.norm(tip - entry)
    side = np.cross(axis, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    middle = (entry + tip) / 2
    centre = middle + 10.0 * side  # 10 mm from the axis, beside the screw's middle
    ball = pv.Sphere(radius=4.0, center=centre, theta_resolution=96, phi_resolution=96)
    mesh = Mesh.from_pyvista(ball.triangulate(), name="nerve")
    with plan.batch():
        plan.structures.add(Structure("Nerve", "critical", source="mesh", mesh=mesh))
    try:
        fields = _fields(plan)
        assert fields["Nerve"] is not None
        readings = live_readings(plan, plan.implants["S"], fields)
        nerve = next(r for r in readings if r.structure == "Nerve")
        # axis-to-centre 10 mm, minus the screw's 3.25 mm radius and the ball's 4 mm
        assert nerve.clearance_mm == pytest.approx(10.0 - 3.25 - 4.0, abs=0.15)
        assert nerve.status == "ok"
        assert np.linalg.norm(nerve.closest_structure - centre) == pytest.approx(4.0, abs=0.1)
        # closer than the 2 mm margin once moved 1.5 mm towards it
        moved = plan.implants["S"].pose.copy()
        moved[:3, 3] += 1.5 * side
        near = live_readings(plan, plan.implants["S"].with_pose(moved), fields)
        nerve = next(r for r in near if r.structure == "Nerve")
        assert nerve.clearance_mm == pytest.approx(10.0 - 1.5 - 3.25 - 4.0, abs=0.15)
        assert nerve.status == "warn"
    finally:
        plan.structures.remove("Nerve")
