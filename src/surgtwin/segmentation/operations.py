"""Segmentation operations as pure functions on masks (bool arrays [k, j, i]).

Distances are in millimetres and honour anisotropic voxels (margins come from Euclidean
distance maps, Maurer et al., IEEE PAMI 25(2), 2003, as SimpleITK implements them). Every
function works on the bounding box of its input plus the margin it needs, so small structures
in big volumes stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from surgtwin.imaging.volume import ImageGeometry, Volume
from surgtwin.segmentation.labelmap import SegmentationError

Box = tuple[slice, slice, slice]


def bbox(
    mask: np.ndarray, margin: Sequence[int] = (0, 0, 0), within: Box | None = None
) -> Box | None:
    """Bounding box (k, j, i slices) of the True voxels, grown by ``margin`` voxels per axis.

    ``within``: a box known to contain every True voxel (the search is restricted to it).
    """
    shape = mask.shape
    offset = [0, 0, 0]
    if within is not None:
        offset = [s.start for s in within]
        mask = mask[within]
    # slices first, then rows and columns within the occupied slices only (one full pass)
    ks = np.flatnonzero(mask.any(axis=(1, 2)))
    if ks.size == 0:
        return None
    rows = mask[ks[0] : ks[-1] + 1].any(axis=0)
    js = np.flatnonzero(rows.any(axis=1))
    cols = np.flatnonzero(rows.any(axis=0))
    out = []
    for axis, idx in enumerate((ks, js, cols)):
        lo = max(0, offset[axis] + int(idx[0]) - margin[axis])
        hi = min(shape[axis], offset[axis] + int(idx[-1]) + 1 + margin[axis])
        out.append(slice(lo, hi))
    return tuple(out)


def _sitk(mask: np.ndarray, spacing_xyz: Sequence[float]) -> sitk.Image:
    if mask.dtype == bool:
        mask = np.ascontiguousarray(mask).view(np.uint8)
    img = sitk.GetImageFromArray(mask)
    img.SetSpacing([float(s) for s in spacing_xyz])
    return img


def _margin_voxels(mm: float, spacing_xyz: Sequence[float]) -> tuple[int, int, int]:
    sx, sy, sz = spacing_xyz
    return (int(np.ceil(mm / sz)) + 1, int(np.ceil(mm / sy)) + 1, int(np.ceil(mm / sx)) + 1)


# ---------------------------------------------------------------------------- thresholds


def threshold(volume: Volume, lower: float, upper: float) -> np.ndarray:
    """Voxels with ``lower <= value <= upper`` (HU for CT)."""
    if lower > upper:
        raise SegmentationError(f"threshold range {lower}..{upper} is empty")
    arr = volume.array
    return (arr >= lower) & (arr <= upper)


def otsu(volume: Volume, classes: int = 2) -> np.ndarray:
    """Foreground by Otsu's method (2 classes) or the brightest class of multi-Otsu."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(volume.array, dtype=np.float32))
    if classes <= 2:
        # OtsuThreshold labels voxels below the threshold with insideValue
        out = sitk.OtsuThreshold(img, 0, 1, 256)
        return sitk.GetArrayFromImage(out).astype(bool)
    labels = sitk.OtsuMultipleThresholds(
        img, numberOfThresholds=classes - 1, numberOfHistogramBins=256
    )
    arr = sitk.GetArrayFromImage(labels)
    return arr == arr.max()


# ---------------------------------------------------------------------------- region growing


def _seed_indices(
    geometry: ImageGeometry, seeds_lps: Sequence[Sequence[float]]
) -> list[tuple[int, int, int]]:
    ijk = np.rint(geometry.lps_to_index(np.atleast_2d(np.asarray(seeds_lps, dtype=float)))).astype(
        int
    )
    inside = geometry.contains_index(ijk)
    if not inside.all():
        bad = np.asarray(seeds_lps)[~inside][0]
        raise SegmentationError(f"seed {tuple(np.round(bad, 1))} mm (LPS) lies outside the volume")
    return [tuple(int(v) for v in p) for p in ijk]


