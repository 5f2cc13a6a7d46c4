"""Series thumbnails: one decoded image, physical aspect, never an exception."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from surgtwin.imaging import scan
from surgtwin.imaging.preview import series_preview, slice_preview
from testdata import require_data

try:
    from .dicom_factory import write_ct_series
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from dicom_factory import write_ct_series


def _series(tmp_path, rows=40, cols=80, spacing=(1.0, 2.0, 1.0)):
    volume = np.full((3, rows, cols), -1000, dtype=np.int16)
    volume[1, rows // 4 : rows // 2, cols // 2 : 3 * cols // 4] = 1000  # a bright block
    write_ct_series(tmp_path / "ct", volume, spacing=spacing)
    (series,) = scan(tmp_path / "ct").series
    return series


def test_preview_keeps_the_physical_aspect_and_shows_the_middle_slice(tmp_path):
    # 80 columns x 1 mm by 40 rows x 2 mm: 80 x 80 mm, so a square thumbnail
    series = _series(tmp_path)
    thumb = series_preview(series, size=64)
    assert thumb is not None and thumb.dtype == np.uint8 and thumb.shape == (64, 64)
    # the bright block (rows 10-20 of 40, columns 40-60 of 80) of the middle slice
    assert thumb[20:30, 34:46].min() == 255
    assert thumb[:12, :].max() == 0 and thumb[:, :28].max() == 0


def test_preview_of_a_damaged_file_is_none(tmp_path):
    series = _series(tmp_path)
    middle = series.slices[1]
    path = Path(middle.header.ref.path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])  # truncated after the scan read its header
    assert slice_preview(middle) is None
    assert slice_preview(series.slices[0]) is not None


def test_real_and_hostile_files_never_raise():
    head = scan(require_data("ct-head-small")).series[0]
    thumb = series_preview(head, size=96)
    assert thumb is not None and max(thumb.shape) == 96
    assert thumb.min() < 30 and thumb.max() > 220, "a windowed image, not a flat grey"
    made = 0
    for series in scan(require_data("bad")).series:
        thumb = series_preview(series, size=48)
        if thumb is not None:
            assert thumb.dtype == np.uint8 and thumb.ndim == 2 and max(thumb.shape) <= 48
            made += 1
    assert made > 5
