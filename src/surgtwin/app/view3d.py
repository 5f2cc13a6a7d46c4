"""The 3-D view: structures, implants coloured by margin status, the closest-point line.

A pyvistaqt ``QtInteractor`` embedded in the window. Renders are coalesced: any number of
requests within one event-loop turn give one frame, so renders never queue behind the mouse.
While an implant is being dragged, large surfaces are drawn from a decimated copy (level of
detail); the clearance always uses the full-resolution data.
"""

from __future__ import annotations

import time

import numpy as np
import pyvista as pv
import vtk
from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import QVBoxLayout, QWidget
from pyvistaqt import QtInteractor

from surgtwin.app.live_controller import STATUS_COLOURS
from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.surface import decimate_mesh
from surgtwin.planning.checks import implant_samples

__all__ = ["LOD_FACES", "View3D", "vtk_matrix"]

#: Surfaces with more triangles than this get a decimated copy shown while dragging.
LOD_FACES = 4_000
#: Implant models with more triangles than this are drawn from a coarse copy while dragging.
LIGHT_IMPLANT_FACES = 1_500


def vtk_matrix(pose: np.ndarray) -> vtk.vtkMatrix4x4:
    """A 4 x 4 pose (LPS mm) as VTK's matrix, for an actor's ``SetUserMatrix``."""
    m = vtk.vtkMatrix4x4()
    for i in range(4):
        for j in range(4):
            m.SetElement(i, j, float(pose[i, j]))
    return m


def _polydata(mesh: Mesh) -> pv.PolyData:
    return mesh.to_pyvista()


