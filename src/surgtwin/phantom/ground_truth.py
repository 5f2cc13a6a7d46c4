"""Ground truth of the lumbar phantom in LPS mm: canal, bodies, ideal screw axes, lesion, volumes.

Computed from the same shapes :mod:`surgtwin.phantom.anatomy` paints, so tests can assert exact
distances and volumes against the rendered volume.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from surgtwin.phantom.anatomy import (
    ARCH_CORTEX_MM,
    BODY_CORTEX_MM,
    DISCS,
    GRID,
    LESION_CENTRE,
    LESION_LEVEL,
    LESION_RADIUS_MM,
    MARKER_CENTRE,
    MARKER_RADIUS_MM,
    NOISE_SEED,
    NOISE_SIGMA_HU,
    RAMP_MM,
    SIDES,
    TARGET_DEPTH_FRACTION,
    TISSUE_HU,
    TP_Y,
    Grid,
    Vertebra,
    build_canal,
    build_vertebrae,
    disc_geometry,
)
from surgtwin.phantom.shapes import Box, EllipticCylinder, Shape


def _first_exit(
    sdf: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    starts: np.ndarray,
    directions: np.ndarray,
    t_max: float,
    step: float,
) -> np.ndarray:
    """Distance (mm) along each ray to the first point outside ``sdf`` (``t_max`` if none).

    Parameters
    ----------
    sdf : callable
        Signed distance of the solid (negative inside).
    starts, directions : numpy.ndarray
        Ray origins (mm) and unit directions, shape ``(..., 3)``, broadcastable.
    t_max, step : float
        Search range and coarse step (mm); the crossing is then refined by bisection.

    Returns
    -------
    numpy.ndarray
        Exit distances (mm), shape of the broadcast ray batch.
    """
    starts, directions = np.broadcast_arrays(starts, directions)
    t = np.arange(1, round(t_max / step) + 1, dtype=np.float64) * step
    pts = starts[..., None, :] + t[:, None] * directions[..., None, :]
    outside = sdf(pts[..., 0], pts[..., 1], pts[..., 2]) > 0
    hit = outside.any(axis=-1)
    idx = np.argmax(outside, axis=-1)
    hi = np.where(hit, t[idx], t_max)
    lo = np.where(idx > 0, t[np.maximum(idx - 1, 0)], 0.0)
    lo = np.where(hit, lo, t_max)
    for _ in range(32):
        mid = (lo + hi) / 2
        p = starts + mid[..., None] * directions
        out = sdf(p[..., 0], p[..., 1], p[..., 2]) > 0
        hi = np.where(out, mid, hi)
        lo = np.where(out, lo, mid)
    return (lo + hi) / 2


def _inscribed_radius(
    sdf: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    centres: np.ndarray,
    axis: np.ndarray,
    n_dirs: int = 72,
    r_max: float = 12.0,
) -> np.ndarray:
    """Radius (mm) of the largest disc perpendicular to ``axis`` at each centre lying in bone."""
    e1 = np.array([-axis[1], axis[0], 0.0])
    e1 = e1 / math.sqrt(float(e1 @ e1))
    e2 = np.array([0.0, 0.0, 1.0])
    angles = [2 * math.pi * k / n_dirs for k in range(n_dirs)]
    dirs = np.array([math.cos(a) * e1 + math.sin(a) * e2 for a in angles])
    exits = _first_exit(sdf, centres[:, None, :], dirs[None, :, :], r_max, 0.25)
    return exits.min(axis=1)


def _body_chord(body: EllipticCylinder, point: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    """Parameters ``u`` (mm) where the line ``point + u d`` enters and leaves the body ellipse."""
    cx, cy, _ = body.frame.origin
    rx, ry = body.radii
    px, py = (point[0] - cx) / rx, (point[1] - cy) / ry
    dx, dy = d[0] / rx, d[1] / ry
    a = dx * dx + dy * dy
    b = 2 * (px * dx + py * dy)
    c = px * px + py * py - 1
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


def _ellipse_distance_xy(p: np.ndarray, radii: tuple[float, float], n: int = 7200) -> float:
    """Distance (mm) from an in-plane point to an origin-centred ellipse region (0 if inside)."""
    if (p[0] / radii[0]) ** 2 + (p[1] / radii[1]) ** 2 <= 1.0:
        return 0.0
    a = np.arange(n) * (2 * math.pi / n)
    ex, ey = radii[0] * np.cos(a), radii[1] * np.sin(a)
    return float(np.sqrt((ex - p[0]) ** 2 + (ey - p[1]) ** 2).min())


def screw_truth(vertebra: Vertebra, side: str) -> dict[str, object]:
    """Ideal pedicle screw trajectory of one side of a vertebra.

    The entry is where the pedicle axis, followed posteriorly from inside the pedicle, leaves
    the bone; the target lies on the axis at ``TARGET_DEPTH_FRACTION`` of the chord that the
    axis cuts through the vertebral body (posterior wall to anterior cortex). The maximum safe
    diameter is twice the smallest, over the axis from entry to target, radius of the largest
    disc centred on the axis and perpendicular to it that lies wholly in bone (cortex
    included): the outer width of the pedicle at its isthmus.

    Parameters
    ----------
    vertebra : Vertebra
        The vertebra.
    side : {"left", "right"}
        Patient side.

    Returns
    -------
    dict
        ``entry``, ``target`` (LPS mm), ``direction`` (unit, entry to target), ``length_mm``,
        ``max_safe_diameter_mm``, ``medial_angle_deg`` and ``min_canal_distance_mm`` (smallest
        distance from the axis to the canal, mm).

    Raises
    ------
    RuntimeError
        If the trajectory leaves bone or enters the canal (inconsistent parameters).
    """
    point, d = vertebra.pedicle_axis(side)
    u_entry = -float(_first_exit(vertebra.outer_sdf, point, -d, 40.0, 0.1))
    u_in, u_out = _body_chord(vertebra.body, point, d)
    u_target = u_in + TARGET_DEPTH_FRACTION * (u_out - u_in)
    entry = point + u_entry * d
    target = point + u_target * d

    us = np.arange(u_entry + 0.05, u_target + 1e-9, 0.25)
    centres = point + us[:, None] * d
    if np.any(vertebra.outer_sdf(centres[:, 0], centres[:, 1], centres[:, 2]) > 0):
        raise RuntimeError(f"{vertebra.spec.name} {side} screw axis leaves bone")
    radius = float(_inscribed_radius(vertebra.outer_sdf, centres, d).min())

    canal_radii = vertebra.canal.radii_at(float(point[2]))
    canal_dist = min(
        _ellipse_distance_xy(c, (float(canal_radii[0]), float(canal_radii[1]))) for c in centres
    )
    if canal_dist < radius:
        raise RuntimeError(f"{vertebra.spec.name} {side} screw axis too close to the canal")
    return {
        "entry": entry.tolist(),
        "target": target.tolist(),
        "direction": d.tolist(),
        "length_mm": float(u_target - u_entry),
        "max_safe_diameter_mm": 2 * radius,
        "medial_angle_deg": vertebra.spec.medial_angle_deg,
        "min_canal_distance_mm": canal_dist,
    }


# --------------------------------------------------------------------------------------------
# Volumes
# --------------------------------------------------------------------------------------------

#: Refinement levels below the voxel of the volume integration: boundary voxels are split down
#: to cells of ``1 / 2**VOLUME_DEPTH`` voxel per axis (8 x 8 x 8 sub-samples per voxel).
VOLUME_DEPTH = 3
#: A cell whose centre is farther than ``VOLUME_BAND`` cell diagonals (by the signed distance)
#: from the surface is wholly inside or outside: twice the half diagonal an exact distance
#: would need, a margin for the approximate distances of ellipses.
VOLUME_BAND = 1.0
#: Largest accepted relative estimated error of the volumes in the ground truth.
VOLUME_TOLERANCE = 1e-3
#: Sample points closer than this (mm) to the surface count one half.
TIE_MM = 1e-9
#: Flag (bit) of a cell lying wholly inside one of the parts.
_WHOLE = np.int64(1) << 62
#: Most cells evaluated at once (bounds the memory of the integration).
_VOLUME_CHUNK = 1 << 20


def _voxel_box(
    shapes: Sequence[Shape], grid: Grid, margin: float, within: tuple[slice, ...] | None = None
) -> tuple[slice, slice, slice]:
    """Column, row and slice ranges of the voxels whose centres lie within ``margin`` (mm) of
    the shapes' joint bounding box, clipped to ``within`` (default: the whole grid)."""
    lo = np.min([s.bounds()[0] for s in shapes], axis=0)
    hi = np.max([s.bounds()[1] for s in shapes], axis=0)
    out = []
    for dim in range(3):
        o, h = grid.origin[dim], grid.spacing[dim]
        a, b = (0, grid.size[dim]) if within is None else (within[dim].start, within[dim].stop)
        i0 = math.floor((lo[dim] - margin - o) / h) if math.isfinite(lo[dim]) else a
        i1 = math.ceil((hi[dim] + margin - o) / h) + 1 if math.isfinite(hi[dim]) else b
        out.append(slice(min(b, max(a, i0)), min(b, max(a, i1))))
    return out[0], out[1], out[2]


