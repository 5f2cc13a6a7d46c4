"""DICOM Segmentation objects (PS3.3 A.51, via highdicom) referencing the source CT/MR series.

A SEG needs the original acquisition grid: volumes that were tilt-corrected or resampled while
loading are refused, as are multi-frame sources; see :func:`write_dicom_seg`.
"""

from __future__ import annotations

import copy
import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset

from surgtwin import __version__
from surgtwin.fileio import atomic_write
from surgtwin.imaging import findings as fc
from surgtwin.imaging.volume import Volume
from surgtwin.segmentation.labelmap import MAX_LABELS, LabelMap, Role
from surgtwin.segmentation.seg_common import (
    DIRECTION_TOL,
    ROLE_CODES,
    SPACING_TOL_MM,
    SegIOError,
    all_labels,
    describe_grid,
    labels_present,
    require_voxels,
    same_grid,
)

# DICOM SEG: largest distance (mm) between a source image's position and the label slice it gets.
POSITION_TOL_MM = 0.01
POSITION_TOL_FRACTION = 0.02  # ... or this fraction of the smallest voxel size, if larger

ANONYMOUS = "ANONYMOUS"
ANONYMOUS_NAME = "ANONYMOUS^"  # family name only (the caret marks a one-part person name)

# Findings after which the volume grid no longer matches the source images.
_REGRIDDED = {
    fc.GANTRY_TILT: "tilt-corrected (gantry tilt)",
    fc.MISSING_SLICES: "resampled over missing slices",
    fc.UNEVEN_SPACING: "resampled onto a uniform slice spacing",
}


def _split_archive(name: str) -> tuple[str, str] | None:
    """``archive.zip!member`` -> (archive, member), trying each '!' from the left."""
    start = 0
    while (idx := name.find("!", start)) >= 0:
        archive, member = name[:idx], name[idx + 1 :]
        if member and os.path.isfile(archive) and zipfile.is_zipfile(archive):
            return archive, member
        start = idx + 1
    return None


def _read_source_headers(names: Sequence[str]) -> list[tuple[str, Dataset]]:
    """The source files' headers (no pixel data), in the order given."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    archives: dict[str, zipfile.ZipFile] = {}
    out: list[tuple[str, Dataset]] = []
    try:
        for name in names:
            try:
                if os.path.isfile(name):
                    ds = pydicom.dcmread(name, stop_before_pixels=True, force=True)
                else:
                    split = _split_archive(name)
                    if split is None:
                        raise SegIOError(
                            f"{name}: the source image is missing; DICOM SEG must reference the "
                            "source images, so load the series again from where it is now"
                        )
                    archive, member = split
                    zf = archives.get(archive)
                    if zf is None:
                        zf = archives[archive] = zipfile.ZipFile(archive)
                    with zf.open(member) as f:
                        ds = pydicom.dcmread(
                            io.BytesIO(f.read()), stop_before_pixels=True, force=True
                        )
            except (OSError, InvalidDicomError, zipfile.BadZipFile, KeyError, ValueError) as exc:
                raise SegIOError(f"{name}: the source image cannot be read ({exc})") from exc
            out.append((name, ds))
    finally:
        for zf in archives.values():
            zf.close()
    return out


def _acquisition_sources(volume: Volume) -> list[Dataset]:
    """The source headers in k order, after checking that they are the volume's grid."""
    advice = (
        "DICOM SEG needs the original acquisition grid (each label slice must lie exactly on a "
        "source image); save the segmentation as NRRD (.seg.nrrd) instead"
    )
    changed = [
        what for code, what in _REGRIDDED.items() if code in {f.code for f in volume.findings}
    ]
    if changed:
        raise SegIOError(
            f"this volume was {' and '.join(changed)} while loading, so its voxels no longer "
            f"coincide with the source images. {advice}"
        )
    if not volume.source_files:
        raise SegIOError(
            "the volume has no source DICOM files (it was not loaded from DICOM); DICOM SEG "
            "must reference source images, so save the segmentation as NRRD (.seg.nrrd) instead"
        )
    headers = _read_source_headers(volume.source_files)
    for name, ds in headers:
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames > 1 or "PerFrameFunctionalGroupsSequence" in ds:
            raise SegIOError(
                f"{name}: the source is a multi-frame image ({frames} frame(s) in one file); "
                "DICOM SEG export supports series of single-frame images only. Save the "
                "segmentation as NRRD (.seg.nrrd) instead"
            )
        missing = [
            kw
            for kw in (
                "SOPClassUID",
                "SOPInstanceUID",
                "FrameOfReferenceUID",
                "ImagePositionPatient",
                "ImageOrientationPatient",
                "PixelSpacing",
                "Rows",
                "Columns",
            )
            if ds.get(kw) in (None, "")
        ]
        if missing:
            raise SegIOError(
                f"{name}: the source image lacks {', '.join(missing)}, which DICOM SEG needs "
                "to place the segments on the images; save the segmentation as NRRD "
                "(.seg.nrrd) instead"
            )
        if volume.info.series_uid and ds.get("SeriesInstanceUID") != volume.info.series_uid:
            raise SegIOError(
                f"{name}: the file now belongs to another series than the loaded volume; load "
                "the series again"
            )
    g = volume.geometry
    normal = np.asarray(g.direction, float)[:, 2]
    headers.sort(key=lambda item: float(np.asarray(item[1].ImagePositionPatient, float) @ normal))
    nk, nj, ni = g.shape
    if len(headers) != nk:
        raise SegIOError(f"the volume has {nk} slices but {len(headers)} source images; {advice}")
    tol = max(POSITION_TOL_MM, POSITION_TOL_FRACTION * min(g.spacing))
    expected = g.index_to_lps(np.column_stack([np.zeros(nk), np.zeros(nk), np.arange(nk)]))
    direction = np.asarray(g.direction, float)
    for k, (name, ds) in enumerate(headers):
        ipp = np.asarray(ds.ImagePositionPatient, float)
        iop = np.asarray(ds.ImageOrientationPatient, float)
        row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
        off = float(np.linalg.norm(ipp - expected[k]))
        if (
            off > tol
            or int(ds.Rows) != nj
            or int(ds.Columns) != ni
            or not np.allclose(iop[:3], direction[:, 0], rtol=0, atol=DIRECTION_TOL)
            or not np.allclose(iop[3:], direction[:, 1], rtol=0, atol=DIRECTION_TOL)
            or abs(col_spacing - g.spacing[0]) > SPACING_TOL_MM
            or abs(row_spacing - g.spacing[1]) > SPACING_TOL_MM
        ):
            raise SegIOError(
                f"{name}: the source image does not lie on slice {k} of the volume (it is "
                f"{off:.3f} mm away, or its size or orientation differs); {advice}"
            )
    return [ds for _name, ds in headers]


