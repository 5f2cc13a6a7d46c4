"""What the segmentation file formats share: the error, label tables, grid checks, SNOMED codes.

Every position is patient LPS millimetres (see :mod:`surgtwin.segmentation.seg_io`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from surgtwin.fileio import FileError
from surgtwin.imaging.volume import ImageGeometry
from surgtwin.segmentation.labelmap import (
    EXTRA_COLOURS,
    MAX_LABELS,
    ROLE_COLOURS,
    Label,
    Role,
)

# Grid comparison tolerances. NIfTI stores its transform in float32 (about 1e-7 relative), so a
# read-back grid differs from the original by a few micrometres at most.
DIRECTION_TOL = 1e-4  # direction cosines
SPACING_TOL_MM = 1e-4
INDEX_TOL = 1e-3  # fraction of a voxel

# (category, type) as (code value, scheme, meaning) per role, SNOMED CT codes as used by DICOM
# (PS3.16 CID 7150 Segmentation Property Categories and the type context groups).
_SCT_TISSUE = ("85756007", "SCT", "Tissue")
_SCT_ANATOMY = ("91723000", "SCT", "Anatomical structure")
ROLE_CODES: dict[Role, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    Role.BONE: (_SCT_TISSUE, ("272673000", "SCT", "Bone structure")),
    Role.SKIN: (_SCT_TISSUE, ("39937001", "SCT", "Skin")),
    Role.CRITICAL: (_SCT_ANATOMY, _SCT_ANATOMY),
    Role.TARGET: (
        ("49755003", "SCT", "Morphologically abnormal structure"),
        ("108369006", "SCT", "Neoplasm"),
    ),
    Role.OTHER: (_SCT_TISSUE, _SCT_TISSUE),
}


class SegIOError(FileError):
    """A segmentation file that cannot be written or read, with the reason in plain words.

    Parameters
    ----------
    problem : str
        What is wrong, in plain words (or the whole message, file included).
    path : str or os.PathLike, optional
        The file concerned; the message is then ``"<path>: <problem>"``.
    """


def all_labels(table: Mapping[int, Label], present: np.ndarray) -> list[Label]:
    """The labels by value: the label table plus the unnamed values found in the voxels.

    Parameters
    ----------
    table : mapping of int to Label
        The known labels by value (e.g. ``labelmap.labels``).
    present : numpy.ndarray of bool, shape (256,)
        Which values occur in the voxels (:func:`labels_present`); those missing from ``table``
        become ``Label <value>`` with a palette colour.
    """
    labels = dict(table)
    for value in np.flatnonzero(present[1:]) + 1:
        if int(value) not in labels:
            labels[int(value)] = Label(int(value), f"Label {int(value)}", palette(int(value)))
    return [labels[v] for v in sorted(labels)]


def palette(value: int) -> tuple[float, float, float]:
    """The default colour (RGB 0..1) of label ``value``."""
    colours = [ROLE_COLOURS["other"], *EXTRA_COLOURS]
    return tuple(float(c) for c in colours[value % len(colours)])


def labels_present(array: np.ndarray, k_planes: np.ndarray | None = None) -> np.ndarray:
    """bool[256]: which label values occur in the array (from per-slice presence if given)."""
    if k_planes is None:
        k_planes = planes_with(array, 0)
    return k_planes.any(axis=0)


def require_voxels(present: np.ndarray, what: str) -> None:
    """Refuse to save an empty label map as ``what``."""
    if not present[1:].any():
        raise SegIOError(
            f"the label map is empty (no voxel carries a label), so there is nothing to save as "
            f"{what}; segment a structure first"
        )


def same_grid(a: ImageGeometry, b: ImageGeometry) -> bool:
    """Whether two grids are the same within the module's tolerances."""
    return (
        tuple(a.shape) == tuple(b.shape)
        and np.allclose(a.spacing, b.spacing, rtol=0, atol=SPACING_TOL_MM)
        and np.allclose(a.direction, b.direction, rtol=0, atol=DIRECTION_TOL)
        and np.allclose(b.lps_to_index(np.asarray(a.origin, float)), 0.0, rtol=0, atol=INDEX_TOL)
    )


