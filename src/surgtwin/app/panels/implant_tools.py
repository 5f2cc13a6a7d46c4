"""The Implants panel's mouse and keyboard tools: two-click placement, dragging on a slice,
keyboard nudges, and the 3-D handles (entry slides, tip turns). A whole drag is one undo step."""

from __future__ import annotations

import itertools
import math

import numpy as np
from PyQt6.QtCore import QPointF, Qt

from surgtwin.planning.checks import entry_and_tip, implant_spec
from surgtwin.planning.implants import pose_from_trajectory
from surgtwin.planning.placement import NUDGE_DEG, NUDGE_MM, nudge, slide_along_axis

__all__ = ["GRAB_PX", "HANDLE_COLOURS", "Handles3D", "MoveTool", "PlaceTool"]

GRAB_PX = 14.0
#: 3-D handle colours: the entry's slides the implant, the tip's turns it.
HANDLE_COLOURS = {"entry": (0.30, 0.80, 1.00), "tip": (1.00, 0.85, 0.20)}
_drag_ids = itertools.count(1)

# screen direction -> patient direction letter, per view (right, left, up, down)
_KEY_DIRECTIONS = {
    "axial": {"right": "L", "left": "R", "up": "A", "down": "P"},
    "coronal": {"right": "L", "left": "R", "up": "S", "down": "I"},
    "sagittal": {"right": "P", "left": "A", "up": "S", "down": "I"},
}
# rotation nudges: about the slice normal, signed so that the tip turns clockwise on screen
_NORMAL_LETTER = {"axial": "S", "coronal": "P", "sagittal": "L"}


def _segment_distance(p: QPointF, a: QPointF, b: QPointF) -> float:
    ax, ay, bx, by = a.x(), a.y(), b.x(), b.y()
    dx, dy = bx - ax, by - ay
    n = dx * dx + dy * dy
    t = 0.0 if n == 0 else max(0.0, min(1.0, ((p.x() - ax) * dx + (p.y() - ay) * dy) / n))
    return math.hypot(p.x() - (ax + t * dx), p.y() - (ay + t * dy))


class PlaceTool:
    """Two clicks (slice or 3-D surface): the entry, then the target."""

    def __init__(self, panel):
        self.panel = panel
        self.entry: np.ndarray | None = None

    def press(self, _view, lps, _event) -> bool:
        self.click(lps)
        return True

    def pick3d(self, lps) -> None:
        self.click(lps)

    def click(self, lps) -> None:
        lps = np.asarray(lps, dtype=float)
        if self.entry is None:
            self.entry = lps
            self.panel.window.session.set_cursor(lps)
            self.panel.window.statusBar().showMessage(
                "Entry set at L {:+.1f} P {:+.1f} S {:+.1f} mm: now click the target".format(*lps)
            )
            self.panel.window.refresh_views()
        else:
            entry, self.entry = self.entry, None
            self.panel.place(entry, lps)


class MoveTool:
    """Drag the current implant on a slice: its body slides it, its tip turns it about the
    entry; arrow keys nudge. A whole drag is one undo step."""

    def __init__(self, panel):
        self.panel = panel
        self.mode: str | None = None
        self.start: np.ndarray | None = None
        self.start_pose: np.ndarray | None = None
        self.drag_id = None

    def press(self, view, lps, event) -> bool:
        record = self.panel.current_record()
        if record is None:
            return False
        entry, tip = entry_and_tip(record)
        pos = event.position()
        p_tip, _ = view.lps_to_widget(tip)
        p_entry, _ = view.lps_to_widget(entry)
        span = math.hypot(p_tip.x() - p_entry.x(), p_tip.y() - p_entry.y())
        to_tip = math.hypot(pos.x() - p_tip.x(), pos.y() - p_tip.y())
        # the tip turns the implant; the rest of it slides it (on a short projection, the
        # tip's grab zone shrinks so that the body can still be grabbed)
        if to_tip < min(GRAB_PX, 0.3 * span):
            self.mode = "turn"
        elif _segment_distance(pos, p_entry, p_tip) < GRAB_PX:
            self.mode = "slide"
        else:
            return False
        self.start = np.asarray(lps, dtype=float)
        self.start_pose = np.asarray(record.pose).copy()
        self.drag_id = ("drag", next(_drag_ids))
        self.panel.window.view3d.set_interacting(True)
        return True

    def move(self, view, lps, _event) -> bool:
        if self.mode is None:
            return False
        record = self.panel.current_record()
        if record is None:
            return False
        lps = np.asarray(lps, dtype=float)
        if self.mode == "slide":
            pose = self.start_pose.copy()
            pose[:3, 3] += lps - self.start
        else:
            entry, tip = entry_and_tip(record.with_pose(self.start_pose))
            n = view.normal_vector()
            target = lps - float((lps - tip) @ n) * n  # turn in the view's plane
            if np.linalg.norm(target - entry) < 1.0:
                return True
            length = float(np.linalg.norm(tip - entry))
            pose = pose_from_trajectory(entry, target, length)
        self.panel.window.view3d.set_interacting(True)  # light surfaces until the drag ends
        self.panel.move_to(pose, self.drag_id)
        return True

    def release(self, _view, _lps, _event) -> bool:
        if self.mode is None:
            return False
        self.mode = None
        self.drag_id = None
        self.panel.window.view3d.set_interacting(False)
        return True

    def key(self, view, event) -> bool:
        record = self.panel.current_record()
        if record is None:
            return False
        k = event.key()
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        screen = {
            Qt.Key.Key_Right: "right",
            Qt.Key.Key_Left: "left",
            Qt.Key.Key_Up: "up",
            Qt.Key.Key_Down: "down",
        }.get(k)
        pose = np.asarray(record.pose)
        entry, _tip = entry_and_tip(record)
        if screen is not None and not ctrl:
            new = nudge(pose, _KEY_DIRECTIONS[view.orientation][screen], NUDGE_MM)
        elif screen in ("left", "right") and ctrl:
            letter = _NORMAL_LETTER[view.orientation]
            sign = 1.0 if screen == "left" else -1.0
            new = nudge(pose, letter, sign * NUDGE_DEG, rotate=True, entry=entry)
        elif k in (Qt.Key.Key_PageUp, Qt.Key.Key_PageDown):
            new = slide_along_axis(pose, NUDGE_MM if k == Qt.Key.Key_PageDown else -NUDGE_MM)
        else:
            return False
        self.panel.window.view3d.set_interacting(True)
        self.panel.move_to(new, ("keys", record.name))
        return True


