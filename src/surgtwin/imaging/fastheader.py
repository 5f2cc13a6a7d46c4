"""A small, bounded reader for the top-level header of common DICOM files.

pydicom builds a full dataset (~1 ms per file); a scan only needs ~45 top-level values. This
reader walks the data elements of a Part 10 file (DICOM PS3.5 section 7: tag, VR, length, value;
explicit or implicit VR little endian, which also covers every encapsulated syntax) and keeps the
wanted values, skipping everything else by its length. Anything unusual (big endian, deflate,
functional-group sequences, unknown character sets, nesting deeper than 16, malformed lengths)
returns ``None`` and the caller uses pydicom instead, so this path never decides a hard case.
"""

from __future__ import annotations

import struct
from typing import Any

# keyword -> (tag, kind); kind: "s" string, "m" multi-valued string, "u" unsigned short
WANTED: dict[str, tuple[int, str]] = {
    "SpecificCharacterSet": (0x00080005, "m"),
    "ImageType": (0x00080008, "m"),
    "SOPClassUID": (0x00080016, "s"),
    "SOPInstanceUID": (0x00080018, "s"),
    "StudyDate": (0x00080020, "s"),
    "AccessionNumber": (0x00080050, "s"),
    "Modality": (0x00080060, "s"),
    "Manufacturer": (0x00080070, "s"),
    "InstitutionName": (0x00080080, "s"),
    "StudyDescription": (0x00081030, "s"),
    "SeriesDescription": (0x0008103E, "s"),
    "ManufacturerModelName": (0x00081090, "s"),
    "PatientName": (0x00100010, "s"),
    "PatientID": (0x00100020, "s"),
    "PatientBirthDate": (0x00100030, "s"),
    "PatientSex": (0x00100040, "s"),
    "BodyPartExamined": (0x00180015, "s"),
    "SliceThickness": (0x00180050, "s"),
    "EchoNumbers": (0x00180086, "m"),
    "SpacingBetweenSlices": (0x00180088, "s"),
    "TriggerTime": (0x00181060, "s"),
    "GantryDetectorTilt": (0x00181120, "s"),
    "StudyInstanceUID": (0x0020000D, "s"),
    "SeriesInstanceUID": (0x0020000E, "s"),
    "SeriesNumber": (0x00200011, "s"),
    "AcquisitionNumber": (0x00200012, "s"),
    "InstanceNumber": (0x00200013, "s"),
    "ImagePositionPatient": (0x00200032, "m"),
    "ImageOrientationPatient": (0x00200037, "m"),
    "FrameOfReferenceUID": (0x00200052, "s"),
    "TemporalPositionIdentifier": (0x00200100, "s"),
    "SamplesPerPixel": (0x00280002, "u"),
    "PhotometricInterpretation": (0x00280004, "s"),
    "NumberOfFrames": (0x00280008, "s"),
    "Rows": (0x00280010, "u"),
    "Columns": (0x00280011, "u"),
    "PixelSpacing": (0x00280030, "m"),
    "BitsAllocated": (0x00280100, "u"),
    "BitsStored": (0x00280101, "u"),
    "PixelRepresentation": (0x00280103, "u"),
    "RescaleIntercept": (0x00281052, "s"),
    "RescaleSlope": (0x00281053, "s"),
    "RescaleType": (0x00281054, "s"),
    "GridFrameOffsetVector": (0x3004000C, "m"),
}
_BY_TAG = {tag: (kw, kind) for kw, (tag, kind) in WANTED.items()}
# Seeing one of these means the file needs the full reader.
_FALLBACK_TAGS = {0x52009229, 0x52009230, 0x00041220}
_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
_LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
_ENCODINGS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
_UNDEFINED = 0xFFFFFFFF
_MAX_HEADER = 8 << 20
_MAX_DEPTH = 16
_TAG = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class _Fallback(Exception):
    pass


class _NeedMore(Exception):
    pass


class DamagedElement(Exception):
    """A data element claims more bytes than the file holds."""

    def __init__(self, tag: int, length: int, size: int):
        self.tag, self.length, self.size = tag, length, size
        super().__init__(damaged_message(tag, length, size))


def damaged_message(tag: int, length: int, size: int) -> str:
    return (
        f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) claims {length} bytes but the file has "
        f"only {size}: the file is truncated or damaged"
    )


class FastPixelElement:
    """Where the pixel data lies in the file (value not read)."""

    def __init__(self, tag: int, value_tell: int, length: int):
        self.tag = tag
        self.value_tell = value_tell
        self.length = length
        self.value = None


class FastDataset:
    """The values :mod:`surgtwin.imaging.header` reads, with pydicom's ``get`` interface."""

    def __init__(
        self,
        values: dict[str, Any],
        meta: dict[str, str],
        pixel: FastPixelElement | None,
        n_elements: int,
    ):
        self._values = values
        self.file_meta = meta
        transfer_syntax = meta.get("TransferSyntaxUID", "")
        self._n_elements = n_elements
        self.is_implicit_VR = transfer_syntax == "1.2.840.10008.1.2"
        self.is_little_endian = True
        self._pixel = pixel

    def get(self, keyword: str, default: Any = None) -> Any:
        return self._values.get(keyword, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, int):
            return self._pixel is not None and key == self._pixel.tag
        return key in self._values

    def get_item(self, tag: int, keep_deferred: bool = True) -> FastPixelElement | None:
        return self._pixel if self._pixel is not None and tag == self._pixel.tag else None

    def __len__(self) -> int:
        return self._n_elements


