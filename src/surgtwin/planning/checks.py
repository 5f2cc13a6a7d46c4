"""Plan checks: implant clearances against structures and each other, and resections.

For every implant of a plan (:func:`check_plan`):

* **Critical and target structures**: the clearance (mm, surface to surface; negative: the
  penetration depth). The live path (the structure's signed distance field, see
  :mod:`surgtwin.geometry.clearance`) runs first; the exact path (python-fcl mesh-mesh against
  the structure's stored surface) replaces it when the live clearance lies within
  :data:`EXACT_BAND_MM` (1 mm) of a boundary of the status (0 mm or the margin), for mesh
  structures (no field), and always when the plan has at most :data:`EXACT_ALWAYS_PAIRS`
  implant-structure pairs (about 0.1 s each on a lumbar CT). ``method`` says which one gave the
  reported value. ``status`` is :func:`~surgtwin.geometry.clearance.margin_status` with the
  structure's safety margin (``fail`` on collision, ``warn`` within the margin, else ``ok``).
* **Bone structures** hold the implant, so touching them is no collision. For screws (kinds
  ending in ``screw``) the row reports the pedicle breach: ``min_clearance_mm`` is minus how
  far the screw's surface reaches out of the bone along the pedicle (0 when contained;
  :func:`~surgtwin.geometry.clearance.pedicle_breach`), ``grade`` the Gertzbein-Robbins grade
  of the deeper of that exit and the deepest penetration of a critical structure, and
  ``purchase`` the length of axis and fraction of surface in bone. Other implants get the live
  clearance and no grade.
* **Other implants**: exact clearance (python-fcl); any contact is a collision (margin 0).

``penetration_mm`` is ``max(0, -min_clearance_mm)``. A plan passes (:attr:`PlanReport.passed`)
when no row has status ``fail`` and no resection leaves a target behind.

Resections: :func:`cut_structure` (from :mod:`surgtwin.planning.cuts`) prepares an undoable
cut of a structure with a plane, box, sphere or polygon; once done, the structure's surface and
label voxels are the remaining part, so the checks see the cut structure, and the plan's
:class:`~surgtwin.planning.plan.Cut` records the removed and remaining volumes (mm³); with a
target structure in the plan also whether it is fully removed and the margin around it (mm).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from surgtwin.errors import SurgTwinError
from surgtwin.geometry import clearance as C
from surgtwin.planning.case import CaseError, CaseGeometry
from surgtwin.planning.cuts import CutStructure, cut_structure, plane_cut
from surgtwin.planning.implants import USER_STL, ImplantSpec, spec_from_record
from surgtwin.planning.plan import Implant, Plan, Structure

__all__ = [
    "EXACT_ALWAYS_PAIRS",
    "EXACT_BAND_MM",
    "CutStructure",
    "ImplantReport",
    "PlanReport",
    "ResectionReport",
    "StructureCheck",
    "check_plan",
    "cut_structure",
    "entry_and_tip",
    "implant_samples",
    "implant_spec",
    "is_screw",
    "plane_cut",
]

#: Live clearances this close (mm) to 0 or to the margin are confirmed by the exact path.
EXACT_BAND_MM = 1.0
#: Plans with at most this many implant-structure pairs use the exact path for all of them.
EXACT_ALWAYS_PAIRS = 24
#: Surface sample spacing of implants for the live path (mm).
SAMPLE_SPACING_MM = 0.5


@dataclass(frozen=True)
class StructureCheck:
    """One implant against one structure or another implant (mm; see the module notes)."""

    structure: str
    role: str
    min_clearance_mm: float
    collides: bool
    penetration_mm: float
    grade: str | None
    status: str
    margin_mm: float
    method: str
    purchase: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "structure": self.structure,
            "role": self.role,
            "min_clearance_mm": round(self.min_clearance_mm, 4),
            "collides": self.collides,
            "penetration_mm": round(self.penetration_mm, 4),
            "grade": self.grade,
            "status": self.status,
            "margin_mm": self.margin_mm,
            "method": self.method,
        }
        if self.purchase is not None:
            out["purchase"] = self.purchase
        return out


@dataclass(frozen=True)
class ImplantReport:
    """The checks of one implant; ``entry_lps`` and ``tip_lps`` in LPS mm."""

    name: str
    type: str
    entry_lps: tuple[float, float, float]
    tip_lps: tuple[float, float, float]
    checks: list[StructureCheck] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "entry_lps": [round(v, 6) for v in self.entry_lps],
            "tip_lps": [round(v, 6) for v in self.tip_lps],
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class ResectionReport:
    """A stored cut: volumes in mm³, margin around the target in mm (None without target)."""

    name: str
    structure: str
    removed_mm3: float
    remaining_mm3: float
    margin_mm: float | None
    target_removed: bool | None

    def to_dict(self) -> dict[str, Any]:
        margin = self.margin_mm
        return {
            "name": self.name,
            "structure": self.structure,
            "removed_mm3": round(self.removed_mm3, 3),
            "remaining_mm3": round(self.remaining_mm3, 3),
            "margin_mm": None if margin is None or not math.isfinite(margin) else round(margin, 4),
            "target_removed": self.target_removed,
        }


@dataclass(frozen=True)
class PlanReport:
    """All checks of a plan."""

    implants: list[ImplantReport]
    resections: list[ResectionReport]

    @property
    def passed(self) -> bool:
        """No failing row and no target left behind by a resection."""
        rows_ok = all(c.status != "fail" for i in self.implants for c in i.checks)
        return rows_ok and all(r.target_removed is not False for r in self.resections)

    def to_dict(self) -> dict[str, Any]:
        return {
            "implants": [i.to_dict() for i in self.implants],
            "resections": [r.to_dict() for r in self.resections],
            "passed": self.passed,
        }


# ---------------------------------------------------------------------- implants


def is_screw(kind: str) -> bool:
    """Whether an implant kind is a screw (has an axis for breach grading)."""
    return kind.endswith("screw")


def _spec(record: Implant) -> ImplantSpec:
    key = record.spec_key or record.kind
    if record.kind == USER_STL:
        file = record.parameters.get("file")
        if isinstance(file, str) and file and not Path(file).is_file():
            raise CaseError(f"implant {record.name!r}: mesh file not found: {file}")
    try:
        params = json.dumps(record.parameters, sort_keys=True)
    except (TypeError, ValueError):
        params = None
    try:
        if params is None:
            return spec_from_record(record.kind, key, key, record.parameters)
        return _spec_of(key, record.kind, params)
    except (ValueError, SurgTwinError) as exc:
        raise CaseError(f"implant {record.name!r}: {exc}") from None


@functools.lru_cache(maxsize=256)
def _spec_of(key: str, kind: str, params_json: str) -> ImplantSpec:
    """The model of a placed implant, validated once per distinct model (the live readout
    asks for it at every drag step)."""
    return spec_from_record(kind, key, key, json.loads(params_json))


@functools.lru_cache(maxsize=32)
def _samples(spec: ImplantSpec) -> C.ImplantSamples:
    mesh = spec.local_mesh()
    pts, w = C.surface_samples(mesh, SAMPLE_SPACING_MM)
    length = spec.length_mm
    axis = np.array([[0.0, 0.0, length], [0.0, 0.0, 0.0]]) if is_screw(spec.kind) else None
    return C.ImplantSamples(mesh, pts, w, np.zeros((0, 3)), np.zeros(0), axis)


def implant_spec(record: Implant) -> ImplantSpec:
    """The catalogue model of a placed implant (validated once per model; CaseError for bad
    parameters or a missing mesh file, naming the implant and the file)."""
    return _spec(record)


def implant_samples(record: Implant) -> C.ImplantSamples:
    """Surface samples of a plan implant in its own frame (cached per model); screws have
    ``axis`` = [head, tip] (local z = length and 0, mm)."""
    spec = _spec(record)
    try:
        return _samples(spec)
    except (OSError, ValueError, SurgTwinError) as exc:
        if spec.kind != USER_STL:
            raise
        raise CaseError(f"implant {record.name!r}: cannot read {spec.file}: {exc}") from None


def entry_and_tip(record: Implant) -> tuple[np.ndarray, np.ndarray]:
    """Entry (local z = length) and tip (local origin) of a placed implant, LPS mm."""
    length = _spec(record).length_mm
    pose = np.asarray(record.pose)
    return pose[:3, 3] + length * pose[:3, 2], pose[:3, 3].copy()


# ---------------------------------------------------------------------- checks


def _row(
    name: str, role: str, clearance: float, margin: float, method: str, **extra: Any
) -> StructureCheck:
    collides = extra.pop("collides", clearance < 0)
    return StructureCheck(
        structure=name,
        role=role,
        min_clearance_mm=float(clearance),
        collides=bool(collides),
        penetration_mm=max(0.0, -float(clearance)),
        grade=extra.pop("grade", None),
        status=extra.pop("status", "fail" if collides else C.margin_status(clearance, margin)),
        margin_mm=float(margin),
        method=method,
        purchase=extra.pop("purchase", None),
    )


def _near_boundary(clearance: float, margin: float) -> bool:
    return abs(clearance) < EXACT_BAND_MM or abs(clearance - margin) < EXACT_BAND_MM


def _clearance_check(
    geo: CaseGeometry, s: Structure, samples: C.ImplantSamples, pose: np.ndarray, exact: bool
) -> StructureCheck:
    margin = float(s.margin_mm or 0.0)
    fld = geo.field(s)
    method = "live"
    value = math.inf
    if fld is not None:
        value = C.live_clearance(fld, samples, pose=pose).min_clearance_mm
    if fld is None or exact or _near_boundary(value, margin):
        value = C.exact_clearance(samples, pose, geo.mesh(s)).min_clearance_mm
        method = "exact"
    return _row(s.name, s.role, value, margin, method)


def _bone_check(
    geo: CaseGeometry,
    s: Structure,
    samples: C.ImplantSamples,
    pose: np.ndarray,
    critical_depth_mm: float,
) -> StructureCheck:
    margin = float(s.margin_mm or 0.0)
    fld = geo.field(s)
    if fld is None:
        value = C.exact_clearance(samples, pose, geo.mesh(s)).min_clearance_mm
        return _row(s.name, s.role, value, margin, "exact", collides=False, status="ok")
    if samples.axis is None:
        value = C.live_clearance(fld, samples, pose=pose).min_clearance_mm
        return _row(s.name, s.role, value, margin, "live", collides=False, status="ok")
    breach = C.pedicle_breach(samples, pose, fld, None)
    buy = C.purchase(fld, samples, pose)
    exit_depth = breach.bone_exit_depth_mm
    grade = C.breach_grade(max(exit_depth, critical_depth_mm))
    purchase = {
        "axis_in_bone_mm": round(buy.axis_in_bone_mm, 3),
        "axis_length_mm": round(buy.axis_length_mm, 3),
        "surface_in_bone_fraction": round(buy.surface_in_bone_mm2 / max(buy.surface_mm2, 1e-9), 4),
    }
    value = -exit_depth if exit_depth > 0 else 0.0
    return _row(
        s.name, s.role, value, margin, "live", collides=False, grade=grade, purchase=purchase
    )


def check_plan(plan: Plan, geometry: CaseGeometry | None = None) -> PlanReport:
    """Check every implant of ``plan`` and report its cuts (see the module notes).

    Parameters
    ----------
    plan : Plan
    geometry : CaseGeometry, optional
        Reuse fields and meshes already built for this plan.

    Returns
    -------
    PlanReport
    """
    geo = geometry or CaseGeometry(plan)
    records = list(plan.implants.values())
    guarded = [s for s in plan.structures.values() if s.role in ("critical", "target")]
    bones = [s for s in plan.structures.values() if s.role == "bone"]
    exact_all = len(records) * len(guarded) <= EXACT_ALWAYS_PAIRS
    samples = {r.name: implant_samples(r) for r in records}
    reports = []
    for record in records:
        smp, pose = samples[record.name], np.asarray(record.pose)
        rows = [_clearance_check(geo, s, smp, pose, exact_all) for s in guarded]
        depth = max((r.penetration_mm for r in rows if r.role == "critical"), default=0.0)
        rows += [_bone_check(geo, s, smp, pose, depth) for s in bones]
        for other in records:
            if other.name == record.name:
                continue
            c = C.implant_clearance(smp, pose, samples[other.name], np.asarray(other.pose))
            rows.append(_row(other.name, "implant", c.min_clearance_mm, 0.0, "exact"))
        entry, tip = entry_and_tip(record)
        reports.append(
            ImplantReport(
                record.name,
                record.kind,
                tuple(float(v) for v in entry),  # type: ignore[arg-type]
                tuple(float(v) for v in tip),  # type: ignore[arg-type]
                rows,
            )
        )
    resections = [
        ResectionReport(
            cut.name,
            cut.structure,
            float(cut.parameters.get("removed_mm3", math.nan)),
            float(cut.parameters.get("remaining_mm3", math.nan)),
            cut.parameters.get("margin_mm"),
            cut.parameters.get("target_removed"),
        )
        for cut in plan.cuts.values()
    ]
    return PlanReport(reports, resections)