def _in_range_seed(arr: np.ndarray, seed: tuple[int, int, int], lower: float, upper: float):
    """The seed voxel, or (on noisy images) the nearest voxel within one voxel that is in range."""
    i, j, k = seed
    if lower <= arr[k, j, i] <= upper:
        return seed
    best = None
    for dk in (-1, 0, 1):
        for dj in (-1, 0, 1):
            for di in (-1, 0, 1):
                kk, jj, ii = k + dk, j + dj, i + di
                inside = (
                    0 <= kk < arr.shape[0] and 0 <= jj < arr.shape[1] and 0 <= ii < arr.shape[2]
                )
                if inside and lower <= arr[kk, jj, ii] <= upper:
                    d = dk * dk + dj * dj + di * di
                    if best is None or d < best[0]:
                        best = (d, (ii, jj, kk))
    if best is None:
        raise SegmentationError(
            f"the seed at voxel ({i}, {j}, {k}) has value {arr[k, j, i]}, outside "
            f"{lower:g}..{upper:g}, and so has every voxel around it"
        )
    return best[1]


def region_grow(
    volume: Volume, seeds_lps: Sequence[Sequence[float]], lower: float, upper: float
) -> np.ndarray:
    """Voxels within ``lower..upper`` connected (6-neighbourhood) to any seed (LPS mm)."""
    arr = volume.array
    seeds = [
        _in_range_seed(arr, s, lower, upper) for s in _seed_indices(volume.geometry, seeds_lps)
    ]
    inside = threshold(volume, lower, upper)
    img = _sitk(inside, volume.spacing)
    grown = sitk.ConnectedThreshold(img, seedList=seeds, lower=1, upper=1)
    return sitk.GetArrayFromImage(grown).astype(bool)


def confidence_grow(
    volume: Volume,
    seeds_lps: Sequence[Sequence[float]],
    multiplier: float = 2.5,
    iterations: int = 4,
    radius: int = 1,
) -> np.ndarray:
    """Confidence-connected growing: mean +- ``multiplier`` standard deviations, refined."""
    seeds = _seed_indices(volume.geometry, seeds_lps)
    img = sitk.GetImageFromArray(np.ascontiguousarray(volume.array, dtype=np.float32))
    out = sitk.ConfidenceConnected(
        img,
        seedList=seeds,
        numberOfIterations=iterations,
        multiplier=multiplier,
        initialNeighborhoodRadius=radius,
        replaceValue=1,
    )
    return sitk.GetArrayFromImage(out).astype(bool)


# ---------------------------------------------------------------------------- islands


def _narrow(labels: sitk.Image) -> sitk.Image:
    """Component labels as 16-bit when they fit (half the memory of ITK's 32-bit output)."""
    stats = sitk.MinimumMaximumImageFilter()
    stats.Execute(labels)
    if stats.GetMaximum() < 255:
        return sitk.Cast(labels, sitk.sitkUInt8)
    if stats.GetMaximum() < 65535:
        return sitk.Cast(labels, sitk.sitkUInt16)
    return labels


def _components_image(
    mask: np.ndarray, fully_connected: bool = True
) -> tuple[sitk.Image, np.ndarray]:
    """Connected components as a SimpleITK label image (1 = largest) and the voxel counts."""
    return _components_from_image(_sitk(mask, (1, 1, 1)), fully_connected)


def _components_from_image(
    img: sitk.Image, fully_connected: bool = True
) -> tuple[sitk.Image, np.ndarray]:
    cc = _narrow(sitk.ConnectedComponent(img, fully_connected))
    relabel = sitk.RelabelComponentImageFilter()
    relabel.SortByObjectSizeOn()
    labels = relabel.Execute(cc)
    return labels, np.asarray(relabel.GetSizeOfObjectsInPixels(), dtype=np.int64)


