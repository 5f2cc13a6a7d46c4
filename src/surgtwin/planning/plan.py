"""The surgical plan: the one source of truth the views, checks and the plan file work from.

A :class:`Plan` holds the case reference, the structures (from the label map or meshes), the
implants, the cuts, the measurements, the notes and the label map. Records are immutable
(frozen dataclasses); a change replaces a record, and the plan's :attr:`Plan.events` emitter
reports it (see :mod:`surgtwin.planning.events`): collections emit an event named after the
collection (``"structures"``, ``"implants"``, ``"cuts"``, ``"measurements"``) keyed by the item
name, whose :attr:`~surgtwin.planning.events.Event.kind` is ``added``, ``removed`` or
``changed``; fields (``"name"``, ``"case"``, ``"notes"``, ``"labelmap"``) emit when set to a
different value; label-map voxel edits emit ``"labelmap_voxels"`` keyed by the changed box.

User operations change the plan through commands (:mod:`surgtwin.planning.commands`) so that they
can be undone; the methods here are the primitive, non-undoable edits the commands use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from surgtwin.geometry.mesh import Mesh
from surgtwin.planning.events import EventEmitter, RecordCollection
from surgtwin.segmentation.labelmap import LabelMap

__all__ = [
    "CUT_TOOLS",
    "ROLES",
    "CaseReference",
    "Cut",
    "Implant",
    "Measurement",
    "Plan",
    "RecordCollection",
    "Structure",
    "default_margin_mm",
    "plain_data",
]

ROLES = ("bone", "skin", "critical", "target", "other")
CUT_TOOLS = ("plane", "box", "sphere", "polygon")
#: Safety margin of critical structures when none is given (mm).
CRITICAL_MARGIN_MM = 2.0


def default_margin_mm(role: str) -> float:
    """Default safety margin around a structure of ``role``: 2.0 mm if critical, else 0 mm."""
    return CRITICAL_MARGIN_MM if role == "critical" else 0.0


def plain_data(value: Any, where: str = "value") -> Any:
    """``value`` as JSON-compatible plain data (dict/list/str/int/float/bool/None).

    NumPy scalars and arrays become Python numbers and (nested) lists; anything else raises
    ``TypeError``, so that every parameter can be written to and read back from a plan file.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return plain_data(value.tolist(), where)
    if isinstance(value, list | tuple):
        return [plain_data(v, where) for v in value]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be text, not {type(k).__name__}")
            out[k] = plain_data(v, f"{where}.{k}")
        return out
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored in a plan")


def _colour(color: Any) -> tuple[float, float, float]:
    rgb = tuple(float(c) for c in color)
    if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
        raise ValueError(f"a colour is three numbers 0..1, not {color!r}")
    return rgb  # type: ignore[return-value]


def _points(points: Any, n: int) -> tuple[tuple[float, float, float], ...]:
    arr = np.asarray(points, dtype=float)
    if arr.shape != (n, 3) or not np.isfinite(arr).all():
        raise ValueError(f"expected {n} finite LPS points (x, y, z) in mm, got {points!r}")
    return tuple(tuple(float(c) for c in p) for p in arr)  # type: ignore[return-value]


def mesh_digest(mesh: Mesh) -> str:
    """SHA-256 of a mesh's points (float64) and faces (int64), little-endian."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(mesh.points, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(mesh.faces, dtype="<i8").tobytes())
    return h.hexdigest()


def labelmap_digest(labelmap: LabelMap) -> str:
    """SHA-256 of a label map's shape and voxel values."""
    h = hashlib.sha256(repr(tuple(labelmap.array.shape)).encode())
    h.update(np.ascontiguousarray(labelmap.array, dtype=np.uint8).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------- records


@dataclass(frozen=True)
class CaseReference:
    """Which images the plan was made on (no pixel data, no patient identifiers).

    Attributes
    ----------
    study_uid : str
        DICOM StudyInstanceUID.
    series_uids : tuple of str
        SeriesInstanceUIDs used (the planning series first).
    frame_of_reference_uid : str
        DICOM FrameOfReferenceUID: the patient coordinate system of every LPS position.
    source_path : str
        Where the images were loaded from (folder, zip or DICOMDIR).
    embedded_dicom : tuple of str
        Members ``dicom/...`` of the plan file holding copies of the images, if any.
    """

    study_uid: str = ""
    series_uids: tuple[str, ...] = ()
    frame_of_reference_uid: str = ""
    source_path: str = ""
    embedded_dicom: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "series_uids", tuple(str(u) for u in self.series_uids))
        object.__setattr__(self, "embedded_dicom", tuple(str(u) for u in self.embedded_dicom))

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_uid": self.study_uid,
            "series_uids": list(self.series_uids),
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "source_path": self.source_path,
            "embedded_dicom": list(self.embedded_dicom),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CaseReference:
        return cls(
            d["study_uid"],
            tuple(d["series_uids"]),
            d["frame_of_reference_uid"],
            d["source_path"],
            tuple(d.get("embedded_dicom", ())),
        )


