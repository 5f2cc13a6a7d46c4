"""Mesh export/import: every format re-opens in an independent reader with the same geometry,
colours and names, RAS is LPS with x and y negated, patient data stay out unless asked for, and
writes are atomic."""

from __future__ import annotations

import io
import json
import struct
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import pyvista as pv
import trimesh

from surgtwin.geometry import mesh_export
from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.mesh_io import MeshIOError, export_meshes, import_mesh
from surgtwin.geometry.surface import mask_to_mesh
from surgtwin.imaging.header import PatientInfo
from surgtwin.imaging.volume import ImageGeometry

FORMATS = ["stl", "obj", "ply", "vtp", "glb", "3mf"]
FLOAT32 = {"stl", "ply", "glb"}  # formats that store positions as float32
PATIENT = PatientInfo(name="Doe^Jane Quincy", patient_id="PID-9876543")
LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])


# ------------------------------------------------------------------------------------------
# test meshes: real surfaces from masks, off-origin and anisotropic like a CT


def _geometry(shape, spacing, origin) -> ImageGeometry:
    return ImageGeometry(shape=shape, spacing=spacing, origin=origin, direction=np.eye(3))


@pytest.fixture(scope="module")
def organs() -> list[Mesh]:
    # sphere of radius 9 mm on a 0.7 x 0.7 x 1.2 mm grid far from the origin
    g1 = _geometry((40, 40, 40), (0.7, 0.7, 1.2), (-120.5, 35.25, -610.0))
    k, j, i = np.mgrid[:40, :40, :40]
    xyz = np.stack([i * 0.7, j * 0.7, k * 1.2], axis=-1) - np.array([14.0, 14.0, 24.0])
    sphere = np.linalg.norm(xyz, axis=-1) <= 9.0
    liver = mask_to_mesh(sphere, g1, name="Leber (Segment VIII)", color=(0.62, 0.24, 0.18))
    # a box of 12 x 8 x 15 voxels
    g2 = _geometry((30, 30, 30), (0.8, 0.8, 1.5), (10.0, -50.0, -580.0))
    box = np.zeros((30, 30, 30), dtype=bool)
    box[5:20, 6:14, 4:16] = True
    kidney = mask_to_mesh(box, g2, name="Kidney", color=(0.85, 0.55, 0.2), role="organ")
    # a trimesh primitive, in an unusual place
    ico = trimesh.creation.icosphere(subdivisions=3, radius=6.0)
    offset = np.array([-40.0, 60.0, -600.0])
    tumour = Mesh(ico.vertices + offset, ico.faces, name="kidney", color=(1, 1, 0))
    meshes = [liver, kidney, tumour]
    for m in meshes:
        assert m.is_watertight() and m.volume_mm3() > 0
    return meshes


def _space_points(mesh: Mesh, space: str) -> np.ndarray:
    return mesh.points * LPS_TO_RAS if space == "RAS" else mesh.points


def _bounds(points: np.ndarray) -> np.ndarray:
    return np.r_[points.min(axis=0), points.max(axis=0)]


def _volume(points: np.ndarray, faces: np.ndarray) -> float:
    return Mesh(points, faces).volume_mm3()


# ------------------------------------------------------------------------------------------
# independent readers (trimesh, pyvista, the specifications): name, points, faces, rgb 0..255


