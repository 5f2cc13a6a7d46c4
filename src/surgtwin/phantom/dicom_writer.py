"""Write a numpy HU volume as a CT Image Storage series (one file per axial slice).

The files are explicit VR little endian with a full file meta header (preamble, group length),
stored values ``HU + 1024`` in 12 of 16 bits (rescale intercept -1024, slope 1). Output is fully
deterministic: UIDs are derived from fixed names (``2.25.`` + UUID-5), dates are fixed and the
implementation UID/version are our own, so the bytes depend only on the inputs.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from surgtwin.fileio import write_files

#: Offset between stored pixel values and HU (rescale intercept = -OFFSET).
HU_OFFSET = 1024
#: Bits stored per pixel; stored values span 0..4095, i.e. -1024..3071 HU.
BITS_STORED = 12
#: Sub-directory of the output directory holding the series.
SERIES_DIR = "CT"
#: File name pattern of slice ``n`` (1-based InstanceNumber).
FILE_PATTERN = "IM{:04d}.dcm"

_UID_NAMESPACE = uuid.UUID("6f1c3b7e-5d1a-4c43-9a8e-2b7f0c1d9e55")


def derived_uid(*names: str) -> str:
    """A DICOM UID derived deterministically from ``names``.

    Parameters
    ----------
    *names : str
        Components identifying the object, e.g. ``("series",)`` or ``("sop", "17")``.

    Returns
    -------
    str
        ``"2.25." + decimal UUID-5`` (ISO/IEC 9834-8 UUID-derived OID), at most 44 characters.
    """
    return "2.25." + str(uuid.uuid5(_UID_NAMESPACE, "/".join(names)).int)


@dataclass(frozen=True)
class SeriesInfo:
    """Patient, study and series attributes of the written series.

    ``uid_root`` names the data set; every UID is derived from it, so two series with the
    same root share their study, series and instance UIDs.
    """

    uid_root: str = "surgtwin/phantom/lumbar-l3-l5/v1"
    patient_name: str = "PHANTOM^LUMBAR"
    patient_id: str = "PHANTOM-0001"
    patient_birth_date: str = "19700101"
    patient_sex: str = "O"
    patient_position: str = "HFS"
    study_date: str = "20240101"
    study_time: str = "120000"
    study_id: str = "1"
    study_description: str = "SurgTwin digital phantom"
    series_number: int = 1
    series_description: str = "Lumbar phantom L3-L5"
    body_part: str = "LSPINE"
    manufacturer: str = "SurgTwin"
    model_name: str = "Digital lumbar phantom"
    software_version: str = "surgtwin-phantom 1"
    kvp: str = "120"
    window_centre: str = "400"
    window_width: str = "1800"
    comment: str = "Synthetic digital phantom - not patient data"


def _ds(value: float) -> str:
    """Decimal String for ``value`` (mm or HU): shortest fixed-point form, 6 decimals at most."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary sibling, fsync, rename).

    Parameters
    ----------
    path : pathlib.Path
        Destination file.
    data : bytes
        Complete file contents.
    """
    write_files([(path, lambda f: f.write(data))])


def _common_dataset(info: SeriesInfo, rows: int, cols: int, spacing: Sequence[float]) -> Dataset:
    """Attributes shared by all slices (everything but instance-specific ones)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = info.study_date
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = info.study_time
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = info.manufacturer
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = info.study_description
    ds.SeriesDescription = info.series_description
    ds.ManufacturerModelName = info.model_name
    ds.PatientName = info.patient_name
    ds.PatientID = info.patient_id
    ds.PatientBirthDate = info.patient_birth_date
    ds.PatientSex = info.patient_sex
    ds.BodyPartExamined = info.body_part
    ds.SliceThickness = _ds(spacing[2])
    ds.KVP = info.kvp
    ds.SpacingBetweenSlices = _ds(spacing[2])
    ds.SoftwareVersions = info.software_version
    ds.PatientPosition = info.patient_position
    ds.StudyInstanceUID = derived_uid(info.uid_root, "study")
    ds.SeriesInstanceUID = derived_uid(info.uid_root, "series")
    ds.StudyID = info.study_id
    ds.SeriesNumber = info.series_number
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = derived_uid(info.uid_root, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.ImageComments = info.comment
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    # PixelSpacing = row spacing (between rows, along y) \ column spacing (along x)
    ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
    ds.BitsAllocated = 16
    ds.BitsStored = BITS_STORED
    ds.HighBit = BITS_STORED - 1
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    ds.WindowCenter = info.window_centre
    ds.WindowWidth = info.window_width
    ds.RescaleIntercept = str(-HU_OFFSET)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.LossyImageCompression = "00"
    return ds


def write_ct_series(
    hu: np.ndarray,
    spacing: Sequence[float],
    origin: Sequence[float],
    out_dir: Path,
    info: SeriesInfo | None = None,
) -> list[Path]:
    """Write ``hu`` as an axial CT series into ``out_dir / "CT"``.

    Stale ``IM*.dcm`` files in that directory are removed first; each slice is written
    atomically.

    Parameters
    ----------
    hu : numpy.ndarray
        Integer HU volume, array order (z, y, x), values within -1024..3071 HU. Slice ``k``
        becomes ``IM{k+1:04d}.dcm`` with InstanceNumber ``k + 1``.
    spacing : sequence of float
        Voxel spacing (mm) along x, y, z.
    origin : sequence of float
        LPS position (mm) of the centre of the first voxel of the first slice.
    out_dir : pathlib.Path
        Output directory (created if needed).
    info : SeriesInfo, optional
        Patient/study/series attributes; defaults to the lumbar phantom's.

    Returns
    -------
    list of pathlib.Path
        The written files, in slice order.

    Raises
    ------
    ValueError
        If ``hu`` is not a 3-D integer array within the representable HU range.
    """
    info = info or SeriesInfo()
    hu = np.asarray(hu)
    if hu.ndim != 3 or not np.issubdtype(hu.dtype, np.integer):
        raise ValueError(f"expected a 3-D integer HU volume, got {hu.dtype} {hu.shape}")
    hi = (1 << BITS_STORED) - 1 - HU_OFFSET
    if hu.size and (int(hu.min()) < -HU_OFFSET or int(hu.max()) > hi):
        raise ValueError(f"HU values must lie within {-HU_OFFSET}..{hi}")
    stored = (hu.astype(np.int32) + HU_OFFSET).astype("<u2")

    series_dir = Path(out_dir) / SERIES_DIR
    series_dir.mkdir(parents=True, exist_ok=True)
    for stale in series_dir.glob("IM*.dcm"):
        stale.unlink()

    nz, rows, cols = hu.shape
    common = _common_dataset(info, rows, cols, spacing)
    written = []
    for k in range(nz):
        number = k + 1
        sop_uid = derived_uid(info.uid_root, "sop", str(number))
        z = origin[2] + k * spacing[2]

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = derived_uid("surgtwin", "implementation")
        meta.ImplementationVersionName = "SURGTWIN_PH1"

        ds = copy.deepcopy(common)
        ds.file_meta = meta
        ds.preamble = b"\x00" * 128
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = number
        ds.ImagePositionPatient = [_ds(origin[0]), _ds(origin[1]), _ds(z)]
        ds.SliceLocation = _ds(z)
        ds.add_new(0x7FE00010, "OW", stored[k].tobytes())

        buffer = BytesIO()
        pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
        path = series_dir / FILE_PATTERN.format(number)
        write_atomic(path, buffer.getvalue())
        written.append(path)
    return written
