"""Slice geometry: sort along the slice normal, check spacing and tilt, derive the volume grid.

All positions are patient LPS millimetres (DICOM's patient coordinate system). The volume grid has
axis i along the image rows (direction of increasing column index), j along the columns, and k
along the slice normal ``row x column`` (so the direction matrix is always right-handed).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from surgtwin.imaging import findings as fc
from surgtwin.imaging.findings import Finding, Severity

# Two slices closer than this along the normal are at the same position.
DUPLICATE_TOL_MM = 1e-3
# Tilt below this angle is float noise in the positions, not a tilted gantry.
TILT_TOL_DEG = 0.05


@dataclass(frozen=True)
class Grid:
    """A regular grid in patient LPS mm.

    Attributes
    ----------
    size : tuple of int
        (columns, rows, slices), i.e. voxels along i, j, k.
    spacing : tuple of float
        (x, y, z) = (column spacing, row spacing, slice spacing) in mm.
    origin : tuple of float
        LPS mm of the centre of voxel (0, 0, 0).
    direction : tuple of 9 float
        Row-major 3x3 matrix whose columns are the i, j, k axes in LPS.
    """

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @property
    def matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=float).reshape(3, 3)


@dataclass(frozen=True)
class StackGeometry:
    """The result of checking one stack of slices.

    Attributes
    ----------
    order : tuple of int
        Indices of the input slices, sorted along the normal (increasing).
    grid : Grid
        The grid of the volume as loaded (after tilt correction).
    offsets : numpy.ndarray
        Distance of each sorted slice along the normal from the first, in mm.
    tilt_deg : float
        Gantry tilt in degrees derived from the positions (0 when orthogonal).
    shear : tuple of float
        In-plane shift per mm along the normal, (along i, along j), for tilt correction.
    uniform : bool
        True when slices are evenly spaced (no gap, no jitter beyond tolerance).
    """

    order: tuple[int, ...]
    grid: Grid
    offsets: np.ndarray
    tilt_deg: float
    shear: tuple[float, float]
    uniform: bool
    findings: tuple[Finding, ...]


def normal_of(orientation: tuple[float, ...]) -> np.ndarray:
    """Unit slice normal ``row x column`` of an ImageOrientationPatient."""
    r = np.asarray(orientation[:3], dtype=float)
    c = np.asarray(orientation[3:], dtype=float)
    n = np.cross(r, c)
    return n / np.linalg.norm(n)


def same_orientation(a: tuple[float, ...], b: tuple[float, ...], tol: float = 1e-3) -> bool:
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) <= tol


def _orthonormal(orientation: tuple[float, ...]) -> np.ndarray:
    r = np.asarray(orientation[:3], dtype=float)
    r /= np.linalg.norm(r)
    c = np.asarray(orientation[3:], dtype=float)
    c = c - r * float(r @ c)
    c /= np.linalg.norm(c)
    return np.column_stack([r, c, np.cross(r, c)])


def stack_geometry(
    positions: np.ndarray,
    orientation: tuple[float, ...],
    pixel_spacing: tuple[float, float],
    rows: int,
    columns: int,
    thickness: float | None = None,
    resample: bool = False,
) -> StackGeometry:
    """Sort slices along the normal and check them.

    Parameters
    ----------
    positions : numpy.ndarray, shape (n, 3)
        ImagePositionPatient of each slice, LPS mm.
    orientation : tuple of 6 float
        Shared ImageOrientationPatient.
    pixel_spacing : tuple of 2 float
        (row spacing, column spacing) in mm, as in DICOM PixelSpacing.
    rows, columns : int
        Image size.
    thickness : float, optional
        Slice thickness in mm, used as the spacing of a single slice.
    resample : bool
        Whether the caller will resample uneven spacing onto a uniform grid.
    """
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    axes = _orthonormal(orientation)
    n = axes[:, 2]
    d = positions @ n
    order = np.argsort(d, kind="stable")
    d_sorted = d[order]
    p_sorted = positions[order]
    offsets = d_sorted - d_sorted[0]
    findings: list[Finding] = []
    dx, dy = float(pixel_spacing[1]), float(pixel_spacing[0])
    count = len(order)
    tilt = 0.0
    shear = (0.0, 0.0)
    uniform = True
    if count == 1:
        dz = float(thickness) if thickness and thickness > 0 else 1.0
        findings.append(
            Finding(
                fc.SINGLE_SLICE,
                f"a single image: the volume is one slice thick ({dz:g} mm assumed)",
                Severity.INFO,
            )
        )
    else:
        steps = np.diff(d_sorted)
        dz = float(np.median(steps))
        # Tilt: the slice origins drift within the image plane as we move along the normal.
        span = p_sorted[-1] - p_sorted[0]
        along = float(span @ n)
        inplane = span - along * n
        if along > 0:
            tilt = math.degrees(math.atan2(float(np.linalg.norm(inplane)), along))
            if tilt > TILT_TOL_DEG:
                shear = (float(inplane @ axes[:, 0]) / along, float(inplane @ axes[:, 1]) / along)
        tol = max(0.01, 0.01 * dz)
        deviation = np.abs(steps - dz)
        if np.any(deviation > tol):
            uniform = False
            ratios = steps / dz
            gaps = np.where((ratios > 1.5) & (np.abs(ratios - np.round(ratios)) < 0.1))[0]
            others = np.where(deviation > tol)[0]
            hint = (
                "; it is resampled onto a uniform grid as asked"
                if resample
                else "; load it with resampling (--resample) to interpolate a uniform grid"
            )
            sev = Severity.WARNING if resample else Severity.ERROR
            if len(gaps) and set(others.tolist()) <= set(gaps.tolist()):
                missing = int(sum(round(r) - 1 for r in ratios[gaps]))
                where = "; ".join(
                    f"between {d_sorted[g]:.2f} and {d_sorted[g + 1]:.2f} mm"
                    for g in gaps[:3].tolist()
                )
                findings.append(
                    Finding(
                        fc.MISSING_SLICES,
                        f"{missing} slice(s) missing: gap of {steps[gaps].max():.2f} mm where "
                        f"slices are {dz:.2f} mm apart (positions along the slice normal "
                        f"{where}){hint}",
                        sev,
                    )
                )
            else:
                findings.append(
                    Finding(
                        fc.UNEVEN_SPACING,
                        f"slice spacing is uneven: {steps.min():.3f} to {steps.max():.3f} mm "
                        f"(median {dz:.3f} mm){hint}",
                        sev,
                    )
                )
            if resample:
                dz = float(steps.min())
    # Grid after tilt correction: the in-plane drift widens the field of view.
    origin = p_sorted[0].copy()
    size_i, size_j = columns, rows
    total = float(offsets[-1]) if count > 1 else 0.0
    if shear != (0.0, 0.0):
        shift_i, shift_j = shear[0] * total, shear[1] * total
        extra_i = math.ceil(abs(shift_i) / dx - 1e-6)
        extra_j = math.ceil(abs(shift_j) / dy - 1e-6)
        origin = origin + min(shift_i, 0.0) * axes[:, 0] + min(shift_j, 0.0) * axes[:, 1]
        size_i += extra_i
        size_j += extra_j
        findings.append(
            Finding(
                fc.GANTRY_TILT,
                f"gantry tilt of {tilt:.1f} degrees: the slices are sheared; SurgTwin resampled "
                f"them onto an orthogonal grid ({size_i} x {size_j} pixels) so that distances "
                "and positions are true",
                Severity.WARNING,
            )
        )
    n_slices = count if (uniform or count == 1) else round(total / dz) + 1
    grid = Grid(
        size=(size_i, size_j, n_slices),
        spacing=(dx, dy, dz),
        origin=tuple(float(v) for v in origin),
        direction=tuple(float(v) for v in axes.reshape(-1)),
    )
    return StackGeometry(
        order=tuple(int(i) for i in order),
        grid=grid,
        offsets=offsets,
        tilt_deg=tilt if shear != (0.0, 0.0) else 0.0,
        shear=shear,
        uniform=uniform,
        findings=tuple(findings),
    )


def duplicate_groups(positions: np.ndarray, orientation: tuple[float, ...]) -> list[list[int]]:
    """Groups (of indices) of slices lying at the same position; empty when all are distinct."""
    positions = np.asarray(positions, dtype=float).reshape(-1, 3)
    d = positions @ normal_of(orientation)
    order = np.argsort(d, kind="stable")
    groups: list[list[int]] = []
    current = [int(order[0])] if len(order) else []
    for a, b in itertools.pairwise(order):
        if abs(d[b] - d[a]) < DUPLICATE_TOL_MM:
            current.append(int(b))
        else:
            if len(current) > 1:
                groups.append(current)
            current = [int(b)]
    if len(current) > 1:
        groups.append(current)
    return groups