def _decode(raw: bytes, kind: str, encoding: str, explicit_vr: bytes | None) -> Any:
    if kind == "u":
        if len(raw) < 2:
            return None
        return _U16.unpack_from(raw)[0]
    text = raw.decode(encoding, errors="replace").strip(" \x00")
    if kind == "m":
        parts = [p.strip(" \x00") for p in text.split("\\")]
        return parts if len(parts) > 1 else (parts[0] if parts and parts[0] else "")
    return text


class _Reader:
    def __init__(self, fp, size: int):
        self.fp = fp
        self.size = size
        self.buf = fp.read(min(size, 65536))

    def need(self, end: int) -> None:
        """Make sure bytes up to ``end`` are buffered."""
        if end <= len(self.buf):
            return
        if end > self.size or end > _MAX_HEADER:
            raise _NeedMore
        want = min(max(end, 2 * len(self.buf)), self.size, _MAX_HEADER) - len(self.buf)
        chunk = self.fp.read(want)
        self.buf += chunk
        if end > len(self.buf):
            raise _NeedMore


def _element(r: _Reader, pos: int, explicit: bool) -> tuple[int, bytes | None, int, int]:
    """(tag, VR or None, length, value position) of the element at ``pos``."""
    r.need(pos + 8)
    group, elem = _TAG.unpack_from(r.buf, pos)
    tag = (group << 16) | elem
    if group == 0xFFFE:  # item / delimiters never have a VR
        return tag, None, _U32.unpack_from(r.buf, pos + 4)[0], pos + 8
    if not explicit:
        return tag, None, _U32.unpack_from(r.buf, pos + 4)[0], pos + 8
    vr = r.buf[pos + 4 : pos + 6]
    if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
        raise _Fallback
    if vr in _LONG_VRS:
        r.need(pos + 12)
        return tag, vr, _U32.unpack_from(r.buf, pos + 8)[0], pos + 12
    return tag, vr, _U16.unpack_from(r.buf, pos + 6)[0], pos + 8


def _skip_undefined(r: _Reader, pos: int, explicit: bool, depth: int) -> int:
    """Skip the items of an undefined-length sequence starting at ``pos``; returns the end."""
    if depth > _MAX_DEPTH:
        raise _Fallback
    while True:
        tag, _vr, length, vpos = _element(r, pos, explicit)
        if tag == 0xFFFEE0DD:  # sequence delimitation
            return vpos
        if tag != 0xFFFEE000:
            raise _Fallback
        if length != _UNDEFINED:
            pos = vpos + length
            continue
        pos = vpos
        while True:  # elements of an undefined-length item
            tag, vr, length, vpos = _element(r, pos, explicit)
            if tag == 0xFFFEE00D:
                pos = vpos
                break
            if length == _UNDEFINED:
                if vr not in (None, b"SQ", b"UN"):
                    raise _Fallback
                pos = _skip_undefined(r, vpos, explicit, depth + 1)
            else:
                pos = vpos + length


def read_fast(fp, size: int) -> FastDataset | None:
    """Read the wanted header values of a Part 10 file, or ``None`` to use pydicom instead.

    Parameters
    ----------
    fp : binary file object
        Positioned at the start of the file.
    size : int
        The file's size in bytes (lengths are checked against it).
    """
    try:
        return _read(fp, size)
    except (_Fallback, _NeedMore, struct.error, UnicodeDecodeError, IndexError, ValueError):
        return None


def _read(fp, size: int) -> FastDataset | None:
    r = _Reader(fp, size)
    if len(r.buf) < 144 or r.buf[128:132] != b"DICM":
        return None
    # File meta information: always explicit VR little endian.
    pos = 132
    meta: dict[str, str] = {}
    while True:
        r.need(pos + 8)
        group = _U16.unpack_from(r.buf, pos)[0]
        if group != 0x0002:
            break
        tag, _vr, length, vpos = _element(r, pos, True)
        if length == _UNDEFINED:
            return None
        r.need(vpos + length)
        if tag in (0x00020002, 0x00020010):
            text = r.buf[vpos : vpos + length].decode("ascii", "replace").strip(" \x00")
            meta["TransferSyntaxUID" if tag == 0x00020010 else "MediaStorageSOPClassUID"] = text
        pos = vpos + length
    ts = meta.get("TransferSyntaxUID", "")
    if not ts or ts in ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"):
        return None
    explicit = ts != "1.2.840.10008.1.2"
    values: dict[str, Any] = {}
    encoding = "latin-1"
    pixel = None
    count = 0
    while pos < size:
        tag, vr, length, vpos = _element(r, pos, explicit)
        count += 1
        if tag in _FALLBACK_TAGS:
            return None
        if tag in _PIXEL_TAGS:
            pixel = FastPixelElement(tag, vpos, length)
            break
        if tag >> 16 == 0xFFFE:
            return None
        if length == _UNDEFINED:
            if explicit and vr not in (b"SQ", b"UN"):
                return None
            pos = _skip_undefined(r, vpos, explicit, 1)
            continue
        if vpos + length > size:
            raise DamagedElement(tag, length, size)
        wanted = _BY_TAG.get(tag)
        if wanted is not None:
            r.need(vpos + length)
            keyword, kind = wanted
            raw = bytes(r.buf[vpos : vpos + length])
            if explicit and kind == "u" and vr not in (b"US", b"SS"):
                return None
            value = _decode(raw, kind, encoding, vr)
            if keyword == "SpecificCharacterSet":
                charset = value if isinstance(value, str) else (value[0] if value else "")
                if isinstance(value, list) and len([v for v in value if v]) > 1:
                    return None
                if charset not in _ENCODINGS:
                    return None
                encoding = _ENCODINGS[charset]
            if value not in ("", None):
                values[keyword] = value
        pos = vpos + length
    return FastDataset(values, meta, pixel, count)
