"""Series previews: a small greyscale thumbnail of one image, decoded from one file only.

A preview is a convenience, never a reason to fail: any file that cannot be read or decoded
gives ``None`` (the browser then says "no preview").
"""

from __future__ import annotations

import numpy as np

from surgtwin.imaging.pixels import (
    decode_file,
    fast_path_ok,
    mask_and_sign,
    raw_dtype,
    read_native_into,
)
from surgtwin.imaging.series import Series, SliceRef

__all__ = ["series_preview", "slice_preview"]

# Images larger than this (rows x columns x frames) are not decoded for a preview.
MAX_PREVIEW_PIXELS = 64 << 20


def _stored_pixels(ref: SliceRef) -> np.ndarray:
    """Stored values (rows, columns) of one image, masked and signed."""
    h = ref.header
    if fast_path_ok(h):
        out = np.empty((h.rows, h.columns), dtype=raw_dtype(h))
        read_native_into(h, ref.frame.frame, out)
    else:
        if h.rows * h.columns * max(h.n_frames, 1) > MAX_PREVIEW_PIXELS:
            raise ValueError("too large for a preview")
        out = decode_file(h)[ref.frame.frame or 0]
    if h.bits_stored < h.bits_allocated and out.dtype.kind in "iu":
        out = mask_and_sign(out.copy(), h.bits_stored, bool(h.pixel_representation))
    return out


def slice_preview(ref: SliceRef, size: int = 96) -> np.ndarray | None:
    """A thumbnail of one image: uint8 (rows, columns), longest side ``size`` pixels.

    Parameters
    ----------
    ref : SliceRef
        The image (a file, or one frame of a multi-frame file).
    size : int
        Longest side of the thumbnail in pixels; the other side keeps the physical aspect
        ratio (from Pixel Spacing, mm).

    Returns
    -------
    numpy.ndarray or None
        Display grey levels (2nd to 98th percentile of the modality values mapped to 0..255,
        inverted for MONOCHROME1), or ``None`` when the image cannot be read or decoded.
    """
    h = ref.header
    if (
        h.problem
        or h.samples_per_pixel != 1
        or h.photometric not in ("MONOCHROME1", "MONOCHROME2")
        or h.rows < 1
        or h.columns < 1
    ):
        return None
    try:
        stored = _stored_pixels(ref)
        if stored.ndim != 2 or stored.shape != (h.rows, h.columns):
            return None
        values = stored.astype(np.float32)
        slope, intercept = ref.frame.slope, ref.frame.intercept
        if slope is not None:
            values *= np.float32(slope)
        if intercept is not None:
            values += np.float32(intercept)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return None
        lo, hi = np.percentile(finite, (2.0, 98.0))
        if not hi > lo:
            lo, hi = float(finite.min()), float(finite.max())
        rows, cols = values.shape
        row_mm, col_mm = ref.frame.pixel_spacing or (1.0, 1.0)
        height, width = rows * row_mm, cols * col_mm
        scale = size / max(height, width)
        out_rows = max(1, min(size, round(height * scale)))
        out_cols = max(1, min(size, round(width * scale)))
        ri = ((np.arange(out_rows) + 0.5) * rows / out_rows).astype(int)
        ci = ((np.arange(out_cols) + 0.5) * cols / out_cols).astype(int)
        small = np.nan_to_num(values[np.ix_(ri, ci)], nan=lo, posinf=hi, neginf=lo)
        grey = np.clip((small - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0) * 255.0
        if h.photometric == "MONOCHROME1":
            grey = 255.0 - grey
        return np.ascontiguousarray(grey.astype(np.uint8))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # hostile files: decoders may raise anything, even Rust panics
        return None


def series_preview(series: Series, size: int = 96) -> np.ndarray | None:
    """A thumbnail of the middle image of a series (see :func:`slice_preview`)."""
    if not series.slices:
        return None
    return slice_preview(series.slices[len(series.slices) // 2], size)
