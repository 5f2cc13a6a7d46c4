"""Label maps to and from files: 3D Slicer ``.seg.nrrd``, NIfTI with a label table, DICOM SEG.

Every position is patient LPS millimetres, like the rest of SurgTwin; each writer puts the
coordinate system in the file the way its format defines it, so the patient's left stays left in
every program that reads it:

* **NRRD** (``.seg.nrrd``, `NRRD format <http://teem.sourceforge.net/nrrd/format.html>`_):
  ``space: left-posterior-superior``, so the grid is written as it is. The 3D Slicer
  segmentation fields (``Segment<N>_*``, ``Segmentation_*``, as read and written by Slicer's
  ``vtkMRMLSegmentationStorageNode``) make Slicer open the file as a Segmentation with each
  segment's name and colour; see :func:`write_seg_nrrd`.
* **NIfTI** (``.nii`` / ``.nii.gz``): written by ITK (SimpleITK), which turns the LPS grid into
  NIfTI's RAS ``qform``/``sform``. Names, colours and roles go to a JSON sidecar
  ``<name>.labels.json``; see :func:`write_nifti`.
* **DICOM SEG** (PS3.3 A.51, via highdicom): binary segments referencing the source CT/MR images.
  It needs the original acquisition grid, so volumes that were tilt-corrected or resampled while
  loading are refused; see :func:`write_dicom_seg`.

Every write is atomic: the data goes to a temporary file in the target folder, which replaces
the target only once it is complete, so a failure never leaves a partial file.
"""

from __future__ import annotations

import bz2
import copy
import gzip
import io
import json
import math
import os
import secrets
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset

from surgtwin import __version__
from surgtwin.errors import SurgTwinError
from surgtwin.imaging import findings as fc
from surgtwin.imaging.volume import ImageGeometry, Volume
from surgtwin.segmentation.labelmap import (
    EXTRA_COLOURS,
    MAX_LABELS,
    ROLE_COLOURS,
    Label,
    LabelMap,
    Role,
)

__all__ = [
    "SegIOError",
    "labels_sidecar_path",
    "read_nifti",
    "read_seg_nrrd",
    "write_dicom_seg",
    "write_nifti",
    "write_seg_nrrd",
]

# Grid comparison tolerances. NIfTI stores its transform in float32 (about 1e-7 relative), so a
# read-back grid differs from the original by a few micrometres at most.
DIRECTION_TOL = 1e-4  # direction cosines
SPACING_TOL_MM = 1e-4
INDEX_TOL = 1e-3  # fraction of a voxel
# DICOM SEG: largest distance (mm) between a source image's position and the label slice it gets.
POSITION_TOL_MM = 0.01
POSITION_TOL_FRACTION = 0.02  # ... or this fraction of the smallest voxel size, if larger

ANONYMOUS = "ANONYMOUS"
ANONYMOUS_NAME = "ANONYMOUS^"  # family name only (the caret marks a one-part person name)
SLICER_TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
SLICER_ANATOMY_CONTEXT = "Anatomic codes - DICOM master list"
ROLE_TAG = "SurgTwin_Role"
SIDECAR_FORMAT = "surgtwin-labels"

# Findings after which the volume grid no longer matches the source images.
_REGRIDDED = {
    fc.GANTRY_TILT: "tilt-corrected (gantry tilt)",
    fc.MISSING_SLICES: "resampled over missing slices",
    fc.UNEVEN_SPACING: "resampled onto a uniform slice spacing",
}

# (category, type) as (code value, scheme, meaning) per role, SNOMED CT codes as used by DICOM
# (PS3.16 CID 7150 Segmentation Property Categories and the type context groups).
_SCT_TISSUE = ("85756007", "SCT", "Tissue")
_SCT_ANATOMY = ("91723000", "SCT", "Anatomical structure")
_ROLE_CODES: dict[Role, tuple[tuple[str, str, str], tuple[str, str, str]]] = {
    Role.BONE: (_SCT_TISSUE, ("272673000", "SCT", "Bone structure")),
    Role.SKIN: (_SCT_TISSUE, ("39937001", "SCT", "Skin")),
    Role.CRITICAL: (_SCT_ANATOMY, _SCT_ANATOMY),
    Role.TARGET: (
        ("49755003", "SCT", "Morphologically abnormal structure"),
        ("108369006", "SCT", "Neoplasm"),
    ),
    Role.OTHER: (_SCT_TISSUE, _SCT_TISSUE),
}


class SegIOError(SurgTwinError):
    """A segmentation file that cannot be written or read, with the reason in plain words."""


# ================================================================================ common helpers


def _all_labels(labelmap: LabelMap, present: np.ndarray) -> list[Label]:
    """The labels to export, by value: the label table plus unnamed values found in the voxels."""
    labels = dict(labelmap.labels)
    for value in np.flatnonzero(present[1:]) + 1:
        if int(value) not in labels:
            labels[int(value)] = Label(int(value), f"Label {int(value)}", _palette(int(value)))
    return [labels[v] for v in sorted(labels)]


def _palette(value: int) -> tuple[float, float, float]:
    colours = [ROLE_COLOURS["other"], *EXTRA_COLOURS]
    return tuple(float(c) for c in colours[value % len(colours)])


def _present(array: np.ndarray, k_planes: np.ndarray | None = None) -> np.ndarray:
    """bool[256]: which label values occur in the array (from per-slice presence if given)."""
    if k_planes is None:
        k_planes = _planes_with(array, 0)
    return k_planes.any(axis=0)


def _require_voxels(present: np.ndarray, what: str) -> None:
    if not present[1:].any():
        raise SegIOError(
            f"the label map is empty (no voxel carries a label), so there is nothing to save as "
            f"{what}; segment a structure first"
        )


def _same_grid(a: ImageGeometry, b: ImageGeometry) -> bool:
    return (
        tuple(a.shape) == tuple(b.shape)
        and np.allclose(a.spacing, b.spacing, rtol=0, atol=SPACING_TOL_MM)
        and np.allclose(a.direction, b.direction, rtol=0, atol=DIRECTION_TOL)
        and np.allclose(b.lps_to_index(np.asarray(a.origin, float)), 0.0, rtol=0, atol=INDEX_TOL)
    )