@dataclass(frozen=True)
class Structure:
    """An anatomical structure shown and checked in the plan.

    Attributes
    ----------
    name : str
        Unique in the plan ("L4", "spinal canal").
    role : str
        One of :data:`ROLES`; ``critical`` structures are kept clear of implants.
    color : tuple of float
        RGB 0..1.
    visible : bool
    opacity : float
        0..1.
    margin_mm : float
        Safety margin around the structure in mm; ``None`` gives :func:`default_margin_mm`
        (2.0 mm for critical structures, 0 otherwise).
    source : {"label", "mesh"}
        Whether the structure is a label of the plan's label map or a mesh.
    label_value : int or None
        The label value (1..255) for ``source="label"``.
    mesh : Mesh or None
        The surface (LPS mm) for ``source="mesh"``.
    space : str
        Coordinate system of the mesh points ("LPS").
    """

    name: str
    role: str = "other"
    color: tuple[float, float, float] = (0.9, 0.9, 0.9)
    visible: bool = True
    opacity: float = 1.0
    margin_mm: float | None = None
    source: str = "label"
    label_value: int | None = None
    mesh: Mesh | None = field(default=None, compare=False)
    space: str = "LPS"

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a structure needs a name")
        if self.role not in ROLES:
            raise ValueError(f"role {self.role!r} is not one of {', '.join(ROLES)}")
        object.__setattr__(self, "color", _colour(self.color))
        if not 0.0 <= float(self.opacity) <= 1.0:
            raise ValueError(f"opacity must be 0..1, not {self.opacity}")
        object.__setattr__(self, "opacity", float(self.opacity))
        margin = default_margin_mm(self.role) if self.margin_mm is None else self.margin_mm
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"safety margin must be >= 0 mm, not {margin}")
        object.__setattr__(self, "margin_mm", float(margin))
        if self.source == "label":
            if self.label_value is None or not 1 <= int(self.label_value) <= 255:
                raise ValueError(f"structure {self.name!r}: a label value 1..255 is needed")
            object.__setattr__(self, "label_value", int(self.label_value))
        elif self.source == "mesh":
            if not isinstance(self.mesh, Mesh):
                raise ValueError(f"structure {self.name!r}: a mesh is needed")
        else:
            raise ValueError(f"structure source must be 'label' or 'mesh', not {self.source!r}")
        if self.space != "LPS":
            raise ValueError(f"structure {self.name!r}: meshes are kept in LPS mm")

    def to_dict(self) -> dict[str, Any]:
        mesh = None
        if self.mesh is not None:
            mesh = {
                "name": self.mesh.name,
                "color": list(map(float, self.mesh.color)),
                "role": self.mesh.role,
                "metadata": dict(self.mesh.metadata),
                "n_points": len(self.mesh.points),
                "n_faces": len(self.mesh.faces),
                "sha256": mesh_digest(self.mesh),
            }
        return {
            "name": self.name,
            "role": self.role,
            "color": list(self.color),
            "visible": self.visible,
            "opacity": self.opacity,
            "margin_mm": self.margin_mm,
            "source": self.source,
            "label_value": self.label_value,
            "space": self.space,
            "mesh": mesh,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], mesh: Mesh | None = None) -> Structure:
        return cls(
            d["name"],
            d["role"],
            tuple(d["color"]),
            d["visible"],
            d["opacity"],
            d["margin_mm"],
            d["source"],
            d["label_value"],
            mesh,
            d.get("space", "LPS"),
        )