class View3D(QWidget):
    """3-D view of the session's plan.

    Signals
    -------
    picked(ndarray) : a left click (without drag) on a surface, at this LPS point (mm)
    rendered : a frame was drawn
    """

    picked = pyqtSignal(object)
    rendered = pyqtSignal()

    def __init__(self, session, live, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("view3d")
        self.session = session
        self.live = live
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # no multisampling: on software OpenGL it costs 3-4x per frame; surfaces are smooth-shaded
        self.plotter = QtInteractor(self, auto_update=False, multi_samples=0)
        self.plotter.interactor.frameSwapped.connect(self._on_frame)
        self.plotter.set_background("#101418", top="#2a3440")
        layout.addWidget(self.plotter.interactor)
        self.plotter.add_axes(xlabel="L", ylabel="P", zlabel="S", line_width=3)
        self._structure_actors: dict[str, tuple] = {}
        self._lod_cache: dict[int, tuple[Mesh, Mesh]] = {}
        self._lod_jobs: list = []
        self._closed = False
        self._implant_actors: dict[str, vtk.vtkActor] = {}
        self._implant_inputs: dict[str, tuple] = {}
        self._light_cache: dict[int, tuple] = {}
        self._line_actor = None
        self._label_actor = None
        self._label_text = ""
        self._label_time = 0.0
        self._label_timer = QTimer(self)
        self._label_timer.setSingleShot(True)
        self._label_timer.setInterval(110)
        self._label_timer.timeout.connect(self._refresh_label)
        self.interacting = False
        self.frames = 0
        self.last_frame_s = 0.0
        self._last_swap = 0.0
        self._press_pos = None
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(250)
        self._settle.timeout.connect(lambda: self.set_interacting(False))
        iren = self.plotter.iren
        iren.add_observer("LeftButtonPressEvent", self._on_press)
        iren.add_observer("LeftButtonReleaseEvent", self._on_release)
        session.caseChanged.connect(self.rebuild)
        session.planEvent.connect(self._on_plan_event)
        session.currentImplantChanged.connect(lambda _n: self._update_line())
        live.readingsChanged.connect(self._on_readings)

    # ---------------------------------------------------------------- rendering

    def request_render(self) -> None:
        """Draw a frame soon: Qt merges every request made before the next paint into one
        (the widget renders in its paintGL; a render is never queued behind the mouse)."""
        self.plotter.interactor.update()

    def render_now(self) -> None:
        """Draw a frame synchronously (screenshots, tests)."""
        self.plotter.interactor.repaint()

    def _on_frame(self) -> None:
        now = time.perf_counter()
        self.last_frame_s = now - self._last_swap if self._last_swap else 0.0
        self._last_swap = now
        self.frames += 1
        self.rendered.emit()

    def set_interacting(self, on: bool) -> None:
        """Show decimated surfaces while something is dragged; full ones when it stops."""
        if on:
            self._settle.start()
        if on == self.interacting:
            return
        self.interacting = on
        if not on and self._line_actor is not None:
            self._label_time = 0.0
            self._update_line()  # the final text at once
        for name, actor in self._implant_actors.items():
            inputs = self._implant_inputs.get(name)
            if inputs is not None:
                actor.GetMapper().SetInputData(inputs[1] if on else inputs[0])
        for full, lod, visible in self._structure_actors.values():
            if lod is None:
                continue
            full.SetVisibility(visible and not on)
            lod.SetVisibility(visible and on)
        self.request_render()

    # ---------------------------------------------------------------- content

    def rebuild(self) -> None:
        for full, lod, _v in self._structure_actors.values():
            self.plotter.remove_actor(full, render=False)
            if lod is not None:
                self.plotter.remove_actor(lod, render=False)
        for actor in self._implant_actors.values():
            self.plotter.remove_actor(actor, render=False)
        self._structure_actors.clear()
        self._implant_actors.clear()
        self._implant_inputs.clear()
        plan = self.session.plan
        if plan is not None:
            for name in plan.structures:
                self._add_structure(name)
            for name in plan.implants:
                self._add_implant(name)
        self.reset_camera()
        self._update_line()
        self.request_render()

    def reset_camera(self) -> None:
        """The surgeon's view of a posterior approach: from behind and a little above and to
        the right (the patient's left is on the screen's left, as seen from behind; the
        orientation marker's L/P/S axes say so), superior up."""
        plan = self.session.plan
        if plan is None or not self._structure_actors:
            self.plotter.reset_camera(render=False)
            return
        cam = self.plotter.camera
        self.plotter.reset_camera(render=False)
        focal = np.array(cam.focal_point)
        dist = float(np.linalg.norm(np.array(cam.position) - focal))
        direction = np.array([-0.35, 1.0, 0.45])
        cam.position = tuple(focal + dist * direction / np.linalg.norm(direction))
        cam.up = (0.0, 0.0, 1.0)
        self.plotter.reset_camera(render=False)

    def _add_structure(self, name: str) -> None:
        s = self.session.plan.structures[name]
        mesh = s.mesh if s.mesh is not None else None
        if mesh is None:
            try:
                mesh = self.session.geometry.mesh(s)
            except Exception:
                return
        if len(mesh.faces) == 0:
            return
        props = dict(color=s.color, opacity=s.opacity, smooth_shading=True, render=False)
        full = self.plotter.add_mesh(_polydata(mesh), name=f"s:{name}", **props)
        full.SetVisibility(s.visible)
        self._structure_actors[name] = (full, None, s.visible)
        if len(mesh.faces) > LOD_FACES:
            small = self._lod_cache.get(id(mesh))
            if small is not None and small[0] is mesh:
                self._attach_lod(name, mesh, small[1])
            else:
                self._decimate_later(name, mesh)

    def _decimate_later(self, name: str, mesh: Mesh) -> None:
        """Make the drag-time copy of a large surface on a worker (seconds for a whole
        spine); until it is ready, dragging shows the full surface."""
        from surgtwin.app.workers import Job, start_job

        def work(_progress, _cancel):
            return decimate_mesh(mesh, 1.0 - LOD_FACES / len(mesh.faces))

        job = Job(f"Display copy of {name}", work)
        job.signals.finished.connect(lambda small: self._lod_ready(name, mesh, small))
        self._lod_jobs.append(job)
        job.signals.finished.connect(lambda _r: self._lod_jobs.remove(job))
        job.signals.failed.connect(lambda _e, _t: self._lod_jobs.remove(job))
        start_job(job)

    def _lod_ready(self, name: str, mesh: Mesh, small: Mesh) -> None:
        if self._closed:
            return
        self._lod_cache = {k: v for k, v in self._lod_cache.items() if v[0] is not mesh}
        self._lod_cache[id(mesh)] = (mesh, small)
        while len(self._lod_cache) > 16:
            self._lod_cache.pop(next(iter(self._lod_cache)))
        plan = self.session.plan
        if plan is None or name not in plan.structures or name not in self._structure_actors:
            return
        s = plan.structures[name]
        current = s.mesh
        if current is None:
            try:
                current = self.session.geometry.mesh(s)
            except Exception:
                return
        if current is not mesh:
            return  # the surface changed meanwhile; its own copy is on the way
        self._attach_lod(name, mesh, small)

    def _attach_lod(self, name: str, mesh: Mesh, small: Mesh) -> None:
        full, old, visible = self._structure_actors[name]
        if old is not None:
            self.plotter.remove_actor(old, render=False)
        s = self.session.plan.structures[name]
        props = dict(color=s.color, opacity=s.opacity, smooth_shading=True, render=False)
        lod = self.plotter.add_mesh(_polydata(small), name=f"lod:{name}", **props)
        full.SetVisibility(visible and not self.interacting)
        lod.SetVisibility(visible and self.interacting)
        self._structure_actors[name] = (full, lod, visible)

    def _remove_structure(self, name: str) -> None:
        actors = self._structure_actors.pop(name, None)
        if actors:
            self.plotter.remove_actor(actors[0], render=False)
            if actors[1] is not None:
                self.plotter.remove_actor(actors[1], render=False)

    def _add_implant(self, name: str) -> None:
        record = self.session.plan.implants[name]
        local = implant_samples(record).mesh
        actor = self.plotter.add_mesh(
            _polydata(local),
            name=f"i:{name}",
            color=STATUS_COLOURS[self.live.status(name)],
            smooth_shading=True,
            render=False,
        )
        actor.SetUserMatrix(vtk_matrix(np.asarray(record.pose)))
        self._implant_actors[name] = actor
        full = actor.GetMapper().GetInput()
        self._implant_inputs[name] = (full, self._light_implant(local, full))
        if self.interacting:
            actor.GetMapper().SetInputData(self._implant_inputs[name][1])

    def _light_implant(self, local: Mesh, full):
        """A coarse copy of an implant model (threads smoothed away) drawn while dragging."""
        cached = self._light_cache.get(id(local))
        if cached is not None and cached[0] is local:
            return cached[1]
        light = full
        if len(local.faces) > LIGHT_IMPLANT_FACES:
            small = decimate_mesh(local, 1.0 - LIGHT_IMPLANT_FACES / len(local.faces))
            light = _polydata(small).compute_normals(split_vertices=False)
        self._light_cache[id(local)] = (local, light)
        return light

    def _on_plan_event(self, event) -> None:
        name = str(event.key)
        if event.name == "structures":
            actors = self._structure_actors.get(name)
            same_surface = (
                event.kind == "changed"
                and actors is not None
                and event.old.mesh is event.new.mesh
                and event.old.label_value == event.new.label_value
            )
            if same_surface:
                s = event.new
                for actor in actors[:2]:
                    if actor is not None:
                        actor.GetProperty().SetColor(*s.color)
                        actor.GetProperty().SetOpacity(s.opacity)
                self.set_structure_visible(name, s.visible)
            else:
                self._remove_structure(name)
                if event.kind != "removed":
                    self._add_structure(name)
        elif event.name == "implants":
            actor = self._implant_actors.get(name)
            if event.kind == "removed":
                if actor is not None:
                    self.plotter.remove_actor(actor, render=False)
                    del self._implant_actors[name]
                    self._implant_inputs.pop(name, None)
            elif actor is None or event.kind == "added":
                self._add_implant(name)
            else:
                old, new = event.old, event.new
                if old is not None and old.spec_key != new.spec_key:
                    self.plotter.remove_actor(actor, render=False)
                    self._add_implant(name)
                else:
                    actor.SetUserMatrix(vtk_matrix(np.asarray(new.pose)))
        elif event.name in ("labelmap",):
            return
        else:
            return
        self.request_render()

    def _on_readings(self, name: str) -> None:
        actor = self._implant_actors.get(name)
        if actor is not None:
            actor.GetProperty().SetColor(*STATUS_COLOURS[self.live.status(name)])
        if name == self.session.current_implant:
            self._update_line()
        self.request_render()

    def _make_line(self) -> None:
        self._line_source = vtk.vtkLineSource()
        mapper = vtk.vtkPolyDataMapper()
        mapper.SetInputConnection(self._line_source.GetOutputPort())
        self._line_actor = vtk.vtkActor()
        self._line_actor.SetMapper(mapper)
        self._line_actor.GetProperty().SetLineWidth(4)
        self._line_actor.GetProperty().LightingOff()
        self.plotter.renderer.AddActor(self._line_actor)
        text = vtk.vtkBillboardTextActor3D()
        prop = text.GetTextProperty()
        prop.SetFontSize(16)
        prop.SetBackgroundColor(0, 0, 0)
        prop.SetBackgroundOpacity(0.6)
        self.plotter.renderer.AddActor(text)
        self._label_actor = text

    def _update_line(self) -> None:
        """Join the current implant's closest point to the structure it comes closest to
        (the actors are made once and updated in place while dragging)."""
        if self._line_actor is None:
            self._make_line()
        name = self.session.current_implant
        reading = self.live.worst(name) if name else None
        if reading is None:
            self._line_actor.SetVisibility(False)
            self._label_actor.SetVisibility(False)
            return
        a, b = reading.closest_implant, reading.closest_structure
        colour = STATUS_COLOURS[reading.status]
        self._line_source.SetPoint1(*a)
        self._line_source.SetPoint2(*b)
        self._line_actor.GetProperty().SetColor(*colour)
        self._line_actor.SetVisibility(True)
        text = f"{reading.structure}: {reading.text}"
        # a new text is rasterised again (a few ms on software GL): while dragging, at most
        # ten times a second; the position and colour follow every frame
        now = time.monotonic()
        if text != self._label_text and (not self.interacting or now - self._label_time > 0.1):
            self._label_actor.SetInput(text)
            self._label_text, self._label_time = text, now
        elif text != self._label_text and not self._label_timer.isActive():
            self._label_timer.start()
        self._label_actor.SetPosition(*((a + b) / 2))
        prop = self._label_actor.GetTextProperty()
        if tuple(prop.GetColor()) != tuple(colour):
            prop.SetColor(*colour)
        self._label_actor.SetVisibility(True)

    def _refresh_label(self) -> None:
        self._label_time = 0.0
        self._update_line()
        self.request_render()

    @property
    def clearance_label(self) -> str:
        """The text shown next to the closest-point line ("" when hidden)."""
        if self._label_actor is None or not self._label_actor.GetVisibility():
            return ""
        return self._label_actor.GetInput()

    # ---------------------------------------------------------------- picking

    def _on_press(self, _obj, _event) -> None:
        self._press_pos = self.plotter.iren.get_event_position()

    def _on_release(self, _obj, _event) -> None:
        start, self._press_pos = self._press_pos, None
        if start is None:
            return
        x, y = self.plotter.iren.get_event_position()
        if abs(x - start[0]) + abs(y - start[1]) > 3:
            return  # a rotation, not a click
        point = self.pick(x, y)
        if point is not None:
            self.picked.emit(point)

    def pick(self, x: int, y: int) -> np.ndarray | None:
        """LPS point of the visible surface under display pixel (x, y), or None."""
        picker = vtk.vtkCellPicker()
        picker.SetTolerance(0.0005)
        for full, _lod, _v in self._structure_actors.values():
            picker.AddPickList(full)
        picker.PickFromListOn()
        if not picker.Pick(x, y, 0, self.plotter.renderer):
            return None
        return np.array(picker.GetPickPosition(), dtype=float)

    def set_structure_visible(self, name: str, visible: bool) -> None:
        actors = self._structure_actors.get(name)
        if actors is None:
            return
        full, lod, _ = actors
        self._structure_actors[name] = (full, lod, visible)
        full.SetVisibility(visible and not (self.interacting and lod is not None))
        if lod is not None:
            lod.SetVisibility(visible and self.interacting)
        self.request_render()

    @property
    def display_copies_pending(self) -> bool:
        """Whether decimated display copies are still being made on a worker."""
        return bool(self._lod_jobs)

    def close_plotter(self) -> None:
        self._closed = True
        for job in self._lod_jobs:
            job.cancel()
        self.plotter.close()
