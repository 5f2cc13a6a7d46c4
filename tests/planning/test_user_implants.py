"""User mesh-file (``user_stl``) implants: placed from a catalogue and checked like the
parametric ones, on the bundled phantom."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from surgtwin.planning import case, checks
from surgtwin.planning.implants import USER_STL, Catalogue, ImplantSpec, spec_from_record
from testdata import REPO

PHANTOM = REPO / "sample_dicom"
TRUTH = json.loads((PHANTOM / "ground_truth.json").read_text())
LEFT = TRUTH["levels"]["L4"]["pedicle_screws"]["left"]


def cylinder_stl(folder: Path, diameter_mm: float = 6.5, length_mm: float = 45.0) -> Path:
    """A closed cylinder centred on the origin, its axis along z."""
    mesh = trimesh.creation.cylinder(radius=diameter_mm / 2, height=length_mm, sections=96)
    path = folder / "cylinder.stl"
    mesh.export(path)
    return path


def user_spec(path: Path, length_mm: float = 45.0) -> ImplantSpec:
    return ImplantSpec(
        "user-cylinder",
        USER_STL,
        "Cylinder 6.5 x 45",
        "Workshop",
        {"length_mm": length_mm, "diameter_mm": 6.5},
        file=str(path),
        space="LPS",
        axis_entry=(0.0, 0.0, length_mm / 2),
        axis_direction=(0.0, 0.0, -1.0),
    )


@pytest.fixture(scope="module")
def built():
    plan = case.build_plan(PHANTOM)
    return plan, case.CaseGeometry(plan)


def _canal(report, name: str):
    implant = next(i for i in report.implants if i.name == name)
    return next(c for c in implant.checks if c.structure == case.CANAL_NAME)


def test_user_stl_is_checked_like_a_parametric_screw(built, tmp_path):
    plan, geo = built
    spec = user_spec(cylinder_stl(tmp_path))
    cat = Catalogue([*Catalogue.builtin(), spec])
    record, used = case.place_implant(
        plan, USER_STL, LEFT["entry"], LEFT["target"], catalogue=cat, name="stl"
    )
    screw, _ = case.place_implant(
        plan, "pedicle_screw", LEFT["entry"], LEFT["target"], diameter_mm=6.5, length_mm=45
    )
    try:
        assert used == spec
        # the record alone rebuilds the model: no catalogue needed to check the plan
        assert record.parameters["file"] == str(Path(spec.file).resolve())
        assert record.parameters["axis_direction"] == [0.0, 0.0, -1.0]
        rebuilt = spec_from_record(record.kind, record.spec_key, spec.name, record.parameters)
        assert rebuilt.length_mm == 45.0 and rebuilt.diameter_mm == 6.5
        entry, tip = checks.entry_and_tip(record)
        assert entry == pytest.approx(LEFT["entry"], abs=1e-9)
        assert np.linalg.norm(tip - entry) == pytest.approx(45.0)
        # the cylinder's surface, placed, lies 3.25 mm around the planned axis
        smp = checks.implant_samples(record)
        pts = smp.mesh.transformed(np.asarray(record.pose)).points
        axis = (tip - entry) / 45.0
        rel = pts - entry
        radial = np.linalg.norm(rel - np.outer(rel @ axis, axis), axis=1)
        assert radial.max() == pytest.approx(3.25, abs=1e-3)

        report = checks.check_plan(plan, geo)
        ours, theirs = _canal(report, "stl"), _canal(report, screw.name)
        expected = LEFT["min_canal_distance_mm"] - 3.25
        assert ours.min_clearance_mm == pytest.approx(expected, abs=0.3)
        assert ours.min_clearance_mm == pytest.approx(theirs.min_clearance_mm, abs=0.3)
        assert ours.status == theirs.status == "ok"
        assert next(i for i in report.implants if i.name == "stl").type == USER_STL
    finally:
        plan.implants.remove("stl")
        plan.implants.remove(screw.name)


def test_missing_stl_file_names_the_implant_and_the_file(built, tmp_path):
    plan, _geo = built
    path = cylinder_stl(tmp_path)
    cat = Catalogue([user_spec(path)])
    record, _ = case.place_implant(
        plan, USER_STL, LEFT["entry"], LEFT["target"], catalogue=cat, name="gone"
    )
    try:
        path.unlink()
        with pytest.raises(case.CaseError, match="gone") as info:
            checks.implant_samples(record)
        assert str(path.resolve()) in str(info.value)
        with pytest.raises(case.CaseError, match=r"cylinder\.stl"):
            checks.entry_and_tip(record)
    finally:
        plan.implants.remove("gone")


def test_place_implant_by_spec_key(built, tmp_path):
    plan, _geo = built
    short = ImplantSpec.from_dict({**user_spec(cylinder_stl(tmp_path)).to_dict(), "key": "short"})
    cat = Catalogue([user_spec(cylinder_stl(tmp_path)), short])
    with pytest.raises(case.CaseError, match="nope"):
        case.place_implant(
            plan, USER_STL, LEFT["entry"], LEFT["target"], catalogue=cat, spec_key="nope"
        )
    record, spec = case.place_implant(
        plan, USER_STL, LEFT["entry"], LEFT["target"], catalogue=cat, spec_key="short"
    )
    plan.implants.remove(record.name)
    assert spec.key == record.spec_key == "short"


def test_default_axis_and_appending_to_a_user_catalogue(tmp_path):
    from surgtwin.planning.implants import CatalogueError, append_to_catalogue_file, default_axis

    path = cylinder_stl(tmp_path)
    points = trimesh.load(path).vertices
    entry, length = default_axis(points)
    assert entry == pytest.approx((0.0, 0.0, 22.5), abs=1e-6)
    assert length == pytest.approx(45.0)
    entry, length = default_axis(points, (1.0, 0.0, 0.0))
    assert entry == pytest.approx((-3.25, 0.0, 0.0), abs=1e-3)
    assert length == pytest.approx(6.5, abs=1e-3)

    target = tmp_path / "implants" / "user_catalogue.json"
    spec = user_spec(path)
    append_to_catalogue_file(target, spec)
    other = ImplantSpec.from_dict({**spec.to_dict(), "key": "other"})
    append_to_catalogue_file(target, other)
    assert Catalogue.read_file(target) == [spec, other]
    with pytest.raises(CatalogueError, match="user-cylinder"):
        append_to_catalogue_file(target, spec)
    assert len(Catalogue.load([target])) == len(Catalogue.builtin()) + 2
