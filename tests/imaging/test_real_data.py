"""Every series in ../shared/data: loads with the expected grid and values, or is refused or
flagged with the right finding code."""

from __future__ import annotations

import numpy as np
import pytest

from surgtwin.errors import DicomError
from surgtwin.imaging import load, scan
from testdata import require_data

# (folder, expected parts: list of (size, spacing, (min, max) or None, finding codes) or the
#  code of the error that refuses the series)
LOADS = [
    ("ct-abdomen-spine", [((512, 512, 134), (1.07421875, 1.07421875, 3.0), (-1000, 1988), set())]),
    ("ct-head-small", [((64, 64, 93), (3.2, 3.2, 1.5), (0, 3926), {"no_rescale"})]),
    ("mr-snippets/anatomical/001", [((256, 256, 4), (1.0, 1.0, 1.0), (0, 254), set())]),
    ("mr-snippets/ge/anatomical/001", [((256, 256, 4), (1.0, 1.0, 1.0), (0, 254), set())]),
    (
        "mr-snippets/ge/anatomical/001_single_slice",
        [((256, 256, 1), (1.0, 1.0, 1.0), (0, 254), {"single_slice"})],
    ),
    (
        "mr-snippets/generic/anatomical/002_non_isotropic",
        [((64, 28, 4), (6.4, 4.0, 0.5), None, set())],
    ),
    (
        "mr-snippets/siemens_multiframe/anatomical/001",
        [((256, 256, 8), (0.9375, 0.9375, 0.9), (0, 254), set())],
    ),
    (
        "multiframe/dcm_qa_enh/Philips",
        [((64, 64, 32), (4.0, 4.0, 4.0), None, {"split_series"})] * 2,
    ),
    (
        "multiframe/dcm_qa_enh/Siemens/XA10",
        [((64, 64, 6), (3.375, 3.375, 2.4), None, {"split_series"})] * 4,
    ),
    (
        "bad/dicom2nifti-failing/sliceorientation",
        [
            ((288, 288, 2), (0.32, 0.32, 3.3), None, {"mixed_orientation"}),
            ((288, 288, 2), (0.5556, 0.5556, 4.4), None, {"mixed_orientation"}),
        ],
    ),
    ("bad/dicom2nifti-failing/slicecount", [((256, 256, 2), (1.0, 1.0, 1.0), None, set())]),
    (
        "bad/dicom2nifti-failing/gantrytilting",
        [((512, 521, 4), (0.41797, 0.41797, 4.8515), None, {"gantry_tilt"})],
    ),
]
for name in (
    "compressed",
    "compressed_j2k",
    "compressed_jpeg",
    "compressed_jpegls",
    "compressed_rle",
):
    LOADS.append(
        (f"mr-snippets/generic/{name}/001", [((256, 256, 4), (1.0, 1.0, 1.0), (0, 254), set())])
    )

REFUSED = [
    ("mr-snippets/ge/dti/001", "duplicate_positions"),
    ("mr-snippets/ge/dti/002", "duplicate_positions"),
    ("mr-snippets/ge/fmri/001", "duplicate_positions"),
    ("mr-snippets/generic/rgb/001", "colour_image"),
    ("syntaxes/dcm_qa_ts", "duplicate_positions"),
    ("bad/dicom2nifti-failing/notavolume", "duplicate_positions"),
    ("bad/dicom2nifti-failing/sliceincrement/001", "missing_slices"),
    ("bad/dicom2nifti-failing/sliceincrement/002", "missing_slices"),
    (
        "syntaxes/cornerstone/CTImage.dcm_JPEGProcess10_12TransferSyntax_1.2.840.10008.1.2.4.55.dcm",
        "undecodable",
    ),
    (
        "syntaxes/cornerstone/CTImage.dcm_JPEGProcess6_8TransferSyntax_1.2.840.10008.1.2.4.53.dcm",
        "undecodable",
    ),
    ("syntaxes/cornerstone/US-YBR_FULL_422-EVRLE.dcm", "colour_image"),
    ("syntaxes/cornerstone/no-pixel-spacing.dcm", "colour_image"),
]


@pytest.mark.parametrize(("folder", "parts"), LOADS, ids=[f for f, _ in LOADS])
def test_series_loads_with_expected_grid(folder, parts):
    index = scan(require_data(*folder.split("/")))
    assert len(index.series) == len(parts)
    for series, (size, spacing, value_range, codes) in zip(index.series, parts, strict=True):
        assert series.loadable, series.findings
        vol = load(series, cache=None)
        assert vol.size == size
        assert vol.spacing == pytest.approx(spacing, abs=1e-3)
        if value_range is not None:
            assert (float(vol.array.min()), float(vol.array.max())) == value_range
        assert {f.code for f in vol.findings} == codes
        # direction is a right-handed rotation
        assert vol.direction @ vol.direction.T == pytest.approx(np.eye(3), abs=1e-6)
        assert float(np.linalg.det(vol.direction)) == pytest.approx(1.0)


@pytest.mark.parametrize(("item", "code"), REFUSED, ids=[f for f, _ in REFUSED])
def test_series_refused_with_reason(item, code):
    path = require_data(*item.split("/"))
    index = scan(path)
    assert index.series, "the images are listed even when they cannot be loaded"
    assert not index.loadable()
    assert any(code in {f.code for f in s.errors()} for s in index.series)
    with pytest.raises(DicomError) as err:
        load(path)
    assert err.value.code == code
    assert len(err.value.problem) > 30
    assert str(path) in str(err.value)


def test_missing_slices_load_when_resampling_is_asked():
    path = require_data("bad", "dicom2nifti-failing", "sliceincrement", "001")
    vol = load(path, resample=True)
    assert vol.size == (512, 512, 5)
    assert vol.spacing[2] == pytest.approx(5.0, abs=1e-3)
    codes = {f.code: f for f in vol.findings}
    assert "missing_slices" in codes and codes["missing_slices"].severity == "warning"


def test_enhanced_multiframe_split_values_are_distinct_volumes():
    index = scan(require_data("multiframe", "dcm_qa_enh", "Philips"))
    a, b = (load(s, cache=None) for s in index.series)
    # the field map holds a magnitude (>= 0) and a phase-like (signed) image
    assert float(a.array.min()) >= 0 or float(b.array.min()) >= 0
    assert min(float(a.array.min()), float(b.array.min())) < -400


def test_lossless_syntaxes_decode_identically():
    arrays = {}
    for name in (
        "compressed",
        "compressed_j2k",
        "compressed_jpeg",
        "compressed_jpegls",
        "compressed_rle",
    ):
        arrays[name] = load(require_data("mr-snippets", "generic", name, "001"), cache=None).array
    ref = arrays.pop("compressed")
    for name, arr in arrays.items():
        assert np.array_equal(arr, ref), name