def _right_handed(
    array: np.ndarray, origin: np.ndarray, spacing: np.ndarray, direction: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flip the k axis of a left-handed grid (same voxels at the same places, k reversed)."""
    if np.linalg.det(direction) >= 0:
        return array, origin, direction
    k_last = array.shape[0] - 1
    origin = origin + k_last * spacing[2] * direction[:, 2]
    direction = direction.copy()
    direction[:, 2] *= -1
    return np.ascontiguousarray(array[::-1]), origin, direction


def _check_axes(direction: np.ndarray, where: str) -> None:
    gram = direction.T @ direction
    if not np.allclose(gram, np.eye(3), rtol=0, atol=DIRECTION_TOL):
        raise SegIOError(
            f"{where}: the grid axes are not perpendicular (a sheared grid); SurgTwin label maps "
            "need a rectangular grid"
        )


def _fit_to_geometry(
    array: np.ndarray, found: ImageGeometry, target: ImageGeometry | None, where: str
) -> tuple[np.ndarray, ImageGeometry]:
    """Put a label array read from a file on ``target`` (when given).

    The file's grid must be the target grid or a box of it (3D Slicer may save only the region
    that holds segments); anything else would need resampling and is refused.
    """
    if target is None:
        return array, found
    if _same_grid(found, target):
        return array, target
    if np.allclose(found.spacing, target.spacing, rtol=0, atol=SPACING_TOL_MM) and np.allclose(
        found.direction, target.direction, rtol=0, atol=DIRECTION_TOL
    ):
        offset = target.lps_to_index(np.asarray(found.origin, float))
        rounded = np.rint(offset).astype(int)
        size = np.asarray(found.size)
        if (
            np.allclose(offset, rounded, rtol=0, atol=INDEX_TOL)
            and np.all(rounded >= 0)
            and np.all(rounded + size <= np.asarray(target.size))
        ):
            out = np.zeros(target.shape, dtype=np.uint8)
            i0, j0, k0 = (int(v) for v in rounded)
            ni, nj, nk = (int(v) for v in size)
            out[k0 : k0 + nk, j0 : j0 + nj, i0 : i0 + ni] = array
            return out, target
    raise SegIOError(
        f"{where}: the label map's grid ({_describe(found)}) is not the volume's grid "
        f"({_describe(target)}); resample it onto the volume first"
    )


def _describe(g: ImageGeometry) -> str:
    size = "x".join(str(v) for v in g.size)
    spacing = "x".join(f"{v:g}" for v in g.spacing)
    origin = ", ".join(f"{v:.2f}" for v in g.origin)
    return f"{size} voxels of {spacing} mm at LPS ({origin}) mm"


# ---------------------------------------------------------------------------- atomic writes


def _temp_path(path: Path, suffix: str = "") -> Path:
    """A new, empty file next to ``path`` (permissions as for a normal new file)."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp{suffix}")
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise SegIOError(f"{path}: cannot create a temporary file next to it")


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


@contextmanager
def _atomic(*targets: tuple[Path, str]) -> Iterator[list[Path]]:
    """Temporary files for ``(target, suffix)`` pairs; they replace the targets on success.

    On any failure the temporary files are removed and nothing is left behind. OS errors become
    :class:`SegIOError` naming the file.
    """
    for target, _suffix in targets:
        if not target.parent.is_dir():
            raise SegIOError(f"{target}: the folder {target.parent} does not exist")
    temps: list[Path] = []
    try:
        for target, suffix in targets:
            temps.append(_temp_path(target, suffix))
        yield temps
        for tmp in temps:
            _fsync(tmp)
        for tmp, (target, _suffix) in zip(temps, targets, strict=True):
            os.replace(tmp, target)
    except OSError as exc:
        raise SegIOError(f"{targets[0][0]}: cannot write the file ({exc.strerror or exc})") from exc
    finally:
        for tmp in temps:
            with suppress(OSError):
                tmp.unlink()


# ================================================================================ NRRD


def _num(value: float) -> str:
    """Shortest exact text of a float (``0.8``, ``-64``, ``1e-05``)."""
    text = repr(float(value) + 0.0)  # + 0.0 turns -0.0 into 0.0
    return text[:-2] if text.endswith(".0") else text


def _vector(values: Sequence[float]) -> str:
    return "(" + ",".join(_num(v) for v in values) + ")"


def _escape(text: str) -> str:
    """NRRD key/value escaping: backslash and newline."""
    return text.replace("\\", "\\\\").replace("\r", "").replace("\n", "\\n")


def _unescape(text: str) -> str:
    out = []
    chars = iter(text)
    for c in chars:
        if c == "\\":
            nxt = next(chars, "")
            out.append("\n" if nxt == "n" else nxt)
        else:
            out.append(c)
    return "".join(out)


def _planes_with(array: np.ndarray, axis: int) -> np.ndarray:
    """(n, 256) bool: which label values occur in each plane along ``axis`` (0 = k, 2 = i)."""
    n = array.shape[axis]
    out = np.zeros((n, MAX_LABELS + 1), dtype=bool)
    for index in range(n):
        plane = np.take(array, index, axis=axis)
        out[index] = np.bincount(plane.ravel(), minlength=MAX_LABELS + 1) > 0
    return out


def _extents(array: np.ndarray, values: Sequence[int], k_planes: np.ndarray) -> dict[int, str]:
    """Slicer's ``Segment<N>_Extent`` per value: "imin imax jmin jmax kmin kmax" (inclusive)."""
    per_axis = [_planes_with(array, 2), _planes_with(array, 1), k_planes]  # i, j, k
    out: dict[int, str] = {}
    for v in values:
        bounds: list[int] = []
        for planes in per_axis:
            idx = np.flatnonzero(planes[:, v])
            if idx.size == 0:
                bounds = [0, -1, 0, -1, 0, -1]  # Slicer's empty extent
                break
            bounds += [int(idx[0]), int(idx[-1])]
        out[v] = " ".join(str(b) for b in bounds)
    return out


def _terminology_entry(role: Role) -> str:
    """Slicer's serialised terminology (``context~category~type~modifier~anatomy...``)."""
    category, kind = _ROLE_CODES[role]

    def code(c: tuple[str, str, str]) -> str:
        value, scheme, meaning = c
        return f"{scheme}^{value}^{meaning}"

    return "~".join(
        [
            SLICER_TERMINOLOGY_CONTEXT,
            code(category),
            code(kind),
            "^^",
            SLICER_ANATOMY_CONTEXT,
            "^^",
            "^^",
        ]
    )


