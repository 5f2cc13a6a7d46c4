"""Scoring a trainee's attempt against a scenario's expert plan: pure and headless.

:func:`score_attempt` takes the trainee's plan, the scenario (whose expert plan it reads) and
the attempt record (time taken, undos) and returns a :class:`ScoreResult`: the same numbers
the application shows and ``surgtwin train score`` prints (:meth:`ScoreResult.to_dict`).

Implants
--------
Each trainee implant the scenario allows is matched to the nearest expert implant of the same
kind: pairs are taken in order of their distance (the mean of the entry and tip errors), each
implant at most once, up to ``match_radius_mm`` (20 mm). Expert implants left over are
*missing*; trainee implants left over, and implants the scenario does not allow, are *extra*.
For a matched implant (entry: the head end of the axis, tip: the other end; LPS mm):

* ``entry_error_mm``, ``tip_error_mm``: distance to the expert's entry and tip;
* ``angle_error_deg``: angle between the two axes, and ``correction_deg`` (medial, cranial):
  how much more medial and cranial to aim to follow the expert's axis (negative: lateral,
  caudal; :mod:`surgtwin.training.directions`);
* ``diameter_diff_mm``, ``length_diff_mm``: trainee minus expert;
* ``grade`` (Gertzbein-Robbins, screws) and ``breach_mm`` from
  :func:`surgtwin.planning.checks.check_plan`: the deeper of the exit out of the bone along the
  pedicle and the penetration of a critical structure;
* ``clearances_mm``: the clearance to each critical structure (negative: penetration) and
  ``min_clearance_mm`` the smallest; ``collisions``: critical structures and implants touched.

Implants are checked against the scenario's case (its structures as the scenario holds them),
never against structures edited in the trainee's plan.

Resections
----------
For each structure the expert cut and each target structure of the case, every cut of that
structure in the trainee's plan is recomputed from its tool parameters against the case's
uncut structure (:mod:`surgtwin.training.resections`): ``target_removed``, ``margin_mm``,
``healthy_bone_removed_mm3`` (volume removed outside the target), next to the expert's. Without
a target (an osteotomy) the cuts are compared by the overlap (Dice) of the parts removed.
Cuts of structures the expert did not cut are *extra cuts*.

Score (default :class:`~surgtwin.training.scenario.Weights`)
------------------------------------------------------------
==========================  ======  ==========================================================
measure                     points  credit (0..1 of the points)
==========================  ======  ==========================================================
implant entry error         25      ``max(0, 1 - e / (2 T))``: 1/2 at the tolerance T
implant tip error           15      same, with the tip tolerance
implant angle               20      same, with the angle tolerance
breach grade                20      A 1, B 3/4, C 1/4, D/E 0; no worse than the expert's: 1
clearance                   15      smallest over critical structures of clearance / reference
                                    (reference: the structure's margin, or the expert's
                                    clearance if smaller), 0 on any collision
implant size                5       mean of the diameter and length credits (as the entry)
target fully removed        40      1 or 0
resection margin            35      margin / reference (the required margin, or the expert's
                                    if smaller); only with the target fully removed
healthy bone removed        25      1 up to the expert's amount, 0 at twice it; only with the
                                    target fully removed
resection without target    100     Dice overlap with the expert's removed part
==========================  ======  ==========================================================

An item (expert implant or expert resection) scores ``100 * sum(points * credit) / sum(points)``;
a missing item scores 0. The total is the weighted mean of the items (``implant_item``,
``resection_item``, 1 each) minus 10 points per extra or not allowed implant, 10 per extra cut
and 10 for going over the time limit, kept within 0..100. The expert's plan scores 100.
Undos are counted and stored, never scored.

Pass/fail (default :class:`~surgtwin.training.scenario.Tolerances`): every matched implant with
entry <= 3 mm, tip <= 4 mm, angle <= 5 degrees, diameter within 1 mm and length within 10 mm
of the expert's, grade A or B and no collision; no missing or extra implant or cut; every
target fully removed with a margin of at least the required 5 mm less 0.5 mm, and at most 1.5
times the expert's healthy bone removed; without a target an overlap of at least
:data:`MIN_OVERLAP`; within the time limit; and a total of at least ``pass_score``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surgtwin.planning.plan import Cut, Implant, Plan
from surgtwin.training.attempt import AttemptMeta
from surgtwin.training.directions import (
    PatientFrame,
    angle_between_deg,
    describe_offset,
    insertion_angles,
)
from surgtwin.training.scenario import GRADES, Scenario, ScenarioError, Tolerances, Weights

__all__ = [
    "GRADE_CREDIT",
    "MIN_OVERLAP",
    "ImplantScore",
    "ResectionScore",
    "ScoreResult",
    "score_attempt",
]

#: Credit of a breach grade worse than the expert's.
GRADE_CREDIT: dict[str, float] = {"A": 1.0, "B": 0.75, "C": 0.25, "D": 0.0, "E": 0.0}
#: Smallest overlap (Dice) with the expert's cut that passes, for cuts without a target.
MIN_OVERLAP = 0.7

_OPPOSITE = {
    "lateral": "medial",
    "medial": "lateral",
    "cranial": "caudal",
    "caudal": "cranial",
    "anterior": "posterior",
    "posterior": "anterior",
    "left": "right",
    "right": "left",
}


def _credit(error: float, tolerance: float) -> float:
    """``max(0, 1 - error / (2 tolerance))``: full at 0, half at the tolerance, none at twice."""
    if tolerance <= 0:
        return 1.0 if error <= 0 else 0.0
    return float(min(1.0, max(0.0, 1.0 - error / (2.0 * tolerance))))


def _clean(value: Any) -> Any:
    """Plain JSON data: floats rounded to 3 decimals, NaN and infinities as None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return round(v, 3) + 0.0 if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# ---------------------------------------------------------------------- results


