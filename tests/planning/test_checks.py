"""Plan building (planning.case) and plan checks (planning.checks) on the bundled phantom."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surgtwin.planning import case, checks
from testdata import REPO

PHANTOM = REPO / "sample_dicom"


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((PHANTOM / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def built(truth):
    plan = case.build_plan(PHANTOM)
    return plan, case.CaseGeometry(plan)


def _fresh(built):
    """A copy of the built plan without implants or cuts (structures shared, read-only; the
    label map copied, so that cuts leave the module's plan alone)."""
    from surgtwin.planning.plan import Plan
    from surgtwin.segmentation.labelmap import LabelMap

    plan, _ = built
    lm = plan.labelmap
    new = Plan(plan.name, plan.case, LabelMap(lm.geometry, lm.array.copy(), lm.labels.values()))
    for s in plan.structures.values():
        new.structures.add(s)
    return new


def test_phantom_requests(truth):
    (req,) = case.phantom_critical_requests(case.phantom_ground_truth(PHANTOM))
    assert req.name == case.CANAL_NAME and req.hu == case.DEFAULT_CRITICAL_HU
    assert req.seeds_lps == tuple(tuple(v["canal"]["centre"]) for v in truth["levels"].values())
    assert case.phantom_ground_truth(REPO / "src") is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": " "},
        {"name": "X"},  # neither seeds nor mesh
        {"name": "X", "seeds_lps": ((0, 0, 0),), "mesh_path": "a.stl"},
        {"name": "X", "seeds_lps": ((0, 0, 0),), "hu": (10, 0)},
        {"name": "X", "seeds_lps": ((0, 0, 0),), "role": "bone"},
    ],
)
def test_critical_request_validation(kwargs):
    with pytest.raises(case.CaseError):
        case.CriticalRequest(**kwargs)


def test_fields_are_cached_within_the_process(built):
    plan, geo = built
    canal = plan.structures["Spinal canal"]
    field = geo.field(canal)
    assert field is geo.field(canal)
    assert case.CaseGeometry(plan).field(canal) is field  # a new geometry, same plan data
    assert float(field.sample(np.array([[0.0, 0.0, 0.0]]))[0][0]) < -5  # the canal's centre


def test_place_implant_names_and_sizes(built, truth):
    plan = _fresh(built)
    s = truth["levels"]["L4"]["pedicle_screws"]["left"]
    rec, spec = case.place_implant(
        plan, "pedicle_screw", s["entry"], s["target"], diameter_mm=6.3, length_mm=47
    )
    assert rec.name == "Pedicle screw 1" and spec.key == "pedicle-6.5x45"
    rec2, _ = case.place_implant(plan, "pedicle_screw", s["entry"], s["target"])
    assert rec2.name == "Pedicle screw 2"
    with pytest.raises(case.CaseError, match="exists already"):
        case.place_implant(plan, "pedicle_screw", s["entry"], s["target"], name="Pedicle screw 1")
    with pytest.raises(case.CaseError, match="positive"):
        case.place_implant(plan, "pedicle_screw", s["entry"], s["target"], diameter_mm=-1)
    entry, tip = checks.entry_and_tip(rec)
    assert entry == pytest.approx(s["entry"], abs=1e-9)
    assert np.linalg.norm(tip - entry) == pytest.approx(45.0)


def test_report_layout_and_method(built, truth, monkeypatch):
    plan = _fresh(built)
    s = truth["levels"]["L4"]["pedicle_screws"]["left"]
    case.place_implant(
        plan, "pedicle_screw", s["entry"], s["target"], diameter_mm=6.5, length_mm=45
    )
    report = checks.check_plan(plan, built[1])
    doc = report.to_dict()
    assert set(doc) >= {"implants", "resections"}
    (imp,) = doc["implants"]
    assert set(imp) == {"name", "type", "entry_lps", "tip_lps", "checks"}
    keys = {"structure", "min_clearance_mm", "collides", "penetration_mm", "grade", "status"}
    assert all(keys <= set(c) for c in imp["checks"])
    canal = next(c for c in imp["checks"] if c["structure"] == "Spinal canal")
    assert canal["method"] == "exact"  # a small plan: always exact
    # the live path alone, when the plan is large: confirmed by the exact path within 1 mm
    # of the margin (2.9 mm is within 1 mm of the 2 mm margin)
    monkeypatch.setattr(checks, "EXACT_ALWAYS_PAIRS", 0)
    again = checks.check_plan(plan, built[1]).implants[0].checks[0]
    assert again.method == "exact"
    assert again.min_clearance_mm == pytest.approx(canal["min_clearance_mm"], abs=1e-3)
    # a thin screw further from the canal stays on the live path
    case.place_implant(plan, "pedicle_screw", s["entry"], s["target"], diameter_mm=4.5, name="thin")
    thin = next(i for i in checks.check_plan(plan, built[1]).implants if i.name == "thin")
    row = next(c for c in thin.checks if c.structure == "Spinal canal")
    assert row.method == "live" and row.min_clearance_mm > 3.0 and row.status == "ok"


def test_cut_structure(built, truth):
    plan = _fresh(built)
    centre = truth["levels"]["L4"]["body_centre"]
    command = checks.plane_cut(plan, "bone", centre, [0, 0, 1])
    command.do()
    cut = command.cut
    p = cut.parameters
    assert cut.name == "Cut 1" and cut.structure == "Bone" and plan.cuts["Cut 1"] == cut
    assert p["removed_mm3"] + p["remaining_mm3"] == pytest.approx(p["structure_mm3"], rel=1e-3)
    assert p["target_removed"] is None and p["margin_mm"] is None
    with pytest.raises(case.CaseError, match="does not cut"):
        checks.plane_cut(plan, "Bone", [0, 0, 500], [0, 0, 1])
    with pytest.raises(case.CaseError, match="exists already"):
        checks.cut_structure(
            plan, "Bone", "plane", {"point": centre, "normal": [0, 0, -1]}, name="Cut 1"
        )


def test_target_resection_and_mesh_structure(built, tmp_path):
    """A sphere imported as a target inside L4's body: a cut removing it reports the margin;
    mesh structures (no voxel field) are checked on the exact path."""
    import trimesh

    from surgtwin.geometry.mesh import Mesh
    from surgtwin.planning.plan import Structure

    plan = _fresh(built)
    ball = trimesh.creation.icosphere(subdivisions=3, radius=4.0)
    ball.apply_translation([0.0, -22.5, 8.0])
    mesh = Mesh(ball.vertices, ball.faces, name="Tumour", role="target")
    plan.structures.add(Structure("Tumour", "target", source="mesh", mesh=mesh))
    command = checks.plane_cut(plan, "Bone", [0, -22.5, 2.0], [0, 0, 1])
    command.do()
    cut = command.cut
    assert cut.parameters["target_removed"] is True
    assert cut.parameters["margin_mm"] == pytest.approx(2.0, abs=0.05)  # 8 - 4 - 2
    report = checks.check_plan(plan)
    assert report.resections[0].target_removed is True
    case.place_implant(plan, "pedicle_screw", [0, 10, 8], [0, -40, 8], diameter_mm=6.5, name="hit")
    row = next(c for c in checks.check_plan(plan).implants[0].checks if c.structure == "Tumour")
    assert row.method == "exact" and row.collides and row.status == "fail"
