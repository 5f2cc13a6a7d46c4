"""``surgtwin plan new|add-implant|cut`` and ``surgtwin check`` on the bundled lumbar phantom."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from surgtwin.cli import main
from surgtwin.planning.planfile import load_plan
from testdata import REPO

PHANTOM = REPO / "sample_dicom"


def _truth() -> dict:
    return json.loads((PHANTOM / "ground_truth.json").read_text())


def _l4_left() -> tuple[np.ndarray, np.ndarray]:
    s = _truth()["levels"]["L4"]["pedicle_screws"]["left"]
    return np.array(s["entry"]), np.array(s["target"])


def _csv(p) -> str:
    return ",".join(f"{float(v):.4f}" for v in p)


@pytest.fixture(scope="module")
def base_plan(tmp_path_factory) -> Path:
    """``surgtwin plan new sample_dicom -o case.surgplan`` with no options, once per module."""
    path = tmp_path_factory.mktemp("plan") / "case.surgplan"
    assert main(["plan", "new", str(PHANTOM), "-o", str(path)]) == 0
    return path


@pytest.fixture
def plan_file(base_plan, tmp_path) -> Path:
    path = tmp_path / "case.surgplan"
    shutil.copyfile(base_plan, path)
    return path


def _add(plan: Path, entry, target, *extra: str) -> None:
    argv = ["plan", "add-implant", str(plan), "--type", "pedicle_screw"]
    assert main([*argv, "--entry", _csv(entry), "--target", _csv(target), *extra]) == 0


def _check(plan: Path, capsys) -> tuple[int, dict]:
    capsys.readouterr()
    rc = main(["check", str(plan), "--json"])
    return rc, json.loads(capsys.readouterr().out)


def _row(implant: dict, structure: str) -> dict:
    return next(c for c in implant["checks"] if c["structure"] == structure)


def test_new_plan_of_the_phantom(base_plan):
    plan = load_plan(base_plan)
    bone, canal = plan.structures["Bone"], plan.structures["Spinal canal"]
    assert (bone.role, bone.margin_mm) == ("bone", 0.0)
    assert (canal.role, canal.margin_mm) == ("critical", 2.0)
    assert bone.mesh is not None and canal.mesh is not None
    # the canal is grown over the whole field of view from the L3-L5 seeds
    truth = _truth()
    assert canal.mesh.volume_mm3() == pytest.approx(truth["canal"]["volume_mm3"], rel=0.03)
    assert bone.mesh.volume_mm3() == pytest.approx(truth["bone"]["volume_mm3"], rel=0.03)
    assert plan.case.series_uids and plan.labelmap is not None


def test_ideal_l4_screw_passes(plan_file, capsys):
    entry, target = _l4_left()
    _add(plan_file, entry, target, "--diameter", "6.5", "--length", "45")
    rc, doc = _check(plan_file, capsys)
    assert rc == 0 and doc["passed"] and doc["resections"] == []
    (implant,) = doc["implants"]
    assert implant["name"] == "Pedicle screw 1" and implant["type"] == "pedicle_screw"
    u = (target - entry) / np.linalg.norm(target - entry)
    assert implant["entry_lps"] == pytest.approx(entry, abs=1e-4)
    assert implant["tip_lps"] == pytest.approx(entry + 45.0 * u, abs=1e-4)
    canal = _row(implant, "Spinal canal")
    # analytic: 6.105 mm axis to canal minus the 3.25 mm outer radius = 2.86 mm
    assert 0 < canal["min_clearance_mm"] < 3.3
    assert canal["status"] in ("ok", "warn") and not canal["collides"]
    assert canal["penetration_mm"] == 0.0
    bone = _row(implant, "Bone")
    assert bone["grade"] == "A" and bone["status"] == "ok" and not bone["collides"]
    assert bone["purchase"]["axis_in_bone_mm"] == pytest.approx(45.0, abs=0.5)
    # the text table says the same
    capsys.readouterr()
    assert main(["check", str(plan_file)]) == 0
    out = capsys.readouterr().out
    assert "Spinal canal" in out and "all checks passed" in out


def test_medially_shifted_screw_breaches_the_canal(plan_file, capsys):
    entry, target = _l4_left()
    u = (target - entry) / np.linalg.norm(target - entry)
    medial = np.array([-u[1], u[0], 0.0])
    medial = medial if medial[0] < 0 else -medial  # towards x = 0 for the left screw
    shift = 5.0 * medial
    _add(plan_file, entry + shift, target + shift, "--diameter", "6.5", "--length", "45")
    rc, doc = _check(plan_file, capsys)
    assert rc == 1 and not doc["passed"]
    (implant,) = doc["implants"]
    canal = _row(implant, "Spinal canal")
    assert canal["collides"] and canal["status"] == "fail"
    assert canal["penetration_mm"] > 1.0
    assert canal["penetration_mm"] == pytest.approx(-canal["min_clearance_mm"])
    assert _row(implant, "Bone")["grade"] in ("C", "D", "E")


def test_crossing_screws_collide_with_each_other(plan_file, capsys):
    entry, target = _l4_left()
    mid = (entry + target) / 2
    _add(plan_file, entry, target, "--diameter", "6.5", "--length", "45", "--name", "A")
    # a vertical screw through the middle of the first one
    up = np.array([0.0, 0.0, 20.0])
    top, bottom = mid + up, mid - up
    _add(plan_file, top, bottom, "--diameter", "6.5", "--length", "40", "--name", "B")
    rc, doc = _check(plan_file, capsys)
    assert rc == 1
    a, b = doc["implants"]
    for implant, other in ((a, "B"), (b, "A")):
        row = _row(implant, other)
        assert row["collides"] and row["status"] == "fail" and row["penetration_mm"] > 0
        assert row["role"] == "implant" and row["grade"] is None


def test_cut_through_the_l4_body(plan_file, base_plan, capsys):
    centre = _truth()["levels"]["L4"]["body_centre"]
    plane = _csv([*centre, 0.0, 0.0, 1.0])
    capsys.readouterr()
    assert main(["plan", "cut", str(plan_file), "--structure", "Bone", "--plane", plane]) == 0
    assert "voxels cleared" in capsys.readouterr().out
    plan, before = load_plan(plan_file), load_plan(base_plan)
    (cut,) = plan.cuts.values()
    assert cut.structure == "Bone" and cut.tool == "plane"
    rc, doc = _check(plan_file, capsys)
    assert rc == 0
    (res,) = doc["resections"]
    assert res["structure"] == "Bone" and res["target_removed"] is None
    total = res["removed_mm3"] + res["remaining_mm3"]
    assert total == pytest.approx(before.structures["Bone"].mesh.volume_mm3(), rel=0.005)
    assert total == pytest.approx(before.labelmap.volume_mm3("Bone"), rel=0.005)
    # L3 and the upper half of L4 lie above the plane: removed, from the surface and the voxels
    assert 0.3 * total < res["removed_mm3"] < 0.6 * total
    bone = plan.structures["Bone"]
    assert bone.mesh.volume_mm3() == pytest.approx(res["remaining_mm3"], rel=1e-6)
    assert bone.mesh.points[:, 2].max() <= centre[2] + 1e-6
    removed = before.labelmap.volume_mm3("Bone") - plan.labelmap.volume_mm3("Bone")
    assert removed == pytest.approx(cut.parameters["voxels_removed_mm3"])
    assert removed == pytest.approx(res["removed_mm3"], rel=0.05)


@pytest.mark.parametrize(
    ("option", "value", "removed_mm3"),
    [("--box", "0,-23,0,10,8,6", 480.0), ("--sphere", "0,-23,0,4", 4 / 3 * np.pi * 64)],
)
def test_box_and_sphere_cuts(plan_file, option, value, removed_mm3, capsys):
    """A box and a ball inside the L4 body (cancellous bone): all of the tool is removed."""
    argv = ["plan", "cut", str(plan_file), "--structure", "bone", option, value, "--name", "hole"]
    assert main(argv) == 0
    cut = load_plan(plan_file).cuts["hole"]
    assert cut.tool == option[2:]
    assert cut.parameters["removed_mm3"] == pytest.approx(removed_mm3, rel=2e-3)
    rc, doc = _check(plan_file, capsys)
    assert rc == 0 and doc["resections"][0]["name"] == "hole"


def test_check_after_a_cut_sees_less_bone_around_the_screw(plan_file, capsys):
    """The vertebral bodies cut off in front of y = -20 mm: the ideal L4 screw keeps only the
    30 mm (along y) behind the plane in bone, 31.1 mm of its axis, and its tip is out."""
    entry, target = _l4_left()
    _add(plan_file, entry, target, "--diameter", "6.5", "--length", "45")
    rc, doc = _check(plan_file, capsys)
    before = _row(doc["implants"][0], "Bone")
    assert rc == 0 and before["purchase"]["axis_in_bone_mm"] == pytest.approx(45.0, abs=0.5)
    cut = ["plan", "cut", str(plan_file), "--structure", "Bone", "--plane", "0,-20,0,0,-1,0"]
    assert main(cut) == 0
    rc, doc = _check(plan_file, capsys)
    after = _row(doc["implants"][0], "Bone")
    assert rc == 1 and not doc["passed"]
    expected = 30.0 / np.cos(np.radians(15.0))
    assert after["purchase"]["axis_in_bone_mm"] == pytest.approx(expected, abs=0.5)
    assert after["grade"] == "E" and after["status"] == "fail"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["check", "{missing}"], ["does not exist"]),
        (["plan", "cut", "{missing}", "--structure", "Bone", "--plane", "0,0,0,0,0,1"], ["exist"]),
        (["plan", "add-implant", "{missing}", "--entry", "0,0,0", "--target", "0,0,1"], ["exist"]),
        (["plan", "add-implant", "{plan}", "--entry", "1,2", "--target", "0,0,1"], ["--entry"]),
        (["plan", "add-implant", "{plan}", "--entry", "0,0,0", "--target", "a,b,c"], ["--target"]),
        (
            [
                "plan",
                "add-implant",
                "{plan}",
                "--entry",
                "0,0,0",
                "--target",
                "0,0,1",
                "--length",
                "x",
            ],
            ["--length"],
        ),
        (
            [
                "plan",
                "add-implant",
                "{plan}",
                "--type",
                "banana",
                "--entry",
                "0,0,0",
                "--target",
                "1,0,0",
            ],
            ["banana"],
        ),
        (
            ["plan", "add-implant", "{plan}", "--entry", "0,0,0", "--target", "0,0,0"],
            ["same point"],
        ),
        (["plan", "cut", "{plan}", "--structure", "Liver", "--plane", "0,0,0,0,0,1"], ["Liver"]),
        (["plan", "cut", "{plan}", "--structure", "Bone", "--plane", "1,2"], ["--plane"]),
        (["plan", "cut", "{plan}", "--structure", "Bone", "--plane", "0,0,0,0,0,0"], ["normal"]),
        (["plan", "cut", "{plan}", "--structure", "Bone", "--plane", "0,0,500,0,0,1"], ["not cut"]),
        (["plan", "cut", "{plan}", "--structure", "Bone", "--box", "0,0,0,1,1"], ["--box"]),
        (["plan", "cut", "{plan}", "--structure", "Bone", "--box", "0,0,0,1,0,1"], ["--box"]),
        (["plan", "cut", "{plan}", "--structure", "Bone", "--sphere", "0,0,0,-2"], ["radius"]),
        (["plan", "cut", "{plan}", "--structure", "Bone", "--sphere", "0,0,-500,900"], ["all of"]),
        (
            ["plan", "new", "{phantom}", "--critical", "X", "--seed", "1,2", "-o", "{out}"],
            ["--seed"],
        ),
        (["plan", "new", "{phantom}", "--seed", "1,2,3", "-o", "{out}"], ["--critical"]),
        (["plan", "new", "{phantom}", "--critical", "X", "-o", "{out}"], ["--seed", "--mesh"]),
        (
            ["plan", "new", "{phantom}", "--critical", "X", "--seed", "500,0,0", "-o", "{out}"],
            ["outside the volume"],
        ),
        (
            [
                "plan",
                "new",
                "{phantom}",
                "--critical",
                "X",
                "--seed",
                "0,0,0",
                "--hu",
                "9,1",
                "-o",
                "{out}",
            ],
            ["--hu"],
        ),
        (
            ["plan", "new", "{phantom}", "--critical", "X", "--mesh", "{missing}", "-o", "{out}"],
            ["exist"],
        ),
        (["plan", "new", "{missing}", "-o", "{out}"], ["missing"]),
    ],
)
def test_bad_input_is_one_line_and_exit_1(argv, words, plan_file, tmp_path, capsys):
    names = {
        "plan": str(plan_file),
        "missing": str(tmp_path / "missing.surgplan"),
        "phantom": str(PHANTOM),
        "out": str(tmp_path / "out.surgplan"),
    }
    capsys.readouterr()
    rc = main([a.format(**names) for a in argv])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert err.startswith("surgtwin: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "internal error" not in err
    assert all(w in err for w in words), err
    assert not (tmp_path / "out.surgplan").exists()


def test_negative_coordinates_are_values_not_options(plan_file, capsys):
    entry, target = _l4_left()
    right_entry, right_target = entry * [-1, 1, 1], target * [-1, 1, 1]  # the right screw
    _add(plan_file, right_entry, right_target, "--diameter", "6.5", "--length", "45")
    rc, doc = _check(plan_file, capsys)
    assert rc == 0
    assert doc["implants"][0]["entry_lps"] == pytest.approx(right_entry, abs=1e-4)


def test_move_translates_turns_and_snaps_an_implant(plan_file, capsys):
    entry, target = _l4_left()
    _add(plan_file, entry, target, "--diameter", "6.5", "--length", "45", "--name", "S")
    rc, doc = _check(plan_file, capsys)
    assert rc == 0
    tip0 = np.array(doc["implants"][0]["tip_lps"])
    # 5 mm medially (towards -x for a left screw): into the canal
    assert main(["plan", "move", str(plan_file), "--implant", "S", "--translate", "-5,0,0"]) == 0
    rc, doc = _check(plan_file, capsys)
    (implant,) = doc["implants"]
    assert rc == 1 and _row(implant, "Spinal canal")["collides"]
    assert np.allclose(np.array(implant["tip_lps"]) - tip0, [-5, 0, 0], atol=1e-6)
    assert np.allclose(np.array(implant["entry_lps"]) - entry, [-5, 0, 0], atol=1e-6)
    # back, then turn 10 degrees about the superior axis through the entry
    assert main(["plan", "move", str(plan_file), "--implant", "S", "--translate", "5,0,0"]) == 0
    assert main(["plan", "move", str(plan_file), "--implant", "S", "--rotate", "S:10"]) == 0
    rc, doc = _check(plan_file, capsys)
    (implant,) = doc["implants"]
    e, t = np.array(implant["entry_lps"]), np.array(implant["tip_lps"])
    assert np.allclose(e, entry, atol=1e-6)
    before = (tip0 - entry) / np.linalg.norm(tip0 - entry)
    after = (t - e) / np.linalg.norm(t - e)
    assert math.degrees(math.acos(np.clip(before @ after, -1, 1))) == pytest.approx(10, abs=1e-6)
    assert after[2] == pytest.approx(before[2], abs=1e-9)  # turned in the axial plane
    # slide 4 mm back out along the axis, then snap the entry onto the bone surface again
    assert main(["plan", "move", str(plan_file), "--implant", "S", "--slide", "-4"]) == 0
    assert main(["plan", "move", str(plan_file), "--implant", "S", "--snap"]) == 0
    rc, doc = _check(plan_file, capsys)
    (implant,) = doc["implants"]
    e2 = np.array(implant["entry_lps"])
    assert np.linalg.norm(e2 - e) < 1.0, "the entry is back on the bone surface"
    capsys.readouterr()
    assert main(["plan", "move", str(plan_file), "--implant", "nope", "--slide", "1"]) == 1
    assert "no implant 'nope'" in capsys.readouterr().err
