"""Mesh import: :func:`import_mesh` and the STL, OBJ and PLY readers (VTP: :mod:`.vtp`).

STL is read in binary and ASCII (identical vertices are merged, so a closed STL becomes a
watertight mesh), OBJ with our own parser (polygons fan-triangulated, negative indices, colour
from the ``.mtl`` next to the file), PLY with trimesh's reader. Sizes found in a file are checked
against the bytes present before anything is allocated, so damaged files end in
:class:`MeshIOError`. The caller states the file's space; a ``SPACE`` marker in the file that
contradicts it is an error, never silently overridden.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from surgtwin.geometry.mesh import Mesh, merge_vertices
from surgtwin.geometry.mesh_common import (
    IMPORT_FORMATS,
    SPACES,
    MeshIOError,
    check_space,
    to_space,
)
from surgtwin.geometry.vtp import read_vtp

_SPACE_MARK = re.compile(rb"SPACE\s*=\s*([A-Za-z]+)")


def _declared_space(marks: list[bytes], stated: str, path: Path) -> str | None:
    """Check SPACE markers found in a file against the caller's statement."""
    found = None
    for raw in marks:
        value = raw.decode("ascii", "replace").upper()
        if value not in SPACES:
            raise MeshIOError(
                f"the file declares SPACE={value}, a coordinate space SurgTwin does not know; "
                "convert it to LPS or RAS first",
                path,
            )
        if value != stated:
            raise MeshIOError(
                f"the file says its coordinates are in {value} (SPACE={value}) but the import "
                f"was asked to read them as {stated}; choose {value}, or check where the file "
                "came from",
                path,
            )
        found = value
    return found


def _numbers(rows: Sequence, what: str, path: Path) -> np.ndarray:
    """Coordinates read as text -> float64 array; "<what> that is not a number" otherwise."""
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise MeshIOError(f"{what} that is not a number", path) from exc


