"""Virtual resection: watertight parts, conserved volume, analytic tool volumes, margins."""

from __future__ import annotations

import json
import math

import manifold3d as mf
import numpy as np
import pytest

from surgtwin.errors import SurgTwinError
from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.resection import (
    ResectionError,
    box_tool,
    make_tool,
    margin_to_target,
    plane_tool,
    polygon_tool,
    resect,
    sphere_tool,
    target_fully_removed,
)
from testdata import REPO


def solid_mesh(m: mf.Manifold, name: str = "solid", role: str = "other") -> Mesh:
    out = m.to_mesh64()
    pts = np.array(np.asarray(out.vert_properties)[:, :3], dtype=float)
    return Mesh(pts, np.array(out.tri_verts, dtype=np.int64), name=name, role=role)


def sphere_mesh(radius: float, centre=(0.0, 0.0, 0.0), segments: int = 128, **kw) -> Mesh:
    return solid_mesh(mf.Manifold.sphere(radius, segments).translate(tuple(centre)), **kw)


def cube_mesh(edge: float) -> Mesh:
    return solid_mesh(mf.Manifold.cube((edge, edge, edge), True), name="cube")


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def phantom_bone() -> Mesh:
    from surgtwin.geometry.surface import mask_to_mesh
    from surgtwin.imaging import load
    from surgtwin.segmentation.presets import bone

    vol = load(REPO / "sample_dicom", cache=None)
    return mask_to_mesh(
        bone(vol), vol.geometry, name="L3-L5 bone", color=(0.95, 0.9, 0.8), role="bone"
    )


def test_plane_through_vertebral_body(phantom_bone, truth):
    centre = np.array(truth["levels"]["L4"]["body_centre"])
    normal = np.array([1.0, 0.3, 0.2]) / np.linalg.norm([1.0, 0.3, 0.2])
    assert phantom_bone.is_watertight()
    before = phantom_bone.volume_mm3()
    r = resect(phantom_bone, plane_tool(centre, normal))
    assert r.changes == []
    assert r.remaining.is_watertight() and r.resected.is_watertight()
    assert r.remaining_mm3 == pytest.approx(r.remaining.volume_mm3(), rel=1e-9)
    assert r.resected_mm3 == pytest.approx(r.resected.volume_mm3(), rel=1e-9)
    assert r.remaining_mm3 + r.resected_mm3 == pytest.approx(before, rel=0.005)
    assert 0.2 * before < r.resected_mm3 < 0.8 * before  # a real cut through the spine
    assert np.min((r.resected.points - centre) @ normal) >= -1e-3
    assert np.max((r.remaining.points - centre) @ normal) <= 1e-3
    # the cut faces lie on the plane: many vertices of each part sit on it
    on_plane = np.abs((r.resected.points - centre) @ normal) < 1e-3
    assert on_plane.sum() > 100
    assert r.remaining.name == "L3-L5 bone (remaining)"
    assert r.resected.name == "L3-L5 bone (resected)"
    assert r.resected.role == r.remaining.role == "bone"
    assert r.resected.color == phantom_bone.color
    assert r.resected.metadata["resection"] == "resected"


def test_sphere_cut_by_central_plane_is_half():
    ball = sphere_mesh(20.0)
    r = resect(ball, plane_tool((0, 0, 0), (0, 0, -1)))
    assert r.resected_mm3 == pytest.approx(2 / 3 * math.pi * 20**3, rel=0.01)
    assert r.remaining_mm3 == pytest.approx(r.resected_mm3, rel=1e-9)
    assert r.resected.points[:, 2].max() <= 1e-9
    assert r.remaining.is_watertight() and r.resected.is_watertight()


def test_sphere_tool_inside_cube():
    rad = 8.0
    r = resect(cube_mesh(40.0), sphere_tool((2.0, -3.0, 1.0), rad))
    assert r.resected_mm3 == pytest.approx(4 / 3 * math.pi * rad**3, rel=0.01)
    assert r.remaining_mm3 == pytest.approx(40.0**3 - r.resected_mm3, rel=1e-9)
    assert r.remaining.is_watertight() and r.resected.is_watertight()


