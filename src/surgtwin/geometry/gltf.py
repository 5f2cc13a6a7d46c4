"""glTF 2.0 binary (GLB) export: one scene holding every structure.

One named node and mesh per structure, a PBR material each (``baseColorFactor`` is linear per the
glTF specification, so the sRGB display colour is converted; the original is kept in the
material's ``extras``). Positions are float32 **millimetres in the chosen LPS/RAS space, not
glTF's metres with +Y up**; no transform is applied so that the numbers match the other formats.
``asset.extras`` records ``space`` and ``units``. Viewers that assume metres show the model 1000
times too large.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.mesh_common import (
    GENERATOR,
    MeshIOError,
    display_name,
    one_line,
    to_space,
)
from surgtwin.imaging.header import PatientInfo


def _srgb_to_linear(color: Sequence[float]) -> list[float]:
    c = np.clip(np.asarray(color, dtype=float).reshape(-1)[:3], 0.0, 1.0)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return [float(v) for v in lin]


def _vertex_normals(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals; (0, 0, 1) where undefined."""
    v = points[faces]
    fn = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    acc = np.zeros_like(points)
    for axis in range(3):
        w = np.repeat(fn[:, axis], 3)
        acc[:, axis] = np.bincount(faces.reshape(-1), weights=w, minlength=len(points))
    length = np.linalg.norm(acc, axis=1, keepdims=True)
    out = np.divide(acc, length, out=np.zeros_like(acc), where=length > 0)
    out[length[:, 0] == 0] = (0.0, 0.0, 1.0)
    return out


def write_glb(
    fh: BinaryIO,
    meshes: list[Mesh],
    space: str,
    patient: PatientInfo | None,
) -> None:
    """One glTF 2.0 binary (GLB) scene: a node, mesh and material per structure."""
    bin_parts: list[bytes] = []
    offset = 0
    views: list[dict] = []
    accessors: list[dict] = []
    gl_meshes: list[dict] = []
    materials: list[dict] = []
    nodes: list[dict] = []

    def add_view(data: bytes, target: int) -> int:
        nonlocal offset
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data), "target": target})
        bin_parts.append(data)
        pad = (-len(data)) % 4
        if pad:
            bin_parts.append(b"\0" * pad)
        offset += len(data) + pad
        return len(views) - 1

    for i, mesh in enumerate(meshes):
        pts = to_space(mesh.points, space).astype("<f4")
        normals = _vertex_normals(pts.astype(np.float64), mesh.faces).astype("<f4")
        idx = mesh.faces.astype("<u4").reshape(-1)
        v_pos = add_view(pts.tobytes(), 34962)  # ARRAY_BUFFER
        v_nrm = add_view(normals.tobytes(), 34962)
        v_idx = add_view(idx.tobytes(), 34963)  # ELEMENT_ARRAY_BUFFER
        a = len(accessors)
        accessors.append(
            {
                "bufferView": v_pos,
                "componentType": 5126,  # FLOAT
                "count": len(pts),
                "type": "VEC3",
                "min": [float(v) for v in pts.min(axis=0)],
                "max": [float(v) for v in pts.max(axis=0)],
            }
        )
        accessors.append(
            {"bufferView": v_nrm, "componentType": 5126, "count": len(pts), "type": "VEC3"}
        )
        accessors.append(
            {"bufferView": v_idx, "componentType": 5125, "count": len(idx), "type": "SCALAR"}
        )
        name = display_name(mesh, i)
        srgb = [float(c) for c in np.clip(np.asarray(mesh.color, dtype=float)[:3], 0, 1)]
        materials.append(
            {
                "name": name,
                "pbrMetallicRoughness": {
                    "baseColorFactor": [*_srgb_to_linear(srgb), 1.0],
                    "metallicFactor": 0.0,
                    "roughnessFactor": 0.6,
                },
                "doubleSided": False,
                "extras": {"display_color_srgb": srgb},
            }
        )
        gl_meshes.append(
            {
                "name": name,
                "primitives": [
                    {
                        "attributes": {"POSITION": a, "NORMAL": a + 1},
                        "indices": a + 2,
                        "material": i,
                        "mode": 4,  # TRIANGLES
                    }
                ],
            }
        )
        nodes.append({"name": name, "mesh": i, "extras": {"role": one_line(mesh.role)}})

    binary = b"".join(bin_parts)
    extras: dict = {
        "space": space,
        "units": "mm",
        "note": (
            f"Vertex positions are patient {space} coordinates in millimetres, written as they "
            "are: no conversion to glTF's metres and +Y-up axes."
        ),
    }
    if patient is not None:
        extras["patient_name"] = one_line(patient.name)
        extras["patient_id"] = one_line(patient.patient_id)
    doc = {
        "asset": {"version": "2.0", "generator": GENERATOR, "extras": extras},
        "scene": 0,
        "scenes": [{"name": f"{GENERATOR} models", "nodes": list(range(len(nodes)))}],
        "nodes": nodes,
        "meshes": gl_meshes,
        "materials": materials,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
    }
    js = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    js += b" " * ((-len(js)) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    if total >= 2**32:
        raise MeshIOError("the scene is larger than the 4 GB a GLB file can hold")
    fh.write(struct.pack("<4sII", b"glTF", 2, total))
    fh.write(struct.pack("<I4s", len(js), b"JSON"))
    fh.write(js)
    fh.write(struct.pack("<I4s", len(binary), b"BIN\0"))
    fh.write(binary)
