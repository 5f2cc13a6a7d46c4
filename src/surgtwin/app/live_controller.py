"""Keeps the live clearance of every implant up to date as implants move and fields arrive."""

from __future__ import annotations

import logging

from PyQt6.QtCore import QObject, pyqtSignal

from surgtwin.planning.live import LiveReading, live_readings, worst_status

__all__ = ["STATUS_COLOURS", "LiveClearance"]

log = logging.getLogger(__name__)

#: Implant colours by margin status (RGB 0..1); ``None``: not checked yet.
STATUS_COLOURS = {
    "ok": (0.25, 0.85, 0.35),
    "warn": (1.0, 0.70, 0.15),
    "fail": (1.0, 0.25, 0.20),
    None: (0.55, 0.65, 0.80),
}


class LiveClearance(QObject):
    """Readings per implant, recomputed on the GUI thread (about a millisecond per structure)
    whenever an implant changes or new distance fields are ready.

    Signals
    -------
    readingsChanged(str) : the readings of this implant changed
    """

    readingsChanged = pyqtSignal(str)

    def __init__(self, session, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.readings: dict[str, list[LiveReading]] = {}
        session.caseChanged.connect(self._reset)
        session.fieldsChanged.connect(self.update_all)
        session.planEvent.connect(self._on_event)

    def _reset(self) -> None:
        self.readings = {}

    def _on_event(self, event) -> None:
        if event.name == "structures":
            # a margin or role changed the judgement of every implant (fields are rebuilt
            # separately when a surface changes)
            self.update_all()
            return
        if event.name != "implants":
            return
        name = str(event.key)
        if event.kind == "removed":
            self.readings.pop(name, None)
            self.readingsChanged.emit(name)
        else:
            self.update(name)

    def update(self, name: str) -> None:
        plan = self.session.plan
        if plan is None or name not in plan.implants:
            return
        try:
            self.readings[name] = live_readings(plan, plan.implants[name], self.session.fields)
        except Exception as exc:  # a bad implant model must not break dragging
            log.warning("live clearance of %s failed: %s", name, exc)
            self.readings.pop(name, None)
        self.readingsChanged.emit(name)

    def update_all(self) -> None:
        plan = self.session.plan
        if plan is None:
            return
        for name in list(plan.implants):
            self.update(name)

    def status(self, name: str) -> str | None:
        """Worst margin status of an implant against guarded structures (None: unchecked)."""
        rows = [r for r in self.readings.get(name, []) if r.role != "bone"]
        return worst_status(rows) if rows else None

    def worst(self, name: str) -> LiveReading | None:
        """The guarded reading with the smallest clearance."""
        rows = [r for r in self.readings.get(name, []) if r.role != "bone"]
        return min(rows, key=lambda r: r.clearance_mm) if rows else None
