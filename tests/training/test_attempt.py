"""Attempt records: undos counted from the command stack, time from a clock, robust reading."""

from __future__ import annotations

import numpy as np

from surgtwin.planning.commands import AddImplant, CommandStack, SetNote
from surgtwin.planning.plan import Implant, Plan
from surgtwin.training.attempt import AttemptMeta, AttemptTracker, with_overrides


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_tracker_counts_undos_and_time():
    plan = Plan()
    stack = CommandStack(plan)
    clock = Clock()
    tracker = AttemptTracker(stack, "l4-bilateral", "A. Resident", clock=clock)
    stack.push(AddImplant(plan, Implant("a", "pedicle_screw", pose=np.eye(4))))
    stack.push(SetNote(plan, "x", drag_id=1))
    stack.push(SetNote(plan, "xy", drag_id=1))  # merged into the same step: no undo
    assert tracker.undo_count == 0
    assert stack.undo() == "Edit notes"
    stack.undo()
    stack.undo()  # nothing left: no event, no count
    stack.redo()
    stack.push(SetNote(plan, "new"))  # drops the redo branch: not an undo
    assert tracker.undo_count == 2
    clock.now = 190.5
    meta = tracker.meta()
    assert (meta.time_taken_s, meta.undo_count, meta.trainee) == (90.5, 2, "A. Resident")
    final = tracker.finish()
    stack.undo()
    clock.now = 500.0
    assert tracker.finish() == final and tracker.undo_count == 2
    assert tracker.elapsed_s == 90.5
    assert final.started_at.endswith("+00:00") and final.scenario_key == "l4-bilateral"


def test_meta_round_trip_and_bad_values():
    meta = AttemptMeta("k", "T", "2024-01-01T00:00:00+00:00", 12.5, 3)
    assert AttemptMeta.from_dict(meta.to_dict()) == meta
    odd = AttemptMeta.from_dict({"time_taken_s": "soon", "undo_count": -1, "trainee": 7})
    assert (odd.time_taken_s, odd.undo_count, odd.trainee) == (None, None, "")
    assert with_overrides(None, trainee="B", undo_count=1) == AttemptMeta(trainee="B", undo_count=1)
    assert with_overrides(meta, time_taken_s=5).time_taken_s == 5.0
