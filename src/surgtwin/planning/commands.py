"""Undoable user operations on a :class:`~surgtwin.planning.plan.Plan` and the one command stack.

Every user operation is a command: it has a readable :attr:`Command.name` shown in the history
("Place pedicle screw L4 left"), :meth:`Command.do` and :meth:`Command.undo`, and may absorb the
next command of the same continuous gesture (:meth:`Command.merge_with`): the 50 small moves of
one implant drag, sharing a ``drag_id``, become one undo step. Segmentation edits enter the same
stack as :class:`LabelEditCommand` (bounding-box deltas, never full copies), and the stack drops
its oldest steps when the records it holds exceed ``max_bytes``.

Examples
--------
>>> plan = Plan()
>>> stack = CommandStack(plan)
>>> stack.push(SetNote(plan, "check L4 pedicle width"))
>>> stack.undo()
'Edit notes'
>>> plan.notes
''
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from surgtwin.planning.events import EventEmitter
from surgtwin.planning.plan import Plan, Structure
from surgtwin.segmentation.labelmap import LabelEdit

__all__ = [
    "AddCut",
    "AddImplant",
    "AddMeasurement",
    "AddStructure",
    "Command",
    "CommandStack",
    "CompoundCommand",
    "LabelEditCommand",
    "MoveImplant",
    "RemoveCut",
    "RemoveImplant",
    "RemoveMeasurement",
    "RemoveStructure",
    "SetNote",
    "SetStructureProperty",
]

#: Memory assumed for a command holding only small records (bytes).
SMALL_COMMAND_BYTES = 512
DEFAULT_MAX_BYTES = 512 * 1024 * 1024


@runtime_checkable
class Command(Protocol):
    """What the :class:`CommandStack` needs of an operation."""

    name: str

    def do(self) -> None:
        """Apply the change (also used to redo it)."""

    def undo(self) -> None:
        """Restore the plan exactly as it was before :meth:`do`."""

    def merge_with(self, other: Command) -> bool:
        """Absorb ``other`` (already done) into this step; False if it does not belong here."""

    @property
    def nbytes(self) -> int:
        """Memory the command holds, in bytes (for the stack's bound)."""


class _PlanCommand:
    """Base of the plan commands: a name, no merging, a small memory estimate."""

    name: str = ""

    def __init__(self, plan: Plan):
        self.plan = plan

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def merge_with(self, other: Command) -> bool:
        return False

    @property
    def nbytes(self) -> int:
        return SMALL_COMMAND_BYTES


class _Add(_PlanCommand):
    collection = ""
    verb = "Add"

    def __init__(self, plan: Plan, item: Any, name: str | None = None, index: int | None = None):
        super().__init__(plan)
        self.item = item
        self.index = index
        self.name = name or f"{self.verb} {item.name}"

    def do(self) -> None:
        getattr(self.plan, self.collection).add(self.item, self.index)

    def undo(self) -> None:
        getattr(self.plan, self.collection).remove(self.item.name)


class _Remove(_PlanCommand):
    collection = ""
    verb = "Remove"

    def __init__(self, plan: Plan, key: str, name: str | None = None):
        super().__init__(plan)
        getattr(plan, self.collection)[key]  # fail now, not when pushed
        self.key = key
        self.item: Any = None
        self.index = 0
        self.name = name or f"{self.verb} {key}"

    def do(self) -> None:
        records = getattr(self.plan, self.collection)
        self.index = records.index(self.key)
        self.item = records.remove(self.key)

    def undo(self) -> None:
        getattr(self.plan, self.collection).add(self.item, self.index)


class AddStructure(_Add):
    """Add a :class:`~surgtwin.planning.plan.Structure` (``name``: history text)."""

    collection = "structures"

    @property
    def nbytes(self) -> int:
        mesh = self.item.mesh
        extra = 0 if mesh is None else mesh.points.nbytes + mesh.faces.nbytes
        return SMALL_COMMAND_BYTES + extra


class RemoveStructure(_Remove):
    """Remove a structure by name (undo puts it back at the same place)."""

    collection = "structures"


class AddImplant(_Add):
    """Place an :class:`~surgtwin.planning.plan.Implant` ("Place L4 left pedicle screw")."""

    collection = "implants"
    verb = "Place"


class RemoveImplant(_Remove):
    """Remove an implant by name."""

    collection = "implants"


class AddCut(_Add):
    """Add a :class:`~surgtwin.planning.plan.Cut`."""

    collection = "cuts"


class RemoveCut(_Remove):
    """Remove a cut by name."""

    collection = "cuts"


class AddMeasurement(_Add):
    """Add a :class:`~surgtwin.planning.plan.Measurement`."""

    collection = "measurements"
    verb = "Measure"


class RemoveMeasurement(_Remove):
    """Remove a measurement by name."""

    collection = "measurements"


class SetStructureProperty(_PlanCommand):
    """Change display or safety properties of a structure (colour, opacity, margin_mm, ...).

    Parameters
    ----------
    plan : Plan
    structure : str
        The structure's name.
    drag_id : hashable, optional
        Consecutive changes of the same properties of the same structure with the same
        ``drag_id`` (a slider being dragged) merge into one undo step.
    **changes
        New field values of :class:`~surgtwin.planning.plan.Structure` (not ``name``).
    """

    def __init__(self, plan: Plan, structure: str, *, drag_id: Any = None, **changes: Any):
        super().__init__(plan)
        if not changes or "name" in changes:
            raise ValueError("give the properties to change (renaming is not a property change)")
        self.structure = structure
        self.changes = changes
        self.drag_id = drag_id
        self.old: Structure | None = None
        what = ", ".join(k.replace("_", " ") for k in changes)
        self.name = f"Set {what} of {structure}"

    def do(self) -> None:
        old = self.plan.structures[self.structure]
        new = dataclasses.replace(old, **self.changes)
        if self.old is None:
            self.old = old
        self.plan.structures.replace(new)

    def undo(self) -> None:
        assert self.old is not None, "undo before do"
        self.plan.structures.replace(self.old)

    def merge_with(self, other: Command) -> bool:
        if (
            type(other) is not SetStructureProperty
            or self.drag_id is None
            or other.drag_id != self.drag_id
            or other.structure != self.structure
            or other.changes.keys() != self.changes.keys()
        ):
            return False
        self.changes = dict(other.changes)
        return True


class MoveImplant(_PlanCommand):
    """Give an implant a new pose (4x4 implant-to-LPS transform, mm).

    Parameters
    ----------
    plan : Plan
    implant : str
        The implant's name.
    pose : array_like, shape (4, 4)
    drag_id : hashable, optional
        Identifies one continuous drag: consecutive moves of the same implant with the same
        ``drag_id`` merge into one undo step, whose undo restores the pose before the drag.
    name : str, optional
        History text (default "Move <implant>").
    """

    def __init__(
        self,
        plan: Plan,
        implant: str,
        pose: Any,
        *,
        drag_id: Any = None,
        name: str | None = None,
    ):
        super().__init__(plan)
        plan.implants[implant]  # fail now, not when pushed
        self.implant = implant
        self.pose = np.array(pose, dtype=np.float64)
        self.drag_id = drag_id
        self.old_pose: np.ndarray | None = None
        self.name = name or f"Move {implant}"

    def do(self) -> None:
        old = self.plan.implants[self.implant]
        if self.old_pose is None:
            self.old_pose = old.pose
        self.plan.implants.replace(old.with_pose(self.pose))

    def undo(self) -> None:
        assert self.old_pose is not None, "undo before do"
        old = self.plan.implants[self.implant]
        self.plan.implants.replace(old.with_pose(self.old_pose))

    def merge_with(self, other: Command) -> bool:
        if (
            type(other) is not MoveImplant
            or self.drag_id is None
            or other.drag_id != self.drag_id
            or other.implant != self.implant
        ):
            return False
        self.pose = other.pose
        return True


class SetNote(_PlanCommand):
    """Replace the plan's notes (typing with the same ``drag_id`` merges into one step)."""

    def __init__(self, plan: Plan, text: str, *, drag_id: Any = None, name: str = "Edit notes"):
        super().__init__(plan)
        self.text = str(text)
        self.drag_id = drag_id
        self.old: str | None = None
        self.name = name

    def do(self) -> None:
        if self.old is None:
            self.old = self.plan.notes
        self.plan.notes = self.text

    def undo(self) -> None:
        assert self.old is not None, "undo before do"
        self.plan.notes = self.old

    def merge_with(self, other: Command) -> bool:
        if type(other) is not SetNote or self.drag_id is None or other.drag_id != self.drag_id:
            return False
        self.text = other.text
        return True

    @property
    def nbytes(self) -> int:
        return SMALL_COMMAND_BYTES + 4 * (len(self.text) + len(self.old or ""))


#: Label properties that the label's structure (``source="label"``) follows.
LABEL_FOLLOWED = ("name", "color", "visible", "opacity")


class LabelEditCommand(_PlanCommand):
    """A segmentation edit on the plan's label map, as one undo step.

    The edit is normally already applied (:meth:`LabelMap.change` applies it and returns the
    record); :meth:`do` re-applies it, which changes nothing then, and is the redo.

    When the edit renames, recolours, hides or shows a label (or changes its opacity), the
    plan's structures of that label (``source="label"``, same ``label_value``) follow in the
    same step (:data:`LABEL_FOLLOWED`), and cuts naming a renamed structure are renamed with
    it; undo restores the records exactly.

    Parameters
    ----------
    plan : Plan
        Its :attr:`~surgtwin.planning.plan.Plan.labelmap` is the map the edit was made on.
    edit : LabelEdit

    Raises
    ------
    ValueError
        From :meth:`do`: a renamed label's structure would take the name of another structure
        (the label edit is then undone as well, so the plan stays as it was).
    """

    def __init__(self, plan: Plan, edit: LabelEdit):
        super().__init__(plan)
        if plan.labelmap is None:
            raise ValueError("the plan has no label map to edit")
        self.edit = edit
        self.name = edit.name
        # (collection, record before, record after, index) of the records that followed
        self._followed: list[tuple[str, Any, Any, int]] = []

    def do(self) -> None:
        assert self.plan.labelmap is not None
        self.plan.labelmap.redo(self.edit)
        try:
            self._followed = self._follow_labels()
            for collection, old, new, index in self._followed:
                _put(getattr(self.plan, collection), old, new, index)
        except BaseException:
            self.plan.labelmap.undo(self.edit)
            raise
        self.plan.labelmap_edited(self.edit.box)

    def undo(self) -> None:
        assert self.plan.labelmap is not None
        for collection, old, new, index in reversed(self._followed):
            _put(getattr(self.plan, collection), new, old, index)
        self.plan.labelmap.undo(self.edit)
        self.plan.labelmap_edited(self.edit.box)

    def _follow_labels(self) -> list[tuple[str, Any, Any, int]]:
        """The structure (and cut) records to replace so that they follow the label table."""
        before, after = self.edit.labels_before, self.edit.labels_after
        out: list[tuple[str, Any, Any, int]] = []
        renamed: dict[str, str] = {}
        for value in before.keys() & after.keys():
            changes = {
                f: getattr(after[value], f)
                for f in LABEL_FOLLOWED
                if getattr(after[value], f) != getattr(before[value], f)
            }
            if not changes:
                continue
            for key, s in list(self.plan.structures.items()):
                if s.source != "label" or s.label_value != value:
                    continue
                new = dataclasses.replace(s, **changes)
                if new.name != s.name:
                    if new.name in self.plan.structures or new.name in renamed.values():
                        raise ValueError(
                            f"cannot rename {s.name!r} to {new.name!r}: the plan has a "
                            "structure of that name"
                        )
                    renamed[s.name] = new.name
                out.append(("structures", s, new, self.plan.structures.index(key)))
        for key, cut in self.plan.cuts.items():
            if cut.structure in renamed:
                new_cut = dataclasses.replace(cut, structure=renamed[cut.structure])
                out.append(("cuts", cut, new_cut, self.plan.cuts.index(key)))
        return out

    @property
    def nbytes(self) -> int:
        return SMALL_COMMAND_BYTES + self.edit.nbytes


def _put(records: Any, old: Any, new: Any, index: int) -> None:
    """Replace ``old`` by ``new`` in a record collection, at ``index`` when the name changes."""
    if old.name == new.name:
        records.replace(new)
    else:
        records.remove(old.name)
        records.add(new, index)


class CompoundCommand(_PlanCommand):
    """Several commands as one undo step ("Place pedicle screws L4" = left + right)."""

    def __init__(self, plan: Plan, name: str, commands: Sequence[Command]):
        super().__init__(plan)
        self.name = name
        self.commands = list(commands)

    def do(self) -> None:
        done: list[Command] = []
        try:
            for cmd in self.commands:
                cmd.do()
                done.append(cmd)
        except BaseException:
            for cmd in reversed(done):
                cmd.undo()
            raise

    def undo(self) -> None:
        for cmd in reversed(self.commands):
            cmd.undo()

    @property
    def nbytes(self) -> int:
        return sum(cmd.nbytes for cmd in self.commands)


class CommandStack:
    """The one undo/redo history of a plan.

    Parameters
    ----------
    plan : Plan
    max_bytes : int, optional
        Upper bound of the memory held by undo/redo records (bytes; default 512 MiB). When
        exceeded, the oldest steps are dropped (never the newest one) and a ``"dropped"``
        event says how many and how much memory they held.

    Attributes
    ----------
    events : EventEmitter
        ``"history"`` (new value: (undo names, redo names)) after every push/undo/redo/merge,
        ``"clean"`` (bool) when the plan becomes saved/unsaved, ``"dropped"`` (new value:
        (steps, bytes)) when old steps were forgotten.
    revision : int
        Counts every change of the plan through the stack (for autosave).
    """

    def __init__(self, plan: Plan, max_bytes: int = DEFAULT_MAX_BYTES):
        self.plan = plan
        self.max_bytes = int(max_bytes)
        self.events = EventEmitter(self)
        self._undo: list[Command] = []
        self._redo: list[Command] = []
        self._saved: int | None = 0  # len(_undo) when saved; None: the saved state is gone
        self.revision = 0
        self.dropped_steps = 0

    # ------------------------------------------------------------------ state

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_names(self) -> list[str]:
        """Names of the steps that can be undone, oldest first."""
        return [c.name for c in self._undo]

    @property
    def redo_names(self) -> list[str]:
        """Names of the steps that can be redone, next first."""
        return [c.name for c in reversed(self._redo)]

    @property
    def history(self) -> list[str]:
        """Every step's name, oldest first (the first ``index`` are done)."""
        return self.undo_names + self.redo_names

    @property
    def index(self) -> int:
        """Number of done steps."""
        return len(self._undo)

    @property
    def nbytes(self) -> int:
        """Memory held by the undo and redo records (bytes)."""
        return sum(c.nbytes for c in self._undo) + sum(c.nbytes for c in self._redo)

    @property
    def is_clean(self) -> bool:
        """Whether the plan is as it was when last saved (:meth:`set_clean`)."""
        return self._saved == len(self._undo)

    @property
    def is_dirty(self) -> bool:
        return not self.is_clean

    def set_clean(self) -> None:
        """Mark the current state as saved."""
        was = self.is_clean
        self._saved = len(self._undo)
        self.events.emit("clean", was, True)

    def set_unsaved(self) -> None:
        """Mark the plan as not saved in any state of the history (e.g. recovered from an
        autosave): it stays dirty until :meth:`set_clean`, whatever is undone."""
        was = self.is_clean
        self._saved = None
        self.events.emit("clean", was, False)

    def _changed(self, was_clean: bool, before: tuple[list[str], list[str]]) -> None:
        self.revision += 1
        with self.events.batch():
            self.events.emit("history", before, (self.undo_names, self.redo_names))
            self.events.emit("clean", was_clean, self.is_clean)

    # ------------------------------------------------------------------ operations

    def push(self, command: Command) -> None:
        """Do ``command`` and record it (merged into the last step when it continues it)."""
        was_clean, before = self.is_clean, (self.undo_names, self.redo_names)
        with self.plan.batch():
            command.do()
        if self._redo:
            if self._saved is not None and self._saved > len(self._undo):
                self._saved = None  # the saved state was in the discarded redo branch
            self._redo.clear()
        top = self._undo[-1] if self._undo else None
        # never merge into the saved step: the file would no longer match it
        if top is not None and self._saved != len(self._undo) and top.merge_with(command):
            pass
        else:
            self._undo.append(command)
        self._enforce_bound()
        self._changed(was_clean, before)

    def undo(self) -> str | None:
        """Undo the last step; returns its name (None when there is nothing to undo)."""
        if not self._undo:
            return None
        was_clean, before = self.is_clean, (self.undo_names, self.redo_names)
        command = self._undo[-1]
        with self.plan.batch():
            command.undo()
        self._redo.append(self._undo.pop())
        self._changed(was_clean, before)
        return command.name

    def redo(self) -> str | None:
        """Redo the last undone step; returns its name (None when there is nothing to redo)."""
        if not self._redo:
            return None
        was_clean, before = self.is_clean, (self.undo_names, self.redo_names)
        command = self._redo[-1]
        with self.plan.batch():
            command.do()
        self._undo.append(self._redo.pop())
        self._changed(was_clean, before)
        return command.name

    def clear(self) -> None:
        """Forget the whole history (e.g. after loading a plan); the plan counts as saved."""
        was_clean, before = self.is_clean, (self.undo_names, self.redo_names)
        self._undo.clear()
        self._redo.clear()
        self._saved = 0
        self._changed(was_clean, before)

    def _enforce_bound(self) -> None:
        total = self.nbytes
        steps = freed = 0
        while total > self.max_bytes and len(self._undo) > 1:
            size = self._undo.pop(0).nbytes
            total -= size
            freed += size
            steps += 1
            if self._saved is not None:
                self._saved = self._saved - 1 if self._saved > 0 else None
        if steps:
            self.dropped_steps += steps
            self.events.emit("dropped", None, (steps, freed))