@dataclass(frozen=True, eq=False)
class Implant:
    """An implant placed in the plan (the library describes the model; this is the placement).

    Attributes
    ----------
    name : str
        Unique in the plan ("L4 left pedicle screw").
    kind : str
        Implant family ("pedicle_screw", "cage", "plate").
    spec_key : str
        Key of the model in the implant library.
    parameters : dict
        Plain-data sizes of this instance (e.g. ``{"diameter_mm": 6.5, "length_mm": 45}``).
    pose : numpy.ndarray, shape (4, 4)
        Implant-to-LPS rigid transform (mm); read-only.
    """

    name: str
    kind: str
    spec_key: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("an implant needs a name")
        object.__setattr__(self, "parameters", plain_data(dict(self.parameters), "parameters"))
        pose = np.array(self.pose, dtype=np.float64)
        if pose.shape != (4, 4) or not np.isfinite(pose).all():
            raise ValueError(f"implant {self.name!r}: the pose must be a finite 4x4 matrix")
        if not np.array_equal(pose[3], [0.0, 0.0, 0.0, 1.0]):
            raise ValueError(f"implant {self.name!r}: the pose's last row must be 0 0 0 1")
        pose.flags.writeable = False
        object.__setattr__(self, "pose", pose)

    def with_pose(self, pose: np.ndarray) -> Implant:
        return dataclasses.replace(self, pose=pose)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "spec_key": self.spec_key,
            "parameters": plain_data(self.parameters),
            "pose": self.pose.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Implant:
        return cls(d["name"], d["kind"], d["spec_key"], dict(d["parameters"]), d["pose"])