def write_seg_nrrd(labelmap: LabelMap, path: str | os.PathLike[str]) -> Path:
    """Save a label map as a 3D Slicer segmentation (``.seg.nrrd``).

    The file is a plain NRRD (NRRD0004, per the teem NRRD format specification) that any NRRD
    reader (ITK, SimpleITK, pynrrd) opens as a label volume, and 3D Slicer opens as a
    Segmentation with every segment's name and colour:

    * ``type: unsigned char``, ``dimension: 3``, ``sizes: <i> <j> <k>`` (columns, rows, slices),
      data in i-fastest order (the ``[k, j, i]`` array as it is), ``encoding: gzip``.
    * ``space: left-posterior-superior``; ``space directions``: the i, j, k axes as LPS vectors
      whose lengths are the voxel sizes (direction column x spacing, mm); ``space origin``: LPS
      mm of the centre of voxel (0, 0, 0); ``kinds: domain domain domain``.
    * Slicer segmentation fields (key/value pairs ``key:=value``), per segment ``N`` = 0, 1, ...
      in order of label value:

      - ``SegmentN_ID`` (``Segment_<value>``), ``SegmentN_Name``, ``SegmentN_Color`` (``r g b``,
        0..1), ``SegmentN_NameAutoGenerated:=0`` and ``SegmentN_ColorAutoGenerated:=0`` (so
        Slicer keeps our name and colour instead of deriving them from the terminology);
      - ``SegmentN_LabelValue`` (the voxel value) and ``SegmentN_Layer:=0`` (all segments share
        one layer: SurgTwin labels never overlap);
      - ``SegmentN_Extent``: "imin imax jmin jmax kmin kmax", the segment's bounding box in
        voxels (``0 -1 0 -1 0 -1`` when empty; Slicer crops each segment to it on loading);
      - ``SegmentN_Tags``: ``SurgTwin_Role:<role>|TerminologyEntry:<...>|``. The role is a
        segment tag so that it survives when Slicer edits and re-saves the file; the terminology
        entry carries the same SNOMED CT category/type as the DICOM SEG export.

      and for the whole segmentation ``Segmentation_MasterRepresentation:=Binary labelmap``
      (voxels are the source data), ``Segmentation_ContainedRepresentationNames:=Binary
      labelmap|`` (no surfaces stored; Slicer builds them on demand) and
      ``Segmentation_ReferenceImageExtentOffset:=0 0 0`` (the file holds the whole grid, not a
      cropped box of it).

    Visibility and opacity are display settings and are not stored.

    Parameters
    ----------
    labelmap : LabelMap
        The labels; values present in the voxels but missing from the label table are written as
        segments named ``Label <value>``.
    path : str or PathLike
        The file to write, conventionally ending in ``.seg.nrrd``. Replaced atomically.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    SegIOError
        The label map is empty, or the file cannot be written.
    """
    path = Path(path)
    array = np.ascontiguousarray(labelmap.array, dtype=np.uint8)
    k_planes = _planes_with(array, 0)
    present = _present(array, k_planes)
    _require_voxels(present, "a NRRD segmentation")
    labels = _all_labels(labelmap, present)
    g = labelmap.geometry
    extents = _extents(array, [lab.value for lab in labels], k_planes)
    axes = np.asarray(g.direction, float) * np.asarray(g.spacing, float)[None, :]
    fields = [
        "NRRD0004",
        "# Complete NRRD file format specification at:",
        "# http://teem.sourceforge.net/nrrd/format.html",
        f"# Written by SurgTwin {__version__}: a 3D Slicer segmentation, patient LPS millimetres",
        "type: unsigned char",
        "dimension: 3",
        "space: left-posterior-superior",
        "sizes: " + " ".join(str(int(v)) for v in g.size),
        "space directions: " + " ".join(_vector(axes[:, a]) for a in range(3)),
        "kinds: domain domain domain",
        "encoding: gzip",
        "space origin: " + _vector(g.origin),
    ]
    keys: list[tuple[str, str]] = []
    for n, lab in enumerate(labels):
        tags = f"{ROLE_TAG}:{Role(lab.role).value}|TerminologyEntry:{_terminology_entry(lab.role)}|"
        keys += [
            (f"Segment{n}_Color", " ".join(_num(c) for c in lab.color)),
            (f"Segment{n}_ColorAutoGenerated", "0"),
            (f"Segment{n}_Extent", extents[lab.value]),
            (f"Segment{n}_ID", f"Segment_{lab.value}"),
            (f"Segment{n}_LabelValue", str(lab.value)),
            (f"Segment{n}_Layer", "0"),
            (f"Segment{n}_Name", lab.name),
            (f"Segment{n}_NameAutoGenerated", "0"),
            (f"Segment{n}_Tags", tags),
        ]
    keys += [
        ("Segmentation_ContainedRepresentationNames", "Binary labelmap|"),
        ("Segmentation_MasterRepresentation", "Binary labelmap"),
        ("Segmentation_ReferenceImageExtentOffset", "0 0 0"),
    ]
    lines = fields + [f"{k}:={_escape(v)}" for k, v in keys]
    header = ("\n".join(lines) + "\n\n").encode("utf-8")
    with _atomic((path, "")) as (tmp,), open(tmp, "wb") as f:
        f.write(header)
        with gzip.GzipFile(filename="", fileobj=f, mode="wb", compresslevel=6, mtime=0) as gz:
            for k in range(array.shape[0]):
                gz.write(array[k].tobytes())
    return path


# ---------------------------------------------------------------------------- NRRD reading

