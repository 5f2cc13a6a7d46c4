"""Defensive reading of one DICOM file's header (never its pixels).

``read_header`` turns any file into an :class:`ImageHeader`, a :class:`NonImage`, or a
:class:`~surgtwin.errors.DicomError` that names the file and the problem. Hostile files (truncated,
huge declared sizes, deep nesting, garbage) end in an error, never a crash or a hang: pydicom is
pure Python, values larger than a few kB are deferred (not read), and pixel sizes are checked
against the bytes actually present before anything is allocated.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import pydicom
from pydicom import config as _pydicom_config
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from surgtwin.errors import DicomError
from surgtwin.imaging import findings as fc
from surgtwin.imaging.fastheader import DamagedElement, read_fast
from surgtwin.imaging.sources import FileRef

# We validate values ourselves; pydicom's per-value warnings would only flood the log.
_pydicom_config.settings.reading_validation_mode = _pydicom_config.IGNORE

DEFER_BYTES = 4096
NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
}
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float and Double Float Pixel Data

# SOP classes that carry no image to load as a volume (listed, never loaded).
_NON_IMAGE_PREFIXES = (
    ("1.2.840.10008.1.3.10", "media directory (DICOMDIR)"),
    ("1.2.840.10008.5.1.4.1.1.88.", "structured report"),
    ("1.2.840.10008.5.1.4.1.1.481.3", "RT structure set"),
    ("1.2.840.10008.5.1.4.1.1.481.2", "RT dose"),
    ("1.2.840.10008.5.1.4.1.1.481.", "RT plan or record"),
    ("1.2.840.10008.5.1.4.1.1.66.4", "segmentation"),
    ("1.2.840.10008.5.1.4.1.1.66", "registration, fiducials or raw data"),
    ("1.2.840.10008.5.1.4.1.1.104.", "encapsulated document (PDF/CDA)"),
    ("1.2.840.10008.5.1.4.1.1.11.", "presentation state"),
    ("1.2.840.10008.5.1.4.1.1.9.", "waveform"),
    ("1.2.840.10008.5.1.4.1.1.67", "real world value mapping"),
)


@dataclass(frozen=True)
class PatientInfo:
    """Patient identifiers, kept apart so that exports and logs can leave them out."""

    name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    accession_number: str = ""
    institution: str = ""


@dataclass(frozen=True)
class FrameInfo:
    """Geometry and value mapping of one 2D image (a file, or one frame of a multi-frame file).

    Attributes
    ----------
    frame : int or None
        0-based frame index in a multi-frame file, ``None`` for a single-frame file.
    position : tuple of 3 float or None
        ImagePositionPatient: LPS mm of the centre of the first transmitted pixel.
    orientation : tuple of 6 float or None
        ImageOrientationPatient: row direction cosines then column direction cosines.
    pixel_spacing : tuple of 2 float or None
        (row spacing, column spacing) in mm, i.e. (distance between rows, between columns).
    thickness : float or None
        Nominal slice thickness in mm.
    slope, intercept : float or None
        Rescale to modality units (HU for CT); ``None`` when absent.
    split_keys : tuple of (str, str)
        Values that may separate images repeated at one position (echo, time point, ...).
    """

    frame: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, float, float, float, float, float] | None
    pixel_spacing: tuple[float, float] | None
    thickness: float | None
    slope: float | None
    intercept: float | None
    split_keys: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ImageHeader:
    """Everything SurgTwin needs from one image file's header, as plain data."""

    ref: FileRef
    sop_class_uid: str
    sop_instance_uid: str
    modality: str
    study_uid: str
    series_uid: str
    series_number: int | None
    instance_number: int | None
    frame_of_reference_uid: str
    rows: int
    columns: int
    n_frames: int
    samples_per_pixel: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    transfer_syntax: str
    pixel_offset: int | None
    pixel_length: int | None
    frames: tuple[FrameInfo, ...]
    gantry_tilt: float | None = None
    rescale_type: str = ""
    description: str = ""
    study_description: str = ""
    study_date: str = ""
    body_part: str = ""
    manufacturer: str = ""
    model: str = ""
    patient: PatientInfo = field(default_factory=PatientInfo)
    problem: str | None = None
    problem_code: str | None = None
    frames_assumed: bool = False

    @property
    def is_native(self) -> bool:
        return self.transfer_syntax in NATIVE_SYNTAXES

    @property
    def has_rescale(self) -> bool:
        return all(f.slope is not None and f.intercept is not None for f in self.frames)