def _reopen(fmt: str, paths: list[Path]) -> list[tuple[str | None, np.ndarray, np.ndarray, tuple]]:
    out = []
    if fmt == "glb":
        scene = trimesh.load(paths[0])
        assert isinstance(scene, trimesh.Scene)
        for node in scene.graph.nodes_geometry:
            transform, geom_name = scene.graph[node]
            np.testing.assert_array_equal(transform, np.eye(4))
            g = scene.geometry[geom_name]
            rgb = tuple(int(c) for c in g.visual.material.baseColorFactor[:3])
            out.append((node, np.asarray(g.vertices), np.asarray(g.faces), rgb))
        return out
    if fmt == "3mf":
        pytest.importorskip("lxml")
        pytest.importorskip("networkx")
        scene = trimesh.load(paths[0])
        colors = {name: rgb for name, rgb in _3mf_colors(paths[0])}
        for name, g in scene.geometry.items():
            out.append((name, np.asarray(g.vertices), np.asarray(g.faces), colors[name]))
        return out
    for path in paths:
        if fmt == "stl":
            m = trimesh.load(path)  # merges the STL's repeated vertices
            out.append((None, np.asarray(m.vertices), np.asarray(m.faces), None))
        elif fmt == "obj":
            m = trimesh.load(path, process=False)
            rgb = tuple(int(c) for c in m.visual.material.diffuse[:3])
            out.append((None, np.asarray(m.vertices), np.asarray(m.faces), rgb))
        elif fmt == "ply":
            m = trimesh.load(path, process=False)
            colors = np.unique(m.visual.vertex_colors[:, :3], axis=0)
            assert len(colors) == 1
            out.append((None, np.asarray(m.vertices), np.asarray(m.faces), tuple(colors[0])))
        elif fmt == "vtp":
            poly = pv.read(path)
            faces = np.asarray(poly.faces).reshape(-1, 4)
            assert np.all(faces[:, 0] == 3)
            name = str(poly.field_data["Name"][0])
            rgb = tuple(round(c * 255) for c in poly.field_data["Color"][0])
            out.append((name, np.asarray(poly.points), faces[:, 1:], rgb))
    return out


def _3mf_colors(path: Path) -> list[tuple[str, tuple[int, int, int]]]:
    """Object name -> display colour, read with the standard library per the 3MF core spec."""
    ns = {"m": "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"}
    with zipfile.ZipFile(path) as zf:
        root = ET.fromstring(zf.read("3D/3dmodel.model"))
    bases = root.findall("m:resources/m:basematerials/m:base", ns)
    out = []
    for obj in root.findall("m:resources/m:object", ns):
        hex_rgb = bases[int(obj.get("pindex"))].get("displaycolor")
        out.append((obj.get("name"), tuple(int(hex_rgb[i : i + 2], 16) for i in (1, 3, 5))))
    return out


def _all_bytes(path: Path) -> bytes:
    """The file's bytes, with every zip member (3MF) and the VTP field data decompressed."""
    data = path.read_bytes()
    if path.suffix == ".3mf":
        with zipfile.ZipFile(path) as zf:
            data += b"".join(zf.read(n) for n in zf.namelist())
    if path.suffix == ".vtp":
        poly = pv.read(path)
        for key in poly.field_data:
            data += key.encode() + str(list(poly.field_data[key])).encode()
    return data


def _rgb8(color) -> tuple[int, int, int]:
    return tuple(round(c * 255) for c in color)


# ------------------------------------------------------------------------------------------
# export: geometry, colour and names survive in every format and both spaces


