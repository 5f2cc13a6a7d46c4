"""Implants: catalogue specifications, placed implants, trajectories and angle readouts.

Frames
------
An implant's **local frame** (:mod:`surgtwin.geometry.implant_shapes`) has its tip at the
origin and the implant axis along +z towards the head or entry at z = length (mm). A placed
:class:`Implant` has a ``pose``, a 4x4 rigid matrix mapping local coordinates to patient LPS
millimetres. :func:`pose_from_trajectory` builds the pose from a planned entry and target point.

Catalogue files
---------------
JSON, UTF-8::

    {"format": "surgtwin-implant-catalogue", "version": 1,
     "implants": [{"key": "pedicle-6.5x45", "kind": "pedicle_screw", "name": "...",
                   "manufacturer": "Generic",
                   "parameters": {"diameter_mm": 6.5, "length_mm": 45}}, ...]}

``kind`` is one of :data:`surgtwin.geometry.implant_shapes.KINDS` (``parameters`` are that
generator's keyword arguments) or ``"user_stl"`` for a mesh file, which also needs ``file``
(relative to the catalogue file), ``space`` (``"LPS"`` or ``"RAS"``), ``axis_entry`` (the
entry point, mm) and ``axis_direction`` (the insertion direction, from the entry towards the
tip), both in the file's own coordinates, and ``parameters`` with ``length_mm`` (entry to tip)
and optionally ``diameter_mm``. Files are validated on load; every error names the file and
the entry. Keys are unique across all loaded catalogues.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from surgtwin.errors import SurgTwinError
from surgtwin.geometry import implant_shapes
from surgtwin.geometry.mesh import Mesh

CATALOGUE_FORMAT = "surgtwin-implant-catalogue"
CATALOGUE_VERSION = 1
USER_STL = "user_stl"
KINDS: tuple[str, ...] = (*implant_shapes.KINDS, USER_STL)
_FIELDS = ("key", "kind", "name", "manufacturer", "parameters")
_STL_FIELDS = ("file", "space", "axis_entry", "axis_direction")


class ImplantSpecError(SurgTwinError, ValueError):
    """An implant specification is incomplete or inconsistent."""


class CatalogueError(SurgTwinError):
    """A catalogue file cannot be used; the message names the file and, if any, the entry."""

    def __init__(
        self, problem: str, path: str | os.PathLike | None = None, entry: str | None = None
    ):
        self.problem, self.path, self.entry = problem, None if path is None else str(path), entry
        where = ": ".join(x for x in (self.path, entry) if x)
        super().__init__(f"{where}: {problem}" if where else problem)


def _vector(name: str, value: Any) -> tuple[float, float, float]:
    ok = isinstance(value, list | tuple | np.ndarray) and len(value) == 3
    if ok:
        ok = all(
            isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in value
        ) and all(math.isfinite(float(v)) for v in value)
    if not ok:
        raise ImplantSpecError(f"{name} must be three finite numbers (mm), not {value!r}")
    return (float(value[0]), float(value[1]), float(value[2]))


@dataclass(frozen=True)
class ImplantSpec:
    """One implant model (a catalogue entry).

    Attributes
    ----------
    key : str
        Unique identifier, e.g. ``"pedicle-6.5x45"``.
    kind : str
        One of :data:`KINDS`.
    name, manufacturer : str
        Shown to the user.
    parameters : Mapping[str, Any]
        Generator arguments in mm and degrees (read-only), e.g. ``diameter_mm``, ``length_mm``.
    file, space, axis_entry, axis_direction
        ``user_stl`` only: the mesh file, its space (``"LPS"``/``"RAS"``), the entry point (mm)
        and the insertion direction (entry towards tip), in the file's coordinates.
    """

    key: str
    kind: str
    name: str
    manufacturer: str = "Generic"
    parameters: Mapping[str, Any] = field(default_factory=dict)
    file: str | None = None
    space: str | None = None
    axis_entry: tuple[float, float, float] | None = None
    axis_direction: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("key", "kind", "name", "manufacturer"):
            value = getattr(self, name)
            if not isinstance(value, str) or (name != "manufacturer" and not value.strip()):
                raise ImplantSpecError(f"{name} must be a non-empty text, not {value!r}")
        if self.kind not in KINDS:
            raise ImplantSpecError(f"unknown kind {self.kind!r}; known: {', '.join(KINDS)}")
        if not isinstance(self.parameters, Mapping):
            raise ImplantSpecError("parameters must be an object of named values")
        object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))
        if self.kind == USER_STL:
            self._check_user_stl()
        else:
            if any(getattr(self, f) is not None for f in _STL_FIELDS):
                raise ImplantSpecError(f"{', '.join(_STL_FIELDS)} are only for {USER_STL}")
            implant_shapes.validate_parameters(self.kind, self.parameters)

    def _check_user_stl(self) -> None:
        if not isinstance(self.file, str) or not self.file:
            raise ImplantSpecError("a user_stl implant needs its mesh 'file'")
        if self.space not in ("LPS", "RAS"):
            raise ImplantSpecError(f"space must be 'LPS' or 'RAS', not {self.space!r}")
        object.__setattr__(self, "axis_entry", _vector("axis_entry", self.axis_entry))
        direction = _vector("axis_direction", self.axis_direction)
        if np.linalg.norm(direction) < 1e-9:
            raise ImplantSpecError("axis_direction must not be zero")
        object.__setattr__(self, "axis_direction", direction)
        extra = sorted(set(self.parameters) - {"length_mm", "diameter_mm"})
        if extra:
            raise ImplantSpecError(
                f"unknown user_stl parameter(s) {', '.join(extra)}; allowed: length_mm, diameter_mm"
            )
        for name in ("length_mm", "diameter_mm"):
            if name == "length_mm" or name in self.parameters:
                value = self.parameters.get(name)
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not 0 < value <= 1000
                ):
                    raise ImplantSpecError(f"{name} = {value!r} must be a number, 0 to 1000 mm")

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @property
    def length_mm(self) -> float:
        """Tip to entry along the axis (mm); for a cup, apex to rim (half the diameter)."""
        if self.kind == "cup":
            return float(self.parameters["outer_diameter_mm"]) / 2
        return float(self.parameters["length_mm"])

    @property
    def diameter_mm(self) -> float | None:
        """Outer diameter (mm), or None for kinds without one (plates, cages)."""
        for name in ("diameter_mm", "outer_diameter_mm"):
            if name in self.parameters:
                return float(self.parameters[name])
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the catalogue schema."""
        out: dict[str, Any] = {f: getattr(self, f) for f in _FIELDS}
        out["parameters"] = dict(self.parameters)
        if self.kind == USER_STL:
            out.update({f: getattr(self, f) for f in _STL_FIELDS})
            out["axis_entry"], out["axis_direction"] = (
                list(self.axis_entry or ()),
                list(self.axis_direction or ()),
            )
        return out

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | os.PathLike | None = None) -> ImplantSpec:
        """Build from the catalogue schema; a relative ``file`` is resolved against base_dir."""
        if not isinstance(data, Mapping):
            raise ImplantSpecError("an implant must be a JSON object")
        unknown = sorted(set(data) - set(_FIELDS) - set(_STL_FIELDS))
        if unknown:
            raise ImplantSpecError(f"unknown field(s) {', '.join(unknown)}")
        missing = [f for f in ("key", "kind", "name", "parameters") if f not in data]
        if missing:
            raise ImplantSpecError(f"missing field(s) {', '.join(missing)}")
        kwargs = dict(data)
        if isinstance(kwargs.get("file"), str) and base_dir is not None:
            kwargs["file"] = str(Path(base_dir, kwargs["file"]))
        return cls(**kwargs)

    def local_mesh(self) -> Mesh:
        """The implant's mesh in its local frame (a copy of a cached mesh)."""
        stamp = None
        if self.kind == USER_STL:
            st = os.stat(str(self.file))
            stamp = (st.st_mtime_ns, st.st_size)
        m = _local_mesh(self, stamp)
        return Mesh(m.points.copy(), m.faces.copy(), m.name, m.color, m.role, dict(m.metadata))