class Handles3D:
    """Two handles on the current implant in the 3-D view: the entry's slides the implant,
    the tip's turns it about the entry (VTK sphere widgets, dragged in the view plane). A
    whole drag is one undo step."""

    def __init__(self, panel):
        import vtk

        self.panel = panel
        plotter = panel.window.view3d.plotter
        self.widgets = {}
        self.dragging: str | None = None
        self.start_pose: np.ndarray | None = None
        self.drag_id = None
        for role, colour in HANDLE_COLOURS.items():
            w = vtk.vtkSphereWidget()
            w.SetInteractor(plotter.iren.interactor)
            w.SetCurrentRenderer(plotter.renderer)
            w.SetRepresentationToSurface()
            w.GetSphereProperty().SetColor(*colour)
            w.GetSelectedSphereProperty().SetColor(1.0, 1.0, 1.0)
            w.SetThetaResolution(16)
            w.SetPhiResolution(12)
            w.ScaleOff()
            w.SetRadius(2.5)
            w.AddObserver("StartInteractionEvent", lambda _o, _e, r=role: self.start(r))
            w.AddObserver(
                "InteractionEvent", lambda o, _e, r=role: self.moved(r, np.array(o.GetCenter()))
            )
            w.AddObserver("EndInteractionEvent", lambda _o, _e: self.end())
            self.widgets[role] = w
        self.enabled = False

    def set_enabled(self, on: bool) -> None:
        record = self.panel.current_record()
        on = bool(on and record is not None)
        self.enabled = on
        if on:
            self.sync()
        for w in self.widgets.values():
            w.SetEnabled(1 if on else 0)
        self.panel.window.view3d.request_render()

    def sync(self) -> None:
        """Put the handles on the current implant's entry and tip."""
        record = self.panel.current_record()
        if record is None or self.dragging is not None:
            return
        entry, tip = entry_and_tip(record)
        radius = max(1.5, 0.5 * (implant_spec(record).diameter_mm or 3.0))
        for role, point in (("entry", entry), ("tip", tip)):
            w = self.widgets[role]
            w.SetRadius(radius)
            w.SetCenter(*point)

    def start(self, role: str) -> None:
        record = self.panel.current_record()
        if record is None:
            return
        self.dragging = role
        self.start_pose = np.asarray(record.pose).copy()
        self.drag_id = ("handle", next(_drag_ids))
        self.panel.window.view3d.set_interacting(True)

    def moved(self, role: str, centre: np.ndarray) -> None:
        record = self.panel.current_record()
        if record is None or self.start_pose is None:
            return
        entry, tip = entry_and_tip(record.with_pose(self.start_pose))
        if role == "entry":
            pose = self.start_pose.copy()
            pose[:3, 3] += centre - entry
        else:
            if np.linalg.norm(centre - entry) < 1.0:
                return
            pose = pose_from_trajectory(entry, centre, float(np.linalg.norm(tip - entry)))
        self.panel.window.view3d.set_interacting(True)
        self.panel.move_to(pose, self.drag_id)

    def end(self) -> None:
        self.dragging = None
        self.start_pose = None
        self.drag_id = None
        self.panel.window.view3d.set_interacting(False)
        self.sync()
