"""Segmentation: label maps with named structures, edited by undoable operations (no Qt)."""

from surgtwin.segmentation.labelmap import Label, LabelEdit, LabelMap, Role, SegmentationError
from surgtwin.segmentation.presets import PRESETS, apply_preset

__all__ = ["PRESETS", "Label", "LabelEdit", "LabelMap", "Role", "SegmentationError", "apply_preset"]