def record_parameters(spec: ImplantSpec) -> dict[str, Any]:
    """The plain-data parameters a placed implant record keeps for ``spec``.

    For the generated kinds, the spec's parameters. For ``user_stl``, also what rebuilds the
    spec without the catalogue: ``file`` (absolute path), ``space``, ``axis_entry`` and
    ``axis_direction`` (lists, mm, in the file's coordinates); see :func:`spec_from_record`.

    Parameters
    ----------
    spec : ImplantSpec
        The catalogue model being placed.

    Returns
    -------
    dict
        JSON-ready parameters (sizes in mm).
    """
    params: dict[str, Any] = dict(spec.parameters)
    if spec.kind == USER_STL:
        params["file"] = str(Path(str(spec.file)).resolve())
        params["space"] = spec.space
        params["axis_entry"] = list(spec.axis_entry or ())
        params["axis_direction"] = list(spec.axis_direction or ())
    return params


def spec_from_record(kind: str, key: str, name: str, parameters: Mapping[str, Any]) -> ImplantSpec:
    """Rebuild the model of a placed implant from its record (see :func:`record_parameters`).

    Parameters
    ----------
    kind, key, name : str
        The record's kind and spec key, and the name the model is shown under.
    parameters : Mapping
        The record's parameters (mm).

    Returns
    -------
    ImplantSpec

    Raises
    ------
    ImplantSpecError
        Missing or invalid parameters. A missing mesh file is not checked here (it is read
        only when the mesh is needed).
    """
    params = dict(parameters)
    if kind != USER_STL:
        return ImplantSpec(key, kind, name, "", params)
    stl = {f: params.pop(f, None) for f in _STL_FIELDS}
    return ImplantSpec(key, kind, name, "", params, **stl)


