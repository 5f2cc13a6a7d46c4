"""Scenarios: bundled ones, files and folders, the locked expert plan, authoring."""

from __future__ import annotations

import json
import zipfile

import pytest

from surgtwin.errors import SurgTwinError
from surgtwin.planning.case import place_implant
from surgtwin.planning.plan import Cut
from surgtwin.planning.planfile import load_plan, save_plan
from surgtwin.training import (
    BUNDLED,
    AttemptMeta,
    ExpertPlanLocked,
    ScenarioError,
    Tolerances,
    Weights,
    author_scenario,
    list_scenarios,
    load_attempt,
    load_scenario,
    save_attempt,
    save_scenario,
    score_attempt,
)


@pytest.fixture(scope="module")
def l4():
    return load_scenario("l4-bilateral")


@pytest.fixture(scope="module")
def saved(l4, tmp_path_factory):
    """The bundled L4 scenario written as a .surgscn file and as a folder."""
    root = tmp_path_factory.mktemp("scenarios")
    return save_scenario(l4, root / "l4.surgscn"), save_scenario(l4, root / "l4-folder")


def test_bundled_scenarios_are_listed(monkeypatch, tmp_path):
    monkeypatch.setenv("SURGTWIN_DATA_DIR", str(tmp_path))  # no user scenarios
    infos = list_scenarios()
    assert [i.key for i in infos] == ["l4-bilateral", "l3-l5-screws", "l4-lesion"] == list(BUNDLED)
    lesion = infos[2]
    assert lesion.allowed_implants == () and "5 mm" in lesion.task
    assert all(i.source == "bundled" and i.time_limit_s for i in infos)
    assert [i.location for i in infos] == list(BUNDLED)
    assert infos[0].allows("pedicle-6.5x45") and not infos[0].allows("cortical-3.5x30")


def test_expert_plan_is_locked_until_results(l4):
    fresh = load_scenario("l4-bilateral")
    with pytest.raises(ExpertPlanLocked, match="score the attempt first"):
        fresh.expert_plan()
    assert "locked" in repr(fresh) and not fresh.results_unlocked
    doc = json.dumps(fresh.info.to_dict())
    assert 'pedicle_screw"' not in doc and "pose" not in doc  # the settings hold no plan
    case = fresh.case_plan()
    assert len(case.implants) == 0 and len(case.cuts) == 0
    assert {"Bone", "Spinal canal"} <= set(case.structures)
    fresh.unlock_results()
    expert = fresh.expert_plan()
    assert list(expert.implants) == ["L4 left pedicle screw", "L4 right pedicle screw"]
    assert fresh.expert_counts() == (2, 0)


def test_case_plans_are_independent_copies(l4):
    a, b = l4.case_plan(), l4.case_plan()
    assert a.labelmap is not b.labelmap
    assert a.labelmap.array.base is not b.labelmap.array.base
    place_implant(a, "pedicle_screw", [20, 10, 2], [9, -33, 2], diameter_mm=6.5)
    assert len(b.implants) == 0 and len(l4.case_plan().implants) == 0


def test_attempt_file_never_holds_the_expert_plan(l4, tmp_path):
    plan = l4.case_plan("my attempt")
    place_implant(plan, "pedicle_screw", [20, 10, 2], [9, -33, 2], diameter_mm=6.5)
    meta = AttemptMeta("l4-bilateral", "A. Resident", "2024-05-01T10:00:00+00:00", 300.0, 2)
    path = save_attempt(plan, tmp_path / "attempt.surgplan", meta)
    with zipfile.ZipFile(path) as zf:
        blobs = {name: zf.read(name) for name in zf.namelist()}
    assert "extra/attempt.json" in blobs
    for name, data in blobs.items():
        assert b"L4 left pedicle screw" not in data, name
        assert b"expert" not in data.lower(), name
    back, meta_back = load_attempt(path)
    assert list(back.implants) == ["Pedicle screw 1"]
    assert meta_back == meta
    # a plain plan file is an attempt without a record
    save_plan(plan, tmp_path / "plain.surgplan")
    assert load_attempt(tmp_path / "plain.surgplan")[1] is None


