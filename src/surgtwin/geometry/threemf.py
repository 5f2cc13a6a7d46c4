"""3MF export: one package holding every structure, for 3D printing.

``unit="millimeter"``, one object per structure, colour as a core ``basematerials`` display
colour (3MF Core Specification 1.x). Positions stay in patient space (often negative); slicers
place the parts on their build plate themselves. The coordinate space is a namespaced metadata
entry (``st:CoordinateSpace``).
"""

from __future__ import annotations

import zipfile
from typing import BinaryIO
from xml.sax.saxutils import escape, quoteattr

from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.mesh_common import (
    GENERATOR,
    display_name,
    format_rows,
    one_line,
    rgb8,
    to_space,
)
from surgtwin.imaging.header import PatientInfo

_3MF_CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
_3MF_OURS = "urn:surgtwin:3mf:metadata"


def write_3mf(
    fh: BinaryIO,
    meshes: list[Mesh],
    space: str,
    patient: PatientInfo | None,
) -> None:
    """One 3MF package (core specification 1.x): unit mm, an object per structure."""
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="model" '
        'ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
        "</Types>\n"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Target="/3D/3dmodel.model" Id="rel0" '
        'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>'
        "</Relationships>\n"
    )
    meta = {
        "Application": GENERATOR,
        "Title": f"{GENERATOR} models",
        "Description": f"Patient {space} coordinates in millimetres",
        "st:CoordinateSpace": space,
    }
    if patient is not None:
        meta["st:PatientName"] = one_line(patient.name)
        meta["st:PatientID"] = one_line(patient.patient_id)
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<model unit="millimeter" xml:lang="en-US" xmlns="{_3MF_CORE}" xmlns:st="{_3MF_OURS}">\n'
    )
    head += "".join(
        f"<metadata name={quoteattr(k)}>{escape(v)}</metadata>\n" for k, v in meta.items()
    )
    head += '<resources>\n<basematerials id="1">\n'
    for i, mesh in enumerate(meshes):
        r, g, b = rgb8(mesh.color)
        name = display_name(mesh, i)
        head += f'<base name={quoteattr(name)} displaycolor="#{r:02X}{g:02X}{b:02X}FF"/>\n'
    head += "</basematerials>\n"
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", content_types)
        zf.writestr("_rels/.rels", rels)
        with zf.open("3D/3dmodel.model", "w", force_zip64=True) as out:
            out.write(head.encode("utf-8"))
            for i, mesh in enumerate(meshes):
                name = display_name(mesh, i)
                out.write(
                    f'<object id="{i + 2}" type="model" name={quoteattr(name)} pid="1" '
                    f'pindex="{i}">\n<mesh>\n<vertices>\n'.encode()
                )
                pts = to_space(mesh.points, space)
                out.write(format_rows('<vertex x="%.6f" y="%.6f" z="%.6f"/>\n', pts))
                out.write(b"</vertices>\n<triangles>\n")
                out.write(format_rows('<triangle v1="%d" v2="%d" v3="%d"/>\n', mesh.faces))
                out.write(b"</triangles>\n</mesh>\n</object>\n")
            out.write(b"</resources>\n<build>\n")
            for i in range(len(meshes)):
                out.write(f'<item objectid="{i + 2}"/>\n'.encode())
            out.write(b"</build>\n</model>\n")