def default_axis(
    points: np.ndarray, direction: Iterable[float] = (0.0, 0.0, -1.0)
) -> tuple[tuple[float, float, float], float]:
    """A mesh's default insertion axis: the entry and the length along ``direction``.

    Parameters
    ----------
    points : numpy.ndarray, shape (n, 3)
        The mesh's vertices in the file's coordinates (mm).
    direction : sequence of 3 float
        Insertion direction (entry towards tip); default -z.

    Returns
    -------
    entry : tuple of 3 float
        The centre of the bounding box's face the implant enters by (for -z: its top centre).
    length_mm : float
        The mesh's extent along ``direction`` (mm).
    """
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    d = np.asarray(tuple(direction), dtype=float)
    if len(pts) == 0 or d.shape != (3,) or np.linalg.norm(d) < 1e-9:
        raise ImplantSpecError("a default axis needs mesh points and a non-zero direction")
    d = d / np.linalg.norm(d)
    along = pts @ d
    length = float(along.max() - along.min())
    centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
    entry = centre - d * (float(centre @ d) - float(along.min()))
    return (float(entry[0]), float(entry[1]), float(entry[2])), length


def append_to_catalogue_file(path: str | os.PathLike, spec: ImplantSpec) -> None:
    """Add ``spec`` to a user catalogue file, creating it (and its folder) if needed.

    The file is replaced atomically; its other entries are kept as written (relative mesh
    paths stay relative). A ``user_stl`` spec's file is stored as given (absolute paths are
    best).

    Raises
    ------
    CatalogueError
        The existing file is not a catalogue, already has ``spec.key``, or cannot be written.
    """
    from surgtwin.fileio import atomic_write

    target = Path(path)
    doc: dict[str, Any] = {
        "format": CATALOGUE_FORMAT,
        "version": CATALOGUE_VERSION,
        "implants": [],
    }
    if target.exists():
        Catalogue.read_file(target)  # the whole file must be valid before it grows
        doc = json.loads(target.read_text(encoding="utf-8"))
        if any(isinstance(e, dict) and e.get("key") == spec.key for e in doc["implants"]):
            raise CatalogueError("key already in this catalogue", target, f"implant {spec.key!r}")
    doc["implants"].append(spec.to_dict())
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(
            [target], error=lambda problem, where: CatalogueError(problem, where)
        ) as (tmp,):
            tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"cannot write the catalogue ({exc})", target) from exc