@dataclass(frozen=True)
class ImplantScore:
    """One expert implant (matched or missing) or one extra trainee implant.

    Attributes
    ----------
    name : str
        The expert implant's name; the trainee's for an extra implant.
    status : {"matched", "missing", "extra", "not_allowed"}
    trainee_name, expert_name : str or None
    kind : str
    size, expert_size : str or None
        ``"6.5 x 45 mm"``.
    entry_error_mm, tip_error_mm, angle_error_deg : float or None
    correction_deg : (float, float) or None
        (medial, cranial) degrees to turn the trainee's axis into the expert's.
    diameter_diff_mm, length_diff_mm : float or None
        Trainee minus expert.
    grade, expert_grade : str or None
    breach_mm : float or None
    clearances_mm : dict
        Critical structure -> clearance (mm; negative: penetration).
    min_clearance_mm : float or None
    collisions : tuple of str
    components : dict
        Measure -> credit 0..1.
    checks : dict
        Tolerance -> passed.
    score : float
        0..100 (0 for missing and extra implants).
    feedback : tuple of str
    """

    name: str
    status: str
    trainee_name: str | None
    expert_name: str | None
    kind: str
    size: str | None = None
    expert_size: str | None = None
    entry_error_mm: float | None = None
    tip_error_mm: float | None = None
    angle_error_deg: float | None = None
    correction_deg: tuple[float, float] | None = None
    diameter_diff_mm: float | None = None
    length_diff_mm: float | None = None
    grade: str | None = None
    expert_grade: str | None = None
    breach_mm: float | None = None
    clearances_mm: dict[str, float] = field(default_factory=dict)
    min_clearance_mm: float | None = None
    collisions: tuple[str, ...] = ()
    components: dict[str, float] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    score: float = 0.0
    feedback: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "name": self.name,
                "status": self.status,
                "trainee_name": self.trainee_name,
                "expert_name": self.expert_name,
                "kind": self.kind,
                "size": self.size,
                "expert_size": self.expert_size,
                "entry_error_mm": self.entry_error_mm,
                "tip_error_mm": self.tip_error_mm,
                "angle_error_deg": self.angle_error_deg,
                "correction_deg": None
                if self.correction_deg is None
                else {"medial": self.correction_deg[0], "cranial": self.correction_deg[1]},
                "diameter_diff_mm": self.diameter_diff_mm,
                "length_diff_mm": self.length_diff_mm,
                "grade": self.grade,
                "expert_grade": self.expert_grade,
                "breach_mm": self.breach_mm,
                "min_clearance_mm": self.min_clearance_mm,
                "clearances_mm": dict(self.clearances_mm),
                "collisions": list(self.collisions),
                "score": self.score,
                "passed": self.passed,
                "components": dict(self.components),
                "checks": dict(self.checks),
                "feedback": list(self.feedback),
            }
        )


@dataclass(frozen=True)
class ResectionScore:
    """One expert resection: a structure the expert cut, against one target (or none).

    Attributes
    ----------
    name : str
        ``"Resection of L4 lesion"`` (``"Cut of Bone"`` without a target).
    structure : str
    target : str or None
    status : {"done", "missing"}
    cuts : tuple of str
        The trainee's cuts of the structure.
    target_removed : bool or None
    target_left_mm3 : float or None
    margin_mm, required_margin_mm, expert_margin_mm : float or None
    removed_mm3, healthy_bone_removed_mm3, expert_healthy_bone_removed_mm3 : float or None
    overlap : float or None
        Dice overlap with the expert's removed part (cuts without a target).
    components, checks, score, feedback
        As in :class:`ImplantScore`.
    """

    name: str
    structure: str
    target: str | None
    status: str
    cuts: tuple[str, ...] = ()
    target_removed: bool | None = None
    target_left_mm3: float | None = None
    margin_mm: float | None = None
    required_margin_mm: float | None = None
    expert_margin_mm: float | None = None
    removed_mm3: float | None = None
    healthy_bone_removed_mm3: float | None = None
    expert_healthy_bone_removed_mm3: float | None = None
    overlap: float | None = None
    components: dict[str, float] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    score: float = 0.0
    feedback: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return _clean(
            {
                "name": self.name,
                "structure": self.structure,
                "target": self.target,
                "status": self.status,
                "cuts": list(self.cuts),
                "target_removed": self.target_removed,
                "target_left_mm3": self.target_left_mm3,
                "margin_mm": self.margin_mm,
                "required_margin_mm": self.required_margin_mm,
                "expert_margin_mm": self.expert_margin_mm,
                "removed_mm3": self.removed_mm3,
                "healthy_bone_removed_mm3": self.healthy_bone_removed_mm3,
                "expert_healthy_bone_removed_mm3": self.expert_healthy_bone_removed_mm3,
                "overlap": self.overlap,
                "score": self.score,
                "passed": self.passed,
                "components": dict(self.components),
                "checks": dict(self.checks),
                "feedback": list(self.feedback),
            }
        )


