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

Modules: this one makes the total and the attempt's feedback (:func:`score_attempt`);
:mod:`~surgtwin.training.implant_scoring` matches and scores the implants,
:mod:`~surgtwin.training.resection_scoring` the resections, and
:mod:`~surgtwin.training.score_results` holds the result records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from surgtwin.planning.plan import Plan
from surgtwin.training.attempt import AttemptMeta
from surgtwin.training.implant_scoring import (
    GRADE_CREDIT,
    Checked,
    check_implants,
    score_implants,
)
from surgtwin.training.resection_scoring import (
    MIN_OVERLAP,
    ResectionKey,
    measure_expert_resections,
    score_resections,
)
from surgtwin.training.scenario_model import Scenario
from surgtwin.training.score_results import ImplantScore, ResectionScore, ScoreResult

__all__ = [
    "GRADE_CREDIT",
    "MIN_OVERLAP",
    "ImplantScore",
    "ResectionScore",
    "ScoreResult",
    "score_attempt",
]


@dataclass
class _Reference:
    """The expert plan's own measures: its implants' checks and its resections."""

    implants: dict[str, Checked]
    resections: dict[ResectionKey, Any]


def _reference(scenario: Scenario) -> _Reference:
    """The expert plan's own measures, computed once per scenario."""
    cached = scenario._cache.get("reference")
    if cached is not None:
        return cached
    case, geo = scenario._case(), scenario._geometry_of_case()
    implants, cuts = scenario._expert()
    resections = measure_expert_resections(case, geo, cuts)
    ref = _Reference(check_implants(case, implants, geo), resections)
    scenario._cache["reference"] = ref
    return ref


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
    info = scenario.info
    tol, w = info.tolerances, info.weights
    case, geo = scenario._case(), scenario._geometry_of_case()
    expert_implants, expert_cuts = scenario._expert()
    ref = _reference(scenario)
    implants = score_implants(attempt, expert_implants, ref.implants, case, geo, info)
    resections, extra_cuts, feedback_cuts = score_resections(
        attempt, expert_cuts, ref.resections, case, geo, info
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
