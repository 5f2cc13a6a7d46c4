"""A trainee's attempt: the plan they made and how it was made (time taken, undos).

The attempt is an ordinary plan file (``.surgplan``) started from
:meth:`~surgtwin.training.scenario.Scenario.case_plan`, so it never holds the expert plan. Its
record (:class:`AttemptMeta`) is the plan file's extra member ``extra/attempt.json``
(:func:`surgtwin.planning.planfile.save_plan`), which other SurgTwin commands ignore.

:class:`AttemptTracker` counts the undos on the plan's
:class:`~surgtwin.planning.commands.CommandStack` (from its ``history`` events: an undo is the
one change that adds a step to the redo list) and the time since the attempt began.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from surgtwin import __version__
from surgtwin.planning.plan import Plan

__all__ = [
    "ATTEMPT_MEMBER",
    "AttemptMeta",
    "AttemptTracker",
    "load_attempt",
    "save_attempt",
    "with_overrides",
]

ATTEMPT_MEMBER = "attempt.json"
ATTEMPT_FORMAT = "surgtwin-attempt"


def _now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class AttemptMeta:
    """How an attempt was made.

    Attributes
    ----------
    scenario_key : str
    trainee : str
        The trainee's name as they entered it ("" when unknown).
    started_at : str
        ISO 8601 UTC time the attempt began.
    time_taken_s : float or None
        Seconds from the start to the submission (None when unknown).
    undo_count : int or None
        Undos made during the attempt (None when unknown).
    app_version : str
        SurgTwin version that recorded it.
    """

    scenario_key: str = ""
    trainee: str = ""
    started_at: str = ""
    time_taken_s: float | None = None
    undo_count: int | None = None
    app_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": ATTEMPT_FORMAT,
            "scenario_key": self.scenario_key,
            "trainee": self.trainee,
            "started_at": self.started_at,
            "time_taken_s": self.time_taken_s,
            "undo_count": self.undo_count,
            "app_version": self.app_version,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AttemptMeta:
        """Read a record; unknown or mistyped values become unknown, never an error."""

        def text(key: str) -> str:
            v = d.get(key)
            return v if isinstance(v, str) else ""

        t = d.get("time_taken_s")
        u = d.get("undo_count")
        ok_t = isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
        ok_u = isinstance(u, int) and not isinstance(u, bool) and u >= 0
        return cls(
            scenario_key=text("scenario_key"),
            trainee=text("trainee"),
            started_at=text("started_at"),
            time_taken_s=float(t) if ok_t and t >= 0 else None,
            undo_count=u if ok_u else None,
            app_version=text("app_version"),
        )


class AttemptTracker:
    """Counts time and undos while a trainee works on a scenario (no Qt, no timer).

    Parameters
    ----------
    stack : CommandStack
        The plan's command stack; its ``history`` events are observed.
    scenario_key : str
    trainee : str
    clock : callable, optional
        Seconds, monotonic (default :func:`time.monotonic`; tests pass their own).

    Examples
    --------
    >>> tracker = AttemptTracker(stack, "l4-bilateral", "A. Resident")  # doctest: +SKIP
    >>> ...  # the trainee plans; the app pushes commands onto ``stack``
    >>> meta = tracker.finish()                                         # doctest: +SKIP
    """

    def __init__(
        self,
        stack,
        scenario_key: str,
        trainee: str = "",
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stack = stack
        self.scenario_key = scenario_key
        self.trainee = trainee
        self._clock = clock
        self._start = clock()
        self.started_at = _now_iso()
        self.undo_count = 0
        self._finished: AttemptMeta | None = None
        stack.events.connect(self._on_event)

    def _on_event(self, event) -> None:
        if event.name != "history" or self._finished is not None:
            return
        (_old_undo, old_redo), (_new_undo, new_redo) = event.old, event.new
        if len(new_redo) == len(old_redo) + 1:
            self.undo_count += 1

    @property
    def elapsed_s(self) -> float:
        """Seconds since the attempt began (frozen once finished)."""
        if self._finished is not None and self._finished.time_taken_s is not None:
            return self._finished.time_taken_s
        return float(self._clock() - self._start)

    def meta(self) -> AttemptMeta:
        """The record so far (time up to now)."""
        if self._finished is not None:
            return self._finished
        return AttemptMeta(
            self.scenario_key, self.trainee, self.started_at, self.elapsed_s, self.undo_count
        )

    def finish(self) -> AttemptMeta:
        """Stop counting and return the final record."""
        if self._finished is None:
            self._finished = self.meta()
            self.stack.events.disconnect(self._on_event)
        return self._finished


def save_attempt(plan: Plan, path: str | os.PathLike, meta: AttemptMeta) -> Path:
    """Write the trainee's plan with its attempt record (``.surgplan``, atomically).

    Raises
    ------
    PlanFileError
    """
    from surgtwin.planning.planfile import save_plan

    text = json.dumps(meta.to_dict(), indent=1, allow_nan=False).encode("utf-8")
    return save_plan(plan, path, extra={ATTEMPT_MEMBER: text})


def load_attempt(path: str | os.PathLike) -> tuple[Plan, AttemptMeta | None]:
    """Read an attempt: the plan and its record (None for a plain plan file).

    Raises
    ------
    PlanFileError
        The plan file cannot be read.
    """
    from surgtwin.planning.planfile import load_plan, read_extra_member

    plan = load_plan(path)
    data = read_extra_member(path, ATTEMPT_MEMBER, max_bytes=1 << 20)
    meta = None
    if data is not None:
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            doc = None
        if isinstance(doc, dict) and doc.get("format") == ATTEMPT_FORMAT:
            meta = AttemptMeta.from_dict(doc)
    return plan, meta


def with_overrides(
    meta: AttemptMeta | None,
    *,
    trainee: str | None = None,
    time_taken_s: float | None = None,
    undo_count: int | None = None,
) -> AttemptMeta:
    """``meta`` (or an empty record) with the given values replaced."""
    out = meta or AttemptMeta()
    changes: dict[str, Any] = {}
    if trainee is not None:
        changes["trainee"] = trainee
    if time_taken_s is not None:
        changes["time_taken_s"] = float(time_taken_s)
    if undo_count is not None:
        changes["undo_count"] = int(undo_count)
    return replace(out, **changes) if changes else out
