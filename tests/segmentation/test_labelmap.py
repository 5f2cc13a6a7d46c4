"""Label map edits: exact undo/redo, bounding-box deltas, label table changes."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.imaging.volume import ImageGeometry
from surgtwin.segmentation import LabelMap, Role, SegmentationError
from surgtwin.segmentation import operations as ops


def grid(shape=(40, 60, 80), spacing=(0.5, 0.5, 1.0)) -> ImageGeometry:
    return ImageGeometry(shape, spacing, (0.0, 0.0, 0.0), np.eye(3))


def test_change_undo_redo_restore_exact_arrays():
    lm = LabelMap(grid())
    bone = lm.new_label("Bone", Role.BONE)
    mask = np.zeros(lm.geometry.shape, bool)
    mask[10:20, 10:30, 10:40] = True
    e1 = lm.change("threshold", bone.value, mask, label=bone)
    canal = lm.new_label("Canal", Role.CRITICAL)
    mask2 = np.zeros_like(mask)
    mask2[15:25, 20:40, 30:50] = True
    states = [lm.array.copy()]
    e2 = lm.change("grow canal", canal.value, mask2, label=canal)
    states.append(lm.array.copy())
    assert lm.voxel_count("Canal") == mask2.sum()
    assert lm.voxel_count("Bone") == mask.sum() - (mask & mask2).sum()  # canal overwrote bone
    lm.undo(e2)
    assert np.array_equal(lm.array, states[0]) and lm.names() == ["Bone"]
    lm.undo(e1)
    assert not lm.array.any() and lm.names() == []
    lm.redo(e1)
    lm.redo(e2)
    assert np.array_equal(lm.array, states[1]) and lm.names() == ["Bone", "Canal"]


def test_prepared_edit_changes_nothing_until_applied():
    lm = LabelMap(grid())
    bone = lm.new_label("Bone", Role.BONE)
    mask = np.zeros(lm.geometry.shape, bool)
    mask[10:20, 10:30, 10:40] = True
    lm.change("threshold", bone.value, mask, label=bone)
    before = lm.array.copy()
    cut = np.zeros((10, 20, 30), bool)
    cut[5:, :, :] = True
    box = (slice(10, 20), slice(10, 30), slice(10, 40))
    edit = lm.change("cut", bone.value, cut, box=box, mode="remove", apply=False)
    assert np.array_equal(lm.array, before) and edit.changed_voxels == 5 * 20 * 30
    assert edit.box == (slice(15, 20), slice(10, 30), slice(10, 40))
    lm.redo(edit)
    assert lm.voxel_count("Bone") == mask.sum() - 5 * 20 * 30
    lm.undo(edit)
    assert np.array_equal(lm.array, before)


def test_edit_keeps_only_the_changed_box():
    lm = LabelMap(grid())
    lab = lm.new_label("Tumour", Role.TARGET)
    box, ball = ops.sphere(lm.geometry, (20.0, 15.0, 20.0), 3.0)
    edit = lm.change("brush", lab.value, ball, box=box, mode="add", label=lab)
    assert edit.box == box or all(
        e.start >= b.start and e.stop <= b.stop for e, b in zip(edit.box, box, strict=True)
    )
    assert edit.nbytes <= 2 * ball.size
    assert edit.changed_voxels == int(ball.sum())


def test_fifty_brush_strokes_use_far_less_memory_than_fifty_copies():
    lm = LabelMap(grid((120, 256, 256), (0.8, 0.8, 1.0)))
    lab = lm.new_label("Paint")
    edits = []
    for n in range(50):
        centre = (20.0 + n, 100.0, 60.0)
        box, ball = ops.sphere(lm.geometry, centre, 4.0)
        edits.append(lm.change(f"stroke {n}", lab.value, ball, box=box, mode="add", label=lab))
    held = sum(e.nbytes for e in edits)
    assert held < 0.02 * 50 * lm.array.nbytes
    for e in reversed(edits):
        lm.undo(e)
    assert not lm.array.any()


def test_large_edits_are_compressed():
    lm = LabelMap(grid((100, 200, 200)))
    lab = lm.new_label("Body", Role.SKIN)
    mask = np.zeros(lm.geometry.shape, bool)
    mask[5:95, 10:190, 10:190] = True
    edit = lm.change("body", lab.value, mask, label=lab)
    assert edit.nbytes < mask.size / 20
    lm.undo(edit)
    assert not lm.array.any()
    lm.redo(edit)
    assert lm.voxel_count("Body") == mask.sum()


def test_modes_and_overwrite():
    lm = LabelMap(grid())
    a, b = lm.new_label("A"), None
    full = np.ones(lm.geometry.shape, bool)
    lm.change("a", a.value, full, label=a)
    b = lm.new_label("B")
    half = np.zeros_like(full)
    half[:20] = True
    lm.change("b", b.value, half, overwrite=False, label=b)
    assert lm.voxel_count("B") == 0  # all voxels belonged to A
    lm.change("b", b.value, half, overwrite=True)
    assert lm.voxel_count("B") == half.sum()
    lm.change("erase", b.value, half[:, :, :], mode="remove")
    assert lm.voxel_count("B") == 0 and lm.voxel_count("A") == full.sum() - half.sum()
    with pytest.raises(SegmentationError):
        lm.change("x", a.value, full, mode="paint")


def test_label_table_edits_are_undoable():
    lm = LabelMap(grid())
    lab = lm.new_label("Canal", Role.CRITICAL)
    mask = np.zeros(lm.geometry.shape, bool)
    mask[5:10, 5:10, 5:10] = True
    lm.change("grow", lab.value, mask, label=lab)
    rename = lm.update_label("rename", "Canal", name="Spinal canal", opacity=0.5)
    assert lm.label(lab.value).name == "Spinal canal" and lm.label("spinal canal").opacity == 0.5
    delete = lm.set_labels("delete", {})
    assert not lm.array.any() and lm.names() == []
    lm.undo(delete)
    assert lm.voxel_count("Spinal canal") == 125
    lm.undo(rename)
    assert lm.names() == ["Canal"]


def test_names_are_unique_and_colours_follow_roles():
    lm = LabelMap(grid())
    bone = lm.new_label("Bone", Role.BONE)
    lm.set_labels("add", {bone.value: bone})
    with pytest.raises(SegmentationError, match="exists"):
        lm.new_label("bone")
    canal = lm.new_label("Canal", "critical")
    assert canal.role == Role.CRITICAL and canal.color != bone.color and canal.value == 2
    with pytest.raises(SegmentationError, match="no label"):
        lm.label("Liver")
