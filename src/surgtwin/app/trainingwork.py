"""Training mode's work for the window: plain functions the app runs on a worker (no Qt).

* :func:`open_training_case`: a scenario and its case (volume and a fresh case plan, never the
  expert plan), as an :class:`~surgtwin.app.casework.OpenedCase` the window shows;
* :func:`submit_attempt`: save the trainee's plan as an attempt file, score it, record it in
  the progress store;
* :func:`author_and_save`: a scenario from the current plan, written as a ``.surgscn`` file;
* :func:`clock_text`, :func:`allowed_text`: what the training panel shows.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from surgtwin.app.casework import OpenedCase, case_volume
from surgtwin.errors import LoadCancelled
from surgtwin.planning.plan import Plan
from surgtwin.training.attempt import AttemptMeta, save_attempt
from surgtwin.training.progress import ProgressStore
from surgtwin.training.scenario import Scenario, ScenarioInfo, load_scenario, slug
from surgtwin.training.scoring import ScoreResult, score_attempt

__all__ = [
    "Submission",
    "TrainingCase",
    "allowed_text",
    "attempt_path",
    "attempts_dir",
    "author_and_save",
    "clock_text",
    "open_training_case",
    "scenario_path_for",
    "submit_attempt",
]

Progress = Callable[[int, int], None] | None
Cancel = Callable[[], bool] | None


def _check(cancel: Cancel) -> None:
    if cancel is not None and cancel():
        raise LoadCancelled("cancelled by the user")


def _report(progress: Progress, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


# ---------------------------------------------------------------------- opening


@dataclass
class TrainingCase:
    """A scenario (its expert plan locked) and the case the trainee plans on."""

    scenario: Scenario
    case: OpenedCase


def open_training_case(
    location: str | os.PathLike,
    *,
    progress: Progress = None,
    cancel: Cancel = None,
) -> TrainingCase:
    """Load a scenario (bundled key, ``.surgscn`` file or folder) and its case: a fresh case
    plan (structures only) and, when its DICOM series can be found, the volume.

    Raises
    ------
    ScenarioError, PlanFileError
        The scenario or its case cannot be read.
    """
    _report(progress, 0, 3)
    scenario = load_scenario(location)
    _check(cancel)
    plan = scenario.case_plan()  # the first call segments the phantom (seconds)
    _report(progress, 1, 3)
    _check(cancel)
    volume, warnings = case_volume(
        plan,
        "The scenario's DICOM series",
        "The scenario's DICOM series does not match its segmentation; not shown.",
        cancel=cancel,
    )
    _report(progress, 3, 3)
    return TrainingCase(scenario, OpenedCase(volume, plan, None, tuple(warnings)))


# ---------------------------------------------------------------------- submitting


@dataclass(frozen=True)
class Submission:
    """A submitted attempt: its score, where its plan was saved and its id in the store."""

    result: ScoreResult
    attempt_file: Path
    attempt_id: int


def attempts_dir() -> Path:
    """Where submitted attempts are saved: ``<data folder>/training/attempts``."""
    from surgtwin.paths import data_dir

    return data_dir() / "training" / "attempts"


def attempt_path(folder: str | os.PathLike, meta: AttemptMeta) -> Path:
    """A new file name for an attempt: ``<time>-<trainee>-<scenario>.surgplan`` (numbered
    when taken)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = f"{stamp}-{slug(meta.trainee or 'trainee')}-{meta.scenario_key or 'scenario'}"
    folder = Path(folder)
    path = folder / f"{stem}.surgplan"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}.surgplan"
        n += 1
    return path