def test_scenario_file_and_folder_round_trip(l4, saved):
    zip_path, folder = saved
    assert zip_path.suffix == ".surgscn" and (folder / "case.surgplan").is_file()
    assert {p.name for p in folder.iterdir()} == {"case.surgplan", "scenario.json", "expert.json"}
    with zipfile.ZipFile(zip_path) as zf:
        names = set(zf.namelist())
    assert {"plan.json", "extra/scenario.json", "extra/expert.json"} <= names
    for source in (zip_path, folder, str(zip_path)):
        back = load_scenario(source)
        assert back.info.location == str(source)
        assert back.info.to_dict() == l4.info.to_dict()
        assert back.fingerprint() == l4.fingerprint()
        assert back.expert_counts() == (2, 0)
        with pytest.raises(ExpertPlanLocked):
            back.expert_plan()
        case = back.case_plan()
        assert list(case.structures) == list(l4.case_plan().structures)
        assert case.labelmap is not None and len(case.implants) == 0
    # opened as a plain plan, a scenario file is the case: no expert implants
    assert len(load_plan(zip_path).implants) == 0
    doc = json.loads(zipfile.ZipFile(zip_path).read("extra/scenario.json"))
    assert doc["format"] == "surgtwin-scenario" and "entry 25" in doc["scoring"]


def test_loaded_scenario_scores_its_expert_100(saved):
    back = load_scenario(saved[0])
    back.unlock_results()
    result = score_attempt(back.expert_plan(), back)
    assert result.score == 100.0 and result.passed


def test_hostile_and_damaged_scenarios_are_refused(saved, tmp_path):
    zip_path, folder = saved
    evil = tmp_path / "evil.surgscn"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.txt", b"x")
        zf.writestr("extra/scenario.json", b"{}")
    with pytest.raises(SurgTwinError, match="unsafe name"):
        load_scenario(evil)
    with pytest.raises(ScenarioError, match="neither a bundled scenario"):
        load_scenario(tmp_path / "missing.surgscn")
    with pytest.raises(ScenarioError, match="not a SurgTwin scenario file"):
        save_plan(load_plan(zip_path), tmp_path / "plain.surgscn")
        load_scenario(tmp_path / "plain.surgscn")
    newer = tmp_path / "newer"
    newer.mkdir()
    doc = json.loads((folder / "scenario.json").read_text())
    (newer / "scenario.json").write_text(json.dumps({**doc, "schema_version": 99}))
    with pytest.raises(ScenarioError, match="newer SurgTwin"):
        load_scenario(newer)
    (newer / "scenario.json").write_text(json.dumps({**doc, "weights": {"entyr": 3}}))
    with pytest.raises(ScenarioError, match="unknown setting"):
        load_scenario(newer)
    (newer / "scenario.json").write_text(json.dumps(doc))
    bad = load_scenario(newer)  # settings are fine; expert.json is missing
    with pytest.raises(ScenarioError, match=r"expert\.json is missing"):
        bad.expert_counts()


def test_settings_validation():
    assert Tolerances.from_dict({"entry_mm": 2}).entry_mm == 2.0
    assert Tolerances.from_dict(None) == Tolerances()
    with pytest.raises(ScenarioError, match="max_grade"):
        Tolerances(max_grade="F")
    with pytest.raises(ScenarioError, match="must be a number"):
        Weights.from_dict({"entry": -1})
    with pytest.raises(ScenarioError, match="must be a number"):
        Weights.from_dict({"entry": True})


def test_author_from_a_saved_plan(l4):
    l4.unlock_results()
    expert = l4.expert_plan()
    l4._unlocked = False
    expert.name = "My L4 case"
    scenario = author_scenario(expert, "Place both L4 screws.", time_limit_s=600)
    info = scenario.info
    assert info.key == "my-l4-case" and info.title == "My L4 case"
    assert info.time_limit_s == 600 and info.task == "Place both L4 screws."
    assert info.allows("pedicle-6.5x45") and not info.allows("cage-26x11x8-0deg")
    assert info.midline_x_mm == pytest.approx(0.0, abs=0.3)  # the canal's centre
    assert len(scenario.case_plan().implants) == 0 and scenario.expert_counts() == (2, 0)
    with pytest.raises(ScenarioError, match="task"):
        author_scenario(expert, "  ")
    with pytest.raises(ScenarioError, match="nothing the trainee could be scored against"):
        author_scenario(l4.case_plan(), "Do it.")
    expert.cuts.add(Cut("c", "Bone", "plane", {"point": [0, 0, 0], "normal": [0, 0, 1]}))
    with pytest.raises(ScenarioError, match="--case"):
        author_scenario(expert, "Cut it.")
    with_case = author_scenario(expert, "Cut it.", case=l4.case_plan())
    assert with_case.expert_counts() == (2, 1)
    with pytest.raises(ScenarioError, match="no structure 'Femur'"):
        expert.cuts.add(Cut("f", "Femur", "plane", {"point": [0, 0, 0], "normal": [0, 0, 1]}))
        author_scenario(expert, "Cut it.", case=l4.case_plan())
