"""The .surgplan file: exact round trip, hostile files refused without writing, autosave."""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from surgtwin.geometry.mesh import Mesh
from surgtwin.imaging.volume import ImageGeometry
from surgtwin.planning.commands import CommandStack, LabelEditCommand, MoveImplant, SetNote
from surgtwin.planning.plan import CaseReference, Cut, Implant, Measurement, Plan, Structure
from surgtwin.planning.planfile import (
    Autosaver,
    Limits,
    PlanFileError,
    find_recoverable,
    load_plan,
    read_extra_member,
    save_plan,
)
from surgtwin.segmentation.labelmap import LabelMap, Role


def tetra(scale: float = 1.0) -> Mesh:
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float) * scale + 0.1234567891
    faces = [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]
    return Mesh(pts, faces, "cage model", (0.2, 0.4, 0.6), "other", {"source": "library"})


def make_plan() -> Plan:
    direction = np.array([[1, 0, 0], [0, np.cos(0.1), -np.sin(0.1)], [0, np.sin(0.1), np.cos(0.1)]])
    geometry = ImageGeometry((12, 16, 20), (0.7, 0.7, 1.25), (-12.3, -30.5, 100.0), direction)
    lm = LabelMap(geometry)
    bone = lm.new_label("L4", Role.BONE)
    mask = np.zeros(geometry.shape, bool)
    mask[2:8, 3:12, 4:15] = True
    lm.change("threshold", bone.value, mask, label=bone)
    lm.update_label("hide", "L4", opacity=0.35, visible=False)
    case = CaseReference("1.2.826.0.1.3", ("1.2.826.0.1.3.4",), "1.2.826.0.1.3.9", "/data/ct")
    plan = Plan("L4-L5 fusion", case, lm)
    plan.structures.add(Structure("L4", "bone", (0.9, 0.85, 0.72), label_value=1))
    plan.structures.add(Structure("cage", "other", source="mesh", mesh=tetra(7.3)))
    rng = np.random.default_rng(1)
    pose = np.eye(4)
    pose[:3, :3] = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    pose[:3, 3] = rng.normal(size=3) * 50
    plan.implants.add(
        Implant("L4 left", "pedicle_screw", "s-6.5x45", {"length_mm": 45, "d": [6.5]}, pose)
    )
    plan.cuts.add(Cut("cut", "L4", "sphere", {"center": [1.5, 2, 3], "radius_mm": 4}))
    plan.measurements.add(Measurement("m", "angle", [(1, 0, 0), (0, 0, 0), (0.3, 1, 0)]))
    plan.notes = "Entry 2 mm lateral — check canal ✓"
    return plan


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def private_temps() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("surgtwin-plan")}


def test_save_load_gives_an_identical_plan(tmp_path):
    plan = make_plan()
    path = save_plan(plan, tmp_path / "case.surgplan")
    assert tree(tmp_path) == {"case.surgplan"}  # no temporary files left behind
    loaded = load_plan(path)
    assert loaded.to_dict() == plan.to_dict()
    np.testing.assert_allclose(
        loaded.implants["L4 left"].pose, plan.implants["L4 left"].pose, rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(loaded.labelmap.array, plan.labelmap.array)
    assert loaded.labelmap.labels == plan.labelmap.labels  # incl. opacity 0.35, hidden
    np.testing.assert_array_equal(
        loaded.labelmap.geometry.direction, make_plan().labelmap.geometry.direction
    )
    a, b = loaded.structures["cage"].mesh, plan.structures["cage"].mesh
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.faces, b.faces)
    assert (a.name, a.color, a.role, a.metadata) == (b.name, b.color, b.role, b.metadata)
    assert loaded.measurements["m"].value == plan.measurements["m"].value
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        doc = json.loads(zf.read("plan.json"))
    assert {"plan.json", "labelmap.seg.nrrd"} <= names and any(n.endswith(".vtp") for n in names)
    assert doc["schema_version"] == 1


def test_empty_plan_and_empty_labelmap_round_trip(tmp_path):
    plan = Plan()
    assert load_plan(save_plan(plan, tmp_path / "a.surgplan")).to_dict() == plan.to_dict()
    plan.labelmap = LabelMap(ImageGeometry((2, 3, 4), (1.0, 1.0, 1.0), (0, 0, 0), np.eye(3)))
    assert load_plan(save_plan(plan, tmp_path / "b.surgplan")).to_dict() == plan.to_dict()