@pytest.mark.parametrize("space", ["LPS", "RAS"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reopens_with_same_geometry(organs, tmp_path, fmt, space):
    paths = export_meshes(organs, tmp_path, fmt, space)
    assert all(p.parent == tmp_path and p.is_file() for p in paths)
    expected_files = 1 if fmt in ("glb", "3mf") else len(organs) * (2 if fmt == "obj" else 1)
    assert len(paths) == expected_files
    reopened = _reopen(fmt, [p for p in paths if p.suffix != ".mtl"])
    assert len(reopened) == len(organs)
    tol = 1e-3 if fmt in FLOAT32 else 1e-4
    by_name = {m.name: m for m in organs}
    for k, (name, pts, faces, rgb) in enumerate(reopened):
        mesh = by_name[name] if name is not None else organs[k]
        assert len(faces) == mesh.n_triangles, (fmt, mesh.name)
        np.testing.assert_allclose(_bounds(pts), _bounds(_space_points(mesh, space)), atol=tol)
        volume = _volume(pts, faces)
        assert volume > 0, "normals must still face outward"
        assert volume == pytest.approx(mesh.volume_mm3(), rel=1e-3)
        if rgb is not None and fmt != "glb":
            assert rgb == _rgb8(mesh.color), (fmt, mesh.name)


@pytest.mark.parametrize("fmt", FORMATS)
def test_ras_export_is_lps_with_x_and_y_negated(organs, tmp_path, fmt):
    def written(space):
        paths = export_meshes(organs, tmp_path / space, fmt, space)
        return _reopen(fmt, [p for p in paths if p.suffix != ".mtl"])

    lps, ras = written("LPS"), written("RAS")
    assert len(lps) == len(ras) == len(organs)
    for (n1, p1, f1, _), (n2, p2, f2, _) in zip(lps, ras, strict=True):
        assert n1 == n2
        if fmt == "stl":  # vertex order after merging depends on the coordinates: sort
            p1 = p1[np.lexsort(p1.T)]
            p2 = (p2 * LPS_TO_RAS)[np.lexsort((p2 * LPS_TO_RAS).T)]
            np.testing.assert_array_equal(p1, p2)
            continue
        np.testing.assert_array_equal(f1, f2)  # same triangles, same winding: not mirrored
        np.testing.assert_allclose(p2, p1 * LPS_TO_RAS, atol=1e-9)
        assert _volume(p2, f2) == pytest.approx(_volume(p1, f1), rel=1e-9)


def test_stl_header_says_space_and_nothing_else(organs, tmp_path):
    for space in ("LPS", "RAS"):
        paths = export_meshes(
            organs, tmp_path / space, "stl", space, patient=PATIENT, include_patient=True
        )
        for p in paths:
            data = p.read_bytes()
            header = data[:80]
            assert header.startswith(b"SurgTwin")
            assert f"SPACE={space}".encode() in header
            assert not header.lower().startswith(b"solid")  # never mistaken for ASCII STL
            (n,) = struct.unpack_from("<I", data, 80)
            assert len(data) == 84 + 50 * n
            assert b"Doe" not in data and b"9876543" not in data
            meta = trimesh.load(p).metadata
            assert f"SPACE={space}" in meta["header"]


def test_stl_normals_face_outward_in_ras(organs, tmp_path):
    (path,) = export_meshes(organs[2:], tmp_path, "stl", "RAS")
    data = path.read_bytes()
    rec = np.frombuffer(
        data,
        dtype=[("n", "<f4", (3,)), ("v", "<f4", (3, 3)), ("a", "<u2")],
        offset=84,
    )
    centre = rec["v"].reshape(-1, 3).mean(axis=0)
    outward = np.einsum("ij,ij->i", rec["n"], rec["v"].mean(axis=1) - centre)
    assert np.all(outward > 0)
    np.testing.assert_allclose(np.linalg.norm(rec["n"], axis=1), 1.0, atol=1e-6)


def test_obj_writes_material_library_with_colour(organs, tmp_path):
    paths = export_meshes(organs, tmp_path, "obj", "LPS")
    objs = [p for p in paths if p.suffix == ".obj"]
    mtls = [p for p in paths if p.suffix == ".mtl"]
    assert [p.stem for p in objs] == [p.stem for p in mtls]
    for mesh, obj, mtl in zip(organs, objs, mtls, strict=True):
        text = obj.read_text()
        assert f"mtllib {mtl.name}" in text and "# SPACE=LPS" in text
        kd = [line for line in mtl.read_text().splitlines() if line.startswith("Kd ")]
        np.testing.assert_allclose([float(v) for v in kd[0].split()[1:]], mesh.color, atol=1e-6)


def test_glb_is_one_scene_with_named_nodes_and_pbr_colours(organs, tmp_path):
    (path,) = export_meshes(organs, tmp_path, "glb", "RAS", base_name="case 12")
    assert path.name == "case_12.glb"
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    js_len, js_type = struct.unpack_from("<I4s", data, 12)
    assert js_type == b"JSON"
    doc = json.loads(data[20 : 20 + js_len])
    assert doc["asset"]["version"] == "2.0"
    assert doc["asset"]["extras"]["space"] == "RAS"
    assert doc["asset"]["extras"]["units"] == "mm"
    assert [n["name"] for n in doc["nodes"]] == [m.name for m in organs]
    assert doc["scenes"][0]["nodes"] == list(range(len(organs)))
    for mesh, mat in zip(organs, doc["materials"], strict=True):
        srgb = np.asarray(mesh.color, dtype=float)
        linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        np.testing.assert_allclose(mat["pbrMetallicRoughness"]["baseColorFactor"][:3], linear)
        np.testing.assert_allclose(mat["extras"]["display_color_srgb"], srgb)
    # trimesh reads the same names and materials
    scene = trimesh.load(path)
    assert sorted(scene.graph.nodes_geometry) == sorted(m.name for m in organs)
    for mesh in organs:
        factor = scene.geometry[mesh.name].visual.material.baseColorFactor
        srgb = np.asarray(mesh.color, dtype=float)
        linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
        np.testing.assert_allclose(np.asarray(factor[:3]) / 255.0, linear, atol=1 / 255)


def test_3mf_has_millimetres_names_and_colours(organs, tmp_path):
    (path,) = export_meshes(organs, tmp_path, "3mf", "LPS")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {"[Content_Types].xml", "_rels/.rels", "3D/3dmodel.model"} <= names
        root = ET.fromstring(zf.read("3D/3dmodel.model"))
    assert root.get("unit") == "millimeter"
    assert _3mf_colors(path) == [(m.name, _rgb8(m.color)) for m in organs]
    meta = {e.get("name"): e.text for e in root if e.tag.endswith("metadata")}
    assert meta["st:CoordinateSpace"] == "LPS"
    ns = "{http://schemas.microsoft.com/3dmanufacturing/core/2015/02}"
    items = root.findall(f"{ns}build/{ns}item")
    assert len(items) == len(organs)
    # trimesh (with lxml + networkx) reads the objects by name
    reopened = _reopen("3mf", [path])
    assert sorted(r[0] for r in reopened) == sorted(m.name for m in organs)


def test_vtp_field_data_records_space_name_colour(organs, tmp_path):
    paths = export_meshes(organs, tmp_path, "vtp", "RAS")
    for mesh, path in zip(organs, paths, strict=True):
        poly = pv.read(path)
        assert str(poly.field_data["SPACE"][0]) == "RAS"
        assert str(poly.field_data["Units"][0]) == "mm"
        assert str(poly.field_data["Name"][0]) == mesh.name
        np.testing.assert_allclose(poly.field_data["Color"][0], mesh.color)
        assert poly.points.dtype == np.float64


def test_ply_is_binary_little_endian_with_vertex_colours(organs, tmp_path):
    paths = export_meshes(organs, tmp_path, "ply", "LPS")
    for mesh, path in zip(organs, paths, strict=True):
        head = path.read_bytes()[:600]
        assert head.startswith(b"ply\nformat binary_little_endian 1.0\n")
        assert b"comment SPACE=LPS" in head and b"property uchar red" in head
        m = trimesh.load(path, process=False)
        assert np.all(m.visual.vertex_colors[:, :3] == _rgb8(mesh.color))


# ------------------------------------------------------------------------------------------
# file names


def test_file_names_are_sanitised_and_unique(tmp_path):
    ico = trimesh.creation.icosphere(1, 5.0)
    names = ["Kidney", "kidney", "../../etc/passwd", "CON", "Leber/Segment ä", "", "  "]
    meshes = [Mesh(ico.vertices, ico.faces, name=n) for n in names]
    paths = export_meshes(meshes, tmp_path, "stl", base_name=None)
    stems = [p.stem for p in paths]
    assert len({s.casefold() for s in stems}) == len(names)
    assert all(p.parent == tmp_path for p in paths)
    assert stems[0] == "Kidney" and stems[1] == "kidney_2"
    assert stems[3] == "_CON"
    assert stems[4] == "Leber_Segment_a"
    for s in stems:
        assert s and not s.startswith(".") and all(c.isalnum() or c in "._-" for c in s)
    prefixed = export_meshes(meshes[:1], tmp_path / "p", "ply", base_name="case-7")
    assert prefixed[0].name == "case-7_Kidney.ply"


# ------------------------------------------------------------------------------------------
# patient identifiers


@pytest.mark.parametrize("fmt", FORMATS)
def test_patient_identifiers_only_when_asked(organs, tmp_path, fmt):
    tokens = (b"Doe", b"Jane", b"PID-9876543")
    paths = export_meshes(organs, tmp_path / "anon", fmt, "LPS", patient=PATIENT)
    for p in paths:
        assert "Doe" not in p.name and "9876543" not in p.name
        data = _all_bytes(p)
        assert not any(t in data for t in tokens), p.name
    paths = export_meshes(
        organs, tmp_path / "named", fmt, "LPS", patient=PATIENT, include_patient=True
    )
    for p in paths:
        assert "Doe" not in p.name and "9876543" not in p.name
    data = b"".join(_all_bytes(p) for p in paths)
    if fmt == "stl":
        assert not any(t in data for t in tokens)  # STL has no place for it
    else:
        assert PATIENT.name.encode() in data and PATIENT.patient_id.encode() in data


@pytest.mark.parametrize("fmt", ["obj", "ply", "vtp"])
def test_names_and_patients_cannot_fake_a_space_marker(organs, tmp_path, fmt):
    tricky = Mesh(organs[2].points, organs[2].faces, name="Tumour SPACE=RAS (Müller)")
    patient = PatientInfo(name="Müller^Jörg SPACE=RAS", patient_id="A=1")
    paths = export_meshes([tricky], tmp_path, fmt, "LPS", patient=patient, include_patient=True)
    back = import_mesh(paths[0], "LPS")
    assert back.n_triangles == tricky.n_triangles
    np.testing.assert_allclose(back.bounds(), tricky.bounds(), atol=1e-3)
    data = _all_bytes(paths[0])
    assert "Müller^Jörg".encode() in data and b"A=1" in data


def test_include_patient_needs_patient(organs, tmp_path):
    with pytest.raises(MeshIOError, match="patient"):
        export_meshes(organs, tmp_path, "obj", include_patient=True)


# ------------------------------------------------------------------------------------------
# atomic writes


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_failure_mid_write_leaves_no_file(organs, tmp_path, monkeypatch, exc):
    real = mesh_export._write_stl
    calls = []

    def failing(fh, mesh, space):
        calls.append(mesh.name)
        if len(calls) == 2:  # the second structure fails halfway through
            fh.write(b"SurgTwin half a file")
            raise exc
        real(fh, mesh, space)

    monkeypatch.setattr(mesh_export, "_write_stl", failing)
    with pytest.raises(type(exc)):
        export_meshes(organs, tmp_path, "stl")
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []  # neither the finished first file nor any temp file


def test_failure_keeps_the_previous_file_intact(organs, tmp_path, monkeypatch):
    (first,) = export_meshes(organs[:1], tmp_path, "glb")
    before = first.read_bytes()

    def failing(fh, meshes, space, patient):
        fh.write(b"glTF")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mesh_export, "write_glb", failing)
    with pytest.raises(MeshIOError, match="No space left"):
        export_meshes(organs, tmp_path, "glb")
    assert first.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name]


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_temporary_files_after_success(organs, tmp_path, fmt):
    paths = export_meshes(organs, tmp_path, fmt)
    assert sorted(tmp_path.iterdir()) == sorted(paths)


