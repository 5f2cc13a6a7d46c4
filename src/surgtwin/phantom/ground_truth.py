"""Ground truth of the lumbar phantom in LPS mm: canal, bodies, ideal pedicle screw axes.

Computed from the same shapes :mod:`surgtwin.phantom.anatomy` paints, so tests can assert exact
distances against the rendered volume.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from surgtwin.phantom.anatomy import (
    ARCH_CORTEX_MM,
    BODY_CORTEX_MM,
    DISCS,
    GRID,
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
from surgtwin.phantom.shapes import Box, EllipticCylinder


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
    "canal": "Spinal canal (CSF) ellipse at the level's body mid-plane: centre and semi-axes.",
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


def _level_truth(vertebra: Vertebra) -> dict[str, object]:
    spec = vertebra.spec
    canal = vertebra.canal
    rx, ry = canal.radii_at(spec.z_centre)
    spinous = next(p.shape for p in vertebra.parts if p.name == "spinous_process")
    assert isinstance(spinous, Box)
    tip = np.asarray(spinous.frame.origin) + spinous.halves[0] * np.asarray(spinous.frame.u)
    return {
        "body_centre": [0.0, spec.body_centre_y, spec.z_centre],
        "body_radii_mm": [spec.body_radii[0], spec.body_radii[1], spec.body_height / 2],
        "body_z_range": [spec.z_bottom, spec.z_top],
        "canal": {"centre": [0.0, 0.0, spec.z_centre], "radii_mm": [float(rx), float(ry)]},
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
        pedicle screws), ``discs``, ``canal_centreline``, ``left_marker`` and the definitions.
    """
    canal = build_canal()
    zs = [float(z) for z in grid.axis(2)[::2]]
    radii = [canal.radii_at(z) for z in zs]
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
        "levels": {v.spec.name: _level_truth(v) for v in build_vertebrae()},
        "discs": {name: disc_geometry(name, grid) for name, _, _ in DISCS},
        "canal_centreline": [[0.0, 0.0, z] for z in zs],
        "canal_centreline_radii_mm": [[float(rx), float(ry)] for rx, ry in radii],
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