_NRRD_TYPES = {
    np.dtype(np.int8): ("signed char", "int8", "int8_t"),
    np.dtype(np.uint8): ("uchar", "unsigned char", "uint8", "uint8_t"),
    np.dtype(np.int16): (
        "short",
        "short int",
        "signed short",
        "signed short int",
        "int16",
        "int16_t",
    ),
    np.dtype(np.uint16): ("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    np.dtype(np.int32): ("int", "signed int", "int32", "int32_t"),
    np.dtype(np.uint32): ("uint", "unsigned int", "uint32", "uint32_t"),
    np.dtype(np.int64): (
        "longlong",
        "long long",
        "long long int",
        "signed long long",
        "signed long long int",
        "int64",
        "int64_t",
    ),
    np.dtype(np.uint64): (
        "ulonglong",
        "unsigned long long",
        "unsigned long long int",
        "uint64",
        "uint64_t",
    ),
    np.dtype(np.float32): ("float",),
    np.dtype(np.float64): ("double",),
}
_NRRD_DTYPE = {name: dtype for dtype, names in _NRRD_TYPES.items() for name in names}
_LPS_SPACES = {"left-posterior-superior", "lps"}
_RAS_SPACES = {"right-anterior-superior", "ras"}
_LAYER_KINDS = {"list", "vector"}
_SPACE_KINDS = {"domain", "space"}
MAX_HEADER_BYTES = 4 << 20


def _parse_header(raw: bytes, where: str) -> tuple[dict[str, str], dict[str, str], int]:
    """Fields (lower-case names), key/value pairs, and the offset of the data."""
    if not raw.startswith(b"NRRD000"):
        raise SegIOError(f"{where}: not a NRRD file (it does not start with 'NRRD000x')")
    fields: dict[str, str] = {}
    keys: dict[str, str] = {}
    pos = 0
    first = True
    while True:
        end = raw.find(b"\n", pos)
        if end < 0:
            if pos < len(raw) and len(raw) < MAX_HEADER_BYTES:  # header without data (.nhdr)
                end = len(raw)
            else:
                raise SegIOError(f"{where}: the NRRD header does not end (truncated file?)")
        line = raw[pos:end].rstrip(b"\r").decode("utf-8", errors="replace")
        pos = end + 1
        if first:
            first = False
            continue
        if not line:
            return fields, keys, pos
        if line.startswith("#"):
            continue
        kv = line.find(":=")
        colon = line.find(": ")
        if kv >= 0 and (colon < 0 or kv < colon):
            keys[line[:kv]] = _unescape(line[kv + 2 :])
        elif colon >= 0:
            fields[line[:colon].strip().lower()] = line[colon + 2 :].strip()
        else:
            raise SegIOError(f"{where}: unreadable NRRD header line {line[:60]!r}")
        if pos >= len(raw):
            return fields, keys, pos


def _vectors(text: str, where: str) -> list[np.ndarray | None]:
    """Parse ``(a,b,c) (d,e,f) none`` into vectors (``None`` for ``none``)."""
    out: list[np.ndarray | None] = []
    rest = text.strip()
    while rest:
        if rest.startswith("none"):
            out.append(None)
            rest = rest[4:].strip()
            continue
        if not rest.startswith("("):
            raise SegIOError(f"{where}: cannot read the NRRD vector list {text!r}")
        close = rest.find(")")
        if close < 0:
            raise SegIOError(f"{where}: cannot read the NRRD vector list {text!r}")
        try:
            out.append(np.array([float(v) for v in rest[1:close].split(",")]))
        except ValueError as exc:
            raise SegIOError(f"{where}: cannot read the NRRD vector list {text!r}") from exc
        rest = rest[close + 1 :].strip()
    return out


def _nrrd_payload(
    raw: bytes, offset: int, fields: dict[str, str], path: Path, nbytes: int
) -> bytes:
    """The decoded data bytes (``nbytes`` of them), attached or in a detached data file."""
    where = str(path)
    data_file = fields.get("data file", fields.get("datafile"))
    if data_file:
        if data_file.startswith("LIST") or len(data_file.split()) > 1:
            raise SegIOError(f"{where}: NRRD data split over several files is not supported")
        data_path = Path(data_file)
        if not data_path.is_absolute():
            data_path = path.parent / data_path
        try:
            blob = data_path.read_bytes()
        except OSError as exc:
            raise SegIOError(f"{data_path}: cannot read the NRRD data file ({exc})") from exc
    else:
        blob = raw[offset:]
    line_skip = int(fields.get("line skip", fields.get("lineskip", "0")))
    for _ in range(max(line_skip, 0)):
        nl = blob.find(b"\n")
        blob = blob[nl + 1 :] if nl >= 0 else b""
    byte_skip = int(fields.get("byte skip", fields.get("byteskip", "0")))
    encoding = fields.get("encoding", "").lower()
    if encoding == "raw":
        # byte skip -1: the data are the last bytes of the file
        start = max(len(blob) - nbytes, 0) if byte_skip == -1 else max(byte_skip, 0)
        data = blob[start : start + nbytes]
    elif encoding in ("gzip", "gz", "bzip2", "bz2"):
        opener = gzip.GzipFile if encoding in ("gzip", "gz") else bz2.BZ2File
        try:
            with opener(fileobj=io.BytesIO(blob)) as stream:
                if byte_skip > 0:
                    stream.read(byte_skip)
                data = stream.read(nbytes)
        except (OSError, EOFError, ValueError) as exc:
            raise SegIOError(f"{where}: the compressed NRRD data is damaged ({exc})") from exc
    elif encoding in ("ascii", "text", "txt", "hex"):
        return blob  # decoded by the caller
    else:
        raise SegIOError(f"{where}: NRRD encoding {encoding or '(none)'!r} is not supported")
    if len(data) < nbytes:
        raise SegIOError(
            f"{where}: the NRRD data is truncated ({len(data)} of {nbytes} bytes present)"
        )
    return data


def _read_nrrd(path: Path) -> tuple[np.ndarray, ImageGeometry, dict[str, str], int]:
    """Data ([k, j, i] or [k, j, i, layer]), grid, key/value pairs, number of layers (0 = 3D)."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SegIOError(f"{where}: cannot read the file ({exc.strerror or exc})") from exc
    fields, keys, offset = _parse_header(raw, where)
    type_name = " ".join(fields.get("type", "").lower().split())
    dtype = _NRRD_DTYPE.get(type_name)
    if dtype is None:
        raise SegIOError(f"{where}: NRRD type {fields.get('type')!r} is not a label-map type")
    try:
        dim = int(fields.get("dimension", "0"))
        sizes = [int(v) for v in fields.get("sizes", "").split()]
    except ValueError as exc:
        raise SegIOError(f"{where}: unreadable NRRD dimension or sizes") from exc
    if dim not in (3, 4) or len(sizes) != dim or min(sizes) < 1:
        raise SegIOError(
            f"{where}: a label map is a 3D image, but this NRRD has {dim} dimension(s) "
            f"(sizes {sizes})"
        )
    space = fields.get("space", "").lower()
    if not space:
        raise SegIOError(
            f"{where}: the NRRD has no 'space' field, so its position in the patient is unknown"
        )
    if space not in _LPS_SPACES | _RAS_SPACES:
        raise SegIOError(
            f"{where}: NRRD space {fields['space']!r} is not supported; SurgTwin reads "
            "patient spaces left-posterior-superior (LPS) and right-anterior-superior (RAS)"
        )
    kinds = fields.get("kinds", "").lower().split()
    if not kinds:
        kinds = ["domain"] * dim if dim == 3 else ["list", "domain", "domain", "domain"]
    layered = dim == 4
    if len(kinds) != dim or (layered and kinds[0] not in _LAYER_KINDS):
        raise SegIOError(
            f"{where}: NRRD kinds {fields.get('kinds')!r} are not supported: a label map is "
            "'domain domain domain' (or 'list domain domain domain' for Slicer layers)"
        )
    spatial = kinds[1:] if layered else kinds
    if any(k not in _SPACE_KINDS for k in spatial):
        raise SegIOError(
            f"{where}: NRRD kinds {fields.get('kinds')!r} are not supported: the three image "
            "axes must be of kind 'domain' (not colour, vector or tensor data)"
        )
    directions = _vectors(fields.get("space directions", ""), where)
    if len(directions) != dim:
        raise SegIOError(f"{where}: the NRRD 'space directions' do not match its dimension")
    axes_vectors = directions[1:] if layered else directions
    if any(v is None or v.shape != (3,) for v in axes_vectors):
        raise SegIOError(f"{where}: each image axis needs a 3D 'space directions' vector")
    origin_list = _vectors(fields.get("space origin", "(0,0,0)"), where)
    if len(origin_list) != 1 or origin_list[0] is None or origin_list[0].shape != (3,):
        raise SegIOError(f"{where}: unreadable NRRD 'space origin'")
    origin = origin_list[0]
    axes = np.column_stack(axes_vectors)
    spacing = np.linalg.norm(axes, axis=0)
    if np.any(spacing <= 0) or not np.all(np.isfinite(axes)) or not np.all(np.isfinite(origin)):
        raise SegIOError(f"{where}: the NRRD 'space directions' contain a zero or invalid axis")
    direction = axes / spacing[None, :]
    if space in _RAS_SPACES:  # RAS -> LPS: negate x and y
        flip = np.array([-1.0, -1.0, 1.0])
        direction = direction * flip[:, None]
        origin = origin * flip
    _check_axes(direction, where)

    n_values = math.prod(sizes)
    endian = fields.get("endian", "little").lower()
    file_dtype = dtype.newbyteorder("<" if endian == "little" else ">")
    payload = _nrrd_payload(raw, offset, fields, path, n_values * dtype.itemsize)
    encoding = fields.get("encoding", "").lower()
    try:
        if encoding in ("ascii", "text", "txt"):
            flat = np.array(payload.split()[:n_values], dtype=np.float64)
        elif encoding == "hex":
            flat = np.frombuffer(bytes.fromhex(payload.decode("ascii")), dtype=file_dtype)
        else:
            flat = np.frombuffer(payload, dtype=file_dtype, count=n_values)
    except ValueError as exc:
        raise SegIOError(f"{where}: the NRRD data cannot be decoded ({exc})") from exc
    if flat.size < n_values:
        raise SegIOError(f"{where}: the NRRD data is truncated")
    data = flat[:n_values].reshape(tuple(reversed(sizes)))  # fastest axis last
    n_layers = sizes[0] if layered else 0
    spatial_sizes = sizes[1:] if layered else sizes
    geometry = ImageGeometry(
        shape=(spatial_sizes[2], spatial_sizes[1], spatial_sizes[0]),
        spacing=tuple(float(v) for v in spacing),
        origin=tuple(float(v) for v in origin),
        direction=direction,
    )
    return data, geometry, keys, n_layers


def _as_label_values(data: np.ndarray, where: str) -> np.ndarray:
    """Integer label values: integer arrays as they are, floats only when integral."""
    if data.dtype.kind == "f":
        if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
            raise SegIOError(f"{where}: the image holds fractional values, not label values")
        return data.astype(np.int64)
    return data


def _role_from_tags(tags: str) -> Role:
    for item in tags.split("|"):
        key, _, value = item.partition(":")
        if key.strip() == ROLE_TAG:
            with suppress(ValueError):
                return Role(value.strip().lower())
    return Role.OTHER


def _colour(text: str | None, fallback: tuple[float, float, float]) -> tuple[float, float, float]:
    if not text:
        return fallback
    try:
        parts = [float(v) for v in text.split()[:3]]
    except ValueError:
        return fallback
    if len(parts) != 3 or not all(math.isfinite(v) for v in parts):
        return fallback
    return tuple(min(max(v, 0.0), 1.0) for v in parts)


def _slicer_segments(
    values: np.ndarray, keys: dict[str, str], n_segments: int, where: str
) -> tuple[np.ndarray, list[Label]]:
    """Merge Slicer segments (``values`` is [k, j, i, layer]) into one label array and table."""
    n_layers = values.shape[-1]
    segments: list[tuple[int, int, Label]] = []  # (layer, value in file, label)
    for n in range(n_segments):
        seg_id = keys[f"Segment{n}_ID"]
        try:
            value = int(keys.get(f"Segment{n}_LabelValue", "1"))
            # Slicer's default without a Layer field: one layer per segment
            layer = int(keys.get(f"Segment{n}_Layer", str(n if n_layers > 1 else 0)))
        except ValueError as exc:
            raise SegIOError(f"{where}: segment {n} has an unreadable label value") from exc
        if not 0 <= layer < n_layers:
            raise SegIOError(f"{where}: segment {n} ({seg_id}) refers to a missing layer")
        label = Label(
            n + 1,
            keys.get(f"Segment{n}_Name", seg_id),
            _colour(keys.get(f"Segment{n}_Color"), _palette(n + 1)),
            _role_from_tags(keys.get(f"Segment{n}_Tags", "")),
        )
        segments.append((layer, value, label))
    if len(segments) > MAX_LABELS:
        raise SegIOError(f"{where}: {len(segments)} segments; a label map holds {MAX_LABELS}")
    file_values = [v for _layer, v, _lab in segments]
    # One layer with distinct values 1..255: keep the values (a SurgTwin file reads back as is).
    keep = (
        n_layers == 1
        and all(0 < v <= MAX_LABELS for v in file_values)
        and len(set(file_values)) == len(file_values)
    )
    if keep:
        segments = [(layer, v, replace(lab, value=v)) for layer, v, lab in segments]
    labels = sorted((lab for *_rest, lab in segments), key=lambda lab: lab.value)
    if keep and values.dtype == np.uint8:
        lut = np.zeros(MAX_LABELS + 1, dtype=np.uint8)
        lut[file_values] = file_values
        return lut[values[..., 0]], labels
    out = np.zeros(values.shape[:3], dtype=np.uint8)
    names = {lab.value: lab.name for lab in labels}
    for layer, value, lab in segments:
        mask = values[..., layer] == value
        clash = mask & (out != 0)
        if clash.any():
            raise SegIOError(
                f"{where}: segment {lab.name!r} overlaps segment {names[int(out[clash][0])]!r} "
                f"in {int(clash.sum())} voxels; SurgTwin label maps hold one label per voxel"
            )
        out[mask] = lab.value
    return out, labels


def read_seg_nrrd(path: str | os.PathLike[str], geometry: ImageGeometry | None = None) -> LabelMap:
    """Read a 3D Slicer segmentation (``.seg.nrrd``) or a plain label-map NRRD.

    Segment names, colours and label values come from Slicer's ``Segment<N>_*`` fields and the
    role from the ``SurgTwin_Role`` segment tag (``other`` when absent). A plain NRRD without
    segment fields gets one label per value found, named ``Label <value>``. Multi-layer Slicer
    files (``kinds: list domain domain domain``, overlapping segments stored in layers) are read
    when no voxel belongs to two segments; a label map holds one label per voxel.

    Parameters
    ----------
    path : str or PathLike
        A ``.nrrd`` (attached data) or ``.nhdr`` (detached data) file in the patient space
        ``left-posterior-superior`` or ``right-anterior-superior``.
    geometry : ImageGeometry, optional
        The grid the labels must lie on (usually ``volume.geometry``). A file holding a box of
        that grid (3D Slicer can crop segmentations) is placed into it.

    Returns
    -------
    LabelMap

    Raises
    ------
    SegIOError
        The file is not a NRRD, not in a patient space, not a 3D label image (kinds other than
        ``domain``, fractional or out-of-range values, overlapping segments), or not on
        ``geometry``.
    """
    path = Path(path)
    where = str(path)
    data, found, keys, n_layers = _read_nrrd(path)
    values = _as_label_values(data, where)
    if n_layers == 0:
        values = values[..., None]
    n_segments = 0
    while f"Segment{n_segments}_ID" in keys:
        n_segments += 1
    out = np.zeros(found.shape, dtype=np.uint8)
    labels: list[Label] = []
    if n_segments == 0:
        if values.shape[-1] != 1:
            raise SegIOError(
                f"{where}: a NRRD with {values.shape[-1]} layers but no Slicer segment fields "
                "cannot be read as a label map"
            )
        plane = values[..., 0]
        lo, hi = int(plane.min()), int(plane.max())
        if lo < 0 or hi > MAX_LABELS:
            raise SegIOError(
                f"{where}: label values range from {lo} to {hi}; a label map holds 0..{MAX_LABELS}"
            )
        out[...] = plane
        for v in np.flatnonzero(_present(out)[1:]) + 1:
            labels.append(Label(int(v), f"Label {int(v)}", _palette(int(v))))
    else:
        out, labels = _slicer_segments(values, keys, n_segments, where)
    array, origin, direction = _right_handed(
        out, np.asarray(found.origin), np.asarray(found.spacing), found.direction
    )
    found = ImageGeometry(
        tuple(array.shape), found.spacing, tuple(float(v) for v in origin), direction
    )
    array, target = _fit_to_geometry(array, found, geometry, where)
    return LabelMap(target, np.ascontiguousarray(array), labels)


# ================================================================================ NIfTI


def _nifti_stem(path: Path) -> str:
    name = path.name
    lower = name.lower()
    if lower.endswith(".nii.gz"):
        return name[:-7]
    if lower.endswith(".nii"):
        return name[:-4]
    raise SegIOError(f"{path}: a NIfTI file name must end in .nii or .nii.gz")


def labels_sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The JSON label table next to a NIfTI file: ``seg.nii.gz`` -> ``seg.labels.json``."""
    path = Path(path)
    return path.with_name(_nifti_stem(path) + ".labels.json")


def write_nifti(labelmap: LabelMap, path: str | os.PathLike[str]) -> Path:
    """Save a label map as NIfTI-1 (``.nii`` or ``.nii.gz``) plus a JSON label table.

    The image is uint8 label values, written by ITK (SimpleITK), which converts the LPS grid to
    NIfTI's RAS world coordinates (``qform`` and ``sform``; x and y negated), so other NIfTI
    readers place every voxel at the same patient point. NIfTI stores the transform in float32:
    positions read back agree within a few micrometres.

    Names, colours, roles, visibility and opacity go to ``<name>.labels.json`` next to the image
    (see :func:`labels_sidecar_path`)::

        {"format": "surgtwin-labels", "version": 1, "image": "seg.nii.gz",
         "labels": {"1": {"name": "L4", "color": [0.9, 0.85, 0.72], "role": "bone",
                          "visible": true, "opacity": 1.0}}}

    Parameters
    ----------
    labelmap : LabelMap
    path : str or PathLike
        The image file; both files are replaced atomically.

    Returns
    -------
    pathlib.Path
        The image file written.

    Raises
    ------
    SegIOError
        The label map is empty, the name does not end in .nii / .nii.gz, or writing fails.
    """
    import SimpleITK as sitk

    path = Path(path)
    sidecar = labels_sidecar_path(path)
    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else ".nii"
    array = np.ascontiguousarray(labelmap.array, dtype=np.uint8)
    present = _present(array)
    _require_voxels(present, "NIfTI")
    labels = _all_labels(labelmap, present)
    g = labelmap.geometry
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(v) for v in g.spacing])
    image.SetOrigin([float(v) for v in g.origin])
    image.SetDirection([float(v) for v in np.asarray(g.direction, float).reshape(-1)])
    table = {
        "format": SIDECAR_FORMAT,
        "version": 1,
        "software": f"SurgTwin {__version__}",
        "image": path.name,
        "labels": {
            str(lab.value): {
                "name": lab.name,
                "color": [float(c) for c in lab.color],
                "role": Role(lab.role).value,
                "visible": bool(lab.visible),
                "opacity": float(lab.opacity),
            }
            for lab in labels
        },
    }
    with _atomic((path, suffix), (sidecar, "")) as (tmp_image, tmp_json):
        try:
            sitk.WriteImage(image, str(tmp_image), suffix == ".nii.gz")
        except RuntimeError as exc:
            raise SegIOError(f"{path}: ITK could not write the NIfTI file ({exc})") from exc
        tmp_json.write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path