# ------------------------------------------------------------------------------------------
# refusals


def test_refuses_empty_mesh_unknown_format_and_space(organs, tmp_path):
    empty = Mesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=int), name="Empty structure")
    with pytest.raises(MeshIOError, match=r"Empty structure.*empty"):
        export_meshes([organs[0], empty], tmp_path, "stl")
    with pytest.raises(MeshIOError, match="fbx"):
        export_meshes(organs, tmp_path, "fbx")
    with pytest.raises(MeshIOError, match="XYZ"):
        export_meshes(organs, tmp_path, "stl", "XYZ")
    with pytest.raises(MeshIOError, match="no meshes"):
        export_meshes([], tmp_path, "stl")
    bad = Mesh(organs[0].points.copy(), organs[0].faces, name="nan")
    bad.points[0, 0] = np.nan
    with pytest.raises(MeshIOError, match="non-finite"):
        export_meshes([bad], tmp_path, "ply")
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_file_as_output_folder(organs, tmp_path):
    target = tmp_path / "not_a_folder"
    target.write_bytes(b"x")
    with pytest.raises(MeshIOError, match="not_a_folder"):
        export_meshes(organs, target, "stl")


# ------------------------------------------------------------------------------------------
# import


@pytest.mark.parametrize("space", ["LPS", "RAS"])
@pytest.mark.parametrize("fmt", ["stl", "obj", "ply", "vtp"])
def test_round_trip_gives_the_same_lps_geometry(organs, tmp_path, fmt, space):
    paths = [p for p in export_meshes(organs, tmp_path, fmt, space) if p.suffix != ".mtl"]
    tol = 1e-3 if fmt in FLOAT32 else 1e-6
    for mesh, path in zip(organs, paths, strict=True):
        back = import_mesh(path, space)
        assert back.n_triangles == mesh.n_triangles
        assert back.is_watertight(), "STL vertices must be merged again"
        np.testing.assert_allclose(back.bounds(), mesh.bounds(), atol=tol)
        assert back.volume_mm3() == pytest.approx(mesh.volume_mm3(), rel=1e-4)
        if fmt == "stl":
            assert len(back.points) == len(mesh.points)
            # float32 in the file; negating x and y is exact, so the values match bit for bit
            a = mesh.points.astype(np.float32).astype(np.float64)
            a = a[np.lexsort(a.T)]
            b = back.points[np.lexsort(back.points.T)]
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(back.points, mesh.points, atol=tol)
            np.testing.assert_array_equal(back.faces, mesh.faces)
            assert back.color == pytest.approx(mesh.color, abs=1 / 255)
        if fmt in ("obj", "vtp"):
            assert back.name == mesh.name
        assert back.metadata["source_space"] == space


