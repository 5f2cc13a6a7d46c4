"""One-click segmentation presets for CT (HU ranges) and MR (Otsu).

HU ranges follow common practice (e.g. InVesalius's bone preset starts at 226 HU; Hounsfield
values of tissues: Buzug, *Computed Tomography*, Springer 2008, ch. 1). Bone keeps only islands
that contain cortical bone (>= 600 HU), which leaves out contrast-filled vessels and the heart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from surgtwin.imaging.volume import Volume
from surgtwin.segmentation import operations as ops
from surgtwin.segmentation.labelmap import LabelEdit, LabelMap, Role, SegmentationError

BONE_MIN_HU = 226.0
CORTICAL_MIN_HU = 600.0
CORTICAL_MIN_MM3 = 20.0
# Bone islands are at least this fraction cortex; contrast-filled heart chambers and vessels
# reach cortical values only in a few voxels of a dense bolus (measured: bone 2-28 %, heart 0.8 %).
CORTICAL_MIN_FRACTION = 0.02
ISLAND_MIN_MM3 = 100.0
BODY_MIN_HU = -400.0
SOFT_TISSUE_HU = 40.0
BODY_OPENING_MM = 4.0


@dataclass(frozen=True)
class Preset:
    """A named recipe: volume -> mask, with the label it makes."""

    key: str
    name: str
    role: Role
    modality: str  # "CT", "MR" or "" for any
    description: str
    make: Callable[[Volume], np.ndarray]
    # regions that contain other structures (body, soft tissue) only claim unlabelled voxels
    overwrite: bool = True


def _require_hu(volume: Volume, key: str) -> None:
    if volume.info.modality == "CT" and volume.info.units != "HU":
        raise SegmentationError(
            f"the {key} preset uses Hounsfield units, but this CT's values are not verified HU "
            "(no rescale); use a threshold range instead"
        )
    if volume.info.modality not in ("CT", ""):
        raise SegmentationError(f"the {key} preset is for CT; this is {volume.info.modality}")


def bone(volume: Volume) -> np.ndarray:
    """Cortical and cancellous bone: >= 226 HU, islands with cortex, cavities filled.

    An island is bone when at least 20 mm3 and 2 % of it is cortical (>= 600 HU).
    """
    _require_hu(volume, "bone")
    arr = volume.array
    mask = arr >= BONE_MIN_HU
    box = _box_with_cortex(mask, arr)
    if box is None:
        return np.zeros_like(mask)
    # Work on the bounding box only; free each intermediate as soon as it is used (peak memory
    # stays within a few times the volume's bytes).
    img = ops._sitk(mask[box], (1, 1, 1))
    del mask
    labels, counts = ops._components_from_image(img)
    del img
    voxel = volume.geometry.voxel_volume_mm3
    dense_voxels = arr[box] >= CORTICAL_MIN_HU
    dense = np.bincount(
        sitk.GetArrayViewFromImage(labels)[dense_voxels], minlength=counts.size + 1
    )[1:]
    del dense_voxels
    keep = (
        np.flatnonzero(
            (counts * voxel >= ISLAND_MIN_MM3)
            & (dense * voxel >= CORTICAL_MIN_MM3)
            & (dense >= CORTICAL_MIN_FRACTION * counts)
        )
        + 1
    )
    selected = ops._select(labels, keep, len(counts))
    del labels
    out = np.zeros(arr.shape, dtype=bool)
    out[box] = selected
    del selected
    ops.fill_holes(out, inplace=True, within=box)
    return _peel_to_half_maximum(out, arr, within=box)


def _peel_to_half_maximum(
    mask: np.ndarray, arr: np.ndarray, passes: int = 1, within: ops.Box | None = None
) -> np.ndarray:
    """Move the outer surface of bone to the half-maximum of its edge.

    A fixed low threshold (226 HU, needed to keep cancellous bone) puts the surface where the
    blurred edge of 1000+ HU cortex has only faded to ~15 %: the bone comes out too thick. The
    true edge lies where the value is half-way between the soft tissue outside and the cortex
    inside (full width at half maximum; e.g. Prevrhal et al., Phys Med Biol 44(3), 1999). So each
    outer boundary voxel (6-neighbour outside the filled bone) is dropped when its value is below
    ``(local cortical peak + soft tissue) / 2``, the peak taken over its 3x3x3 neighbourhood
    inside the bone. Cancellous bone inside the cortex is never touched.
    """
    box = ops.bbox(mask, within=within)
    if box is None:
        return mask
    # padded by one voxel of "outside" so neighbours never need bounds checks
    sub = np.pad(mask[box], 1)
    hu = np.pad(arr[box], 1, constant_values=-1024)
    inside_hu = np.where(sub, hu, np.int16(-1024)).ravel()
    flat_sub = sub.ravel()
    n1, n2 = sub.shape[1] * sub.shape[2], sub.shape[2]
    face = np.array([n1, -n1, n2, -n2, 1, -1])
    cube = np.array(
        [dk * n1 + dj * n2 + di for dk in (-1, 0, 1) for dj in (-1, 0, 1) for di in (-1, 0, 1)]
    )
    candidates = np.flatnonzero(flat_sub)
    for _ in range(passes):
        # outer boundary: bone voxels with a face neighbour outside
        outside_next = ~flat_sub[candidates[:, None] + face[None, :]]
        boundary = candidates[outside_next.any(axis=1)]
        if boundary.size == 0:
            break
        peak = inside_hu[boundary[:, None] + cube[None, :]].max(axis=1)
        threshold = np.maximum(BONE_MIN_HU, (peak.astype(np.float32) + SOFT_TISSUE_HU) / 2)
        drop = boundary[hu.ravel()[boundary] < threshold]
        if drop.size == 0:
            break
        flat_sub[drop] = False
        inside_hu[drop] = -1024
        # next pass: the remaining boundary voxels and the bone neighbours of dropped ones
        # (duplicates are harmless: a voxel is judged the same way twice)
        near = (drop[:, None] + face[None, :]).ravel()
        candidates = np.concatenate([boundary[flat_sub[boundary]], near[flat_sub[near]]])
    mask[box] = sub[1:-1, 1:-1, 1:-1]
    return mask


def _box_with_cortex(mask: np.ndarray, arr: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box of the candidate islands that can be bone.

    Regions of the axial projection with no cortical voxel anywhere along z (the CT table, tubes,
    contrast far from bone) are left out before the 3D analysis, which then runs on a smaller box.
    """
    footprint = mask.any(axis=0)
    if not footprint.any():
        return None
    dense = arr.max(axis=0) >= CORTICAL_MIN_HU
    regions = sitk.ConnectedComponent(sitk.GetImageFromArray(footprint.view(np.uint8)), True)
    labels = sitk.GetArrayFromImage(regions)
    with_cortex = np.unique(labels[dense & footprint])
    if with_cortex.size == 0:
        return None
    keep = np.isin(labels, with_cortex)
    jj = np.flatnonzero(keep.any(axis=1))
    ii = np.flatnonzero(keep.any(axis=0))
    rows = slice(int(jj[0]), int(jj[-1]) + 1)
    cols = slice(int(ii[0]), int(ii[-1]) + 1)
    kk = np.flatnonzero(mask[:, rows, cols].any(axis=(1, 2)))
    return (slice(int(kk[0]), int(kk[-1]) + 1), rows, cols)


