"""A 2-D slice view (axial, coronal or sagittal) painted with QPainter.

Linked crosshair (the session's cursor), click to navigate, wheel to scroll slices, Ctrl+wheel
to zoom, middle drag to pan, right drag for window/level, the label overlay, orientation letters
on every edge, and overlays drawn by panels (implants, measurements, cut tools). A panel that
needs the mouse (placing an implant, a lasso) installs a *tool*: an object with optional
``press(view, lps, event)``, ``move(view, lps, event)`` and ``release(view, lps, event)``
methods returning True when they consumed the event.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

from surgtwin.app.slicing import AXES, WINDOW_PRESETS

__all__ = ["OBLIQUE_HALF_MM", "SliceView"]

#: Half the side of an oblique view's square (mm).
OBLIQUE_HALF_MM = 45.0

Overlay = Callable[[QPainter, "SliceView"], None]


class SliceView(QWidget):
    """One orientation of the session's volume and label map.

    Signals
    -------
    clicked(ndarray) : a left click that no tool consumed, at this LPS point (mm)
    """

    clicked = pyqtSignal(object)

    def __init__(self, session, orientation: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(f"{orientation}View")
        self.session = session
        self.orientation = orientation
        self.axes = AXES[orientation]
        self.index = 0
        self.zoom = 1.0
        self.pan = QPointF(0.0, 0.0)
        self.window_centre, self.window_width = WINDOW_PRESETS["bone"]
        self.overlay_opacity = 0.45
        self.tool = None
        self.overlays: list[Overlay] = []
        self._image: QImage | None = None
        self._overlay: QImage | None = None
        self._buffers: list[np.ndarray] = []
        self._drag: tuple[str, QPointF, tuple] | None = None
        self._lut: np.ndarray | None = None
        self._version = 0
        #: (centre, h, v, letters) when the view shows an oblique plane (LPS mm, unit vectors)
        self.plane: tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]] | None = None
        self.plane_half_mm = OBLIQUE_HALF_MM
        self._pixmap: QPixmap | None = None
        self._pixmap_key: tuple | None = None
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAutoFillBackground(False)
        session.caseChanged.connect(self._on_case)
        session.cursorChanged.connect(self._on_cursor)
        session.planEvent.connect(self._on_plan_event)

    # ---------------------------------------------------------------- data

    def _on_case(self) -> None:
        self._lut = None
        self.zoom, self.pan = 1.0, QPointF(0.0, 0.0)
        self._on_cursor(self.session.cursor)
        self._rebuild(image=True, overlay=True)

    def _on_cursor(self, point) -> None:
        sl = self.session.slicer
        if sl is None or self.plane is not None:
            self.update()
            return
        index = sl.slice_index(self.orientation, point)
        if index != self.index:
            self.index = index
            self._rebuild(image=True, overlay=True)
        self.update()

    def _on_plan_event(self, event) -> None:
        if event.name in ("labelmap", "labelmap_voxels") or event.name == "structures":
            self._lut = None
            self._rebuild(image=False, overlay=True)
        elif event.name != "implants":  # the implants panel repaints where an implant moved
            self.update()

    def set_window(self, centre: float, width: float) -> None:
        self.window_centre, self.window_width = float(centre), max(1.0, float(width))
        self._rebuild(image=True, overlay=False)

    def set_preset(self, name: str) -> None:
        self.set_window(*WINDOW_PRESETS[name])

    def set_oblique(self, centre, h, v, letters=("", "", "", "")) -> None:
        """Show the plane through ``centre`` spanned by ``h`` (screen right) and ``v`` (screen
        up), LPS; ``letters`` label the edges (left, right, top, bottom)."""
        h = np.asarray(h, float) / np.linalg.norm(h)
        v = np.asarray(v, float) / np.linalg.norm(v)
        self.plane = (np.asarray(centre, float), h, v, tuple(letters))
        self._rebuild(image=True, overlay=True)

    def clear_oblique(self) -> None:
        if self.plane is not None:
            self.plane = None
            self._on_cursor(self.session.cursor)
            self._rebuild(image=True, overlay=True)

    def normal_vector(self) -> np.ndarray:
        """Unit LPS normal of the shown plane."""
        if self.plane is not None:
            n = np.cross(self.plane[1], self.plane[2])
            return n / np.linalg.norm(n)
        n = np.zeros(3)
        n[self.axes.normal] = 1.0
        return n

    def set_index(self, index: int) -> None:
        sl = self.session.slicer
        if sl is None:
            return
        if self.plane is not None:  # an oblique plane scrolls 1 mm per step
            centre, h, v, letters = self.plane
            step = float(np.sign(index - self.index)) if index != self.index else 0.0
            self.plane = (centre + step * self.normal_vector(), h, v, letters)
            self._rebuild(image=True, overlay=True)
            return
        index = int(np.clip(index, 0, sl.n_slices(self.orientation) - 1))
        if index == self.index:
            return
        # move the cursor onto the new slice: all views follow
        col, row, _ = sl.lps_to_pixel(self.orientation, self.session.cursor)
        self.session.set_cursor(sl.pixel_to_lps(self.orientation, index, col, row))

    def _label_lut(self) -> np.ndarray:
        lut = np.zeros((256, 4), dtype=np.uint8)
        plan = self.session.plan
        lm = plan.labelmap if plan is not None else None
        if lm is None:
            return lut
        visible = {
            s.label_value: s.visible
            for s in plan.structures.values()
            if s.source == "label" and s.label_value is not None
        }
        for value, label in lm.labels.items():
            if not (label.visible and visible.get(value, True)):
                continue
            r, g, b = (round(255 * c) for c in label.color)
            lut[value] = (b, g, r, int(255 * self.overlay_opacity * label.opacity))
        return lut

    def _rebuild(self, image: bool, overlay: bool) -> None:
        sl = self.session.slicer
        if sl is None:
            self._image = self._overlay = None
            self.update()
            return
        if self.plane is not None:
            self._rebuild_oblique(image, overlay)
            return
        if image:
            self._show_image(lambda array: sl.image(array, self.orientation, self.index))
        if overlay:
            self._show_labels(lambda labels: sl.image(labels, self.orientation, self.index))
        self._version += 1
        self.update()

    def _show_image(self, sample: Callable[[np.ndarray], np.ndarray]) -> None:
        """The grey image: ``sample(volume array)`` gives the 2-D slice of the volume."""
        vol = self.session.volume
        if vol is not None:
            self._set_grey(sample(vol.array))
        else:
            self._image = None

    def _show_labels(self, sample: Callable[[np.ndarray], np.ndarray]) -> None:
        """The label overlay: ``sample(label array)`` gives the 2-D slice of the label map."""
        plan = self.session.plan
        lm = plan.labelmap if plan is not None else None
        if lm is not None:
            if self._lut is None:
                self._lut = self._label_lut()
            self._set_overlay(sample(np.asarray(lm.array)))
        else:
            self._overlay = None

    def _plane_points(self) -> tuple[np.ndarray, int]:
        centre, h, v, _ = self.plane
        spacing = min(self.session.slicer.geometry.spacing) / 2.0
        s = np.arange(-self.plane_half_mm, self.plane_half_mm + 1e-9, spacing)
        uu, ww = np.meshgrid(s, s[::-1])
        return centre + uu[..., None] * h + ww[..., None] * v, len(s)

    def _rebuild_oblique(self, image: bool, overlay: bool) -> None:
        from surgtwin.planning.report_render import resample_plane

        sl = self.session.slicer
        centre, h, v, _ = self.plane
        geom = sl.geometry
        spacing = min(geom.spacing) / 2.0
        if image:
            self._show_image(
                lambda array: resample_plane(
                    array, geom.lps_to_index, centre, h, v, self.plane_half_mm, spacing
                )
            )
        if overlay:
            self._show_labels(self._plane_labels)
        self._version += 1
        self.update()

    def _plane_labels(self, labels: np.ndarray) -> np.ndarray:
        """The label values on the oblique plane (nearest voxel; 0 outside the volume)."""
        geom = self.session.slicer.geometry
        pts, n = self._plane_points()
        ijk = np.rint(geom.lps_to_index(pts.reshape(-1, 3))).astype(np.int64)
        size = np.array(geom.size)
        inside = np.all((ijk >= 0) & (ijk < size), axis=1)
        ijk = np.clip(ijk, 0, size - 1)
        values = labels[ijk[:, 2], ijk[:, 1], ijk[:, 0]]
        return np.where(inside, values, 0).reshape(n, n).astype(np.uint8)

    def _set_grey(self, raw: np.ndarray) -> None:
        lo = self.window_centre - self.window_width / 2
        scaled = (raw.astype(np.float32) - lo) * (255.0 / self.window_width)
        grey = np.ascontiguousarray(np.clip(scaled, 0, 255).astype(np.uint8))
        h, w = grey.shape
        self._grey = grey
        self._image = QImage(grey.data, w, h, w, QImage.Format.Format_Grayscale8)

    def _set_overlay(self, labels: np.ndarray) -> None:
        rgba = np.ascontiguousarray(self._lut[labels])
        h, w = labels.shape
        self._rgba = rgba
        self._overlay = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_ARGB32)

    # ---------------------------------------------------------------- geometry

    def image_rect(self) -> QRectF:
        """Where the slice image is drawn (widget pixels), keeping the mm aspect ratio."""
        sl = self.session.slicer
        if sl is None:
            return QRectF(0, 0, self.width(), self.height())
        if self.plane is not None:
            wmm = hmm = 2 * self.plane_half_mm
        else:
            ncol, nrow = sl.image_size(self.orientation)
            sx, sy = sl.pixel_spacing(self.orientation)
            wmm, hmm = ncol * sx, nrow * sy
        scale = min(self.width() / wmm, self.height() / hmm) * self.zoom
        w, h = wmm * scale, hmm * scale
        x = (self.width() - w) / 2 + self.pan.x()
        y = (self.height() - h) / 2 + self.pan.y()
        return QRectF(x, y, w, h)

    def widget_to_lps(self, pos: QPointF) -> np.ndarray | None:
        sl = self.session.slicer
        if sl is None:
            return None
        r = self.image_rect()
        if self.plane is not None:
            centre, h, v, _ = self.plane
            u = ((pos.x() - r.x()) / r.width() - 0.5) * 2 * self.plane_half_mm
            w = (0.5 - (pos.y() - r.y()) / r.height()) * 2 * self.plane_half_mm
            return centre + u * h + w * v
        ncol, nrow = sl.image_size(self.orientation)
        col = (pos.x() - r.x()) / r.width() * ncol - 0.5
        row = (pos.y() - r.y()) / r.height() * nrow - 0.5
        return sl.pixel_to_lps(self.orientation, self.index, col, row)

    def lps_to_widget(self, point_lps) -> tuple[QPointF, float]:
        """Widget position of an LPS point and its distance from this slice's plane (mm)."""
        sl = self.session.slicer
        r = self.image_rect()
        if self.plane is not None:
            centre, h, v, _ = self.plane
            d = np.asarray(point_lps, float) - centre
            u, w = float(d @ h), float(d @ v)
            x = r.x() + (u / (2 * self.plane_half_mm) + 0.5) * r.width()
            y = r.y() + (0.5 - w / (2 * self.plane_half_mm)) * r.height()
            return QPointF(x, y), float(d @ self.normal_vector())
        ncol, nrow = sl.image_size(self.orientation)
        col, row, depth = sl.lps_to_pixel(self.orientation, point_lps)
        x = r.x() + (col + 0.5) / ncol * r.width()
        y = r.y() + (row + 0.5) / nrow * r.height()
        normal_spacing = sl.lps_spacing[self.axes.normal]
        return QPointF(x, y), (depth - self.index) * normal_spacing

    def mm_per_pixel(self) -> float:
        sl = self.session.slicer
        if sl is None:
            return 1.0
        if self.plane is not None:
            return 2 * self.plane_half_mm / max(self.image_rect().width(), 1e-6)
        ncol, _ = sl.image_size(self.orientation)
        sx, _ = sl.pixel_spacing(self.orientation)
        return ncol * sx / max(self.image_rect().width(), 1e-6)

    def slice_position_mm(self) -> float:
        """Position of the shown slice along its normal (LPS mm: x, y or z)."""
        p = self.session.slicer.pixel_to_lps(self.orientation, self.index, 0, 0)
        return float(p[self.axes.normal])

    # ---------------------------------------------------------------- painting

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0))
        if self.session.slicer is None:
            p.setPen(QColor(140, 140, 140))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Open a DICOM series")
            p.end()
            return
        r = self.image_rect()
        p.drawPixmap(r.topLeft(), self._scaled(r))
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self._draw_crosshair(p)
        for overlay in list(self.overlays):
            overlay(p, self)
        self._draw_letters(p)
        p.end()

    def _scaled(self, r: QRectF) -> QPixmap:
        """The slice and its label overlay at the drawn size, cached until either changes
        (while an implant is dragged only the overlays are redrawn)."""
        key = (self._version, round(r.width()), round(r.height()))
        if self._pixmap_key != key:
            w, h = max(1, key[1]), max(1, key[2])
            pix = QPixmap(w, h)
            pix.fill(QColor(0, 0, 0))
            painter = QPainter(pix)
            target = QRectF(0, 0, w, h)
            if self._image is not None:
                painter.drawImage(target, self._image)
            if self._overlay is not None:
                painter.drawImage(target, self._overlay)
            painter.end()
            self._pixmap, self._pixmap_key = pix, key
        return self._pixmap

    def _draw_crosshair(self, p: QPainter) -> None:
        pos, _ = self.lps_to_widget(self.session.cursor)
        p.setPen(QPen(QColor(255, 210, 60, 110), 1))  # solid: dashes cost while dragging
        p.drawLine(QPointF(pos.x(), 0), QPointF(pos.x(), self.height()))
        p.drawLine(QPointF(0, pos.y()), QPointF(self.width(), pos.y()))

    def _draw_letters(self, p: QPainter) -> None:
        left, right, top, bottom = self.plane[3] if self.plane is not None else self.axes.letters
        f = QFont(self.font())
        f.setPointSize(12)
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor(255, 220, 120))
        w, h = self.width(), self.height()
        p.drawText(QRectF(4, 0, 30, h), Qt.AlignmentFlag.AlignVCenter, left)
        p.drawText(QRectF(w - 24, 0, 20, h), Qt.AlignmentFlag.AlignVCenter, right)
        p.drawText(QRectF(0, 2, w, 20), Qt.AlignmentFlag.AlignHCenter, top)
        p.drawText(QRectF(0, h - 22, w, 20), Qt.AlignmentFlag.AlignHCenter, bottom)
        f.setPointSize(9)
        f.setBold(False)
        p.setFont(f)
        p.setPen(QColor(200, 200, 200))
        if self.plane is not None:
            title = f"{self.orientation.capitalize()}-oblique along the implant"
        else:
            axis = "xyz"[self.axes.normal]
            n = self.session.slicer.n_slices(self.orientation)
            oblique = " (nearest orthogonal)" if self.session.slicer.oblique else ""
            title = (
                f"{self.orientation.capitalize()}{oblique}  {self.index + 1}/{n}  "
                f"{axis} = {self.slice_position_mm():.1f} mm"
            )
        p.drawText(QRectF(6, 4, w - 12, 18), Qt.AlignmentFlag.AlignLeft, title)
        p.drawText(
            QRectF(6, h - 20, w - 12, 18),
            Qt.AlignmentFlag.AlignRight,
            f"W {self.window_width:.0f}  L {self.window_centre:.0f}",
        )

    # ---------------------------------------------------------------- mouse

    def _tool_call(self, name: str, event) -> bool:
        if self.tool is None or not hasattr(self.tool, name):
            return False
        lps = self.widget_to_lps(event.position())
        return lps is not None and bool(getattr(self.tool, name)(self, lps, event))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.session.slicer is None:
            return
        self.setFocus()
        button = event.button()
        if button == Qt.MouseButton.LeftButton and self._tool_call("press", event):
            self._drag = ("tool", event.position(), ())
            return
        if button == Qt.MouseButton.LeftButton:
            self._drag = ("cursor", event.position(), ())
            lps = self.widget_to_lps(event.position())
            self.session.set_cursor(lps)
            self.clicked.emit(lps)
        elif button == Qt.MouseButton.MiddleButton:
            self._drag = ("pan", event.position(), (QPointF(self.pan),))
        elif button == Qt.MouseButton.RightButton:
            self._drag = ("window", event.position(), (self.window_centre, self.window_width))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag is None:
            if self.tool is not None and hasattr(self.tool, "hover"):
                self._tool_call("hover", event)
            return
        kind, start, state = self._drag
        delta = event.position() - start
        if kind == "tool":
            self._tool_call("move", event)
        elif kind == "cursor":
            self.session.set_cursor(self.widget_to_lps(event.position()))
        elif kind == "pan":
            self.pan = state[0] + delta
            self.update()
        elif kind == "window":
            centre, width = state
            self.set_window(centre - delta.y() * 2.0, width + delta.x() * 4.0)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is not None and self._drag[0] == "tool":
            self._tool_call("release", event)
        self._drag = None

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom = float(np.clip(self.zoom * (1.15**steps), 0.25, 16.0))
            self.update()
        else:
            self.set_index(self.index + (1 if steps > 0 else -1))

    def keyPressEvent(self, event) -> None:
        if self.tool is not None and hasattr(self.tool, "key") and self.tool.key(self, event):
            return
        if event.key() in (Qt.Key.Key_PageUp, Qt.Key.Key_Up) and not event.modifiers():
            self.set_index(self.index + 1)
        elif event.key() in (Qt.Key.Key_PageDown, Qt.Key.Key_Down) and not event.modifiers():
            self.set_index(self.index - 1)
        else:
            super().keyPressEvent(event)

    def centre_on(self, point_lps, zoom: float | None = None) -> None:
        """Zoom (when given) and pan so that an LPS point is at the middle of the view."""
        if zoom is not None:
            self.zoom = float(np.clip(zoom, 0.25, 16.0))
        pos, _ = self.lps_to_widget(point_lps)
        self.pan = self.pan + QPointF(self.width() / 2 - pos.x(), self.height() / 2 - pos.y())
        self.update()

    def reset_view(self) -> None:
        self.zoom, self.pan = 1.0, QPointF(0.0, 0.0)
        self.update()
