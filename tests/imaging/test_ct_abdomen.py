"""The realistic case: an abdominal CT with the whole lumbar spine (512 x 512 x 134)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from surgtwin.imaging import load, scan
from testdata import require_data


@pytest.fixture(scope="module")
def ct():
    return load(require_data("ct-abdomen-spine"), cache=None)


def test_grid_and_hu(ct):
    assert ct.size == (512, 512, 134)
    assert ct.spacing == pytest.approx((1.07421875, 1.07421875, 3.0))
    assert ct.info.units == "HU"
    assert ct.array.dtype == np.int16
    assert (int(ct.array.min()), int(ct.array.max())) == (-1000, 1988)
    assert ct.info.modality == "CT"
    assert ct.findings == ()


def test_geometry_equals_simpleitk(ct):
    folder = str(require_data("ct-abdomen-spine"))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    img = reader.Execute()
    assert ct.origin == pytest.approx(img.GetOrigin(), abs=1e-6)
    assert ct.direction.reshape(-1) == pytest.approx(img.GetDirection(), abs=1e-9)
    assert ct.spacing == pytest.approx(img.GetSpacing(), abs=1e-9)
    assert np.array_equal(sitk.GetArrayViewFromImage(img), ct.array)
    # and the bounds follow: slices run from z = 85.91 (pelvis) to 484.91 mm (chest)
    xmin, _xmax, ymin, _ymax, zmin, zmax = ct.bounds()
    assert (zmin, zmax) == pytest.approx((85.91, 484.91))
    assert (xmin, ymin) == pytest.approx((-275.0, -178.1))


def test_left_stays_left(ct):
    """The liver (largest soft-tissue region in the upper abdomen) is on the patient's right:
    smaller LPS x than the spine."""
    for k in (80, 90, 100, 105):
        sl = ct.array[k]
        soft = sitk.GetImageFromArray(((sl > 60) & (sl < 200)).astype(np.uint8))
        labels = sitk.RelabelComponent(sitk.ConnectedComponent(soft), sortByObjectSize=True)
        j, i = np.nonzero(sitk.GetArrayViewFromImage(labels) == 1)
        liver_x = ct.index_to_lps([i.mean(), j.mean(), k])[0]
        # vertebral body: bone near the image centre, posterior half
        _jj, ii = np.nonzero(sl[250:380, 200:320] > 300)
        spine_x = ct.index_to_lps([ii.mean() + 200, 0, k])[0]
        assert liver_x < spine_x - 20, (k, liver_x, spine_x)


def test_metadata_and_identifiers_kept_apart(ct):
    assert ct.info.description == "PANCREAS DI, iDose (3)"
    assert ct.info.manufacturer == "Philips"
    assert ct.info.study_date == "20120706"
    assert ct.info.body_part == "CHEST"
    assert ct.patient.name == "Pancreas-CT-CB_001"
    assert "Pancreas-CT-CB_001" not in repr(ct.info)


def test_scan_lists_non_dicom_files_with_reason():
    index = scan(require_data("ct-abdomen-spine"))
    assert len(index.series) == 1 and index.series[0].n_files == 134
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in index.skipped}
    assert reasons == {
        "Citations": "not a DICOM file",
        "LICENSE": "not a DICOM file",
        "SOURCE.txt": "not a DICOM file",
    }