def test_import_refuses_a_contradicting_space_marker(organs, tmp_path):
    for fmt in ("stl", "obj", "ply", "vtp"):
        path = next(p for p in export_meshes(organs[:1], tmp_path / fmt, fmt, "RAS"))
        with pytest.raises(MeshIOError, match=r"RAS.*LPS") as err:
            import_mesh(path, "LPS")
        assert path.name in str(err.value)


def test_import_refuses_an_unknown_space(organs, tmp_path):
    (path,) = export_meshes(organs[:1], tmp_path, "stl")
    with pytest.raises(MeshIOError, match="unknown coordinate space"):
        import_mesh(path, "IJK")
    # an STL whose header names a space we do not know
    data = bytearray(path.read_bytes())
    data[:80] = b"Other tool SPACE=IJK".ljust(80, b" ")
    other = tmp_path / "other.stl"
    other.write_bytes(bytes(data))
    with pytest.raises(MeshIOError, match="IJK"):
        import_mesh(other, "LPS")


def test_import_ascii_stl_and_foreign_binary_stl(organs, tmp_path):
    mesh = organs[2]
    tm = mesh.to_trimesh()
    ascii_path = tmp_path / "tumour_ascii.stl"
    ascii_path.write_text(trimesh.exchange.stl.export_stl_ascii(tm))
    back = import_mesh(ascii_path, "LPS", name="Tumour", color=(1, 0, 0), role="tumor")
    assert (back.name, back.color, back.role) == ("Tumour", (1.0, 0.0, 0.0), "tumor")
    assert back.n_triangles == mesh.n_triangles and back.is_watertight()
    np.testing.assert_allclose(back.bounds(), mesh.bounds(), atol=1e-5)
    # a binary STL from another program, whose header starts with "solid" (it happens)
    binary = bytearray(trimesh.exchange.stl.export_stl(tm))
    binary[:80] = b"solid exported by some CAD tool".ljust(80, b"\0")
    foreign = tmp_path / "foreign.stl"
    foreign.write_bytes(bytes(binary))
    back = import_mesh(foreign, "RAS")
    assert back.is_watertight()
    np.testing.assert_allclose(back.points[:, :2].max(axis=0), -mesh.points[:, :2].min(axis=0))