def _read_sidecar(path: Path) -> dict[int, Label]:
    sidecar = labels_sidecar_path(path)
    if not sidecar.exists():
        return {}
    try:
        table = json.loads(sidecar.read_text("utf-8"))
        entries = table["labels"]
        out: dict[int, Label] = {}
        for key, entry in entries.items():
            value = int(key)
            if not 0 < value <= MAX_LABELS:
                continue
            role = Role.OTHER
            with suppress(ValueError):
                role = Role(str(entry.get("role", "other")))
            out[value] = Label(
                value,
                str(entry.get("name", f"Label {value}")),
                _colour(" ".join(str(c) for c in entry.get("color", [])), _palette(value)),
                role,
                bool(entry.get("visible", True)),
                float(entry.get("opacity", 1.0)),
            )
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SegIOError(f"{sidecar}: the label table cannot be read ({exc})") from exc


def read_nifti(path: str | os.PathLike[str], geometry: ImageGeometry | None = None) -> LabelMap:
    """Read a NIfTI label map (and its ``.labels.json`` table when present).

    Parameters
    ----------
    path : str or PathLike
        ``.nii`` or ``.nii.gz``; read by ITK, which converts NIfTI's RAS world to LPS.
    geometry : ImageGeometry, optional
        The grid the labels must lie on (usually ``volume.geometry``); the file's grid must match
        it within float32 precision (or be an aligned box of it). The label map then uses this
        exact geometry. Without it, the grid is taken from the file (made right-handed by
        reversing k when the file's axes are left-handed).

    Returns
    -------
    LabelMap
        Labels from the sidecar; values without an entry are named ``Label <value>``.

    Raises
    ------
    SegIOError
        The file cannot be read, is not a 3D single-component image with integer values 0..255,
        or is not on ``geometry``.
    """
    import SimpleITK as sitk

    path = Path(path)
    where = str(path)
    _nifti_stem(path)
    if not path.is_file():
        raise SegIOError(f"{where}: no such file")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise SegIOError(f"{where}: ITK could not read the NIfTI file ({exc})") from exc
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise SegIOError(
            f"{where}: a label map is a 3D single-value image; this one has "
            f"{image.GetDimension()} dimensions and {image.GetNumberOfComponentsPerPixel()} "
            "value(s) per voxel"
        )
    values = _as_label_values(sitk.GetArrayFromImage(image), where)
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi > MAX_LABELS:
        raise SegIOError(
            f"{where}: label values range from {lo} to {hi}; a label map holds 0..{MAX_LABELS}"
        )
    array = values.astype(np.uint8)
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), float)
    origin = np.asarray(image.GetOrigin(), float)
    _check_axes(direction, where)
    array, origin, direction = _right_handed(array, origin, spacing, direction)
    found = ImageGeometry(
        tuple(array.shape),
        tuple(float(v) for v in spacing),
        tuple(float(v) for v in origin),
        direction,
    )
    array, target = _fit_to_geometry(array, found, geometry, where)
    table = _read_sidecar(path)
    for v in np.flatnonzero(_present(array)[1:]) + 1:
        table.setdefault(int(v), Label(int(v), f"Label {int(v)}", _palette(int(v))))
    return LabelMap(target, np.ascontiguousarray(array), [table[v] for v in sorted(table)])