@dataclass(frozen=True)
class ScoreResult:
    """The scored attempt.

    Attributes
    ----------
    scenario_key, scenario_title, scenario_fingerprint : str
    score : float
        0..100.
    passed : bool
        Every check of every item and of the attempt (``checks``) passed.
    implants : tuple of ImplantScore
        Expert implants in the expert's order (matched or missing), then the extra ones.
    resections : tuple of ResectionScore
    extra_cuts : tuple of dict
        ``{"name", "structure", "reason"}`` of cuts not part of the task.
    penalties : dict
        Points taken off: ``extra_implants``, ``extra_cuts``, ``over_time``.
    checks : dict
        ``no_missing``, ``no_extra``, ``within_time``, ``score`` (at least ``pass_score``).
    feedback : tuple of str
        Every finding in words, in the order of the items, then the attempt's.
    trainee : str
    time_taken_s, time_limit_s : float or None
    undo_count : int or None
    """

    scenario_key: str
    scenario_title: str
    scenario_fingerprint: str
    score: float
    passed: bool
    implants: tuple[ImplantScore, ...]
    resections: tuple[ResectionScore, ...]
    extra_cuts: tuple[dict[str, str], ...]
    penalties: dict[str, float]
    checks: dict[str, bool]
    feedback: tuple[str, ...]
    trainee: str = ""
    time_taken_s: float | None = None
    time_limit_s: float | None = None
    undo_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: ``score``, ``passed``, ``implants``, ``resections``, ``feedback``
        first, then the details."""
        return _clean(
            {
                "score": self.score,
                "passed": self.passed,
                "implants": [i.to_dict() for i in self.implants],
                "resections": [r.to_dict() for r in self.resections],
                "feedback": list(self.feedback),
                "scenario": {
                    "key": self.scenario_key,
                    "title": self.scenario_title,
                    "fingerprint": self.scenario_fingerprint,
                },
                "trainee": self.trainee,
                "time_taken_s": self.time_taken_s,
                "time_limit_s": self.time_limit_s,
                "undo_count": self.undo_count,
                "extra_cuts": [dict(c) for c in self.extra_cuts],
                "penalties": dict(self.penalties),
                "checks": dict(self.checks),
            }
        )


# ---------------------------------------------------------------------- checks of a plan


@dataclass
class _Checked:
    """What :func:`check_plan` says of one implant."""

    grade: str | None
    exit_mm: float
    clearances: dict[str, float]
    penetration: dict[str, float]
    collisions: list[str]

    @property
    def breach_mm(self) -> float:
        return max([self.exit_mm, *self.penetration.values()])


def _check(case: Plan, implants: Sequence[Implant], geo) -> dict[str, _Checked]:
    """The checks of implants placed in the case (implant name -> _Checked)."""
    from surgtwin.planning.checks import check_plan

    if not implants:
        return {}
    plan = Plan("scoring", case.case, case.labelmap)
    with plan.batch():
        for s in case.structures.values():
            plan.structures.add(s)
        for i in implants:
            plan.implants.add(i)
    out = {}
    for rep in check_plan(plan, geo).implants:
        grades = [c.grade for c in rep.checks if c.role == "bone" and c.grade]
        exits = [-c.min_clearance_mm for c in rep.checks if c.role == "bone" and c.grade]
        critical = [c for c in rep.checks if c.role == "critical"]
        out[rep.name] = _Checked(
            grade=max(grades, key=GRADES.index) if grades else None,
            exit_mm=max([0.0, *exits]),
            clearances={c.structure: c.min_clearance_mm for c in critical},
            penetration={c.structure: c.penetration_mm for c in critical},
            collisions=[c.structure for c in rep.checks if c.collides and c.role != "bone"],
        )
    return out


def _size(record: Implant) -> tuple[float | None, float | None]:
    p = record.parameters
    d, length = p.get("diameter_mm"), p.get("length_mm")
    return (
        float(d) if isinstance(d, int | float) else None,
        float(length) if isinstance(length, int | float) else None,
    )


def _size_text(record: Implant) -> str:
    d, length = _size(record)
    if d is not None and length is not None:
        return f"{d:g} x {length:g} mm"
    if length is not None:
        return f"{length:g} mm"
    return record.spec_key or record.kind


def _kind_words(kind: str) -> str:
    return kind.replace("_", " ")


# ---------------------------------------------------------------------- reference


@dataclass
class _Reference:
    implants: dict[str, _Checked]
    resections: dict[tuple[str, str | None], Any]


def _reference(scenario: Scenario) -> _Reference:
    """The expert plan's own measures, computed once per scenario."""
    cached = scenario._cache.get("reference")
    if cached is not None:
        return cached
    from surgtwin.training.resections import cut_tools, measure_resection

    case, geo = scenario._case(), scenario._geometry_of_case()
    implants, cuts = scenario._expert()
    resections = {}
    for structure, group in _groups(cuts).items():
        s = geo.structure(structure)
        tools, bad = cut_tools(group)
        if bad:
            cut, reason = bad[0]
            raise ScenarioError(f"the expert's cut {cut.name!r} is not valid: {reason}")
        for t in _targets(case, s.name):
            target = None if t is None else geo.mesh(t)
            key = (s.name, None if t is None else t.name)
            resections[key] = measure_resection(geo.mesh(s), tools, target)
    ref = _Reference(_check(case, implants, geo), resections)
    scenario._cache["reference"] = ref
    return ref