def _fill_slices(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    for k in range(mask.shape[0]):
        if mask[k].any():
            out[k] = sitk.GetArrayFromImage(
                sitk.BinaryFillhole(sitk.GetImageFromArray(mask[k].view(np.uint8)))
            ).astype(bool)
    return out


def body(volume: Volume) -> np.ndarray:
    """The body outline (its surface is the skin): the largest region above -400 HU, filled
    slice by slice (lungs and bowel gas are inside).

    The table, cushions and immobilisation shells touch the skin and often pass -400 HU, so the
    region is first opened by a 4 mm ball (which cuts such thin contacts), the largest part is
    kept, and the voxels removed by the opening are given back where they touch it
    (reconstruction by a 4 mm dilation within the original region).
    """
    _require_hu(volume, "skin")
    region = volume.array >= BODY_MIN_HU
    radius = [max(1, int(np.ceil(BODY_OPENING_MM / s))) for s in volume.spacing]
    img = sitk.GetImageFromArray(region.view(np.uint8))
    opened = sitk.BinaryMorphologicalOpening(img, radius, sitk.sitkBall)
    del img
    core = ops.keep_largest(sitk.GetArrayViewFromImage(opened).view(bool))
    del opened
    grown = sitk.BinaryDilate(sitk.GetImageFromArray(core.view(np.uint8)), radius, sitk.sitkBall)
    mask = sitk.GetArrayFromImage(grown).view(bool) & region
    return _fill_slices(mask)


def soft_tissue(volume: Volume) -> np.ndarray:
    """Soft tissue -100..200 HU inside the body."""
    _require_hu(volume, "soft tissue")
    return ops.threshold(volume, -100, 200) & body(volume)


def lung(volume: Volume) -> np.ndarray:
    """Lungs and airways: -1000..-400 HU inside the body, islands >= 1000 mm3."""
    _require_hu(volume, "lung")
    inside = ops.threshold(volume, -1000, -400) & body(volume)
    return ops.remove_small(inside, volume.geometry, 1000.0)


def vessels(volume: Volume) -> np.ndarray:
    """Contrast-filled vessels: 180..600 HU, not bone, islands >= 100 mm3."""
    _require_hu(volume, "vessel")
    candidates = ops.threshold(volume, 180, 600) & ~ops.grow(bone(volume), volume.geometry, 1.0)
    return ops.remove_small(candidates, volume.geometry, ISLAND_MIN_MM3)


def mr_foreground(volume: Volume) -> np.ndarray:
    """MR foreground by Otsu's threshold, largest island, cavities filled."""
    return ops.fill_holes(ops.keep_largest(ops.otsu(volume, 2)))


def mr_bright(volume: Volume) -> np.ndarray:
    """The brightest of three multi-Otsu classes (e.g. fat or contrast on T1)."""
    return ops.otsu(volume, 3)


PRESETS: dict[str, Preset] = {
    p.key: p
    for p in (
        Preset("bone", "Bone", Role.BONE, "CT", "cortical + cancellous bone, >= 226 HU", bone),
        Preset("skin", "Skin", Role.SKIN, "CT", "body outline, > -400 HU, filled", body, False),
        Preset(
            "soft",
            "Soft tissue",
            Role.OTHER,
            "CT",
            "-100..200 HU inside the body",
            soft_tissue,
            False,
        ),
        Preset("lung", "Lung and airway", Role.OTHER, "CT", "-1000..-400 HU inside the body", lung),
        Preset(
            "vessels", "Vessels", Role.CRITICAL, "CT", "contrast 180..600 HU, not bone", vessels
        ),
        Preset(
            "mr-foreground", "Foreground", Role.OTHER, "MR", "Otsu foreground", mr_foreground, False
        ),
        Preset(
            "mr-bright", "Bright tissue", Role.OTHER, "MR", "brightest multi-Otsu class", mr_bright
        ),
    )
}


def preset(key: str) -> Preset:
    try:
        return PRESETS[key]
    except KeyError:
        raise SegmentationError(
            f"unknown preset {key!r}; choose one of: {', '.join(PRESETS)}"
        ) from None


def apply_preset(labelmap: LabelMap, volume: Volume, key: str) -> LabelEdit:
    """Segment with a preset into its label (created, or replaced if it exists)."""
    p = preset(key)
    mask = p.make(volume)
    if not mask.any():
        raise SegmentationError(f"the {p.name.lower()} preset found nothing in this volume")
    try:
        label = labelmap.label(p.name)
    except SegmentationError:
        label = labelmap.new_label(p.name, p.role)
    edit = labelmap.change(
        f"Preset {p.name}", label.value, mask, label=label, overwrite=p.overwrite
    )
    if edit is None:
        raise SegmentationError(f"the {p.name.lower()} preset changed nothing")
    return edit