# ================================================================================ DICOM SEG


def _split_archive(name: str) -> tuple[str, str] | None:
    """``archive.zip!member`` -> (archive, member), trying each '!' from the left."""
    start = 0
    while (idx := name.find("!", start)) >= 0:
        archive, member = name[:idx], name[idx + 1 :]
        if member and os.path.isfile(archive) and zipfile.is_zipfile(archive):
            return archive, member
        start = idx + 1
    return None


def _read_source_headers(names: Sequence[str]) -> list[tuple[str, Dataset]]:
    """The source files' headers (no pixel data), in the order given."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    archives: dict[str, zipfile.ZipFile] = {}
    out: list[tuple[str, Dataset]] = []
    try:
        for name in names:
            try:
                if os.path.isfile(name):
                    ds = pydicom.dcmread(name, stop_before_pixels=True, force=True)
                else:
                    split = _split_archive(name)
                    if split is None:
                        raise SegIOError(
                            f"{name}: the source image is missing; DICOM SEG must reference the "
                            "source images, so load the series again from where it is now"
                        )
                    archive, member = split
                    zf = archives.get(archive)
                    if zf is None:
                        zf = archives[archive] = zipfile.ZipFile(archive)
                    with zf.open(member) as f:
                        ds = pydicom.dcmread(
                            io.BytesIO(f.read()), stop_before_pixels=True, force=True
                        )
            except (OSError, InvalidDicomError, zipfile.BadZipFile, KeyError, ValueError) as exc:
                raise SegIOError(f"{name}: the source image cannot be read ({exc})") from exc
            out.append((name, ds))
    finally:
        for zf in archives.values():
            zf.close()
    return out


def _acquisition_sources(volume: Volume) -> list[Dataset]:
    """The source headers in k order, after checking that they are the volume's grid."""
    advice = (
        "DICOM SEG needs the original acquisition grid (each label slice must lie exactly on a "
        "source image); save the segmentation as NRRD (.seg.nrrd) instead"
    )
    changed = [
        what for code, what in _REGRIDDED.items() if code in {f.code for f in volume.findings}
    ]
    if changed:
        raise SegIOError(
            f"this volume was {' and '.join(changed)} while loading, so its voxels no longer "
            f"coincide with the source images. {advice}"
        )
    if not volume.source_files:
        raise SegIOError(
            "the volume has no source DICOM files (it was not loaded from DICOM); DICOM SEG "
            "must reference source images, so save the segmentation as NRRD (.seg.nrrd) instead"
        )
    headers = _read_source_headers(volume.source_files)
    for name, ds in headers:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames > 1 or "PerFrameFunctionalGroupsSequence" in ds:
            raise SegIOError(
                f"{name}: the source is a multi-frame image ({frames} frame(s) in one file); "
                "DICOM SEG export supports series of single-frame images only. Save the "
                "segmentation as NRRD (.seg.nrrd) instead"
            )
        missing = [
            kw
            for kw in (
                "SOPClassUID",
                "SOPInstanceUID",
                "FrameOfReferenceUID",
                "ImagePositionPatient",
                "ImageOrientationPatient",
                "PixelSpacing",
                "Rows",
                "Columns",
            )
            if ds.get(kw) in (None, "")
        ]
        if missing:
            raise SegIOError(
                f"{name}: the source image lacks {', '.join(missing)}, which DICOM SEG needs "
                "to place the segments on the images; save the segmentation as NRRD "
                "(.seg.nrrd) instead"
            )
        if volume.info.series_uid and ds.get("SeriesInstanceUID") != volume.info.series_uid:
            raise SegIOError(
                f"{name}: the file now belongs to another series than the loaded volume; load "
                "the series again"
            )
    g = volume.geometry
    normal = np.asarray(g.direction, float)[:, 2]
    headers.sort(key=lambda item: float(np.asarray(item[1].ImagePositionPatient, float) @ normal))
    nk, nj, ni = g.shape
    if len(headers) != nk:
        raise SegIOError(f"the volume has {nk} slices but {len(headers)} source images; {advice}")
    tol = max(POSITION_TOL_MM, POSITION_TOL_FRACTION * min(g.spacing))
    expected = g.index_to_lps(np.column_stack([np.zeros(nk), np.zeros(nk), np.arange(nk)]))
    direction = np.asarray(g.direction, float)
    for k, (name, ds) in enumerate(headers):
        ipp = np.asarray(ds.ImagePositionPatient, float)
        iop = np.asarray(ds.ImageOrientationPatient, float)
        row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
        off = float(np.linalg.norm(ipp - expected[k]))
        if (
            off > tol
            or int(ds.Rows) != nj
            or int(ds.Columns) != ni
            or not np.allclose(iop[:3], direction[:, 0], rtol=0, atol=DIRECTION_TOL)
            or not np.allclose(iop[3:], direction[:, 1], rtol=0, atol=DIRECTION_TOL)
            or abs(col_spacing - g.spacing[0]) > SPACING_TOL_MM
            or abs(row_spacing - g.spacing[1]) > SPACING_TOL_MM
        ):
            raise SegIOError(
                f"{name}: the source image does not lie on slice {k} of the volume (it is "
                f"{off:.3f} mm away, or its size or orientation differs); {advice}"
            )
    return [ds for _name, ds in headers]