@functools.lru_cache(maxsize=64)
def _local_mesh(spec: ImplantSpec, stamp: tuple[int, int] | None) -> Mesh:
    del stamp  # part of the cache key only: a changed file is read again
    if spec.kind != USER_STL:
        mesh = implant_shapes.make_shape(spec.kind, spec.parameters)
    else:
        from surgtwin.geometry.mesh_io import import_mesh

        mesh = import_mesh(str(spec.file), str(spec.space), role="implant")
        entry, direction = np.array(spec.axis_entry), np.array(spec.axis_direction)
        if spec.space == "RAS":  # the axis is in the file's numbers, like the mesh
            entry, direction = entry * (-1, -1, 1), direction * (-1, -1, 1)
        direction = direction / np.linalg.norm(direction)
        pose = np.eye(4)
        pose[:3, :3] = _basis(-direction, 0.0)
        pose[:3, 3] = entry + spec.length_mm * direction
        mesh = mesh.transformed(np.linalg.inv(pose))
    mesh.name = spec.name
    mesh.metadata["implant"] = spec.key
    return mesh


def _basis(axis: np.ndarray, roll_deg: float) -> np.ndarray:
    """Rotation whose columns are the local x, y, z axes in LPS for a local +z = ``axis``.

    At roll 0 the local x axis is the patient's superior direction (LPS +z) made perpendicular
    to the axis, or anterior (LPS -y) when the axis is within about 8 degrees of superior or
    inferior; ``roll_deg`` turns x and y about the axis (right-handed).
    """
    z = np.asarray(axis, dtype=float)
    z = z / np.linalg.norm(z)
    ref = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.99 else np.array([0.0, -1.0, 0.0])
    x = ref - ref.dot(z) * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    return np.column_stack([c * x + s * y, c * y - s * x, z])


def trajectory_direction(entry: np.ndarray, target: np.ndarray, error=ValueError) -> np.ndarray:
    """Unit LPS vector from ``entry`` to ``target``; ``error`` when they coincide."""
    span = np.asarray(target, dtype=float) - np.asarray(entry, dtype=float)
    norm = float(np.linalg.norm(span))
    if norm < 1e-6:
        raise error("entry and target are the same point; a trajectory needs two points")
    return span / norm


def pose_from_trajectory(
    entry_lps: Iterable[float], target_lps: Iterable[float], length_mm: float, roll_deg: float = 0.0
) -> np.ndarray:
    """The pose placing an implant along a planned trajectory.

    Parameters
    ----------
    entry_lps, target_lps : sequence of 3 float
        Planned entry point and a point the implant aims at (LPS mm); they must differ.
    length_mm : float
        Implant length (mm): the tip lands at ``entry + length * unit(target - entry)``.
    roll_deg : float
        Rotation about the implant axis (degrees, right-handed about the axis from tip to
        entry); at 0 the local x axis is as close as possible to patient superior (to
        anterior for a near-vertical axis), see :func:`_basis`.

    Returns
    -------
    numpy.ndarray, shape (4, 4)
        Local -> LPS: local +z (tip to entry) points from the target back towards the entry,
        the local origin (tip) is inside, and local z = length is exactly at the entry.
    """
    entry, target = np.asarray(entry_lps, dtype=float), np.asarray(target_lps, dtype=float)
    if not (np.all(np.isfinite(entry)) and np.all(np.isfinite(target))):
        raise ValueError("entry and target must be finite LPS points (mm)")
    if not (math.isfinite(length_mm) and length_mm > 0):
        raise ValueError(f"length_mm must be positive, not {length_mm!r}")
    direction = trajectory_direction(entry, target)
    pose = np.eye(4)
    pose[:3, :3] = _basis(-direction, roll_deg)
    pose[:3, 3] = entry + length_mm * direction
    return pose