# Attributes the SEG needs from each anonymised source image (geometry, references, study).
_SOURCE_KEYWORDS = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "PositionReferenceIndicator",
    "Modality",
    "StudyDate",
    "StudyTime",
    "SeriesNumber",
    "InstanceNumber",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "SliceThickness",
    "SpacingBetweenSlices",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
)
_TYPE2_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
)


def _prepared_source(ds: Dataset, include_patient: bool) -> Dataset:
    """A copy of a source header for highdicom: complete, or reduced and anonymised."""
    from pydicom.uid import ExplicitVRLittleEndian

    if include_patient:
        out = copy.deepcopy(ds)
    else:
        out = Dataset()
        for keyword in _SOURCE_KEYWORDS:
            if keyword in ds:
                setattr(out, keyword, ds[keyword].value)
        out.PatientName = ANONYMOUS_NAME
        out.PatientID = ANONYMOUS
        out.PatientBirthDate = ""
        out.PatientSex = ""
        out.AccessionNumber = ""
        out.StudyID = ""
        out.ReferringPhysicianName = ""
    for keyword in _TYPE2_PATIENT_STUDY:  # highdicom reads these; they may be absent
        if keyword not in out:
            setattr(out, keyword, "")
    # The values are decoded already; declare little endian so highdicom accepts any source.
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = out.SOPClassUID
    meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    out.file_meta = meta
    return out


def _segment_label(name: str) -> str:
    """A DICOM LO value: no backslash or control characters, at most 64 characters."""
    clean = "".join(" " if ord(c) < 32 else c for c in name).replace("\\", "/").strip()
    return (clean or "Segment")[:64]