def _halves(d: np.ndarray) -> int:
    """Twice the number of sample points inside (``d < 0``), points on the surface
    (``|d| <= TIE_MM``) counting one half.

    Shape parameters commensurate with the grid put whole rows of sample points on some planar
    faces, where rounding alone would otherwise decide.
    """
    return int(np.count_nonzero(d < -TIE_MM)) + int(np.count_nonzero(d <= TIE_MM))


class _Tally:
    """Cell counts of the volume integration, per refinement level."""

    def __init__(self, depth: int) -> None:
        self.inside = [0] * (depth + 1)  # cells settled wholly inside
        self.halves = [0] * (depth + 1)  # twice the unsettled cells whose centre is inside

    def settle(
        self, level: int, d: np.ndarray, reach: float, key: np.ndarray, n_parts: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Count the cells settled at ``level``; return the unsettled ones and their keys.

        ``key`` holds, per cell, bit ``b`` set if the surface of shape ``b`` may cross it and
        ``_WHOLE`` if it lies wholly inside a part (whose part bits are then dropped).
        """
        self.inside[level] += int(np.count_nonzero(d < -reach))
        band = np.abs(d) <= reach
        self.halves[level] += _halves(d[band])
        key = key[band]
        whole = (key & _WHOLE) != 0
        key[whole] &= ~np.int64((1 << n_parts) - 1)
        return band, key

    def estimates(self, voxel_mm3: float) -> list[float]:
        """Volume (mm³) counted at each level, unsettled cells by the sign at their centre."""
        out = []
        settled = 0
        for level, (inside, halves) in enumerate(zip(self.inside, self.halves, strict=True)):
            settled = 8 * settled + inside
            out.append((2 * settled + halves) * voxel_mm3 / (2 * 8**level))
        return out


def _bits(key: int, n: int) -> tuple[int, ...]:
    """Positions of the set bits of ``key`` below ``n``."""
    return tuple(b for b in range(n) if (key >> b) & 1)


def solid_volume(
    parts: Sequence[Shape],
    cutouts: Sequence[Shape] = (),
    grid: Grid = GRID,
    depth: int = VOLUME_DEPTH,
) -> tuple[float, float]:
    """Volume (mm³) of ``(union of parts) minus (union of cutouts)`` in the field of view.

    The signed distance is evaluated at the voxel centres of ``grid``. A voxel whose centre is
    farther than ``VOLUME_BAND`` voxel diagonals from the surface counts as wholly inside or
    outside; every other voxel is split into 2 x 2 x 2 cells and the test repeats with the
    cell diagonal, ``depth`` times; the cells left then count by the sign at their centre.
    The result equals a voxel count supersampled ``2**depth`` times per axis, at the cost of
    the boundary band only. A cell remembers which shapes' surfaces may cross it (and whether
    it lies wholly inside a part), so its subcells evaluate only those shapes.

    Parameters
    ----------
    parts : sequence of Shape
        Solids whose union is measured.
    cutouts : sequence of Shape, optional
        Solids removed from the union.
    grid : Grid
        Image grid; only the solid inside its field of view (voxel edges) is counted.
    depth : int
        Refinement levels below the voxel, at least 1.

    Returns
    -------
    volume : float
        The volume (mm³) counted at ``depth`` levels.
    error : float
        Estimated error (mm³): the change of the count from ``depth - 1`` levels (the count
        converges at least linearly in the cell size).
    """
    shapes = (*parts, *cutouts)
    n_parts = len(parts)
    if n_parts == 0 or len(shapes) > 62 or depth < 1:
        raise ValueError("need 1 to 62 shapes, at least one of them a part, and depth >= 1")
    spacing = np.asarray(grid.spacing, dtype=np.float64)
    tally = _Tally(depth)

    # level 0: the voxels around the parts, each shape evaluated near its bounding box
    reach = VOLUME_BAND * math.sqrt(float(spacing @ spacing))
    region = _voxel_box(parts, grid, reach)
    axes = [grid.axis(dim)[region[dim]] for dim in range(3)]
    size = (len(axes[2]), len(axes[1]), len(axes[0]))
    union = np.full(size, np.inf)
    carve = np.full(size, np.inf)
    key = np.zeros(size, dtype=np.int64)
    for b, shape in enumerate(shapes):
        sub = _voxel_box([shape], grid, reach, region)
        if any(s.start >= s.stop for s in sub):
            continue
        x, y, z = (grid.axis(dim)[sub[dim]] for dim in range(3))
        view = tuple(
            slice(sub[n].start - region[n].start, sub[n].stop - region[n].start) for n in (2, 1, 0)
        )
        d = shape.sdf(x[None, None, :], y[None, :, None], z[:, None, None])
        d = np.broadcast_to(d, (len(z), len(y), len(x)))
        if b < n_parts:
            np.minimum(union[view], d, out=union[view])
            key[view] |= np.where(d < -reach, _WHOLE, np.int64(0))
        else:
            np.minimum(carve[view], d, out=carve[view])
        key[view] |= np.where(np.abs(d) <= reach, np.int64(1) << b, np.int64(0))
    band, key = tally.settle(0, np.maximum(union, -carve), reach, key, n_parts)
    k, j, i = np.nonzero(band)
    centres = np.stack([axes[0][i], axes[1][j], axes[2][k]])
    stack = [(1, int(g), centres[:, key == g]) for g in np.unique(key)]

    # finer levels: a batch of cells sharing their candidate shapes at a time
    corners = np.array([(a, b, c) for c in (-1, 1) for b in (-1, 1) for a in (-1, 1)]).T
    while stack:
        level, group, parents = stack.pop()
        if 8 * parents.shape[1] > _VOLUME_CHUNK:
            n = -(-8 * parents.shape[1] // _VOLUME_CHUNK)
            stack.extend((level, group, c) for c in np.array_split(parents, n, axis=1))
            continue
        size = spacing / (1 << level)
        reach = VOLUME_BAND * math.sqrt(float(size @ size))
        offsets = corners * (size / 2)[:, None]
        centres = (parents[:, :, None] + offsets[:, None, :]).reshape(3, -1)
        x, y, z = centres
        union = np.full(x.shape, -np.inf if group & _WHOLE else np.inf)
        carve = np.full(x.shape, np.inf)
        key = np.full(x.shape, group & _WHOLE, dtype=np.int64)
        for b in _bits(group, len(shapes)):
            d = np.broadcast_to(shapes[b].sdf(x, y, z), x.shape)
            if b < n_parts:
                np.minimum(union, d, out=union)
                key[d < -reach] |= _WHOLE
            else:
                np.minimum(carve, d, out=carve)
            key[np.abs(d) <= reach] |= np.int64(1) << b
        d = np.maximum(union, -carve)
        if level == depth:  # leaves: counted by the sign at their centre
            tally.halves[level] += _halves(d)
            continue
        band, key = tally.settle(level, d, reach, key, n_parts)
        centres = centres[:, band]
        groups = np.unique(key)
        if len(groups) == 1:
            stack.append((level + 1, int(groups[0]), centres))
        else:
            stack.extend((level + 1, int(g), centres[:, key == g]) for g in groups)

    estimates = tally.estimates(float(np.prod(spacing)))
    return estimates[-1], abs(estimates[-1] - estimates[-2])


def _checked_volume(parts: Sequence[Shape], cutouts: Sequence[Shape], grid: Grid) -> float:
    """:func:`solid_volume` (mm³), refused if its estimated error exceeds
    ``VOLUME_TOLERANCE``."""
    volume, error = solid_volume(parts, cutouts, grid)
    if error > VOLUME_TOLERANCE * volume:
        raise RuntimeError(f"volume {volume:.1f} mm3 uncertain by {error:.1f} mm3: refine")
    return volume


def canal_volume(z_range: tuple[float, float]) -> float:
    """Exact volume (mm³) of the spinal canal between two heights.

    The canal's cross-section is an ellipse whose semi-axes vary linearly between the level
    mid-planes (constant beyond them), so its area is quadratic on each piece and Simpson's
    rule integrates it exactly.

    Parameters
    ----------
    z_range : tuple of float
        Bottom and top (mm, z).

    Returns
    -------
    float
        The volume (mm³).
    """
    canal = build_canal()
    z0, z1 = z_range
    cuts = sorted({z0, z1, *(k for k in canal.z_knots if z0 < k < z1)})

    def area(z: float) -> float:
        rx, ry = canal.radii_at(z)
        return math.pi * float(rx) * float(ry)

    return sum(
        (b - a) / 6 * (area(a) + 4 * area((a + b) / 2) + area(b))
        for a, b in itertools.pairwise(cuts)
    )


#: How the screw ground truth is defined (copied into the JSON file).
DEFINITIONS: dict[str, str] = {
    "entry": (
        "Point where the pedicle axis, followed posteriorly from inside the pedicle, leaves the "
        "bone: the posterior cortex at the junction of pedicle, lamina, transverse process and "
        "the base of the superior articular process."
    ),
    "target": (
        f"Point on the pedicle axis at {TARGET_DEPTH_FRACTION:.0%} of the chord the axis cuts "
        "through the vertebral body, measured from the body's posterior wall towards its "
        "anterior cortex."
    ),
    "direction": "Unit vector from entry to target.",
    "length_mm": "Distance from entry to target.",
    "max_safe_diameter_mm": (
        "Twice the smallest, over the axis from entry to target, radius of the largest disc "
        "centred on the axis, perpendicular to it, lying wholly inside the outer bone surface "
        "(cortex included): the outer pedicle width at its isthmus. A screw of this diameter "
        "would just touch the cortex; no safety margin is subtracted."
    ),
    "min_canal_distance_mm": "Smallest distance from the axis (entry to target) to the canal.",
    "medial_angle_deg": "Angle between the axis and the sagittal plane (axis in axial plane).",
    "body_radii_mm": "Vertebral body semi-axes: half width (x), half depth (y), half height (z).",
    "canal": (
        "Spinal canal (CSF) ellipse at the level's body mid-plane: centre, semi-axes and area "
        "(area_mm2 = pi * rx * ry)."
    ),
    "bone_volume_mm3": (
        "Volume of the vertebra's bone: the union of its parts (body, pedicles, laminae, "
        "transverse, superior and inferior articular and spinous processes) minus the spinal "
        "canal, i.e. the region painted as cortical or cancellous bone, bounded by the surface "
        "where the partial-volume ramp is half bone (HU midway between the adjacent soft tissue "
        "and cortical bone on the outer surface; about 350 HU at the canal wall, where CSF is "
        "painted over the bone's ramp). Computed from the signed-distance shapes, not from the "
        "noisy voxels; see volume_method. bone.volume_mm3 measures all vertebrae as one "
        "solid; they do not touch, so it equals the sum of bone.levels. The lytic lesion inside "
        "the L4 body (see 'lesion') counts as part of the vertebra, as a bone segmentation with "
        "its enclosed cavities filled (SurgTwin's bone preset) counts it: the painted bone of L4 "
        "is bone_volume_mm3 minus lesion.volume_mm3."
    ),
    "lesion": (
        "A lytic lesion: a sphere of soft tissue (tissues_hu.lesion) replacing cancellous bone "
        "in the vertebral body of 'level', wholly inside the cancellous bone "
        "(cancellous_clearance_mm: the smallest distance, sampled over the sphere, from its "
        "surface to the inner surface of the cortex). volume_mm3 = 4/3 * pi * radius^3."
    ),
    "body_volume_mm3": (
        "Volume of the vertebral body's elliptic cylinder minus the spinal canal, into which "
        "its posterior wall reaches (the whole cylinder is pi * rx * ry * height). The pedicle "
        "roots inside the cylinder count, the rest of the pedicles does not."
    ),
    "canal.volume_mm3": (
        "Volume of the spinal canal (CSF) between the bottom and the top of the field of view "
        "(canal.z_range, voxel edges): the exact integral of pi * rx(z) * ry(z), the semi-axes "
        "linear between the level mid-planes and constant beyond."
    ),
    "volume_method": (
        "The signed distance of the solid is evaluated at the voxel centres of the image grid; "
        "a voxel whose centre is farther than one voxel diagonal from the surface counts as "
        "wholly inside or outside (twice the margin an exact distance would need); every other "
        "voxel is split 2 x 2 x 2 and each cell settled the same way with its own diagonal, "
        f"{VOLUME_DEPTH} times; the cells left ({1 / 2**VOLUME_DEPTH:g} voxel per axis) count "
        "by the sign of the distance at their centre, a centre on the surface counting one "
        f"half. This equals a voxel count supersampled {2**VOLUME_DEPTH} x {2**VOLUME_DEPTH} x "
        f"{2**VOLUME_DEPTH} times. Estimated error (estimated_error_mm3): the change from the "
        f"{2 ** (VOLUME_DEPTH - 1)} x {2 ** (VOLUME_DEPTH - 1)} x {2 ** (VOLUME_DEPTH - 1)} "
        f"count, up to about 0.03% (generation fails above {VOLUME_TOLERANCE:.1%}). Checks: "
        "the vertebral body cylinders and a sphere come within "
        "0.02% of their exact volumes, the canal within 0.001%, and supersampling 16 x 16 x 16 "
        "changes the bone volumes by less than 0.01%."
    ),
}


def _clean(value: object, ndigits: int = 4) -> object:
    """Round floats (recursively) for a stable, readable JSON file; -0.0 becomes 0.0."""
    if isinstance(value, dict):
        return {k: _clean(v, ndigits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, ndigits) for v in value]
    if isinstance(value, float | np.floating):
        return round(float(value), ndigits) + 0.0
    return value


def _level_truth(vertebra: Vertebra, grid: Grid) -> dict[str, object]:
    spec = vertebra.spec
    canal = vertebra.canal
    rx, ry = canal.radii_at(spec.z_centre)
    body_volume = _checked_volume([vertebra.body], [canal], grid)
    spinous = next(p.shape for p in vertebra.parts if p.name == "spinous_process")
    assert isinstance(spinous, Box)
    tip = np.asarray(spinous.frame.origin) + spinous.halves[0] * np.asarray(spinous.frame.u)
    return {
        "body_centre": [0.0, spec.body_centre_y, spec.z_centre],
        "body_radii_mm": [spec.body_radii[0], spec.body_radii[1], spec.body_height / 2],
        "body_z_range": [spec.z_bottom, spec.z_top],
        "body_volume_mm3": body_volume,
        "bone_volume_mm3": _checked_volume([p.shape for p in vertebra.parts], [canal], grid),
        "canal": {
            "centre": [0.0, 0.0, spec.z_centre],
            "radii_mm": [float(rx), float(ry)],
            "area_mm2": math.pi * float(rx) * float(ry),
        },
        "pedicles": {
            "axis_z": spec.pedicle_z,
            "width_mm": spec.pedicle_width,
            "height_mm": spec.pedicle_height,
            "medial_angle_deg": spec.medial_angle_deg,
        },
        "pedicle_screws": {side: screw_truth(vertebra, side) for side in SIDES},
        "spinous_process_tip": tip.tolist(),
        "transverse_process_tips": {
            side: [s * spec.tp_tip_x, TP_Y, spec.pedicle_z] for side, s in SIDES.items()
        },
    }


def lesion_truth() -> dict[str, object]:
    """The lytic lesion of the phantom: level, centre and radius (LPS mm), volume (mm³), HU.

    Raises
    ------
    RuntimeError
        If the lesion is not wholly inside its vertebra's cancellous bone (by at least 0.5 mm).
    """
    vertebra = next(v for v in build_vertebrae() if v.spec.name == LESION_LEVEL)
    # a Fibonacci lattice of directions: deterministic and even over the sphere
    n = 4000
    k = np.arange(n, dtype=np.float64) + 0.5
    polar = np.arccos(1.0 - 2.0 * k / n)
    azimuth = math.pi * (1.0 + math.sqrt(5.0)) * k
    dirs = np.stack(
        [np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1
    )
    pts = np.asarray(LESION_CENTRE) + LESION_RADIUS_MM * dirs
    clearance = -float(vertebra.inner_sdf(pts[:, 0], pts[:, 1], pts[:, 2]).max())
    if clearance < 0.5:
        raise RuntimeError(f"the lesion reaches within {clearance:.2f} mm of the cortex")
    return {
        "level": LESION_LEVEL,
        "centre": list(LESION_CENTRE),
        "radius_mm": LESION_RADIUS_MM,
        "volume_mm3": 4.0 / 3.0 * math.pi * LESION_RADIUS_MM**3,
        "hu": TISSUE_HU["lesion"],
        "location": "anterior, caudal, on the midline",
        "cancellous_clearance_mm": clearance,
    }


def _bone_truth(
    vertebrae: Sequence[Vertebra], levels: dict[str, dict[str, object]], grid: Grid
) -> dict[str, object]:
    """Total bone volume (all vertebrae as one solid, mm³) with the per-level volumes."""
    total, error = solid_volume(
        [p.shape for v in vertebrae for p in v.parts], [build_canal()], grid
    )
    if error > VOLUME_TOLERANCE * total:
        raise RuntimeError(f"bone volume {total:.1f} mm3 uncertain by {error:.1f} mm3: refine")
    return {
        "volume_mm3": total,
        "estimated_error_mm3": error,
        "levels": {name: level["bone_volume_mm3"] for name, level in levels.items()},
    }


def ground_truth(grid: Grid = GRID) -> dict[str, object]:
    """Geometric ground truth of the phantom (LPS mm), ready to be written as JSON.

    Parameters
    ----------
    grid : Grid
        The voxel grid the phantom is rendered on.

    Returns
    -------
    dict
        Schema 1: ``image``, ``tissues_hu``, ``levels`` (L3-L5: body, canal, pedicles, ideal
        pedicle screws, bone and body volumes), ``bone`` (total volume), ``discs``,
        ``canal_centreline``, ``canal`` (volume in the field of view), ``lesion`` (the lytic
        lesion in L4), ``left_marker`` and the definitions.
    """
    canal = build_canal()
    zs = [float(z) for z in grid.axis(2)[::2]]
    radii = [canal.radii_at(z) for z in zs]
    lo, hi = grid.extent()
    fov = (float(lo[2]), float(hi[2]))
    vertebrae = build_vertebrae()
    levels = {v.spec.name: _level_truth(v, grid) for v in vertebrae}
    truth = {
        "schema": 1,
        "description": (
            "SurgTwin digital CT phantom of the lumbar spine L3-L5 (synthetic, no patient data). "
            "All points are patient LPS millimetres (+x left, +y posterior, +z superior). "
            "Voxel (column i, row j, slice k) is at origin + (i, j, k) * spacing; slice k is "
            "file IM{k+1:04d}.dcm. Screw entry: where the pedicle axis leaves the posterior "
            "bone surface; target: on the axis at 80% of the vertebral-body chord from the "
            "posterior wall; max_safe_diameter_mm: outer pedicle width at the isthmus = twice "
            "the smallest radius, along the axis, of the largest axis-centred perpendicular "
            "disc inside bone (cortex included, no margin). See 'definitions'."
        ),
        "coordinate_system": "LPS",
        "units": "mm",
        "image": {
            "size": list(grid.size),
            "spacing": list(grid.spacing),
            "origin": list(grid.origin),
            "orientation": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            "numpy_array_order": "z,y,x",
        },
        "tissues_hu": dict(TISSUE_HU),
        "noise": {
            "distribution": "gaussian",
            "sigma_hu": NOISE_SIGMA_HU,
            "seed": NOISE_SEED,
            "generator": "numpy.random.RandomState",
        },
        "partial_volume_ramp_mm": RAMP_MM,
        "cortex_mm": {"vertebral_body": BODY_CORTEX_MM, "posterior_elements": ARCH_CORTEX_MM},
        "levels": levels,
        "bone": _bone_truth(vertebrae, levels, grid),
        "discs": {name: disc_geometry(name, grid) for name, _, _ in DISCS},
        "canal_centreline": [[0.0, 0.0, z] for z in zs],
        "canal_centreline_radii_mm": [[float(rx), float(ry)] for rx, ry in radii],
        "canal": {"volume_mm3": canal_volume(fov), "z_range": list(fov)},
        "lesion": lesion_truth(),
        "left_marker": {
            "centre": list(MARKER_CENTRE),
            "radius_mm": MARKER_RADIUS_MM,
            "hu": TISSUE_HU["marker"],
            "side": "left",
        },
        "definitions": dict(DEFINITIONS),
    }
    cleaned = _clean(truth)
    assert isinstance(cleaned, dict)
    return cleaned
