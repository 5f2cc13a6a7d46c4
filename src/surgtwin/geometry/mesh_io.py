"""Export and import of surface meshes: STL, OBJ, PLY, VTP, glTF binary (GLB) and 3MF.

Coordinates
-----------
SurgTwin keeps every mesh in patient LPS millimetres. Files can be written in LPS or in RAS
(3D Slicer's world space): RAS is LPS with x and y negated. That is a rotation by 180 degrees
about the z axis (determinant +1), so triangles keep their winding and normals stay outward.
Every file says which space it is in: ``SPACE=LPS`` or ``SPACE=RAS`` in the binary STL header
(as 3D Slicer writes it), a comment in OBJ and PLY, field data ``SPACE`` in VTP, the asset's
``extras`` in GLB and a namespaced metadata entry in 3MF.

Reading, the caller states the file's space explicitly; a SPACE marker in the file that
contradicts it is an error, never silently overridden.

Files
-----
``stl``
    Binary, float32, one file per structure; the 80-byte header is
    ``SurgTwin mesh, units=mm, SPACE=LPS`` padded with spaces; no colour, no patient data.
``obj``
    Text (6 decimals, i.e. 1 nm), one ``.obj`` plus one ``.mtl`` (diffuse colour ``Kd``) per
    structure.
``ply``
    Binary little endian, float32 positions, per-vertex uchar RGB colour.
``vtp``
    VTK XML PolyData (appended, zlib), float64 positions; field data ``SPACE``, ``Name``,
    ``Role``, ``Color``, ``Units``.
``glb``
    One glTF 2.0 binary scene for all structures, one named node and mesh per structure, a PBR
    material each (``baseColorFactor`` is linear per the glTF specification, so the sRGB display
    colour is converted; the original is kept in the material's ``extras``). Positions are
    float32 **millimetres in the chosen LPS/RAS space, not glTF's metres with +Y up**; no
    transform is applied so that the numbers match the other formats. ``asset.extras`` records
    ``space`` and ``units``. Viewers that assume metres show the model 1000 times too large.
``3mf``
    One 3MF package, ``unit="millimeter"``, one object per structure, colour as a core
    ``basematerials`` display colour. Positions stay in patient space (often negative); slicers
    place the parts on their build plate themselves.

Patient identifiers never appear in file names. They appear in the file content only with
``include_patient=True``, and then only where the format has metadata or comments (OBJ, PLY, VTP,
GLB, 3MF; never STL).

Every file is written to a temporary name in the destination folder, flushed and fsynced, and
renamed over the final name only after all files of the export have been written; on any error
or interruption the temporary files are removed, so no half-written file is ever left behind
(:mod:`surgtwin.fileio`).

Import reads STL (binary and ASCII; identical vertices are merged, so a closed STL becomes a
watertight mesh), OBJ (own parser: polygons fan-triangulated, negative indices, colour from the
``.mtl`` next to the file), PLY (trimesh's reader) and VTP (own pure-Python reader, because
VTK's C++ reader can abort the whole process on some damaged files). Sizes found in a file are
checked against the bytes present before anything is allocated, so damaged files end in
:class:`MeshIOError`.

Modules
-------
This module is the public interface; the work is done in :mod:`~surgtwin.geometry.mesh_export`
(STL, OBJ, PLY and the export itself), :mod:`~surgtwin.geometry.gltf` (GLB),
:mod:`~surgtwin.geometry.threemf` (3MF), :mod:`~surgtwin.geometry.vtp` (VTP, both ways),
:mod:`~surgtwin.geometry.mesh_import` (import) and :mod:`~surgtwin.geometry.mesh_common`.
"""

from surgtwin.geometry.mesh_common import (
    FORMATS,
    GENERATOR,
    IMPORT_FORMATS,
    SPACES,
    MeshIOError,
    safe_file_stem,
)
from surgtwin.geometry.mesh_export import export_meshes
from surgtwin.geometry.mesh_import import import_mesh

__all__ = [
    "FORMATS",
    "GENERATOR",
    "IMPORT_FORMATS",
    "SPACES",
    "MeshIOError",
    "export_meshes",
    "import_mesh",
    "safe_file_stem",
]
