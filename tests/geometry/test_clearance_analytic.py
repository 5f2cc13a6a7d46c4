"""The clearance engine against shapes with known distances: a screw beside a sphere."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from surgtwin.geometry import clearance as C
from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.sdf import StructureField
from surgtwin.imaging.volume import ImageGeometry

# on the 0.5 mm grid the surface lies half-way between the last voxel centre inside (10.0 mm
# along x) and the first outside (10.5 mm), the convention of a mask thresholded at half maximum
R_SPHERE = 10.25
R_SCREW = 3.25
LENGTH = 45.0


@pytest.fixture(scope="module")
def sphere():
    g = ImageGeometry((81, 81, 81), (0.5, 0.5, 0.5), (-20.0, -20.0, -20.0), np.eye(3))
    k, j, i = np.indices(g.shape)
    pts = g.index_to_lps(np.stack([i.ravel(), j.ravel(), k.ravel()], 1))
    mask = (np.linalg.norm(pts, axis=1) <= R_SPHERE).reshape(g.shape)
    ico = trimesh.creation.icosphere(subdivisions=6, radius=R_SPHERE)
    mesh = Mesh(ico.vertices, ico.faces, name="sphere", role="critical")
    return C.StructureField.from_mask(mask, g, surface=mesh, name="sphere"), mesh


@pytest.fixture(scope="module")
def screw():
    cyl = trimesh.creation.cylinder(radius=R_SCREW, height=LENGTH, sections=128)
    cyl.apply_translation([0.0, 0.0, LENGTH / 2])
    mesh = Mesh(cyl.vertices, cyl.faces, name="screw", role="implant")
    return C.ImplantSamples.from_mesh(mesh, axis=[[0, 0, 0], [0, 0, LENGTH]])


@pytest.mark.parametrize("offset", [20.0, 16.0, 14.0, 13.6])
def test_clearance_beside_a_sphere_equals_the_analytic_gap(sphere, screw, offset):
    """A screw parallel to z at distance ``offset`` from the sphere's centre, spanning its
    equator: the gap is offset - R_sphere - R_screw exactly."""
    field, mesh = sphere
    head, tip = np.array([offset, 0.0, -LENGTH / 2]), np.array([offset, 0.0, LENGTH / 2])
    pose = C.pose_from_axis(head, tip)
    expected = offset - R_SPHERE - R_SCREW
    live = C.live_clearance(field, screw, pose=pose)
    exact = C.exact_clearance(screw, pose, mesh)
    # the cylinder's 128 facets and the icosphere's facets are within 0.01 mm of the true shapes
    assert exact.min_clearance_mm == pytest.approx(expected, abs=0.05)
    assert live.min_clearance_mm == pytest.approx(exact.min_clearance_mm, abs=0.1)
    assert not live.collides and not exact.collides
    # the closest point on the sphere faces the screw
    assert live.closest_point_structure[0] == pytest.approx(R_SPHERE, abs=0.15)


@pytest.mark.parametrize("depth", [1.0, 2.5])
def test_penetration_depth_beside_a_sphere(sphere, screw, depth):
    field, _mesh = sphere
    offset = R_SPHERE + R_SCREW - depth
    pose = C.pose_from_axis(np.array([offset, 0, -LENGTH / 2]), np.array([offset, 0, LENGTH / 2]))
    live = C.live_clearance(field, screw, pose=pose)
    assert live.collides
    assert -live.min_clearance_mm == pytest.approx(depth, abs=0.1)
    assert live.breached_area_mm2 > 0
    assert C.breach_grade(-live.min_clearance_mm) == ("B" if depth < 2 else "C")
    assert isinstance(field, StructureField)