def _select(labels: sitk.Image, keep: np.ndarray, n: int) -> np.ndarray:
    """Mask of the components whose label is in ``keep`` (labels 1..n, 1 the largest)."""
    view = sitk.GetArrayViewFromImage(labels)
    keep = np.asarray(keep, dtype=np.int64)
    if keep.size == 0:
        return np.zeros(view.shape, dtype=bool)
    if view.dtype.itemsize <= 2:
        lut = np.zeros(int(np.iinfo(view.dtype).max) + 1, dtype=bool)
        lut[keep] = True
        return lut[view]
    top = int(keep.max())
    if np.array_equal(np.sort(keep), np.arange(1, top + 1)):
        return sitk.GetArrayFromImage(sitk.BinaryThreshold(labels, 1, top, 1, 0)).view(bool)
    keep_set = {int(v) for v in keep}
    drop = {v: 0 for v in range(1, n + 1) if v not in keep_set}
    kept = sitk.ChangeLabel(labels, changeMap=drop)
    return sitk.GetArrayFromImage(sitk.BinaryThreshold(kept, 1, n, 1, 0)).view(bool)


def components(mask: np.ndarray, fully_connected: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Connected components sorted by size: (labels, voxel counts), label 1 the largest."""
    if not mask.any():
        return np.zeros(mask.shape, np.uint32), np.zeros(0, np.int64)
    labels, counts = _components_image(mask, fully_connected)
    return sitk.GetArrayFromImage(labels), counts


def keep_largest(mask: np.ndarray) -> np.ndarray:
    """The largest island (26-connected)."""
    if not mask.any():
        return mask.copy()
    labels, counts = _components_image(mask)
    return _select(labels, np.array([1]), len(counts))


def keep_containing(
    mask: np.ndarray, geometry: ImageGeometry, seed_lps: Sequence[float]
) -> np.ndarray:
    """The island that contains the seed point."""
    ((i, j, k),) = _seed_indices(geometry, [seed_lps])
    if not mask[k, j, i]:
        raise SegmentationError("the seed point is not inside the segmentation")
    labels, counts = _components_image(mask)
    value = int(sitk.GetArrayViewFromImage(labels)[k, j, i])
    return _select(labels, np.array([value]), len(counts))


def remove_small(mask: np.ndarray, geometry: ImageGeometry, min_mm3: float) -> np.ndarray:
    """Drop islands smaller than ``min_mm3``."""
    if not mask.any():
        return mask.copy()
    labels, counts = _components_image(mask)
    keep = np.flatnonzero(counts * geometry.voxel_volume_mm3 >= min_mm3) + 1
    return _select(labels, keep, len(counts))


def split_islands(mask: np.ndarray, max_islands: int = 50) -> list[np.ndarray]:
    """Each island as its own mask, largest first."""
    labels, counts = components(mask)
    return [labels == v for v in range(1, min(len(counts), max_islands) + 1)]


# ---------------------------------------------------------------------------- morphology


def fill_holes(mask: np.ndarray, inplace: bool = False, within: Box | None = None) -> np.ndarray:
    """Fill cavities not connected to the outside (3D): background islands (6-connected) that
    do not reach the border of the structure's bounding box (``within``: a box known to hold
    the whole structure, to skip searching the volume)."""
    box = bbox(mask, within=within)
    if box is None:
        return mask if inplace else mask.copy()
    sub = np.pad(mask[box], 1)
    np.logical_not(sub, out=sub)  # background = 1
    img = _sitk(sub, (1, 1, 1))
    del sub
    bg = _narrow(sitk.ConnectedComponent(img, False))
    del img
    outside = int(sitk.GetArrayViewFromImage(bg)[0, 0, 0])
    # inside = everything but the outside background component
    inside = sitk.BinaryThreshold(bg, outside, outside, 0, 1)
    del bg
    out = mask if inplace else mask.copy()
    out[box] = sitk.GetArrayViewFromImage(inside)[1:-1, 1:-1, 1:-1].view(bool)
    return out


def _distance(mask: np.ndarray, spacing_xyz: Sequence[float]) -> np.ndarray:
    """Signed distance in mm to the centres of the mask's boundary voxels, negative inside."""
    img = _sitk(mask, spacing_xyz)
    d = sitk.SignedMaurerDistanceMap(
        img, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    return sitk.GetArrayFromImage(d)


def _half_voxel(geometry: ImageGeometry) -> float:
    """The surface of a voxel mask lies half a voxel beyond the centres of its boundary voxels,
    where the distance map is zero; margins are measured from that surface."""
    return 0.5 * min(geometry.spacing)


def grow(mask: np.ndarray, geometry: ImageGeometry, margin_mm: float) -> np.ndarray:
    """Dilate by a margin in mm (Euclidean, anisotropic spacing honoured)."""
    if margin_mm <= 0:
        return mask.copy()
    box = bbox(mask, _margin_voxels(margin_mm, geometry.spacing))
    if box is None:
        return mask.copy()
    out = np.zeros_like(mask)
    out[box] = _distance(mask[box], geometry.spacing) <= margin_mm + _half_voxel(geometry)
    return out


def shrink(mask: np.ndarray, geometry: ImageGeometry, margin_mm: float) -> np.ndarray:
    """Erode by a margin in mm."""
    if margin_mm <= 0:
        return mask.copy()
    box = bbox(mask, (1, 1, 1))
    if box is None:
        return mask.copy()
    out = np.zeros_like(mask)
    sub = np.pad(mask[box], 1)
    # erosion is dilation of the background: keep voxels farther than the margin from it
    away = _distance(~sub, geometry.spacing) > margin_mm + _half_voxel(geometry)
    out[box] = away[1:-1, 1:-1, 1:-1]
    return out


def closing(mask: np.ndarray, geometry: ImageGeometry, radius_mm: float) -> np.ndarray:
    """Close gaps narrower than twice ``radius_mm``."""
    return shrink(grow(mask, geometry, radius_mm), geometry, radius_mm) | mask


def opening(mask: np.ndarray, geometry: ImageGeometry, radius_mm: float) -> np.ndarray:
    """Remove parts thinner than twice ``radius_mm``."""
    return grow(shrink(mask, geometry, radius_mm), geometry, radius_mm) & mask


def hollow(mask: np.ndarray, geometry: ImageGeometry, thickness_mm: float) -> np.ndarray:
    """A shell of ``thickness_mm`` inside the surface (for printing light models)."""
    return mask & ~shrink(mask, geometry, thickness_mm)


def combine(a: np.ndarray, b: np.ndarray, op: str) -> np.ndarray:
    """``union``, ``subtract`` (a minus b) or ``intersect``."""
    if op == "union":
        return a | b
    if op == "subtract":
        return a & ~b
    if op == "intersect":
        return a & b
    raise SegmentationError(f"unknown operation {op!r} (union, subtract, intersect)")


def sphere(
    geometry: ImageGeometry, centre_lps: Sequence[float], radius_mm: float
) -> tuple[Box, np.ndarray] | None:
    """The voxels of a ball (brush stroke): its box and the mask within it; ``None`` if outside."""
    if radius_mm <= 0:
        raise SegmentationError("the brush radius must be positive")
    c = geometry.lps_to_index(np.asarray(centre_lps, dtype=float)[None])[0]
    sx, sy, sz = geometry.spacing
    half = np.array([radius_mm / sx, radius_mm / sy, radius_mm / sz]) * 1.8  # covers rotation
    lo = np.maximum(np.floor(c - half), 0).astype(int)
    hi = np.minimum(np.ceil(c + half) + 1, geometry.size).astype(int)
    if np.any(hi <= lo):
        return None
    ii, jj, kk = np.meshgrid(
        np.arange(lo[0], hi[0]), np.arange(lo[1], hi[1]), np.arange(lo[2], hi[2]), indexing="ij"
    )
    pts = geometry.index_to_lps(np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1))
    inside = np.linalg.norm(pts - np.asarray(centre_lps, dtype=float), axis=1) <= radius_mm
    mask = inside.reshape(ii.shape).transpose(2, 1, 0)  # (i, j, k) -> (k, j, i)
    if not mask.any():
        return None
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    return box, mask
