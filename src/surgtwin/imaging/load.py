"""Series -> Volume: read pixels, mask, rescale to modality units, correct tilt, resample.

The result is cached by the identity of its files (path, size, mtime) so loading the same
unchanged series again costs nothing.
"""

from __future__ import annotations

import copy
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from surgtwin.errors import DicomError, LoadCancelled
from surgtwin.imaging import findings as fc
from surgtwin.imaging.findings import Finding, Severity
from surgtwin.imaging.header import ImageHeader
from surgtwin.imaging.pixels import (
    decode_file,
    fast_path_ok,
    mask_and_sign,
    raw_dtype,
    read_native_into,
)
from surgtwin.imaging.series import Series, SeriesIndex, compute_geometry, scan
from surgtwin.imaging.volume import Volume, VolumeInfo

ProgressFn = Callable[[int, int], None]


class VolumeCache:
    """Least-recently-used volumes, bounded by their total bytes."""

    def __init__(self, max_bytes: int = 3 << 30):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, Volume] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Volume | None:
        with self._lock:
            vol = self._items.get(key)
            if vol is not None:
                self._items.move_to_end(key)
            return vol

    def put(self, key: tuple, vol: Volume) -> None:
        with self._lock:
            self._items[key] = vol
            self._items.move_to_end(key)
            while (
                sum(v.nbytes for v in self._items.values()) > self.max_bytes
                and len(self._items) > 1
            ):
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


DEFAULT_CACHE = VolumeCache()


def _pick_series(index: SeriesIndex, uid: str | None, resample: bool = False) -> Series:
    if uid is not None:
        return index.get(uid)
    loadable = index.loadable()
    if resample:
        fixable = {fc.MISSING_SLICES, fc.UNEVEN_SPACING}
        loadable += [
            s
            for s in index.series
            if s.geometry is not None and s.errors() and {f.code for f in s.errors()} <= fixable
        ]
    if not loadable:
        refused = [s for s in index.series if s.errors()]
        reasons = "; ".join(f"{s.uid}: {s.errors()[0].message}" for s in refused)
        if not reasons:
            reasons = "no image series found"
            if index.skipped:
                reasons += f" ({len(index.skipped)} file(s) skipped: {index.skipped[0].reason})"
        code = refused[0].errors()[0].code if refused else None
        raise DicomError(f"no series can be loaded: {reasons}", index.root, code=code)
    return max(loadable, key=lambda s: math.prod(s.grid.size))


