"""Commands and the undo stack: exact undo/redo, drag merging, label edits, memory bound."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from surgtwin.imaging.volume import ImageGeometry
from surgtwin.planning.commands import (
    AddCut,
    AddImplant,
    AddMeasurement,
    AddStructure,
    Command,
    CommandStack,
    CompoundCommand,
    LabelEditCommand,
    MoveImplant,
    RemoveCut,
    RemoveImplant,
    RemoveMeasurement,
    RemoveStructure,
    SetNote,
    SetStructureProperty,
)
from surgtwin.planning.events import Event
from surgtwin.planning.plan import Cut, Implant, Measurement, Plan, Structure
from surgtwin.segmentation.labelmap import Label, LabelMap, Role


def pose_at(x: float, y: float = -20.0, z: float = 35.5, angle: float = 0.0) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.eye(4)
    m[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    m[:3, 3] = (x, y, z)
    return m


def make_plan() -> Plan:
    geometry = ImageGeometry((20, 30, 40), (0.7, 0.7, 1.25), (-12.0, -30.5, 100.0), np.eye(3))
    plan = Plan("L4-L5 fusion", labelmap=LabelMap(geometry))
    plan.structures.add(Structure("L4", "bone", label_value=1))
    plan.structures.add(Structure("spinal canal", "critical", label_value=2))
    plan.implants.add(
        Implant("L4 left", "pedicle_screw", "s-6.5x45", {"length_mm": 45.0}, pose_at(-15.0))
    )
    plan.cuts.add(Cut("cut 1", "L4", "plane", {"point": [0, 0, 0], "normal": [0, 0, 1]}))
    plan.measurements.add(Measurement("width", "distance", [(0, 0, 0), (8.2, 0, 0)]))
    return plan


def every_command(plan: Plan) -> list[Command]:
    return [
        AddStructure(plan, Structure("aorta", "critical", (1, 0, 0), label_value=3)),
        RemoveStructure(plan, "L4"),
        SetStructureProperty(plan, "spinal canal", opacity=0.4, margin_mm=3.0),
        AddImplant(
            plan,
            Implant("L4 right", "pedicle_screw", "s-6.5x45", {}, pose_at(15.0)),
            name="Place pedicle screw L4 right",
        ),
        RemoveImplant(plan, "L4 left"),
        MoveImplant(plan, "L4 left", pose_at(-14.0, angle=0.2)),
        AddMeasurement(plan, Measurement("lordosis", "angle", [(1, 0, 0), (0, 0, 0), (0, 1, 1)])),
        RemoveMeasurement(plan, "width"),
        SetNote(plan, "check L4 left pedicle breach"),
        AddCut(plan, Cut("box", "L4", "box", {"center": [0, 0, 0], "size": [5, 5, 5]})),
        RemoveCut(plan, "cut 1"),
    ]


@pytest.mark.parametrize("i", range(11))
def test_every_command_undoes_and_redoes_to_an_identical_plan(i):
    plan = make_plan()
    stack = CommandStack(plan)
    before = plan.to_dict()
    cmd = every_command(plan)[i]
    stack.push(cmd)
    after = plan.to_dict()
    assert after != before
    assert stack.undo() == cmd.name
    assert plan.to_dict() == before
    assert stack.redo() == cmd.name
    assert plan.to_dict() == after
    assert stack.undo_names == [cmd.name]


def test_all_commands_in_sequence_undo_to_start():
    plan = make_plan()
    stack = CommandStack(plan)
    states = [plan.to_dict()]
    for cmd in every_command(plan):
        if cmd.name == "Remove L4 left":
            continue  # the move below needs the implant
        stack.push(cmd)
        states.append(plan.to_dict())
    while stack.can_undo:
        stack.undo()
        states.pop()
        assert plan.to_dict() == states[-1]
    assert stack.history[0] == "Add aorta" and not stack.can_undo


def test_drag_of_50_moves_is_one_step_restoring_the_exact_pose():
    plan = make_plan()
    stack = CommandStack(plan)
    original = plan.implants["L4 left"].pose.copy()
    for k in range(50):
        stack.push(MoveImplant(plan, "L4 left", pose_at(-15 + 0.1 * k, angle=0.01 * k), drag_id=7))
    assert stack.index == 1 and stack.undo_names == ["Move L4 left"]
    np.testing.assert_array_equal(plan.implants["L4 left"].pose, pose_at(-15 + 4.9, angle=0.49))
    stack.undo()
    assert np.array_equal(plan.implants["L4 left"].pose, original)  # exact, not approximately
    stack.redo()
    np.testing.assert_array_equal(plan.implants["L4 left"].pose, pose_at(-15 + 4.9, angle=0.49))
    # a new drag (other id) is a new step; moves without a drag id never merge
    stack.push(MoveImplant(plan, "L4 left", pose_at(0.0), drag_id=8))
    stack.push(MoveImplant(plan, "L4 left", pose_at(1.0)))
    stack.push(MoveImplant(plan, "L4 left", pose_at(2.0)))
    assert stack.index == 4


def test_one_event_per_step_for_a_history_panel():
    plan = make_plan()
    stack = CommandStack(plan)
    plan_events: list[Event] = []
    stack_events: list[Event] = []
    plan.events.connect(plan_events.append)
    stack.events.connect(stack_events.append)
    stack.push(
        CompoundCommand(
            plan,
            "Place pedicle screws L4",
            [
                MoveImplant(plan, "L4 left", pose_at(-16.0)),
                MoveImplant(plan, "L4 left", pose_at(-17.0)),
            ],
        )
    )
    assert [(e.name, e.key) for e in plan_events] == [("implants", "L4 left")]
    assert plan_events[0].new.pose[0, 3] == -17.0 and plan_events[0].old.pose[0, 3] == -15.0
    names = [e.name for e in stack_events]
    assert names == ["history", "clean"]
    assert stack_events[0].new == (["Place pedicle screws L4"], [])
    stack.undo()
    assert plan.implants["L4 left"].pose[0, 3] == -15.0


def test_clean_flag_follows_the_saved_index():
    plan = make_plan()
    stack = CommandStack(plan)
    assert stack.is_clean
    stack.push(SetNote(plan, "a"))
    assert stack.is_dirty
    stack.set_clean()
    stack.push(SetNote(plan, "b"))
    assert stack.is_dirty
    stack.undo()
    assert stack.is_clean
    stack.undo()
    assert stack.is_dirty
    stack.redo()
    stack.undo()
    stack.push(SetNote(plan, "c"))  # the saved state was on the discarded redo branch
    assert stack.is_dirty
    stack.undo()
    assert stack.is_dirty


def test_set_unsaved_stays_dirty_until_saved():
    plan = make_plan()
    stack = CommandStack(plan)
    seen = []
    stack.events.connect(lambda e: seen.append((e.name, e.new)))
    stack.set_unsaved()  # e.g. a plan recovered from an autosave
    assert stack.is_dirty and ("clean", False) in seen
    stack.push(SetNote(plan, "a"))
    stack.undo()
    assert stack.is_dirty  # no state of the history is saved
    stack.set_clean()
    assert stack.is_clean


def test_typing_merges_but_never_into_the_saved_step():
    plan = make_plan()
    stack = CommandStack(plan)
    for text in ("c", "ch", "che"):
        stack.push(SetNote(plan, text, drag_id="typing"))
    assert stack.index == 1
    stack.set_clean()
    stack.push(SetNote(plan, "chec", drag_id="typing"))
    assert stack.index == 2 and stack.is_dirty
    stack.undo()
    assert plan.notes == "che" and stack.is_clean


def test_label_edits_through_the_stack_restore_the_exact_label_map():
    plan = make_plan()
    lm = plan.labelmap
    stack = CommandStack(plan)
    rng = np.random.default_rng(4)
    bone = lm.new_label("L4", Role.BONE)
    states = [lm.array.copy()]
    labels = [dict(lm.labels)]
    for n in range(5):
        mask = rng.random(lm.geometry.shape) > 0.7
        edit = lm.change(f"Paint {n}", bone.value, mask, mode="add", label=bone)
        stack.push(LabelEditCommand(plan, edit))
        states.append(lm.array.copy())
        labels.append(dict(lm.labels))
    assert stack.undo_names == [f"Paint {n}" for n in range(5)]
    for n in range(5, 0, -1):
        stack.undo()
        np.testing.assert_array_equal(lm.array, states[n - 1])
        assert lm.labels == labels[n - 1]
    assert not lm.array.any()
    for n in range(1, 6):
        stack.redo()
        np.testing.assert_array_equal(lm.array, states[n])


def test_label_edit_events_name_the_changed_box():
    plan = make_plan()
    lm = plan.labelmap
    stack = CommandStack(plan)
    seen: list[Event] = []
    plan.events.connect(seen.append)
    mask = np.zeros((4, 5, 6), bool)
    mask[1:3, 2:4, 0:6] = True
    edit = lm.change("Paint", 1, mask, box=(slice(2, 6), slice(5, 10), slice(10, 16)))
    stack.push(LabelEditCommand(plan, edit))
    assert [e.new for e in seen] == [((3, 5), (7, 9), (10, 16))]
    assert edit.nbytes == 2 * 2 * 2 * 6  # only the changed box, before and after


def test_memory_bound_drops_oldest_steps_and_says_so():
    plan = make_plan()
    lm = plan.labelmap
    per_edit = 2 * int(np.prod(lm.geometry.shape))  # full-grid box, before + after, uint8
    stack = CommandStack(plan, max_bytes=int(3.5 * per_edit))
    dropped: list[Event] = []
    stack.events.connect(lambda e: dropped.append(e) if e.name == "dropped" else None)
    for n in range(6):
        mask = np.zeros(lm.geometry.shape, bool)
        mask[0, 0, 0] = mask[-1, -1, -1] = True
        edit = lm.change(f"Paint {n}", n + 1, mask, mode="set")
        stack.push(LabelEditCommand(plan, edit))
    assert stack.undo_names == ["Paint 3", "Paint 4", "Paint 5"]
    assert stack.nbytes <= stack.max_bytes
    assert stack.dropped_steps == 3
    assert [e.new[0] for e in dropped] == [1, 1, 1] and dropped[0].new[1] > per_edit
    assert stack.is_dirty  # the saved (empty) state can no longer be reached
    while stack.can_undo:
        stack.undo()
    assert lm.array[0, 0, 0] == 3  # back to after "Paint 2", the oldest kept state
    # a single step larger than the bound is kept: the user can always undo the last step
    small = CommandStack(plan, max_bytes=10)
    small.push(LabelEditCommand(plan, copy.copy(edit)))
    assert small.index == 1


def test_failed_command_is_not_recorded():
    plan = make_plan()
    stack = CommandStack(plan)
    with pytest.raises(ValueError):
        stack.push(AddImplant(plan, plan.implants["L4 left"]))  # duplicate name
    assert not stack.can_undo and stack.is_clean
    with pytest.raises(KeyError):
        MoveImplant(plan, "L5 left", np.eye(4))
    assert stack.undo() is None and stack.redo() is None


def test_structures_follow_label_renames_and_recolours_in_the_same_step():
    plan = make_plan()
    lm = plan.labelmap
    stack = CommandStack(plan)
    mask = np.zeros(lm.geometry.shape, bool)
    mask[2:5, 3:6, 4:8] = True
    bone = Label(1, "L4", (0.9, 0.85, 0.72), Role.BONE)
    stack.push(LabelEditCommand(plan, lm.change("Paint L4", 1, mask, label=bone)))
    before = plan.to_dict()
    seen: list[Event] = []
    plan.events.connect(seen.append)
    edit = lm.update_label("Rename L4", 1, name="L4 vertebra", color=(1.0, 0.5, 0.0))
    stack.push(LabelEditCommand(plan, edit))
    assert stack.undo_names == ["Paint L4", "Rename L4"]
    s = plan.structures["L4 vertebra"]
    assert "L4" not in plan.structures and list(plan.structures) == ["L4 vertebra", "spinal canal"]
    assert (s.color, s.label_value, s.role, s.margin_mm) == ((1.0, 0.5, 0.0), 1, "bone", 0.0)
    assert plan.cuts["cut 1"].structure == "L4 vertebra"  # the cut names the structure
    assert plan.structures["spinal canal"].color == (0.9, 0.9, 0.9)  # another label: unchanged
    assert {(e.name, e.key, e.kind) for e in seen if e.name != "labelmap_voxels"} == {
        ("structures", "L4", "removed"),
        ("structures", "L4 vertebra", "added"),
        ("cuts", "cut 1", "changed"),
    }
    stack.undo()
    assert plan.to_dict() == before and lm.labels[1].name == "L4"
    stack.redo()
    assert plan.structures["L4 vertebra"].color == (1.0, 0.5, 0.0)
    # recolour, hide and fade: the structure follows, its name stays
    edit = lm.update_label("Hide L4", 1, color=(0.2, 0.3, 0.9), visible=False, opacity=0.4)
    stack.push(LabelEditCommand(plan, edit))
    s = plan.structures["L4 vertebra"]
    assert (s.color, s.visible, s.opacity) == ((0.2, 0.3, 0.9), False, 0.4)
    stack.undo()
    s = plan.structures["L4 vertebra"]
    assert (s.color, s.visible, s.opacity) == ((1.0, 0.5, 0.0), True, 1.0)
    # a rename onto another structure's name is refused and leaves label map and plan alone
    state = plan.to_dict()
    edit = lm.update_label("Rename", 1, name="spinal canal")
    with pytest.raises(ValueError, match="spinal canal"):
        stack.push(LabelEditCommand(plan, edit))
    assert plan.to_dict() == state and lm.labels[1].name == "L4 vertebra"
    assert stack.undo_names == ["Paint L4", "Rename L4"]
