"""What mesh export and import share: the error, the formats, coordinate spaces and names.

SurgTwin keeps every mesh in patient LPS millimetres; files may be in LPS or in RAS (3D
Slicer's world space), which is LPS with x and y negated (see :mod:`surgtwin.geometry.mesh_io`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from surgtwin.fileio import FileError
from surgtwin.geometry.mesh import Mesh

FORMATS = ("stl", "obj", "ply", "vtp", "glb", "3mf")
SPACES = ("LPS", "RAS")
IMPORT_FORMATS = ("stl", "obj", "ply", "vtp")
GENERATOR = "SurgTwin"
CHUNK = 200_000  # rows formatted or converted at a time when streaming large meshes
_LPS_TO_RAS = np.array([-1.0, -1.0, 1.0])
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in "123456789"
}


class MeshIOError(FileError):
    """A mesh file cannot be written or read: ``MeshIOError(problem, path=None)``.

    The message names the file (or structure) and the problem; see
    :class:`surgtwin.fileio.FileError` for the parameters.
    """


def check_space(space: str) -> str:
    """``"LPS"`` or ``"RAS"`` from the caller's spelling; anything else is a MeshIOError."""
    s = str(space).strip().upper()
    if s not in SPACES:
        raise MeshIOError(
            f"unknown coordinate space {space!r}; use 'LPS' (DICOM patient) or 'RAS' (3D Slicer)"
        )
    return s


def to_space(points: np.ndarray, space: str) -> np.ndarray:
    """LPS mm -> ``space`` mm (and back: the map is its own inverse)."""
    return points * _LPS_TO_RAS if space == "RAS" else points.copy()


def one_line(text: str) -> str:
    """Text safe for a single comment line / XML attribute: no control characters."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())


def display_name(mesh: Mesh, index: int) -> str:
    """The structure's name for a scene or package holding several: ``structure <n>`` if none.

    Parameters
    ----------
    mesh : Mesh
        The structure.
    index : int
        Its 0-based position in the export.
    """
    return one_line(mesh.name) or f"structure {index + 1}"


def rgb8(color: Sequence[float]) -> tuple[int, int, int]:
    """RGB 0..1 (clipped) -> 0..255 integers."""
    c = np.clip(np.asarray(color, dtype=float).reshape(-1)[:3], 0.0, 1.0)
    r, g, b = (round(float(v) * 255.0) for v in c)
    return r, g, b


def format_rows(fmt: str, array: np.ndarray) -> bytes:
    """``fmt`` (one row, ending in a newline) applied to every row of a 2-D array."""
    parts = []
    for start in range(0, len(array), CHUNK):
        block = array[start : start + CHUNK]
        parts.append(((fmt * len(block)) % tuple(block.ravel().tolist())).encode("ascii"))
    return b"".join(parts)


def safe_file_stem(name: str, max_length: int = 64) -> str:
    """A portable file name stem from a structure name.

    ASCII letters, digits, ``-``, ``_`` and ``.`` only (accents are dropped, anything else
    becomes ``_``), no leading dot, no Windows device name, at most ``max_length`` characters.

    Parameters
    ----------
    name : str
        Structure name, e.g. ``"Left kidney / cyst"``.
    max_length : int
        Maximum length in characters.

    Returns
    -------
    str
        E.g. ``"Left_kidney_cyst"``; ``"structure"`` if nothing usable is left.
    """
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text)
    text = re.sub(r"_+", "_", text).strip("._- ")[:max_length].rstrip("._- ")
    if not text:
        text = "structure"
    if text.split(".")[0].upper() in _WINDOWS_RESERVED:
        text = "_" + text
    return text