def load(
    series: Series | str | os.PathLike[str],
    *,
    uid: str | None = None,
    resample: bool = False,
    cache: VolumeCache | None = DEFAULT_CACHE,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Volume:
    """Load a series as a Volume in patient LPS mm.

    Parameters
    ----------
    series : Series or path
        A series from :func:`scan`, or a path (then the series ``uid``, or the largest loadable).
    uid : str, optional
        With a path: which series to load.
    resample : bool
        Interpolate series with missing slices or uneven spacing onto a uniform grid (linear,
        spacing = the smallest slice step). Without it such series are refused.
    cache : VolumeCache or None
        Where loaded volumes are kept; ``None`` always reads the files.
    progress : callable, optional
        ``progress(images_done, images_total)``.
    cancel : callable, optional
        Returns True to stop; raises :class:`LoadCancelled`.

    Returns
    -------
    Volume
        HU for CT (values as stored when the CT lacks rescale tags, with a ``no_rescale``
        finding); array indexed [k, j, i]; read-only.

    Raises
    ------
    DicomError
        The series cannot be loaded; the message names the file and the reason.
    """
    if not isinstance(series, Series):
        series = _pick_series(scan(series), uid, resample)
    if resample and series.geometry is not None and not series.geometry.uniform:
        series = copy.copy(series)
        series.findings = list(series.findings)
        compute_geometry(series, resample=True)
    errors = series.errors()
    if errors or series.geometry is None:
        first = (
            errors[0] if errors else Finding(fc.NOT_A_VOLUME, "no usable geometry", Severity.ERROR)
        )
        raise DicomError(first.message, series.first.ref.name, code=first.code)
    key = (tuple((*s.header.ref.key(), s.frame.frame) for s in series.slices), resample)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    raw = _read_stack(series, progress, cancel)
    values, units = _rescale(raw, series)
    del raw
    geom = series.geometry
    if not geom.uniform:
        values = _resample_uniform(values, geom.offsets, geom.grid.spacing[2], geom.grid.size[2])
    if geom.shear != (0.0, 0.0):
        values = _correct_tilt(values, series)
    values.flags.writeable = False
    first = series.first
    found = list(series.findings)
    if units == "HU" and values.size and float(values.min()) > -200:
        found.append(
            Finding(
                fc.NO_RESCALE,
                f"the lowest value is {float(values.min()):g} HU, but a CT in Hounsfield units "
                "shows air near -1000 HU: the rescale tags may be wrong (check before using "
                "HU thresholds)",
                Severity.WARNING,
            )
        )
    grid = geom.grid
    vol = Volume(
        array=values,
        spacing=grid.spacing,
        origin=grid.origin,
        direction=grid.matrix,
        info=VolumeInfo(
            modality=first.modality,
            description=first.description,
            study_description=first.study_description,
            study_date=first.study_date,
            body_part=first.body_part,
            manufacturer=first.manufacturer,
            model=first.model,
            series_uid=first.series_uid,
            study_uid=first.study_uid,
            frame_of_reference_uid=first.frame_of_reference_uid,
            units=units,
        ),
        patient=first.patient,
        findings=tuple(found),
        source_files=tuple(f.name for f in series.files),
    )
    if vol.size != grid.size:
        raise DicomError(
            f"internal check failed: volume {vol.size} does not match grid {grid.size}",
            first.ref.name,
        )
    if cache is not None:
        cache.put(key, vol)
    return vol


# ---------------------------------------------------------------------------- reading


def _read_stack(
    series: Series, progress: ProgressFn | None, cancel: Callable[[], bool] | None
) -> np.ndarray:
    slices = series.slices
    rows, cols = series.first.rows, series.first.columns
    dtypes = {raw_dtype(s.header) for s in slices}
    dtype = np.result_type(*dtypes)
    out = np.empty((len(slices), rows, cols), dtype=dtype)
    # Slices grouped by file, so a multi-frame or compressed file is decoded once.
    by_file: dict[object, list[tuple[int, int | None]]] = {}
    headers: dict[object, ImageHeader] = {}
    for k, s in enumerate(slices):
        by_file.setdefault(s.header.ref, []).append((k, s.frame.frame))
        headers[s.header.ref] = s.header
    done = 0
    lock = threading.Lock()

    def one(ref: object) -> None:
        nonlocal done
        if cancel is not None and cancel():
            return
        h = headers[ref]
        targets = by_file[ref]
        if fast_path_ok(h):
            native = raw_dtype(h)
            for k, frame in targets:
                if native == dtype:
                    read_native_into(h, frame, out[k])
                else:
                    tmp = np.empty((rows, cols), dtype=native)
                    read_native_into(h, frame, tmp)
                    out[k] = tmp
        else:
            frames = decode_file(h)
            for k, frame in targets:
                out[k] = frames[frame or 0]
        if h.bits_stored < h.bits_allocated and out.dtype.kind in "iu":
            for k, _frame in targets:
                out[k] = mask_and_sign(out[k].copy(), h.bits_stored, bool(h.pixel_representation))
        with lock:
            done += len(targets)
            if progress is not None:
                progress(done, len(slices))

    workers = min(8, (os.cpu_count() or 2) * 2, len(by_file))
    if workers <= 1:
        for ref in by_file:
            one(ref)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, list(by_file)))
    if cancel is not None and cancel():
        raise LoadCancelled("loading cancelled")
    return out


# ---------------------------------------------------------------------------- values


def _stored_range(h: ImageHeader) -> tuple[int, int]:
    if h.pixel_representation:
        return -(1 << (h.bits_stored - 1)), (1 << (h.bits_stored - 1)) - 1
    return 0, (1 << h.bits_stored) - 1