def write_dicom_seg(
    labelmap: LabelMap,
    volume: Volume,
    path: str | os.PathLike[str],
    *,
    include_patient: bool = False,
    series_description: str = "SurgTwin segmentation",
) -> Path:
    """Save a label map as a DICOM Segmentation object referencing the source series.

    A binary SEG (highdicom) with one segment per label that has voxels, in order of label
    value: segment label = label name, recommended display colour = label colour (CIE Lab,
    converted by highdicom), algorithm type SEMIAUTOMATIC with algorithm "SurgTwin" and its
    version, and SNOMED CT segmented property category / type by role:

    ========  ==================================  ==================================
    role      category                            type
    ========  ==================================  ==================================
    bone      Tissue (85756007)                   Bone structure (272673000)
    skin      Tissue (85756007)                   Skin (39937001)
    critical  Anatomical structure (91723000)     Anatomical structure (91723000)
    target    Morphologically abnormal structure  Neoplasm (108369006)
              (49755003)
    other     Tissue (85756007)                   Tissue (85756007)
    ========  ==================================  ==================================

    Frames hold the label slices that contain any label, each at its source image's position
    and referencing that image (SOP Instance UID); the SEG joins the source study and frame of
    reference. The source images are read again (headers only) from ``volume.source_files``,
    including ``archive.zip!member`` entries, and sorted along the slice normal.

    Patient identification: a PACS files a DICOM object by its patient module, so the SEG always
    has one. With ``include_patient=False`` (the default) it is anonymised: Patient's Name and
    Patient ID are ``ANONYMOUS``; Patient's Birth Date, Sex, Accession Number, Study ID and
    Referring Physician are empty; no other patient or study attribute of the source is copied;
    Patient Identity Removed is YES with a De-identification Method saying what was kept. The
    study, series, instance and frame-of-reference UIDs and the study date and time are kept,
    because the SEG must reference the source images. A PACS may then file the SEG under a
    patient "ANONYMOUS" or refuse it as a mismatch with the study; to store it next to the
    images, pass ``include_patient=True``, which copies the source's patient and study modules
    unchanged.

    Parameters
    ----------
    labelmap : LabelMap
        Labels on ``volume``'s grid.
    volume : Volume
        The volume the labels were drawn on, loaded from a series of single-frame DICOM images
        (with a Frame of Reference UID) without tilt correction or resampling.
    path : str or PathLike
        The ``.dcm`` file to write (replaced atomically).
    include_patient : bool
        Copy the patient's identity from the source images (see above).
    series_description : str
        Series Description of the new SEG series.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    SegIOError
        The label map is empty or not on the volume's grid; the volume was tilt-corrected or
        resampled (its grid is not the acquisition grid), has no DICOM source files, or comes
        from multi-frame images; a source file is missing; or the file cannot be written.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    path = Path(path)
    if not same_grid(labelmap.geometry, volume.geometry):
        raise SegIOError(
            f"the label map's grid ({describe_grid(labelmap.geometry)}) is not the volume's grid "
            f"({describe_grid(volume.geometry)})"
        )
    array = np.asarray(labelmap.array, dtype=np.uint8)
    present = labels_present(array)
    require_voxels(present, "DICOM SEG")
    labels = [lab for lab in all_labels(labelmap.labels, present) if present[lab.value]]
    sources = _acquisition_sources(volume)
    prepared = [_prepared_source(ds, include_patient) for ds in sources]

    lut = np.zeros(MAX_LABELS + 1, dtype=np.uint8)
    descriptions = []
    algorithm = hd.AlgorithmIdentificationSequence(
        name="SurgTwin",
        # CID 7162: thresholds refined by region and morphological operations
        family=codes.cid7162.MorphologicalOperations,
        version=__version__,
    )
    for number, lab in enumerate(labels, start=1):
        lut[lab.value] = number
        category, kind = ROLE_CODES[Role(lab.role)]
        rgb = [round(min(max(float(c), 0.0), 1.0) * 255) for c in lab.color]
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=_segment_label(lab.name),
                segmented_property_category=Code(category[0], category[1], category[2]),
                segmented_property_type=Code(kind[0], kind[1], kind[2]),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
                algorithm_identification=algorithm,
                display_color=hd.color.CIELabColor.from_rgb(*rgb),
            )
        )
    segments = lut[array]
    texts = [lab.name for lab in labels] + [series_description]
    charset = prepared[0].get("SpecificCharacterSet") or "ISO_IR 100"
    if not all(t.isascii() for t in texts):
        charset = "ISO_IR 192"
    try:
        series_number = 1000 + int(prepared[0].get("SeriesNumber") or 0)
    except (TypeError, ValueError):
        series_number = 1000
    try:
        seg = hd.seg.Segmentation(
            source_images=prepared,
            pixel_array=segments,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="SurgTwin",
            manufacturer_model_name="SurgTwin",
            software_versions=__version__,
            device_serial_number="0",
            content_label="SURGTWIN",
            content_description="Segmentation made with SurgTwin",
            series_description=_segment_label(series_description),
            omit_empty_frames=True,
            specific_character_set=charset,
        )
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise SegIOError(f"the DICOM SEG could not be built: {exc}") from exc
    if not include_patient:
        seg.PatientIdentityRemoved = "YES"
        seg.DeidentificationMethod = "SurgTwin: name/ID replaced; UIDs and dates kept"
    with atomic_write([path], error=SegIOError) as (tmp,):
        seg.save_as(tmp, enforce_file_format=True)
    return path
