"""The Segment panel's threshold range: the slider, spin boxes and typical ranges, and the live
preview of the voxels in range on the current slices."""

from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QImage

from surgtwin.app.panels.segment_tools import BrushTool

__all__ = ["COMMON_RANGES", "PREVIEW_ARGB", "ThresholdPreviewMixin"]

#: Typical value ranges offered next to the threshold (name, low, high; HU).
COMMON_RANGES = [
    ("Bone", 226, 3071),
    ("Soft tissue", -100, 200),
    ("CSF, spinal canal", -50, 45),
    ("Fat", -200, -50),
    ("Lung and air", -1000, -400),
    ("Contrast vessels", 180, 600),
    ("Metal, markers", 2000, 4000),
]
#: Preview colour of voxels in the threshold range (ARGB).
PREVIEW_ARGB = 0x8C3CE6C8


class ThresholdPreviewMixin:
    """Threshold controls and preview of :class:`~surgtwin.app.panels.segment.SegmentPanel`
    (the panel gives ``range_slider``, ``lowSpin``, ``highSpin``, ``previewCheck``…; it clears
    ``_preview_cache`` when the case changes)."""

    def _slider_moved(self, low: int, high: int) -> None:
        for spin, value in ((self.lowSpin, low), (self.highSpin, high)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        if not self.previewCheck.isChecked():
            self.previewCheck.setChecked(True)  # updates the slices
        else:
            self.update_slices()

    def _spins_changed(self, _value: int) -> None:
        self.range_slider.setValues(self.lowSpin.value(), self.highSpin.value())
        lo, hi = self.range_slider.values()
        if (self.lowSpin.value(), self.highSpin.value()) != (lo, hi):
            self._slider_moved(lo, hi)

    def _range_chosen(self, index: int) -> None:
        pair = self.rangeCombo.itemData(index)
        if pair:
            self.set_range(*pair)
        self.rangeCombo.setCurrentIndex(0)

    def preview_active(self) -> bool:
        """Whether the threshold preview is drawn on the slices."""
        return (
            self.previewCheck.isChecked()
            and self.isVisible()
            and not isinstance(self.window.tool, BrushTool)
            and self.session.volume is not None
            and self.session.slicer is not None
        )

    def preview_image(self, view) -> tuple[QImage, np.ndarray] | None:
        """The threshold preview of the slice a view shows (image and its in-range mask)."""
        vol, sl = self.session.volume, self.session.slicer
        if vol is None or sl is None:
            return None
        lo, hi = self.threshold_range()
        key = (view.index, lo, hi, id(vol))
        cached = self._preview_cache.get(view.orientation)
        if cached is not None and cached[0] == key:
            return cached[1], cached[3]
        raw = sl.image(vol.array, view.orientation, view.index)
        inside = (raw >= lo) & (raw <= hi)
        argb = np.zeros(inside.shape, dtype=np.uint32)
        argb[inside] = PREVIEW_ARGB
        argb = np.ascontiguousarray(argb)
        h, w = argb.shape
        image = QImage(argb.data, w, h, 4 * w, QImage.Format.Format_ARGB32)
        self._preview_cache[view.orientation] = (key, image, argb, inside)
        return image, inside
