"""Pixel decoding: stored values of each 2D image, masked and signed as the header says.

The fast path reads uncompressed little-endian pixels straight from the file into the output
array (no intermediate copies). Everything else goes through pydicom's decoders (pylibjpeg with
libjpeg, openjpeg and RLE plugins); a syntax no installed decoder supports is refused by name.
"""

from __future__ import annotations

import warnings

import numpy as np
import pydicom

from surgtwin.errors import DicomError
from surgtwin.imaging import findings as fc
from surgtwin.imaging.header import ImageHeader, decoder_available, syntax_name

_RAW_DTYPES = {
    (8, 0): np.uint8,
    (8, 1): np.int8,
    (16, 0): np.uint16,
    (16, 1): np.int16,
    (32, 0): np.uint32,
    (32, 1): np.int32,
}


def raw_dtype(h: ImageHeader) -> np.dtype:
    """The numpy dtype of one stored sample."""
    if h.bits_allocated == 64:
        return np.dtype(np.float64)
    key = (h.bits_allocated, 1 if h.pixel_representation else 0)
    if key not in _RAW_DTYPES:
        raise DicomError(
            f"{h.bits_allocated}-bit pixels are not supported", h.ref.name, code=fc.UNDECODABLE
        )
    return np.dtype(_RAW_DTYPES[key])


def fast_path_ok(h: ImageHeader) -> bool:
    """True when the pixels can be read directly from the file at a known offset."""
    return (
        h.pixel_offset is not None
        and h.transfer_syntax in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
        and h.bits_allocated in (8, 16, 32)
        and h.samples_per_pixel == 1
    )


def read_native_into(h: ImageHeader, frame: int | None, out: np.ndarray) -> None:
    """Read one frame of uncompressed little-endian pixels into ``out`` (rows, columns)."""
    frame_bytes = h.rows * h.columns * (h.bits_allocated // 8)
    offset = h.pixel_offset + (frame or 0) * frame_bytes
    buf = memoryview(out.reshape(-1).view(np.uint8))
    if h.ref.member is not None:  # a zip member: decompress it, then copy the frame
        data = h.ref.read_bytes(limit=offset + frame_bytes)
        got = max(0, min(frame_bytes, len(data) - offset))
        buf[:got] = data[offset : offset + got]
        if got != frame_bytes:
            raise DicomError(
                f"the file ended after {got} of {frame_bytes} pixel bytes: it is truncated",
                h.ref.name,
                code=fc.TRUNCATED,
            )
        return
    try:
        with open(h.ref.path, "rb") as f:
            f.seek(offset)
            got = f.readinto(buf)
    except OSError as exc:
        raise DicomError(f"the file cannot be read ({exc.strerror})", h.ref.name) from exc
    if got != frame_bytes:
        raise DicomError(
            f"the file ended after {got} of {frame_bytes} pixel bytes: it is truncated",
            h.ref.name,
            code=fc.TRUNCATED,
        )


def decode_file(h: ImageHeader) -> np.ndarray:
    """Decode all frames of a file with pydicom; returns (frames, rows, columns) stored values."""
    try:
        with h.ref.open() as fp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(fp, force=True)
            arr = ds.pixel_array
    except MemoryError as exc:
        raise DicomError("the image is too large to decode", h.ref.name, code=fc.TRUNCATED) from exc
    except RecursionError as exc:
        raise DicomError("the file is nested too deeply", h.ref.name, code=fc.TRUNCATED) from exc
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # includes pyo3 PanicException from Rust decoders
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        code = fc.UNDECODABLE
        if "no 'Pixel Data'" in msg or "no 'Float Pixel Data'" in msg:
            problem = "the file ends inside its pixel data: it is truncated"
            code = fc.TRUNCATED
        elif h.is_native:
            problem = f"the pixel data cannot be read: {msg}"
        elif decoder_available(h.transfer_syntax):
            problem = (
                f"the compressed image ({syntax_name(h.transfer_syntax)}) is damaged and cannot "
                f"be decoded ({msg})"
            )
        else:
            problem = f"cannot decode transfer syntax {syntax_name(h.transfer_syntax)}: {msg}"
        raise DicomError(problem, h.ref.name, code=code) from exc
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.shape[-2:] != (h.rows, h.columns) or arr.shape[0] != h.n_frames:
        raise DicomError(
            f"decoded pixels have shape {arr.shape}, the header declares "
            f"{h.n_frames} x {h.rows} x {h.columns}",
            h.ref.name,
            code=fc.UNDECODABLE,
        )
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and not np.little_endian):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def mask_and_sign(arr: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
    """Clear bits above ``bits_stored`` and sign-extend, in place where possible.

    Files with garbage in the unused high bits (overlays, 0x0F0F patterns) are common with 12-bit
    data in 16-bit words; DICOM PS3.5 section 8 says only ``bits_stored`` bits carry the value.
    """
    if arr.dtype.kind not in "iu":
        return arr
    nbits = arr.dtype.itemsize * 8
    if bits_stored >= nbits:
        return arr
    udt = np.dtype(f"u{arr.dtype.itemsize}")
    sdt = np.dtype(f"i{arr.dtype.itemsize}")
    u = arr.view(udt)
    mask = udt.type((1 << bits_stored) - 1)
    np.bitwise_and(u, mask, out=u)
    if signed:
        sign = udt.type(1 << (bits_stored - 1))
        high = udt.type(((1 << nbits) - 1) ^ int(mask))
        negative = (u & sign) != 0
        np.bitwise_or(u, high, out=u, where=negative)
        return u.view(sdt)
    return u