@dataclass(frozen=True)
class NonImage:
    """A DICOM object that is listed but not loaded (report, RT, SEG, PDF, ...)."""

    ref: FileRef
    kind: str
    sop_class_uid: str
    modality: str
    series_uid: str
    description: str


# ---------------------------------------------------------------------------- small converters


def _str(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword, "")
        return "" if value is None else str(value).strip()
    except Exception:
        return ""


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        if isinstance(value, list | tuple | pydicom.multival.MultiValue):
            value = value[0]
        return int(value)
    except Exception:
        return None


def _float(ds: Dataset, keyword: str) -> float | None:
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        if isinstance(value, list | tuple | pydicom.multival.MultiValue):
            value = value[0]
        out = float(value)
        return out if math.isfinite(out) else None
    except Exception:
        return None


def _floats(ds: Dataset, keyword: str, n: int) -> tuple[float, ...] | None:
    try:
        values = [float(v) for v in _multi(ds, keyword)]
    except (TypeError, ValueError):
        return None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        return None
    return tuple(values)


def _multi(ds: Dataset | None, keyword: str) -> list[str]:
    if ds is None:
        return []
    try:
        value = ds.get(keyword)
    except Exception:
        return []
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes):
        return [value.decode("latin-1") if isinstance(value, bytes) else value]
    try:
        return [str(v) for v in value]
    except TypeError:
        return [str(value)]


def _first_item(ds: Dataset | None, keyword: str) -> Dataset | None:
    if ds is None:
        return None
    try:
        seq = ds.get(keyword)
        return seq[0] if seq else None
    except Exception:
        return None


def _valid_orientation(o: tuple[float, ...] | None) -> tuple[float, ...] | None:
    if o is None:
        return None
    r, c = o[:3], o[3:]
    nr = math.sqrt(sum(v * v for v in r))
    nc = math.sqrt(sum(v * v for v in c))
    if not (0.9 < nr < 1.1 and 0.9 < nc < 1.1):
        return None
    if abs(sum(a * b for a, b in zip(r, c, strict=True))) > 0.05:
        return None
    return o


def _valid_spacing(s: tuple[float, ...] | None) -> tuple[float, float] | None:
    if s is None or not all(0 < v < 1e4 for v in s):
        return None
    return (s[0], s[1])


# ---------------------------------------------------------------------------- reading


def _looks_like_dicom_without_preamble(head: bytes) -> bool:
    """Raw DICOM streams without the 128-byte preamble start with a group 0002 or 0008 tag."""
    if len(head) < 8:
        return False
    for order in ("little", "big"):
        group = int.from_bytes(head[0:2], order)
        element = int.from_bytes(head[2:4], order)
        if (group == 0x0002 and element <= 0x0100) or (group == 0x0008 and element <= 0x0020):
            return True
    return False


def _size_of(fp) -> int:
    pos = fp.tell()
    fp.seek(0, os.SEEK_END)
    end = fp.tell()
    fp.seek(pos)
    return end


def _check_deferred(ds: Dataset, size: int) -> None:
    """Values pydicom deferred must lie within the file; else it is truncated or damaged."""
    for tag in list(ds.keys()):
        if int(tag) in PIXEL_TAGS:
            continue  # pixel data is checked against the image size, with a clearer message
        elem = ds.get_item(tag, keep_deferred=True)
        length = getattr(elem, "length", 0)
        tell = getattr(elem, "value_tell", None)
        if tell is None or getattr(elem, "value", 0) is not None or length == 0xFFFFFFFF:
            continue
        if tell + length > size:
            raise DamagedElement(int(tag), int(length), size)


