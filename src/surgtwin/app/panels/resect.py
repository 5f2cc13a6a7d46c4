"""Resect panel: cut a structure with a plane, box, sphere or lasso; preview, apply, remove.

The cut itself is the core's: :func:`surgtwin.planning.cuts.cut_structure` prepares one
undoable command (the Boolean, the voxels to clear, the volumes and the target margin) without
touching the plan. The panel prepares it on a worker for the preview (the part removed in
translucent red in the 3-D view, the rest see-through in the structure's colour) and pushes the
same command when the user applies it, unless the plan or the tool changed in between. A cut
made in this session can be removed again (the inverse of its command, one undo step) while it
is the structure's latest change.

Drawing on a slice view (the "Draw on a slice" button):

* plane: drag a line; the cutting plane contains it and the viewing direction, and removes the
  side away from the structure's centre (Flip for the other side);
* box, sphere: click the centre; drag to size the box (in the slice's plane) or the radius;
* polygon: click the corners, double-click or Enter closes it, Backspace drops the last corner,
  Escape starts again. It cuts along the view's direction (through everything, or a depth).

A click on a surface in the 3-D view moves the plane's point or the box's/sphere's centre there;
the plane can also be dragged with its handle in the 3-D view. A target structure (a lesion) is
grown from the crosshair by HU ("Grow target at cursor"); every cut then reports the margin
around the plan's targets and whether they are fully removed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QPainter
from PyQt6.QtWidgets import QListWidgetItem, QWidget

from surgtwin.app.panels.resect_tools import (
    PREVIEW_RED,
    SLICE_VIEW_DIRECTION,
    SliceCutTool,
    unit_vector,
)
from surgtwin.app.resources import load_ui, set_style_role
from surgtwin.errors import SurgTwinError
from surgtwin.planning.case import CaseGeometry, grow_structure
from surgtwin.planning.commands import AddStructure
from surgtwin.planning.cuts import CutStructure, cut_structure
from surgtwin.planning.plan import Structure

__all__ = ["SLICE_VIEW_DIRECTION", "ResectPanel", "SliceCutTool"]

TOOLS = (("plane", "Plane"), ("box", "Box"), ("sphere", "Sphere"), ("polygon", "Polygon lasso"))
HINTS = {
    "plane": "Drag a line on a slice: the plane contains it and the viewing direction, and "
    "removes the side away from the structure's centre (red in the preview).",
    "box": "Click the box's centre on a slice; drag to size it in the slice's plane.",
    "sphere": "Click the sphere's centre on a slice; drag to set the radius.",
    "polygon": "Click the corners on a slice; double-click or Enter closes the lasso, "
    "Backspace drops the last corner, Escape starts again.",
}
SHORT_HINTS = {
    "plane": "Drag a line on a slice; the red side is removed.",
    "box": "Click the centre on a slice; drag to size the box.",
    "sphere": "Click the centre on a slice; drag for the radius.",
    "polygon": "Click corners; double-click or Enter closes, Esc restarts.",
}
DRAW_TEXT = {
    "plane": "Draw the plane on a slice",
    "box": "Place the box on a slice",
    "sphere": "Place the sphere on a slice",
    "polygon": "Draw the lasso on a slice",
}
PREVIEW_KEPT_OPACITY = 0.35
#: Grown targets larger than this leaked out of the lesion (mm³).
MAX_TARGET_MM3 = 250_000.0
MIN_LINE_MM = 2.0


def _fmt_mm3(v: float) -> str:
    return f"{v:,.0f} mm³ ({v / 1000:.2f} ml)"


class _RevertCut:
    """Remove a cut made in this session: the inverse of its :class:`CutStructure` command
    (the record goes, the structure gets its surface and voxels back)."""

    def __init__(self, command: CutStructure):
        self.command = command
        self.plan = command.plan
        self.name = f"Remove {command.cut.name}"

    def do(self) -> None:
        self.command.undo()

    def undo(self) -> None:
        self.command.do()

    def merge_with(self, _other) -> bool:
        return False

    @property
    def nbytes(self) -> int:
        return 512  # the cut command's data is held by the step that made it


class ResectPanel(QWidget):
    """Virtual resection of a structure: choose the tool, preview, apply, remove cuts.

    Attributes
    ----------
    prepared : CutStructure or None
        The command of the last preview (not yet pushed), or of the last cut applied.
    polygon : numpy.ndarray (k, 3) or None
        The closed lasso, LPS mm, drawn on the view :attr:`polygon_view`.
    """

    def __init__(self, window):
        super().__init__(window)
        load_ui("resect_panel.ui", self)
        self.window = window
        self.session = window.session
        self.tool = SliceCutTool(self)
        self.polygon: np.ndarray | None = None
        self.polygon_view: str | None = None
        self.prepared: CutStructure | None = None
        self._prepared_key: tuple | None = None
        self._token = 0  # the latest preview/apply job; older results are dropped
        self._commands: dict[str, CutStructure] = {}
        self._preview_actors: list = []
        self._hidden_structure: str | None = None
        self._plane_widget = None
        self._syncing_widget = False
        for key, text in TOOLS:
            self.toolCombo.addItem(text, key)
        self.toolCombo.currentIndexChanged.connect(self._tool_changed)
        self.cursorButton.clicked.connect(lambda: self.set_point(self.session.cursor))
        self.flipButton.clicked.connect(self.flip_normal)
        self.planeHandleCheck.toggled.connect(lambda _on: self._update_plane_widget())
        self.drawButton.toggled.connect(self._draw_toggled)
        self.clearPolygonButton.clicked.connect(self._clear_polygon)
        self.previewButton.clicked.connect(self.preview)
        self.applyButton.clicked.connect(self.apply)
        self.growTargetButton.clicked.connect(self.grow_target)
        self.removeCutButton.clicked.connect(self.remove_selected_cut)
        for spin in self._point_spins() + self._normal_spins():
            spin.valueChanged.connect(self._tool_edited)
        for spin in (self.sizeX, self.sizeY, self.sizeZ, self.radiusSpin, self.depthSpin):
            spin.valueChanged.connect(self._tool_edited)
        self.structureCombo.currentIndexChanged.connect(self._structure_changed)
        self.session.caseChanged.connect(self._on_case)
        self.session.planEvent.connect(self._on_plan_event)
        for view in window.slice_views.values():
            view.overlays.append(self.draw_overlay)
        self._tool_changed()
        self._on_case()

    # ---------------------------------------------------------------- tool state

    def _point_spins(self):
        return [self.pointX, self.pointY, self.pointZ]

    def _normal_spins(self):
        return [self.normalX, self.normalY, self.normalZ]

    def tool_kind(self) -> str:
        return self.toolCombo.currentData()

    def set_tool(self, kind: str) -> None:
        """Choose the tool: ``"plane"``, ``"box"``, ``"sphere"`` or ``"polygon"``."""
        i = self.toolCombo.findData(kind)
        if i < 0:
            raise ValueError(f"unknown cutting tool {kind!r}")
        self.toolCombo.setCurrentIndex(i)

    def point(self) -> np.ndarray:
        """The plane's point or the box's/sphere's centre, LPS mm."""
        return np.array([s.value() for s in self._point_spins()])

    def set_point(self, lps) -> None:
        self._set_spins(self._point_spins(), lps)

    def normal(self) -> np.ndarray:
        """The plane's normal (unit, towards the part removed)."""
        n = unit_vector([s.value() for s in self._normal_spins()])
        return n if n is not None else np.array([0.0, 0.0, 1.0])

    def set_normal(self, normal) -> None:
        n = unit_vector(normal)
        if n is None:
            raise ValueError("the plane normal must be a non-zero vector")
        self._set_spins(self._normal_spins(), n)

    def flip_normal(self) -> None:
        self.set_normal(-self.normal())

    def box_size(self) -> np.ndarray:
        return np.array([self.sizeX.value(), self.sizeY.value(), self.sizeZ.value()])

    def set_box_size(self, size) -> None:
        self._set_spins([self.sizeX, self.sizeY, self.sizeZ], size)

    def set_radius(self, radius_mm: float) -> None:
        self.radiusSpin.setValue(float(radius_mm))

    def _set_spins(self, spins, values) -> None:
        values = [float(v) for v in values]
        for spin, v in zip(spins, values, strict=True):
            spin.blockSignals(True)
            spin.setValue(v)
            spin.blockSignals(False)
        self._tool_edited()

    def set_polygon(self, points, orientation: str | None) -> None:
        """The closed lasso (k x 3 LPS mm) drawn on the ``orientation`` view, or None."""
        if points is None:
            self.polygon, self.polygon_view = None, None
            self.polygonLabel.setText("No polygon drawn")
        else:
            self.polygon = np.asarray(points, dtype=float)
            self.polygon_view = orientation
            self.polygonLabel.setText(
                f"{len(self.polygon)}-corner lasso on the {orientation} view, cut along "
                "its viewing direction"
            )
        self._tool_edited()

    def _clear_polygon(self) -> None:
        self.tool.clear()
        self.set_polygon(None, None)

    def structure_name(self) -> str | None:
        return self.structureCombo.currentData()

    def set_structure(self, name: str) -> None:
        i = self.structureCombo.findData(name)
        if i < 0:
            raise ValueError(f"no structure {name!r} to cut")
        self.structureCombo.setCurrentIndex(i)

    def tool_parameters(self) -> tuple[str, dict[str, Any]]:
        """The tool as the core takes it: kind and plain parameters (LPS mm).

        Raises
        ------
        ValueError
            The polygon tool without a closed lasso.
        """
        kind = self.tool_kind()
        p = [float(v) for v in self.point()]
        if kind == "plane":
            return kind, {"point": p, "normal": [float(v) for v in self.normal()]}
        if kind == "box":
            return kind, {"centre": p, "size": [float(v) for v in self.box_size()]}
        if kind == "sphere":
            return kind, {"centre": p, "radius": float(self.radiusSpin.value())}
        if self.polygon is None or self.polygon_view is None:
            raise ValueError("Draw the lasso on a slice first (double-click closes it)")
        params: dict[str, Any] = {
            "points": self.polygon.tolist(),
            "direction": list(SLICE_VIEW_DIRECTION[self.polygon_view]),
        }
        if self.depthSpin.value() > 0:
            params["depth"] = float(self.depthSpin.value())
        return kind, params

    def _tool_changed(self) -> None:
        kind = self.tool_kind()
        self.toolPages.setCurrentIndex([k for k, _t in TOOLS].index(kind))
        self.pointLabel.setText("Point" if kind == "plane" else "Centre")
        for w in [*self._point_spins(), self.pointLabel, self.cursorButton]:
            w.setVisible(kind != "polygon")
        self.drawButton.setText(DRAW_TEXT[kind])
        self.drawButton.setToolTip(HINTS[kind])
        self.hintLabel.setText(SHORT_HINTS[kind])
        self.tool.clear()
        self._tool_edited()

    def _tool_edited(self, *_args) -> None:
        """The tool changed: the preview no longer shows it."""
        self._clear_preview()
        self._update_plane_widget()
        self.refresh_slices()

    def _structure_changed(self) -> None:
        self._remove_plane_widget()  # its outline follows the structure's bounds
        self._tool_edited()

    def _draw_toggled(self, on: bool) -> None:
        if on:
            self.window.set_tool(self.tool)
            self.window.statusBar().showMessage(HINTS[self.tool_kind()], 8000)
        elif self.window.tool is self.tool:
            self.window.set_tool(None)
        self.tool.clear()
        self.refresh_slices()

    def plane_from_line(self, a, b, orientation: str) -> bool:
        """Set the plane from a line drawn on a slice view (LPS mm): it contains the line and
        the view's direction; its normal points away from the structure's centre."""
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if np.linalg.norm(b - a) < MIN_LINE_MM:
            return False
        n = unit_vector(np.cross(b - a, SLICE_VIEW_DIRECTION[orientation]))
        if n is None:
            return False
        centre = self._structure_centre()
        mid = (a + b) / 2
        if centre is not None and np.dot(centre - mid, n) > 0:
            n = -n
        self._set_spins(self._point_spins(), mid)
        self.set_normal(n)
        return True

    def _structure_centre(self) -> np.ndarray | None:
        mesh = self._structure_mesh()
        return None if mesh is None or len(mesh.points) == 0 else mesh.points.mean(axis=0)

    def _structure_mesh(self):
        plan, name = self.session.plan, self.structure_name()
        if plan is None or not name or name not in plan.structures:
            return None
        s = plan.structures[name]
        if s.mesh is not None:
            return s.mesh
        try:  # the session's geometry caches a label structure's surface
            return (self.session.geometry or CaseGeometry(plan)).mesh(s)
        except SurgTwinError:
            return None

    # ---------------------------------------------------------------- case and plan

    def _on_case(self) -> None:
        self._commands.clear()
        self._clear_preview()
        self._clear_result()
        self.tool.clear()
        self.set_polygon(None, None)
        self._refresh_structures()
        self._refresh_cuts()
        self._refresh_targets()
        if self.session.plan is not None:
            self.set_point(self.session.cursor)

    def _on_plan_event(self, event) -> None:
        if event.name == "structures":
            self._refresh_structures()
            self._refresh_targets()
        if event.name == "cuts":
            self._refresh_cuts()
        if event.name in ("structures", "cuts", "labelmap", "labelmap_voxels"):
            self._clear_preview()

    def _refresh_structures(self) -> None:
        plan = self.session.plan
        current = self.structure_name()
        self.structureCombo.blockSignals(True)
        self.structureCombo.clear()
        if plan is not None:
            for s in plan.structures.values():
                if s.role != "target":
                    self.structureCombo.addItem(s.name, s.name)
        i = self.structureCombo.findData(current) if current else -1
        if i < 0 and plan is not None:
            i = next(
                (
                    self.structureCombo.findData(s.name)
                    for s in plan.structures.values()
                    if s.role == "bone"
                ),
                0,
            )
        self.structureCombo.setCurrentIndex(max(i, 0))
        self.structureCombo.blockSignals(False)
        if self.structure_name() != current:
            self._structure_changed()

    def _refresh_targets(self) -> None:
        plan = self.session.plan
        targets = (
            [] if plan is None else [s for s in plan.structures.values() if s.role == "target"]
        )
        if not targets:
            self.targetsLabel.setText(
                "No target structure: the margin is reported once the plan has one."
            )
            return
        parts = []
        for s in targets:
            if s.mesh is not None:
                parts.append(f"{s.name} ({abs(s.mesh.volume_mm3()):,.0f} mm³)")
            else:
                parts.append(s.name)
        self.targetsLabel.setText("Margins are reported around: " + ", ".join(parts))

    def _refresh_cuts(self) -> None:
        self.cutList.clear()
        plan = self.session.plan
        if plan is None:
            return
        for cut in plan.cuts.values():
            p = cut.parameters
            text = f"{cut.name}: {cut.structure}, {cut.tool}"
            removed = p.get("removed_mm3")
            if isinstance(removed, int | float):
                text += f", {removed:,.0f} mm³ removed"
            margin = p.get("margin_mm")
            if isinstance(margin, int | float):
                text += f", margin {margin:.1f} mm"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, cut.name)
            self.cutList.addItem(item)
        self.cutList.setCurrentRow(self.cutList.count() - 1)

    # ---------------------------------------------------------------- preview and apply

    def _request(self) -> tuple | None:
        plan, name = self.session.plan, self.structure_name()
        if plan is None or not name:
            self._say("Open a case and choose a structure to cut")
            return None
        try:
            kind, params = self.tool_parameters()
        except ValueError as exc:
            self._say(str(exc))
            return None
        return name, kind, params

    def _key(self, request: tuple) -> tuple:
        name, kind, params = request
        return (name, kind, repr(params), self.session.stack.revision)

    def preview(self) -> None:
        """Compute the cut on a worker and show the part removed (nothing changes yet)."""
        request = self._request()
        if request is not None:
            self._run(request, apply=False)

    def apply(self) -> None:
        """Cut the structure: one undoable step (the previewed command when still current)."""
        request = self._request()
        if request is None:
            return
        if self.prepared is not None and self._prepared_key == self._key(request):
            self._push(self.prepared)
        else:
            self._run(request, apply=True)

    def _run(self, request: tuple, apply: bool) -> None:
        plan = self.session.plan
        name, kind, params = request
        key = self._key(request)
        self._token += 1
        token = self._token

        def work(_progress, _cancel):
            try:
                return cut_structure(plan, name, kind, params, geometry=CaseGeometry(plan))
            except SurgTwinError as exc:  # a cut that misses, bad parameters: say so
                return exc

        def done(result) -> None:
            if token != self._token or self.session.plan is not plan:
                return
            if isinstance(result, Exception):
                self._clear_result()
                self._say(str(result))
                return
            if self._key(request) != key:
                self._say("The plan changed while the cut was computed: preview it again")
                return
            self.prepared, self._prepared_key = result, key
            if apply:
                self._push(result)
            else:
                self._show_preview(result)

        self.window.run_job("Applying the cut" if apply else "Previewing the cut", work, done)

    def _push(self, command: CutStructure) -> None:
        self._clear_preview()
        self.session.push(command)
        self._commands[command.cut.name] = command
        self.prepared, self._prepared_key = command, None
        self._show_result(command, applied=True)
        self.window.statusBar().showMessage(f"{command.name}: {command.cut.name} applied", 6000)
        self.window.refresh_views()

    def _show_preview(self, command: CutStructure) -> None:
        self._clear_preview(keep_prepared=True)
        plotter = self.window.view3d.plotter
        name = command.structure
        s = self.session.plan.structures[name]
        # the part kept is see-through, so the part removed shows wherever it lies
        remaining = plotter.add_mesh(
            command.remaining.to_pyvista(),
            color=s.color,
            opacity=PREVIEW_KEPT_OPACITY,
            smooth_shading=True,
            name="resect:remaining",
            render=False,
        )
        self._preview_actors.append(remaining)
        if len(command.resected.faces):
            removed = plotter.add_mesh(
                command.resected.to_pyvista(),
                color=PREVIEW_RED,
                opacity=0.75,
                smooth_shading=True,
                name="resect:resected",
                render=False,
            )
            self._preview_actors.append(removed)
        self.window.view3d.set_structure_visible(name, False)
        self._hidden_structure = name
        self._show_result(command, applied=False)
        self.window.view3d.request_render()

    def _clear_preview(self, keep_prepared: bool = False) -> None:
        if self._preview_actors:
            plotter = self.window.view3d.plotter
            for actor in self._preview_actors:
                plotter.remove_actor(actor, render=False)
            self._preview_actors = []
            self.window.view3d.request_render()
        name, self._hidden_structure = self._hidden_structure, None
        plan = self.session.plan
        if name and plan is not None and name in plan.structures:
            self.window.view3d.set_structure_visible(name, plan.structures[name].visible)
        if self._prepared_key is not None and not keep_prepared:
            self.prepared, self._prepared_key = None, None
            self._clear_result()  # the numbers were those of the preview

    @property
    def previewing(self) -> bool:
        return bool(self._preview_actors)

    def result(self) -> dict[str, Any] | None:
        """The numbers of the last preview or cut: ``removed_mm3``, ``remaining_mm3``,
        ``structure_mm3`` (mm³), ``margin_mm`` (mm or None), ``target_removed`` (bool or
        None)."""
        return None if self.prepared is None else dict(self.prepared.cut.parameters)

    def _show_result(self, command: CutStructure, applied: bool) -> None:
        p = command.cut.parameters
        total = float(p.get("structure_mm3") or 0.0)
        removed, remaining = float(p["removed_mm3"]), float(p["remaining_mm3"])
        share = f" ({100 * removed / total:.1f} %)" if total else ""
        self.resultBox.setTitle(
            f"Result: {command.cut.name} applied" if applied else "Result: preview (not applied)"
        )
        self.removedLabel.setText(_fmt_mm3(removed) + share)
        self.remainingLabel.setText(_fmt_mm3(remaining))
        margin, removed_all = p.get("margin_mm"), p.get("target_removed")
        targets = ", ".join(p.get("targets") or [])
        if removed_all is None:
            self.marginLabel.setText("no target structure")
            self.targetLabel.setText("-")
            role = ""
        else:
            self.marginLabel.setText(
                "nothing left near the target" if margin is None else f"{margin:.1f} mm"
            )
            if removed_all:
                self.targetLabel.setText(f"{targets}: fully removed")
                role = "status-ok" if margin is None or margin >= 2.0 else "status-warn"
            else:
                self.targetLabel.setText(f"{targets}: NOT fully removed")
                role = "status-fail"
        for label in (self.targetLabel, self.marginLabel):
            set_style_role(label, role)

    def _clear_result(self) -> None:
        self.resultBox.setTitle("Result")
        for label in (self.removedLabel, self.remainingLabel, self.marginLabel, self.targetLabel):
            label.setText("-")
            label.setProperty("role", "")

    def _say(self, text: str) -> None:
        self.hintLabel.setText(text)
        self.window.statusBar().showMessage(text, 8000)

    # ---------------------------------------------------------------- cuts list

    def selected_cut(self) -> str | None:
        item = self.cutList.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def remove_selected_cut(self) -> None:
        name = self.selected_cut()
        if name is not None:
            self.remove_cut(name)

    def remove_cut(self, name: str) -> bool:
        """Remove a cut and give its structure back what it removed (one undoable step).

        Only the latest cut of a structure made in this session can be removed this way; for
        the others the user undoes the later cuts first."""
        plan = self.session.plan
        if plan is None or name not in plan.cuts:
            return False
        command = self._commands.get(name)
        s = plan.structures.get(plan.cuts[name].structure)
        if command is None or s is None or s.mesh is not command.remaining:
            self._say(
                f"{name} cannot be removed on its own: the structure was cut again or edited "
                "since (undo those steps first), or the cut was made in another session."
            )
            return False
        self._clear_preview()
        self.session.push(_RevertCut(command))
        self._clear_result()
        self.window.refresh_views()
        return True

    # ---------------------------------------------------------------- targets

    def grow_target(self) -> None:
        """Grow a target structure (a lesion) from the crosshair: the connected region within
        ± tolerance HU of the value there (one undoable step)."""
        plan, volume = self.session.plan, self.session.volume
        if plan is None or volume is None:
            self._say("Open a DICOM case first")
            return
        seed = np.asarray(self.session.cursor, dtype=float)
        try:
            hu = self._seed_hu(volume, seed)
        except (SurgTwinError, IndexError, ValueError) as exc:
            self._say(f"Cannot grow a target here: {exc}")
            return
        tol = float(self.toleranceSpin.value())
        n = 1
        while f"Target {n}" in plan.structures:
            n += 1
        name = f"Target {n}"

        def work(_progress, _cancel):
            from surgtwin.geometry.surface import mask_to_mesh

            try:
                mask = grow_structure(volume, [seed], (hu - tol, hu + tol))
            except SurgTwinError as exc:
                return exc
            mm3 = float(mask.sum()) * volume.geometry.voxel_volume_mm3
            if mm3 > MAX_TARGET_MM3:
                return SurgTwinError(
                    f"the region of {hu - tol:.0f}..{hu + tol:.0f} HU reaches {mm3 / 1000:.0f} "
                    "ml from the crosshair: it leaks out of the lesion; narrow the ± HU"
                )
            colour = (0.85, 0.2, 0.2)
            return mask_to_mesh(mask, volume.geometry, name=name, color=colour, role="target")

        def done(result) -> None:
            if isinstance(result, Exception):
                self._say(f"Cannot grow a target here: {result}")
                return
            if self.session.plan is not plan:
                return
            structure = Structure(
                name, "target", result.color, opacity=0.8, source="mesh", mesh=result
            )
            self.session.push(AddStructure(plan, structure, name=f"Grow {name}"))
            self.window.statusBar().showMessage(
                f"{name}: {abs(result.volume_mm3()):,.0f} mm³ ({hu - tol:.0f}..{hu + tol:.0f} HU)",
                8000,
            )

        self.window.run_job("Growing the target", work, done)

    @staticmethod
    def _seed_hu(volume, seed: np.ndarray) -> float:
        """Median HU of the 3 x 3 x 3 voxels around ``seed`` (steadier than one noisy voxel)."""
        g = volume.geometry
        i, j, k = (int(v) for v in np.rint(g.lps_to_index(seed[None, :])[0]))
        arr = volume.array
        box = arr[
            max(k - 1, 0) : k + 2,
            max(j - 1, 0) : j + 2,
            max(i - 1, 0) : i + 2,
        ]
        if box.size == 0:
            raise ValueError("the crosshair lies outside the volume")
        return float(np.median(box))

    # ---------------------------------------------------------------- 3-D plane handle

    def _update_plane_widget(self) -> None:
        if self._syncing_widget:
            return
        show = (
            self.isVisible()
            and self.tool_kind() == "plane"
            and self.planeHandleCheck.isChecked()
            and self.session.plan is not None
        )
        plotter = self.window.view3d.plotter
        if not show:
            self._remove_plane_widget()
            return
        normal, origin = self.normal(), self.point()
        self._syncing_widget = True
        try:
            if self._plane_widget is None:
                mesh = self._structure_mesh()
                bounds = None
                if mesh is not None and len(mesh.points):
                    lo, hi = mesh.points.min(axis=0), mesh.points.max(axis=0)
                    bounds = (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
                self._plane_widget = plotter.add_plane_widget(
                    self._plane_moved,
                    normal=tuple(normal),
                    origin=tuple(origin),
                    bounds=bounds,
                    factor=1.05,
                    color=(1.0, 0.6, 0.15),
                    outline_translation=False,
                    implicit=True,
                    test_callback=False,
                    interaction_event="end",
                )
            else:
                self._plane_widget.SetNormal(*normal)
                self._plane_widget.SetOrigin(*origin)
        finally:
            self._syncing_widget = False
        self.window.view3d.request_render()

    def _remove_plane_widget(self) -> None:
        widget, self._plane_widget = self._plane_widget, None
        if widget is None:
            return
        plotter = self.window.view3d.plotter
        widgets = getattr(plotter, "widgets", plotter).plane_widgets
        if widget.GetInteractor() is not None:
            widget.Off()
        if widget in widgets:
            widgets.remove(widget)
        self.window.view3d.request_render()

    def _plane_moved(self, normal, origin) -> None:
        """The 3-D plane handle was dragged: take its plane."""
        if self._syncing_widget:
            return
        self._set_spins(self._point_spins(), origin)
        self.set_normal(normal)

    @property
    def plane_widget(self):
        """The 3-D plane handle (a ``vtkImplicitPlaneWidget``), or None when hidden."""
        return self._plane_widget

    # ---------------------------------------------------------------- showing

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._update_plane_widget()
        self.refresh_slices()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.drawButton.setChecked(False)
        self._clear_preview()
        self._update_plane_widget()
        self.refresh_slices()

    def refresh_slices(self) -> None:
        for view in self.window.slice_views.values():
            view.update()

    def draw_overlay(self, p: QPainter, view) -> None:
        """The tool where it meets the slice (orange), and the line or lasso being drawn."""
        if not self.isVisible() or self.session.slicer is None:
            return
        self.tool.draw(p, view)