def submit_attempt(
    plan: Plan,
    scenario: Scenario,
    meta: AttemptMeta,
    *,
    folder: str | os.PathLike | None = None,
    store: ProgressStore | None = None,
    progress: Progress = None,
    cancel: Cancel = None,
) -> Submission:
    """Save the trainee's plan as an attempt file (first, so a failure of the scoring loses
    nothing), score it against the scenario and record the result.

    Parameters
    ----------
    plan : Plan
        The trainee's plan (a copy the GUI no longer edits).
    scenario : Scenario
    meta : AttemptMeta
        From :meth:`AttemptTracker.finish`.
    folder : path, optional
        Default :func:`attempts_dir`.
    store : ProgressStore, optional
        Default: the user's store.

    Raises
    ------
    PlanFileError, ProgressError, SurgTwinError
    """
    _report(progress, 0, 3)
    path = attempt_path(folder or attempts_dir(), meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_attempt(plan, path, meta)
    _report(progress, 1, 3)
    _check(cancel)
    result = score_attempt(plan, scenario, meta)
    _report(progress, 2, 3)
    attempt_id = (store or ProgressStore()).record(result, meta, attempt_file=path)
    _report(progress, 3, 3)
    return Submission(result, path, attempt_id)


# ---------------------------------------------------------------------- authoring


def scenario_path_for(title: str) -> Path:
    """Default file of a new scenario: ``<user scenario folder>/<key>.surgscn`` (listed by
    the start dialog)."""
    from surgtwin.training.bundled import user_scenario_dir
    from surgtwin.training.scenario import SUFFIX

    return user_scenario_dir() / f"{slug(title)}{SUFFIX}"


def author_and_save(
    plan: Plan,
    task: str,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    time_limit_s: float | None = None,
    case_path: str | os.PathLike | None = None,
    progress: Progress = None,
    cancel: Cancel = None,
) -> Path:
    """Make a scenario of ``plan`` (its implants and cuts become the hidden expert plan) and
    write it to ``path``.

    Parameters
    ----------
    plan : Plan
        The expert's plan (a copy the GUI no longer edits).
    task : str
        The task shown to the trainee.
    path : path
        A ``.surgscn`` file (else a folder is written).
    title : str, optional
        Default: the plan's name.
    time_limit_s : float, optional
        Seconds; None for no limit.
    case_path : path, optional
        The plan saved before the cuts (needed when ``plan`` has cuts).

    Raises
    ------
    ScenarioError, PlanFileError
    """
    from surgtwin.planning.planfile import load_plan
    from surgtwin.training.scenario import author_scenario, save_scenario

    _report(progress, 0, 2)
    case = load_plan(case_path) if case_path else None
    _check(cancel)
    scenario = author_scenario(plan, task, case=case, title=title, time_limit_s=time_limit_s)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out = save_scenario(scenario, path)
    _report(progress, 2, 2)
    return out


# ---------------------------------------------------------------------- display


def _mmss(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    return f"{minutes:02d}:{s:02d}"


def clock_text(elapsed_s: float, limit_s: float | None) -> tuple[str, bool]:
    """The training timer: ``(text, over_time)``.

    Without a limit it counts up (``"03:07"``). With one it counts down the time left
    (``"15:00"`` at the start, ``"00:00"`` at the limit); past the limit it shows the time
    over (``"+00:42"``) and ``over_time`` is True (the attempt is not submitted for the
    trainee: the scenario's over-time penalty applies when they submit).

    Parameters
    ----------
    elapsed_s : float
        Seconds since the attempt began.
    limit_s : float or None
        The scenario's time limit, seconds.
    """
    elapsed_s = max(0.0, float(elapsed_s))
    if limit_s is None:
        return _mmss(math.floor(elapsed_s)), False
    left = float(limit_s) - elapsed_s
    if left >= 0:
        return _mmss(math.ceil(left)), False
    return "+" + _mmss(math.floor(-left)), True


def allowed_text(info: ScenarioInfo) -> str:
    """The implants a scenario allows, in words (``"Pedicle screws: 4.5-8.5 mm x 25-60 mm
    (64 sizes)"``)."""
    from surgtwin.planning.implants import Catalogue

    allowed = info.allowed_implants
    if allowed is None:
        return "Any implant of the catalogue"
    if not allowed:
        return "No implants (this task is a resection)"
    by_kind: dict[str, list] = {}
    unknown = []
    catalogue = Catalogue.builtin()
    for key in allowed:
        if key in catalogue:
            spec = catalogue[key]
            by_kind.setdefault(spec.kind, []).append(spec)
        else:
            unknown.append(key)
    parts = []
    for kind, specs in by_kind.items():
        words = kind.replace("_", " ").capitalize() + ("s" if len(specs) > 1 else "")
        ds = sorted({s.diameter_mm for s in specs if s.diameter_mm})
        ls = sorted({s.length_mm for s in specs if s.length_mm})

        def span(values: list[float]) -> str:
            return f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g}-{values[-1]:g}"

        size = " x ".join(span(v) for v in (ds, ls) if v)
        count = f" ({len(specs)} sizes)" if len(specs) > 1 else ""
        parts.append(f"{words}: {size} mm{count}" if size else words + count)
    if unknown:
        parts.append(", ".join(unknown))
    return "; ".join(parts)