def test_dicom_copies_only_when_asked(tmp_path):
    src = tmp_path / "IM0001.dcm"
    src.write_bytes(b"\0" * 128 + b"DICM" + b"x" * 100)
    path = save_plan(make_plan(), tmp_path / "p.surgplan", dicom_files=[src])
    with zipfile.ZipFile(path) as zf:
        assert zf.read("dicom/00000_IM0001.dcm") == src.read_bytes()
    assert load_plan(path).case.embedded_dicom == ("dicom/00000_IM0001.dcm",)


# ---------------------------------------------------------------------- hostile files


def good_json() -> bytes:
    buf = io.BytesIO()
    plan = Plan("x")
    doc = {"format": "surgtwin-plan", "schema_version": 1, "plan": plan.to_dict()}
    buf.write(json.dumps(doc).encode())
    return buf.getvalue()


def zip_with(path: Path, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return path


def with_plan(**changes) -> bytes:
    doc = json.loads(good_json())
    for key, value in changes.items():
        target = doc
        *parents, last = key.split("__")
        for p in parents:
            target = target[p]
        target[last] = value
    return json.dumps(doc).encode()


def huge_declared(path: Path) -> Path:
    zip_with(path, {"plan.json": good_json()})
    raw = bytearray(path.read_bytes())
    cd = raw.find(b"PK\x01\x02")
    raw[cd + 24 : cd + 28] = struct.pack("<I", 0xFFFFFFF0)  # uncompressed size: ~4 GiB
    path.write_bytes(bytes(raw))
    return path


HOSTILE = {
    "zip-slip": (lambda p: zip_with(p, {"plan.json": good_json(), "../evil": b"x"}), "unsafe"),
    "absolute": (lambda p: zip_with(p, {"plan.json": good_json(), "/tmp/evil": b"x"}), "unsafe"),
    "backslash": (lambda p: zip_with(p, {"plan.json": good_json(), "..\\evil": b"x"}), "unsafe"),
    "drive": (lambda p: zip_with(p, {"plan.json": good_json(), "C:/evil": b"x"}), "unsafe"),
    "huge declared": (huge_declared, "bytes; at most"),
    "zip bomb": (
        lambda p: zip_with(p, {"plan.json": good_json(), "meshes/0.vtp": bytes(30 << 20)}),
        "zip bomb",
    ),
    "truncated": (
        lambda p: p.write_bytes(save_plan(make_plan(), p).read_bytes()[:3000]) and p,
        "damaged",
    ),
    "not a zip": (lambda p: p.write_bytes(b"hello, not a plan") and p, "damaged"),
    "no plan.json": (lambda p: zip_with(p, {"notes.txt": b"x"}), "plan.json is missing"),
    "schema 99": (
        lambda p: zip_with(p, {"plan.json": with_plan(schema_version=99)}),
        "made by a newer SurgTwin",
    ),
    "not json": (lambda p: zip_with(p, {"plan.json": b"{not json"}), "not valid JSON"),
    "wrong types": (
        lambda p: zip_with(p, {"plan.json": with_plan(plan__implants=[{"name": 3}])}),
        "not valid",
    ),
    "bool for number": (
        lambda p: zip_with(p, {"plan.json": with_plan(plan__notes=True)}),
        "not valid",
    ),
    "bad pose": (
        lambda p: zip_with(
            p,
            {
                "plan.json": with_plan(
                    plan__implants=[
                        {"name": "s", "kind": "k", "spec_key": "", "parameters": {}, "pose": [1]}
                    ]
                )
            },
        ),
        "not valid",
    ),
    "missing mesh member": (
        lambda p: zip_with(
            p,
            {
                "plan.json": json.dumps(
                    {
                        "format": "surgtwin-plan",
                        "schema_version": 1,
                        "plan": {
                            **json.loads(good_json())["plan"],
                            "structures": [
                                {
                                    **Structure("L4", label_value=1).to_dict(),
                                    "source": "mesh",
                                    "label_value": None,
                                    "mesh": {
                                        "file": "meshes/x.vtp",
                                        "sha256": "0",
                                        "name": "m",
                                        "color": [1, 1, 1],
                                        "role": "other",
                                    },
                                }
                            ],
                        },
                    }
                ).encode()
            },
        ),
        "is missing",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_plan_files_are_refused_and_nothing_is_written(tmp_path, case):
    make, message = HOSTILE[case]
    target = tmp_path / "target"
    target.mkdir()
    path = make(target / "hostile.surgplan")
    outside = tmp_path.parent
    before_here, before_outside = tree(target), set(os.listdir(outside))
    before_temps = private_temps()
    with pytest.raises(PlanFileError, match=message) as info:
        load_plan(path)
    assert "hostile.surgplan" in str(info.value)  # the message names the file
    assert tree(target) == before_here
    assert set(os.listdir(outside)) == before_outside
    assert private_temps() == before_temps
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()


def test_damaged_member_content_is_refused(tmp_path):
    path = save_plan(make_plan(), tmp_path / "p.surgplan")
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    doc = json.loads(members["plan.json"])
    doc["plan"]["labelmap"]["sha256"] = "0" * 64
    members["plan.json"] = json.dumps(doc).encode()
    zip_with(tmp_path / "q.surgplan", members, zipfile.ZIP_STORED)
    with pytest.raises(PlanFileError, match="label map is damaged"):
        load_plan(tmp_path / "q.surgplan")


def test_limits_on_member_count(tmp_path):
    path = zip_with(tmp_path / "m.surgplan", {f"x{i}": b"" for i in range(20)})
    with pytest.raises(PlanFileError, match="20 members; at most 10"):
        load_plan(path, limits=Limits(max_members=10))


# ---------------------------------------------------------------------- autosave


def test_autosave_only_when_dirty_and_found_for_recovery(tmp_path):
    plan = make_plan()
    stack = CommandStack(plan)
    auto = Autosaver(plan, stack, tmp_path, interval_s=60)
    assert auto.maybe_save(0.0) is None  # clean: nothing written
    assert tree(tmp_path) == set()
    stack.push(SetNote(plan, "changed"))
    written = auto.maybe_save(1.0)
    assert written == tmp_path / "L4-L5_fusion.autosave.surgplan"
    assert load_plan(written).notes == "changed"
    stack.push(SetNote(plan, "changed again"))
    assert auto.maybe_save(30.0) is None  # within the interval
    assert auto.maybe_save(61.0) == written
    assert auto.maybe_save(200.0) is None  # nothing new since the last autosave
    assert find_recoverable(tmp_path) == [written]
    # the plan saved later than the autosave: nothing to recover
    saved = save_plan(plan, tmp_path / "L4-L5_fusion.surgplan")
    os.utime(written, ns=(1, 1))
    assert find_recoverable(tmp_path) == []
    stack.set_clean()
    auto.discard()
    assert tree(tmp_path) == {saved.name}
    # drags and label edits count as changes too
    stack.push(MoveImplant(plan, "L4 left", np.eye(4), drag_id=1))
    edit = plan.labelmap.change("erase", 1, np.zeros(plan.labelmap.geometry.shape, bool))
    stack.push(LabelEditCommand(plan, edit))
    assert auto.maybe_save(500.0) is not None


def test_extra_members_are_kept_apart_and_read_back(tmp_path):
    """Other layers (the training mode's attempt record) store small members ``extra/<name>``
    that the plan ignores; names are checked, sizes limited, hostile archives refused."""
    plan = make_plan()
    path = save_plan(plan, tmp_path / "p.surgplan", extra={"attempt.json": b'{"a": 1}'})
    assert load_plan(path).to_dict() == plan.to_dict()
    assert read_extra_member(path, "attempt.json") == b'{"a": 1}'
    assert read_extra_member(path, "other.json") is None
    with pytest.raises(PlanFileError, match="larger than 3 bytes"):
        read_extra_member(path, "attempt.json", max_bytes=3)
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(PlanFileError, match="invalid extra member name"):
            save_plan(plan, tmp_path / "q.surgplan", extra={bad: b""})
    assert not (tmp_path / "q.surgplan").exists()
    evil = tmp_path / "evil.surgplan"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("extra/../../x", b"x")
    with pytest.raises(PlanFileError, match="unsafe name"):
        read_extra_member(evil, "x")
    with pytest.raises(PlanFileError, match="does not exist"):
        read_extra_member(tmp_path / "missing.surgplan", "x")
