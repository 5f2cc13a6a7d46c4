"""The expert's plan over the trainee's, once an attempt is scored: translucent violet implants
and cut tools in the 3-D view, dashed violet outlines on the slice views."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PyQt6.QtCore import QPointF, Qt
from PyQt6.QtGui import QColor, QPainter, QPen, QPolygonF

from surgtwin.app.view3d import vtk_matrix
from surgtwin.planning.plan import Cut, Implant

__all__ = ["EXPERT_COLOUR", "ExpertOverlay", "plane_section"]

#: The expert plan's colour (RGB 0..1): violet, apart from the margin colours of implants.
EXPERT_COLOUR = (0.66, 0.48, 1.0)
EXPERT_OPACITY = 0.45
ACTOR_PREFIX = "expert:"


def plane_section(
    points: np.ndarray, faces: np.ndarray, origin: np.ndarray, normal: np.ndarray
) -> np.ndarray:
    """Where a triangle mesh crosses a plane: ``(k, 2, 3)`` line segments (LPS mm).

    Parameters
    ----------
    points : (n, 3) array
        Vertices, mm.
    faces : (m, 3) int array
    origin, normal : (3,) arrays
        A point of the plane and its normal (any length).
    """
    points = np.asarray(points, dtype=float)
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    normal = np.asarray(normal, dtype=float)
    normal = normal / np.linalg.norm(normal)
    d = (points - np.asarray(origin, dtype=float)) @ normal
    d = np.where(np.abs(d) < 1e-9, 1e-9, d)  # a vertex on the plane counts as above it
    dt = d[faces]
    crossing = (dt.min(axis=1) < 0) & (dt.max(axis=1) > 0)
    faces, dt = faces[crossing], dt[crossing]
    if not len(faces):
        return np.zeros((0, 2, 3))
    ends, hits = [], []
    for i, j in ((0, 1), (1, 2), (2, 0)):
        di, dj = dt[:, i], dt[:, j]
        hit = (di < 0) != (dj < 0)
        t = np.divide(di, di - dj, out=np.zeros_like(di), where=hit)
        a, b = points[faces[:, i]], points[faces[:, j]]
        ends.append(a + t[:, None] * (b - a))
        hits.append(hit)
    ends = np.stack(ends, axis=1)  # (k, 3 edges, 3)
    hits = np.stack(hits, axis=1)  # exactly two edges of a crossing triangle cross
    return ends[hits].reshape(-1, 2, 3)


class ExpertOverlay:
    """Shows (or hides) expert implants and cuts over the window's views.

    Nothing is shown until :meth:`show` is given the expert's records, which the training mode
    does only after the attempt was scored and the scenario unlocked.
    """

    def __init__(self, window):
        self.window = window
        self.implants: list[Implant] = []
        self.cuts: list[Cut] = []
        self.visible = False
        self._actors: list = []
        self._cut_meshes: list = []
        self._sections: dict[tuple, np.ndarray] = {}
        for view in window.slice_views.values():
            view.overlays.append(self.draw)

    @property
    def shown(self) -> bool:
        """Whether anything of an expert plan is on screen."""
        return self.visible and bool(self.implants or self.cuts)

    def actor_names(self) -> list[str]:
        """Names of the expert actors in the 3-D view."""
        renderer = self.window.view3d.plotter.renderer
        return [k for k in renderer.actors if str(k).startswith(ACTOR_PREFIX)]

    def show(self, implants: Iterable[Implant], cuts: Iterable[Cut] = ()) -> None:
        """Overlay these expert records (replacing any shown before)."""
        self.clear()
        self.implants, self.cuts = list(implants), list(cuts)
        self._build_actors()
        self.set_visible(True)

    def set_visible(self, on: bool) -> None:
        self.visible = bool(on)
        for actor in self._actors:
            actor.SetVisibility(self.visible)
        self.window.refresh_views()

    def clear(self) -> None:
        """Remove everything (a new attempt starts blind again)."""
        plotter = self.window.view3d.plotter
        for actor in self._actors:
            plotter.remove_actor(actor, render=False)
        self._actors.clear()
        self._cut_meshes.clear()
        self._sections.clear()
        self.implants, self.cuts = [], []
        self.visible = False
        self.window.refresh_views()

    # ---------------------------------------------------------------- 3-D

    def _build_actors(self) -> None:
        from surgtwin.geometry.resection import make_tool
        from surgtwin.planning.checks import implant_samples

        plotter = self.window.view3d.plotter
        for record in self.implants:
            try:
                local = implant_samples(record).mesh
            except Exception:  # an implant the library cannot draw is left out
                continue
            actor = plotter.add_mesh(
                local.to_pyvista(),
                name=f"{ACTOR_PREFIX}{record.name}",
                color=EXPERT_COLOUR,
                opacity=EXPERT_OPACITY,
                smooth_shading=True,
                render=False,
            )
            actor.SetUserMatrix(vtk_matrix(np.asarray(record.pose)))
            self._actors.append(actor)
        for cut in self.cuts:
            try:
                mesh = make_tool(cut.tool, cut.parameters).to_mesh()
            except Exception:
                continue
            self._cut_meshes.append(mesh)
            surface = plotter.add_mesh(
                mesh.to_pyvista(),
                name=f"{ACTOR_PREFIX}{cut.name}",
                color=EXPERT_COLOUR,
                opacity=0.25,
                render=False,
            )
            edges = plotter.add_mesh(
                mesh.to_pyvista().extract_feature_edges(30.0),
                name=f"{ACTOR_PREFIX}{cut.name} edges",
                color=EXPERT_COLOUR,
                line_width=2,
                render=False,
            )
            self._actors += [surface, edges]

    # ---------------------------------------------------------------- slices

    def draw(self, p: QPainter, view) -> None:
        """Dashed outlines of the expert implants and of the cut tools' cross-sections."""
        if not self.shown or view.session.slicer is None:
            return
        from surgtwin.planning.checks import entry_and_tip
        from surgtwin.planning.implants import ImplantSpec

        mmpp = view.mm_per_pixel()
        p.setBrush(Qt.BrushStyle.NoBrush)
        for record in self.implants:
            try:
                entry, tip = entry_and_tip(record)
            except Exception:
                continue
            key = record.spec_key or record.kind
            spec = ImplantSpec(key, record.kind, key, "", dict(record.parameters))
            radius = max(1.5, (spec.diameter_mm or 3.0) / 2.0 / mmpp)
            a, da = view.lps_to_widget(entry)
            b, db = view.lps_to_widget(tip)
            near = min(abs(da), abs(db)) < 3.0 or da * db < 0
            pen = QPen(_qcolor(EXPERT_COLOUR, 240 if near else 100), 2.0 if near else 1.2)
            pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            dx, dy = b.x() - a.x(), b.y() - a.y()
            length = float(np.hypot(dx, dy))
            if length < 1.0:  # the implant points through the slice
                p.drawEllipse(a, radius, radius)
                continue
            nx, ny = -dy / length * radius, dx / length * radius
            p.drawPolygon(
                QPolygonF(
                    [
                        QPointF(a.x() + nx, a.y() + ny),
                        QPointF(b.x() + nx, b.y() + ny),
                        QPointF(b.x() - nx, b.y() - ny),
                        QPointF(a.x() - nx, a.y() - ny),
                    ]
                )
            )
        if self._cut_meshes:
            pen = QPen(_qcolor(EXPERT_COLOUR, 240), 2.0)
            pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            for segment in self._section(view):
                a, _ = view.lps_to_widget(segment[0])
                b, _ = view.lps_to_widget(segment[1])
                p.drawLine(a, b)

    def _section(self, view) -> np.ndarray:
        """The cut tools' cross-section with the view's plane (cached per plane)."""
        normal = view.normal_vector()
        if view.plane is not None:
            origin = view.plane[0]
        else:
            origin = view.session.slicer.pixel_to_lps(view.orientation, view.index, 0, 0)
        key = (tuple(np.round(normal, 6)), round(float(np.asarray(origin) @ normal), 4))
        if key not in self._sections:
            parts = [plane_section(m.points, m.faces, origin, normal) for m in self._cut_meshes]
            self._sections[key] = np.concatenate(parts) if parts else np.zeros((0, 2, 3))
            if len(self._sections) > 64:
                self._sections.pop(next(iter(self._sections)))
        return self._sections[key]


def _qcolor(rgb, alpha: int = 255) -> QColor:
    return QColor(int(255 * rgb[0]), int(255 * rgb[1]), int(255 * rgb[2]), alpha)