# Attributes the SEG needs from each anonymised source image (geometry, references, study).
_SOURCE_KEYWORDS = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "PositionReferenceIndicator",
    "Modality",
    "StudyDate",
    "StudyTime",
    "SeriesNumber",
    "InstanceNumber",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "SliceThickness",
    "SpacingBetweenSlices",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
)
_TYPE2_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


def _prepared_source(ds: Dataset, include_patient: bool) -> Dataset:
    """A copy of a source header for highdicom: complete, or reduced and anonymised."""
    from pydicom.uid import ExplicitVRLittleEndian

    if include_patient:
        out = copy.deepcopy(ds)
    else:
        out = Dataset()
        for keyword in _SOURCE_KEYWORDS:
            if keyword in ds:
                setattr(out, keyword, ds[keyword].value)
        out.PatientName = ANONYMOUS_NAME
        out.PatientID = ANONYMOUS
        out.PatientBirthDate = ""
        out.PatientSex = ""
        out.AccessionNumber = ""
        out.StudyID = ""
        out.ReferringPhysicianName = ""
    for keyword in _TYPE2_PATIENT_STUDY:  # highdicom reads these; they may be absent
        if keyword not in out:
            setattr(out, keyword, "")
    # The values are decoded already; declare little endian so highdicom accepts any source.
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = out.SOPClassUID
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    out.file_meta = meta
    return out