@dataclass(frozen=True)
class Cut:
    """A virtual cut of a structure (osteotomy, resection).

    Attributes
    ----------
    name : str
        Unique in the plan ("L4 osteotomy").
    structure : str
        Name of the structure cut.
    tool : {"plane", "box", "sphere", "polygon"}
    parameters : dict
        Plain data of the tool, LPS mm (e.g. ``{"point": [...], "normal": [...]}``).
    """

    name: str
    structure: str
    tool: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tool not in CUT_TOOLS:
            raise ValueError(f"cut tool {self.tool!r} is not one of {', '.join(CUT_TOOLS)}")
        object.__setattr__(self, "parameters", plain_data(dict(self.parameters), "parameters"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "structure": self.structure,
            "tool": self.tool,
            "parameters": plain_data(self.parameters),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Cut:
        return cls(d["name"], d["structure"], d["tool"], dict(d["parameters"]))


@dataclass(frozen=True)
class Measurement:
    """A distance (two LPS points, mm) or an angle (three points, vertex in the middle, degrees).

    Attributes
    ----------
    name : str
    kind : {"distance", "angle"}
    points : tuple of (x, y, z)
        LPS mm.
    """

    name: str
    kind: str
    points: tuple[tuple[float, float, float], ...]

    def __post_init__(self) -> None:
        n = {"distance": 2, "angle": 3}.get(self.kind)
        if n is None:
            raise ValueError(f"a measurement is a 'distance' or an 'angle', not {self.kind!r}")
        object.__setattr__(self, "points", _points(self.points, n))

    @property
    def unit(self) -> str:
        return "mm" if self.kind == "distance" else "degrees"

    @property
    def value(self) -> float:
        """Distance in mm, or the angle at the middle point in degrees (0..180)."""
        p = np.asarray(self.points)
        if self.kind == "distance":
            return float(np.linalg.norm(p[1] - p[0]))
        u, v = p[0] - p[1], p[2] - p[1]
        nu, nv = np.linalg.norm(u), np.linalg.norm(v)
        if nu == 0 or nv == 0:
            return float("nan")
        # atan2 of |cross| and dot stays accurate near 0 and 180 degrees
        return float(np.degrees(np.arctan2(np.linalg.norm(np.cross(u, v)), np.dot(u, v))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "points": [list(p) for p in self.points],
            "value": self.value,
            "unit": self.unit,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Measurement:
        return cls(d["name"], d["kind"], tuple(tuple(p) for p in d["points"]))


# ---------------------------------------------------------------------- plan


class Plan:
    """A surgical plan (evented model; knows nothing of Qt or files).

    Parameters
    ----------
    name : str, optional
        Shown in the title bar and used for the autosave file name.
    case : CaseReference, optional
    labelmap : LabelMap, optional
        The segmentation on the planning volume's grid.

    Attributes
    ----------
    events : EventEmitter
        Every change of the plan (see the module docstring for the event names).
    structures, implants, cuts, measurements : RecordCollection
    """

    def __init__(
        self,
        name: str = "untitled",
        case: CaseReference | None = None,
        labelmap: LabelMap | None = None,
    ):
        self.events = EventEmitter(self)
        self._name = name
        self._case = case or CaseReference()
        self._notes = ""
        self._labelmap = labelmap
        self.structures: RecordCollection[Structure] = RecordCollection(
            "structures", Structure, self.events
        )
        self.implants: RecordCollection[Implant] = RecordCollection(
            "implants", Implant, self.events
        )
        self.cuts: RecordCollection[Cut] = RecordCollection("cuts", Cut, self.events)
        self.measurements: RecordCollection[Measurement] = RecordCollection(
            "measurements", Measurement, self.events
        )

    def __repr__(self) -> str:
        return (
            f"<Plan {self._name!r}: {len(self.structures)} structures, "
            f"{len(self.implants)} implants, {len(self.cuts)} cuts, "
            f"{len(self.measurements)} measurements>"
        )

    def batch(self):
        """Context manager: emit each changed field/item once when it ends."""
        return self.events.batch()

    # ------------------------------------------------------------------ fields

    def _set(self, attr: str, value: Any) -> None:
        old = getattr(self, "_" + attr)
        setattr(self, "_" + attr, value)
        self.events.emit(attr, old, value)

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._set("name", str(value))

    @property
    def case(self) -> CaseReference:
        return self._case

    @case.setter
    def case(self, value: CaseReference) -> None:
        self._set("case", value)

    @property
    def notes(self) -> str:
        """Free text of the surgeon."""
        return self._notes

    @notes.setter
    def notes(self, value: str) -> None:
        self._set("notes", str(value))

    @property
    def labelmap(self) -> LabelMap | None:
        return self._labelmap

    @labelmap.setter
    def labelmap(self, value: LabelMap | None) -> None:
        old = self._labelmap
        self._labelmap = value
        if old is not value:  # a label map is compared by identity, never voxel by voxel
            self.events.emit("labelmap", old, value)

    def labelmap_edited(self, box: tuple[slice, slice, slice]) -> None:
        """Report that voxels of the label map changed within ``box`` (k, j, i slices)."""
        bounds = tuple((int(s.start), int(s.stop)) for s in box)
        self.events.emit("labelmap_voxels", None, bounds, key=bounds)

    # ------------------------------------------------------------------ export

    def to_dict(self) -> dict[str, Any]:
        """Everything in the plan as plain data (meshes and voxels as SHA-256 digests).

        Two plans with equal ``to_dict()`` hold the same structures, implants (poses exactly),
        cuts, measurements, notes, case reference and label map.
        """
        lm = self._labelmap
        labelmap = None
        if lm is not None:
            g = lm.geometry
            labelmap = {
                "geometry": {
                    "shape": [int(v) for v in g.shape],
                    "spacing": [float(v) for v in g.spacing],
                    "origin": [float(v) for v in g.origin],
                    "direction": np.asarray(g.direction, dtype=float).tolist(),
                },
                "labels": [
                    {
                        "value": lab.value,
                        "name": lab.name,
                        "color": [float(c) for c in lab.color],
                        "role": str(lab.role),
                        "visible": bool(lab.visible),
                        "opacity": float(lab.opacity),
                    }
                    for lab in sorted(lm.labels.values(), key=lambda lab: lab.value)
                ],
                "sha256": labelmap_digest(lm),
            }
        return {
            "name": self._name,
            "case": self._case.to_dict(),
            "structures": [s.to_dict() for s in self.structures.values()],
            "implants": [s.to_dict() for s in self.implants.values()],
            "cuts": [s.to_dict() for s in self.cuts.values()],
            "measurements": [s.to_dict() for s in self.measurements.values()],
            "notes": self._notes,
            "labelmap": labelmap,
        }