def _rescale(raw: np.ndarray, series: Series) -> tuple[np.ndarray, str]:
    """Stored values -> modality values (HU for CT), int16 where exact, else float32."""
    slopes = np.array([1.0 if s.frame.slope is None else s.frame.slope for s in series.slices])
    icpts = np.array(
        [0.0 if s.frame.intercept is None else s.frame.intercept for s in series.slices]
    )
    has_rescale = all(
        s.frame.slope is not None and s.frame.intercept is not None for s in series.slices
    )
    first = series.first
    if first.modality == "CT" and has_rescale and first.rescale_type.upper() in ("", "HU"):
        units = "HU"
    else:
        units = first.rescale_type if has_rescale and first.rescale_type not in ("US", "") else ""
    if raw.dtype.kind == "f":
        out = raw.astype(np.float32, copy=False)
        if np.any(slopes != 1) or np.any(icpts != 0):
            out = out * slopes[:, None, None].astype(np.float32) + icpts[:, None, None].astype(
                np.float32
            )
        return out, units
    integral = np.all(slopes == np.round(slopes)) and np.all(icpts == np.round(icpts))
    if integral and raw.dtype.itemsize <= 2:
        lo_raw, hi_raw = _stored_range(first)
        lo_raw = max(lo_raw, int(np.iinfo(raw.dtype).min))
        hi_raw = min(hi_raw, int(np.iinfo(raw.dtype).max))
        cand = np.concatenate([slopes * lo_raw + icpts, slopes * hi_raw + icpts])
        if cand.min() < -32768 or cand.max() > 32767:
            lo_raw, hi_raw = int(raw.min()), int(raw.max())
            cand = np.concatenate([slopes * lo_raw + icpts, slopes * hi_raw + icpts])
        if cand.min() >= -32768 and cand.max() <= 32767:
            if raw.dtype.itemsize == 2:
                # Modular uint16 arithmetic, then reinterpret: exact because the result fits.
                u = raw.view(np.uint16)
                if np.any(slopes != 1):
                    np.multiply(
                        u, (slopes.astype(np.int64) % 65536).astype(np.uint16)[:, None, None], out=u
                    )
                if np.any(icpts != 0):
                    np.add(
                        u, (icpts.astype(np.int64) % 65536).astype(np.uint16)[:, None, None], out=u
                    )
                return u.view(np.int16), units
            out = raw.astype(np.int16)
            if np.any(slopes != 1):
                out *= slopes.astype(np.int16)[:, None, None]
            if np.any(icpts != 0):
                out += icpts.astype(np.int16)[:, None, None]
            return out, units
    out = raw.astype(np.float32)
    out *= slopes.astype(np.float32)[:, None, None]
    out += icpts.astype(np.float32)[:, None, None]
    return out, units


# ---------------------------------------------------------------------------- resampling


def _resample_uniform(values: np.ndarray, offsets: np.ndarray, dz: float, n_out: int) -> np.ndarray:
    """Linear interpolation along the slice normal onto offsets 0, dz, 2 dz, ..."""
    targets = np.arange(n_out) * dz
    targets[-1] = min(targets[-1], offsets[-1])
    idx = np.clip(np.searchsorted(offsets, targets, side="right") - 1, 0, len(offsets) - 2)
    span = offsets[idx + 1] - offsets[idx]
    w = np.clip((targets - offsets[idx]) / span, 0.0, 1.0)
    out = np.empty((n_out, *values.shape[1:]), dtype=values.dtype)
    for k in range(n_out):
        a = values[idx[k]].astype(np.float32)
        b = values[idx[k] + 1].astype(np.float32)
        blend = a + (b - a) * np.float32(w[k])
        out[k] = np.rint(blend) if values.dtype.kind in "iu" else blend
    return out


def _shift_axis(src: np.ndarray, a: float, n_out: int, axis: int, fill: float) -> np.ndarray:
    """out[x] = src[x + a] along ``axis``, linear interpolation, ``fill`` outside."""
    f0 = math.floor(a)
    w = a - f0
    n_in = src.shape[axis]
    pad = n_out + abs(f0) + 2
    shape = list(src.shape)
    shape[axis] = n_in + 2 * pad
    padded = np.full(shape, fill, dtype=np.float32)
    sl = [slice(None)] * src.ndim
    sl[axis] = slice(pad, pad + n_in)
    padded[tuple(sl)] = src
    start = pad + f0
    s0 = [slice(None)] * src.ndim
    s1 = [slice(None)] * src.ndim
    s0[axis] = slice(start, start + n_out)
    s1[axis] = slice(start + 1, start + 1 + n_out)
    lo = padded[tuple(s0)]
    if w == 0:
        return lo
    return lo * np.float32(1 - w) + padded[tuple(s1)] * np.float32(w)


def _correct_tilt(values: np.ndarray, series: Series) -> np.ndarray:
    """Undo the gantry-tilt shear: translate each slice in-plane onto an orthogonal grid."""
    geom = series.geometry
    grid = geom.grid
    dx, dy, dz = grid.spacing
    n = values.shape[0]
    offsets = np.arange(n) * dz if not geom.uniform else geom.offsets
    total = float(offsets[-1])
    min_i = min(geom.shear[0] * total, 0.0)
    min_j = min(geom.shear[1] * total, 0.0)
    size_i, size_j, _ = grid.size
    fill = float(values.min())
    out = np.empty((n, size_j, size_i), dtype=values.dtype)
    for k in range(n):
        a_i = (geom.shear[0] * offsets[k] - min_i) / dx
        a_j = (geom.shear[1] * offsets[k] - min_j) / dy
        plane = _shift_axis(values[k].astype(np.float32), -a_j, size_j, 0, fill)
        plane = _shift_axis(plane, -a_i, size_i, 1, fill)
        out[k] = np.rint(plane) if values.dtype.kind in "iu" else plane
    return out
