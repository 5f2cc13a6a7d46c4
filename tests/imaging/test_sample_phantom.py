"""The bundled phantom through SurgTwin's own loader: ground-truth landmarks (LPS mm) land on
voxels of the right tissue."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surgtwin.imaging import load, scan


@pytest.fixture(scope="module")
def phantom(request):
    from testdata import REPO

    folder = REPO / "sample_dicom"
    vol = load(folder, cache=None)
    truth = json.loads((folder / "ground_truth.json").read_text())
    return vol, truth


def mean_hu(vol, lps, radius_vox=1) -> float:
    i, j, k = np.rint(vol.lps_to_index(lps)).astype(int)
    r = radius_vox
    return float(vol.array[k - r : k + r + 1, j - r : j + r + 1, i - r : i + r + 1].mean())


def test_sample_series_is_a_clean_ct(phantom):
    vol, truth = phantom
    assert vol.size == tuple(truth["image"]["size"]) == (160, 176, 120)
    assert vol.spacing == pytest.approx(truth["image"]["spacing"])
    assert vol.origin == pytest.approx(truth["image"]["origin"])
    assert vol.info.units == "HU" and vol.findings == ()
    assert vol.patient.name == "PHANTOM^LUMBAR"
    index = scan(vol.source_files[0].rsplit("/", 2)[0])
    assert len(index.series) == 1 and index.series[0].n_files == 120


@pytest.mark.parametrize("level", ["L3", "L4", "L5"])
def test_canal_centre_is_csf_and_body_is_cancellous(phantom, level):
    vol, truth = phantom
    lv = truth["levels"][level]
    assert -10 <= mean_hu(vol, lv["canal"]["centre"]) <= 40
    assert 150 <= mean_hu(vol, lv["body_centre"]) <= 350


@pytest.mark.parametrize("level", ["L3", "L4", "L5"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_pedicle_screw_axis_inside_bone(phantom, level, side):
    vol, truth = phantom
    screw = truth["levels"][level]["pedicle_screws"][side]
    entry, target = np.array(screw["entry"]), np.array(screw["target"])
    length = float(np.linalg.norm(target - entry))
    assert length == pytest.approx(screw["length_mm"], abs=0.01)
    # every mm from 1 mm inside the entry to the target is bone (cortex or cancellous)
    for t in np.arange(1.0, length, 1.0):
        p = entry + (target - entry) * t / length
        assert mean_hu(vol, p) > 150, (level, side, t)
    # the left screw is on the patient's left: larger LPS x than the right one at the entry
    other = truth["levels"][level]["pedicle_screws"]["right" if side == "left" else "left"]
    assert (entry[0] > other["entry"][0]) == (side == "left")


def test_left_marker_is_on_the_patients_left(phantom):
    vol, truth = phantom
    centre = truth["left_marker"]["centre"]
    assert centre[0] > 0
    assert mean_hu(vol, centre) > 2000
    # the brightest compact blob of the volume is the marker: find it and check its x
    k, j, i = np.unravel_index(int(np.argmax(vol.array)), vol.array.shape)
    assert vol.index_to_lps([i, j, k])[0] > 30
