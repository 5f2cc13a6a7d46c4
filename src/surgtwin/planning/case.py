"""Building a plan from an image series, and rebuilding what the checks need from a saved plan.

:func:`build_plan` loads one series, segments it with presets (each preset label becomes a
structure with the preset's role), adds critical structures grown from seed points or imported
from mesh files, and builds each label's closed surface (stored in the plan, so that the cuts
and the exact clearance path of later commands use exactly the surface that was shown).

Critical structures by region growing
-------------------------------------
Voxels within an HU window connected (6-neighbourhood) to the seeds (LPS mm), holes filled,
then a 1 mm morphological opening: on noisy CT the grow leaks a few voxels into the soft tissue
at narrow contacts, and the opening cuts those bridges. The default window,
:data:`DEFAULT_CRITICAL_HU` = -50..45 HU, suits CSF (about 0-15 HU) and keeps clear of muscle
and ligament (55-65 HU) at the noise of a typical CT (sigma ~15 HU); give ``hu`` for other
tissues (e.g. contrast-filled vessels). Bone voxels are never taken over by a grown structure.

The bundled phantom
-------------------
A series folder holding ``ground_truth.json`` beside the DICOM files (``sample_dicom``) is the
SurgTwin lumbar phantom: when no critical structure is requested, the spinal canal is grown from
the ground truth's canal centres of every level (L3-L5), named :data:`CANAL_NAME`.

Rebuilding from a saved plan
----------------------------
:class:`CaseGeometry` gives each structure's signed distance field (label structures, from the
label map's mask, refined near the stored surface) and surface mesh. Fields are keyed by the
SHA-256 digests of the label map and the surface, the label value and the grid, and cached
within the process and on disk (:mod:`surgtwin.geometry.field_cache`; the user cache folder,
or ``$SURGTWIN_CACHE_DIR``), so that reopening a plan does not rebuild them. Building one
reports progress and can be cancelled (``CaseGeometry.field(..., progress, cancel)``). A
``CaseGeometry`` follows its plan: a label-map edit or a changed structure (a cut) makes it
recompute what depends on them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from surgtwin.errors import LoadCancelled, SurgTwinError
from surgtwin.geometry.field_cache import FieldCache, default_cache, field_key
from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.sdf import StructureField
from surgtwin.planning.plan import CaseReference, Plan, Structure, mesh_digest
from surgtwin.planning.plan import Implant as PlanImplant

__all__ = [
    "CANAL_NAME",
    "DEFAULT_CRITICAL_HU",
    "CaseError",
    "CaseGeometry",
    "CriticalRequest",
    "build_plan",
    "default_implant_name",
    "grow_structure",
    "phantom_critical_requests",
    "phantom_ground_truth",
    "place_implant",
]

#: HU window of region-grown critical structures when none is given (CSF; see the module notes).
DEFAULT_CRITICAL_HU: tuple[float, float] = (-50.0, 45.0)
#: Opening radius (mm) that cuts the grow's leaks through narrow contacts.
OPENING_MM = 1.0
#: Name of the phantom's spinal canal structure.
CANAL_NAME = "Spinal canal"
GROUND_TRUTH = "ground_truth.json"
_FIELD_CACHE_SIZE = 16

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]
#: Margin (mm) of the fields the checks use around each structure.
FIELD_MARGIN_MM = 10.0


class CaseError(SurgTwinError):
    """A plan cannot be built from the series, or a structure cannot be made."""


@dataclass(frozen=True)
class CriticalRequest:
    """A structure to add besides the presets: grown from seeds, or imported from a mesh file.

    Attributes
    ----------
    name : str
        Structure name (unique in the plan).
    seeds_lps : tuple of (x, y, z)
        Seed points, LPS mm (region growing); empty for a mesh.
    hu : (float, float)
        Region growing window, HU (inclusive).
    mesh_path : str or None
        A surface file (.stl, .obj, .ply, .vtp) whose numbers are LPS mm.
    role : str
        ``"critical"`` (default) or ``"target"``.
    """

    name: str
    seeds_lps: tuple[tuple[float, float, float], ...] = ()
    hu: tuple[float, float] = DEFAULT_CRITICAL_HU
    mesh_path: str | None = None
    role: str = "critical"

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise CaseError("a structure needs a non-empty name")
        if bool(self.seeds_lps) == (self.mesh_path is not None):
            raise CaseError(
                f"structure {self.name!r}: give either seed points (--seed) or a mesh (--mesh)"
            )
        lo, hi = self.hu
        if not lo <= hi:
            raise CaseError(f"structure {self.name!r}: HU range {lo:g},{hi:g} is empty")
        if self.role not in ("critical", "target"):
            raise CaseError(f"structure {self.name!r}: role must be critical or target")


def phantom_ground_truth(series_path: str | os.PathLike) -> dict[str, Any] | None:
    """The bundled phantom's ground truth beside the DICOM files, or None for other series."""
    path = Path(series_path)
    folder = path if path.is_dir() else path.parent
    gt_path = folder / GROUND_TRUTH
    if not gt_path.is_file():
        return None
    try:
        truth = json.loads(gt_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CaseError(f"{gt_path}: cannot read the phantom's ground truth ({exc})") from None
    return truth if isinstance(truth, dict) and isinstance(truth.get("levels"), dict) else None


def phantom_critical_requests(truth: dict[str, Any]) -> list[CriticalRequest]:
    """The phantom's spinal canal, grown from the canal centre of every level (LPS mm)."""
    seeds = tuple(
        tuple(float(c) for c in level["canal"]["centre"])
        for level in truth["levels"].values()
        if isinstance(level, dict) and "canal" in level
    )
    return [CriticalRequest(CANAL_NAME, seeds)] if seeds else []  # type: ignore[arg-type]


def grow_structure(volume, seeds_lps: Sequence[Sequence[float]], hu: tuple[float, float]):
    """Region grow (HU window ``hu``) from LPS seeds, holes filled, opened by 1 mm.

    Returns
    -------
    numpy.ndarray of bool, shape (k, j, i)

    Raises
    ------
    SegmentationError
        A seed lies outside the volume or outside the window (with its neighbours).
    CaseError
        Nothing is left after the opening.
    """
    from surgtwin.segmentation.operations import fill_holes, opening, region_grow

    g = volume.geometry
    for seed in seeds_lps:
        ijk = np.rint(g.lps_to_index(np.asarray(seed, dtype=float)[None, :]))
        if not bool(np.all(g.contains_index(ijk.astype(int)))):
            where = ", ".join(f"{float(v):g}" for v in seed)
            raise CaseError(f"seed ({where}) mm (LPS) lies outside the volume")
    mask = fill_holes(region_grow(volume, seeds_lps, float(hu[0]), float(hu[1])), inplace=True)
    opened = opening(mask, volume.geometry, OPENING_MM)
    if not opened.any():
        raise CaseError(
            f"region growing {hu[0]:g}..{hu[1]:g} HU from the seeds found only a thin region "
            f"({int(mask.sum())} voxels) that a {OPENING_MM:g} mm opening removes"
        )
    return opened


def _label_structure(label, margin_mm: float | None = None) -> Structure:
    return Structure(
        label.name,
        str(label.role),
        tuple(label.color),
        bool(label.visible),
        float(label.opacity),
        margin_mm,
        "label",
        label.value,
    )


def build_plan(
    series_path: str | os.PathLike,
    *,
    series_uid: str | None = None,
    presets: Sequence[str] = ("bone",),
    critical: Sequence[CriticalRequest] | None = None,
    smooth_iterations: int = 20,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    name: str = "Plan",
) -> Plan:
    """A new plan from one series: presets, critical structures and their surfaces.

    The plan's ``name`` is the caller's (the CLI uses the plan file's name): never the DICOM
    folder's name, which may identify the patient.

    Parameters
    ----------
    series_path : str or os.PathLike
        A DICOM folder, file, .zip or DICOMDIR.
    series_uid : str, optional
        Which series (default: the largest loadable).
    presets : sequence of str
        Segmentation presets (:data:`surgtwin.segmentation.PRESETS`), one structure each.
    critical : sequence of CriticalRequest, optional
        Further structures. ``None``: the phantom's spinal canal for the bundled phantom,
        nothing otherwise; an empty sequence: none.
    smooth_iterations : int
        Windowed-sinc smoothing of the label surfaces.
    progress : callable, optional
        ``progress(done, total)`` while loading.
    cancel : callable, optional
        Returns True to stop: checked while loading and between the segmentation and
        surface steps.

    Returns
    -------
    Plan
        Label structures carry their surface mesh (LPS mm); critical structures get the
        default 2 mm margin.

    Raises
    ------
    SurgTwinError
        The series cannot be loaded, a preset finds nothing, a seed is outside the volume, a
        mesh file cannot be read, or a structure name is used twice.
    LoadCancelled
        ``cancel()`` returned True.
    """

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise LoadCancelled("building the plan was cancelled")

    from surgtwin.geometry.mesh_import import import_mesh
    from surgtwin.geometry.surface import labelmap_to_meshes
    from surgtwin.imaging import load
    from surgtwin.segmentation import LabelMap, apply_preset

    if critical is None:
        truth = phantom_ground_truth(series_path)
        critical = phantom_critical_requests(truth) if truth else []
    names = [r.name.lower() for r in critical]
    if len(set(names)) != len(names):
        raise CaseError("two structures have the same name")
    volume = load(series_path, uid=series_uid, progress=progress, cancel=cancel)
    labelmap = LabelMap.for_volume(volume)
    for key in presets:
        check_cancel()
        apply_preset(labelmap, volume, key)
    taken = {n.lower() for n in labelmap.names()}
    for req in critical:
        if req.name.lower() in taken:
            raise CaseError(f"a structure named {req.name!r} exists already (from a preset)")
    mesh_structures: list[Structure] = []
    for req in critical:
        check_cancel()
        if req.mesh_path is not None:
            mesh = import_mesh(req.mesh_path, "LPS", name=req.name, role=req.role)
            if len(mesh.faces) == 0:
                raise CaseError(f"{req.mesh_path}: the mesh has no triangles")
            mesh_structures.append(
                Structure(req.name, req.role, tuple(mesh.color), source="mesh", mesh=mesh)
            )
            continue
        mask = grow_structure(volume, req.seeds_lps, req.hu)
        label = labelmap.new_label(req.name, req.role)
        edit = labelmap.change(f"Grow {req.name}", label.value, mask, label=label, overwrite=False)
        if edit is None or labelmap.voxel_count(label.value) == 0:
            raise CaseError(f"structure {req.name!r}: the grown region lies wholly in other labels")
    values = [v for v in sorted(labelmap.labels) if labelmap.voxel_count(v)]
    meshes = labelmap_to_meshes(
        labelmap, values, smooth_iterations=smooth_iterations, cancel=cancel
    )
    info = volume.info
    case = CaseReference(
        study_uid=info.study_uid,
        series_uids=(info.series_uid,),
        frame_of_reference_uid=info.frame_of_reference_uid,
        source_path=str(Path(series_path).resolve()),
    )
    plan = Plan(name, case, labelmap)
    with plan.batch():
        for value, mesh in zip(values, meshes, strict=True):
            structure = _label_structure(labelmap.labels[value])
            plan.structures.add(dataclasses.replace(structure, mesh=mesh))
        for structure in mesh_structures:
            plan.structures.add(structure)
    return plan


# ---------------------------------------------------------------------- from a saved plan

_FIELDS: OrderedDict[str, StructureField] = OrderedDict()
_DEFAULT = "default"


def _remember(key: str, field: StructureField) -> StructureField:
    _FIELDS[key] = field
    _FIELDS.move_to_end(key)
    while len(_FIELDS) > _FIELD_CACHE_SIZE:
        _FIELDS.popitem(last=False)
    return field


class CaseGeometry:
    """What the checks need of a plan's structures: masks, surfaces and distance fields.

    Parameters
    ----------
    plan : Plan
        A plan (built or loaded); its label map and structures are read, never changed. The
        geometry listens to the plan's events and forgets what a label-map edit or a changed
        structure makes stale.
    cache : FieldCache or None, optional
        The on-disk cache of fields (default: :func:`~surgtwin.geometry.field_cache.
        default_cache`, the user cache folder); None keeps fields in memory only.
    """

    def __init__(self, plan: Plan, cache: FieldCache | str | None = _DEFAULT):
        self.plan = plan
        self._cache = cache
        self._label_digests: dict[int, str] = {}
        self._meshes: dict[str, Mesh] = {}
        plan.events.connect(self._on_plan_event)  # held weakly: no need to disconnect

    def _on_plan_event(self, event) -> None:
        if event.name in ("labelmap", "labelmap_voxels"):
            self._label_digests.clear()
            self._meshes.clear()
        elif event.name == "structures":
            self._meshes.clear()

    @property
    def disk_cache(self) -> FieldCache | None:
        """The on-disk field cache in use (None: none)."""
        return default_cache() if self._cache == _DEFAULT else self._cache  # type: ignore[return-value]

    def structure(self, name: str) -> Structure:
        """A structure by name (case-insensitive); CaseError names the known ones."""
        if name in self.plan.structures:
            return self.plan.structures[name]
        for key, s in self.plan.structures.items():
            if key.lower() == name.lower():
                return s
        known = ", ".join(repr(k) for k in self.plan.structures) or "none"
        raise CaseError(f"no structure {name!r} in the plan (structures: {known})")

    def mask(self, structure: Structure) -> np.ndarray | None:
        """The voxel mask of a structure on the label map's grid: a label's voxels, or the
        voxels inside a mesh structure's surface; None without a grid."""
        lm = self.plan.labelmap
        if lm is None:
            return None
        if structure.source == "label":
            return np.asarray(lm.array) == structure.label_value
        if structure.mesh is None:
            return None
        from surgtwin.geometry.surface import mesh_to_mask

        return mesh_to_mask(structure.mesh, lm.geometry)

    def mesh(self, structure: Structure) -> Mesh:
        """The structure's closed surface, LPS mm: stored in the plan, or built from its mask."""
        if structure.mesh is not None:
            return structure.mesh
        mesh = self._meshes.get(structure.name)
        if mesh is None:
            from surgtwin.geometry.surface import mask_to_mesh

            mask = self.mask(structure)
            if mask is None or not mask.any():
                raise CaseError(f"structure {structure.name!r} has neither a surface nor voxels")
            assert self.plan.labelmap is not None
            mesh = mask_to_mesh(
                mask,
                self.plan.labelmap.geometry,
                name=structure.name,
                color=structure.color,
                role=structure.role,
            )
            self._meshes[structure.name] = mesh
        return mesh

    def field_key(self, structure: Structure) -> str | None:
        """The cache key of a structure's field (None without a grid or a surface): a digest of
        the structure's own voxels (an edit of another label keeps it), the grid, the label
        value, the surface and the build margin."""
        lm = self.plan.labelmap
        if lm is None:
            return None
        if structure.source == "label":
            value = int(structure.label_value or 0)
            voxels = self._label_digests.get(value)
            if voxels is None:
                from surgtwin.segmentation.editing import label_digest

                voxels = self._label_digests[value] = label_digest(lm.array, value)
        elif structure.mesh is not None:
            voxels = "mesh"
        else:
            return None
        g = lm.geometry
        surface = structure.mesh
        return field_key(
            "structure-field",
            voxels,
            [int(v) for v in g.shape],
            [float(v) for v in g.spacing],
            [float(v) for v in g.origin],
            np.asarray(g.direction, dtype=float).ravel().tolist(),
            int(structure.label_value or 0),
            None if surface is None else mesh_digest(surface),
            FIELD_MARGIN_MM,
        )

    def field(
        self,
        structure: Structure,
        *,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
    ) -> StructureField | None:
        """The signed distance field (mm, negative inside) of a label structure; None for a
        mesh structure or an empty label.

        Cached within the process and on disk (see the module notes); a build takes up to tens
        of seconds for a large bone.

        Parameters
        ----------
        structure : Structure
        progress : callable, optional
            ``progress(done, total)`` while building (once, ``total`` of ``total``, on a
            cache hit).
        cancel : callable, optional
            Returns True to stop the build (:class:`~surgtwin.errors.LoadCancelled`).

        Raises
        ------
        LoadCancelled
            ``cancel()`` returned True; nothing is cached.
        """
        key = self.field_key(structure)
        if key is None:
            return None
        lm = self.plan.labelmap
        assert lm is not None
        field = _FIELDS.get(key)
        if field is not None:
            _FIELDS.move_to_end(key)
            return field
        mask = self.mask(structure)
        assert mask is not None
        if not mask.any():
            return None
        disk = self.disk_cache
        surface = structure.mesh
        if disk is not None:
            field = disk.get(key, surface)
            if field is not None:
                if progress is not None:
                    progress(1, 1)
                return _remember(key, field)
        field = StructureField.from_mask(
            mask,
            lm.geometry,
            FIELD_MARGIN_MM,
            surface=surface,
            name=structure.name,
            progress=progress,
            cancel=cancel,
        )
        if disk is not None:
            disk.put(key, field)
        return _remember(key, field)


# ---------------------------------------------------------------------- implants


def default_implant_name(plan: Plan, kind: str) -> str:
    """``"Pedicle screw <n>"`` (the kind in words) with the first number not yet used."""
    base = kind.replace("_", " ").capitalize()
    n = 1
    while f"{base} {n}" in plan.implants:
        n += 1
    return f"{base} {n}"


def place_implant(
    plan: Plan,
    kind: str,
    entry_lps: Sequence[float],
    target_lps: Sequence[float],
    *,
    diameter_mm: float | None = None,
    length_mm: float | None = None,
    name: str | None = None,
    catalogue=None,
    spec_key: str | None = None,
) -> tuple[PlanImplant, Any]:
    """Add a catalogue implant along a trajectory to the plan.

    Parameters
    ----------
    plan : Plan
    kind : str
        Catalogue kind (``"pedicle_screw"``, ...).
    entry_lps, target_lps : sequence of 3 float
        Entry and aim point, LPS mm; the tip lands ``length`` mm from the entry towards the
        target (:func:`surgtwin.planning.implants.pose_from_trajectory`).
    diameter_mm, length_mm : float, optional
        Wanted size (mm); the nearest catalogue size is used (diameter first, then length).
        Without a length, the catalogue length nearest to the entry-target distance.
    name : str, optional
        Default :func:`default_implant_name`.
    catalogue : Catalogue, optional
        Default: the built-in catalogue.
    spec_key : str, optional
        Use this catalogue model (of ``kind``) instead of the nearest size, e.g. one of the
        user's mesh-file implants.

    Returns
    -------
    (plan.Implant, ImplantSpec)
        The record added and the catalogue model used.

    Raises
    ------
    CaseError
        Unknown kind or model, name in use, or entry equal to target.
    """
    from surgtwin.planning.implants import Catalogue, pose_from_trajectory, record_parameters

    cat = catalogue or Catalogue.builtin()
    if kind not in cat.kinds():
        raise CaseError(f"unknown implant type {kind!r}; known: {', '.join(cat.kinds())}")
    entry = np.asarray(entry_lps, dtype=float)
    target = np.asarray(target_lps, dtype=float)
    span = float(np.linalg.norm(target - entry))
    if span < 1e-6:
        raise CaseError("entry and target are the same point; a trajectory needs two points")
    for label, value in (("diameter", diameter_mm), ("length", length_mm)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise CaseError(f"the {label} must be a positive number of mm, not {value!r}")
    if spec_key is not None:
        if spec_key not in cat or cat[spec_key].kind != kind:
            raise CaseError(f"the catalogue has no {kind!r} implant {spec_key!r}")
        spec = cat[spec_key]
    else:
        spec = cat.nearest(kind, diameter_mm, span if length_mm is None else length_mm)
    if name is None:
        name = default_implant_name(plan, kind)
    elif not name.strip():
        raise CaseError("an implant needs a non-empty name")
    elif name in plan.implants:
        raise CaseError(f"an implant named {name!r} exists already")
    pose = pose_from_trajectory(entry, target, spec.length_mm)
    record = PlanImplant(name, kind, spec.key, record_parameters(spec), pose)
    plan.implants.add(record)
    return record, spec
