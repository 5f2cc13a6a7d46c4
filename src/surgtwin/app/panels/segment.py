"""Segment panel: presets in one click, a threshold range with a live preview on the slices,
region growing from a click, paint and erase brushes, islands / holes / smoothing / margins,
the label list, and "Build 3D".

Every change of the label map is one undo step (:class:`LabelEditCommand`; several edits that
belong together in a :class:`CompoundCommand`). Masks that take time are computed on a worker
(``window.run_job``) together with their undo record; the command is pushed on the GUI thread
when they arrive, and the record is made again on the current map if the map changed meanwhile.
A brush stroke is previewed while it is drawn and written as one edit when the button is
released.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PyQt6 import sip
from PyQt6.QtCore import Qt, QThreadPool, QTimer
from PyQt6.QtGui import QPainter
from PyQt6.QtWidgets import QPushButton, QWidget

from surgtwin.app.panels.segment_labels import LabelListMixin, qcolor, unique_name
from surgtwin.app.panels.segment_preview import COMMON_RANGES, ThresholdPreviewMixin
from surgtwin.app.panels.segment_refine import RefineMixin
from surgtwin.app.panels.segment_tools import BrushTool, GrowTool
from surgtwin.app.range_slider import RangeSlider
from surgtwin.app.resources import load_ui, set_style_role
from surgtwin.app.workers import Job, start_job
from surgtwin.errors import LoadCancelled
from surgtwin.planning.commands import (
    AddStructure,
    CompoundCommand,
    LabelEditCommand,
    RemoveStructure,
    SetStructureProperty,
)
from surgtwin.planning.plan import ROLES, Structure
from surgtwin.segmentation import operations as ops
from surgtwin.segmentation.editing import grow_from_seed, stroke_mask, surface_status
from surgtwin.segmentation.labelmap import Label, LabelMap, SegmentationError
from surgtwin.segmentation.presets import PRESETS

__all__ = ["COMMON_RANGES", "DIGEST_KEY", "SegmentPanel"]

#: Mesh metadata key: digest of the label voxels the surface was built from.
DIGEST_KEY = "label_digest"
CUT_LEAKS_MM = 1.0
STATS_DELAY_MS = 150


class SegmentPanel(LabelListMixin, RefineMixin, ThresholdPreviewMixin, QWidget):
    """The Segment tab: edits the plan's label map, one undo step per edit.

    Parameters
    ----------
    window : MainWindow
        Gives the session, the slice views (tools and overlays) and ``run_job``.
    """

    def __init__(self, window):
        super().__init__(window)
        load_ui("segment_panel.ui", self)
        self.window = window
        self.session = window.session
        self.grow_tool = GrowTool(self)
        self.paint_tool = BrushTool(self, erase=False)
        self.erase_tool = BrushTool(self, erase=True)
        self.range_slider = RangeSlider(self)
        self.range_slider.setObjectName("rangeSlider")
        self.rangeLayout.addWidget(self.range_slider)
        # per orientation: (slice and range, image, its ARGB buffer, in-range mask)
        self._preview_cache: dict[str, tuple] = {}
        self._counts: np.ndarray | None = None
        self._stale: list[str] = []
        self._baseline: dict[int, str] | None = None
        self._stats_job: Job | None = None
        self._select_after: int | None = None
        self._updating = False
        # the label counts are quick: their own thread, never queued behind long jobs
        self._stats_pool = QThreadPool(self)
        self._stats_pool.setMaxThreadCount(1)
        self._stats_timer = QTimer(self)
        self._stats_timer.setSingleShot(True)
        self._stats_timer.setInterval(STATS_DELAY_MS)
        self._stats_timer.timeout.connect(self._start_stats)

        self.preset_buttons: dict[str, QPushButton] = {}
        for n, (key, p) in enumerate(PRESETS.items()):
            button = QPushButton(p.name, self.presetsBox)
            button.setObjectName(f"preset_{key}")
            button.setToolTip(f"{p.description} (role: {p.role})")
            button.clicked.connect(lambda _c=False, k=key: self.apply_preset(k))
            self.presetGrid.addWidget(button, n // 3, n % 3)
            self.preset_buttons[key] = button
        for role in ROLES:
            self.roleCombo.addItem(role, role)
        self.rangeCombo.addItem("Typical ranges…", None)
        for name, lo, hi in COMMON_RANGES:
            self.rangeCombo.addItem(f"{name} ({lo}..{hi})", (lo, hi))
        self.lowSpin.setValue(226)
        self.highSpin.setValue(3071)

        self.range_slider.rangeChanged.connect(self._slider_moved)
        self.lowSpin.valueChanged.connect(self._spins_changed)
        self.highSpin.valueChanged.connect(self._spins_changed)
        self.rangeCombo.activated.connect(self._range_chosen)
        self.previewCheck.toggled.connect(lambda _on: self.update_slices())
        self.applyButton.clicked.connect(self.apply_threshold)
        self.growButton.toggled.connect(lambda on: self._tool_toggled(self.growButton, on))
        self.paintButton.toggled.connect(lambda on: self._tool_toggled(self.paintButton, on))
        self.eraseButton.toggled.connect(lambda on: self._tool_toggled(self.eraseButton, on))
        self.radiusSpin.valueChanged.connect(lambda _v: self.update_slices())
        self.keepLargestButton.clicked.connect(lambda: self.refine_selected("keep_largest"))
        self.removeSmallButton.clicked.connect(
            lambda: self.refine_selected("remove_small", self.smallSpin.value())
        )
        self.fillButton.clicked.connect(lambda: self.refine_selected("fill_holes"))
        self.closeButton.clicked.connect(
            lambda: self.refine_selected("close", self.smoothSpin.value())
        )
        self.openButton.clicked.connect(
            lambda: self.refine_selected("open", self.smoothSpin.value())
        )
        self.growMarginButton.clicked.connect(
            lambda: self.refine_selected("grow", self.marginSpin.value())
        )
        self.shrinkButton.clicked.connect(
            lambda: self.refine_selected("shrink", self.marginSpin.value())
        )
        self.splitButton.clicked.connect(self.split_selected)
        self.buildButton.clicked.connect(self.build_3d)
        self.newLabelButton.clicked.connect(lambda: self.new_label())
        self.deleteLabelButton.clicked.connect(self._delete_clicked)
        self.colourButton.clicked.connect(self._choose_colour)
        self.roleCombo.activated.connect(self._role_chosen)
        self.opacitySpin.valueChanged.connect(self._opacity_changed)
        self.labelTable.itemChanged.connect(self._item_changed)
        self.labelTable.currentCellChanged.connect(lambda *_a: self._show_selected())
        header = self.labelTable.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(1, header.ResizeMode.Stretch)
        for col in (0, 2, 3):
            header.setSectionResizeMode(col, header.ResizeMode.ResizeToContents)
        self.labelTable.verticalHeader().setVisible(False)

        self.session.caseChanged.connect(self._on_case)
        self.session.planEvent.connect(self._on_plan_event)
        window.panelTabs.currentChanged.connect(self._on_tab)
        for view in window.slice_views.values():
            view.overlays.append(self.draw_overlay)
        self._on_case()

    # ---------------------------------------------------------------- state

    def labelmap(self) -> LabelMap | None:
        plan = self.session.plan
        return plan.labelmap if plan is not None else None

    def current_value(self) -> int | None:
        """The selected label's value (None when no label is selected)."""
        row = self.labelTable.currentRow()
        item = self.labelTable.item(row, 0) if row >= 0 else None
        lm = self.labelmap()
        if item is None or lm is None:
            return None
        value = item.data(Qt.ItemDataRole.UserRole)
        return value if value in lm.labels else None

    def select_label(self, key: int | str) -> None:
        """Select a label by value or name."""
        lm = self.labelmap()
        if lm is None:
            return
        value = lm.label(key).value
        for row in range(self.labelTable.rowCount()):
            if self.labelTable.item(row, 0).data(Qt.ItemDataRole.UserRole) == value:
                self.labelTable.setCurrentCell(row, 1)
                return

    def threshold_range(self) -> tuple[int, int]:
        return self.range_slider.values()

    def set_range(self, low: int, high: int) -> None:
        """The threshold range (HU for CT), as the slider, spin boxes and preview show it."""
        self.range_slider.setValues(low, high)

    def _status(self, text: str, ms: int = 6000) -> None:
        self.window.statusBar().showMessage(text, ms)

    def _ready(self) -> bool:
        if self.labelmap() is None or self.session.volume is None:
            self._status("Open a DICOM series first")
            return False
        return True

    # ---------------------------------------------------------------- case and events

    def _on_case(self) -> None:
        vol = self.session.volume
        self._preview_cache.clear()
        self._counts = None
        self._stale = []
        self._baseline = None
        self.staleLabel.setText("")
        modality = vol.info.modality if vol is not None else ""
        for key, button in self.preset_buttons.items():
            p = PRESETS[key]
            button.setVisible(not p.modality or not modality or p.modality == modality)
            button.setEnabled(vol is not None)
        if vol is not None:
            sample = np.asarray(vol.array[::2, ::2, ::2])
            lo, hi = int(np.floor(vol.array.min())), int(np.ceil(vol.array.max()))
            if vol.info.units == "HU":
                # the usual CT scale, widened for metal
                lo, hi = max(lo, -1024), max(hi, 3071)
            hi = max(hi, lo + 1)
            self.range_slider.setBounds(lo, hi)
            counts, _ = np.histogram(sample, bins=160, range=(lo, hi))
            self.range_slider.setHistogram(counts)
            unit = vol.info.units or ""
            self.thresholdBox.setTitle(f"Threshold ({unit})" if unit else "Threshold")
            self.rangeCombo.setEnabled(unit == "HU")
        for w in (self.thresholdBox, self.toolsBox, self.refineBox, self.surfacesBox):
            w.setEnabled(vol is not None)
        self._refresh_labels()
        self._request_stats()
        self.update_slices()

    def _on_plan_event(self, event) -> None:
        if event.name in ("labelmap", "labelmap_voxels"):
            self._refresh_labels()
            self._request_stats()
        elif event.name == "structures":
            self._request_stats()

    def _on_tab(self, _index: int) -> None:
        if self.window.panelTabs.currentWidget() is not self:
            for b in (self.growButton, self.paintButton, self.eraseButton):
                b.setChecked(False)
        self.update_slices()

    def update_slices(self) -> None:
        for view in self.window.slice_views.values():
            view.update()

    # ---------------------------------------------------------------- label edits

    def _target_label(self, default_name: str, role: str = "other") -> tuple[Label, bool]:
        """The selected label, or a new one (not yet in the map) when none is selected."""
        lm, plan = self.labelmap(), self.session.plan
        value = self.current_value()
        if value is not None:
            return lm.labels[value], False
        taken = list(lm.names()) + list(plan.structures)
        return lm.new_label(unique_name(default_name, taken), role), True

    def _push_edit(self, edit, select: int | None = None) -> bool:
        if edit is None:
            self._status("Nothing changed")
            return False
        self._select_after = select
        self.session.push(LabelEditCommand(self.session.plan, edit))
        return True

    def _run_edit(
        self,
        title: str,
        compute: Callable[[Callable[[], bool]], object],
        label: Label,
        is_new: bool,
        mode: str = "set",
        overwrite: bool = True,
        after: Callable[[], None] | None = None,
    ) -> Job:
        """Compute a mask on a worker (``compute(cancel)`` -> mask or (box, mask)) and write it
        into ``label`` as one undo step on the GUI thread (then call ``after``).

        A :class:`SegmentationError` (a seed outside the range, a preset that finds nothing)
        is the user's to correct, not a failure: it goes to the status bar."""
        plan, lm, stack = self.session.plan, self.labelmap(), self.session.stack
        revision = stack.revision
        new = label if is_new else None

        def work(progress, cancel):
            try:
                result = compute(cancel)
            except SegmentationError as exc:
                return str(exc)
            box, mask = result if isinstance(result, tuple) else (None, result)
            if cancel():
                raise LoadCancelled("cancelled")
            edit = lm.change(
                title, label.value, mask, box=box, mode=mode, overwrite=overwrite, label=new,
                apply=False,
            )  # fmt: skip
            return box, mask, edit

        def done(result) -> None:
            if self.session.plan is not plan:
                return
            if isinstance(result, str):
                self._status(f"{title}: {result}", 12000)
                return
            box, mask, edit = result
            value = label.value
            if self.session.stack.revision != revision:
                # the map changed while the mask was computed: make the record on it as it is
                target = new
                if is_new and (label.value in lm.labels or label.name in lm.names()):
                    target = lm.new_label(unique_name(label.name, lm.names()), label.role)
                if not is_new and label.value not in lm.labels:
                    self._status(f"{title}: the label was deleted meanwhile")
                    return
                value = target.value if target is not None else label.value
                edit = lm.change(
                    title, value, mask, box=box, mode=mode, overwrite=overwrite, label=target,
                    apply=False,
                )  # fmt: skip
            self._push_edit(edit, select=value)
            if after is not None:
                after()

        return self.window.run_job(title, work, done)

    def apply_preset(self, key: str) -> Job | None:
        """Segment with a preset into its label (created, or replaced if it exists)."""
        if not self._ready():
            return None
        p = PRESETS[key]
        lm, vol = self.labelmap(), self.session.volume
        try:
            label, is_new = lm.label(p.name), False
        except SegmentationError:
            name = unique_name(p.name, self.session.plan.structures)
            label, is_new = lm.new_label(name, p.role), True

        def compute(_cancel):
            mask = p.make(vol)
            if not mask.any():
                raise SegmentationError(f"the {p.name.lower()} preset found nothing in this volume")
            return mask

        return self._run_edit(
            f"Preset {p.name}", compute, label, is_new, "set", p.overwrite, self._preview_done
        )

    def apply_threshold(self) -> Job | None:
        """The selected label (or a new one) becomes the voxels within the range."""
        if not self._ready():
            return None
        lo, hi = self.threshold_range()
        vol = self.session.volume
        label, is_new = self._target_label("Threshold")
        unit = f" {vol.info.units}" if vol.info.units else ""
        return self._run_edit(
            f"Threshold {lo}..{hi}{unit} into {label.name}",
            lambda _cancel: ops.threshold(vol, lo, hi),
            label,
            is_new,
            "set",
            self.overwriteCheck.isChecked(),
            after=self._preview_done,
        )

    def grow_at(self, lps) -> Job | None:
        """Grow from a seed point (LPS mm) within the range; the region joins the selected label
        (or a new one)."""
        if not self._ready():
            return None
        lo, hi = self.threshold_range()
        vol = self.session.volume
        seed = np.asarray(lps, dtype=float)
        cut = CUT_LEAKS_MM if self.cutLeaksCheck.isChecked() else 0.0
        label, is_new = self._target_label("Grown")
        self.session.set_cursor(seed)
        return self._run_edit(
            f"Grow {label.name} from ({', '.join(str(round(c)) for c in seed)}) mm",
            lambda _cancel: grow_from_seed(vol, seed, lo, hi, cut),
            label,
            is_new,
            "add",
            self.overwriteCheck.isChecked(),
            after=self._preview_done,
        )

    def _preview_done(self) -> None:
        """The range is now a label: stop covering it with the preview (a new range shows it
        again)."""
        self.previewCheck.setChecked(False)

    def plane_of(self, view) -> tuple[int, int]:
        """The (numpy axis, index) of the slice a view shows (for a 2-D brush)."""
        sl = self.session.slicer
        n = view.axes.normal
        axis = sl.axis_of[n]
        index = view.index if sl.sign_of[n] > 0 else sl.lps_size[n] - 1 - view.index
        return 2 - axis, int(index)

    def apply_stroke(self, points, plane: tuple[int, int] | None, erase: bool) -> bool:
        """Write a brush stroke (its centres, LPS mm) as one undo step."""
        lm = self.labelmap()
        if lm is None or not points:
            return False
        radius = self.radiusSpin.value()
        if erase:
            value = self.current_value()
            if value is None:
                self._status("Select the label to erase from")
                return False
            label, is_new = lm.labels[value], False
        else:
            label, is_new = self._target_label("Painted")
        stroke = stroke_mask(lm.geometry, points, radius, plane)
        if stroke is None:
            return False
        box, mask = stroke
        verb = "Erase" if erase else "Paint"
        edit = lm.change(
            f"{verb} {label.name} (r {radius:g} mm)",
            label.value,
            mask,
            box=box,
            mode="remove" if erase else "add",
            overwrite=self.overwriteCheck.isChecked(),
            label=label if is_new else None,
            apply=False,
        )
        return self._push_edit(edit, select=label.value)

    # ---------------------------------------------------------------- 3-D surfaces

    def build_3d(self) -> Job | None:
        """Rebuild, on a worker, the surfaces of the labels whose voxels changed since their
        surface was built (and make structures for labels that have none), as one undo step."""
        plan, lm = self.session.plan, self.labelmap()
        if lm is None:
            return None
        built = self._built_digests()
        labels = dict(lm.labels)

        def work(progress, cancel):
            from surgtwin.geometry.surface import labelmap_to_meshes

            arr = np.array(lm.array)  # one state of the map for every surface
            status = surface_status(arr, labels, built)
            snapshot = LabelMap(lm.geometry, arr, list(labels.values()))
            todo = status.outdated
            meshes = labelmap_to_meshes(snapshot, todo, progress=progress, cancel=cancel)
            for value, mesh in zip(todo, meshes, strict=True):
                mesh.metadata[DIGEST_KEY] = status.digests[value]
            return dict(zip(todo, meshes, strict=True)), status.emptied

        def done(result) -> None:
            if self.session.plan is not plan:
                return
            meshes, empty = result
            commands, names = [], []
            for value, mesh in meshes.items():
                owners = self._owners(value)
                for s in owners:
                    commands.append(SetStructureProperty(plan, s.name, mesh=mesh))
                    names.append(s.name)
                label = lm.labels.get(value)
                if not owners and label is not None:
                    name = unique_name(label.name, plan.structures)
                    structure = Structure(
                        name,
                        str(label.role),
                        tuple(label.color),
                        label.visible,
                        label.opacity,
                        None,
                        "label",
                        value,
                        mesh,
                    )
                    commands.append(AddStructure(plan, structure))
                    names.append(name)
            for value in empty:
                for s in self._owners(value):
                    commands.append(RemoveStructure(plan, s.name, name=f"Remove {s.name}"))
                    names.append(f"{s.name} (empty, removed)")
            if not commands:
                self._status("The 3-D surfaces are up to date")
                self._request_stats()
                return
            self.session.push(CompoundCommand(plan, f"Build 3D: {', '.join(names)}", commands))
            self._status(f"3-D surfaces built: {', '.join(names)}")

        return self.window.run_job("Building 3-D surfaces", work, done)

    def _owners(self, value: int) -> list[Structure]:
        plan = self.session.plan
        return [
            s for s in plan.structures.values() if s.source == "label" and s.label_value == value
        ]

    def _built_digests(self) -> dict[int, list[str | None]]:
        """For each label with structures: the digests of the voxels their surfaces were built
        from (None: unknown)."""
        plan = self.session.plan
        out: dict[int, list[str | None]] = {}
        for s in plan.structures.values():
            if s.source != "label" or s.label_value is None:
                continue
            digest = None
            if s.mesh is not None:
                digest = s.mesh.metadata.get(DIGEST_KEY)
                if digest is None and self._baseline is not None:
                    digest = self._baseline.get(s.label_value)
            out.setdefault(s.label_value, []).append(digest)
        return out

    # ---------------------------------------------------------------- label statistics

    def _request_stats(self) -> None:
        self._stats_timer.start()

    def _start_stats(self) -> None:
        """Voxel counts per label and which surfaces are out of date, on a worker."""
        plan, lm, stack = self.session.plan, self.labelmap(), self.session.stack
        if lm is None:
            return
        revision = stack.revision
        first = self._baseline is None
        built = self._built_digests()
        unknown = {
            s.label_value
            for s in plan.structures.values()
            if s.source == "label" and s.mesh is not None and DIGEST_KEY not in s.mesh.metadata
        }
        labels = dict(lm.labels)

        def work(_progress, _cancel):
            return surface_status(np.asarray(lm.array), labels, built)

        job = Job("Label statistics", work)
        self._stats_job = job

        def finished(status) -> None:
            if sip.isdeleted(self) or job is not self._stats_job or self.session.plan is not plan:
                return  # the window closed, or a newer count is on its way
            self._stats_job = None
            if self.session.stack.revision != revision:
                self._request_stats()  # changed meanwhile: count again
                return
            if first:
                # surfaces that came with the case were built from the voxels as opened
                opened = revision == 0
                self._baseline = {v: status.digests.get(v, "") for v in unknown} if opened else {}
                status = status.against(labels, self._built_digests())
            self._counts = status.counts
            self._stale = [
                f"{labels[v].name} (no surface yet)" if v in status.missing else labels[v].name
                for v in status.outdated
            ] + [f"{labels[v].name} (empty)" for v in status.emptied if v in labels]
            self._show_stats()

        job.signals.finished.connect(finished)
        start_job(job, self._stats_pool)

    def _show_stats(self) -> None:
        lm = self.labelmap()
        if lm is not None:
            vv = lm.geometry.voxel_volume_mm3
            for row in range(self.labelTable.rowCount()):
                value = self.labelTable.item(row, 0).data(Qt.ItemDataRole.UserRole)
                item = self.labelTable.item(row, 3)
                if item is not None:
                    item.setText(self._volume_text(value, vv))
        if self._stale:
            self.staleLabel.setText("Out of date in 3-D: " + ", ".join(self._stale))
            set_style_role(self.staleLabel, "status-warn")
        else:
            self.staleLabel.setText("3-D surfaces match the labels")
            set_style_role(self.staleLabel, "")

    @property
    def stale(self) -> list[str]:
        """Labels whose 3-D surface is missing or older than their voxels (as last counted)."""
        return list(self._stale)

    # ---------------------------------------------------------------- tools

    def _tool_toggled(self, button: QPushButton, on: bool) -> None:
        tools = {
            self.growButton: self.grow_tool,
            self.paintButton: self.paint_tool,
            self.eraseButton: self.erase_tool,
        }
        tool = tools[button]
        if on:
            if not self._ready():
                button.setChecked(False)
                return
            for other in tools:
                if other is not button:
                    other.setChecked(False)
            self.window.set_tool(tool)
            hints = {
                self.growButton: "Click inside the structure on a slice to grow from there",
                self.paintButton: "Drag on a slice to paint into the selected label",
                self.eraseButton: "Drag on a slice to erase the selected label",
            }
            self._status(hints[button], 10000)
        elif self.window.tool is tool:
            self.window.set_tool(None)
        self.update_slices()

    # ---------------------------------------------------------------- drawing

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.update_slices()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.update_slices()

    def draw_overlay(self, p: QPainter, view) -> None:
        """Threshold preview (current slices only) and the brush while painting."""
        if self.preview_active():
            shown = self.preview_image(view)
            if shown is not None:
                p.save()
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
                p.drawImage(view.image_rect(), shown[0])
                p.restore()
        tool = self.window.tool
        if isinstance(tool, BrushTool):
            lm, value = self.labelmap(), self.current_value()
            rgb = lm.labels[value].color if lm is not None and value is not None else (1, 1, 1)
            tool.draw(p, view, self.radiusSpin.value(), qcolor(rgb))