def _groups(cuts: Sequence[Cut]) -> dict[str, list[Cut]]:
    out: dict[str, list[Cut]] = {}
    for cut in cuts:
        out.setdefault(cut.structure, []).append(cut)
    return out


def _targets(case: Plan, structure: str) -> list:
    found = [s for s in case.structures.values() if s.role == "target" and s.name != structure]
    return found or [None]


# ---------------------------------------------------------------------- implants


def _match(
    trainee: Sequence[Implant], expert: Sequence[Implant], radius_mm: float
) -> dict[str, tuple[Implant, float]]:
    """Expert name -> (trainee implant, distance): nearest pairs first, each used once."""
    from surgtwin.planning.checks import entry_and_tip

    ends = {id(r): entry_and_tip(r) for r in [*trainee, *expert]}
    pairs = []
    for t in trainee:
        te, tt = ends[id(t)]
        for n, e in enumerate(expert):
            if t.kind != e.kind:
                continue
            ee, et = ends[id(e)]
            d = 0.5 * (float(np.linalg.norm(te - ee)) + float(np.linalg.norm(tt - et)))
            if d <= radius_mm:
                pairs.append((d, n, t.name, t, e))
    pairs.sort(key=lambda p: (p[0], p[1], p[2]))
    out: dict[str, tuple[Implant, float]] = {}
    used: set[str] = set()
    for d, _n, tname, t, e in pairs:
        if e.name in out or tname in used:
            continue
        out[e.name] = (t, d)
        used.add(tname)
    return out


def _radial(record: Implant, point: np.ndarray) -> np.ndarray:
    """The part of (point - axis) perpendicular to the implant's axis (LPS mm)."""
    pose = np.asarray(record.pose)
    v = np.asarray(point, dtype=float) - pose[:3, 3]
    z = pose[:3, 2]
    return v - (v @ z) * z


def _breach_direction(record: Implant, structure, geo, frame: PatientFrame) -> str | None:
    """Which way the implant breaches: towards a critical structure it penetrates, or where it
    leaves the bone (``structure`` of role bone); None when it cannot be told."""
    from surgtwin.geometry import clearance as C
    from surgtwin.planning.checks import implant_samples

    samples = implant_samples(record)
    pose = np.asarray(record.pose)
    pts = samples.points @ pose[:3, :3].T + pose[:3, 3]
    if structure.role != "bone":
        c = C.exact_clearance(samples, pose, geo.mesh(structure))
        v = _radial(record, c.closest_point_implant)
    else:
        fld = geo.field(structure)
        if fld is None or samples.axis is None:
            return None
        head, tip = samples.axis
        u = (tip - head) / np.linalg.norm(tip - head)
        station = (samples.points - head) @ u
        radial = np.linalg.norm((samples.points - head) - station[:, None] * u, axis=1)
        axis_s = np.arange(0.0, float(np.linalg.norm(tip - head)), 0.25)
        axis_pts = (head + axis_s[:, None] * u) @ pose[:3, :3].T + pose[:3, 3]
        inside = np.flatnonzero(fld.sample(axis_pts)[0] < 0)
        if not len(inside):
            return None
        region = station >= axis_s[inside[0]] + 2.0 * float(radial.max())
        if not region.any():
            return None
        d = fld.sample(pts[region])[0]
        v = _radial(record, pts[region][int(np.argmax(d))])
    if float(np.linalg.norm(v)) < 1e-6:
        return None
    return frame.dominant(v)


def _correction_words(correction: tuple[float, float], frame: PatientFrame) -> str | None:
    medial, cranial = correction
    sideways = ("medial", "lateral") if frame.side is not None else ("to the left", "to the right")
    parts = []
    for value, (plus, minus) in ((medial, sideways), (cranial, ("cranial", "caudal"))):
        if round(abs(value)) >= 1:
            word = plus if value > 0 else minus
            parts.append((abs(value), f"{round(abs(value)):d} degrees more {word}"))
    if not parts:
        return None
    parts.sort(key=lambda p: -p[0])
    return "aim about " + " and ".join(text for _size, text in parts)


