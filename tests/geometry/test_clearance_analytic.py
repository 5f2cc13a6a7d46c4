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


# ---------------------------------------------------------------------------- penetrating volume
def _polygon_area(n: int, r: float) -> float:
    return 0.5 * n * r * r * np.sin(2 * np.pi / n)


def _tip_in_sphere_mm3(r_sphere: float, r_cyl: float, z0: float) -> float:
    """Volume of a sphere (centre 0) inside a cylinder along +z through the centre, from its
    flat end at z0 outwards: int_0^a 2 pi rho (sqrt(R^2 - rho^2) - z0) d rho."""
    return 2 * np.pi / 3 * (r_sphere**3 - (r_sphere**2 - r_cyl**2) ** 1.5) - np.pi * r_cyl**2 * z0


def _graze_sphere_mm3(r_sphere: float, r_cyl: float, e: float, n: int = 2_000_000) -> float:
    """Volume of a sphere (centre 0) inside an infinite cylinder parallel to z whose axis is ``e``
    from the centre: int 2 sqrt(R^2 - rho^2) 2 phi(rho) rho d rho over the circles of radius
    rho about the centre, phi the half angle of each within the cylinder's disc (midpoint
    rule; 1e-6 relative)."""
    lo = max(e - r_cyl, 0.0)
    h = (r_sphere - lo) / n
    rho = lo + (np.arange(n) + 0.5) * h
    cos_phi = np.clip((rho**2 + e**2 - r_cyl**2) / (2 * rho * e), -1.0, 1.0)
    return float(np.sum(2 * np.sqrt(r_sphere**2 - rho**2) * 2 * np.arccos(cos_phi) * rho) * h)


@pytest.mark.parametrize("depth", [1.0, 2.0, 5.0])
def test_penetrating_volume_of_a_screw_tip_in_a_sphere(sphere, screw, depth):
    """The screw's flat tip pushed ``depth`` mm along a radius into the sphere: 24.5, 57.7 and
    157.2 mm³ (counting interior samples 1.25 mm apart: 15 %, 19 % and 5 % off)."""
    field, mesh = sphere
    z0 = R_SPHERE - depth
    pose = C.pose_from_axis(np.array([0.0, 0.0, z0]), np.array([0.0, 0.0, z0 + 1.0]))
    expected = _tip_in_sphere_mm3(R_SPHERE, R_SCREW, z0)
    live = C.live_clearance(field, screw, pose=pose)
    exact = C.exact_clearance(screw, pose, mesh)
    assert live.penetrating_volume_mm3 == pytest.approx(expected, rel=0.02)
    assert exact.penetrating_volume_mm3 == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize("depth", [1.0, 1.5, 2.5])
def test_penetrating_volume_of_a_screw_grazing_a_sphere(sphere, screw, depth):
    """The screw parallel to z across the sphere's equator, its side ``depth`` mm inside: a
    thin sliver of 15.2, 33.5 and 89.1 mm³ (counting interior samples 1.25 mm apart: 36 %, 7 %
    and 5 % off)."""
    field, mesh = sphere
    e = R_SPHERE + R_SCREW - depth
    pose = C.pose_from_axis(np.array([e, 0, -LENGTH / 2]), np.array([e, 0, LENGTH / 2]))
    expected = _graze_sphere_mm3(R_SPHERE, R_SCREW, e)
    live = C.live_clearance(field, screw, pose=pose)
    exact = C.exact_clearance(screw, pose, mesh)
    assert live.penetrating_volume_mm3 == pytest.approx(expected, rel=0.02)
    assert exact.penetrating_volume_mm3 == pytest.approx(expected, rel=0.02)


@pytest.mark.parametrize(("tilt_deg", "depth"), [(0.0, 2.0), (30.0, 2.0), (55.0, 4.0)])
def test_penetrating_volume_of_a_tilted_screw_through_a_plane(screw, tilt_deg, depth):
    """A half-space (z < 0) and the screw's tip ``depth`` mm below its surface, tilted: the
    plane cuts the cylinder across, so the volume below is exactly area x depth / cos(tilt)
    (counting interior samples: 25 % off for the upright screw 2 mm deep)."""
    g = 0.7
    n = int(80 / g) + 1
    zz = -40.0 + g * np.arange(n)
    values = np.broadcast_to(zz[:, None, None], (n, n, n))  # (k, j, i): distance = z
    field = StructureField(values, (-40.0, -40.0, -40.0), (g, g, g), np.eye(3), 10.0, "plane")
    box = trimesh.creation.box(extents=(300.0, 300.0, 150.0))
    box.apply_translation([0.0, 0.0, -75.0])
    below = Mesh(box.vertices, box.faces, name="half-space")
    t = np.radians(tilt_deg)
    up = np.array([np.sin(t), 0.0, np.cos(t)])
    tip = np.array([1.3, -0.7, -depth])
    pose = C.pose_from_axis(tip, tip + up, 17.0)
    expected = _polygon_area(128, R_SCREW) * depth / np.cos(t)
    live = C.live_clearance(field, screw, pose=pose)
    exact = C.exact_clearance(screw, pose, below)
    assert live.min_clearance_mm == pytest.approx(-depth - R_SCREW * np.sin(t), abs=0.05)
    assert live.penetrating_volume_mm3 == pytest.approx(expected, rel=0.02)
    assert exact.penetrating_volume_mm3 == pytest.approx(expected, rel=0.02)
