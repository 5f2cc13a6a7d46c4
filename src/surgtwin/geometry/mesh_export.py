"""Mesh export: :func:`export_meshes` and the one-file-per-structure writers (STL, OBJ, PLY).

VTP, GLB and 3MF are written by :mod:`~surgtwin.geometry.vtp`, :mod:`~surgtwin.geometry.gltf`
and :mod:`~surgtwin.geometry.threemf`. Every export is atomic (:func:`surgtwin.fileio.write_files`):
all files are written and fsynced under temporary names and renamed into place only when every
one has been written; on any error or interruption nothing new is left behind.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import BinaryIO

import numpy as np

from surgtwin.fileio import Writer, write_files
from surgtwin.geometry.gltf import write_glb
from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.mesh_common import (
    CHUNK,
    FORMATS,
    GENERATOR,
    MeshIOError,
    check_space,
    format_rows,
    one_line,
    rgb8,
    safe_file_stem,
    to_space,
)
from surgtwin.geometry.threemf import write_3mf
from surgtwin.geometry.vtp import write_vtp
from surgtwin.imaging.header import PatientInfo


def _unique_stems(names: Sequence[str]) -> list[str]:
    """Safe stems, made unique without regard to case (for case-insensitive file systems)."""
    used: set[str] = set()
    out = []
    for name in names:
        stem = base = safe_file_stem(name)
        k = 2
        while stem.casefold() in used:
            stem = f"{base}_{k}"
            k += 1
        used.add(stem.casefold())
        out.append(stem)
    return out


def _validate(mesh: Mesh) -> None:
    label = mesh.name or "mesh"
    if len(mesh.faces) == 0 or len(mesh.points) == 0:
        raise MeshIOError("the mesh is empty (no triangles), there is nothing to export", label)
    if not np.all(np.isfinite(mesh.points)):
        raise MeshIOError("the mesh has non-finite (NaN or infinite) coordinates", label)
    if mesh.faces.min() < 0 or mesh.faces.max() >= len(mesh.points):
        raise MeshIOError("the mesh has triangles that refer to missing vertices", label)


def _face_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normals of the triangles (zero for degenerate ones)."""
    v = points[faces]
    n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def _stl_header(space: str) -> bytes:
    text = f"{GENERATOR} mesh, units=mm, SPACE={space}".encode("ascii")
    return text.ljust(80, b" ")[:80]


def _write_stl(fh: BinaryIO, mesh: Mesh, space: str) -> None:
    """Binary STL: 80-byte header, uint32 count, then 50 bytes per triangle (little endian)."""
    points, faces = to_space(mesh.points, space), mesh.faces
    record = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])
    fh.write(_stl_header(space))
    fh.write(struct.pack("<I", len(faces)))
    for start in range(0, len(faces), CHUNK):
        f = faces[start : start + CHUNK]
        rec = np.zeros(len(f), dtype=record)
        rec["normal"] = _face_normals(points, f)
        rec["vertices"] = points[f]
        fh.write(rec.tobytes())


def _comment_lines(space: str, name: str, patient: PatientInfo | None) -> list[str]:
    """Comment lines for OBJ/PLY; free text can never fake a SPACE marker."""

    def text(value: str) -> str:
        return re.sub(r"(SPACE\s*)=", r"\1:", one_line(value))

    lines = [f"{GENERATOR} mesh export", f"SPACE={space}", "units=mm", f"name={text(name)}"]
    if patient is not None:
        lines.append(f"patient_name={text(patient.name)}")
        lines.append(f"patient_id={text(patient.patient_id)}")
    return lines


def _write_obj(
    fh: BinaryIO, mesh: Mesh, space: str, material: str, mtl_name: str, comments: list[str]
) -> None:
    """Wavefront OBJ text: comments, material library, ``v`` and 1-based ``f`` records."""
    points, faces = to_space(mesh.points, space), mesh.faces
    head = "".join(f"# {c}\n" for c in comments)
    head += f"mtllib {mtl_name}\no {one_line(mesh.name) or material}\nusemtl {material}\n"
    fh.write(head.encode("utf-8"))
    fh.write(format_rows("v %.6f %.6f %.6f\n", points))
    fh.write(format_rows("f %d %d %d\n", faces + 1))


def _write_mtl(fh: BinaryIO, material: str, color: Sequence[float], comments: list[str]) -> None:
    r, g, b = (float(v) for v in np.clip(np.asarray(color, dtype=float)[:3], 0.0, 1.0))
    text = "".join(f"# {c}\n" for c in comments)
    text += (
        f"newmtl {material}\n"
        f"Ka {r:.6f} {g:.6f} {b:.6f}\n"
        f"Kd {r:.6f} {g:.6f} {b:.6f}\n"
        "Ks 0.200000 0.200000 0.200000\n"
        "Ns 20.000000\n"
        "d 1.000000\n"
        "illum 2\n"
    )
    fh.write(text.encode("utf-8"))


