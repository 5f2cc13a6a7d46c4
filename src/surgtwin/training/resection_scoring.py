"""Scoring the resections of an attempt: each structure the expert cut, against each target.

For each structure the expert cut and each target structure of the case,
:func:`score_resections` recomputes every cut of that structure in the trainee's plan from its
tool parameters against the case's uncut structure (:mod:`surgtwin.training.resections`) and
scores it as a :class:`~surgtwin.training.score_results.ResectionScore`: target removed, margin
and healthy bone removed next to the expert's, or, without a target (an osteotomy), the overlap
(Dice) of the parts removed. :func:`measure_expert_resections` gives the expert's own measures
they are compared with. The measures and credits are described in
:mod:`surgtwin.training.scoring`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from surgtwin.planning.plan import Cut, Plan
from surgtwin.training.directions import PatientFrame
from surgtwin.training.scenario_info import ScenarioError, ScenarioInfo, Weights
from surgtwin.training.score_results import ResectionScore, item_score

__all__ = ["MIN_OVERLAP", "measure_expert_resections", "score_resections"]

#: Smallest overlap (Dice) with the expert's cut that passes, for cuts without a target.
MIN_OVERLAP = 0.7

#: (structure name, target name or None): one expert resection.
ResectionKey = tuple[str, str | None]


def _groups(cuts: Sequence[Cut]) -> dict[str, list[Cut]]:
    out: dict[str, list[Cut]] = {}
    for cut in cuts:
        out.setdefault(cut.structure, []).append(cut)
    return out


def _targets(case: Plan, structure: str) -> list:
    found = [s for s in case.structures.values() if s.role == "target" and s.name != structure]
    return found or [None]


def _resection_frame(target_mesh) -> PatientFrame:
    return PatientFrame(float(np.mean(target_mesh.points[:, 0])), 0.0)


def _score_resection(
    structure,
    target,
    cuts: Sequence[Cut],
    tools: Sequence,
    ref,
    geo,
    info: ScenarioInfo,
) -> ResectionScore:
    from surgtwin.training.resections import measure_resection, overlap

    tol = info.tolerances
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
    done = {
        "status": "done",
        "cuts": tuple(c.name for c in cuts),
        "removed_mm3": m.removed_mm3,
        "healthy_bone_removed_mm3": m.healthy_removed_mm3,
        **common,
    }
    if target is not None:
        return ResectionScore(**done, **_target_measures(name, what, target, m, ref, geo, info))
    dice = overlap(m, ref)
    text = (
        f"{name}: the part you removed overlaps the expert's by {100 * dice:.0f}% "
        f"(at least {100 * MIN_OVERLAP:.0f}% to pass); you removed "
        f"{m.removed_mm3 / 1000:.1f} cm³, the expert {ref.removed_mm3 / 1000:.1f} cm³."
    )
    return ResectionScore(
        **done,
        overlap=dice,
        components={"overlap": dice},
        checks={"overlap": dice >= MIN_OVERLAP},
        score=100.0 * dice,
        feedback=(text,),
    )


def _target_measures(
    name: str, what: str, target, m, ref, geo, info: ScenarioInfo
) -> dict[str, Any]:
    """The :class:`ResectionScore` fields of a cut against a target: removed, margin, healthy
    tissue removed (``what``), next to the expert's measures ``ref``."""
    tol, w = info.tolerances, info.weights
    required = tol.margin_mm
    expert_margin = ref.margin_mm
    notes: list[str] = []
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
    score = item_score(components, w, Weights.RESECTION_MEASURES)
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
    return {
        "target_removed": removed,
        "target_left_mm3": m.target_left_mm3,
        "margin_mm": margin,
        "components": components,
        "checks": checks,
        "score": score,
        "feedback": tuple(notes),
    }


def measure_expert_resections(case: Plan, geo, cuts: Sequence[Cut]) -> dict[ResectionKey, Any]:
    """The expert's own resections: (structure, target) -> its
    :class:`~surgtwin.training.resections.ResectionMeasure`.

    Parameters
    ----------
    case : Plan
        The scenario's case (its uncut structures and its targets).
    geo : CaseGeometry
        The case's fields and surfaces.
    cuts : sequence of Cut
        The expert plan's cuts.

    Raises
    ------
    ScenarioError
        An expert cut cannot be evaluated.
    """
    from surgtwin.training.resections import cut_tools, measure_resection

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
    return resections


def score_resections(
    attempt: Plan,
    expert_cuts: Sequence[Cut],
    reference: Mapping[ResectionKey, Any],
    case: Plan,
    geo,
    info: ScenarioInfo,
) -> tuple[list[ResectionScore], list[dict[str, str]], list[str]]:
    """Score the cuts of ``attempt`` against the expert's.

    Parameters
    ----------
    attempt : Plan
        The trainee's plan.
    expert_cuts : sequence of Cut
        The expert plan's cuts.
    reference : mapping
        The expert's measures, from :func:`measure_expert_resections`.
    case : Plan
        The scenario's case.
    geo : CaseGeometry
        The case's fields and surfaces.
    info : ScenarioInfo
        Tolerances and weights.

    Returns
    -------
    resections : list of ResectionScore
        One per structure the expert cut and target (in the expert's order).
    extra_cuts : list of dict
        ``{"name", "structure", "reason"}`` of the trainee's cuts of structures the expert did
        not cut.
    feedback : list of str
        On the extra cuts and on cuts that cannot be evaluated (which are ignored).
    """
    from surgtwin.training.resections import cut_tools

    w = info.weights
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
            resections.append(_score_resection(s, target, good, tools, reference[key], geo, info))
    return resections, extra_cuts, feedback_cuts