def _score_matched(
    t: Implant,
    e: Implant,
    mine: _Checked,
    ref: _Checked,
    case: Plan,
    geo,
    tol: Tolerances,
    w: Weights,
    midline_x: float,
) -> ImplantScore:
    from surgtwin.planning.checks import entry_and_tip

    te, tt = entry_and_tip(t)
    ee, et = entry_and_tip(e)
    frame = PatientFrame(float(ee[0]), midline_x)
    entry_err = float(np.linalg.norm(te - ee))
    tip_err = float(np.linalg.norm(tt - et))
    angle = angle_between_deg(tt - te, et - ee)
    med_t, cran_t = insertion_angles(tt - te, frame)
    med_e, cran_e = insertion_angles(et - ee, frame)
    correction = (med_e - med_t, cran_e - cran_t)
    (td, tl), (ed, el) = _size(t), _size(e)
    dd = None if td is None or ed is None else td - ed
    dl = None if tl is None or el is None else tl - el

    grade_credit = 1.0
    if mine.grade is not None:
        worse = ref.grade is None or GRADES.index(mine.grade) > GRADES.index(ref.grade)
        grade_credit = GRADE_CREDIT[mine.grade] if worse else 1.0
    clearance_credit = 1.0
    for name, value in mine.clearances.items():
        margin = float(case.structures[name].margin_mm or 0.0)
        expert_value = ref.clearances.get(name, margin)
        reference = min(margin, expert_value) if expert_value > 0 else margin
        if reference <= 0:
            credit = 1.0 if value >= 0 else 0.0
        else:
            credit = min(1.0, max(0.0, value / reference))
        clearance_credit = min(clearance_credit, credit)
    if mine.collisions:
        clearance_credit = 0.0
    size_credits = [_credit(abs(x), tl_) for x, tl_ in ((dd, tol.diameter_mm), (dl, tol.length_mm))]
    size_credits = [c for c, x in zip(size_credits, (dd, dl), strict=True) if x is not None]
    components = {
        "entry": _credit(entry_err, tol.entry_mm),
        "tip": _credit(tip_err, tol.tip_mm),
        "angle": _credit(angle, tol.angle_deg),
        "grade": grade_credit,
        "clearance": clearance_credit,
        "size": float(np.mean(size_credits)) if size_credits else 1.0,
    }
    points = {k: getattr(w, k) for k in Weights.IMPLANT_MEASURES}
    score = 100.0 * sum(points[k] * components[k] for k in points) / sum(points.values())
    checks = {
        "entry": entry_err <= tol.entry_mm,
        "tip": tip_err <= tol.tip_mm,
        "angle": angle <= tol.angle_deg,
        "size": (dd is None or abs(dd) <= tol.diameter_mm + 1e-9)
        and (dl is None or abs(dl) <= tol.length_mm + 1e-9),
        "grade": mine.grade is None or GRADES.index(mine.grade) <= GRADES.index(tol.max_grade),
        "no_collision": not mine.collisions,
    }

    label = e.name if t.name == e.name else f"{e.name} (your {t.name!r})"
    aim = _correction_words(correction, frame)
    notes: list[str] = []
    breach = mine.breach_mm
    aimed = False
    if mine.grade is not None and mine.grade != "A":
        into = max(mine.penetration, key=mine.penetration.get) if mine.penetration else None
        depth_into = mine.penetration[into] if into is not None else 0.0
        bones = [s for s in case.structures.values() if s.role == "bone"]
        if into is not None and depth_into >= mine.exit_mm and depth_into > 0:
            where, structure = f"into the {into.lower()}", case.structures[into]
        else:
            where, structure = "out of the bone", bones[0] if bones else None
            if depth_into > 0:
                where += f", {depth_into:.1f} mm into the {into.lower()}"
        direction = None if structure is None else _breach_direction(t, structure, geo, frame)
        text = f"{label}: {breach:.1f} mm {direction + ' ' if direction else ''}breach {where}"
        text += f" (grade {mine.grade})"
        if aim:
            text += f"; {aim}"
            aimed = True
        elif entry_err >= 1.0:
            size_, word = frame.components(te - ee)[0]
            text += f"; move the entry about {size_:.0f} mm {_OPPOSITE[word]}"
        notes.append(text + ".")
    for name in mine.collisions:
        if name in mine.clearances:
            if mine.grade is None:
                notes.append(f"{label}: reaches {mine.penetration[name]:.1f} mm into the {name}.")
        else:
            notes.append(f"{label}: collides with {name!r}.")
    for name, value in mine.clearances.items():
        margin = float(case.structures[name].margin_mm or 0.0)
        if 0 <= value < margin:
            notes.append(
                f"{label}: {value:.1f} mm from the {name.lower()}, inside its {margin:g} mm "
                "safety margin."
            )
    if not checks["entry"]:
        offset = describe_offset(te - ee, frame)
        size_, word = frame.components(te - ee)[0]
        notes.append(
            f"{label}: entry {offset} of the expert's (tolerance {tol.entry_mm:g} mm); move it "
            f"about {size_:.0f} mm {_OPPOSITE[word]}."
        )
    if not checks["angle"]:
        text = f"{label}: axis {angle:.1f} degrees off the expert's (tolerance {tol.angle_deg:g})"
        notes.append(text + (f"; {aim}." if aim and not aimed else "."))
    if not checks["tip"]:
        notes.append(
            f"{label}: tip {describe_offset(tt - et, frame)} of the expert's (tolerance "
            f"{tol.tip_mm:g} mm)."
        )
    if not checks["size"]:
        notes.append(
            f"{label}: {_size_text(t)}; the expert used {_size_text(e)} (tolerance "
            f"{tol.diameter_mm:g} mm in diameter, {tol.length_mm:g} mm in length)."
        )
    if not notes:
        grade = f", grade {mine.grade}" if mine.grade else ""
        size = (
            ""
            if _size_text(t) == _size_text(e)
            else (f"; {_size_text(t)} where the expert used {_size_text(e)}")
        )
        notes.append(
            f"{label}: within every tolerance (entry {entry_err:.1f} mm, tip {tip_err:.1f} mm, "
            f"axis {angle:.1f} degrees{grade}{size})."
        )
    return ImplantScore(
        name=e.name,
        status="matched",
        trainee_name=t.name,
        expert_name=e.name,
        kind=e.kind,
        size=_size_text(t),
        expert_size=_size_text(e),
        entry_error_mm=entry_err,
        tip_error_mm=tip_err,
        angle_error_deg=angle,
        correction_deg=correction,
        diameter_diff_mm=dd,
        length_diff_mm=dl,
        grade=mine.grade,
        expert_grade=ref.grade,
        breach_mm=breach,
        clearances_mm=dict(mine.clearances),
        min_clearance_mm=min(mine.clearances.values()) if mine.clearances else None,
        collisions=tuple(mine.collisions),
        components=components,
        checks=checks,
        score=score,
        feedback=tuple(notes),
    )