def _segment_label(name: str) -> str:
    """A DICOM LO value: no backslash or control characters, at most 64 characters."""
    clean = "".join(" " if ord(c) < 32 else c for c in name).replace("\\", "/").strip()
    return (clean or "Segment")[:64]


def write_dicom_seg(
    labelmap: LabelMap,
    volume: Volume,
    path: str | os.PathLike[str],
    *,
    include_patient: bool = False,
    series_description: str = "SurgTwin segmentation",
) -> Path:
    """Save a label map as a DICOM Segmentation object referencing the source series.

    A binary SEG (highdicom) with one segment per label that has voxels, in order of label
    value: segment label = label name, recommended display colour = label colour (CIE Lab,
    converted by highdicom), algorithm type SEMIAUTOMATIC with algorithm "SurgTwin" and its
    version, and SNOMED CT segmented property category / type by role:

    ========  ==================================  ==================================
    role      category                            type
    ========  ==================================  ==================================
    bone      Tissue (85756007)                   Bone structure (272673000)
    skin      Tissue (85756007)                   Skin (39937001)
    critical  Anatomical structure (91723000)     Anatomical structure (91723000)
    target    Morphologically abnormal structure  Neoplasm (108369006)
              (49755003)
    other     Tissue (85756007)                   Tissue (85756007)
    ========  ==================================  ==================================

    Frames hold the label slices that contain any label, each at its source image's position
    and referencing that image (SOP Instance UID); the SEG joins the source study and frame of
    reference. The source images are read again (headers only) from ``volume.source_files``,
    including ``archive.zip!member`` entries, and sorted along the slice normal.

    Patient identification: a PACS files a DICOM object by its patient module, so the SEG always
    has one. With ``include_patient=False`` (the default) it is anonymised: Patient's Name and
    Patient ID are ``ANONYMOUS``; Patient's Birth Date, Sex, Accession Number, Study ID and
    Referring Physician are empty; no other patient or study attribute of the source is copied;
    Patient Identity Removed is YES with a De-identification Method saying what was kept. The
    study, series, instance and frame-of-reference UIDs and the study date and time are kept,
    because the SEG must reference the source images. A PACS may then file the SEG under a
    patient "ANONYMOUS" or refuse it as a mismatch with the study; to store it next to the
    images, pass ``include_patient=True``, which copies the source's patient and study modules
    unchanged.

    Parameters
    ----------
    labelmap : LabelMap
        Labels on ``volume``'s grid.
    volume : Volume
        The volume the labels were drawn on, loaded from a series of single-frame DICOM images
        (with a Frame of Reference UID) without tilt correction or resampling.
    path : str or PathLike
        The ``.dcm`` file to write (replaced atomically).
    include_patient : bool
        Copy the patient's identity from the source images (see above).
    series_description : str
        Series Description of the new SEG series.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    SegIOError
        The label map is empty or not on the volume's grid; the volume was tilt-corrected or
        resampled (its grid is not the acquisition grid), has no DICOM source files, or comes
        from multi-frame images; a source file is missing; or the file cannot be written.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    path = Path(path)
    if not _same_grid(labelmap.geometry, volume.geometry):
        raise SegIOError(
            f"the label map's grid ({_describe(labelmap.geometry)}) is not the volume's grid "
            f"({_describe(volume.geometry)})"
        )
    array = np.asarray(labelmap.array, dtype=np.uint8)
    present = _present(array)
    _require_voxels(present, "DICOM SEG")
    labels = [lab for lab in _all_labels(labelmap, present) if present[lab.value]]
    sources = _acquisition_sources(volume)
    prepared = [_prepared_source(ds, include_patient) for ds in sources]

    lut = np.zeros(MAX_LABELS + 1, dtype=np.uint8)
    descriptions = []
    algorithm = hd.AlgorithmIdentificationSequence(
        name="SurgTwin",
        # CID 7162: thresholds refined by region and morphological operations
        family=codes.cid7162.MorphologicalOperations,
        version=__version__,
    )
    for number, lab in enumerate(labels, start=1):
        lut[lab.value] = number
        category, kind = _ROLE_CODES[Role(lab.role)]
        rgb = [round(min(max(float(c), 0.0), 1.0) * 255) for c in lab.color]
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=_segment_label(lab.name),
                segmented_property_category=Code(category[0], category[1], category[2]),
                segmented_property_type=Code(kind[0], kind[1], kind[2]),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
                algorithm_identification=algorithm,
                display_color=hd.color.CIELabColor.from_rgb(*rgb),
            )
        )
    segments = lut[array]
    texts = [lab.name for lab in labels] + [series_description]
    charset = prepared[0].get("SpecificCharacterSet") or "ISO_IR 100"
    if not all(t.isascii() for t in texts):
        charset = "ISO_IR 192"
    try:
        series_number = 1000 + int(prepared[0].get("SeriesNumber") or 0)
    except (TypeError, ValueError):
        series_number = 1000
    try:
        seg = hd.seg.Segmentation(
            source_images=prepared,
            pixel_array=segments,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="SurgTwin",
            manufacturer_model_name="SurgTwin",
            software_versions=__version__,
            device_serial_number="0",
            content_label="SURGTWIN",
            content_description="Segmentation made with SurgTwin",
            series_description=_segment_label(series_description),
            omit_empty_frames=True,
            specific_character_set=charset,
        )
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise SegIOError(f"the DICOM SEG could not be built: {exc}") from exc
    if not include_patient:
        seg.PatientIdentityRemoved = "YES"
        seg.DeidentificationMethod = "SurgTwin: name/ID replaced; UIDs and dates kept"
    with _atomic((path, "")) as (tmp,):
        seg.save_as(tmp, enforce_file_format=True)
    return path