def test_rotated_box_tool_inside_sphere():
    a = math.radians(30)
    rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    pose = np.eye(4)
    pose[:3, :3] = rot
    r = resect(sphere_mesh(30.0), box_tool((1.0, 2.0, 3.0), (10.0, 20.0, 15.0), pose))
    assert r.resected_mm3 == pytest.approx(3000.0, rel=1e-9)
    # the box's long axis is its rotated y axis
    extent = r.resected.points - (1.0, 2.0, 3.0)
    assert np.abs(extent @ rot[:, 1]).max() == pytest.approx(10.0, abs=1e-9)


def test_polygon_drawn_on_view_removes_a_prism():
    # an L-shaped polygon on a coronal view (looking posterior, +y), 6 mm deep
    l_shape = np.array([[0, 0], [12, 0], [12, 4], [4, 4], [4, 10], [0, 10]], float)
    area = 12 * 4 + 4 * 6
    tool = polygon_tool(l_shape, (0, 1, 0), 6.0, origin=(-5.0, -8.0, -3.0), view_up=(0, 0, 1))
    r = resect(cube_mesh(40.0), tool)
    assert r.resected_mm3 == pytest.approx(area * 6.0, rel=1e-9)
    xmin, xmax, ymin, ymax, zmin, zmax = r.resected.bounds()
    # screen right is +x when looking along +y with +z up
    assert (xmin, xmax, ymin, ymax, zmin, zmax) == pytest.approx((-5, 7, -8, -2, -3, 7))


def test_polygon_in_lps_cuts_through():
    square = np.array([[0, 5, 0], [10, 5, 0], [10, 5, 8], [0, 5, 8]], float)
    r = resect(cube_mesh(40.0), polygon_tool(square, (0, -1, 0)))  # through: all of y
    assert r.resected_mm3 == pytest.approx(80.0 * 40.0, rel=1e-9)


def test_tool_that_misses_and_tool_that_covers():
    cube = cube_mesh(20.0)
    miss = resect(cube, sphere_tool((100.0, 0.0, 0.0), 5.0))
    assert miss.resected_mm3 == 0.0 and len(miss.resected.faces) == 0
    assert miss.remaining_mm3 == pytest.approx(8000.0)
    assert miss.remaining.is_watertight()
    cover = resect(cube, box_tool((0, 0, 0), (50, 50, 50)))
    assert cover.remaining_mm3 == 0.0 and len(cover.remaining.faces) == 0
    assert cover.resected_mm3 == pytest.approx(8000.0)
    assert margin_to_target(cover.remaining, sphere_mesh(2.0)) == math.inf


def test_tumour_resected_with_margin(phantom_bone, truth):
    centre = truth["levels"]["L4"]["body_centre"]
    tumour = sphere_mesh(6.0, centre, segments=96, name="tumour", role="tumour")
    r = resect(phantom_bone, sphere_tool(centre, 6.0 + 5.0))
    assert r.remaining.is_watertight() and r.resected.is_watertight()
    assert target_fully_removed(r.remaining, tumour)
    assert margin_to_target(r.remaining, tumour) == pytest.approx(5.0, abs=0.3)


def test_tumour_tool_too_small(phantom_bone, truth):
    centre = truth["levels"]["L4"]["body_centre"]
    tumour = sphere_mesh(6.0, centre, segments=96, name="tumour", role="tumour")
    r = resect(phantom_bone, sphere_tool(centre, 4.0))
    assert not target_fully_removed(r.remaining, tumour)
    margin = margin_to_target(r.remaining, tumour)
    assert margin <= 0.0
    assert margin == pytest.approx(-2.0, abs=0.3)  # the tumour reaches 2 mm into the bone left


