"""Scoring the implants of an attempt: matching them to the expert's, and each one's measures.

:func:`score_implants` matches each trainee implant the scenario allows to the nearest expert
implant of the same kind (:func:`match_implants`) and scores every expert implant (matched or
missing) and every extra or not allowed trainee implant as an
:class:`~surgtwin.training.score_results.ImplantScore`, with its feedback in words. The measures
and credits are described in :mod:`surgtwin.training.scoring`. :func:`check_implants` runs the
plan checks (breach grade, clearances, collisions) of implants placed in the case, for the
trainee's implants and for the expert's reference alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from surgtwin.planning.plan import Implant, Plan
from surgtwin.training.directions import (
    PatientFrame,
    angle_between_deg,
    describe_offset,
    insertion_angles,
)
from surgtwin.training.scenario_info import GRADES, ScenarioInfo, Tolerances, Weights
from surgtwin.training.score_results import ImplantScore, item_score

__all__ = [
    "GRADE_CREDIT",
    "Checked",
    "check_implants",
    "match_implants",
    "score_implants",
]

#: Credit of a breach grade worse than the expert's.
GRADE_CREDIT: dict[str, float] = {"A": 1.0, "B": 0.75, "C": 0.25, "D": 0.0, "E": 0.0}

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


@dataclass
class Checked:
    """What :func:`check_plan` says of one implant."""

    grade: str | None
    exit_mm: float
    clearances: dict[str, float]
    penetration: dict[str, float]
    collisions: list[str]

    @property
    def breach_mm(self) -> float:
        return max([self.exit_mm, *self.penetration.values()])


def check_implants(case: Plan, implants: Sequence[Implant], geo) -> dict[str, Checked]:
    """The plan checks of ``implants`` placed in ``case`` (implant name -> :class:`Checked`).

    Parameters
    ----------
    case : Plan
        The scenario's case: its structures are the ones checked against.
    implants : sequence of Implant
    geo : CaseGeometry
        The case's fields and surfaces.
    """
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
        out[rep.name] = Checked(
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


def match_implants(
    trainee: Sequence[Implant], expert: Sequence[Implant], radius_mm: float
) -> dict[str, tuple[Implant, float]]:
    """Expert name -> (trainee implant, distance in mm): nearest pairs first, each used once.

    The distance is the mean of the entry and tip errors (mm); pairs are of the same kind and
    at most ``radius_mm`` apart.
    """
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
    mine: Checked,
    ref: Checked,
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
    score = item_score(components, w, Weights.IMPLANT_MEASURES)
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


def _trainee_only(
    t: Implant, status: str, checks: dict[str, bool], text: str, **measures: Any
) -> ImplantScore:
    """The score of a trainee implant with no expert counterpart (``"extra"`` or
    ``"not_allowed"``): 0 points, one failed check, one line of feedback."""
    return ImplantScore(
        name=t.name,
        status=status,
        trainee_name=t.name,
        expert_name=None,
        kind=t.kind,
        size=_size_text(t),
        checks=checks,
        feedback=(text,),
        **measures,
    )


def score_implants(
    attempt: Plan,
    expert: Sequence[Implant],
    reference: Mapping[str, Checked],
    case: Plan,
    geo,
    info: ScenarioInfo,
) -> list[ImplantScore]:
    """Score the implants of ``attempt`` against the expert's.

    Parameters
    ----------
    attempt : Plan
        The trainee's plan.
    expert : sequence of Implant
        The expert plan's implants.
    reference : mapping
        Expert implant name -> its :class:`Checked` (the expert's own breach and clearances).
    case : Plan
        The scenario's case (implants are checked against its structures).
    geo : CaseGeometry
        The case's fields and surfaces.
    info : ScenarioInfo
        Allowed implants, tolerances, weights and midline (LPS x, mm).

    Returns
    -------
    list of ImplantScore
        Expert implants in the expert's order (matched or missing), then the extra trainee
        implants, then those the scenario does not allow.
    """
    from surgtwin.planning.implants import USER_STL

    tol, w = info.tolerances, info.weights
    allowed, refused = [], []
    for record in attempt.implants.values():
        if record.kind == USER_STL or not info.allows(record.spec_key):
            refused.append(record)
        else:
            allowed.append(record)
    matches = match_implants(allowed, expert, tol.match_radius_mm)
    matched_names = {t.name for t, _d in matches.values()}
    mine = check_implants(case, allowed, geo)
    implants: list[ImplantScore] = []
    for e in expert:
        if e.name in matches:
            t, _d = matches[e.name]
            implants.append(
                _score_matched(
                    t, e, mine[t.name], reference[e.name], case, geo, tol, w, info.midline_x_mm
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
                    expert_grade=reference[e.name].grade,
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
            _trainee_only(
                t,
                "extra",
                {"expected": False},
                text,
                grade=None if checked is None else checked.grade,
                clearances_mm={} if checked is None else dict(checked.clearances),
                min_clearance_mm=None
                if checked is None or not checked.clearances
                else min(checked.clearances.values()),
                collisions=() if checked is None else tuple(checked.collisions),
            )
        )
    for t in refused:
        what = f"the {_kind_words(t.kind)} {_size_text(t)}"
        text = f"{t.name}: {what} is not among the implants allowed for this task; "
        text += f"-{penalty:g} points."
        implants.append(_trainee_only(t, "not_allowed", {"allowed": False}, text))
    return implants