def _dcmread(ref: FileRef, fast: bool = True) -> Dataset:
    """Parse the header, deferring every large value; raises DicomError on anything odd."""
    fp = None
    try:
        fp = ref.open()
        head = fp.read(132)
        if len(head) == 0:
            raise DicomError("the file is empty", ref.name)
        has_preamble = len(head) == 132 and head[128:132] == b"DICM"
        if not has_preamble and not _looks_like_dicom_without_preamble(head):
            if head[:2] == b"\x1f\x8b":
                raise DicomError("a gzip-compressed file, not DICOM: decompress it first", ref.name)
            raise DicomError("not a DICOM file", ref.name)
        fp.seek(0)
        size = ref.size or _size_of(fp)
        if has_preamble and fast:
            fast = read_fast(fp, size)
            if fast is not None:
                return fast
            fp.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(fp, defer_size=DEFER_BYTES, force=not has_preamble)
        meta = getattr(ds, "file_meta", None)
        if meta is None or meta.get("TransferSyntaxUID") != "1.2.840.10008.1.2.1.99":
            _check_deferred(ds, size)  # (deflated streams have positions past the file size)
        return ds
    except DamagedElement as exc:
        raise DicomError(str(exc), ref.name, code=fc.TRUNCATED) from exc
    except DicomError:
        raise
    except RecursionError as exc:
        raise DicomError(
            "the header is nested too deeply to be a valid DICOM file", ref.name
        ) from exc
    except MemoryError as exc:
        raise DicomError("the header declares values too large to read", ref.name) from exc
    except (InvalidDicomError, EOFError) as exc:
        raise DicomError(f"not a readable DICOM file ({exc})", ref.name) from exc
    except OSError as exc:
        raise DicomError(f"the file cannot be read ({exc})", ref.name) from exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # includes pyo3 PanicException from Rust decoders
        raise DicomError(
            f"the DICOM header is damaged and cannot be read ({type(exc).__name__}: {exc})",
            ref.name,
        ) from exc
    finally:
        if fp is not None:
            fp.close()


def _pixel_element(ds: Dataset) -> tuple[int | None, Any]:
    for tag in PIXEL_TAGS:
        if tag in ds:
            try:
                return tag, ds.get_item(tag, keep_deferred=True)
            except Exception:
                return tag, None
    return None, None


def _frame_infos(ds: Dataset, n_frames: int) -> tuple[tuple[FrameInfo, ...], bool]:
    """Per-frame geometry: functional groups for enhanced objects, else the top-level tags."""
    base_pos = _floats(ds, "ImagePositionPatient", 3)
    base_ori = _valid_orientation(_floats(ds, "ImageOrientationPatient", 6))
    base_ps = _valid_spacing(_floats(ds, "PixelSpacing", 2))
    base_th = _float(ds, "SliceThickness")
    base_slope = _float(ds, "RescaleSlope")
    base_icpt = _float(ds, "RescaleIntercept")
    file_keys = tuple(
        (k, "\\".join(_multi(ds, k)))
        for k in ("AcquisitionNumber", "TemporalPositionIdentifier", "EchoNumbers", "TriggerTime")
        if _multi(ds, k)
    )
    image_type = "\\".join(_multi(ds, "ImageType"))
    if image_type:
        file_keys += (("ImageType", image_type),)

    shared = _first_item(ds, "SharedFunctionalGroupsSequence")
    try:
        per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    except Exception:
        per_frame = None
    if per_frame is not None and len(per_frame) > 0:
        if len(per_frame) != n_frames:
            raise DicomError(
                f"the file declares {n_frames} frames but describes {len(per_frame)}", None
            )
        return tuple(_enhanced_frame(i, item, shared) for i, item in enumerate(per_frame)), False

    if n_frames <= 1:
        return (
            FrameInfo(None, base_pos, base_ori, base_ps, base_th, base_slope, base_icpt, file_keys),
        ), False

    # Classic multi-frame: positions only when the stacking is declared.
    offsets = None
    try:
        gfov = _multi(ds, "GridFrameOffsetVector")
        if len(gfov) == n_frames:
            offsets = [float(v) for v in gfov]
    except ValueError:
        offsets = None
    assumed = False
    if offsets is None:
        step = _float(ds, "SpacingBetweenSlices") or base_th
        if step and base_pos and base_ori:
            offsets = [k * step for k in range(n_frames)]
            assumed = True
    frames = []
    for k in range(n_frames):
        pos = None
        if offsets is not None and base_pos is not None and base_ori is not None:
            n = _cross(base_ori[:3], base_ori[3:])
            pos = tuple(base_pos[i] + offsets[k] * n[i] for i in range(3))
        frames.append(
            FrameInfo(k, pos, base_ori, base_ps, base_th, base_slope, base_icpt, file_keys)
        )
    return tuple(frames), assumed


