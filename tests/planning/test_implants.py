"""Implant shapes, catalogue, placement along a trajectory, angle readouts and JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from surgtwin.geometry import implant_shapes as shapes
from surgtwin.geometry.implant_shapes import ImplantParameterError
from surgtwin.geometry.mesh import Mesh
from surgtwin.planning.implants import (
    Catalogue,
    CatalogueError,
    Implant,
    ImplantSpec,
    angulation,
    pose_from_trajectory,
)

TOL = 0.05  # mm


def extents(mesh: Mesh) -> np.ndarray:
    b = np.array(mesh.bounds())
    return b[1::2] - b[::2]


def euler(mesh: Mesh) -> int:
    edges = np.sort(
        np.concatenate([mesh.faces[:, [0, 1]], mesh.faces[:, [1, 2]], mesh.faces[:, [2, 0]]]),
        axis=1,
    )
    n_edges = len(np.unique(edges, axis=0))
    return len(np.unique(mesh.faces)) - n_edges + len(mesh.faces)


def check_solid(mesh: Mesh, max_triangles: int = 20_000) -> None:
    assert mesh.is_watertight()
    assert mesh.volume_mm3() > 0  # outward
    assert 0 < mesh.n_triangles <= max_triangles
    assert mesh.bounds()[4] == pytest.approx(0.0, abs=1e-9)  # tip at z = 0


@pytest.mark.parametrize(("d", "length"), [(4.5, 25), (6.5, 45), (8.5, 60)])
def test_pedicle_screw_size_and_volume(d, length):
    m = shapes.pedicle_screw(d, length, tulip=False)
    check_solid(m)
    ext = extents(m)
    assert ext[0] == pytest.approx(d, abs=TOL) and ext[1] == pytest.approx(d, abs=TOL)
    assert ext[2] == pytest.approx(length, abs=TOL)
    core = math.pi * (0.7 * d / 2) ** 2 * length
    outer = math.pi * (d / 2) ** 2 * length
    assert core < m.volume_mm3() < outer
    assert euler(m) == 2


def test_pedicle_screw_tulip_sits_above_the_length():
    m = shapes.pedicle_screw(6.5, 45, tulip=True, tulip_height_mm=12)
    check_solid(m)
    assert m.bounds()[5] == pytest.approx(45 + 12, abs=TOL)
    shank = m.points[m.points[:, 2] < 45 - 1e-6]
    assert 2 * np.hypot(shank[:, 0], shank[:, 1]).max() == pytest.approx(6.5, abs=TOL)
    # the U slot: nothing of the tulip on the axis' y = 0 line at the top along x
    top = m.points[m.points[:, 2] > 45 + 12 - 1e-6]
    assert np.all(np.abs(top[:, 1]) >= (5.5 + 0.2) / 2 - 1e-6)


@pytest.mark.parametrize("cancellous", [False, True])
def test_bone_screws(cancellous):
    d, length = (6.5, 60) if cancellous else (4.5, 40)
    m = shapes.bone_screw(
        d, length, cancellous=cancellous, thread_length_mm=16 if cancellous else None
    )
    check_solid(m)
    shank = m.points[m.points[:, 2] <= length + 1e-9]
    assert 2 * np.abs(shank[:, 0]).max() == pytest.approx(d, abs=TOL)
    assert m.bounds()[5] > length  # the head sits above the entry
    core = 0.46 if cancellous else 0.67
    assert math.pi * (core * d / 2) ** 2 * length < m.volume_mm3()
    assert euler(m) == 2


def test_cortical_and_cancellous_threads_differ():
    cort = shapes.bone_screw(4.5, 40)
    canc = shapes.bone_screw(4.5, 40, cancellous=True)
    # deeper cancellous thread (smaller core) -> less metal in the same envelope
    assert canc.volume_mm3() < cort.volume_mm3()


@pytest.mark.parametrize(("d", "length", "angle"), [(3.0, 6, 0), (4.1, 10, 15), (6.0, 16, 30)])
def test_dental_implant(d, length, angle):
    body = shapes.dental_implant(d, length, abutment_height_mm=0)
    check_solid(body)
    assert np.allclose(extents(body), (d, d, length), atol=TOL)
    m = shapes.dental_implant(d, length, abutment_angle_deg=angle)
    check_solid(m)
    assert extents(m)[0] == pytest.approx(d, abs=TOL)
    top = m.points[m.points[:, 2].argmax()]
    if angle:
        assert top[1] > 0  # tilted towards +y
    tilt = shapes.dental_implant(d, length, abutment_angle_deg=angle, abutment_height_mm=8)
    assert tilt.volume_mm3() > body.volume_mm3()


def test_kwire_trocar_tip():
    m = shapes.kwire(2.0, 150)
    check_solid(m, 500)
    assert np.allclose(extents(m), (2.0, 2.0, 150), atol=TOL)
    assert np.sum(np.all(np.abs(m.points) < 1e-9, axis=1)) == 1  # a single point at the tip
    polygon = 8 * math.sin(2 * math.pi / 16) * 150  # 16-gon area x length
    assert 0.97 * polygon < m.volume_mm3() < polygon


@pytest.mark.parametrize("holes", [1, 4, 6, 8])
def test_plate_has_n_holes(holes):
    m = shapes.bone_plate(16 * holes + 4, holes, width_mm=12, thickness_mm=4)
    check_solid(m)
    assert np.allclose(extents(m), (12, 4, 16 * holes + 4), atol=TOL)
    assert euler(m) == 2 - 2 * holes


@pytest.mark.parametrize("lordosis", [0, 6, 12])
def test_cage_lordosis_and_window(lordosis):
    length, height = 26.0, 12.0
    m = shapes.interbody_cage(length, 11, height, lordosis)
    check_solid(m)
    assert np.allclose(extents(m), (11, height, length), atol=TOL)
    assert euler(m) == 0  # one graft window
    trailing = m.points[m.points[:, 2] > length - 1e-6]
    expected = height - 2 * length * math.tan(math.radians(lordosis) / 2)
    assert np.ptp(trailing[:, 1]) == pytest.approx(expected, abs=1e-6)
    # angle between top and bottom faces from their normals
    v = m.points[m.faces]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    n /= np.linalg.norm(n, axis=1)[:, None]
    top, bottom = n[n[:, 1] > 0.9].mean(axis=0), n[n[:, 1] < -0.9].mean(axis=0)
    angle = math.degrees(math.acos(np.clip(-top @ bottom, -1, 1)))
    assert angle == pytest.approx(lordosis, abs=1e-6)
    solid = shapes.interbody_cage(length, 11, height, lordosis, window=False)
    assert euler(solid) == 2 and solid.volume_mm3() > m.volume_mm3()


def test_cup_is_a_hemispherical_shell():
    d, t = 52.0, 4.0
    m = shapes.acetabular_cup(d, t)
    check_solid(m)
    assert np.allclose(extents(m), (d, d, d / 2), atol=TOL)
    shell = 2 / 3 * math.pi * ((d / 2) ** 3 - (d / 2 - t) ** 3)
    assert m.volume_mm3() == pytest.approx(shell, rel=0.02)
    r = np.linalg.norm(m.points - (0, 0, d / 2), axis=1)
    assert np.all(np.isclose(r, d / 2, atol=1e-9) | np.isclose(r, d / 2 - t, atol=1e-9))
    assert euler(m) == 2


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: shapes.pedicle_screw(12, 45), "diameter_mm = 12 is outside the allowed range 3.5"),
        (lambda: shapes.pedicle_screw(6.5, 10), "length_mm = 10 is outside the allowed range 20"),
        (lambda: shapes.pedicle_screw(6.5, 45, core_diameter_mm=6.5), "core_diameter_mm"),
        (lambda: shapes.dental_implant(2.5, 10), "3 to 6 mm"),
        (lambda: shapes.dental_implant(4, 10, 45), "0 to 30 degrees"),
        (lambda: shapes.kwire(2.0, float("nan")), "length_mm"),
        (lambda: shapes.bone_plate(30, 6), "hole_diameter_mm"),
        (lambda: shapes.bone_plate(40, 2.5), "integer from 1 to 24"),
        (lambda: shapes.interbody_cage(26, 11, 8, 12), "at least 4 mm"),
        (lambda: shapes.acetabular_cup(52, 20), "wall_thickness_mm"),
        (lambda: shapes.acetabular_cup(52, segments=30), "multiple of 4"),
        (lambda: shapes.bone_screw("4.5", 40), "must be a number"),
    ],
)
def test_parameter_errors(call, words):
    with pytest.raises(ImplantParameterError, match=words):
        call()
    assert issubclass(ImplantParameterError, ValueError)


def test_validate_parameters_names_unknown_and_missing():
    with pytest.raises(ImplantParameterError, match=r"unknown parameter.*colour"):
        shapes.validate_parameters("kwire", {"diameter_mm": 2, "length_mm": 150, "colour": 1})
    with pytest.raises(ImplantParameterError, match=r"missing parameter.*length_mm"):
        shapes.validate_parameters("cortical_screw", {"diameter_mm": 3.5})
    with pytest.raises(ImplantParameterError, match="unknown implant kind"):
        shapes.validate_parameters("nail", {})


def test_builtin_catalogue_and_nearest():
    cat = Catalogue.builtin()
    assert set(cat.kinds()) == set(shapes.KINDS)
    pedicle = cat.of_kind("pedicle_screw")
    assert {s.diameter_mm for s in pedicle} >= {4.5, 5.5, 6.5, 7.5, 8.5}
    assert {s.length_mm for s in pedicle} >= {25.0, 40.0, 60.0}
    assert {s.diameter_mm for s in cat.of_kind("kwire")} == {1.6, 2.0, 2.5}
    assert {s.parameters["holes"] for s in cat.of_kind("plate")} == {4, 6, 8}
    assert {s.parameters["lordosis_deg"] for s in cat.of_kind("cage")} == {0, 6, 12}
    assert {s.diameter_mm for s in cat.of_kind("cup")} >= {44.0, 54.0, 64.0}
    dental = cat.of_kind("dental_implant")
    assert min(s.diameter_mm for s in dental) == 3.3 and max(s.diameter_mm for s in dental) == 6
    assert cat.nearest("pedicle_screw", 6.3, 47).key == "pedicle-6.5x45"
    assert cat.nearest("pedicle_screw", 9.0, 80).key == "pedicle-8.5x60"
    assert cat.nearest("pedicle_screw", 5.1, 32.5).key == "pedicle-5x30"  # tie: shorter
    assert cat.nearest("cup", 51).key == "cup-50"  # tie: smaller
    assert cat.nearest("plate", length_mm=90).parameters["holes"] == 6
    assert cat.nearest("dental_implant", 4.0, 11).key == "dental-4.1x10"
    with pytest.raises(KeyError):
        cat.nearest("nail", 10, 300)


def test_every_catalogue_entry_builds_watertight():
    cat = Catalogue.builtin()
    for kind in cat.kinds():
        for spec in cat.of_kind(kind)[:: max(1, len(cat.of_kind(kind)) // 3)]:
            assert spec.local_mesh().is_watertight(), spec.key


def _user_catalogue(tmp_path, implants):
    path = tmp_path / "my_implants.json"
    doc = {"format": "surgtwin-implant-catalogue", "version": 1, "implants": implants}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_user_catalogue_bad_entry_names_file_and_entry(tmp_path):
    good = {
        "key": "my-screw",
        "kind": "pedicle_screw",
        "name": "My screw",
        "parameters": {"diameter_mm": 6.0, "length_mm": 40},
    }
    bad = {
        "key": "huge-screw",
        "kind": "pedicle_screw",
        "name": "Huge",
        "parameters": {"diameter_mm": 16.0, "length_mm": 40},
    }
    path = _user_catalogue(tmp_path, [good, bad])
    with pytest.raises(CatalogueError) as info:
        Catalogue.load([path])
    msg = str(info.value)
    assert "my_implants.json" in msg and "implant 2 ('huge-screw')" in msg
    assert "diameter_mm" in msg and "3.5 to 10" in msg
    ok = Catalogue.load([_user_catalogue(tmp_path, [good])])
    assert ok["my-screw"].diameter_mm == 6.0 and "pedicle-6.5x45" in ok
    dup = _user_catalogue(tmp_path, [dict(good, key="pedicle-6.5x45")])
    with pytest.raises(CatalogueError, match="already used"):
        Catalogue.load([dup])
    typo = _user_catalogue(tmp_path, [dict(good, lenght=3)])
    with pytest.raises(CatalogueError, match=r"implant 1.*unknown field"):
        Catalogue.load([typo])


def test_user_stl_implant(tmp_path):
    from surgtwin.geometry.mesh_io import export_meshes

    # a 3 x 30 mm pin lying along file +x (RAS), entry at x = 100, tip at x = 130
    pin = shapes.kwire(3.0, 30.0)
    to_file = np.array([[0, 0, -1, 130.0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    lps = pin.transformed(np.diag([-1.0, -1, 1, 1]) @ to_file)  # file numbers are RAS
    lps.name = "pin"
    (stl,) = export_meshes([lps], tmp_path, "stl", space="RAS")
    entry = {
        "key": "pin",
        "kind": "user_stl",
        "name": "Pin",
        "file": stl.name,
        "space": "RAS",
        "axis_entry": [100, 0, 0],
        "axis_direction": [1, 0, 0],
        "parameters": {"length_mm": 30, "diameter_mm": 5},
    }
    cat = Catalogue.load([_user_catalogue(tmp_path, [entry])], include_builtin=False)
    local = cat["pin"].local_mesh()
    assert local.is_watertight()
    assert np.allclose(np.array(local.bounds()), (-1.5, 1.5, -1.5, 1.5, 0, 30), atol=1e-4)
    missing = _user_catalogue(tmp_path, [dict(entry, file="nothing.stl")])
    with pytest.raises(CatalogueError, match="not found"):
        Catalogue.load([missing])


TRAJECTORIES = [
    ((20.0, 50.0, 0.0), (20.0, 10.0, 0.0)),
    ((-25.0, 60.0, 10.0), (3.0, -5.0, -12.0)),
    ((1.0, 2.0, 3.0), (1.0, 2.0, -40.0)),  # vertical
]


@pytest.mark.parametrize(("entry", "target"), TRAJECTORIES)
@pytest.mark.parametrize("roll", [0.0, 37.0])
def test_pose_from_trajectory(entry, target, roll):
    spec = Catalogue.builtin()["pedicle-6.5x45"]
    pose = pose_from_trajectory(entry, target, spec.length_mm, roll)
    imp = Implant("screw", spec, pose)
    d = np.subtract(target, entry) / np.linalg.norm(np.subtract(target, entry))
    assert np.allclose(imp.entry, entry, atol=1e-9)
    assert np.allclose(imp.tip, np.add(entry, 45 * d), atol=1e-9)
    assert np.allclose(imp.axis, -d, atol=1e-12)
    assert np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-12)
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    flat = Implant(
        "screw",
        ImplantSpec(
            "s",
            "pedicle_screw",
            "s",
            parameters={"diameter_mm": 6.5, "length_mm": 45, "tulip": False},
        ),
        pose,
    )
    mesh = flat.mesh()
    assert mesh.is_watertight()
    along = (mesh.points - imp.tip) @ imp.axis
    assert along.min() == pytest.approx(0.0, abs=1e-6)
    assert along.max() == pytest.approx(45.0, abs=1e-6)
    assert imp.mesh().volume_mm3() == pytest.approx(spec.local_mesh().volume_mm3(), rel=1e-9)


def test_roll_is_deterministic_and_about_the_axis():
    a = pose_from_trajectory((0, 50, 0), (0, 0, 0), 40, 0)
    b = pose_from_trajectory((0, 50, 0), (0, 0, 0), 40, 90)
    assert np.array_equal(a, pose_from_trajectory((0, 50, 0), (0, 0, 0), 40, 0))
    assert np.allclose(a[:3, 0], (0, 0, 1))  # rod slot towards superior at roll 0
    assert np.allclose(b[:3, 0], a[:3, 1]) and np.allclose(b[:3, 2], a[:3, 2])
    with pytest.raises(ValueError, match="same point"):
        pose_from_trajectory((1, 2, 3), (1, 2, 3), 40)


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_angulation_known_trajectories(side):
    spec = Catalogue.builtin()["pedicle-6.5x45"]
    entry = np.array([side * 20.0, 60.0, 0.0])
    a15 = math.radians(15)
    medial = np.array([-side * math.sin(a15), -math.cos(a15), 0.0])  # towards x = 0, anterior
    imp = Implant.on_trajectory("s", spec, entry, entry + 40 * medial)
    assert angulation(imp) == pytest.approx((15.0, 0.0), abs=1e-9)
    lateral = medial * (-1, 1, 1)
    imp = Implant.on_trajectory("s", spec, entry, entry + 40 * lateral)
    assert angulation(imp) == pytest.approx((-15.0, 0.0), abs=1e-9)
    a10 = math.radians(10)
    cranial = np.array([0.0, -math.cos(a10), math.sin(a10)])
    imp = Implant.on_trajectory("s", spec, entry, entry + 40 * cranial)
    assert angulation(imp) == pytest.approx((0.0, 10.0), abs=1e-9)
    imp = Implant.on_trajectory("s", spec, entry, entry + 40 * cranial * (1, 1, -1))
    assert angulation(imp) == pytest.approx((0.0, -10.0), abs=1e-9)
    # both at once: tan(axial) = medial / AP, tan(sagittal) = cranial / AP
    both = np.array([-side * math.tan(a15), -1.0, math.tan(a10)])
    imp = Implant.on_trajectory("s", spec, entry, entry + 40 * both)
    assert angulation(imp) == pytest.approx((15.0, 10.0), abs=1e-9)
    # an anterior approach (heading posterior) measures the same against the AP axis
    imp = Implant.on_trajectory("s", spec, entry, entry + 40 * medial * (1, -1, 1))
    assert angulation(imp) == pytest.approx((15.0, 0.0), abs=1e-9)
    assert angulation(imp, midline_x_mm=side * 40)[0] == pytest.approx(-15.0, abs=1e-9)


def test_json_round_trip_is_identical():
    spec = Catalogue.builtin()["dental-4.1x10-abut15"]
    imp = Implant.on_trajectory(
        "tooth 36", spec, (30.5, -20.25, -60.0), (31.0, -19.0, -75.0), roll_deg=12.5
    )
    text = json.dumps(imp.to_dict())
    back = Implant.from_dict(json.loads(text))
    assert back == imp
    assert np.array_equal(back.pose, imp.pose) and back.spec == imp.spec
    assert hash(back.spec) == hash(imp.spec)
    assert np.array_equal(back.mesh().points, imp.mesh().points)
    with pytest.raises(ValueError, match="rigid"):
        Implant("x", spec, np.diag([2.0, 1, 1, 1]))


def test_spec_parameters_are_read_only_and_mesh_cache_is_safe():
    spec = Catalogue.builtin()["kwire-2x150"]
    with pytest.raises(TypeError):
        spec.parameters["length_mm"] = 3  # type: ignore[index]
    first = spec.local_mesh()
    first.points[:] = 0
    assert np.ptp(spec.local_mesh().points[:, 2]) == pytest.approx(150)
