"""Scoring attempts on the bundled phantom scenarios: constructed poses with known offsets give
the known errors and grades; the expert plan scores 100, an empty attempt 0."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from surgtwin.planning.case import place_implant
from surgtwin.planning.plan import Cut
from surgtwin.training import AttemptMeta, load_scenario, score_attempt
from surgtwin.training.bundled import LESION_NAME
from testdata import REPO

L = 45.0  # expert L4 screw length (mm)


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())


@pytest.fixture(scope="module")
def l4():
    return load_scenario("l4-bilateral")


@pytest.fixture(scope="module")
def lesion():
    return load_scenario("l4-lesion")


def _ideal(truth: dict, side: str = "left") -> tuple[np.ndarray, np.ndarray]:
    s = truth["levels"]["L4"]["pedicle_screws"][side]
    return np.array(s["entry"], float), np.array(s["target"], float)


def _attempt(scenario, truth, left_entry, left_aim, *, diameter=6.5, length=L, right=True):
    """An attempt: the left L4 screw as given, the right one on the ideal trajectory."""
    plan = scenario.case_plan()
    place_implant(
        plan,
        "pedicle_screw",
        left_entry,
        left_aim,
        diameter_mm=diameter,
        length_mm=length,
        name="L4 left pedicle screw",
    )
    if right:
        e, t = _ideal(truth, "right")
        place_implant(plan, "pedicle_screw", e, t, diameter_mm=6.5, length_mm=L, name="R")
    return plan


def _medial(truth) -> np.ndarray:
    """Unit vector perpendicular to the left L4 pedicle axis, in the axial plane, medial."""
    e, t = _ideal(truth)
    d = (t - e) / np.linalg.norm(t - e)
    v = np.array([-d[1], d[0], 0.0])
    return v if v[0] < 0 else -v


def _rotated(d: np.ndarray, degrees: float, axis: str) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    if axis == "z":
        r = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    else:
        r = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return r @ d


# ---------------------------------------------------------------------- reference points


def test_expert_plan_scores_100(l4):
    l4.unlock_results()
    try:
        expert = l4.expert_plan()
    finally:
        l4._unlocked = False
    result = score_attempt(expert, l4)
    assert result.score == 100.0 and result.passed
    assert [i.status for i in result.implants] == ["matched", "matched"]
    for i in result.implants:
        assert i.entry_error_mm == i.tip_error_mm == i.angle_error_deg == 0.0
        assert i.grade == i.expert_grade == "A" and i.collisions == ()
        assert i.min_clearance_mm > 2.0  # the canal's 2 mm margin
        assert "within every tolerance" in i.feedback[0]
    assert not l4.results_unlocked  # scoring reads the expert plan without unlocking it


def test_empty_attempt_scores_0_with_feedback(l4):
    result = score_attempt(l4.case_plan(), l4, AttemptMeta("l4-bilateral", "T", "", 61.0, 0))
    assert result.score == 0.0 and not result.passed
    assert [i.status for i in result.implants] == ["missing", "missing"]
    assert result.checks["no_missing"] is False
    assert result.feedback[:2] == (
        "L4 left pedicle screw: missing; the expert placed a 6.5 x 45 mm pedicle screw.",
        "L4 right pedicle screw: missing; the expert placed a 6.5 x 45 mm pedicle screw.",
    )
    assert result.feedback[-1] == "Time 1 min 1 s (limit 15 min); 0 undos."


@pytest.mark.parametrize("key", ["l3-l5-screws", "l4-lesion"])
def test_other_bundled_scenarios_expert_100_empty_0(key):
    scenario = load_scenario(key)
    scenario.unlock_results()
    result = score_attempt(scenario.expert_plan(), scenario)
    assert result.score == 100.0 and result.passed, result.feedback
    empty = score_attempt(scenario.case_plan(), scenario)
    assert empty.score == 0.0 and not empty.passed and empty.feedback


# ---------------------------------------------------------------------- known offsets


def test_translation_gives_known_errors_and_score(l4, truth):
    """Both ends moved 2 mm cranially: entry and tip errors 2 mm, no angle, grade A."""
    e, t = _ideal(truth)
    up = np.array([0.0, 0.0, 2.0])
    result = score_attempt(_attempt(l4, truth, e + up, t + up), l4)
    left, right = result.implants
    assert left.status == "matched" and left.trainee_name == "L4 left pedicle screw"
    assert right.trainee_name == "R" and right.score == 100.0
    assert left.entry_error_mm == pytest.approx(2.0, abs=1e-9)
    assert left.tip_error_mm == pytest.approx(2.0, abs=1e-9)
    assert left.angle_error_deg == pytest.approx(0.0, abs=1e-6)
    assert left.grade == "A" and left.passed
    assert left.components["entry"] == pytest.approx(1 - 2 / 6)  # tolerance 3 mm
    assert left.components["tip"] == pytest.approx(1 - 2 / 8)  # tolerance 4 mm
    assert left.components["clearance"] == 1.0 and left.components["size"] == 1.0
    expected = 25 * (1 - 2 / 6) + 15 * 0.75 + 20 + 20 + 15 + 5
    assert left.score == pytest.approx(expected)
    assert result.score == pytest.approx((expected + 100) / 2)
    assert result.passed


def test_entry_off_by_3_6mm_cranially_fails_entry_with_direction(l4, truth):
    e, t = _ideal(truth)
    up = np.array([0.0, 0.0, 3.6])
    left = score_attempt(_attempt(l4, truth, e + up, t + up), l4).implants[0]
    assert left.entry_error_mm == pytest.approx(3.6, abs=1e-9)
    assert not left.checks["entry"] and left.checks["tip"]  # tolerances 3 and 4 mm
    assert (
        "L4 left pedicle screw: entry 3.6 mm cranial of the expert's (tolerance 3 mm); "
        "move it about 4 mm caudal." in left.feedback
    )


def test_rotation_about_the_entry_gives_angle_tip_error_and_correction(l4, truth):
    """Aimed 6 degrees more medially: angle 6, tip 2 L sin 3 degrees, aim 6 more lateral."""
    e, t = _ideal(truth)
    d = (t - e) / np.linalg.norm(t - e)
    turned = _rotated(d, -6.0, "z")  # the left screw converges more: towards -x
    assert turned[0] < d[0]
    left = score_attempt(_attempt(l4, truth, e, e + 50 * turned), l4).implants[0]
    assert left.entry_error_mm == pytest.approx(0.0, abs=1e-9)
    assert left.angle_error_deg == pytest.approx(6.0, abs=1e-6)
    assert left.tip_error_mm == pytest.approx(2 * L * math.sin(math.radians(3.0)), abs=1e-6)
    medial, cranial = left.correction_deg
    assert medial == pytest.approx(-6.0, abs=1e-6) and cranial == pytest.approx(0.0, abs=1e-6)
    assert left.components["angle"] == pytest.approx(1 - 6 / 10)
    assert not left.checks["angle"] and not left.checks["tip"]
    assert any("aim about 6 degrees more lateral" in f for f in left.feedback)
    medial_mm = abs(L * (turned - d)[0])  # the tip offset's medial (-x) part
    assert any(f"tip {medial_mm:.1f} mm medial and" in f for f in left.feedback)


def test_sagittal_rotation_suggests_cranial_correction(l4, truth):
    e, t = _ideal(truth)
    d = (t - e) / np.linalg.norm(t - e)
    down = _rotated(d, 8.0, "x")  # d heads anteriorly (-y): +8 about x turns it caudally
    assert down[2] < 0
    left = score_attempt(_attempt(l4, truth, e, e + 50 * down), l4).implants[0]
    assert left.correction_deg[1] == pytest.approx(8.0, abs=0.2)
    assert abs(left.correction_deg[0]) < 0.5
    assert any("aim about 8 degrees more cranial" in f for f in left.feedback)
    assert any("caudal of the expert's" in f for f in left.feedback)


@pytest.mark.parametrize(
    ("direction", "delta", "grade", "exit_mm"),
    [
        # pedicle 11 mm wide and 15 mm high, screw 6.5 mm: the surface leaves the pedicle after
        # 5.5 - 3.25 = 2.25 mm sideways and 7.5 - 3.25 = 4.25 mm up
        ("medial", 5.25, "C", 3.0),
        ("lateral", 3.25, "B", 1.0),
        ("lateral", 5.25, "C", 3.0),
        ("cranial", 7.25, "C", 3.0),
    ],
)
def test_translated_out_of_the_pedicle_gives_known_breach_grade(
    l4, truth, direction, delta, grade, exit_mm
):
    e, t = _ideal(truth)
    v = {
        "medial": _medial(truth),
        "lateral": -_medial(truth),
        "cranial": np.array([0.0, 0.0, 1.0]),
    }[direction]
    left = score_attempt(_attempt(l4, truth, e + delta * v, t + delta * v), l4).implants[0]
    assert left.entry_error_mm == pytest.approx(delta, abs=1e-9)
    assert left.grade == grade
    assert left.breach_mm == pytest.approx(exit_mm, abs=0.35)
    assert left.checks["grade"] is (grade in "AB")
    first = left.feedback[0]
    assert first.startswith(f"L4 left pedicle screw: {left.breach_mm:.1f} mm {direction} breach")
    assert f"(grade {grade})" in first
    back = {"medial": "lateral", "lateral": "medial", "cranial": "caudal"}[direction]
    assert f"move the entry about {round(delta)} mm {back}" in first
    if direction == "medial":  # 1 mm of bone between the pedicle and the canal
        canal = left.clearances_mm["Spinal canal"]
        assert -canal == pytest.approx(delta - 3.25, abs=0.35)
        assert "Spinal canal" in left.collisions and not left.checks["no_collision"]
        assert "into the spinal canal" in first
        assert left.components["clearance"] == 0.0


def test_size_difference(l4, truth):
    e, t = _ideal(truth)
    left = score_attempt(_attempt(l4, truth, e, t, diameter=5.0, length=40.0), l4).implants[0]
    assert left.diameter_diff_mm == pytest.approx(-1.5)
    assert left.length_diff_mm == pytest.approx(-5.0)
    assert left.size == "5 x 40 mm" and left.expert_size == "6.5 x 45 mm"
    assert not left.checks["size"]
    assert left.components["size"] == pytest.approx(((1 - 1.5 / 2) + (1 - 5 / 20)) / 2)
    assert any("5 x 40 mm; the expert used 6.5 x 45 mm" in f for f in left.feedback)


def test_extra_not_allowed_missing_and_time_penalties(l4, truth):
    e, t = _ideal(truth)
    plan = _attempt(l4, truth, e, t, right=False)
    place_implant(plan, "pedicle_screw", [0, 30, 30], [0, -10, 30], diameter_mm=5.0, name="X")
    place_implant(plan, "cortical_screw", [60, 0, 0], [60, -20, 0], diameter_mm=3.5, name="Y")
    meta = AttemptMeta("l4-bilateral", "T", "", 20 * 60.0, 3)
    result = score_attempt(plan, l4, meta)
    status = {i.name: i.status for i in result.implants}
    assert status == {
        "L4 left pedicle screw": "matched",
        "L4 right pedicle screw": "missing",
        "X": "extra",
        "Y": "not_allowed",
    }
    assert result.penalties == {"extra_implants": 20.0, "extra_cuts": 0.0, "over_time": 10.0}
    assert result.score == pytest.approx(max(0.0, (100 + 0) / 2 - 30))
    assert result.checks == {
        "no_missing": False,
        "no_extra": False,
        "within_time": False,
        "score": True,
    }
    assert "Time 20 min, over the 15 min limit (-10 points); 3 undos." in result.feedback
    assert any(f.startswith("Y: the cortical screw 3.5 x") for f in result.feedback)


def test_result_to_dict_shape(l4, truth):
    e, t = _ideal(truth)
    doc = score_attempt(_attempt(l4, truth, e, t), l4).to_dict()
    assert list(doc)[:5] == ["score", "passed", "implants", "resections", "feedback"]
    implant = doc["implants"][0]
    for key in ("name", "entry_error_mm", "tip_error_mm", "angle_error_deg", "grade"):
        assert key in implant
    assert implant["min_clearance_mm"] > 2.0
    json.dumps(doc, allow_nan=False)


# ---------------------------------------------------------------------- resection


def _box_cut(centre, half: float, name: str = "Cut 1") -> Cut:
    edge = 2.0 * half
    return Cut(name, "Bone", "box", {"centre": list(map(float, centre)), "size": [edge] * 3})


def _cut_attempt(scenario, *cuts: Cut):
    plan = scenario.case_plan()
    for cut in cuts:
        plan.cuts.add(cut)
    return plan


def test_lesion_box_with_3mm_margin(lesion, truth):
    les = truth["lesion"]
    result = score_attempt(
        _cut_attempt(lesion, _box_cut(les["centre"], les["radius_mm"] + 3)), lesion
    )
    (r,) = result.resections
    assert r.target == LESION_NAME and r.structure == "Bone" and r.status == "done"
    assert r.target_removed is True
    assert r.margin_mm == pytest.approx(3.0, abs=0.05)
    assert r.expert_margin_mm == pytest.approx(5.5, abs=0.05)
    assert r.components["margin"] == pytest.approx(r.margin_mm / 5.0)
    assert r.components["healthy_bone"] == 1.0  # less than the expert removed
    assert r.healthy_bone_removed_mm3 < r.expert_healthy_bone_removed_mm3
    assert not r.checks["margin"] and not result.passed
    assert any("where 5 mm are required; widen the cut by about 2.0 mm" in f for f in r.feedback)
    assert result.score == pytest.approx(40 + 35 * r.margin_mm / 5 + 25, abs=1e-6)


def test_lesion_left_behind_says_where(lesion, truth):
    """A box of the right size 9 mm too far anterior leaves the posterior part of the lesion."""
    les = truth["lesion"]
    centre = np.add(les["centre"], [0.0, -9.0, 0.0])
    result = score_attempt(_cut_attempt(lesion, _box_cut(centre, les["radius_mm"] + 5.5)), lesion)
    (r,) = result.resections
    assert r.target_removed is False and r.target_left_mm3 > 10.0
    assert r.margin_mm < 0
    assert r.score == 0.0 and result.score == 0.0
    assert "remain on its posterior side; extend the cut about" in r.feedback[0]


def test_lesion_too_much_healthy_bone_and_extra_cut(lesion, truth):
    les = truth["lesion"]
    plan = _cut_attempt(
        lesion,
        _box_cut(les["centre"], les["radius_mm"] + 9.0),
        Cut("canal", "Spinal canal", "plane", {"point": [0, 0, 0], "normal": [0, 0, 1]}),
    )
    result = score_attempt(plan, lesion)
    (r,) = result.resections
    assert r.cuts == ("Cut 1",)
    assert r.target_removed and r.checks["margin"] and not r.checks["healthy_bone"]
    ratio = r.healthy_bone_removed_mm3 / r.expert_healthy_bone_removed_mm3
    assert 1.5 < ratio < 2.5
    assert r.components["healthy_bone"] == pytest.approx(max(0.0, 2 - ratio))
    assert result.extra_cuts == (
        {
            "name": "canal",
            "structure": "Spinal canal",
            "reason": "the task does not cut this structure",
        },
    )
    assert result.penalties["extra_cuts"] == 10.0


def test_cut_without_target_scored_by_overlap(l4):
    """An authored osteotomy (a plane through L4, no target): the expert's cut overlaps itself
    fully; a plane 6 mm higher removes a subset of it, Dice = 2 |B| / (|A| + |B|)."""
    from surgtwin.training import author_scenario

    expert = l4.case_plan("Osteotomy")
    expert.cuts.add(Cut("Cut 1", "Bone", "plane", {"point": [0, 0, 0], "normal": [0, 0, 1]}))
    scenario = author_scenario(expert, "Cut L4 at its mid-plane.", case=l4.case_plan())
    same = score_attempt(expert, scenario)
    assert same.score == pytest.approx(100.0) and same.passed
    (r,) = same.resections
    assert r.target is None and r.name == "Cut of Bone" and r.overlap == pytest.approx(1.0)
    higher = l4.case_plan()
    higher.cuts.add(Cut("mine", "bone", "plane", {"point": [0, 0, 6], "normal": [0, 0, 1]}))
    (r,) = score_attempt(higher, scenario).resections
    a, b = r.expert_healthy_bone_removed_mm3, r.removed_mm3
    assert b < a and r.overlap == pytest.approx(2 * b / (a + b), rel=1e-3)
    assert r.score == pytest.approx(100 * r.overlap) and r.cuts == ("mine",)
