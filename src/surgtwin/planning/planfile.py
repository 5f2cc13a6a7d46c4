"""The plan file (``.surgplan``): a zip archive, written atomically and read defensively.

Layout (schema version 1)::

    plan.json               the plan (schema below), UTF-8 JSON
    meshes/<n>.vtp          surfaces of mesh structures (VTK XML PolyData, float64 LPS mm)
    labelmap.seg.nrrd       the label map (3D Slicer segmentation, LPS), if it has voxels
    dicom/<n>_<file>        copies of the source DICOM files, only when asked
    extra/<name>            other small members of other SurgTwin layers (e.g. the training
                            mode's attempt record), only when given; the plan ignores them

``plan.json`` is ``{"format": "surgtwin-plan", "schema_version": 1, "created_by": ...,
"plan": Plan.to_dict()}`` where each mesh entry also names its ``file`` and the label map entry
its ``file`` (``null`` when empty); SHA-256 digests of points/faces and voxels are checked on
loading, so a damaged file is refused instead of silently giving a different plan.

Loading never extracts anything: members are read into memory with size limits (the label map
goes through a private temporary folder, removed afterwards). Hostile or damaged archives
(member names with ``..``, absolute paths, backslashes or drive letters; declared or actual
sizes over the limits; compression ratios over 1000; too many members; truncated or corrupt
zips; invalid JSON or schema; newer schema versions) raise :class:`PlanFileError`. No pickle.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from surgtwin import __version__
from surgtwin.errors import SurgTwinError
from surgtwin.fileio import atomic_write
from surgtwin.geometry.mesh import Mesh
from surgtwin.imaging.volume import ImageGeometry
from surgtwin.planning.commands import CommandStack
from surgtwin.planning.plan import (
    CaseReference,
    Cut,
    Implant,
    Measurement,
    Plan,
    Structure,
    labelmap_digest,
    mesh_digest,
)
from surgtwin.segmentation.labelmap import Label, LabelMap, Role

__all__ = [
    "SCHEMA_VERSION",
    "SUFFIX",
    "Autosaver",
    "Limits",
    "PlanFileError",
    "find_recoverable",
    "load_plan",
    "read_extra_member",
    "save_plan",
]

SCHEMA_VERSION = 1
FORMAT = "surgtwin-plan"
SUFFIX = ".surgplan"
AUTOSAVE_SUFFIX = ".autosave" + SUFFIX
PLAN_JSON = "plan.json"
LABELMAP_MEMBER = "labelmap.seg.nrrd"
EXTRA_PREFIX = "extra/"
_EXTRA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


class PlanFileError(SurgTwinError):
    """A plan file that cannot be written or read; the message names the file and the problem.

    Parameters
    ----------
    problem : str
    path : str or os.PathLike, optional
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


@dataclass(frozen=True)
class Limits:
    """What :func:`load_plan` accepts.

    Attributes
    ----------
    max_members : int
        Members in the archive.
    max_member_bytes : int
        Uncompressed size of one member (bytes).
    max_total_bytes : int
        Uncompressed size of all members together (bytes).
    max_json_bytes : int
        Size of ``plan.json`` (bytes).
    max_ratio : float
        Uncompressed / compressed size of a member (zip bombs reach millions).
    """

    max_members: int = 20_000
    max_member_bytes: int = 4 << 30
    max_total_bytes: int = 16 << 30
    max_json_bytes: int = 64 << 20
    max_ratio: float = 1000.0


# ---------------------------------------------------------------------- saving


def _safe_name(text: str, default: str = "file") -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return name[:80] or default


def _vtp_bytes(mesh: Mesh) -> bytes:
    from surgtwin.geometry.vtp import write_vtp

    buf = io.BytesIO()
    write_vtp(buf, mesh, "LPS", None)
    return buf.getvalue()


def _labelmap_bytes(labelmap: LabelMap) -> bytes:
    from surgtwin.segmentation.seg_io import write_seg_nrrd

    with tempfile.TemporaryDirectory(prefix="surgtwin-plan-") as tmp:
        path = write_seg_nrrd(labelmap, Path(tmp) / LABELMAP_MEMBER)
        return path.read_bytes()


