"""Offsets and angles of an implant in patient terms: medial/lateral, cranial/caudal,
anterior/posterior.

Coordinates are patient LPS millimetres (+x left, +y posterior, +z superior). *Medial* and
*lateral* depend on the side of the midsagittal plane (LPS ``x = midline_x_mm``) the implant is
on: for an implant on the patient's left (``x > midline``) lateral is +x, on the right it is
-x. An implant within :data:`MIDLINE_BAND_MM` of the midline is described as left/right
instead.

The insertion direction of an implant runs from its entry to its tip. Its *medial angle* is the
angle in the axial plane between the direction's projection and the antero-posterior axis,
positive towards the midline (convergence); its *cranial angle* the angle in the sagittal plane
between the direction's projection and the axial plane, positive towards the head. These are
the conventions of :func:`surgtwin.planning.implants.angulation`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MIDLINE_BAND_MM",
    "PatientFrame",
    "angle_between_deg",
    "describe_offset",
    "insertion_angles",
]

#: Implants whose entry lies this close (mm) to the midline have no medial or lateral side.
MIDLINE_BAND_MM = 1.0


@dataclass(frozen=True)
class PatientFrame:
    """Unit LPS vectors of the patient directions at an implant.

    Parameters
    ----------
    entry_x_mm : float
        LPS x of the implant's entry (mm).
    midline_x_mm : float
        LPS x of the midsagittal plane (mm).
    """

    entry_x_mm: float
    midline_x_mm: float = 0.0

    @property
    def side(self) -> str | None:
        """``"left"``, ``"right"`` or None on the midline."""
        dx = self.entry_x_mm - self.midline_x_mm
        if abs(dx) < MIDLINE_BAND_MM:
            return None
        return "left" if dx > 0 else "right"

    def axes(self) -> list[tuple[np.ndarray, str, str]]:
        """(unit vector, word for +, word for -) for the three patient axes."""
        side = self.side
        if side is None:
            lateral = (np.array([1.0, 0.0, 0.0]), "left", "right")
        else:
            sign = 1.0 if side == "left" else -1.0
            lateral = (np.array([sign, 0.0, 0.0]), "lateral", "medial")
        return [
            lateral,
            (np.array([0.0, 0.0, 1.0]), "cranial", "caudal"),
            (np.array([0.0, 1.0, 0.0]), "posterior", "anterior"),
        ]

    def components(self, vector: Sequence[float]) -> list[tuple[float, str]]:
        """The vector (LPS mm) as (size >= 0, direction word) along the patient axes, largest
        first."""
        v = np.asarray(vector, dtype=float)
        out = []
        for axis, plus, minus in self.axes():
            c = float(v @ axis)
            out.append((abs(c), plus if c >= 0 else minus))
        return sorted(out, key=lambda t: -t[0])

    def dominant(self, vector: Sequence[float]) -> str:
        """The patient direction word of the vector's largest component."""
        return self.components(vector)[0][1]


def describe_offset(
    vector: Sequence[float], frame: PatientFrame, min_mm: float = 0.5, most: int = 2
) -> str:
    """Words for an offset (LPS mm): ``"3.1 mm lateral and 1.0 mm cranial"``.

    Parameters
    ----------
    vector : sequence of 3 float
        The offset, LPS mm.
    frame : PatientFrame
        The implant's side of the midline.
    min_mm : float
        Components smaller than this (mm) are left out (unless all are).
    most : int
        At most this many components, the largest first.
    """
    parts = [(size, word) for size, word in frame.components(vector) if size >= min_mm][:most]
    if not parts:
        size, word = frame.components(vector)[0]
        parts = [(size, word)]
    return " and ".join(f"{size:.1f} mm {word}" for size, word in parts)


def insertion_angles(direction: Sequence[float], frame: PatientFrame) -> tuple[float, float]:
    """Medial and cranial angle (degrees) of an insertion direction (entry to tip).

    Parameters
    ----------
    direction : sequence of 3 float
        Any length, LPS.
    frame : PatientFrame

    Returns
    -------
    medial_deg : float
        -90..90, positive towards the midline (for an implant on the midline: towards the
        patient's left).
    cranial_deg : float
        -90..90, positive towards the head.
    """
    d = np.asarray(direction, dtype=float)
    ap = abs(float(d[1]))
    side = frame.side
    toward_midline = 1.0 if side in (None, "right") else -1.0
    medial = float(d[0]) * toward_midline
    medial_deg = 0.0 if math.hypot(ap, medial) < 1e-12 else math.degrees(math.atan2(medial, ap))
    cranial = float(d[2])
    cranial_deg = 0.0 if math.hypot(ap, cranial) < 1e-12 else math.degrees(math.atan2(cranial, ap))
    return medial_deg, cranial_deg


def angle_between_deg(a: Sequence[float], b: Sequence[float]) -> float:
    """The angle between two directions, degrees (0..180); accurate near 0 and 180."""
    u, v = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(math.degrees(math.atan2(np.linalg.norm(np.cross(u, v)), float(u @ v))))
