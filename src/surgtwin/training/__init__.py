"""SurgTwin training mode (headless): scenarios, scoring of attempts, trainees' progress.

A resident rehearses on a scenario: a case, a task and a hidden expert plan. The application
(or a script) does::

    from surgtwin.training import (
        AttemptTracker, ProgressStore, load_scenario, save_attempt, score_attempt)

    scenario = load_scenario("l4-bilateral")      # bundled key, .surgscn file or folder
    plan = scenario.case_plan()                   # structures only; the expert plan is locked
    tracker = AttemptTracker(stack, scenario.key, "A. Resident")   # stack: plan's CommandStack
    ...                                           # the trainee plans
    meta = tracker.finish()
    save_attempt(plan, "attempt.surgplan", meta)  # never holds the expert plan
    result = score_attempt(plan, scenario, meta)  # ScoreResult: score, passed, feedback
    scenario.unlock_results()                     # now scenario.expert_plan() may be shown
    ProgressStore().record(result, meta, attempt_file="attempt.surgplan")

Modules: :mod:`~surgtwin.training.scenario` (the scenario API, gathered from
:mod:`~surgtwin.training.scenario_info` (settings), :mod:`~surgtwin.training.scenario_model`
(the locked scenario), :mod:`~surgtwin.training.scenario_files` (files and folders) and
:mod:`~surgtwin.training.scenario_authoring`), :mod:`~surgtwin.training.bundled` (the phantom's
scenarios), :mod:`~surgtwin.training.attempt` (attempt files, time and undo counting),
:mod:`~surgtwin.training.scoring` (the measures, weights, total and feedback; with
:mod:`~surgtwin.training.implant_scoring`, :mod:`~surgtwin.training.resection_scoring` and
:mod:`~surgtwin.training.score_results`), :mod:`~surgtwin.training.resections`,
:mod:`~surgtwin.training.directions` (patient terms), :mod:`~surgtwin.training.progress`
(SQLite store, CSV, instructor view). Nothing here imports Qt.
"""

from surgtwin.training.attempt import AttemptMeta, AttemptTracker, load_attempt, save_attempt
from surgtwin.training.bundled import BUNDLED, bundled_scenario, list_scenarios
from surgtwin.training.progress import (
    AttemptRecord,
    LatestResult,
    ProgressError,
    ProgressStore,
)
from surgtwin.training.scenario import (
    ExpertPlanLocked,
    Scenario,
    ScenarioError,
    ScenarioInfo,
    Tolerances,
    Weights,
    author_scenario,
    load_scenario,
    save_scenario,
)
from surgtwin.training.scoring import ImplantScore, ResectionScore, ScoreResult, score_attempt

__all__ = [
    "BUNDLED",
    "AttemptMeta",
    "AttemptRecord",
    "AttemptTracker",
    "ExpertPlanLocked",
    "ImplantScore",
    "LatestResult",
    "ProgressError",
    "ProgressStore",
    "ResectionScore",
    "Scenario",
    "ScenarioError",
    "ScenarioInfo",
    "ScoreResult",
    "Tolerances",
    "Weights",
    "author_scenario",
    "bundled_scenario",
    "list_scenarios",
    "load_attempt",
    "load_scenario",
    "save_attempt",
    "save_scenario",
    "score_attempt",
]