def _cross(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float]:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _enhanced_frame(index: int, item: Dataset, shared: Dataset | None) -> FrameInfo:
    def group(keyword: str) -> Dataset | None:
        return _first_item(item, keyword) or _first_item(shared, keyword)

    pos_item = group("PlanePositionSequence")
    ori_item = group("PlaneOrientationSequence")
    pm_item = group("PixelMeasuresSequence")
    pvt_item = group("PixelValueTransformationSequence")
    content = _first_item(item, "FrameContentSequence")
    keys: list[tuple[str, str]] = []
    if content is not None:
        for k in ("StackID", "TemporalPositionIndex"):
            if _str(content, k):
                keys.append((k, _str(content, k)))
        try:
            div = content.get("DimensionIndexValues")
            if div is not None:
                keys.append(("DimensionIndexValues", str(list(div))))
        except Exception:
            pass
    for seq_kw in ("MRImageFrameTypeSequence", "CTImageFrameTypeSequence"):
        ft = group(seq_kw)
        if ft is not None:
            keys.append(("FrameType", "\\".join(_multi(ft, "FrameType"))))
    echo = group("MREchoSequence")
    if echo is not None and _str(echo, "EffectiveEchoTime"):
        keys.append(("EffectiveEchoTime", _str(echo, "EffectiveEchoTime")))
    return FrameInfo(
        frame=index,
        position=_floats(pos_item, "ImagePositionPatient", 3) if pos_item else None,
        orientation=_valid_orientation(_floats(ori_item, "ImageOrientationPatient", 6))
        if ori_item
        else None,
        pixel_spacing=_valid_spacing(_floats(pm_item, "PixelSpacing", 2)) if pm_item else None,
        thickness=_float(pm_item, "SliceThickness") if pm_item else None,
        slope=_float(pvt_item, "RescaleSlope") if pvt_item else None,
        intercept=_float(pvt_item, "RescaleIntercept") if pvt_item else None,
        split_keys=tuple(keys),
    )


def decoder_available(transfer_syntax: str) -> bool:
    """True when an installed decoder can decode pixel data in this transfer syntax."""
    if transfer_syntax in NATIVE_SYNTAXES:
        return True
    try:
        from pydicom.pixels import get_decoder

        return bool(get_decoder(transfer_syntax).is_available)
    except Exception:
        return False


def syntax_name(transfer_syntax: str) -> str:
    """Readable name of a transfer syntax UID, with the UID."""
    try:
        name = pydicom.uid.UID(transfer_syntax).name
    except Exception:
        name = ""
    return f"{name} ({transfer_syntax})" if name and name != transfer_syntax else transfer_syntax


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def read_header(ref: FileRef) -> ImageHeader | NonImage:
    """Read one file's header.

    Parameters
    ----------
    ref : FileRef
        The file or archive member.

    Returns
    -------
    ImageHeader or NonImage

    Raises
    ------
    DicomError
        The file is not DICOM or its header cannot be read; the message says why.
    """
    ds = _dcmread(ref)
    try:
        return _header_from_dataset(ref, ds)
    except DicomError as exc:
        raise DicomError(exc.problem, ref.name, code=exc.code) from exc
    except RecursionError as exc:
        raise DicomError(
            "the header is nested too deeply to be a valid DICOM file", ref.name
        ) from exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # includes pyo3 PanicException from Rust decoders
        raise DicomError(
            f"the DICOM header is damaged ({type(exc).__name__}: {exc})", ref.name
        ) from exc


