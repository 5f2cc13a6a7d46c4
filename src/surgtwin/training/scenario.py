"""Training scenarios: a case, a task, the allowed implants, a hidden expert plan, tolerances
and scoring weights.

A :class:`Scenario` is what a trainee works on. :meth:`Scenario.case_plan` gives a fresh plan
of the case (structures and label map, no implants, no cuts) to plan on; the expert's plan
stays hidden: :meth:`Scenario.expert_plan` raises :class:`ExpertPlanLocked` until the results
are unlocked (:meth:`Scenario.unlock_results`, after the attempt was scored). Scoring
(:mod:`surgtwin.training.scoring`) reads the expert plan through the package's own access.

This module gathers the scenario API in one place; it is made in four modules:

* :mod:`~surgtwin.training.scenario_info`: what a scenario asks and how it is scored
  (:class:`ScenarioInfo`, :class:`Tolerances`, :class:`Weights`) and the scenario errors;
* :mod:`~surgtwin.training.scenario_model`: the :class:`Scenario` and its locked expert plan;
* :mod:`~surgtwin.training.scenario_files`: ``.surgscn`` files and scenario folders
  (:func:`load_scenario`, :func:`save_scenario`; the file format is described there);
* :mod:`~surgtwin.training.scenario_authoring`: a scenario from a saved plan
  (:func:`author_scenario`).

Bundled scenarios (the phantom) are built from its ground truth by
:mod:`surgtwin.training.bundled`; :func:`load_scenario` takes their key as well.
"""

from __future__ import annotations

from surgtwin.training.scenario_authoring import author_scenario
from surgtwin.training.scenario_files import (
    CASE_FILE as CASE_FILE,
)
from surgtwin.training.scenario_files import (
    EXPERT_FORMAT as EXPERT_FORMAT,
)
from surgtwin.training.scenario_files import (
    EXPERT_MEMBER as EXPERT_MEMBER,
)
from surgtwin.training.scenario_files import (
    MAX_JSON_BYTES as MAX_JSON_BYTES,
)
from surgtwin.training.scenario_files import (
    SCENARIO_MEMBER as SCENARIO_MEMBER,
)
from surgtwin.training.scenario_files import (
    SUFFIX,
    load_scenario,
    save_scenario,
)
from surgtwin.training.scenario_files import (
    expert_document as expert_document,
)
from surgtwin.training.scenario_info import (
    FORMAT as FORMAT,
)
from surgtwin.training.scenario_info import (
    GRADES as GRADES,
)
from surgtwin.training.scenario_info import (
    SCHEMA_VERSION as SCHEMA_VERSION,
)
from surgtwin.training.scenario_info import (
    ExpertPlanLocked,
    ScenarioError,
    ScenarioInfo,
    Tolerances,
    Weights,
    scoring_text,
)
from surgtwin.training.scenario_info import (
    slug as slug,
)
from surgtwin.training.scenario_model import Scenario, copy_plan

__all__ = [
    "SUFFIX",
    "ExpertPlanLocked",
    "Scenario",
    "ScenarioError",
    "ScenarioInfo",
    "Tolerances",
    "Weights",
    "author_scenario",
    "copy_plan",
    "load_scenario",
    "save_scenario",
    "scoring_text",
]