@dataclass(eq=False)
class Implant:
    """An implant placed in the patient.

    Attributes
    ----------
    name : str
        e.g. ``"L4 left pedicle screw"``.
    spec : ImplantSpec
        The implant model.
    pose : numpy.ndarray, shape (4, 4)
        Rigid transform local -> patient LPS (mm); identity by default.
    """

    name: str
    spec: ImplantSpec
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        pose = np.array(self.pose, dtype=np.float64)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise ValueError("pose must be a finite 4x4 matrix")
        rot = pose[:3, :3]
        if (
            not np.allclose(pose[3], (0, 0, 0, 1))
            or not np.allclose(rot.T @ rot, np.eye(3), atol=1e-6)
            or np.linalg.det(rot) < 0
        ):
            raise ValueError("pose must be a rigid transform (rotation and translation)")
        self.pose = pose

    @classmethod
    def on_trajectory(
        cls,
        name: str,
        spec: ImplantSpec,
        entry_lps: Iterable[float],
        target_lps: Iterable[float],
        roll_deg: float = 0.0,
    ) -> Implant:
        """Place ``spec`` with its head at ``entry_lps`` aiming at ``target_lps``."""
        return cls(
            name, spec, pose_from_trajectory(entry_lps, target_lps, spec.length_mm, roll_deg)
        )

    @property
    def length_mm(self) -> float:
        return self.spec.length_mm

    @property
    def diameter_mm(self) -> float | None:
        return self.spec.diameter_mm

    @property
    def axis(self) -> np.ndarray:
        """Unit LPS vector from the tip towards the entry (local +z)."""
        return self.pose[:3, 2].copy()

    @property
    def tip(self) -> np.ndarray:
        """LPS point (mm) of the tip (local origin)."""
        return self.pose[:3, 3].copy()

    @property
    def entry(self) -> np.ndarray:
        """LPS point (mm) where the implant enters (local z = length)."""
        return self.pose[:3, 3] + self.length_mm * self.pose[:3, 2]

    def mesh(self) -> Mesh:
        """The implant's surface in patient LPS mm."""
        mesh = self.spec.local_mesh().transformed(self.pose)
        mesh.name = self.name
        return mesh

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the full spec is included, so plans open without the catalogue)."""
        return {"name": self.name, "spec": self.spec.to_dict(), "pose": self.pose.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Implant:
        if not isinstance(data, Mapping) or set(data) != {"name", "spec", "pose"}:
            raise ImplantSpecError("an implant needs exactly 'name', 'spec' and 'pose'")
        return cls(
            str(data["name"]),
            ImplantSpec.from_dict(data["spec"]),
            np.asarray(data["pose"], dtype=float),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Implant):
            return NotImplemented
        return (
            self.name == other.name
            and self.spec == other.spec
            and np.array_equal(self.pose, other.pose)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable


def angulation(implant: Implant, midline_x_mm: float = 0.0) -> tuple[float, float]:
    """Axial and sagittal angles (degrees) of an implant's insertion direction.

    The insertion direction d runs from the entry towards the tip (minus :attr:`Implant.axis`).

    Parameters
    ----------
    implant : Implant
    midline_x_mm : float
        LPS x (mm) of the patient's midsagittal plane, which tells medial from lateral.

    Returns
    -------
    axial_deg : float
        Angle in the axial (x-y) plane between d's projection and the antero-posterior axis,
        -90 to 90. **Positive = medial** (d heads towards the midline: convergence), negative
        = lateral. For an entry exactly on the midline, positive = towards patient left (+x).
        Independent of whether d heads anterior or posterior; 0 if d is vertical.
    sagittal_deg : float
        Angle in the sagittal (y-z) plane between d's projection and the axial plane, -90 to
        90. **Positive = cranial** (the tip is superior to the entry, LPS +z), negative =
        caudal.
    """
    d = -implant.axis
    ap = abs(d[1])
    entry_x = implant.entry[0]
    toward_midline = 1.0 if abs(entry_x - midline_x_mm) < 1e-9 else np.sign(midline_x_mm - entry_x)
    medial = d[0] * toward_midline
    axial = 0.0 if math.hypot(ap, medial) < 1e-12 else math.degrees(math.atan2(medial, ap))
    sagittal = 0.0 if math.hypot(ap, d[2]) < 1e-12 else math.degrees(math.atan2(d[2], ap))
    return float(axial), float(sagittal)


class Catalogue:
    """An ordered set of implant specifications with unique keys."""

    def __init__(self, specs: Iterable[ImplantSpec] = ()):
        self._specs: dict[str, ImplantSpec] = {}
        for spec in specs:
            if spec.key in self._specs:
                raise CatalogueError(f"duplicate implant key {spec.key!r}")
            self._specs[spec.key] = spec

    @staticmethod
    def read_file(path: str | os.PathLike) -> list[ImplantSpec]:
        """Read and validate one catalogue file (errors name the file and the entry)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CatalogueError(f"cannot read the catalogue ({exc})", path) from exc
        return _parse(data, path, Path(path).resolve().parent)

    @classmethod
    def builtin(cls) -> Catalogue:
        """The catalogue shipped with SurgTwin (generic sizes, no manufacturer's products)."""
        res = resources.files("surgtwin.planning").joinpath("catalogue.json")
        return cls(_parse(json.loads(res.read_text(encoding="utf-8")), "catalogue.json", None))

    @classmethod
    def load(
        cls, user_files: Iterable[str | os.PathLike] = (), include_builtin: bool = True
    ) -> Catalogue:
        """The built-in catalogue plus user catalogue files; keys must be unique across all."""
        specs = list(cls.builtin()) if include_builtin else []
        seen = {s.key for s in specs}
        for path in user_files:
            for spec in cls.read_file(path):
                if spec.key in seen:
                    raise CatalogueError(
                        "key already used by another catalogue", path, f"implant {spec.key!r}"
                    )
                seen.add(spec.key)
                specs.append(spec)
        return cls(specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self) -> Iterator[ImplantSpec]:
        return iter(self._specs.values())

    def __contains__(self, key: object) -> bool:
        return key in self._specs

    def __getitem__(self, key: str) -> ImplantSpec:
        try:
            return self._specs[key]
        except KeyError:
            raise KeyError(f"no implant {key!r} in the catalogue") from None

    def kinds(self) -> list[str]:
        return sorted({s.kind for s in self})

    def of_kind(self, kind: str) -> list[ImplantSpec]:
        return [s for s in self if s.kind == kind]

    def nearest(
        self, kind: str, diameter_mm: float | None = None, length_mm: float | None = None
    ) -> ImplantSpec:
        """The catalogue size of ``kind`` nearest to a wanted diameter and length (mm).

        The diameter decides first, then the length (a planned 6.3 x 47 mm screw becomes
        6.5 x 45 if those are the nearest); on a tie the smaller size wins. Either may be None
        (ignored); kinds without a diameter (plates, cages) are matched on length.
        """
        specs = self.of_kind(kind)
        if not specs:
            raise KeyError(f"the catalogue has no implant of kind {kind!r}")

        def rank(s: ImplantSpec) -> tuple[float, float, float, float]:
            d, length = s.diameter_mm or 0.0, s.length_mm
            dd = 0.0 if diameter_mm is None or s.diameter_mm is None else abs(d - diameter_mm)
            dl = 0.0 if length_mm is None else abs(length - length_mm)
            return round(dd, 6), round(dl, 6), d, length

        return min(specs, key=rank)

    def to_json(self) -> str:
        """The catalogue in the file format (user_stl files keep the paths as loaded)."""
        doc = {
            "format": CATALOGUE_FORMAT,
            "version": CATALOGUE_VERSION,
            "implants": [s.to_dict() for s in self],
        }
        return json.dumps(doc, indent=1)


