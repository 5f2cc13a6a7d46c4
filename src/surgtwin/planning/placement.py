"""Implant placement helpers: surface snapping, pose moves, keyboard nudges and readouts.

All functions are pure: they take 4x4 implant-to-LPS poses (mm) and return new ones, leaving
their inputs untouched. The views feed the results to
:class:`~surgtwin.planning.commands.MoveImplant`; consecutive nudges or drag steps sharing a
``drag_id`` merge into one undo step there.

Patient directions are named by their LPS letters: ``"L"`` is +x (patient left), ``"R"`` -x,
``"P"`` +y (posterior), ``"A"`` -y, ``"S"`` +z (superior), ``"I"`` -z. Rotations are
right-handed about the named direction, in degrees.

Frames follow :mod:`surgtwin.planning.implants`: the local +z axis runs from the tip (local
origin) towards the entry, which is at local z = length.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from surgtwin.errors import SurgTwinError
from surgtwin.geometry.sdf import StructureField
from surgtwin.planning.implants import Catalogue, Implant, angulation, trajectory_direction

__all__ = [
    "DIRECTIONS",
    "NUDGE_DEG",
    "NUDGE_MM",
    "PlacementError",
    "nearest_length",
    "nudge",
    "rotate_about_entry",
    "slide_along_axis",
    "snap_entry_to_surface",
    "trajectory_readout",
    "translate",
]

#: Translation of one keyboard nudge (mm).
NUDGE_MM = 0.5
#: Rotation of one keyboard nudge (degrees).
NUDGE_DEG = 1.0
#: Unit LPS vector of each patient direction letter.
DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "L": (1.0, 0.0, 0.0),
    "R": (-1.0, 0.0, 0.0),
    "P": (0.0, 1.0, 0.0),
    "A": (0.0, -1.0, 0.0),
    "S": (0.0, 0.0, 1.0),
    "I": (0.0, 0.0, -1.0),
}
_SNAP_TOLERANCE_MM = 0.01


class PlacementError(SurgTwinError, ValueError):
    """A placement operation cannot be carried out (the message says why)."""


def _point(name: str, value: ArrayLike) -> np.ndarray:
    p = np.asarray(value, dtype=np.float64).reshape(-1)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise PlacementError(f"{name} must be three finite LPS coordinates (mm), not {value!r}")
    return p


def _pose(pose: ArrayLike) -> np.ndarray:
    p = np.array(pose, dtype=np.float64)
    if p.shape != (4, 4) or not np.all(np.isfinite(p)):
        raise PlacementError("a pose must be a finite 4x4 matrix")
    return p


# ---------------------------------------------------------------------------- snapping
def _crossing(
    entry: np.ndarray, u: np.ndarray, field: StructureField, sign: float, step: float, span: float
) -> float | None:
    """Parameter t of the first zero crossing of the field along ``entry + sign * s * u``."""
    s = np.arange(0.0, span + 0.5 * step, step)
    d = field.sample(entry + (sign * s)[:, None] * u)[0]
    change = np.flatnonzero(np.sign(d[1:]) != np.sign(d[:-1]))
    if len(change) == 0:
        return None
    lo, hi = float(s[change[0]]), float(s[change[0] + 1])
    d_lo = float(d[change[0]])
    while hi - lo > _SNAP_TOLERANCE_MM:  # bisection; d_lo keeps the sign at lo
        mid = 0.5 * (lo + hi)
        d_mid = float(field.sample(entry + sign * mid * u)[0][0])
        if d_mid == 0.0:
            return sign * mid
        if math.copysign(1.0, d_mid) == math.copysign(1.0, d_lo):
            lo, d_lo = mid, d_mid
        else:
            hi = mid
    return sign * 0.5 * (lo + hi)


def snap_entry_to_surface(
    entry: ArrayLike,
    target: ArrayLike,
    field: StructureField,
    step_mm: float = 0.1,
    max_search_mm: float = 30.0,
) -> np.ndarray:
    """Move an entry point along its trajectory onto the bone surface.

    The entry slides along the line through ``entry`` and ``target`` to where the bone's
    signed distance crosses zero. An entry outside the bone first searches towards the target
    (where the trajectory enters the bone), an entry inside the bone first searches away from
    it (back out to the surface it entered through); if that finds no surface, the other
    direction is searched. The crossing is found by marching in ``step_mm`` steps and refined by
    bisection to 0.01 mm.

    Parameters
    ----------
    entry, target : array_like, shape (3,)
        Planned entry point and target point, LPS mm; they must differ.
    field : StructureField
        Signed distance field of the bone (mm, negative inside).
    step_mm : float
        Marching step along the line (mm); smaller than the thinnest bone to be found.
    max_search_mm : float
        How far (mm) to search in each direction.

    Returns
    -------
    numpy.ndarray, shape (3,)
        The snapped entry, LPS mm, on the line through ``entry`` and ``target``; its field
        distance is within about 0.01 mm of zero. An entry already on the surface (within
        0.01 mm) is returned unchanged.

    Raises
    ------
    PlacementError
        If the points are invalid, or no bone surface lies within ``max_search_mm`` of the
        entry along the line.
    """
    p, t = _point("entry", entry), _point("target", target)
    if not (math.isfinite(step_mm) and step_mm > 0):
        raise PlacementError(f"step_mm must be positive, not {step_mm!r}")
    if not (math.isfinite(max_search_mm) and max_search_mm > 0):
        raise PlacementError(f"max_search_mm must be positive, not {max_search_mm!r}")
    u = trajectory_direction(p, t, PlacementError)
    d0 = float(field.sample(p)[0][0])
    if abs(d0) <= _SNAP_TOLERANCE_MM:
        return p.copy()
    first = 1.0 if d0 > 0 else -1.0  # outside: towards the target; inside: back out
    for sign in (first, -first):
        s = _crossing(p, u, field, sign, float(step_mm), float(max_search_mm))
        if s is not None:
            return p + s * u
    raise PlacementError(
        f"no surface of {field.name!r} within {max_search_mm:g} mm of the entry along the "
        f"trajectory (the entry is {abs(d0):.1f} mm {'outside' if d0 > 0 else 'inside'}); "
        "move the entry closer to the bone or aim the trajectory at it"
    )


# ---------------------------------------------------------------------------- moves
def translate(pose: ArrayLike, delta_lps: ArrayLike) -> np.ndarray:
    """The pose moved by ``delta_lps`` (LPS mm); the orientation is unchanged."""
    out = _pose(pose)
    out[:3, 3] += _point("delta_lps", delta_lps)
    return out


def slide_along_axis(pose: ArrayLike, distance_mm: float) -> np.ndarray:
    """The pose moved along its own axis; entry and tip move by the same vector.

    Parameters
    ----------
    pose : array_like, shape (4, 4)
        Implant-to-LPS pose (mm).
    distance_mm : float
        Distance (mm). Positive advances the implant (moves it from the entry towards the tip,
        deeper along the insertion direction, local -z); negative backs it out.

    Returns
    -------
    numpy.ndarray, shape (4, 4)
    """
    p = _pose(pose)
    axis = p[:3, 2] / np.linalg.norm(p[:3, 2])
    return translate(p, -float(distance_mm) * axis)


def _rotation(axis_lps: ArrayLike, angle_deg: float) -> np.ndarray:
    a = _point("axis_lps", axis_lps)
    n = float(np.linalg.norm(a))
    if n < 1e-12:
        raise PlacementError("the rotation axis must not be zero")
    x, y, z = a / n
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)  # Rodrigues


def rotate_about_entry(
    pose: ArrayLike, axis_lps: ArrayLike, angle_deg: float, entry: ArrayLike
) -> np.ndarray:
    """The pose rotated about an axis through the entry point, which stays fixed.

    Parameters
    ----------
    pose : array_like, shape (4, 4)
        Implant-to-LPS pose (mm).
    axis_lps : array_like, shape (3,)
        Rotation axis direction in LPS (any length but zero).
    angle_deg : float
        Angle (degrees), right-handed about ``axis_lps``.
    entry : array_like, shape (3,)
        The pivot, LPS mm (usually :attr:`Implant.entry`).

    Returns
    -------
    numpy.ndarray, shape (4, 4)
        ``T(entry) @ R @ T(-entry) @ pose``.
    """
    p, c = _pose(pose), _point("entry", entry)
    rot = _rotation(axis_lps, float(angle_deg))
    out = np.eye(4)
    out[:3, :3] = rot @ p[:3, :3]
    out[:3, 3] = rot @ (p[:3, 3] - c) + c
    return out


def nudge(
    pose: ArrayLike,
    direction: str,
    step: float | None = None,
    *,
    rotate: bool = False,
    entry: ArrayLike | None = None,
) -> np.ndarray:
    """One keyboard nudge: a small translation along, or rotation about, a patient axis.

    Parameters
    ----------
    pose : array_like, shape (4, 4)
        Implant-to-LPS pose (mm).
    direction : str
        Patient direction letter, one of ``L R A P S I`` (case-insensitive); ``"L"`` is
        patient left, LPS +x.
    step : float, optional
        Translation (mm, default :data:`NUDGE_MM` = 0.5) or rotation (degrees, default
        :data:`NUDGE_DEG` = 1.0).
    rotate : bool
        False: translate by ``step`` towards ``direction``. True: rotate by ``step``
        right-handed about ``direction`` through ``entry`` (so ``"R"`` turns the other way
        from ``"L"``).
    entry : array_like, shape (3,), optional
        The rotation pivot, LPS mm; required when ``rotate`` is True.

    Returns
    -------
    numpy.ndarray, shape (4, 4)
    """
    key = direction.strip().upper() if isinstance(direction, str) else direction
    if key not in DIRECTIONS:
        raise PlacementError(f"unknown direction {direction!r}; use one of L, R, A, P, S, I")
    vector = np.array(DIRECTIONS[key])
    if rotate:
        if entry is None:
            raise PlacementError("a rotation nudge needs the entry point as its pivot")
        return rotate_about_entry(pose, vector, NUDGE_DEG if step is None else step, entry)
    return translate(pose, (NUDGE_MM if step is None else float(step)) * vector)


# ---------------------------------------------------------------------------- readouts
def _length_in_bone(entry: np.ndarray, tip: np.ndarray, field: StructureField) -> float:
    """Length (mm) of the segment entry-tip inside the field (midpoint rule, <= 0.05 mm)."""
    length = float(np.linalg.norm(tip - entry))
    if length == 0.0:
        return 0.0
    n = max(1, math.ceil(length / 0.05))
    s = (np.arange(n) + 0.5) / n
    inside = field.sample(entry + s[:, None] * (tip - entry))[0] < 0
    return float(np.count_nonzero(inside)) * length / n


def trajectory_readout(
    implant: Implant, bone_field: StructureField | None = None, midline_x_mm: float = 0.0
) -> dict[str, Any]:
    """Numbers shown while placing an implant.

    Parameters
    ----------
    implant : Implant
        A placed implant (:class:`surgtwin.planning.implants.Implant`).
    bone_field : StructureField, optional
        The bone's signed distance field; when given, the axis length inside bone is reported.
    midline_x_mm : float
        LPS x (mm) of the midsagittal plane, for medial/lateral (see :func:`angulation`).

    Returns
    -------
    dict
        ``axial_deg`` (positive medial) and ``sagittal_deg`` (positive cranial), degrees;
        ``length_mm``; ``entry_lps`` and ``tip_lps`` (tuples of 3 float, mm); ``in_bone_mm``,
        the length of the axis from entry to tip inside bone (mm), or None without a field.
    """
    axial, sagittal = angulation(implant, midline_x_mm)
    entry, tip = implant.entry, implant.tip
    in_bone = None if bone_field is None else _length_in_bone(entry, tip, bone_field)
    return {
        "axial_deg": axial,
        "sagittal_deg": sagittal,
        "length_mm": float(implant.length_mm),
        "entry_lps": tuple(float(v) for v in entry),
        "tip_lps": tuple(float(v) for v in tip),
        "in_bone_mm": in_bone,
    }


def nearest_length(
    catalogue: Catalogue, kind: str, diameter: float | None, needed_length_mm: float
) -> float:
    """The catalogue length (mm) closest to a needed one, e.g. the entry-to-target distance.

    Parameters
    ----------
    catalogue : Catalogue
    kind : str
        Implant kind, e.g. ``"pedicle_screw"``.
    diameter : float or None
        Wanted diameter (mm); the nearest catalogue diameter is chosen first. None: any.
    needed_length_mm : float
        The length wanted (mm).

    Returns
    -------
    float
        The nearest catalogue length (mm) for that diameter; on a tie the shorter one.

    Raises
    ------
    KeyError
        If the catalogue has no implant of ``kind``.
    """
    if not (math.isfinite(needed_length_mm) and needed_length_mm > 0):
        raise PlacementError(f"needed_length_mm must be positive, not {needed_length_mm!r}")
    return catalogue.nearest(kind, diameter, needed_length_mm).length_mm
