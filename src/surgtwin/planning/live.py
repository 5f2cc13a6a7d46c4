"""Live clearance of one implant while it moves: what the app shows at every drag step.

The same engine as :func:`surgtwin.planning.checks.check_plan` (signed distance fields sampled
at the implant's surface points, the closest candidates measured exactly against the surface),
for one implant against the plan's guarded structures, in about a millisecond per structure.
The fields are built beforehand (they take seconds; the app builds them on a worker thread).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from surgtwin.geometry import clearance as C
from surgtwin.geometry.sdf import StructureField
from surgtwin.planning.checks import implant_samples, is_screw
from surgtwin.planning.plan import Implant, Plan, Structure

__all__ = ["GUARDED_ROLES", "LiveReading", "live_readings", "needed_structures", "worst_status"]

#: Structures an implant must keep clear of (margins judged against them).
GUARDED_ROLES = ("critical", "target")


def _apply(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ pose[:3, :3].T + pose[:3, 3]


@dataclass(frozen=True)
class LiveReading:
    """One implant against one structure, live.

    Attributes
    ----------
    structure, role : str
    clearance_mm : float
        Smallest surface-to-surface distance (mm); negative: penetration depth. For ``bone``
        structures: minus the depth the screw leaves the bone by (0 when fully contained).
    status : str
        ``ok`` / ``warn`` / ``fail`` against ``margin_mm`` (bone: always ``ok``; a cortical
        breach is graded, not failed).
    margin_mm : float
    collides : bool
        Penetrates a guarded structure (never True for bone).
    grade : str or None
        Gertzbein-Robbins grade for screws (against bone: from the exit depth, or the deepest
        critical penetration when deeper).
    closest_implant, closest_structure : numpy.ndarray, shape (3,)
        Where the minimum occurs, LPS mm.
    bounded : bool
        The minimum lies beyond the field's grid: a lower bound.
    """

    structure: str
    role: str
    clearance_mm: float
    status: str
    margin_mm: float
    collides: bool
    grade: str | None
    closest_implant: np.ndarray
    closest_structure: np.ndarray
    bounded: bool = False

    @property
    def text(self) -> str:
        if self.bounded:
            return f"> {self.clearance_mm:.1f} mm"
        return f"{self.clearance_mm:+.1f} mm"


def needed_structures(plan: Plan) -> list[Structure]:
    """The structures whose fields the live readout needs: guarded ones, then bone."""
    guarded = [s for s in plan.structures.values() if s.role in GUARDED_ROLES]
    bones = [s for s in plan.structures.values() if s.role == "bone"]
    return guarded + bones


def live_readings(
    plan: Plan, record: Implant, fields: Mapping[str, StructureField]
) -> list[LiveReading]:
    """Live clearance of ``record`` (at its current pose) against every structure with a field.

    Parameters
    ----------
    plan : Plan
    record : Implant
        The implant as placed in the plan (or a candidate pose of it).
    fields : mapping of structure name to StructureField
        Structures without a field (not built yet, or mesh structures) are left out.

    Returns
    -------
    list of LiveReading
        Guarded structures first (plan order), then bone structures.
    """
    samples = implant_samples(record)
    pose = np.asarray(record.pose)
    out: list[LiveReading] = []
    deepest = 0.0
    for s in plan.structures.values():
        if s.role not in GUARDED_ROLES or s.name not in fields:
            continue
        c = C.live_clearance(fields[s.name], samples, pose=pose)
        margin = float(s.margin_mm or 0.0)
        status = "fail" if c.collides else C.margin_status(c.min_clearance_mm, margin)
        grade = None
        if is_screw(record.kind) and s.role == "critical":
            depth = max(0.0, -c.min_clearance_mm)
            deepest = max(deepest, depth)
            grade = C.breach_grade(depth)
        out.append(
            LiveReading(
                s.name,
                s.role,
                float(c.min_clearance_mm),
                status,
                margin,
                bool(c.collides),
                grade,
                np.asarray(c.closest_point_implant, dtype=float),
                np.asarray(c.closest_point_structure, dtype=float),
                bool(c.bounded),
            )
        )
    for s in plan.structures.values():
        if s.role != "bone" or s.name not in fields:
            continue
        fld = fields[s.name]
        if samples.axis is not None:
            breach = C.pedicle_breach(samples, pose, fld, None)
            exit_depth = float(breach.bone_exit_depth_mm)
            value = -exit_depth if exit_depth > 0 else 0.0
            grade = C.breach_grade(max(exit_depth, deepest))
            head = _apply(pose, samples.axis[:1])[0]
            out.append(
                LiveReading(
                    s.name,
                    s.role,
                    value,
                    "ok",
                    float(s.margin_mm or 0.0),
                    False,
                    grade,
                    head,
                    head.copy(),
                    False,
                )
            )
            continue
        else:
            c = C.live_clearance(fld, samples, pose=pose)
            value, grade = float(c.min_clearance_mm), None
        out.append(
            LiveReading(
                s.name,
                s.role,
                float(value) if math.isfinite(value) else float("nan"),
                "ok",
                float(s.margin_mm or 0.0),
                False,
                grade,
                np.asarray(c.closest_point_implant, dtype=float),
                np.asarray(c.closest_point_structure, dtype=float),
                bool(c.bounded),
            )
        )
    return out


def worst_status(readings: list[LiveReading]) -> str:
    """``fail`` if any reading fails, else ``warn`` if any warns, else ``ok``."""
    statuses = {r.status for r in readings}
    for s in ("fail", "warn"):
        if s in statuses:
            return s
    return "ok"
