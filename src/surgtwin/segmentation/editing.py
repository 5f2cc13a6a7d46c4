"""Interactive segmentation edits as plain functions (no Qt): what the Segment panel computes.

Refining one label's mask (islands, holes, smoothing, margins), the voxels of a brush stroke,
growing a region from a clicked seed, and label digests (a surface built from a label records
the digest of the mask it was built from, so out-of-date surfaces can be found).

Each function returns a new mask; writing it into a :class:`~surgtwin.segmentation.LabelMap`
(as one undoable :class:`~surgtwin.segmentation.LabelEdit`) is the caller's step.

Examples
--------
>>> import numpy as np
>>> from surgtwin.imaging.volume import ImageGeometry
>>> g = ImageGeometry((20, 20, 20), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
>>> box, mask = stroke_mask(g, [(5.0, 10.0, 10.0), (15.0, 10.0, 10.0)], 2.0)
>>> int(mask.sum())  # a capsule: pi r^2 L + 4/3 pi r^3 = 159 mm^3 of 1 mm voxels
163
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from surgtwin.imaging.volume import ImageGeometry, Volume
from surgtwin.segmentation import operations as ops
from surgtwin.segmentation.labelmap import SegmentationError

__all__ = [
    "REFINE_OPERATIONS",
    "SurfaceStatus",
    "grow_from_seed",
    "islands",
    "label_digest",
    "refine",
    "stroke_mask",
    "surface_status",
]

#: Refinements of one label: name -> (history text, with ``{label}`` and ``{amount}``; the
#: unit of the amount, "" when there is none).
REFINE_OPERATIONS: dict[str, tuple[str, str]] = {
    "keep_largest": ("Keep the largest island of {label}", ""),
    "remove_small": ("Remove islands below {amount:g} mm³ from {label}", "mm3"),
    "fill_holes": ("Fill holes in {label}", ""),
    "close": ("Close gaps of {label} ({amount:g} mm)", "mm"),
    "open": ("Remove thin parts of {label} ({amount:g} mm)", "mm"),
    "grow": ("Grow {label} by {amount:g} mm", "mm"),
    "shrink": ("Shrink {label} by {amount:g} mm", "mm"),
}


def refine(mask: np.ndarray, geometry: ImageGeometry, operation: str, amount: float = 0.0):
    """One refinement of a label's mask.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (k, j, i)
        The label's voxels.
    geometry : ImageGeometry
        The grid (its spacing makes the mm amounts exact on anisotropic voxels).
    operation : str
        A key of :data:`REFINE_OPERATIONS`: ``keep_largest``, ``remove_small`` (islands below
        ``amount`` mm³), ``fill_holes`` (3-D cavities), ``close`` / ``open`` (morphological
        closing / opening, radius ``amount`` mm), ``grow`` / ``shrink`` (margin ``amount`` mm).
    amount : float
        mm³ or mm, as the operation needs (ignored otherwise).

    Returns
    -------
    numpy.ndarray of bool
        The new mask (a new array).

    Raises
    ------
    SegmentationError
        Unknown operation, an empty mask, or an amount that is not positive.
    """
    if operation not in REFINE_OPERATIONS:
        known = ", ".join(REFINE_OPERATIONS)
        raise SegmentationError(f"unknown refinement {operation!r}; choose one of: {known}")
    if not mask.any():
        raise SegmentationError("the label is empty: segment something first")
    needs = REFINE_OPERATIONS[operation][1]
    if needs and not (np.isfinite(amount) and amount > 0):
        unit = "mm³" if needs == "mm3" else "mm"
        raise SegmentationError(f"give a positive size in {unit}, not {amount:g}")
    if operation == "keep_largest":
        return ops.keep_largest(mask)
    if operation == "remove_small":
        return ops.remove_small(mask, geometry, float(amount))
    if operation == "fill_holes":
        return ops.fill_holes(mask)
    if operation == "close":
        return ops.closing(mask, geometry, float(amount))
    if operation == "open":
        return ops.opening(mask, geometry, float(amount))
    if operation == "grow":
        return ops.grow(mask, geometry, float(amount))
    return ops.shrink(mask, geometry, float(amount))


def islands(
    mask: np.ndarray, max_islands: int = 20
) -> list[tuple[tuple[slice, slice, slice], np.ndarray]]:
    """The islands (26-connected) of a mask, largest first, each as its (k, j, i) box and its
    mask within the box (at most ``max_islands``; smaller ones are left out)."""
    if not mask.any():
        return []
    labels, counts = ops._components_image(mask)
    stats = sitk.LabelShapeStatisticsImageFilter()
    stats.Execute(labels)
    view = sitk.GetArrayViewFromImage(labels)
    out = []
    for value in range(1, min(len(counts), max_islands) + 1):
        x, y, z, sx, sy, sz = stats.GetBoundingBox(value)
        box = (slice(z, z + sz), slice(y, y + sy), slice(x, x + sx))
        out.append((box, view[box] == value))
    return out


def grow_from_seed(
    volume: Volume,
    seed_lps: Sequence[float],
    lower: float,
    upper: float,
    cut_leaks_mm: float = 0.0,
) -> np.ndarray:
    """Region grown from a clicked point: voxels within ``lower..upper`` (HU for CT) connected
    to the seed (6-neighbourhood), cavities filled.

    Parameters
    ----------
    volume : Volume
    seed_lps : sequence of 3 float
        The clicked point, LPS mm.
    lower, upper : float
        The value range (inclusive).
    cut_leaks_mm : float
        When > 0, a morphological opening of this radius (mm) cuts thin bridges through which
        the grow leaked into neighbouring tissue of similar value; 0 keeps the grow as it is.

    Raises
    ------
    SegmentationError
        The seed lies outside the volume or outside the range, or nothing is left after the
        opening.
    """
    mask = ops.fill_holes(ops.region_grow(volume, [seed_lps], float(lower), float(upper)))
    if cut_leaks_mm > 0:
        opened = ops.opening(mask, volume.geometry, float(cut_leaks_mm))
        if not opened.any():
            raise SegmentationError(
                f"the region grown from the seed is thinner than {2 * cut_leaks_mm:g} mm "
                "everywhere; switch off 'cut thin leaks' to keep it"
            )
        mask = opened
    return mask


def stroke_mask(
    geometry: ImageGeometry,
    points_lps: Sequence[Sequence[float]],
    radius_mm: float,
    plane: tuple[int, int] | None = None,
) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """The voxels a brush stroke covers: every voxel centre within ``radius_mm`` of the
    polyline through ``points_lps`` (a ball swept along the stroke).

    Parameters
    ----------
    geometry : ImageGeometry
    points_lps : sequence of (x, y, z)
        The brush centres along the stroke, LPS mm (one point: a single dab).
    radius_mm : float
        Brush radius, mm.
    plane : (numpy axis, index), optional
        Keep only the voxels of one slice of the array (a 2-D brush on the slice being painted):
        ``(0, k)`` is slice k of a (k, j, i) array.

    Returns
    -------
    (box, mask) or None
        The (k, j, i) box of the stroke and its mask within the box; ``None`` when the stroke
        covers no voxel of the grid.
    """
    if not radius_mm > 0:
        raise SegmentationError("the brush radius must be positive")
    pts = np.atleast_2d(np.asarray(points_lps, dtype=float))
    if pts.shape[1] != 3 or len(pts) == 0:
        raise SegmentationError("a stroke needs LPS points (x, y, z)")
    ijk = geometry.lps_to_index(pts)
    # the direction matrix is orthonormal: a ball of radius r spans r / spacing along index axes
    half = radius_mm / np.asarray(geometry.spacing, dtype=float) + 1.0
    size = np.asarray(geometry.size)

    def box_of(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = np.maximum(np.floor(p.min(axis=0) - half), 0).astype(int)
        hi = np.minimum(np.ceil(p.max(axis=0) + half) + 1, size).astype(int)
        if plane is not None:
            axis = 2 - plane[0]  # numpy axis -> index axis (i, j, k)
            lo[axis] = max(lo[axis], plane[1])
            hi[axis] = min(hi[axis], plane[1] + 1)
        return lo, hi

    lo, hi = box_of(ijk)
    if np.any(hi <= lo):
        return None
    # (k, j, i) mask of the whole stroke's box
    mask = np.zeros((hi[2] - lo[2], hi[1] - lo[1], hi[0] - lo[0]), dtype=bool)
    segments = [(pts[0], pts[0])] if len(pts) == 1 else list(itertools.pairwise(pts))
    index_segments = [(ijk[0], ijk[0])] if len(ijk) == 1 else list(itertools.pairwise(ijk))
    r2 = float(radius_mm) ** 2
    for (a, b), (ia, ib) in zip(segments, index_segments, strict=True):
        slo, shi = box_of(np.stack([ia, ib]))
        slo, shi = np.maximum(slo, lo), np.minimum(shi, hi)
        if np.any(shi <= slo):
            continue
        kk, jj, ii = np.meshgrid(
            np.arange(slo[2], shi[2]),
            np.arange(slo[1], shi[1]),
            np.arange(slo[0], shi[0]),
            indexing="ij",
        )
        p = geometry.index_to_lps(np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1))
        ab = b - a
        n = float(ab @ ab)
        t = np.zeros(len(p)) if n == 0 else np.clip((p - a) @ ab / n, 0.0, 1.0)
        d2 = ((p - a - t[:, None] * ab) ** 2).sum(axis=1)
        inside = (d2 <= r2).reshape(kk.shape)
        sub = (
            slice(slo[2] - lo[2], shi[2] - lo[2]),
            slice(slo[1] - lo[1], shi[1] - lo[1]),
            slice(slo[0] - lo[0], shi[0] - lo[0]),
        )
        mask[sub] |= inside
    if not mask.any():
        return None
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    return box, mask


def label_digest(array: np.ndarray, value: int) -> str:
    """A short digest of one label's voxels (which voxels carry ``value``, on this grid)."""
    h = hashlib.blake2b(repr(tuple(array.shape)).encode(), digest_size=16)
    h.update(np.packbits(np.asarray(array) == value).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class SurfaceStatus:
    """Which labels' surfaces are out of date (see :func:`surface_status`).

    Attributes
    ----------
    counts : numpy.ndarray, shape (256,)
        Voxels per label value.
    digests : dict of int to str
        :func:`label_digest` of every label that has voxels.
    outdated : list of int
        Labels with voxels whose surface is missing or was built from other voxels.
    missing : list of int
        Those of ``outdated`` that have no surface at all.
    emptied : list of int
        Labels that have a surface but no voxels (any more).
    """

    counts: np.ndarray
    digests: dict[int, str]
    outdated: list[int]
    missing: list[int]
    emptied: list[int]

    def against(
        self, values: Iterable[int], built: Mapping[int, Sequence[str | None]]
    ) -> SurfaceStatus:
        """The same voxels compared with other surfaces (no pass over the voxels)."""
        counts, digests = self.counts, self.digests
        values = [int(v) for v in values]
        outdated = [
            v
            for v in values
            if counts[v] and any(d != digests.get(v) for d in built.get(v) or [None])
        ]
        missing = [v for v in outdated if not built.get(v)]
        emptied = [v for v in built if built[v] and (v not in values or not counts[v])]
        return SurfaceStatus(counts, digests, outdated, missing, emptied)


def surface_status(
    array: np.ndarray, values: Iterable[int], built: Mapping[int, Sequence[str | None]]
) -> SurfaceStatus:
    """Compare the label map with the surfaces built from it.

    Parameters
    ----------
    array : numpy.ndarray of uint8
        The label map's voxels.
    values : iterable of int
        The labels of the map.
    built : mapping of int to sequence of (str or None)
        For each label that has surfaces: the :func:`label_digest` each was built from
        (``None``: not known, counted as out of date).
    """
    counts = np.bincount(np.asarray(array).ravel(), minlength=256)
    values = [int(v) for v in values]
    digests = {v: label_digest(array, v) for v in values if counts[v]}
    return SurfaceStatus(counts, digests, [], [], []).against(values, built)