def _header_from_dataset(ref: FileRef, ds: Dataset) -> ImageHeader | NonImage:
    meta = getattr(ds, "file_meta", None)
    ts = ""
    if meta is not None:
        ts = str(meta.get("TransferSyntaxUID", "") or "").strip()
    if not ts:
        ts = "1.2.840.10008.1.2.1" if not ds.is_implicit_VR else "1.2.840.10008.1.2"
        if not ds.is_little_endian:
            ts = "1.2.840.10008.1.2.2"
    sop_class = _str(ds, "SOPClassUID") or (_str(meta, "MediaStorageSOPClassUID") if meta else "")
    modality = _str(ds, "Modality")
    series_uid = _str(ds, "SeriesInstanceUID")
    description = _str(ds, "SeriesDescription")
    if "DirectoryRecordSequence" in ds:
        sop_class = sop_class or "1.2.840.10008.1.3.10"
    for prefix, kind in _NON_IMAGE_PREFIXES:
        if sop_class.startswith(prefix):
            return NonImage(ref, kind, sop_class, modality, series_uid, description)
    pixel_tag, pixel_elem = _pixel_element(ds)
    if pixel_tag is None:
        if len(ds) == 0:
            raise DicomError("the file contains no DICOM data elements")
        if not sop_class:
            raise DicomError(
                "not a readable DICOM object: no SOP Class UID and no image data "
                "(damaged or not DICOM)"
            )
        if sop_class.startswith("1.2.840.10008.5.1.4.1.1.") or _int(ds, "Rows"):
            raise DicomError(
                "the image has no pixel data: the file is truncated or damaged",
                code=fc.TRUNCATED,
            )
        return NonImage(
            ref, "object without image data", sop_class, modality, series_uid, description
        )

    rows = _int(ds, "Rows") or 0
    columns = _int(ds, "Columns") or 0
    n_frames = _int(ds, "NumberOfFrames") or 1
    spp = _int(ds, "SamplesPerPixel") or 1
    bits_alloc = _int(ds, "BitsAllocated") or (32 if pixel_tag == 0x7FE00008 else 64)
    if pixel_tag == 0x7FE00010:
        bits_alloc = _int(ds, "BitsAllocated") or 0
    bits_stored = _int(ds, "BitsStored") or bits_alloc
    pixel_rep = _int(ds, "PixelRepresentation") or 0
    problem: str | None = None
    code: str | None = None
    if rows <= 0 or columns <= 0:
        problem, code = "the image has no size (Rows or Columns missing or zero)", fc.TRUNCATED
    elif n_frames <= 0 or n_frames > 100_000:
        problem, code = f"implausible number of frames ({n_frames})", fc.TRUNCATED
        n_frames = 1
    elif bits_alloc not in (1, 8, 16, 32, 64) or spp not in (1, 3, 4):
        problem = f"unsupported pixel layout ({bits_alloc} bits allocated, {spp} samples)"
        code = fc.UNDECODABLE
    if not 0 < bits_stored <= max(bits_alloc, 1):
        bits_stored = bits_alloc
    photometric = _str(ds, "PhotometricInterpretation").upper()
    samples_stored = 2 if photometric in ("YBR_FULL_422", "YBR_PARTIAL_422") else spp
    expected = (rows * columns * n_frames * samples_stored * bits_alloc + 7) // 8

    pixel_offset = pixel_length = None
    length = getattr(pixel_elem, "length", None)
    encapsulated = ts not in NATIVE_SYNTAXES
    if problem is None and expected > _physical_memory() // 2:
        problem = (
            f"the image declares {expected / 2**30:.1f} GiB of pixels "
            f"({columns} x {rows} x {n_frames}), more than this computer can hold"
        )
        code = fc.TRUNCATED
    if problem is None and not encapsulated:
        value_tell = getattr(pixel_elem, "value_tell", None)
        if length is not None and length != 0xFFFFFFFF:
            if length < expected:
                problem = (
                    f"the pixel data holds {length} bytes but {columns} x {rows} x {n_frames} "
                    f"pixels need {expected}: the file is truncated or damaged"
                )
                code = fc.TRUNCATED
            elif value_tell is not None and ts != "1.2.840.10008.1.2.1.99":
                if value_tell + expected > ref.size:
                    problem = (
                        f"the file ends before its pixel data does ({ref.size} bytes, "
                        f"{value_tell + expected} needed): the file is truncated"
                    )
                    code = fc.TRUNCATED
                elif getattr(pixel_elem, "value", None) is None:
                    pixel_offset, pixel_length = value_tell, length
    if problem is None and encapsulated and not decoder_available(ts):
        problem = (
            f"cannot decode transfer syntax {syntax_name(ts)}: no installed decoder supports it; "
            "ask for the series in an uncompressed or lossless JPEG 2000 syntax"
        )
        code = fc.UNDECODABLE

    if problem is None:
        frames, assumed = _frame_infos(ds, n_frames)
    else:  # refused anyway: one entry, never a per-frame expansion of a hostile count
        frames, assumed = _frame_infos(ds, 1)[0][:1], False
    patient = PatientInfo(
        name=_str(ds, "PatientName"),
        patient_id=_str(ds, "PatientID"),
        birth_date=_str(ds, "PatientBirthDate"),
        sex=_str(ds, "PatientSex"),
        accession_number=_str(ds, "AccessionNumber"),
        institution=_str(ds, "InstitutionName"),
    )
    return ImageHeader(
        ref=ref,
        sop_class_uid=sop_class,
        sop_instance_uid=_str(ds, "SOPInstanceUID"),
        modality=modality,
        study_uid=_str(ds, "StudyInstanceUID"),
        series_uid=series_uid,
        series_number=_int(ds, "SeriesNumber"),
        instance_number=_int(ds, "InstanceNumber"),
        frame_of_reference_uid=_str(ds, "FrameOfReferenceUID"),
        rows=rows,
        columns=columns,
        n_frames=n_frames,
        samples_per_pixel=spp,
        photometric=photometric,
        bits_allocated=bits_alloc,
        bits_stored=bits_stored,
        pixel_representation=pixel_rep,
        transfer_syntax=ts,
        pixel_offset=pixel_offset,
        pixel_length=pixel_length,
        frames=frames,
        gantry_tilt=_float(ds, "GantryDetectorTilt"),
        rescale_type=_str(ds, "RescaleType"),
        description=description,
        study_description=_str(ds, "StudyDescription"),
        study_date=_str(ds, "StudyDate"),
        body_part=_str(ds, "BodyPartExamined"),
        manufacturer=_str(ds, "Manufacturer"),
        model=_str(ds, "ManufacturerModelName"),
        patient=patient,
        problem=problem,
        problem_code=code,
        frames_assumed=assumed,
    )


def read_dicomdir_references(path: str) -> list[list[str]]:
    """The referenced file IDs of a DICOMDIR, as path components (never escaping its folder)."""
    ds = _dcmread(FileRef(path=path, size=os.path.getsize(path)))
    out: list[list[str]] = []
    try:
        records = ds.get("DirectoryRecordSequence") or []
        for rec in records:
            fid = rec.get("ReferencedFileID")
            if fid is None:
                continue
            values = [fid] if isinstance(fid, str) else list(fid)
            parts = [str(p).strip() for p in values]
            if any(p in ("", ".", "..") or "/" in p or "\\" in p for p in parts):
                continue
            out.append(parts)
    except RecursionError as exc:
        raise DicomError("the DICOMDIR is nested too deeply", path) from exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # includes pyo3 PanicException from Rust decoders
        raise DicomError(f"the DICOMDIR is damaged ({exc})", path) from exc
    return out