def _parse(data: Any, path: str | os.PathLike, base_dir: Path | None) -> list[ImplantSpec]:
    if not isinstance(data, dict) or data.get("format") != CATALOGUE_FORMAT:
        raise CatalogueError(
            f'not an implant catalogue (needs "format": "{CATALOGUE_FORMAT}")', path
        )
    if data.get("version") != CATALOGUE_VERSION:
        raise CatalogueError(
            f"unsupported version {data.get('version')!r} (this SurgTwin reads "
            f"version {CATALOGUE_VERSION})",
            path,
        )
    entries = data.get("implants")
    if not isinstance(entries, list):
        raise CatalogueError('"implants" must be a list', path)
    specs, seen = [], set()
    for i, entry in enumerate(entries):
        key = entry.get("key") if isinstance(entry, dict) else None
        label = f"implant {i + 1}" + (f" ({key!r})" if isinstance(key, str) else "")
        try:
            spec = ImplantSpec.from_dict(entry, base_dir)
        except (ImplantSpecError, implant_shapes.ImplantParameterError, TypeError) as exc:
            raise CatalogueError(str(exc), path, label) from exc
        if spec.key in seen:
            raise CatalogueError("duplicate key in this catalogue", path, label)
        if spec.kind == USER_STL and not Path(str(spec.file)).is_file():
            raise CatalogueError(f"mesh file not found: {spec.file}", path, label)
        seen.add(spec.key)
        specs.append(spec)
    return specs
