"""Interactive editing helpers: refinements, brush strokes, seeds, islands and digests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from surgtwin.imaging.volume import ImageGeometry
from surgtwin.segmentation import SegmentationError
from surgtwin.segmentation.editing import (
    islands,
    label_digest,
    refine,
    stroke_mask,
    surface_status,
)


def grid(spacing=(0.5, 0.5, 2.0)) -> ImageGeometry:
    return ImageGeometry((30, 120, 120), spacing, (-30.0, -30.0, -30.0), np.eye(3))


def ball(g: ImageGeometry, centre, radius) -> np.ndarray:
    k, j, i = np.indices(g.shape)
    pts = g.index_to_lps(np.stack([i.ravel(), j.ravel(), k.ravel()], 1))
    return (np.linalg.norm(pts - np.asarray(centre), axis=1) <= radius).reshape(g.shape)


def test_stroke_is_a_capsule_in_mm_on_anisotropic_voxels():
    g = ImageGeometry((40, 120, 120), (0.5, 0.5, 1.0), (-30.0, -30.0, -20.0), np.eye(3))
    a, b, r = (-10.0, 0.0, 0.3), (10.0, 0.0, 0.3), 4.0
    box, mask = stroke_mask(g, [a, b], r)
    voxel = g.voxel_volume_mm3
    capsule = math.pi * r * r * 20.0 + 4 / 3 * math.pi * r**3
    assert mask.sum() * voxel == pytest.approx(capsule, rel=0.05)
    # every voxel of the box farther than r from the segment is left out
    k, j, i = np.nonzero(mask)
    pts = g.index_to_lps(np.stack([i + box[2].start, j + box[1].start, k + box[0].start], 1))
    x = np.clip(pts[:, 0], -10.0, 10.0)
    assert np.max(np.hypot(np.hypot(pts[:, 0] - x, pts[:, 1]), pts[:, 2] - 0.3)) <= r + 1e-9


def test_stroke_on_one_slice_is_a_stadium():
    g = grid()
    k = round(float(g.lps_to_index([[0.0, 0.0, 0.0]])[0, 2]))
    box, mask = stroke_mask(g, [(-10.0, 0.0, 0.0), (10.0, 0.0, 0.0)], 4.0, plane=(0, k))
    assert box[0] == slice(k, k + 1)
    area = 2 * 4.0 * 20.0 + math.pi * 16.0
    assert mask.sum() * 0.25 == pytest.approx(area, rel=0.05)


def test_stroke_outside_the_grid_covers_nothing():
    assert stroke_mask(grid(), [(500.0, 0.0, 0.0)], 3.0) is None
    with pytest.raises(SegmentationError):
        stroke_mask(grid(), [(0.0, 0.0, 0.0)], 0.0)


def test_refine_grow_shrink_fill_and_islands():
    g = grid()
    core = ball(g, (0.0, 0.0, 0.0), 10.0)
    grown = refine(core, g, "grow", 3.0)
    assert grown.sum() * g.voxel_volume_mm3 == pytest.approx(4 / 3 * math.pi * 13**3, rel=0.06)
    assert refine(grown, g, "shrink", 3.0).sum() == pytest.approx(core.sum(), rel=0.06)
    hollow = core & ~ball(g, (0.0, 0.0, 0.0), 5.0)
    assert refine(hollow, g, "fill_holes").sum() == core.sum()
    speck = ball(g, (20.0, 20.0, 0.0), 1.5)
    both = core | speck
    assert np.array_equal(refine(both, g, "keep_largest"), core)
    assert np.array_equal(refine(both, g, "remove_small", 100.0), core)
    parts = islands(both)
    assert [int(m.sum()) for _box, m in parts] == [int(core.sum()), int(speck.sum())]
    box, m = parts[1]
    assert np.array_equal(both[box] & m, m) and speck[box].sum() == m.sum()
    with pytest.raises(SegmentationError, match="positive"):
        refine(core, g, "grow", 0.0)
    with pytest.raises(SegmentationError, match="empty"):
        refine(np.zeros_like(core), g, "fill_holes")


def test_label_digest_tells_voxel_changes_apart():
    arr = np.zeros((4, 5, 6), np.uint8)
    arr[1, 2, 3] = 7
    d = label_digest(arr, 7)
    assert label_digest(arr.copy(), 7) == d
    arr[1, 2, 4] = 7
    assert label_digest(arr, 7) != d
    arr[0, 0, 0] = 3  # other labels do not matter
    assert label_digest(arr, 7) == label_digest(np.where(arr == 3, 0, arr), 7)


def test_surface_status_finds_changed_missing_and_emptied_labels():
    arr = np.zeros((4, 5, 6), np.uint8)
    arr[0, :2] = 1
    arr[1, :2] = 2
    arr[2, :2] = 3
    d = {v: label_digest(arr, v) for v in (1, 2, 3)}
    built = {1: [d[1]], 2: ["older"], 4: [d[1]], 5: [None]}
    status = surface_status(arr, [1, 2, 3, 5], built)
    assert status.outdated == [2, 3] and status.missing == [3]
    assert sorted(status.emptied) == [4, 5]  # 4 was deleted, 5 has no voxels
    assert status.counts[1] == 12 and status.digests == d
    fresh = status.against([1, 2, 3], {1: [d[1]], 2: [d[2]], 3: [d[3], None]})
    assert fresh.outdated == [3] and fresh.missing == [] and fresh.emptied == []