def _read_stl(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    """Binary or ASCII STL -> (triangle corners (m*3, 3), faces, SPACE marks)."""
    n_bytes = len(data)
    looks_ascii = data.lstrip()[:5].lower() == b"solid"
    if n_bytes >= 84:
        n = struct.unpack_from("<I", data, 80)[0]
        expected = 84 + 50 * n
        if n_bytes == expected or (n_bytes > expected and not looks_ascii):
            if n == 0:
                raise MeshIOError("the STL file contains no triangles", path)
            record = np.dtype(
                [("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")]
            )
            rec = np.frombuffer(data, dtype=record, count=n, offset=84)
            corners = rec["vertices"].reshape(-1, 3).astype(np.float64)
            return corners, np.arange(3 * n).reshape(-1, 3), _SPACE_MARK.findall(data[:80])
    if looks_ascii and (b"facet" in data or b"endsolid" in data):
        first_line = data.lstrip().split(b"\n", 1)[0]
        marks = _SPACE_MARK.findall(first_line)
        values = re.findall(rb"vertex\s+(\S+)\s+(\S+)\s+(\S+)", data)
        n_facets = len(re.findall(rb"\bendfacet\b", data))
        if not values:
            raise MeshIOError("the ASCII STL file contains no triangles", path)
        if len(values) % 3 or len(values) != 3 * n_facets:
            raise MeshIOError(
                f"the ASCII STL file is damaged or truncated ({len(values)} vertices for "
                f"{n_facets} complete triangles)",
                path,
            )
        corners = _numbers(values, "the ASCII STL file has a coordinate", path)
        return corners, np.arange(len(values)).reshape(-1, 3), marks
    if n_bytes >= 84:
        n = struct.unpack_from("<I", data, 80)[0]
        raise MeshIOError(
            f"the STL file is truncated or damaged: its header announces {n} triangles "
            f"({84 + 50 * n} bytes) but the file has {n_bytes} bytes",
            path,
        )
    raise MeshIOError(f"is not an STL file (only {n_bytes} bytes, and not ASCII STL)", path)


def _read_mtl_color(mtl: Path, material: str | None) -> tuple[float, float, float] | None:
    try:
        text = mtl.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    current = None
    first = None
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "newmtl":
            current = " ".join(parts[1:])
        elif parts[0] == "Kd" and len(parts) >= 4:
            try:
                rgb = (float(parts[1]), float(parts[2]), float(parts[3]))
            except ValueError:
                continue
            if first is None:
                first = rgb
            if material is None or current == material:
                return rgb
    return first


def _read_obj(
    data: bytes, path: Path
) -> tuple[np.ndarray, np.ndarray, list[bytes], str | None, tuple[float, float, float] | None]:
    """Wavefront OBJ: ``v`` and ``f`` records (polygons fan-triangulated, negative indices)."""
    text = data.decode("utf-8", errors="replace")
    coords: list[list[str]] = []
    tris: list[tuple[int, int, int]] = []
    marks: list[bytes] = []
    name = mtllib = material = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        key = parts[0]
        try:
            if key == "v":
                coords.append(parts[1:4])
                if len(parts) < 4:
                    raise ValueError
            elif key == "f":
                nv = len(coords)
                idx = []
                for token in parts[1:]:
                    i = int(token.split("/", 1)[0])
                    i = i - 1 if i > 0 else nv + i
                    if not 0 <= i < nv:
                        raise MeshIOError(
                            f"line {lineno} refers to vertex {token} which does not exist", path
                        )
                    idx.append(i)
                if len(idx) < 3:
                    raise ValueError
                tris.extend((idx[0], idx[k], idx[k + 1]) for k in range(1, len(idx) - 1))
            elif key.startswith("#"):
                marks.extend(_SPACE_MARK.findall(line.encode("utf-8", "replace")))
            elif key == "o" and name is None:
                name = " ".join(parts[1:]) or None
            elif key == "mtllib" and mtllib is None and len(parts) > 1:
                mtllib = " ".join(parts[1:])
            elif key == "usemtl" and material is None and len(parts) > 1:
                material = " ".join(parts[1:])
        except ValueError as exc:
            raise MeshIOError(
                f"line {lineno} of the OBJ file cannot be read: {line[:60]!r}", path
            ) from exc
    if not tris:
        raise MeshIOError("the OBJ file contains no faces", path)
    points = _numbers(coords, "the OBJ file has a vertex coordinate", path)
    color = None
    if mtllib:
        # only look next to the OBJ file, whatever path the file names
        color = _read_mtl_color(path.parent / Path(mtllib.replace("\\", "/")).name, material)
    return points, np.asarray(tris, dtype=np.int64), marks, name, color


def _read_ply(
    data: bytes, path: Path
) -> tuple[np.ndarray, np.ndarray, list[bytes], tuple[float, float, float] | None]:
    """PLY (ASCII or binary) through trimesh's reader, header comments read here."""
    import io

    import trimesh

    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise MeshIOError("is not a PLY file (no 'ply' magic or no end of header)", path)
    header = data[:end]
    marks = []
    for line in header.splitlines():
        if line.strip().startswith((b"comment", b"obj_info")):
            marks.extend(_SPACE_MARK.findall(line))
    try:
        loaded = trimesh.load(io.BytesIO(data), file_type="ply", process=False)
    except Exception as exc:
        raise MeshIOError(f"the PLY file is damaged or truncated ({exc})", path) from exc
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise MeshIOError("the PLY file contains no triangles", path)
    color = None
    if loaded.visual.kind == "vertex":
        rgb = np.asarray(loaded.visual.vertex_colors)[:, :3]
        if len(rgb):
            color = tuple(float(v) for v in np.median(rgb, axis=0) / 255.0)
    return (
        np.asarray(loaded.vertices, dtype=np.float64),
        np.asarray(loaded.faces, dtype=np.int64),
        marks,
        color,
    )


def import_mesh(
    path: str | os.PathLike,
    space: str,
    name: str | None = None,
    color: Sequence[float] | None = None,
    role: str = "other",
) -> Mesh:
    """Read a surface mesh file into LPS mm.

    Parameters
    ----------
    path : str or path
        An ``.stl`` (binary or ASCII), ``.obj``, ``.ply`` or ``.vtp`` file.
    space : {"LPS", "RAS"}
        The coordinate space the file's numbers are in, stated by the caller (RAS points are
        converted to LPS by negating x and y). A SPACE marker in the file that disagrees
        raises MeshIOError.
    name : str, optional
        Structure name; default: the name stored in the file (OBJ object, VTP field data) or
        the file name without extension.
    color : sequence of 3 float, optional
        RGB 0..1; default: the file's colour (OBJ material, PLY vertex colours, VTP field data)
        or light grey.
    role : str
        Role of the structure, as in the label map.

    Returns
    -------
    Mesh
        In LPS mm. STL vertices with identical coordinates are merged, so a closed STL surface
        imports as a watertight mesh. ``metadata`` records the source format and space.

    Raises
    ------
    MeshIOError
        Missing file, a folder, an empty, truncated or unreadable file, an unsupported
        extension, or a SPACE marker contradicting ``space``.
    """
    stated = check_space(space)
    p = Path(path)
    fmt = p.suffix.lower().lstrip(".")
    if not p.exists():
        raise MeshIOError("the file does not exist", p)
    if p.is_dir():
        raise MeshIOError("is a folder, not a mesh file", p)
    if fmt not in IMPORT_FORMATS:
        known = ", ".join("." + f for f in IMPORT_FORMATS)
        raise MeshIOError(f"cannot import '.{fmt}' files; use one of {known}", p)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise MeshIOError(f"cannot read the file: {exc.strerror or exc}", p) from exc
    if not data:
        raise MeshIOError("the file is empty", p)

    file_name = file_color = None
    try:
        with np.errstate(all="ignore"):  # non-finite values are reported below
            if fmt == "stl":
                points, faces, marks = _read_stl(data, p)
            elif fmt == "obj":
                points, faces, marks, file_name, file_color = _read_obj(data, p)
            elif fmt == "ply":
                points, faces, marks, file_color = _read_ply(data, p)
            else:
                points, faces, marks, file_name, file_color = read_vtp(data, p)
    except MeshIOError:
        raise
    except (ValueError, TypeError, IndexError, MemoryError, struct.error) as exc:
        raise MeshIOError(
            f"the file is damaged or not a valid {fmt.upper()} file ({exc})", p
        ) from exc

    _declared_space(marks, stated, p)
    if len(faces) == 0 or len(points) == 0:
        raise MeshIOError("the file contains no triangles", p)
    if not np.all(np.isfinite(points)):
        raise MeshIOError("the file has non-finite (NaN or infinite) coordinates", p)
    if faces.min() < 0 or faces.max() >= len(points):
        raise MeshIOError("the file has triangles that refer to missing vertices", p)
    if fmt == "stl":
        points, faces = merge_vertices(points, faces)
    lps = to_space(points, stated)
    rgb = color if color is not None else file_color
    rgb = (0.9, 0.9, 0.9) if rgb is None else tuple(float(c) for c in np.clip(rgb, 0.0, 1.0)[:3])
    return Mesh(
        lps,
        faces,
        name=name or file_name or p.stem,
        color=rgb,
        role=role,
        metadata={"source_format": fmt, "source_space": stated, "source_file": p.name},
    )
