"""NIfTI label maps (``.nii`` / ``.nii.gz``, via ITK) with a JSON label table next to them.

ITK (SimpleITK) converts between SurgTwin's LPS grid and NIfTI's RAS ``qform``/``sform``; names,
colours, roles, visibility and opacity go to the sidecar ``<name>.labels.json``.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from pathlib import Path

import numpy as np

from surgtwin import __version__
from surgtwin.fileio import atomic_write
from surgtwin.imaging.volume import ImageGeometry
from surgtwin.segmentation.labelmap import MAX_LABELS, Label, LabelMap, Role
from surgtwin.segmentation.seg_common import (
    SegIOError,
    all_labels,
    as_label_values,
    check_axes,
    fit_to_geometry,
    labels_present,
    palette,
    parse_colour,
    require_label_range,
    require_voxels,
    right_handed,
)

SIDECAR_FORMAT = "surgtwin-labels"


def _nifti_stem(path: Path) -> str:
    name = path.name
    lower = name.lower()
    if lower.endswith(".nii.gz"):
        return name[:-7]
    if lower.endswith(".nii"):
        return name[:-4]
    raise SegIOError(f"{path}: a NIfTI file name must end in .nii or .nii.gz")


def labels_sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The JSON label table next to a NIfTI file: ``seg.nii.gz`` -> ``seg.labels.json``."""
    path = Path(path)
    return path.with_name(_nifti_stem(path) + ".labels.json")


def write_nifti(labelmap: LabelMap, path: str | os.PathLike[str]) -> Path:
    """Save a label map as NIfTI-1 (``.nii`` or ``.nii.gz``) plus a JSON label table.

    The image is uint8 label values, written by ITK (SimpleITK), which converts the LPS grid to
    NIfTI's RAS world coordinates (``qform`` and ``sform``; x and y negated), so other NIfTI
    readers place every voxel at the same patient point. NIfTI stores the transform in float32:
    positions read back agree within a few micrometres.

    Names, colours, roles, visibility and opacity go to ``<name>.labels.json`` next to the image
    (see :func:`labels_sidecar_path`)::

        {"format": "surgtwin-labels", "version": 1, "image": "seg.nii.gz",
         "labels": {"1": {"name": "L4", "color": [0.9, 0.85, 0.72], "role": "bone",
                          "visible": true, "opacity": 1.0}}}

    Parameters
    ----------
    labelmap : LabelMap
    path : str or PathLike
        The image file; both files are replaced atomically.

    Returns
    -------
    pathlib.Path
        The image file written.

    Raises
    ------
    SegIOError
        The label map is empty, the name does not end in .nii / .nii.gz, or writing fails.
    """
    import SimpleITK as sitk

    path = Path(path)
    sidecar = labels_sidecar_path(path)
    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else ".nii"
    array = np.ascontiguousarray(labelmap.array, dtype=np.uint8)
    present = labels_present(array)
    require_voxels(present, "NIfTI")
    labels = all_labels(labelmap.labels, present)
    g = labelmap.geometry
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(v) for v in g.spacing])
    image.SetOrigin([float(v) for v in g.origin])
    image.SetDirection([float(v) for v in np.asarray(g.direction, float).reshape(-1)])
    table = {
        "format": SIDECAR_FORMAT,
        "version": 1,
        "software": f"SurgTwin {__version__}",
        "image": path.name,
        "labels": {
            str(lab.value): {
                "name": lab.name,
                "color": [float(c) for c in lab.color],
                "role": Role(lab.role).value,
                "visible": bool(lab.visible),
                "opacity": float(lab.opacity),
            }
            for lab in labels
        },
    }
    with atomic_write([path, sidecar], error=SegIOError, suffixes=[suffix]) as (
        tmp_image,
        tmp_json,
    ):
        try:
            sitk.WriteImage(image, str(tmp_image), suffix == ".nii.gz")
        except RuntimeError as exc:
            raise SegIOError(f"{path}: ITK could not write the NIfTI file ({exc})") from exc
        tmp_json.write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path


def _read_sidecar(path: Path) -> dict[int, Label]:
    sidecar = labels_sidecar_path(path)
    if not sidecar.exists():
        return {}
    try:
        table = json.loads(sidecar.read_text("utf-8"))
        entries = table["labels"]
        out: dict[int, Label] = {}
        for key, entry in entries.items():
            value = int(key)
            if not 0 < value <= MAX_LABELS:
                continue
            role = Role.OTHER
            with suppress(ValueError):
                role = Role(str(entry.get("role", "other")))
            out[value] = Label(
                value,
                str(entry.get("name", f"Label {value}")),
                parse_colour(" ".join(str(c) for c in entry.get("color", [])), palette(value)),
                role,
                bool(entry.get("visible", True)),
                float(entry.get("opacity", 1.0)),
            )
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SegIOError(f"{sidecar}: the label table cannot be read ({exc})") from exc


def read_nifti(path: str | os.PathLike[str], geometry: ImageGeometry | None = None) -> LabelMap:
    """Read a NIfTI label map (and its ``.labels.json`` table when present).

    Parameters
    ----------
    path : str or PathLike
        ``.nii`` or ``.nii.gz``; read by ITK, which converts NIfTI's RAS world to LPS.
    geometry : ImageGeometry, optional
        The grid the labels must lie on (usually ``volume.geometry``); the file's grid must match
        it within float32 precision (or be an aligned box of it). The label map then uses this
        exact geometry. Without it, the grid is taken from the file (made right-handed by
        reversing k when the file's axes are left-handed).

    Returns
    -------
    LabelMap
        Labels from the sidecar; values without an entry are named ``Label <value>``.

    Raises
    ------
    SegIOError
        The file cannot be read, is not a 3D single-component image with integer values 0..255,
        or is not on ``geometry``.
    """
    import SimpleITK as sitk

    path = Path(path)
    where = str(path)
    _nifti_stem(path)
    if not path.is_file():
        raise SegIOError(f"{where}: no such file")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise SegIOError(f"{where}: ITK could not read the NIfTI file ({exc})") from exc
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise SegIOError(
            f"{where}: a label map is a 3D single-value image; this one has "
            f"{image.GetDimension()} dimensions and {image.GetNumberOfComponentsPerPixel()} "
            "value(s) per voxel"
        )
    values = as_label_values(sitk.GetArrayFromImage(image), where)
    require_label_range(values, where)
    array = values.astype(np.uint8)
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), float)
    origin = np.asarray(image.GetOrigin(), float)
    check_axes(direction, where)
    array, origin, direction = right_handed(array, origin, spacing, direction)
    found = ImageGeometry(
        tuple(array.shape),
        tuple(float(v) for v in spacing),
        tuple(float(v) for v in origin),
        direction,
    )
    array, target = fit_to_geometry(array, found, geometry, where)
    labels = all_labels(_read_sidecar(path), labels_present(array))
    return LabelMap(target, np.ascontiguousarray(array), labels)