def test_open_input_is_repaired_and_reported():
    ball = sphere_mesh(10.0)
    holed = Mesh(ball.points, np.delete(ball.faces, [0, 1, 2], axis=0), name="ball")
    assert not holed.is_watertight()
    r = resect(holed, plane_tool((0, 0, 0), (1, 0, 0)))
    assert any("filled" in c for c in r.changes)
    assert r.remaining.is_watertight() and r.resected.is_watertight()
    assert r.remaining_mm3 + r.resected_mm3 == pytest.approx(ball.volume_mm3(), rel=1e-3)
    with pytest.raises(ResectionError, match="repair"):
        resect(holed, plane_tool((0, 0, 0), (1, 0, 0)), repair_first=False)


def test_hopeless_input_raises_clear_error():
    ball = sphere_mesh(10.0, segments=512)
    centroids = ball.points[ball.faces].mean(axis=1)
    bowl = Mesh(ball.points, ball.faces[centroids[:, 2] < 0], name="bowl")  # 512-edge rim
    with pytest.raises(ResectionError, match="bowl: the surface is still not closed") as info:
        resect(bowl, sphere_tool((0, 0, 0), 3.0))
    assert isinstance(info.value, SurgTwinError)
    with pytest.raises(ResectionError, match="no triangles"):
        resect(Mesh(np.zeros((0, 3)), np.zeros((0, 3), int)), sphere_tool((0, 0, 0), 1.0))


@pytest.mark.parametrize(
    "make",
    [
        lambda: plane_tool((0, 0, 0), (0, 0, 0)),
        lambda: sphere_tool((0, 0, 0), -1.0),
        lambda: box_tool((0, 0, 0), (1, 0, 1)),
        lambda: box_tool((0, 0, 0), (1, 1, 1), np.diag([1.0, 1.0, -1.0])),
        lambda: polygon_tool([[0, 0], [1, 1], [2, 2]], (0, 0, 1)),
        lambda: polygon_tool([[0, 0], [1, 0], [0, 1]], (0, 0, 1), -2.0),
    ],
)
def test_bad_tool_parameters(make):
    with pytest.raises(ResectionError):
        make()


def _rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("plane", {"point": [1, 2, 3], "normal": [0.3, -1, 0.2]}),
        ("box", {"centre": [1, 2, 3], "size": [10, 20, 5], "rotation": _rotation(1).tolist()}),
        ("sphere", {"centre": [1, 2, 3], "radius": 12}),
        (
            "polygon",
            {
                "points": [[0, 0, 0], [20, 0, 0], [20, 15, 3], [5, 5, 0], [0, 15, 0]],
                "direction": [0.1, 0.2, 1],
                "depth": 8,
            },
        ),
        (
            "polygon",
            {"points": [[0, 0, 0], [20, 0, 0], [5, 5, 0], [0, 15, 0]], "direction": [0, 1, 1]},
        ),
    ],
)
def test_tools_from_plain_data_contain_what_their_solid_holds(kind, params):
    """A tool made from a cut record's parameters: its exact point test agrees with its solid
    everywhere but within a hair of the surface (the sphere's facets)."""
    from surgtwin.geometry.sdf import mesh_signed_distance

    tool = make_tool(kind, params)
    assert tool.kind == kind
    pts = np.random.default_rng(0).uniform(-30, 30, size=(20000, 3))
    inside = tool.contains(pts)
    distance = mesh_signed_distance(tool.to_mesh(), pts)
    disagree = inside != (distance < 0)
    assert inside.sum() > 50
    assert not disagree.any() or np.abs(distance[disagree]).max() < 0.01


@pytest.mark.parametrize(
    ("kind", "params", "words"),
    [
        ("plane", {"point": [0, 0, 0]}, "'normal'"),
        ("box", {"centre": [0, 0], "size": [1, 1, 1]}, "'centre'"),
        ("sphere", {"centre": [0, 0, 0], "radius": [1, 2]}, "radius"),
        ("sphere", {"centre": [0, 0, 0], "radius": "big"}, "radius"),
        ("polygon", {"points": [[0, 0, 0], [1, 0, 0]], "direction": [0, 0, 1]}, "3 points"),
        ("saw", {}, "unknown cutting tool"),
    ],
)
def test_make_tool_names_the_bad_parameter(kind, params, words):
    with pytest.raises(ResectionError, match=words):
        make_tool(kind, params)
