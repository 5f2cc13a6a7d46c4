"""Distance map: a structure's surface coloured by its distance to another structure or an
implant, with a scalar bar in mm, in the 3-D view.

The distances are the core's (:func:`surgtwin.geometry.clearance.distance_colours`): from the
other structure's distance field when the session has built it (fast, exact within a few mm of
its surface), else from its closed surface (exact); implants from their surface and pose. They
are computed on a worker and recomputed when either input changes (an implant moved, a cut);
while the map is shown the structure's own surface is hidden. Clear restores it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QObject

from surgtwin.errors import SurgTwinError
from surgtwin.geometry.clearance import distance_colours
from surgtwin.planning.case import CaseGeometry
from surgtwin.planning.checks import implant_samples

__all__ = ["DistanceMap", "DistanceMapResult"]

#: Colour map: red at 0 mm through yellow to blue at the end of the range (and beyond).
CMAP = "RdYlBu"
#: Colour of the surface inside the other structure (negative distance).
INSIDE_COLOUR = (0.85, 0.1, 0.85)
SCALARS = "Distance (mm)"


@dataclass
class DistanceMapResult:
    """One computed map: the surface, the other object, and the signed distances (mm)."""

    surface: str
    other: str  # "structure:<name>" or "implant:<name>"
    mesh: object
    values: np.ndarray

    @property
    def other_name(self) -> str:
        return self.other.split(":", 1)[1]


class DistanceMap(QObject):
    """The distance map of the Measure panel (its widgets live in the panel's layout)."""

    def __init__(self, panel):
        super().__init__(panel)
        self.panel = panel
        self.window = panel.window
        self.session = panel.session
        self.result: DistanceMapResult | None = None
        self.wanted: tuple[str, str] | None = None  # (surface, other) the user asked for
        self._actor = None
        self._bar_title: str | None = None
        self._hidden: str | None = None
        self._running = False
        self._dirty = False
        panel.showMapButton.clicked.connect(self._show_clicked)
        panel.clearMapButton.clicked.connect(self.clear)
        panel.rangeSpin.valueChanged.connect(lambda _v: self._draw())
        self.session.caseChanged.connect(self._on_case)
        self.session.planEvent.connect(self._on_plan_event)
        self.session.fieldsChanged.connect(self._on_fields)

    # ---------------------------------------------------------------- choices

    def _refresh_combos(self) -> None:
        p = self.panel
        plan = self.session.plan
        keep_surface, keep_other = p.surfaceCombo.currentData(), p.otherCombo.currentData()
        for combo in (p.surfaceCombo, p.otherCombo):
            combo.blockSignals(True)
            combo.clear()
        if plan is not None:
            for s in plan.structures.values():
                p.surfaceCombo.addItem(s.name, s.name)
                p.otherCombo.addItem(s.name, f"structure:{s.name}")
            for name in plan.implants:
                p.otherCombo.addItem(f"{name} (implant)", f"implant:{name}")
        self._choose(p.surfaceCombo, keep_surface, "bone")
        self._choose(p.otherCombo, keep_other, "critical")
        for combo in (p.surfaceCombo, p.otherCombo):
            combo.blockSignals(False)

    def _choose(self, combo, keep, role: str) -> None:
        i = combo.findData(keep) if keep else -1
        plan = self.session.plan
        if i < 0 and plan is not None:
            for s in plan.structures.values():
                if s.role == role:
                    i = max(combo.findData(s.name), combo.findData(f"structure:{s.name}"))
                    break
        combo.setCurrentIndex(max(i, 0))

    def _show_clicked(self) -> None:
        p = self.panel
        surface, other = p.surfaceCombo.currentData(), p.otherCombo.currentData()
        if surface and other:
            self.show(surface, other)

    # ---------------------------------------------------------------- computing

    def show(self, surface: str, other: str) -> None:
        """Colour structure ``surface`` by its distance to ``other``: a structure's name, or
        ``"structure:<name>"`` / ``"implant:<name>"``."""
        if ":" not in other:
            other = f"structure:{other}"
        if other == f"structure:{surface}":
            self.panel.mapLabel.setText("Choose another structure to measure the distance to")
            return
        self.wanted = (surface, other)
        self._compute()

    def _compute(self) -> None:
        if self.wanted is None or self.session.plan is None:
            return
        if self._running:
            self._dirty = True  # once the running job ends, compute again with the new inputs
            return
        plan = self.session.plan
        surface, other = self.wanted
        try:
            work = self._work(plan, surface, other)
        except (KeyError, SurgTwinError) as exc:
            self.panel.mapLabel.setText(f"No distance map: {exc}")
            return
        self._running, self._dirty = True, False

        def done(result) -> None:
            self._finished()
            if self.session.plan is plan and self.wanted == (surface, other):
                self.result = result
                self._draw()

        self.window.run_job(
            "Computing the distance map", work, done, on_error=lambda _e: self._finished()
        )

    def _work(self, plan, surface: str, other: str):
        """The worker's function; inputs are read now, on the GUI thread."""
        geo = CaseGeometry(plan)
        s = geo.structure(surface)
        kind, name = other.split(":", 1)
        if kind == "implant":
            record = plan.implants[name]
            local, pose = implant_samples(record).mesh, np.asarray(record.pose)

            def other_data():
                return local, pose

        else:
            o = geo.structure(name)
            field = self.session.fields.get(o.name)

            def other_data():
                return (field, None) if field is not None else (geo.mesh(o), None)

        def work(_progress, _cancel):
            mesh = geo.mesh(s)
            target, pose = other_data()
            return DistanceMapResult(s.name, other, mesh, distance_colours(mesh, target, pose))

        return work

    def _finished(self) -> None:
        self._running = False
        if self._dirty:
            self._dirty = False
            self._compute()

    # ---------------------------------------------------------------- drawing

    def _draw(self) -> None:
        result = self.result
        if result is None:
            return
        plotter = self.window.view3d.plotter
        self._remove_actor()
        rng = float(self.panel.rangeSpin.value())
        poly = result.mesh.to_pyvista()
        poly.point_data[SCALARS] = result.values
        title = f"Distance to {result.other_name} (mm)"
        self._actor = plotter.add_mesh(
            poly,
            scalars=SCALARS,
            cmap=CMAP,
            clim=(0.0, rng),
            below_color=INSIDE_COLOUR,
            smooth_shading=True,
            name="distance-map",
            render=False,
            scalar_bar_args={
                "title": title,
                "n_labels": 5,
                "fmt": "%.1f",
                "vertical": False,
                "position_x": 0.18,
                "position_y": 0.07,
                "width": 0.64,
                "height": 0.07,
                "color": "white",
                "title_font_size": 14,
                "label_font_size": 12,
                "below_label": "inside",
            },
        )
        self._bar_title = title
        if self._hidden != result.surface:
            self._restore_surface()
            self.window.view3d.set_structure_visible(result.surface, False)
            self._hidden = result.surface
        v = result.values
        inside = int(np.count_nonzero(v < 0))
        text = f"Closest {float(v.min()):.1f} mm, farthest {float(v.max()):.1f} mm"
        if inside:
            text += f", {inside} vertices inside (magenta)"
        self.panel.mapLabel.setText(text)
        self.window.view3d.request_render()

    def _remove_actor(self) -> None:
        plotter = self.window.view3d.plotter
        if self._actor is not None:
            plotter.remove_actor(self._actor, render=False)
            self._actor = None
        if self._bar_title is not None:
            if self._bar_title in plotter.scalar_bars:
                plotter.remove_scalar_bar(self._bar_title, render=False)
            self._bar_title = None

    def _restore_surface(self) -> None:
        name, self._hidden = self._hidden, None
        plan = self.session.plan
        if name and plan is not None and name in plan.structures:
            self.window.view3d.set_structure_visible(name, plan.structures[name].visible)

    def clear(self) -> None:
        """Back to the structures' own colours, no scalar bar."""
        self.wanted = None
        self.result = None
        self._remove_actor()
        self._restore_surface()
        self.panel.mapLabel.setText("")
        self.window.view3d.request_render()

    @property
    def shown(self) -> bool:
        return self._actor is not None

    def scalars(self) -> np.ndarray | None:
        """The distances (mm) on the shown surface's vertices, or None."""
        return None if self.result is None else self.result.values

    # ---------------------------------------------------------------- inputs changed

    def _on_case(self) -> None:
        self._remove_actor()
        self._hidden = None
        self.wanted = self.result = None
        self.panel.mapLabel.setText("")
        self._refresh_combos()

    def _on_plan_event(self, event) -> None:
        if event.name in ("structures", "implants") and event.kind in ("added", "removed"):
            self._refresh_combos()
        if self.wanted is None:
            return
        surface, other = self.wanted
        key = str(event.key)
        if event.name == "structures" and key == surface:
            if event.kind == "removed":
                self.clear()
                return
            # View3D re-adds a changed structure's actor visible: hide it again
            if self._hidden == surface:
                self.window.view3d.set_structure_visible(surface, False)
        touched = (event.name == "structures" and key in (surface, other.split(":", 1)[1])) or (
            event.name == "implants" and other == f"implant:{key}"
        )
        if touched:
            if event.kind == "removed" and key != surface:
                self.clear()
                return
            self._compute()

    def _on_fields(self) -> None:
        if self.wanted is not None and self.wanted[1].startswith("structure:"):
            self._compute()
