"""Exporting a plan: its structures' and implants' surfaces, its segmentation.

The workstation's Export panel and scripts call these functions; they know nothing of Qt and run
on a worker thread (``progress(done, total)`` reports, ``cancel()`` asks to stop).

* :func:`export_plan_meshes` writes the chosen structures (the surfaces the 3-D view shows) and
  implants (their catalogue model at the planned pose) in one of the mesh formats of
  :mod:`surgtwin.geometry.mesh_io`, in LPS or RAS, and checks every model for 3D printing
  (:func:`surgtwin.geometry.printcheck.check_print`).
* :func:`write_segmentation` writes the label map as a 3D Slicer ``.seg.nrrd``, NIfTI or DICOM
  SEG, chosen by the file name.

Every file is written atomically by the core writers (temporary file, fsync, rename), so a
failure never leaves a half-written file. Patient identifiers are written only with
``include_patient=True``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from surgtwin.errors import LoadCancelled, SurgTwinError
from surgtwin.geometry.mesh import Mesh
from surgtwin.imaging.header import PatientInfo
from surgtwin.imaging.volume import Volume
from surgtwin.planning.case import CaseGeometry
from surgtwin.planning.plan import Plan

__all__ = [
    "SEGMENTATION_SUFFIXES",
    "ExportError",
    "ExportedMesh",
    "export_plan_meshes",
    "plan_meshes",
    "segmentation_suffix",
    "write_segmentation",
]

#: File endings :func:`write_segmentation` understands, with what they are.
SEGMENTATION_SUFFIXES = {
    ".seg.nrrd": "3D Slicer segmentation",
    ".nii.gz": "NIfTI (compressed)",
    ".nii": "NIfTI",
    ".dcm": "DICOM SEG",
}

# thinnest-wall rays per model: enough for the 1st percentile, fast on a whole spine
_WALL_SAMPLES = 1000


class ExportError(SurgTwinError):
    """An export that cannot be done as asked (nothing chosen, unknown name, no source images)."""


@dataclass
class ExportedMesh:
    """One model written by :func:`export_plan_meshes`.

    Attributes
    ----------
    name : str
        The structure's or implant's name in the plan.
    kind : str
        ``"structure"`` or ``"implant"``.
    files : list of pathlib.Path
        The files holding it (OBJ: the ``.obj`` and its ``.mtl``; GLB/3MF: the one shared file).
    triangles : int
    volume_mm3 : float
        Enclosed volume (mm³).
    watertight : bool
        Closed surface: no open and no non-manifold edge.
    problems : list of str
        What stands between the model and a good 3D print, one sentence each (empty: none).
    """

    name: str
    kind: str
    files: list[Path] = field(default_factory=list)
    triangles: int = 0
    volume_mm3: float = 0.0
    watertight: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def printable(self) -> bool:
        """Watertight and without any print problem."""
        return self.watertight and not self.problems


def _check_cancel(cancel: Callable[[], bool] | None) -> None:
    if cancel is not None and cancel():
        raise LoadCancelled("cancelled by the user")


def _implant_mesh(plan: Plan, name: str) -> Mesh:
    from surgtwin.planning.checks import implant_samples

    record = plan.implants[name]
    local = implant_samples(record).mesh
    mesh = local.transformed(record.pose)
    mesh.name, mesh.role = record.name, "implant"
    mesh.metadata["implant"] = record.spec_key or record.kind
    return mesh


def plan_meshes(
    plan: Plan,
    structures: Iterable[str] = (),
    implants: Iterable[str] = (),
    *,
    geometry: CaseGeometry | None = None,
) -> list[tuple[str, Mesh]]:
    """The surfaces of the named structures and implants, in patient LPS mm.

    Parameters
    ----------
    plan : Plan
    structures : iterable of str
        Structure names; each gives the surface the 3-D view shows (stored, or built from its
        label), named and coloured as the structure.
    implants : iterable of str
        Implant names; each gives its catalogue model moved to the planned pose.
    geometry : CaseGeometry, optional
        Reuse the surfaces already built for the plan (the app's session holds one).

    Returns
    -------
    list of (kind, Mesh)
        ``kind`` is ``"structure"`` or ``"implant"``, in the order asked (structures first).

    Raises
    ------
    ExportError
        A name that is not in the plan.
    CaseError
        A structure without voxels or surface, an implant without a model.
    """
    geo = geometry if geometry is not None and geometry.plan is plan else CaseGeometry(plan)
    out: list[tuple[str, Mesh]] = []
    for name in structures:
        if name not in plan.structures:
            raise ExportError(f"there is no structure {name!r} in the plan")
        s = plan.structures[name]
        src = geo.mesh(s)
        mesh = Mesh(src.points, src.faces, s.name, s.color, s.role, dict(src.metadata))
        out.append(("structure", mesh))
    for name in implants:
        if name not in plan.implants:
            raise ExportError(f"there is no implant {name!r} in the plan")
        out.append(("implant", _implant_mesh(plan, name)))
    return out


def export_plan_meshes(
    plan: Plan,
    out_dir: str | os.PathLike,
    *,
    structures: Sequence[str] = (),
    implants: Sequence[str] = (),
    fmt: str = "stl",
    space: str = "LPS",
    patient: PatientInfo | None = None,
    include_patient: bool = False,
    base_name: str | None = None,
    geometry: CaseGeometry | None = None,
    check: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[ExportedMesh]:
    """Write the chosen structures and implants of ``plan`` as mesh files, checked for printing.

    Parameters
    ----------
    plan : Plan
    out_dir : str or os.PathLike
        Destination folder (created if missing).
    structures, implants : sequence of str
        Names of the structures and implants to write (at least one in all).
    fmt : {"stl", "obj", "ply", "vtp", "glb", "3mf"}
        File format (see :mod:`surgtwin.geometry.mesh_io`).
    space : {"LPS", "RAS"}
        Coordinates written (RAS: x and y negated, as 3D Slicer's world).
    patient : PatientInfo, optional
        Needed only with ``include_patient``.
    include_patient : bool
        Put the patient's name and ID into the formats' metadata (never into STL, never into
        file names). Default: anonymised.
    base_name : str, optional
        GLB/3MF file name, or prefix of the other formats' file names.
    geometry : CaseGeometry, optional
        Reuse already built structure surfaces.
    check : bool
        Run the 3D print check on every model (watertight, orientation, thin walls).
    progress, cancel : callable, optional
        ``progress(done, total)``; ``cancel()`` returning True stops before the files are
        written (nothing is written then).

    Returns
    -------
    list of ExportedMesh
        One per model, in the order of ``structures`` then ``implants``.

    Raises
    ------
    ExportError
        Nothing chosen, an unknown name, or identifiers asked for without the patient's details.
    MeshIOError
        A file cannot be written (the message names it); no partial file is left behind.
    LoadCancelled
        ``cancel()`` returned True.
    """
    from surgtwin.geometry.mesh_io import export_meshes
    from surgtwin.geometry.printcheck import check_print

    if not structures and not implants:
        raise ExportError("choose at least one structure or implant to export")
    if include_patient and patient is None:
        raise ExportError(
            "the patient's details are not available (the plan's images are not loaded), "
            "so they cannot be included; export anonymised instead"
        )
    fmt = str(fmt).strip().lower().lstrip(".")
    report = progress or (lambda _d, _t: None)
    models = plan_meshes(plan, structures, implants, geometry=geometry)
    total = len(models) + 1
    rows: list[ExportedMesh] = []
    for n, (kind, mesh) in enumerate(models):
        _check_cancel(cancel)
        report(n, total)
        row = ExportedMesh(mesh.name, kind, triangles=mesh.n_triangles)
        row.volume_mm3 = mesh.volume_mm3()
        if check:
            pr = check_print(mesh, wall_samples=_WALL_SAMPLES)
            row.watertight, row.problems = pr.watertight, list(pr.problems)
        else:
            row.watertight = mesh.is_watertight()
        rows.append(row)
    _check_cancel(cancel)
    report(len(models), total)
    files = export_meshes(
        [m for _k, m in models],
        out_dir,
        fmt=fmt,
        space=space,
        patient=patient,
        include_patient=include_patient,
        base_name=base_name,
    )
    per_mesh = {"glb": 0, "3mf": 0, "obj": 2}.get(fmt, 1)
    for i, row in enumerate(rows):
        row.files = list(files) if per_mesh == 0 else files[i * per_mesh : (i + 1) * per_mesh]
    report(total, total)
    return rows


def segmentation_suffix(path: str | os.PathLike) -> str | None:
    """The :data:`SEGMENTATION_SUFFIXES` key that ``path`` ends with (None: unknown)."""
    name = Path(path).name.lower()
    return next((s for s in SEGMENTATION_SUFFIXES if name.endswith(s)), None)


def _source_volume(plan: Plan) -> Volume:
    from surgtwin.imaging import load

    source = plan.case.source_path
    if not source or not Path(source).exists():
        where = f" ({source})" if source else ""
        raise ExportError(
            f"a DICOM SEG needs the plan's original DICOM images, which were not found{where}; "
            "open the plan where its images are, or export .seg.nrrd or NIfTI instead"
        )
    uid = plan.case.series_uids[0] if plan.case.series_uids else None
    return load(source, uid=uid)


def write_segmentation(
    plan: Plan,
    path: str | os.PathLike,
    *,
    volume: Volume | None = None,
    include_patient: bool = False,
) -> Path:
    """Write the plan's label map; the format follows the file name.

    Parameters
    ----------
    plan : Plan
        Its label map is written (names, colours, roles).
    path : str or os.PathLike
        ``*.seg.nrrd`` (3D Slicer), ``*.nii`` / ``*.nii.gz`` (NIfTI plus a ``.labels.json``
        label table) or ``*.dcm`` (DICOM SEG referencing the source images).
    volume : Volume, optional
        The volume the labels were drawn on (DICOM SEG only); when None, it is loaded from the
        plan's source path (``plan.case.source_path``).
    include_patient : bool
        DICOM SEG only: copy the patient's identity from the source images (the other formats
        never hold any). Default: anonymised.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ExportError
        No label map, an unknown file ending, or (DICOM SEG) the source images are missing.
    SegIOError
        The file cannot be written (the message names it).
    """
    from surgtwin.segmentation import seg_io

    lm = plan.labelmap
    if lm is None:
        raise ExportError("the plan has no segmentation to export")
    path = Path(path)
    suffix = segmentation_suffix(path)
    if suffix is None:
        raise ExportError(
            f"{path}: unknown segmentation format (use {', '.join(SEGMENTATION_SUFFIXES)})"
        )
    if suffix == ".seg.nrrd":
        return seg_io.write_seg_nrrd(lm, path)
    if suffix in (".nii", ".nii.gz"):
        return seg_io.write_nifti(lm, path)
    if volume is None or volume.geometry.shape != lm.geometry.shape:
        volume = _source_volume(plan)
    return seg_io.write_dicom_seg(lm, volume, path, include_patient=include_patient)