def _write_ply(fh: BinaryIO, mesh: Mesh, space: str, comments: list[str]) -> None:
    """Binary little-endian PLY with float32 positions and per-vertex uchar RGB."""
    points, faces = to_space(mesh.points, space), mesh.faces
    header = ["ply", "format binary_little_endian 1.0"]
    header += [f"comment {c}" for c in comments]
    header += [
        f"element vertex {len(points)}",
        "property float x",
        "property float y",
        "property float z",
        "property uchar red",
        "property uchar green",
        "property uchar blue",
        f"element face {len(faces)}",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    fh.write(("\n".join(header) + "\n").encode("utf-8"))
    vdt = np.dtype([("xyz", "<f4", (3,)), ("rgb", "u1", (3,))])
    rgb = np.asarray(rgb8(mesh.color), dtype=np.uint8)
    for start in range(0, len(points), CHUNK):
        block = points[start : start + CHUNK]
        rec = np.empty(len(block), dtype=vdt)
        rec["xyz"] = block
        rec["rgb"] = rgb
        fh.write(rec.tobytes())
    fdt = np.dtype([("n", "u1"), ("v", "<i4", (3,))])
    for start in range(0, len(faces), CHUNK):
        block = faces[start : start + CHUNK]
        rec = np.empty(len(block), dtype=fdt)
        rec["n"] = 3
        rec["v"] = block
        fh.write(rec.tobytes())


def export_meshes(
    meshes: list[Mesh],
    out_dir: str | os.PathLike,
    fmt: str = "stl",
    space: str = "LPS",
    *,
    patient: PatientInfo | None = None,
    include_patient: bool = False,
    base_name: str | None = None,
) -> list[Path]:
    """Write meshes to ``out_dir`` in one of the supported formats.

    Parameters
    ----------
    meshes : list of Mesh
        Surfaces in patient LPS mm.
    out_dir : str or path
        Destination folder (created if missing).
    fmt : {"stl", "obj", "ply", "vtp", "glb", "3mf"}
        File format. STL, OBJ, PLY and VTP give one file per structure (OBJ also a ``.mtl``);
        GLB and 3MF give one file holding every structure.
    space : {"LPS", "RAS"}
        Coordinate space written to the files (RAS = LPS with x and y negated).
    patient : PatientInfo, optional
        Patient identifiers, written only if ``include_patient`` is True.
    include_patient : bool
        Put the patient's name and ID into the format's metadata or comments (never into file
        names, never into STL).
    base_name : str, optional
        File name (GLB/3MF, default ``"surgtwin_models"``) or prefix of every file name
        (``<base_name>_<structure>``, other formats). Sanitised like structure names.

    Returns
    -------
    list of pathlib.Path
        The files written, in ``meshes`` order (OBJ: each ``.obj`` followed by its ``.mtl``).

    Raises
    ------
    MeshIOError
        Unknown format or space, an empty or invalid mesh, or a file that cannot be written.
        No partially written file is left behind.
    """
    fmt_l = str(fmt).strip().lower().lstrip(".")
    if fmt_l not in FORMATS:
        raise MeshIOError(f"unknown mesh format {fmt!r}; use one of {', '.join(FORMATS)}")
    space_u = check_space(space)
    meshes = list(meshes)
    if not meshes:
        raise MeshIOError("there are no meshes to export")
    for mesh in meshes:
        _validate(mesh)
    if include_patient and patient is None:
        raise MeshIOError("include_patient=True needs the patient's details (patient=...)")
    who = patient if include_patient else None

    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MeshIOError(f"cannot create the folder: {exc.strerror or exc}", folder) from exc
    if not folder.is_dir():
        raise MeshIOError("is not a folder", folder)

    jobs: list[tuple[Path, Writer]] = []
    if fmt_l in ("glb", "3mf"):
        stem = safe_file_stem(base_name) if base_name else "surgtwin_models"
        final = folder / f"{stem}.{fmt_l}"
        if fmt_l == "glb":
            jobs.append((final, partial(write_glb, meshes=meshes, space=space_u, patient=who)))
        else:
            jobs.append((final, partial(write_3mf, meshes=meshes, space=space_u, patient=who)))
        return write_files(jobs, error=MeshIOError)

    prefix = f"{base_name}_" if base_name else ""
    stems = _unique_stems([prefix + (m.name or "structure") for m in meshes])
    for mesh, stem in zip(meshes, stems, strict=True):
        comments = _comment_lines(space_u, mesh.name, who)
        if fmt_l == "stl":
            jobs.append((folder / f"{stem}.stl", partial(_write_stl, mesh=mesh, space=space_u)))
        elif fmt_l == "obj":
            obj = partial(
                _write_obj, mesh=mesh, space=space_u, material=stem, mtl_name=f"{stem}.mtl",
                comments=comments,
            )  # fmt: skip
            mtl = partial(_write_mtl, material=stem, color=mesh.color, comments=comments)
            jobs += [(folder / f"{stem}.obj", obj), (folder / f"{stem}.mtl", mtl)]
        elif fmt_l == "ply":
            ply = partial(_write_ply, mesh=mesh, space=space_u, comments=comments)
            jobs.append((folder / f"{stem}.ply", ply))
        else:
            vtp = partial(write_vtp, mesh=mesh, space=space_u, patient=who)
            jobs.append((folder / f"{stem}.vtp", vtp))
    return write_files(jobs, error=MeshIOError)