def test_import_obj_with_quads_and_negative_indices(tmp_path):
    # a unit cube: 6 quads, relative indices, texture/normal references
    text = """# cube
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 0 0 1
v 1 0 1
v 1 1 1
v 0 1 1
vn 0 0 1
f -8/1/1 -5/1/1 -6/1/1 -7/1/1
f 5//1 6//1 7//1 8//1
f 1 2 6 5
f 2 3 7 6
f 3 4 8 7
f 4 1 5 8
"""
    path = tmp_path / "cube.obj"
    path.write_text(text)
    m = import_mesh(path, "LPS")
    assert m.n_triangles == 12 and m.is_watertight()
    assert m.volume_mm3() == pytest.approx(1.0)
    assert m.name == "cube"


@pytest.mark.parametrize("ext", ["stl", "obj", "ply", "vtp"])
def test_import_bad_files_raise_meshioerror(organs, tmp_path, ext):
    # missing, a folder, empty, garbage, truncated
    with pytest.raises(MeshIOError, match="does not exist"):
        import_mesh(tmp_path / f"missing.{ext}", "LPS")
    folder = tmp_path / f"folder.{ext}"
    folder.mkdir()
    with pytest.raises(MeshIOError, match="folder"):
        import_mesh(folder, "LPS")
    empty = tmp_path / f"empty.{ext}"
    empty.write_bytes(b"")
    with pytest.raises(MeshIOError, match="empty"):
        import_mesh(empty, "LPS")
    rng = np.random.default_rng(7)
    for n in (3, 83, 84, 1000, 5000):
        garbage = tmp_path / f"garbage{n}.{ext}"
        garbage.write_bytes(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        with pytest.raises(MeshIOError) as err:
            import_mesh(garbage, "LPS")
        assert garbage.name in str(err.value)
    good = next(p for p in export_meshes(organs[:1], tmp_path / "good", ext, "LPS"))
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 7):
        truncated = tmp_path / f"truncated{cut}.{ext}"
        truncated.write_bytes(data[:cut])
        try:
            m = import_mesh(truncated, "LPS")
        except MeshIOError as err:
            assert truncated.name in str(err)
        else:  # a text format cut at a line end is still a (smaller) mesh: never garbage
            assert ext == "obj" and 0 < m.n_triangles < organs[0].n_triangles