def save_plan(
    plan: Plan,
    path: str | os.PathLike,
    *,
    dicom_files: Sequence[str | os.PathLike] = (),
    extra: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``plan`` to a ``.surgplan`` file, atomically (the old file stays until complete).

    Parameters
    ----------
    plan : Plan
    path : str or os.PathLike
        The file to write (conventionally ending in ``.surgplan``).
    dicom_files : sequence of path, optional
        DICOM files to copy into the plan under ``dicom/`` (only when the user asks: they carry
        patient identifiers). Their member names are recorded in the case reference.
    extra : mapping of str to bytes, optional
        Further members ``extra/<name>`` (names of letters, digits, ``.``, ``_``, ``-``) that
        other layers read back with :func:`read_extra_member`; :func:`load_plan` ignores them.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    PlanFileError
        The file or a DICOM file cannot be written/read, or an extra member's name is invalid.
    """
    path = Path(path)
    for name in extra or {}:
        if not _EXTRA_NAME.match(name):
            raise PlanFileError(f"invalid extra member name {name!r}", path)
    doc = plan.to_dict()
    members: list[tuple[str, bytes, int]] = []
    for n, (entry, structure) in enumerate(
        zip(doc["structures"], plan.structures.values(), strict=True)
    ):
        if structure.mesh is not None:
            member = f"meshes/{n:04d}_{_safe_name(structure.name, 'mesh')}.vtp"
            entry["mesh"]["file"] = member
            members.append((member, _vtp_bytes(structure.mesh), zipfile.ZIP_STORED))
    lm = plan.labelmap
    if lm is not None:
        if np.any(lm.array):
            doc["labelmap"]["file"] = LABELMAP_MEMBER
            members.append((LABELMAP_MEMBER, _labelmap_bytes(lm), zipfile.ZIP_STORED))
        else:
            doc["labelmap"]["file"] = None
    embedded = []
    for n, src in enumerate(dicom_files):
        src = Path(src)
        member = f"dicom/{n:05d}_{_safe_name(src.name, 'image')}"
        try:
            data = src.read_bytes()
        except OSError as exc:
            problem = f"cannot read DICOM file {src}: {exc.strerror or exc}"
            raise PlanFileError(problem, path) from exc
        members.append((member, data, zipfile.ZIP_DEFLATED))
        embedded.append(member)
    if dicom_files:
        doc["case"]["embedded_dicom"] = embedded
    payload = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "created_by": f"SurgTwin {__version__}",
        "plan": doc,
    }
    text = json.dumps(payload, indent=1, ensure_ascii=False, allow_nan=False).encode("utf-8")
    with (
        atomic_write([path], error=PlanFileError) as (tmp,),
        zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf,
    ):
        zf.writestr(PLAN_JSON, text)
        for member, data, method in members:
            zf.writestr(member, data, compress_type=method)
        for name, data in (extra or {}).items():
            zf.writestr(EXTRA_PREFIX + name, bytes(data), compress_type=zipfile.ZIP_DEFLATED)
    return path


# ---------------------------------------------------------------------- loading

_DRIVE = re.compile(r"^[A-Za-z]:")


def _check_member_name(name: str, where: Path) -> None:
    bad = (
        not name
        or "\\" in name
        or "\0" in name
        or name.startswith("/")
        or _DRIVE.match(name)
        or any(part in ("..", "") for part in name.rstrip("/").split("/"))
    )
    if bad:
        raise PlanFileError(
            f"the archive holds a member with an unsafe name {name!r} (absolute, '..', "
            "backslash or drive letter); it is not a plan file SurgTwin wrote and is not opened",
            where,
        )


class _Archive:
    """A checked zip archive whose members are read into memory within the limits."""

    def __init__(self, zf: zipfile.ZipFile, path: Path, limits: Limits):
        self.zf, self.path, self.limits = zf, path, limits
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            self.fail(f"the archive holds {len(infos)} members; at most {limits.max_members}")
        self.members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            _check_member_name(info.filename, path)
            if info.filename in self.members:
                self.fail(f"the member {info.filename!r} appears twice")
            self._check_size(info, info.file_size)
            total += info.file_size
            self.members[info.filename] = info
        if total > limits.max_total_bytes:
            self.fail(f"the members add up to {total} bytes; at most {limits.max_total_bytes}")

    def fail(self, problem: str) -> None:
        raise PlanFileError(problem, self.path)

    def _check_size(self, info: zipfile.ZipInfo, size: int) -> None:
        limit = self.limits.max_member_bytes
        if info.filename == PLAN_JSON:
            limit = min(limit, self.limits.max_json_bytes)
        if size > limit:
            self.fail(f"member {info.filename!r} is {size} bytes; at most {limit} are accepted")
        ratio = size / max(info.compress_size, 1)
        if size > 4096 and ratio > self.limits.max_ratio:
            self.fail(
                f"member {info.filename!r} expands {ratio:.0f} times (at most "
                f"{self.limits.max_ratio:.0f}): a zip bomb, not a plan file"
            )

    def read(self, name: str) -> bytes:
        info = self.members.get(name)
        if info is None:
            self.fail(f"the member {name!r} is missing; the file is incomplete")
        chunks, size = [], 0
        with self.zf.open(info) as fh:
            while chunk := fh.read(1 << 20):
                size += len(chunk)
                if size > info.file_size:
                    self.fail(f"member {name!r} holds more data than it declares")
                self._check_size(info, size)
                chunks.append(chunk)
        return b"".join(chunks)


def _require(cond: bool, problem: str, path: Path) -> None:
    if not cond:
        raise PlanFileError(f"plan.json is not valid: {problem}", path)


_NUM = (int, float)
_FIELDS: dict[str, dict[str, Any]] = {
    "case": {
        "study_uid": str,
        "series_uids": list,
        "frame_of_reference_uid": str,
        "source_path": str,
    },
    "structures": {
        "name": str,
        "role": str,
        "color": list,
        "visible": bool,
        "opacity": _NUM,
        "margin_mm": _NUM,
        "source": str,
        "label_value": (int, type(None)),
        "mesh": (dict, type(None)),
    },
    "implants": {"name": str, "kind": str, "spec_key": str, "parameters": dict, "pose": list},
    "cuts": {"name": str, "structure": str, "tool": str, "parameters": dict},
    "measurements": {"name": str, "kind": str, "points": list},
    "mesh": {"file": str, "sha256": str, "name": str, "color": list, "role": str},
    "labelmap": {"geometry": dict, "labels": list, "sha256": str, "file": (str, type(None))},
    "geometry": {"shape": list, "spacing": list, "origin": list, "direction": list},
    "labels": {
        "value": int,
        "name": str,
        "color": list,
        "role": str,
        "visible": bool,
        "opacity": _NUM,
    },
}


def _check_fields(obj: Any, kind: str, where: str, path: Path) -> None:
    _require(isinstance(obj, dict), f"{where} must be an object", path)
    for key, types in _FIELDS[kind].items():
        _require(key in obj, f"{where} lacks {key!r}", path)
        value = obj[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and types in (_NUM, int))
        _require(ok, f"{where}.{key} has the wrong type ({type(value).__name__})", path)


def _validate(payload: Any, path: Path) -> dict[str, Any]:
    _require(isinstance(payload, dict), "the top level must be an object", path)
    if payload.get("format") != FORMAT:
        raise PlanFileError("this is not a SurgTwin plan (plan.json has no SurgTwin format)", path)
    version = payload.get("schema_version")
    _require(type(version) is int, "schema_version must be a whole number", path)
    if version > SCHEMA_VERSION:
        raise PlanFileError(
            f"the plan was made by a newer SurgTwin (plan schema {version}; this version reads "
            f"up to {SCHEMA_VERSION}). Update SurgTwin to open it.",
            path,
        )
    _require(version >= 1, f"unknown schema_version {version}", path)
    plan = payload.get("plan")
    _require(isinstance(plan, dict), "'plan' must be an object", path)
    for key, types in {"name": str, "notes": str, "case": dict}.items():
        _require(isinstance(plan.get(key), types), f"plan.{key} is missing or not a {key}", path)
    _check_fields(plan["case"], "case", "plan.case", path)
    for kind in ("structures", "implants", "cuts", "measurements"):
        _require(isinstance(plan.get(kind), list), f"plan.{kind} must be a list", path)
        for i, item in enumerate(plan[kind]):
            _check_fields(item, kind, f"plan.{kind}[{i}]", path)
            if kind == "structures" and item["mesh"] is not None:
                _check_fields(item["mesh"], "mesh", f"plan.structures[{i}].mesh", path)
    lm = plan.get("labelmap")
    if lm is not None:
        _check_fields(lm, "labelmap", "plan.labelmap", path)
        _check_fields(lm["geometry"], "geometry", "plan.labelmap.geometry", path)
        for i, lab in enumerate(lm["labels"]):
            _check_fields(lab, "labels", f"plan.labelmap.labels[{i}]", path)
    return plan


def _read_mesh(archive: _Archive, entry: Mapping[str, Any]) -> Mesh:
    from surgtwin.geometry.vtp import read_vtp

    data = archive.read(entry["file"])
    try:
        points, faces, _marks, _name, _color = read_vtp(data, Path(entry["file"]))
    except SurgTwinError as exc:
        archive.fail(f"mesh {entry['file']!r} cannot be read: {exc}")
    mesh = Mesh(
        points,
        faces,
        entry["name"],
        tuple(entry["color"]),
        entry["role"],
        dict(entry.get("metadata", {})),
    )
    if mesh_digest(mesh) != entry["sha256"]:
        archive.fail(f"mesh {entry['file']!r} is damaged (its checksum does not match)")
    return mesh


def _read_labelmap(archive: _Archive, entry: Mapping[str, Any]) -> LabelMap:
    from surgtwin.segmentation.seg_io import read_seg_nrrd

    g = entry["geometry"]
    geometry = ImageGeometry(
        tuple(int(v) for v in g["shape"]),
        tuple(float(v) for v in g["spacing"]),
        tuple(float(v) for v in g["origin"]),
        np.asarray(g["direction"], dtype=float).reshape(3, 3),
    )
    labels = [
        Label(
            lab["value"],
            lab["name"],
            tuple(float(c) for c in lab["color"]),
            Role(lab["role"]),
            lab["visible"],
            float(lab["opacity"]),
        )
        for lab in entry["labels"]
    ]
    if entry["file"] is None:
        array = np.zeros(geometry.shape, np.uint8)
    else:
        data = archive.read(entry["file"])
        # the NRRD reader takes a path: a private folder, removed at once
        with tempfile.TemporaryDirectory(prefix="surgtwin-plan-load-") as tmp:
            member = Path(tmp) / LABELMAP_MEMBER
            member.write_bytes(data)
            try:
                array = read_seg_nrrd(member, geometry).array.copy()
            except SurgTwinError as exc:
                archive.fail(f"the label map cannot be read: {exc}")
    labelmap = LabelMap(geometry, array, labels)
    if labelmap_digest(labelmap) != entry["sha256"]:
        archive.fail("the label map is damaged (its checksum does not match)")
    return labelmap


@contextlib.contextmanager
def _open_archive(path: Path, limits: Limits | None) -> Iterator[_Archive]:
    """The plan file as a checked archive; file and zip errors become PlanFileError."""
    try:
        with zipfile.ZipFile(path) as zf:
            yield _Archive(zf, path, limits or Limits())
    except PlanFileError:
        raise
    except FileNotFoundError:
        raise PlanFileError("the file does not exist", path) from None
    except OSError as exc:
        raise PlanFileError(f"cannot read the file: {exc.strerror or exc}", path) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise PlanFileError(f"the file is damaged or not a plan file (zip: {exc})", path) from None


def load_plan(path: str | os.PathLike, *, limits: Limits | None = None) -> Plan:
    """Read a ``.surgplan`` file.

    Parameters
    ----------
    path : str or os.PathLike
    limits : Limits, optional
        Size limits (defaults: :class:`Limits`).

    Returns
    -------
    Plan
        A new plan (no events have been connected yet).

    Raises
    ------
    PlanFileError
        The file is missing, not a zip, truncated or damaged, hostile (unsafe member names,
        oversize or zip-bomb members, too many members), lacks ``plan.json``, holds invalid
        JSON or an invalid plan, or was made by a newer SurgTwin.
    """
    path = Path(path)
    try:
        with _open_archive(path, limits) as archive:
            if PLAN_JSON not in archive.members:
                archive.fail("plan.json is missing: this is not a SurgTwin plan file")
            raw = archive.read(PLAN_JSON)
            try:
                payload = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
                raise PlanFileError(f"plan.json is not valid JSON ({exc})", path) from None
            doc = _validate(payload, path)
            return _build(doc, archive)
    except PlanFileError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise PlanFileError(f"plan.json is not valid: {exc}", path) from None


def read_extra_member(
    path: str | os.PathLike,
    name: str,
    *,
    max_bytes: int = 64 << 20,
    limits: Limits | None = None,
) -> bytes | None:
    """The bytes of the member ``extra/<name>`` of a plan file, or None when it has none.

    The archive is checked as by :func:`load_plan` (hostile names, sizes, zip bombs).

    Parameters
    ----------
    path : str or os.PathLike
    name : str
        As given to :func:`save_plan`'s ``extra``.
    max_bytes : int
        Largest size of the member accepted (bytes).
    limits : Limits, optional

    Raises
    ------
    PlanFileError
        The file is missing, damaged or hostile, or the member is larger than ``max_bytes``.
    """
    path = Path(path)
    with _open_archive(path, limits) as archive:
        info = archive.members.get(EXTRA_PREFIX + name)
        if info is None:
            return None
        if info.file_size > max_bytes:
            archive.fail(f"member {info.filename!r} is larger than {max_bytes} bytes")
        return archive.read(info.filename)


def _build(doc: Mapping[str, Any], archive: _Archive) -> Plan:
    case = CaseReference.from_dict(doc["case"])
    labelmap = None if doc.get("labelmap") is None else _read_labelmap(archive, doc["labelmap"])
    plan = Plan(doc["name"], case, labelmap)
    for entry in doc["structures"]:
        mesh = None if entry["mesh"] is None else _read_mesh(archive, entry["mesh"])
        plan.structures.add(Structure.from_dict(entry, mesh))
    for entry in doc["implants"]:
        plan.implants.add(Implant.from_dict(entry))
    for entry in doc["cuts"]:
        plan.cuts.add(Cut.from_dict(entry))
    for entry in doc["measurements"]:
        plan.measurements.add(Measurement.from_dict(entry))
    plan.notes = doc["notes"]
    return plan


# ---------------------------------------------------------------------- autosave


def autosave_path(directory: str | os.PathLike, plan_name: str) -> Path:
    """``<directory>/<plan name>.autosave.surgplan`` (name reduced to safe characters)."""
    return Path(directory) / (_safe_name(plan_name, "untitled") + AUTOSAVE_SUFFIX)


class Autosaver:
    """Saves a copy of the plan now and then while it has unsaved changes.

    The application's timer calls :meth:`maybe_save`; the core starts no thread or timer.

    Parameters
    ----------
    plan : Plan
    stack : CommandStack
        Its dirty flag and revision say whether there is anything new to save.
    directory : str or os.PathLike
        Where ``<plan name>.autosave.surgplan`` is written (atomically).
    interval_s : float
        Minimum time between two autosaves (seconds).
    """

    def __init__(
        self,
        plan: Plan,
        stack: CommandStack,
        directory: str | os.PathLike,
        interval_s: float = 60.0,
    ):
        self.plan, self.stack = plan, stack
        self.directory = Path(directory)
        self.interval_s = float(interval_s)
        self._last_time: float | None = None
        self._last_revision: int | None = None

    @property
    def path(self) -> Path:
        return autosave_path(self.directory, self.plan.name)

    def maybe_save(self, now: float) -> Path | None:
        """Write the autosave if the plan is dirty, changed since the last autosave, and at
        least ``interval_s`` seconds passed since then.

        Parameters
        ----------
        now : float
            Current time in seconds (e.g. ``time.monotonic()``).

        Returns
        -------
        pathlib.Path or None
            The file written, or None when nothing was written.
        """
        if not self.due(now):
            return None
        path = save_plan(self.plan, self.path)
        self.mark_saved(now)
        return path

    def due(self, now: float) -> bool:
        """Whether an autosave is due at time ``now`` (seconds): the plan is dirty, changed
        since the last autosave, and ``interval_s`` passed since then."""
        if self.stack.is_clean or self.stack.revision == self._last_revision:
            return False
        return self._last_time is None or now - self._last_time >= self.interval_s

    def mark_saved(self, now: float) -> None:
        """Record an autosave of the current revision made at ``now`` (by whoever wrote it)."""
        self._last_time, self._last_revision = now, self.stack.revision

    def discard(self) -> None:
        """Remove the autosave (after a real save, or when the user closes without saving)."""
        self.path.unlink(missing_ok=True)
        self._last_revision = None


def find_recoverable(directory: str | os.PathLike) -> list[Path]:
    """Autosaves in ``directory`` newer than their plan (or whose plan was never saved).

    Parameters
    ----------
    directory : str or os.PathLike

    Returns
    -------
    list of pathlib.Path
        Newest first.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = []
    for auto in folder.glob("*" + AUTOSAVE_SUFFIX):
        plan = auto.with_name(auto.name[: -len(AUTOSAVE_SUFFIX)] + SUFFIX)
        try:
            auto_time = auto.stat().st_mtime_ns
            if not plan.exists() or plan.stat().st_mtime_ns < auto_time:
                found.append((auto_time, auto))
        except OSError:
            continue
    return [p for _t, p in sorted(found, reverse=True)]
