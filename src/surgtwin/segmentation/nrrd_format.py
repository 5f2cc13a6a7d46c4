"""NRRD files (teem NRRD format, http://teem.sourceforge.net/nrrd/format.html): the parts a
label map needs, header text for writing and a reader of 3D (and 4D layered) images.

The reader accepts attached (``.nrrd``) and detached (``.nhdr``) data, raw, gzip, bzip2, ASCII and
hex encodings, either byte order, and the patient spaces left-posterior-superior and
right-anterior-superior (converted to LPS).
"""

from __future__ import annotations

import bz2
import gzip
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from surgtwin.imaging.volume import ImageGeometry
from surgtwin.segmentation.seg_common import SegIOError, check_axes

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


def format_number(value: float) -> str:
    """Shortest exact text of a float (``0.8``, ``-64``, ``1e-05``)."""
    text = repr(float(value) + 0.0)  # + 0.0 turns -0.0 into 0.0
    return text[:-2] if text.endswith(".0") else text


def format_vector(values: Sequence[float]) -> str:
    """NRRD vector text: ``(a,b,c)``."""
    return "(" + ",".join(format_number(v) for v in values) + ")"


def escape_value(text: str) -> str:
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


def read_nrrd(path: Path) -> tuple[np.ndarray, ImageGeometry, dict[str, str], int]:
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
    check_axes(direction, where)

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
