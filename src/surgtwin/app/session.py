"""The app's state: one volume, one plan, its command stack, the cursor, and derived data.

:class:`Session` turns the plan's and the stack's events into Qt signals, runs every edit
through the stack, builds the distance fields the live clearance needs on a worker, and
autosaves. Views and panels hold a session and listen; none of them changes the plan directly.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from surgtwin.app.slicing import Slicer
from surgtwin.app.workers import Job, background_pool, start_job
from surgtwin.errors import LoadCancelled
from surgtwin.imaging.volume import Volume
from surgtwin.paths import autosave_dir
from surgtwin.planning.case import CaseGeometry
from surgtwin.planning.commands import Command, CommandStack
from surgtwin.planning.events import Event
from surgtwin.planning.live import needed_structures
from surgtwin.planning.plan import Plan, mesh_digest
from surgtwin.planning.planfile import Autosaver

__all__ = ["Session"]

log = logging.getLogger(__name__)

AUTOSAVE_INTERVAL_S = 60.0


class Session(QObject):
    """Everything the window shows, and the one way to change it.

    Signals
    -------
    caseChanged : a new volume and/or plan replaced the old ones (views rebuild everything)
    planEvent(Event) : one change of the plan (structures, implants, cuts, labelmap voxels...)
    historyChanged : the undo history changed (push, undo, redo, clean state)
    cursorChanged(ndarray) : the linked crosshair moved (LPS mm)
    currentImplantChanged(str) : the implant selected for moving ("" for none)
    fieldsChanged : distance fields were built (live clearance can use more structures)
    status(str) : a short message for the status bar
    """

    caseChanged = pyqtSignal()
    planEvent = pyqtSignal(object)
    historyChanged = pyqtSignal()
    cursorChanged = pyqtSignal(object)
    currentImplantChanged = pyqtSignal(str)
    fieldsChanged = pyqtSignal()
    status = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.volume: Volume | None = None
        self.slicer: Slicer | None = None
        self.plan: Plan | None = None
        self.stack: CommandStack | None = None
        self.geometry: CaseGeometry | None = None
        self.plan_path: Path | None = None
        self.cursor = np.zeros(3)
        self.current_implant = ""
        self.fields: dict[str, Any] = {}
        self._field_keys: dict[str, tuple] = {}
        self._field_job: Job | None = None
        self._fields_dirty = False
        self.autosaver: Autosaver | None = None
        self._autosave_busy = False
        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(5_000)
        self._autosave_timer.timeout.connect(self.autosave_now)

    # ---------------------------------------------------------------- case

    def set_case(self, volume: Volume | None, plan: Plan, path: str | Path | None = None) -> None:
        """Show ``plan`` (on ``volume``'s grid); the history starts empty and clean."""
        if self.plan is not None:
            self.plan.events.disconnect(self._on_plan_event)
        if self.stack is not None:
            self.stack.events.disconnect(self._on_stack_event)
        if self._field_job is not None:
            self._field_job.cancel()
            self._field_job = None
        self.volume = volume
        grid = volume.geometry if volume is not None else None
        if grid is None and plan.labelmap is not None:
            grid = plan.labelmap.geometry
        self.slicer = Slicer(grid) if grid is not None else None
        self.plan = plan
        self.stack = CommandStack(plan)
        self.geometry = CaseGeometry(plan)
        self.plan_path = Path(path) if path else None
        self.fields = {}
        self._field_keys = {}
        plan.events.connect(self._on_plan_event)
        self.stack.events.connect(self._on_stack_event)
        self.autosaver = Autosaver(plan, self.stack, autosave_dir(), AUTOSAVE_INTERVAL_S)
        self._autosave_timer.start()
        if grid is not None:
            b = grid.bounds()
            self.cursor = np.array([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2, (b[4] + b[5]) / 2])
        self.current_implant = next(iter(plan.implants), "")
        self.caseChanged.emit()
        self.cursorChanged.emit(self.cursor.copy())
        self.currentImplantChanged.emit(self.current_implant)
        self.historyChanged.emit()
        self.request_fields()

    @property
    def has_case(self) -> bool:
        return self.plan is not None

    # ---------------------------------------------------------------- edits

    def push(self, command: Command) -> None:
        """Do ``command`` and record it in the history (the only way views change the plan)."""
        if self.stack is None:
            raise RuntimeError("no plan is open")
        self.stack.push(command)

    def undo(self) -> str | None:
        return self.stack.undo() if self.stack is not None and self.stack.can_undo else None

    def redo(self) -> str | None:
        return self.stack.redo() if self.stack is not None and self.stack.can_redo else None

    def set_cursor(self, point_lps: np.ndarray) -> None:
        p = np.asarray(point_lps, dtype=float).reshape(3)
        if not np.array_equal(p, self.cursor):
            self.cursor = p
            self.cursorChanged.emit(p.copy())

    def select_implant(self, name: str) -> None:
        if name != self.current_implant:
            self.current_implant = name
            self.currentImplantChanged.emit(name)

    def _on_plan_event(self, event: Event) -> None:
        if event.name in ("labelmap", "labelmap_voxels") or (
            event.name == "structures" and event.kind != "removed"
        ):
            self._fields_dirty = True
            QTimer.singleShot(0, self._refresh_fields)
        if event.name == "structures" and event.kind == "removed":
            self.fields.pop(str(event.key), None)
            self._field_keys.pop(str(event.key), None)
        if (
            event.name == "implants"
            and event.kind == "removed"
            and (event.key == self.current_implant)
        ):
            self.select_implant(next(iter(self.plan.implants), "") if self.plan else "")
        if event.name == "implants" and event.kind == "added" and not self.current_implant:
            self.select_implant(str(event.key))
        self.planEvent.emit(event)

    def _on_stack_event(self, event: Event) -> None:
        if event.name in ("history", "clean"):
            self.historyChanged.emit()

    # ---------------------------------------------------------------- distance fields

    def _refresh_fields(self) -> None:
        if self._fields_dirty:
            self._fields_dirty = False
            self.request_fields()

    def _field_key(self, structure) -> tuple:
        """What a structure's field depends on: its own voxels and surface (an edit of another
        label does not rebuild it)."""
        from surgtwin.segmentation.editing import label_digest

        mesh = structure.mesh
        if structure.source != "label":
            return (None, "mesh", None if mesh is None else mesh_digest(mesh))
        voxels = label_digest(self.plan.labelmap.array, int(structure.label_value))
        return (structure.label_value, voxels, None if mesh is None else mesh_digest(mesh))

    def request_fields(self) -> None:
        """(Re)build, on a worker, the distance fields of guarded and bone structures whose
        inputs changed. The live readout uses whichever fields are ready."""
        if self.plan is None or self.plan.labelmap is None:
            return
        candidates = [
            s for s in needed_structures(self.plan) if s.source == "label" or s.mesh is not None
        ]
        if not candidates:
            return
        known = dict(self._field_keys)
        if self._field_job is not None:
            self._field_job.cancel()
        self.geometry = CaseGeometry(self.plan)
        geo = self.geometry

        def work(progress, cancel):
            # the keys digest each structure's voxels (tens of ms on a large CT): here, not on
            # the GUI thread; only structures whose inputs changed are built again
            todo = []
            for s in candidates:
                key = self._field_key(s)
                if known.get(s.name) != key:
                    todo.append((s, key))
            if todo:  # (a signal: delivered on the GUI thread)
                self.status.emit("Building distance maps for the live clearance…")
            out = {}
            for n, (s, key) in enumerate(todo):
                if cancel():
                    raise LoadCancelled("cancelled")
                progress(n, len(todo))
                out[s.name] = (geo.field(s, cancel=cancel), key)
            progress(len(todo), len(todo))
            return out

        job = Job("Building distance maps", work)
        self._field_job = job
        job.signals.finished.connect(lambda result, j=job: self._fields_built(j, result))
        job.signals.failed.connect(
            lambda exc, _tb: self.status.emit(f"Distance maps could not be built: {exc}")
        )
        start_job(job, background_pool())

    def _fields_built(self, job: Job, result: dict) -> None:
        if job is not self._field_job or self.plan is None:
            return
        self._field_job = None
        for name, (fld, key) in result.items():
            if fld is not None and name in self.plan.structures:
                self.fields[name] = fld
                self._field_keys[name] = key
        if result:
            names = ", ".join(sorted(result))
            self.status.emit(f"Distance maps ready: live clearance on {names}")
            self.fieldsChanged.emit()

    @property
    def fields_building(self) -> bool:
        """Whether distance fields are being built on a worker."""
        return self._field_job is not None

    def cancel_fields(self) -> None:
        """Stop building distance fields (closing, or a new case)."""
        if self._field_job is not None:
            self._field_job.cancel()

    def wait_for_fields(self, timeout_s: float = 120.0) -> bool:
        """Block until the field job ends (tests and the screenshot command only)."""
        job = self._field_job
        if job is None:
            return True
        ok = job.done.wait(timeout_s)
        return ok

    # ---------------------------------------------------------------- autosave

    def autosave_now(self, now: float | None = None, wait: bool = False) -> Path | None:
        """Autosave when due (dirty, changed, interval passed): the plan is copied here (its
        records are immutable; the label array is copied) and written on a worker thread, so
        the window never stalls. ``wait`` blocks until written (tests)."""
        saver = self.autosaver
        if saver is None or self.plan is None or self._autosave_busy:
            return None
        now = time.monotonic() if now is None else now
        if not saver.due(now):
            return None
        snapshot = _snapshot(self.plan)
        path = saver.path
        saver.mark_saved(now)
        self._autosave_busy = True

        def work(_progress, _cancel):
            from surgtwin.planning.planfile import save_plan

            path.parent.mkdir(parents=True, exist_ok=True)
            return save_plan(snapshot, path)

        job = Job("Autosave", work)
        # bound methods, not lambdas: Qt drops the connections if the window closes first
        self._autosave_path = path
        job.signals.failed.connect(self._autosave_failed)
        job.signals.finished.connect(self._autosave_done)
        start_job(job, background_pool())
        self._autosave_job = job
        if wait:
            job.done.wait(120)
        QTimer.singleShot(0, self._autosave_check)
        return path

    def _autosave_failed(self, exc, _details) -> None:
        self.status.emit(f"Autosave failed: {exc}")

    def _autosave_done(self, _result) -> None:
        self.status.emit(f"Autosaved to {self._autosave_path}")

    def _autosave_check(self) -> None:
        job = getattr(self, "_autosave_job", None)
        if job is not None and not job.done.is_set():
            QTimer.singleShot(200, self._autosave_check)
            return
        self._autosave_busy = False


def _snapshot(plan: Plan) -> Plan:
    """A copy of ``plan`` safe to write from another thread while the user goes on editing."""
    from surgtwin.segmentation import LabelMap

    lm = plan.labelmap
    copy_lm = None
    if lm is not None:
        copy_lm = LabelMap(lm.geometry, np.array(lm.array, copy=True), list(lm.labels.values()))
    copy = Plan(plan.name, plan.case, copy_lm)
    copy.notes = plan.notes
    for attr in ("structures", "implants", "cuts", "measurements"):
        target = getattr(copy, attr)
        for record in getattr(plan, attr).values():
            target.add(record)
    return copy
