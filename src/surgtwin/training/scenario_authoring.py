"""Authoring a training scenario from an instructor's saved plan (:func:`author_scenario`).

The plan's implants and cuts become the hidden expert plan; the case the trainee starts from
is the plan without them (or the plan saved before its cuts). The allowed implants and the
midline default from the expert plan. Write the result with
:func:`~surgtwin.training.scenario_files.save_scenario`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from surgtwin.planning.plan import Plan
from surgtwin.training.scenario_info import ScenarioError, ScenarioInfo, Tolerances, Weights, slug
from surgtwin.training.scenario_model import Scenario, copy_plan

__all__ = ["author_scenario"]


def _default_midline(expert: Plan) -> float:
    """LPS x of the midline: the centroid of the critical structures' surfaces, else the mean
    of the implants' entries, else the centre of the label map's grid, else 0."""
    xs = [
        float(np.mean(s.mesh.points[:, 0]))
        for s in expert.structures.values()
        if s.role == "critical" and s.mesh is not None and len(s.mesh.points)
    ]
    if xs:
        return float(np.mean(xs))
    if len(expert.implants) >= 2:
        return float(np.mean([np.asarray(i.pose)[0, 3] for i in expert.implants.values()]))
    lm = expert.labelmap
    if lm is not None:
        g = lm.geometry
        centre = (np.asarray(g.shape[::-1], dtype=float) - 1.0) / 2.0
        return float(g.index_to_lps(centre[None, :])[0, 0])
    return 0.0


def _default_allowed(expert: Plan) -> tuple[str, ...]:
    from surgtwin.planning.implants import Catalogue

    kinds = {i.kind for i in expert.implants.values()}
    cat = Catalogue.builtin()
    keys = [s.key for s in cat if s.kind in kinds]
    keys += [i.spec_key for i in expert.implants.values() if i.spec_key and i.spec_key not in keys]
    return tuple(keys)


def author_scenario(
    expert: Plan,
    task: str,
    *,
    case: Plan | None = None,
    key: str | None = None,
    title: str | None = None,
    allowed_implants: Iterable[str] | None = None,
    any_implant: bool = False,
    tolerances: Tolerances | None = None,
    weights: Weights | None = None,
    time_limit_s: float | None = None,
    midline_x_mm: float | None = None,
) -> Scenario:
    """A scenario from a saved plan: its implants and cuts become the hidden expert plan.

    Parameters
    ----------
    expert : Plan
        The instructor's plan.
    task : str
        The task shown to the trainee.
    case : Plan, optional
        The case the trainee starts from. Default: ``expert`` without its implants, cuts,
        measurements and notes. Required when ``expert`` has cuts: a cut changes the
        structure it cuts, so give the plan saved before the cuts (e.g. from
        ``surgtwin plan new``).
    key, title : str, optional
        Default: from the plan's name.
    allowed_implants : iterable of str, optional
        Catalogue keys the trainee may use. Default: every built-in catalogue entry of the
        kinds the expert used (none if the expert placed no implant).
    any_implant : bool
        Allow every catalogue entry (overrides ``allowed_implants``).
    tolerances, weights : optional
        Default :class:`Tolerances` and :class:`Weights`.
    time_limit_s : float, optional
        Seconds; default none.
    midline_x_mm : float, optional
        LPS x of the midline; default from the critical structures (the spinal canal), else
        from the implants, else the image centre.

    Raises
    ------
    ScenarioError
        Empty task, nothing to score, a cut plan without ``case``, or a case that does not
        match the expert plan.
    """
    if not task.strip():
        raise ScenarioError("the scenario needs a task (--task)")
    if not len(expert.implants) and not len(expert.cuts):
        raise ScenarioError(
            f"plan {expert.name!r} has no implants and no cuts: nothing the trainee could be "
            "scored against"
        )
    if case is None:
        if len(expert.cuts):
            raise ScenarioError(
                f"plan {expert.name!r} has cuts, which changed the structures they cut; give "
                "the case as the plan saved before the cuts (--case, e.g. from surgtwin plan new)"
            )
        case = expert
    else:
        for cut in expert.cuts.values():
            if cut.structure not in case.structures:
                raise ScenarioError(
                    f"the case has no structure {cut.structure!r}, which the expert's cut "
                    f"{cut.name!r} cuts"
                )
        same_frame = (
            case.case.frame_of_reference_uid == expert.case.frame_of_reference_uid
            or not case.case.frame_of_reference_uid
            or not expert.case.frame_of_reference_uid
        )
        if not same_frame:
            raise ScenarioError("the case and the expert plan were made on different images")
    title = (title or expert.name or "Scenario").strip()
    allowed: tuple[str, ...] | None
    if any_implant:
        allowed = None
    elif allowed_implants is not None:
        allowed = tuple(allowed_implants)
    else:
        allowed = _default_allowed(expert)
    info = ScenarioInfo(
        key=key or slug(title),
        title=title,
        task=task.strip(),
        allowed_implants=allowed,
        tolerances=tolerances or Tolerances(),
        weights=weights or Weights(),
        time_limit_s=time_limit_s,
        midline_x_mm=_default_midline(expert) if midline_x_mm is None else float(midline_x_mm),
        source="authored",
    )
    base = copy_plan(case, title)
    implants = list(expert.implants.values())
    cuts = list(expert.cuts.values())
    return Scenario(info, lambda: base, lambda: (implants, cuts))
