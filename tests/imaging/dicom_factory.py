"""Test support: write small synthetic CT series as real DICOM Part 10 files with pydicom.

Geometry follows DICOM exactly: pixel (i, j) of slice k (``volume[k, j, i]``) lies at LPS
``IPP_k + i * dx * row + j * dy * col``, and by default ``IPP_k = origin + k * dz * (row x col)``.
Every UID is derived from the inputs, so the same call writes the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

Extra = dict[str, Any] | Callable[[int], dict[str, Any]] | None


def uid(*parts: object) -> str:
    """A deterministic UID from any values."""
    return generate_uid(entropy_srcs=[repr(p) for p in parts])


def slice_positions(
    n: int,
    spacing: Sequence[float],
    origin: Sequence[float],
    row: Sequence[float],
    col: Sequence[float],
) -> np.ndarray:
    """Default ImagePositionPatient of each slice: stacked along ``row x col``."""
    normal = np.cross(np.asarray(row, float), np.asarray(col, float))
    return np.asarray(origin, float) + np.arange(n)[:, None] * float(spacing[2]) * normal


def pixel_lps(
    position: Sequence[float],
    ijk_rows: np.ndarray,
    spacing: Sequence[float],
    row: Sequence[float],
    col: Sequence[float],
) -> np.ndarray:
    """LPS mm of in-plane pixel indices (i, j) (one per row) of a slice at ``position``."""
    ij = np.asarray(ijk_rows, float).reshape(-1, 2)
    return (
        np.asarray(position, float)
        + ij[:, :1] * float(spacing[0]) * np.asarray(row, float)
        + ij[:, 1:2] * float(spacing[1]) * np.asarray(col, float)
    )


def _to_stored(values: np.ndarray, rescale: tuple[float, float] | None, signed: bool) -> np.ndarray:
    if rescale is not None:
        slope, intercept = rescale
        stored = (np.asarray(values, float) - intercept) / slope
        rounded = np.rint(stored)
        if not np.allclose(stored, rounded, atol=1e-6):
            raise ValueError("the values cannot be stored exactly with this rescale")
        values = rounded.astype(np.int64)
    return np.asarray(values).astype(np.int16 if signed else np.uint16)


def write_ct_series(
    folder: str | Path,
    volume_hu: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    row: Sequence[float] = (1.0, 0.0, 0.0),
    col: Sequence[float] = (0.0, 1.0, 0.0),
    positions: Sequence[Sequence[float]] | np.ndarray | None = None,
    series_uid: str | None = None,
    extra: Extra = None,
    rescale: tuple[float, float] | None = (1.0, -1024.0),
    bits_stored: int = 16,
    pixel_representation: int = 1,
    names: Sequence[str] | None = None,
    values_are_stored: bool = False,
) -> list[Path]:
    """Write ``volume_hu`` ([k, j, i]) as one CT slice per file; returns the paths in k order.

    Parameters
    ----------
    spacing : (dx, dy, dz)
        dx = column spacing (along ``row``), dy = row spacing (along ``col``), dz = slice step.
    positions : array (n, 3), optional
        ImagePositionPatient of each slice (overrides ``origin`` / ``dz`` stacking).
    extra : dict or callable(k) -> dict
        Extra or overriding data elements by keyword (``None`` values delete the element).
    rescale : (slope, intercept) or None
        ``None`` omits the rescale tags and writes the values as stored.
    names : file names in k order (default ``0000.dcm`` ...).
    values_are_stored : write the values as stored pixel values, even with rescale tags.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    volume = np.asarray(volume_hu)
    n, rows, cols = volume.shape
    if positions is None:
        positions = slice_positions(n, spacing, origin, row, col)
    positions = np.asarray(positions, float).reshape(n, 3)
    series_uid = series_uid or uid("series", rows, cols, n)
    study_uid = uid("study", series_uid)
    signed = bool(pixel_representation)
    stored = _to_stored(volume, None if values_are_stored else rescale, signed)
    orientation = [float(v) for v in (*row, *col)]
    paths: list[Path] = []
    for k in range(n):
        more = extra(k) if callable(extra) else dict(extra or {})
        pos = [round(float(v), 6) for v in positions[k]]
        sop_uid = uid("sop", series_uid, k, pos, orientation, sorted(more.items(), key=str))

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = "20240101"
        ds.StudyTime = "120000"
        ds.AccessionNumber = ""
        ds.Modality = "CT"
        ds.Manufacturer = "SurgTwin test factory"
        ds.PatientName = "Test^Phantom"
        ds.PatientID = "TEST0001"
        ds.SliceThickness = f"{float(spacing[2]):g}"
        ds.KVP = "120"
        ds.StudyInstanceUID = study_uid
        ds.StudyID = "1"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 1
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = pos
        ds.ImageOrientationPatient = orientation
        ds.FrameOfReferenceUID = uid("frame", study_uid)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = rows
        ds.Columns = cols
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # (row, column) spacing
        ds.BitsAllocated = 16
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = pixel_representation
        if rescale is not None:
            ds.RescaleIntercept = f"{rescale[1]:g}"
            ds.RescaleSlope = f"{rescale[0]:g}"
            ds.RescaleType = "HU"
        ds.PixelData = stored[k].astype(stored.dtype.newbyteorder("<")).tobytes()
        for keyword, value in more.items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)

        name = names[k] if names is not None else f"{k:04d}.dcm"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
