"""The training scenario itself: :class:`Scenario`, a case, a task and a hidden expert plan.

A :class:`Scenario` is what a trainee works on. :meth:`Scenario.case_plan` gives a fresh plan
of the case (structures and label map, no implants, no cuts) to plan on; the expert's plan
stays hidden: :meth:`Scenario.expert_plan` raises
:class:`~surgtwin.training.scenario_info.ExpertPlanLocked` until the results are unlocked
(:meth:`Scenario.unlock_results`, after the attempt was scored). Scoring
(:mod:`surgtwin.training.scoring`) reads the expert plan through the package's own access.
The case and the expert plan are read lazily, through the callables the scenario is made with
(:mod:`surgtwin.training.scenario_files`, :mod:`surgtwin.training.scenario_authoring`,
:mod:`surgtwin.training.bundled`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from surgtwin.planning.plan import Cut, Implant, Plan
from surgtwin.training.scenario_info import ExpertPlanLocked, ScenarioInfo

__all__ = ["Scenario", "copy_plan"]


def copy_plan(plan: Plan, name: str | None = None, *, records: bool = False) -> Plan:
    """A new plan with the case, structures and a copy of the label map of ``plan``.

    Parameters
    ----------
    plan : Plan
    name : str, optional
        Default: the plan's name.
    records : bool
        Also copy the implants, cuts, measurements and notes.
    """
    from surgtwin.segmentation.labelmap import LabelMap

    lm = plan.labelmap
    labelmap = None
    if lm is not None:
        labelmap = LabelMap(lm.geometry, np.array(lm.array), list(lm.labels.values()))
    out = Plan(plan.name if name is None else name, plan.case, labelmap)
    with out.batch():
        for s in plan.structures.values():
            out.structures.add(s)
        if records:
            for i in plan.implants.values():
                out.implants.add(i)
            for c in plan.cuts.values():
                out.cuts.add(c)
            for m in plan.measurements.values():
                out.measurements.add(m)
            out.notes = plan.notes
    return out


def _with_records(case: Plan, implants: Iterable[Implant], cuts: Iterable[Cut], name: str) -> Plan:
    plan = copy_plan(case, name)
    with plan.batch():
        for i in implants:
            plan.implants.add(i)
        for c in cuts:
            plan.cuts.add(c)
    return plan


class Scenario:
    """A training scenario (trainee-facing: the expert plan stays locked).

    Made by :func:`load_scenario`, :func:`author_scenario` or the bundled scenarios; not
    usually constructed directly.

    Parameters
    ----------
    info : ScenarioInfo
    case : callable
        Returns the case plan (called once, when first needed).
    expert : callable
        Returns the expert plan's (implants, cuts) (called once, when first needed).
    """

    def __init__(
        self,
        info: ScenarioInfo,
        case: Callable[[], Plan],
        expert: Callable[[], tuple[list[Implant], list[Cut]]],
    ):
        self.info = info
        self._load_case = case
        self._load_expert = expert
        self._case_plan: Plan | None = None
        self._expert_records: tuple[list[Implant], list[Cut]] | None = None
        self._unlocked = False
        self._geometry = None
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = "unlocked" if self._unlocked else "locked"
        return f"<Scenario {self.info.key!r}: {self.info.title!r} (expert plan {state})>"

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def title(self) -> str:
        return self.info.title

    @property
    def task(self) -> str:
        return self.info.task

    # ------------------------------------------------------------------ trainee side

    def case_plan(self, name: str | None = None) -> Plan:
        """A fresh plan of the case to work on: structures and label map, nothing planned.

        Parameters
        ----------
        name : str, optional
            The plan's name (default: the scenario's title).
        """
        return copy_plan(self._case(), name or self.info.title)

    @property
    def results_unlocked(self) -> bool:
        """Whether :meth:`expert_plan` may be shown (after the attempt was scored)."""
        return self._unlocked

    def unlock_results(self) -> None:
        """Allow :meth:`expert_plan` (call it once the trainee's attempt is scored)."""
        self._unlocked = True

    def expert_plan(self) -> Plan:
        """The expert plan (case structures plus the expert's implants and cuts).

        Raises
        ------
        ExpertPlanLocked
            The results were not unlocked (:meth:`unlock_results`).
        """
        if not self._unlocked:
            raise ExpertPlanLocked(
                f"scenario {self.info.key!r}: the expert plan is shown only with the results; "
                "score the attempt first"
            )
        return self._expert_plan()

    def expert_counts(self) -> tuple[int, int]:
        """How many implants and cuts the expert plan has (not what they are)."""
        implants, cuts = self._expert()
        return len(implants), len(cuts)

    # ------------------------------------------------------------------ package side

    def _case(self) -> Plan:
        """The shared case plan (read only: use :meth:`case_plan` for a copy to edit)."""
        if self._case_plan is None:
            self._case_plan = self._load_case()
        return self._case_plan

    def _expert(self) -> tuple[list[Implant], list[Cut]]:
        if self._expert_records is None:
            self._expert_records = self._load_expert()
        return self._expert_records

    def _expert_plan(self) -> Plan:
        implants, cuts = self._expert()
        return _with_records(self._case(), implants, cuts, f"{self.info.title} (expert)")

    def _geometry_of_case(self):
        """The case's CaseGeometry (fields and surfaces), built once."""
        from surgtwin.planning.case import CaseGeometry

        if self._geometry is None:
            self._geometry = CaseGeometry(self._case())
        return self._geometry

    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the scenario's settings and expert plan: two scenarios
        with the same fingerprint score alike (given the same case)."""
        if "fingerprint" not in self._cache:
            implants, cuts = self._expert()
            doc = {
                "info": self.info.to_dict(),
                "implants": [i.to_dict() for i in implants],
                "cuts": [c.to_dict() for c in cuts],
            }
            text = json.dumps(doc, sort_keys=True, allow_nan=True).encode("utf-8")
            self._cache["fingerprint"] = hashlib.sha256(text).hexdigest()[:16]
        return self._cache["fingerprint"]