def test_import_truncated_binary_stl_says_so(organs, tmp_path):
    (path,) = export_meshes(organs[:1], tmp_path, "stl")
    cut = tmp_path / "cut.stl"
    cut.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(MeshIOError, match="truncated"):
        import_mesh(cut, "LPS")


def test_import_unknown_extension(tmp_path):
    path = tmp_path / "model.fbx"
    path.write_bytes(b"Kaydara FBX Binary")
    with pytest.raises(MeshIOError, match=r"model\.fbx.*\.stl"):
        import_mesh(path, "LPS")


def test_import_ply_from_ascii_and_with_quads(tmp_path):
    text = io.StringIO()
    text.write("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\n")
    text.write("property float z\nelement face 4\nproperty list uchar int vertex_indices\n")
    text.write("end_header\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n")
    text.write("3 0 2 1\n3 0 1 3\n3 0 3 2\n3 1 2 3\n")
    path = tmp_path / "tet.ply"
    path.write_text(text.getvalue())
    m = import_mesh(path, "RAS")
    assert m.n_triangles == 4 and m.is_watertight()
    assert m.volume_mm3() == pytest.approx(1 / 6)
    np.testing.assert_allclose(m.points[1], [-1.0, 0.0, 0.0])


COMPRESSORS = {"none": 0, "zlib": 1, "lz4": 2, "lzma": 3}  # vtkXMLWriter::CompressorType
HEADER_TYPES = {"UInt32": 32, "UInt64": 64}


