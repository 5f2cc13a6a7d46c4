"""Decoders, bit masking and sign extension on real files."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from surgtwin.imaging import load
from surgtwin.imaging.pixels import mask_and_sign
from testdata import require_data

CORNERSTONE = "syntaxes/cornerstone/CTImage.dcm"
LOSSLESS = [
    "BigEndianExplicitTransferSyntax_1.2.840.10008.1.2.2",
    "DeflatedExplicitVRLittleEndianTransferSyntax_1.2.840.10008.1.2.1.99",
    "JPEG2000LosslessOnlyTransferSyntax_1.2.840.10008.1.2.4.90",
    "JPEGLSLosslessTransferSyntax_1.2.840.10008.1.2.4.80",
    "JPEGProcess14SV1TransferSyntax_1.2.840.10008.1.2.4.70",
    "JPEGProcess14TransferSyntax_1.2.840.10008.1.2.4.57",
    "LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1",
    "LittleEndianImplicitTransferSyntax_1.2.840.10008.1.2",
    "RLELosslessTransferSyntax_1.2.840.10008.1.2.5",
]
LOSSY = [
    ("JPEG2000TransferSyntax_1.2.840.10008.1.2.4.91", 10),
    ("JPEGLSLossyTransferSyntax_1.2.840.10008.1.2.4.81", 5),
]


def _cs(name: str):
    return require_data(*f"{CORNERSTONE}_{name}.dcm".split("/"))


@pytest.fixture(scope="module")
def reference():
    return load(require_data(*CORNERSTONE.split("/")), cache=None).array


@pytest.mark.parametrize("syntax", LOSSLESS)
def test_lossless_syntax_equals_reference(syntax, reference):
    vol = load(_cs(syntax), cache=None)
    assert np.array_equal(vol.array, reference)
    assert vol.info.units == "HU"


@pytest.mark.parametrize(("syntax", "tolerance"), LOSSY)
def test_lossy_syntax_close_to_reference(syntax, tolerance, reference):
    arr = load(_cs(syntax), cache=None).array
    assert np.abs(arr.astype(int) - reference).max() <= tolerance


def test_reference_ct_slice_hu_range(reference):
    assert reference.shape == (1, 512, 512)
    assert (int(reference.min()), int(reference.max())) == (-3024, 1378)


def test_12bit_garbage_high_bits_are_masked():
    folder = require_data("odd", "dcm_qa_12bit")
    clean = load(folder / "12bitUnsigned.dcm", cache=None).array.astype(int)
    striped = load(folder / "12bitUnsigned_0x0F0F.dcm", cache=None).array.astype(int)
    signed = load(folder / "12bitSigned_0x0F0F.dcm", cache=None).array.astype(int)
    assert clean.min() >= 0 and clean.max() <= 4095
    assert striped.min() >= 0 and striped.max() <= 4095
    assert signed.min() >= -2048 and signed.max() <= 2047 and signed.min() < 0
    # where the stripes were not painted, the files hold the same stored words
    words = {
        name: np.frombuffer(pydicom.dcmread(folder / name).PixelData, "<u2").reshape(1, 384, 384)
        for name in ("12bitUnsigned.dcm", "12bitUnsigned_0x0F0F.dcm")
    }
    unpainted = words["12bitUnsigned.dcm"] == words["12bitUnsigned_0x0F0F.dcm"]
    assert int((~unpainted).sum()) == 360
    assert np.array_equal(clean[unpainted], striped[unpainted])
    # 42 words of the 'clean' file carry bit 12: masked to 12 bits, not kept as huge values
    assert int((words["12bitUnsigned.dcm"] > 4095).sum()) == 42
    # the signed file: bit 11 is the sign
    low = unpainted & (clean < 2048)
    high = unpainted & (clean >= 2048)
    assert np.array_equal(signed[low], clean[low])
    assert np.array_equal(signed[high], clean[high] - 4096)
    # painted words 0x0F0F read as 0xF0F: 3855 unsigned, -241 signed
    painted = words["12bitUnsigned_0x0F0F.dcm"] == 0x0F0F
    assert painted.any()
    assert set(striped[painted].tolist()) == {3855}
    assert set(signed[painted].tolist()) == {-241}


def test_mask_and_sign_unit():
    arr = np.array([0x0FFF, 0xF800, 0x0800, 0x07FF, 0x1234], dtype=np.uint16)
    assert mask_and_sign(arr.copy(), 12, signed=False).tolist() == [4095, 2048, 2048, 2047, 0x234]
    assert mask_and_sign(arr.copy(), 12, signed=True).tolist() == [-1, -2048, -2048, 2047, 0x234]