# ---------------------------------------------------------------------- resections


def _resection_frame(target_mesh) -> PatientFrame:
    return PatientFrame(float(np.mean(target_mesh.points[:, 0])), 0.0)


def _score_resection(
    structure,
    target,
    cuts: Sequence[Cut],
    tools: Sequence,
    ref,
    geo,
    scenario: Scenario,
) -> ResectionScore:
    from surgtwin.training.resections import measure_resection, overlap

    tol, w = scenario.info.tolerances, scenario.info.weights
    name = f"Resection of {target.name}" if target is not None else f"Cut of {structure.name}"
    what = "bone" if structure.role == "bone" else f"{structure.name.lower()}"
    required = tol.margin_mm if target is not None else None
    expert_margin = ref.margin_mm
    common = {
        "name": name,
        "structure": structure.name,
        "target": None if target is None else target.name,
        "required_margin_mm": required,
        "expert_margin_mm": expert_margin,
        "expert_healthy_bone_removed_mm3": ref.healthy_removed_mm3,
    }
    if not tools:
        if target is not None:
            text = (
                f"{name}: not done (no cut of {structure.name!r}); the expert removed it with a "
                f"{expert_margin:.1f} mm margin."
            )
        else:
            text = f"{name}: not done; the expert cut {structure.name!r}."
        checks = {"done": False}
        return ResectionScore(status="missing", checks=checks, feedback=(text,), **common)

    m = measure_resection(geo.mesh(structure), tools, None if target is None else geo.mesh(target))
    names = tuple(c.name for c in cuts)
    notes: list[str] = []
    if target is None:
        dice = overlap(m, ref)
        components = {"overlap": dice}
        checks = {"overlap": dice >= MIN_OVERLAP}
        score = 100.0 * dice
        notes.append(
            f"{name}: the part you removed overlaps the expert's by {100 * dice:.0f}% "
            f"(at least {100 * MIN_OVERLAP:.0f}% to pass); you removed "
            f"{m.removed_mm3 / 1000:.1f} cm³, the expert {ref.removed_mm3 / 1000:.1f} cm³."
        )
        return ResectionScore(
            status="done",
            cuts=names,
            removed_mm3=m.removed_mm3,
            healthy_bone_removed_mm3=m.healthy_removed_mm3,
            overlap=dice,
            components=components,
            checks=checks,
            score=score,
            feedback=tuple(notes),
            **common,
        )

    assert required is not None
    margin = float(m.margin_mm) if m.margin_mm is not None else -math.inf
    reference_margin = required
    if expert_margin is not None and 0 < expert_margin < required:
        reference_margin = expert_margin
    threshold = reference_margin - tol.margin_slack_mm
    removed = bool(m.target_removed)
    ref_h = ref.healthy_removed_mm3
    if removed:
        margin_credit = 1.0 if margin >= reference_margin else max(0.0, margin / reference_margin)
        if ref_h > 0:
            healthy_credit = min(1.0, max(0.0, 2.0 - m.healthy_removed_mm3 / ref_h))
        else:
            healthy_credit = 1.0 if m.healthy_removed_mm3 <= 1.0 else 0.0
    else:
        margin_credit = healthy_credit = 0.0
    components = {
        "target_removed": 1.0 if removed else 0.0,
        "margin": margin_credit,
        "healthy_bone": healthy_credit,
    }
    points = {k: getattr(w, k) for k in Weights.RESECTION_MEASURES}
    score = 100.0 * sum(points[k] * components[k] for k in points) / sum(points.values())
    checks = {
        "target_removed": removed,
        "margin": removed and margin >= threshold,
        "healthy_bone": m.healthy_removed_mm3 <= tol.healthy_bone_factor * ref_h + 1.0,
    }
    if not removed:
        left = m.target_left_mm3 or 0.0
        reach = max(0.0, -margin)
        text = f"{name}: the target is not fully removed: {left:.0f} mm³ of it remain"
        if m.left_offset is not None and float(np.linalg.norm(m.left_offset)) > 1e-6:
            word = _resection_frame(geo.mesh(target)).dominant(m.left_offset)
            text += (
                f" on its {word} side; extend the cut about {reach + required:.0f} mm {word} "
                f"to take it with a {required:g} mm margin"
            )
        notes.append(text + ".")
    elif margin < threshold:
        notes.append(
            f"{name}: removed, but with a {margin:.1f} mm margin where {required:g} mm are "
            f"required; widen the cut by about {reference_margin - margin:.1f} mm."
        )
    else:
        shown = "more than 200" if not math.isfinite(margin) else f"{margin:.1f}"
        notes.append(f"{name}: removed with a {shown} mm margin ({required:g} mm required).")
    ratio = m.healthy_removed_mm3 / ref_h if ref_h > 0 else math.inf
    if not checks["healthy_bone"]:
        notes.append(
            f"{name}: {m.healthy_removed_mm3 / 1000:.1f} cm³ of healthy {what} removed, "
            f"{ratio:.1f} times the expert's {ref_h / 1000:.1f} cm³ (at most "
            f"{tol.healthy_bone_factor:g} times)."
        )
    elif removed:
        notes.append(
            f"{name}: {m.healthy_removed_mm3 / 1000:.1f} cm³ of healthy {what} removed (the "
            f"expert: {ref_h / 1000:.1f} cm³)."
        )
    return ResectionScore(
        status="done",
        cuts=names,
        target_removed=removed,
        target_left_mm3=m.target_left_mm3,
        margin_mm=margin,
        removed_mm3=m.removed_mm3,
        healthy_bone_removed_mm3=m.healthy_removed_mm3,
        components=components,
        checks=checks,
        score=score,
        feedback=tuple(notes),
        **common,
    )