def _vtk_writer_variants():
    for mode in ("ascii", "binary", "appended", "appended-base64"):
        for compressor in ("none", "zlib", "lzma"):
            for header in ("UInt32", "UInt64"):
                yield mode, compressor, header


@pytest.mark.parametrize("source", ["triangles", "quads", "strips"])
def test_import_vtp_written_by_vtk_in_every_variant(tmp_path, source):
    import vtk

    if source == "quads":
        poly = pv.Cube().clean()
    else:
        poly = pv.Sphere(theta_resolution=24, phi_resolution=16).clean().triangulate()
        if source == "strips":
            stripper = vtk.vtkStripper()
            stripper.SetInputData(poly)
            stripper.Update()
            poly = pv.wrap(stripper.GetOutput())
            assert poly.GetNumberOfStrips() > 0 and poly.GetNumberOfPolys() == 0
    reference = Mesh.from_pyvista(poly.triangulate())
    for i, (mode, compressor, header) in enumerate(_vtk_writer_variants()):
        writer = vtk.vtkXMLPolyDataWriter()
        writer.SetInputData(poly)
        path = tmp_path / f"variant{i}.vtp"
        writer.SetFileName(str(path))
        if mode == "ascii":
            writer.SetDataModeToAscii()
        elif mode == "binary":
            writer.SetDataModeToBinary()
        else:
            writer.SetDataModeToAppended()
            writer.SetEncodeAppendedData(mode == "appended-base64")
        writer.SetCompressorType(COMPRESSORS[compressor])
        writer.SetHeaderType(HEADER_TYPES[header])
        writer.SetByteOrder(i % 2)  # vtkXMLWriter: 0 big endian, 1 little endian
        writer.SetBlockSize(512)  # several compressed blocks
        assert writer.Write()
        mesh = import_mesh(path, "LPS")
        assert mesh.n_triangles == reference.n_triangles, (mode, compressor, header)
        np.testing.assert_allclose(mesh.points, reference.points, atol=1e-5)
        assert mesh.volume_mm3() == pytest.approx(reference.volume_mm3(), rel=1e-6)
        assert mesh.volume_mm3() > 0


def test_damaged_files_never_escape_as_other_errors(organs, tmp_path):
    rng = np.random.default_rng(11)
    for fmt in ("stl", "ply", "vtp", "obj"):
        good = next(p for p in export_meshes(organs[2:], tmp_path / fmt, fmt) if p.suffix != ".mtl")
        data = good.read_bytes()
        for k in range(40):
            damaged = bytearray(data)
            if k % 3 == 0:
                for _ in range(8):
                    damaged[rng.integers(len(damaged))] = rng.integers(256)
            elif k % 3 == 1:
                damaged = damaged[: rng.integers(1, len(damaged))]
            else:
                at = rng.integers(len(damaged))
                damaged[at : at + rng.integers(1, 60)] = b""
            path = tmp_path / f"damaged{k}.{fmt}"
            path.write_bytes(bytes(damaged))
            try:
                mesh = import_mesh(path, "LPS")
            except MeshIOError as err:
                assert path.name in str(err)
            else:
                assert mesh.n_triangles > 0 and np.all(np.isfinite(mesh.points))
