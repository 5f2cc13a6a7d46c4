"""Print checks and repair on real surfaces: what a radiologist needs before sending a model to
the 3D printer (closed, outward, one piece, walls thick enough), and a repair that never makes
a good mesh worse."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from surgtwin.geometry.mesh import Mesh, edge_counts
from surgtwin.geometry.printcheck import PrintReport, check_print, repair
from surgtwin.geometry.surface import mask_to_mesh
from surgtwin.imaging.volume import ImageGeometry


def _ball_mask(n: int, spacing: float, radius: float, inner: float = 0.0) -> np.ndarray:
    c = (n - 1) * spacing / 2.0
    k, j, i = np.mgrid[:n, :n, :n] * spacing
    r = np.sqrt((i - c) ** 2 + (j - c) ** 2 + (k - c) ** 2)
    return (r <= radius) & (r > inner)


def _geometry(n: int, spacing: float) -> ImageGeometry:
    return ImageGeometry(
        shape=(n, n, n),
        spacing=(spacing, spacing, spacing),
        origin=(-80.0, 20.0, -300.0),
        direction=np.eye(3),
    )


@pytest.fixture(scope="module")
def sphere() -> Mesh:
    """A 10 mm radius ball segmented on a 0.5 mm grid."""
    mesh = mask_to_mesh(_ball_mask(50, 0.5, 10.0), _geometry(50, 0.5), name="ball")
    assert mesh.is_watertight()
    return mesh


@pytest.fixture(scope="module")
def hollow() -> Mesh:
    """A hollow ball: 12 mm outside, 10 mm inside, i.e. a 2 mm wall, on a 0.4 mm grid."""
    mesh = mask_to_mesh(_ball_mask(70, 0.4, 12.0, 10.0), _geometry(70, 0.4), name="shell")
    assert mesh.is_watertight()
    return mesh


def _icosphere(radius: float, subdivisions: int = 4, centre=(0.0, 0.0, 0.0)) -> Mesh:
    ico = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return Mesh(ico.vertices + np.asarray(centre), ico.faces)


def _combine(*meshes: Mesh, flip: tuple[bool, ...] | None = None) -> Mesh:
    points, faces, n = [], [], 0
    for i, m in enumerate(meshes):
        f = m.faces[:, ::-1] if flip and flip[i] else m.faces
        points.append(m.points)
        faces.append(f + n)
        n += len(m.points)
    return Mesh(np.vstack(points), np.vstack(faces), name="combined")


# ------------------------------------------------------------------------------------------
# check


def test_watertight_sphere_has_no_problems(sphere):
    report = check_print(sphere)
    assert isinstance(report, PrintReport)
    assert report.problems == [] and report.ok
    assert report.watertight and report.manifold and report.outward_normals
    assert report.shells == 1
    assert report.boundary_edges == report.nonmanifold_edges == report.degenerate_faces == 0
    # the volume of a 10 mm ball, within what segmentation and smoothing cost
    assert report.volume_mm3 == pytest.approx(4 / 3 * np.pi * 10.0**3, rel=0.03)
    # through a solid ball the "wall" is its diameter, less near the rim where rays hit obliquely
    assert 15.0 < report.thinnest_wall_mm <= 20.5


def test_hollow_sphere_wall_is_two_millimetres(hollow):
    report = check_print(hollow)
    assert report.shells == 2
    assert report.watertight and report.outward_normals  # the cavity's wall faces inward
    assert report.thinnest_wall_mm == pytest.approx(2.0, abs=0.5)
    assert report.volume_mm3 == pytest.approx(4 / 3 * np.pi * (12.0**3 - 10.0**3), rel=0.03)
    assert report.problems == []


def test_exact_hollow_sphere_wall_and_thin_wall_problem():
    outer, inner = _icosphere(10.0, 5), _icosphere(8.0, 5)
    report = check_print(_combine(outer, inner, flip=(False, True)))
    assert report.outward_normals and report.shells == 2
    assert report.thinnest_wall_mm == pytest.approx(2.0, abs=0.1)

    thin = check_print(_combine(outer, _icosphere(9.4, 5), flip=(False, True)), min_wall_mm=1.0)
    assert thin.thinnest_wall_mm == pytest.approx(0.6, abs=0.1)
    assert any("thinnest wall" in p and "0.6" in p for p in thin.problems)


def test_hole_is_reported_and_repair_fills_it(sphere):
    # remove the triangles around one vertex: a hole with a rim of 5 or 6 edges
    v = int(np.argmax(sphere.points[:, 2]))
    around = np.any(sphere.faces == v, axis=1)
    holed = Mesh(sphere.points, sphere.faces[~around], name="ball")
    report = check_print(holed, wall_samples=200)
    assert not report.watertight
    assert report.boundary_edges == int(around.sum())
    assert any("open edge" in p for p in report.problems)

    fixed, changes = repair(holed)
    assert fixed.is_watertight()
    assert any("filled 1 hole" in c for c in changes)
    assert fixed.volume_mm3() == pytest.approx(sphere.volume_mm3(), rel=1e-3)
    assert check_print(fixed).problems == []


def test_several_holes_and_pinched_rim_are_filled():
    ico = _icosphere(10.0, 4)
    holed = Mesh(ico.points, ico.faces[5:])  # faces 0..4 form a rim that touches itself
    assert edge_counts(holed.faces)[0] > 0
    fixed, changes = repair(holed)
    assert fixed.is_watertight()
    assert fixed.volume_mm3() == pytest.approx(ico.volume_mm3(), rel=1e-3)
    assert any("filled" in c for c in changes)


def test_flipped_faces_are_reported_and_repaired(sphere):
    rng = np.random.default_rng(3)
    faces = sphere.faces.copy()
    idx = rng.choice(len(faces), len(faces) // 10, replace=False)
    faces[idx] = faces[idx, ::-1]
    flipped = Mesh(sphere.points, faces)
    report = check_print(flipped)
    assert not report.outward_normals
    assert report.thinnest_wall_mm is None  # not measured with normals pointing anywhere
    assert any("opposite ways" in p for p in report.problems)

    fixed, changes = repair(flipped)
    assert fixed.is_watertight()
    assert changes == [f"flipped {len(idx)} triangles so that the normals face outward"]
    np.testing.assert_array_equal(fixed.faces, sphere.faces)
    assert fixed.volume_mm3() == pytest.approx(sphere.volume_mm3())


def test_inside_out_mesh_is_turned_right_way_out(sphere):
    inverted = Mesh(sphere.points, sphere.faces[:, ::-1])
    report = check_print(inverted, wall_samples=0)
    assert report.watertight and not report.outward_normals
    assert report.volume_mm3 < 0
    assert any("inward" in p for p in report.problems)
    fixed, _ = repair(inverted)
    assert fixed.volume_mm3() == pytest.approx(sphere.volume_mm3())
    assert check_print(fixed, wall_samples=0).outward_normals


def test_inside_out_cavity_wall_of_hollow_part_is_kept_as_cavity(hollow):
    # the whole hollow ball inside out: outer shell negative, inner positive
    inverted = Mesh(hollow.points, hollow.faces[:, ::-1])
    assert not check_print(inverted, wall_samples=0).outward_normals
    fixed, _ = repair(inverted)
    assert fixed.volume_mm3() == pytest.approx(hollow.volume_mm3())
    assert check_print(fixed, wall_samples=0).outward_normals


def test_tiny_shell_is_reported_and_dropped():
    organ = _icosphere(20.0, 5)  # 20480 triangles
    speck = _icosphere(0.3, 1, centre=(40.0, 0.0, 0.0))  # 80 triangles, 0.4 %
    both = _combine(organ, speck)
    report = check_print(both, wall_samples=300, min_shell_fraction=0.01)
    assert report.shells == 2
    assert any("tiny shell" in p for p in report.problems)

    fixed, changes = repair(both, min_shell_fraction=0.01)
    assert fixed.n_triangles == organ.n_triangles
    assert "dropped 1 shell with 80 triangles" in changes[0]
    assert check_print(fixed, wall_samples=0).shells == 1
    # at the default 0.1 % the speck is a real (if small) part and is kept
    kept, _ = repair(both)
    assert kept.n_triangles == both.n_triangles


def test_part_inside_another_is_reported_not_flipped():
    outer, core = _icosphere(10.0, 3), _icosphere(4.0, 3)
    nested = _combine(outer, core)  # e.g. a tumour mesh merged into its organ
    report = check_print(nested, wall_samples=0)
    assert report.outward_normals
    assert any("inside another solid" in p for p in report.problems)
    fixed, changes = repair(nested)
    assert changes == []
    np.testing.assert_array_equal(fixed.faces, nested.faces)


def test_degenerate_duplicate_and_unmerged_triangles_are_cleaned(sphere):
    # an STL-like triangle soup: every triangle has its own three vertices
    soup = Mesh(sphere.points[sphere.faces].reshape(-1, 3), np.arange(3 * sphere.n_triangles))
    report = check_print(soup, wall_samples=0)
    assert report.boundary_edges == 3 * sphere.n_triangles
    # plus a triangle with a repeated vertex and a duplicated triangle
    faces = np.vstack([soup.faces, [[0, 0, 1]], soup.faces[5:6, ::-1]])
    dirty = Mesh(soup.points, faces)
    report = check_print(dirty, wall_samples=0)
    assert report.degenerate_faces == 1
    fixed, changes = repair(dirty)
    assert fixed.is_watertight()
    assert fixed.n_triangles == sphere.n_triangles
    assert len(fixed.points) == len(sphere.points)
    text = " | ".join(changes)
    assert "merged" in text and "degenerate" in text and "duplicate triangle" in text
    assert fixed.volume_mm3() == pytest.approx(sphere.volume_mm3())


def test_repair_never_worsens_a_watertight_mesh(sphere, hollow):
    # two cubes touching along an edge: merging their coinciding corners would create a
    # non-manifold edge, so the vertices must stay apart
    a = trimesh.creation.box(bounds=[[0, 0, 0], [10, 10, 10]])
    b = trimesh.creation.box(bounds=[[10, 10, 0], [20, 20, 10]])
    cubes = _combine(Mesh(a.vertices, a.faces), Mesh(b.vertices, b.faces))
    assert cubes.is_watertight()
    for mesh in (sphere, hollow, cubes):
        fixed, changes = repair(mesh)
        assert fixed.is_watertight(), changes
        assert fixed.n_triangles == mesh.n_triangles
        assert fixed.volume_mm3() == pytest.approx(mesh.volume_mm3())
        assert all(c.startswith("left") for c in changes)
    _, changes = repair(cubes)
    assert changes and "coinciding" in changes[0]


def test_empty_mesh():
    empty = Mesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=int))
    report = check_print(empty)
    assert not report.watertight and report.problems == ["the mesh has no triangles"]
    fixed, changes = repair(empty)
    assert fixed.n_triangles == 0 and changes == []