# ---------------------------------------------------------------------- the attempt


def _duration(seconds: float) -> str:
    s = round(seconds)
    minutes, s = divmod(s, 60)
    if minutes and s:
        return f"{minutes} min {s} s"
    return f"{minutes} min" if minutes else f"{s} s"


def score_attempt(
    attempt: Plan, scenario: Scenario, meta: AttemptMeta | None = None
) -> ScoreResult:
    """Score a trainee's plan against the scenario's expert plan (see the module notes).

    Parameters
    ----------
    attempt : Plan
        The trainee's plan (its implants and cuts are scored; its structures are not used).
    scenario : Scenario
        Locked or not: scoring reads the expert plan itself, and leaves the lock as it is.
    meta : AttemptMeta, optional
        Time taken and undos (None: unknown).

    Returns
    -------
    ScoreResult

    Raises
    ------
    SurgTwinError
        The case or the expert plan cannot be read, or a surface cannot be cut.
    """
    from surgtwin.planning.implants import USER_STL
    from surgtwin.training.resections import cut_tools

    info = scenario.info
    tol, w = info.tolerances, info.weights
    case, geo = scenario._case(), scenario._geometry_of_case()
    expert_implants, expert_cuts = scenario._expert()
    ref = _reference(scenario)

    # ------------------------------------------------------------------ implants
    allowed, refused = [], []
    for record in attempt.implants.values():
        if record.kind == USER_STL or not info.allows(record.spec_key):
            refused.append(record)
        else:
            allowed.append(record)
    matches = _match(allowed, expert_implants, tol.match_radius_mm)
    matched_names = {t.name for t, _d in matches.values()}
    mine = _check(case, allowed, geo)
    implants: list[ImplantScore] = []
    for e in expert_implants:
        if e.name in matches:
            t, _d = matches[e.name]
            implants.append(
                _score_matched(
                    t, e, mine[t.name], ref.implants[e.name], case, geo, tol, w, info.midline_x_mm
                )
            )
        else:
            text = f"{e.name}: missing; the expert placed a {_size_text(e)} {_kind_words(e.kind)}."
            implants.append(
                ImplantScore(
                    name=e.name,
                    status="missing",
                    trainee_name=None,
                    expert_name=e.name,
                    kind=e.kind,
                    expert_size=_size_text(e),
                    expert_grade=ref.implants[e.name].grade,
                    checks={"present": False},
                    feedback=(text,),
                )
            )
    penalty = w.extra_implant_penalty
    for t in allowed:
        if t.name in matched_names:
            continue
        text = (
            f"{t.name}: not in the expert's plan (no expert {_kind_words(t.kind)} within "
            f"{tol.match_radius_mm:g} mm); -{penalty:g} points."
        )
        checked = mine.get(t.name)
        implants.append(
            ImplantScore(
                name=t.name,
                status="extra",
                trainee_name=t.name,
                expert_name=None,
                kind=t.kind,
                size=_size_text(t),
                grade=None if checked is None else checked.grade,
                clearances_mm={} if checked is None else dict(checked.clearances),
                min_clearance_mm=None
                if checked is None or not checked.clearances
                else min(checked.clearances.values()),
                collisions=() if checked is None else tuple(checked.collisions),
                checks={"expected": False},
                feedback=(text,),
            )
        )
    for t in refused:
        what = f"the {_kind_words(t.kind)} {_size_text(t)}"
        text = f"{t.name}: {what} is not among the implants allowed for this task; "
        text += f"-{penalty:g} points."
        implants.append(
            ImplantScore(
                name=t.name,
                status="not_allowed",
                trainee_name=t.name,
                expert_name=None,
                kind=t.kind,
                size=_size_text(t),
                checks={"allowed": False},
                feedback=(text,),
            )
        )

    # ------------------------------------------------------------------ resections
    expert_groups = _groups(expert_cuts)
    expert_structures = {geo.structure(s).name for s in expert_groups}
    by_structure: dict[str, list[Cut]] = {}
    extra_cuts: list[dict[str, str]] = []
    feedback_cuts: list[str] = []
    for cut in attempt.cuts.values():
        match = next((s for s in expert_structures if s.lower() == cut.structure.lower()), None)
        if match is None:
            reason = "the task does not cut this structure"
            extra_cuts.append({"name": cut.name, "structure": cut.structure, "reason": reason})
            feedback_cuts.append(
                f"Cut {cut.name!r} of {cut.structure!r}: not part of the task; "
                f"-{w.extra_cut_penalty:g} points."
            )
        else:
            by_structure.setdefault(match, []).append(cut)
    resections: list[ResectionScore] = []
    for structure_name in dict.fromkeys(geo.structure(s).name for s in expert_groups):
        s = case.structures[structure_name]
        cuts = by_structure.get(structure_name, [])
        tools, bad = cut_tools(cuts)
        for cut, reason in bad:
            feedback_cuts.append(f"Cut {cut.name!r}: cannot be evaluated ({reason}); ignored.")
        good = [c for c in cuts if all(c is not b for b, _r in bad)]
        for target in _targets(case, structure_name):
            key = (structure_name, None if target is None else target.name)
            resections.append(
                _score_resection(s, target, good, tools, ref.resections[key], geo, scenario)
            )

    # ------------------------------------------------------------------ total
    items = [(w.implant_item, i.score) for i in implants if i.status in ("matched", "missing")]
    items += [(w.resection_item, r.score) for r in resections]
    weight = sum(x for x, _s in items)
    base = sum(x * s for x, s in items) / weight if weight > 0 else 100.0
    n_extra = sum(1 for i in implants if i.status in ("extra", "not_allowed"))
    time_taken = None if meta is None else meta.time_taken_s
    over_time = (
        info.time_limit_s is not None and time_taken is not None and time_taken > info.time_limit_s
    )
    penalties = {
        "extra_implants": n_extra * w.extra_implant_penalty,
        "extra_cuts": len(extra_cuts) * w.extra_cut_penalty,
        "over_time": w.over_time_penalty if over_time else 0.0,
    }
    total = float(min(100.0, max(0.0, base - sum(penalties.values()))))
    checks = {
        "no_missing": not any(i.status == "missing" for i in implants)
        and not any(r.status == "missing" for r in resections),
        "no_extra": n_extra == 0 and not extra_cuts,
        "within_time": not over_time,
        "score": total >= tol.pass_score,
    }
    passed = (
        all(checks.values())
        and all(i.passed for i in implants)
        and all(r.passed for r in resections)
    )

    feedback = [text for i in implants for text in i.feedback]
    feedback += [text for r in resections for text in r.feedback]
    feedback += feedback_cuts
    undo_count = None if meta is None else meta.undo_count
    summary = []
    if time_taken is not None:
        t_text = f"Time {_duration(time_taken)}"
        if info.time_limit_s is not None:
            limit = _duration(info.time_limit_s)
            t_text += (
                f", over the {limit} limit (-{w.over_time_penalty:g} points)"
                if over_time
                else f" (limit {limit})"
            )
        summary.append(t_text)
    if undo_count is not None:
        summary.append(f"{undo_count} undo{'' if undo_count == 1 else 's'}")
    if summary:
        feedback.append("; ".join(summary) + ".")
    return ScoreResult(
        scenario_key=info.key,
        scenario_title=info.title,
        scenario_fingerprint=scenario.fingerprint(),
        score=total,
        passed=passed,
        implants=tuple(implants),
        resections=tuple(resections),
        extra_cuts=tuple(extra_cuts),
        penalties=penalties,
        checks=checks,
        feedback=tuple(feedback),
        trainee="" if meta is None else meta.trainee,
        time_taken_s=time_taken,
        time_limit_s=info.time_limit_s,
        undo_count=undo_count,
    )