def right_handed(
    array: np.ndarray, origin: np.ndarray, spacing: np.ndarray, direction: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flip the k axis of a left-handed grid (same voxels at the same places, k reversed)."""
    if np.linalg.det(direction) >= 0:
        return array, origin, direction
    k_last = array.shape[0] - 1
    origin = origin + k_last * spacing[2] * direction[:, 2]
    direction = direction.copy()
    direction[:, 2] *= -1
    return np.ascontiguousarray(array[::-1]), origin, direction


def check_axes(direction: np.ndarray, where: str) -> None:
    """Refuse a sheared grid (direction columns not orthonormal)."""
    gram = direction.T @ direction
    if not np.allclose(gram, np.eye(3), rtol=0, atol=DIRECTION_TOL):
        raise SegIOError(
            f"{where}: the grid axes are not perpendicular (a sheared grid); SurgTwin label maps "
            "need a rectangular grid"
        )


def fit_to_geometry(
    array: np.ndarray, found: ImageGeometry, target: ImageGeometry | None, where: str
) -> tuple[np.ndarray, ImageGeometry]:
    """Put a label array read from a file on ``target`` (when given).

    The file's grid must be the target grid or a box of it (3D Slicer may save only the region
    that holds segments); anything else would need resampling and is refused.
    """
    if target is None:
        return array, found
    if same_grid(found, target):
        return array, target
    if np.allclose(found.spacing, target.spacing, rtol=0, atol=SPACING_TOL_MM) and np.allclose(
        found.direction, target.direction, rtol=0, atol=DIRECTION_TOL
    ):
        offset = target.lps_to_index(np.asarray(found.origin, float))
        rounded = np.rint(offset).astype(int)
        size = np.asarray(found.size)
        if (
            np.allclose(offset, rounded, rtol=0, atol=INDEX_TOL)
            and np.all(rounded >= 0)
            and np.all(rounded + size <= np.asarray(target.size))
        ):
            out = np.zeros(target.shape, dtype=np.uint8)
            i0, j0, k0 = (int(v) for v in rounded)
            ni, nj, nk = (int(v) for v in size)
            out[k0 : k0 + nk, j0 : j0 + nj, i0 : i0 + ni] = array
            return out, target
    raise SegIOError(
        f"{where}: the label map's grid ({describe_grid(found)}) is not the volume's grid "
        f"({describe_grid(target)}); resample it onto the volume first"
    )


def describe_grid(g: ImageGeometry) -> str:
    """The grid in words, for error messages."""
    size = "x".join(str(v) for v in g.size)
    spacing = "x".join(f"{v:g}" for v in g.spacing)
    origin = ", ".join(f"{v:.2f}" for v in g.origin)
    return f"{size} voxels of {spacing} mm at LPS ({origin}) mm"


def planes_with(array: np.ndarray, axis: int) -> np.ndarray:
    """(n, 256) bool: which label values occur in each plane along ``axis`` (0 = k, 2 = i)."""
    n = array.shape[axis]
    out = np.zeros((n, MAX_LABELS + 1), dtype=bool)
    for index in range(n):
        plane = np.take(array, index, axis=axis)
        out[index] = np.bincount(plane.ravel(), minlength=MAX_LABELS + 1) > 0
    return out


def as_label_values(data: np.ndarray, where: str) -> np.ndarray:
    """Integer label values: integer arrays as they are, floats only when integral."""
    if data.dtype.kind == "f":
        if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
            raise SegIOError(f"{where}: the image holds fractional values, not label values")
        return data.astype(np.int64)
    return data


def require_label_range(values: np.ndarray, where: str) -> None:
    """Refuse values outside 0..255 (what a label map holds)."""
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi > MAX_LABELS:
        raise SegIOError(
            f"{where}: label values range from {lo} to {hi}; a label map holds 0..{MAX_LABELS}"
        )


def parse_colour(
    text: str | None, fallback: tuple[float, float, float]
) -> tuple[float, float, float]:
    """RGB 0..1 (clipped) from ``"r g b"`` text; ``fallback`` if missing or unreadable."""
    if not text:
        return fallback
    try:
        parts = [float(v) for v in text.split()[:3]]
    except ValueError:
        return fallback
    if len(parts) != 3 or not all(math.isfinite(v) for v in parts):
        return fallback
    return tuple(min(max(v, 0.0), 1.0) for v in parts)
