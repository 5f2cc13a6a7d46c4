"""Label-map files: 3D Slicer .seg.nrrd, NIfTI + label table, DICOM SEG.

Positions are checked with readers other than our own where possible (SimpleITK for NRRD and
NIfTI, the raw NIfTI sform, pydicom/highdicom for DICOM SEG), so a sign error shared by our
writer and reader cannot hide: a label on the patient's left (LPS x > 0) must stay there.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import struct
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_factory import write_ct_series

from surgtwin import __version__
from surgtwin.imaging import load
from surgtwin.imaging.volume import ImageGeometry, Volume
from surgtwin.segmentation.labelmap import Label, LabelMap, Role
from surgtwin.segmentation.seg_io import (
    SegIOError,
    labels_sidecar_path,
    read_nifti,
    read_seg_nrrd,
    write_dicom_seg,
    write_nifti,
    write_seg_nrrd,
)
from testdata import require_data

# The phantom's left-side marker bead is at LPS (40, 52.5, 0); (40, 52, 0) is a voxel centre.
LEFT_POINT = (40.0, 52.0, 0.0)
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


# ---------------------------------------------------------------------------- helpers


def _box(geometry: ImageGeometry, point: tuple[float, float, float], r: int = 1):
    """Slices (k, j, i) of a (2r+1)^3 voxel cube around the voxel nearest an LPS point."""
    i, j, k = (int(v) for v in np.rint(geometry.lps_to_index(point)))
    return (slice(k - r, k + r + 1), slice(j - r, j + r + 1), slice(i - r, i + r + 1))


def _phantom_labels(vol: Volume) -> LabelMap:
    """Bone (HU > 200), a canal block, and a marker cube on the patient's left."""
    arr = np.zeros(vol.array.shape, np.uint8)
    arr[vol.array > 200] = 1
    arr[_box(vol.geometry, (0.0, 0.0, 0.0), 2)] = 2
    arr[_box(vol.geometry, LEFT_POINT, 1)] = 7
    labels = [
        Label(1, "Vertebrae", (0.9, 0.85, 0.72), Role.BONE),
        Label(2, "Spinal canal", (0.95, 0.8, 0.2), Role.CRITICAL, visible=False, opacity=0.5),
        Label(7, "Left marker", (0.85, 0.2, 0.2), Role.TARGET),
    ]
    return LabelMap(vol.geometry, arr, labels)


@pytest.fixture
def phantom(sample_dir: Path) -> Volume:
    return load(sample_dir)


@pytest.fixture
def phantom_labels(phantom: Volume) -> LabelMap:
    return _phantom_labels(phantom)


def _nrrd_header(path: Path) -> tuple[list[str], dict[str, str], bytes]:
    raw = path.read_bytes()
    head, _, data = raw.partition(b"\n\n")
    lines = head.decode("utf-8").split("\n")
    keys = dict(line.split(":=", 1) for line in lines if ":=" in line)
    return lines, keys, data


def _assert_same_geometry(a: ImageGeometry, b: ImageGeometry, tol: float = 1e-6) -> None:
    assert tuple(a.shape) == tuple(b.shape)
    np.testing.assert_allclose(a.origin, b.origin, atol=tol)
    np.testing.assert_allclose(a.spacing, b.spacing, atol=tol)
    np.testing.assert_allclose(a.direction, b.direction, atol=tol)


def _assert_same_labels(a: LabelMap, b: LabelMap, *, display: bool = False) -> None:
    assert sorted(a.labels) == sorted(b.labels)
    for v, lab in a.labels.items():
        other = b.labels[v]
        assert other.name == lab.name
        assert other.role == lab.role
        np.testing.assert_allclose(other.color, lab.color, atol=1e-9)
        if display:
            assert (other.visible, other.opacity) == (lab.visible, lab.opacity)


def _no_temp_files(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if ".tmp" in p.name]


def _oblique_volume(tmp_path: Path) -> Volume:
    """A small synthetic CT: i runs to the patient's right, j downwards, k anteriorly."""
    values = np.full((6, 7, 9), -1000, dtype=np.int16)
    write_ct_series(
        tmp_path / "oblique",
        values,
        spacing=(0.7, 0.9, 2.0),
        origin=(12.0, -20.0, 30.0),
        row=(-1.0, 0.0, 0.0),
        col=(0.0, 0.0, -1.0),
    )
    return load(tmp_path / "oblique")


def _tilted_volume(tmp_path: Path) -> tuple[Volume, Path]:
    """A gantry-tilted series (image planes tilted 15 degrees, slices stepping along z)."""
    t = math.radians(15.0)
    n = 8
    values = np.full((n, 10, 12), -1000, dtype=np.int16)
    values[:, 4:6, 5:7] = 400
    folder = tmp_path / "tilted"
    write_ct_series(
        folder,
        values,
        spacing=(1.0, 1.0, 2.0),
        row=(1.0, 0.0, 0.0),
        col=(0.0, math.cos(t), -math.sin(t)),
        positions=[(0.0, 0.0, 2.0 * k) for k in range(n)],
    )
    return load(folder), folder


# ---------------------------------------------------------------------------- NRRD


def test_nrrd_round_trip_is_identical(phantom_labels: LabelMap, tmp_path: Path) -> None:
    path = write_seg_nrrd(phantom_labels, tmp_path / "spine.seg.nrrd")
    assert path == tmp_path / "spine.seg.nrrd"
    back = read_seg_nrrd(path)
    assert np.array_equal(back.array, phantom_labels.array)
    _assert_same_labels(back, phantom_labels)
    _assert_same_geometry(back.geometry, phantom_labels.geometry)
    _no_temp_files(tmp_path)


def test_nrrd_header_has_geometry_and_slicer_fields(
    phantom_labels: LabelMap, tmp_path: Path
) -> None:
    path = write_seg_nrrd(phantom_labels, tmp_path / "spine.seg.nrrd")
    lines, keys, data = _nrrd_header(path)
    assert lines[0] == "NRRD0004"
    for expected in (
        "type: unsigned char",
        "dimension: 3",
        "space: left-posterior-superior",
        "sizes: 160 176 120",
        "space directions: (0.8,0,0) (0,0.8,0) (0,0,1)",
        "space origin: (-64,-56,-60)",
        "kinds: domain domain domain",
        "encoding: gzip",
    ):
        assert expected in lines
    # the data: gzip of the [k, j, i] array as it is (i fastest)
    assert gzip.decompress(data) == np.ascontiguousarray(phantom_labels.array).tobytes()

    assert keys["Segmentation_MasterRepresentation"] == "Binary labelmap"
    assert keys["Segmentation_ContainedRepresentationNames"] == "Binary labelmap|"
    assert keys["Segmentation_ReferenceImageExtentOffset"] == "0 0 0"
    assert "Segment3_ID" not in keys
    expected = [
        (1, "Vertebrae", "bone"),
        (2, "Spinal canal", "critical"),
        (7, "Left marker", "target"),
    ]
    arr = phantom_labels.array
    for n, (value, name, role) in enumerate(expected):
        assert keys[f"Segment{n}_ID"] == f"Segment_{value}"
        assert keys[f"Segment{n}_Name"] == name
        assert keys[f"Segment{n}_LabelValue"] == str(value)
        assert keys[f"Segment{n}_Layer"] == "0"
        assert keys[f"Segment{n}_NameAutoGenerated"] == "0"
        assert keys[f"Segment{n}_ColorAutoGenerated"] == "0"
        colour = [float(c) for c in keys[f"Segment{n}_Color"].split()]
        np.testing.assert_allclose(colour, phantom_labels.labels[value].color)
        tags = keys[f"Segment{n}_Tags"]
        assert f"SurgTwin_Role:{role}|" in tags
        assert "TerminologyEntry:" in tags and tags.endswith("|")
        k, j, i = np.nonzero(arr == value)
        extent = [i.min(), i.max(), j.min(), j.max(), k.min(), k.max()]
        assert keys[f"Segment{n}_Extent"] == " ".join(str(int(v)) for v in extent)
    assert "SCT^272673000^Bone structure" in keys["Segment0_Tags"]


def test_nrrd_keeps_the_left_side_in_sitk(phantom_labels: LabelMap, tmp_path: Path) -> None:
    path = write_seg_nrrd(phantom_labels, tmp_path / "spine.seg.nrrd")
    img = sitk.ReadImage(str(path))  # ITK's NRRD reader, independent of ours
    index = img.TransformPhysicalPointToIndex(LEFT_POINT)
    assert img[index] == 7
    arr = sitk.GetArrayFromImage(img)
    k, j, i = (float(np.mean(v)) for v in np.nonzero(arr == 7))
    centre = img.TransformContinuousIndexToPhysicalPoint((i, j, k))
    np.testing.assert_allclose(centre, LEFT_POINT, atol=1e-6)
    assert centre[0] > 0  # patient's left
    back = read_seg_nrrd(path)
    i, j, k = (int(v) for v in np.rint(back.geometry.lps_to_index(LEFT_POINT)))
    assert back.array[k, j, i] == 7


def test_nrrd_oblique_grid_keeps_points(tmp_path: Path) -> None:
    vol = _oblique_volume(tmp_path)
    np.testing.assert_allclose(vol.direction[:, 0], (-1, 0, 0))
    point = (10.6, -26.0, 26.4)  # patient's left: voxel (2, 4, 3)
    lm = LabelMap(vol.geometry)
    mask = np.zeros(vol.geometry.shape, bool)
    mask[_box(vol.geometry, point, 0)] = True
    lm.change("marker", 4, mask, label=Label(4, "Marker", (1.0, 0.0, 0.0), Role.TARGET))
    path = write_seg_nrrd(lm, tmp_path / "oblique.seg.nrrd")
    lines, _keys, _data = _nrrd_header(path)
    assert "space directions: (-0.7,0,0) (0,0,-0.9) (0,-2,0)" in lines
    img = sitk.ReadImage(str(path))
    assert img[img.TransformPhysicalPointToIndex(point)] == 4
    back = read_seg_nrrd(path)
    _assert_same_geometry(back.geometry, vol.geometry)
    assert np.array_equal(back.array, lm.array)


def test_plain_itk_label_nrrd_reads(phantom: Volume, tmp_path: Path) -> None:
    arr = np.zeros(phantom.array.shape, np.int16)
    arr[_box(phantom.geometry, LEFT_POINT, 1)] = 3
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(phantom.to_sitk())
    sitk.WriteImage(img, str(tmp_path / "plain.nrrd"), True)
    lm = read_seg_nrrd(tmp_path / "plain.nrrd")
    assert lm.names() == ["Label 3"]
    assert lm.labels[3].role == Role.OTHER
    _assert_same_geometry(lm.geometry, phantom.geometry)
    i, j, k = (int(v) for v in np.rint(lm.geometry.lps_to_index(LEFT_POINT)))
    assert lm.array[k, j, i] == 3


def _write_raw_nrrd(path: Path, fields: list[str], data: np.ndarray) -> Path:
    header = "NRRD0004\n" + "\n".join(fields) + "\nencoding: raw\n\n"
    path.write_bytes(header.encode() + np.ascontiguousarray(data).tobytes())
    return path


def test_ras_nrrd_is_converted_to_lps(tmp_path: Path) -> None:
    data = np.zeros((3, 4, 5), np.uint8)
    data[1, 2, 3] = 9
    path = _write_raw_nrrd(
        tmp_path / "ras.nrrd",
        [
            "type: uchar",
            "dimension: 3",
            "space: right-anterior-superior",
            "sizes: 5 4 3",
            "space directions: (-1,0,0) (0,-1,0) (0,0,2)",
            "kinds: domain domain domain",
            "space origin: (-10,-20,30)",
        ],
        data,
    )
    lm = read_seg_nrrd(path)
    # RAS (-10 - 3, -20 - 2, 30 + 2) = LPS (13, 22, 32)
    np.testing.assert_allclose(lm.geometry.index_to_lps((3, 2, 1)), (13.0, 22.0, 32.0))
    np.testing.assert_allclose(lm.geometry.direction, np.eye(3), atol=1e-12)
    assert lm.array[1, 2, 3] == 9


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"space": "space: scanner-xyz"}, "not supported"),
        ({"space": None}, "no 'space' field"),
        ({"kinds": "kinds: domain domain RGB-color"}, "kinds"),
        ({"type": "type: block"}, "not a label-map type"),
    ],
)
def test_nrrd_refuses_other_spaces_and_kinds(tmp_path: Path, change, message) -> None:
    fields = {
        "type": "type: uchar",
        "dimension": "dimension: 3",
        "space": "space: left-posterior-superior",
        "sizes": "sizes: 3 3 3",
        "directions": "space directions: (1,0,0) (0,1,0) (0,0,1)",
        "kinds": "kinds: domain domain domain",
        "origin": "space origin: (0,0,0)",
    }
    fields.update(change)
    path = _write_raw_nrrd(
        tmp_path / "bad.nrrd", [f for f in fields.values() if f], np.ones((3, 3, 3), np.uint8)
    )
    with pytest.raises(SegIOError, match=message):
        read_seg_nrrd(path)


def test_nrrd_layers_merge_unless_they_overlap(tmp_path: Path) -> None:
    layers = np.zeros((2, 3, 4, 2), np.uint8)  # [k, j, i, layer]
    layers[0, 0, 0, 0] = 1
    layers[1, 1, 1, 1] = 1
    fields = [
        "type: uchar",
        "dimension: 4",
        "space: left-posterior-superior",
        "sizes: 2 4 3 2",
        "space directions: none (1,0,0) (0,1,0) (0,0,1)",
        "kinds: list domain domain domain",
        "space origin: (0,0,0)",
        "Segment0_ID:=a",
        "Segment0_Name:=first",
        "Segment0_Layer:=0",
        "Segment0_LabelValue:=1",
        "Segment1_ID:=b",
        "Segment1_Name:=second",
        "Segment1_Layer:=1",
        "Segment1_LabelValue:=1",
    ]
    lm = read_seg_nrrd(_write_raw_nrrd(tmp_path / "layers.seg.nrrd", fields, layers))
    assert lm.names() == ["first", "second"]
    assert lm.array[0, 0, 0] == lm.label("first").value
    assert lm.array[1, 1, 1] == lm.label("second").value
    layers[0, 0, 0, 1] = 1
    with pytest.raises(SegIOError, match="overlaps"):
        read_seg_nrrd(_write_raw_nrrd(tmp_path / "overlap.seg.nrrd", fields, layers))


def test_cropped_nrrd_is_placed_on_the_volume_grid(
    phantom_labels: LabelMap, phantom: Volume, tmp_path: Path
) -> None:
    # A segmentation saved on a box of the grid (as 3D Slicer may crop it): voxels 100.. along i.
    g = phantom.geometry
    sub = ImageGeometry(
        (g.shape[0], g.shape[1], g.shape[2] - 100),
        g.spacing,
        tuple(g.index_to_lps((100, 0, 0))),
        g.direction,
    )
    crop = LabelMap(
        sub,
        np.ascontiguousarray(phantom_labels.array[:, :, 100:]),
        list(phantom_labels.labels.values()),
    )
    path = write_seg_nrrd(crop, tmp_path / "crop.seg.nrrd")
    back = read_seg_nrrd(path, geometry=g)
    assert back.geometry is g
    expected = phantom_labels.array.copy()
    expected[:, :, :100] = 0
    assert np.array_equal(back.array, expected)
    shifted = ImageGeometry(g.shape, g.spacing, (-63.5, -56.0, -60.0), g.direction)
    with pytest.raises(SegIOError, match="not the volume's grid"):
        read_seg_nrrd(path, geometry=shifted)


# ---------------------------------------------------------------------------- NIfTI


def _nifti_sform(path: Path) -> np.ndarray:
    """The 4x4 sform (voxel -> RAS mm) of a NIfTI-1 file, read from the raw header."""
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    assert struct.unpack("<i", raw[:4])[0] == 348
    sform_code = struct.unpack("<h", raw[254:256])[0]
    assert sform_code > 0
    rows = struct.unpack("<12f", raw[280:328])
    return np.vstack([np.reshape(rows, (3, 4)), [0, 0, 0, 1]])


@pytest.mark.parametrize("name", ["spine.nii.gz", "spine.nii"])
def test_nifti_round_trip_and_left_side(
    phantom_labels: LabelMap, phantom: Volume, tmp_path: Path, name: str
) -> None:
    path = write_nifti(phantom_labels, tmp_path / name)
    sidecar = labels_sidecar_path(path)
    assert sidecar == tmp_path / "spine.labels.json"
    table = json.loads(sidecar.read_text("utf-8"))
    assert table["labels"]["7"] == {
        "name": "Left marker",
        "color": [0.85, 0.2, 0.2],
        "role": "target",
        "visible": True,
        "opacity": 1.0,
    }

    back = read_nifti(path)
    assert np.array_equal(back.array, phantom_labels.array)
    _assert_same_labels(back, phantom_labels, display=True)
    _assert_same_geometry(back.geometry, phantom.geometry, tol=1e-4)  # float32 in NIfTI
    grid = phantom.geometry
    on_grid = read_nifti(path, geometry=grid)
    assert on_grid.geometry is grid
    assert np.array_equal(on_grid.array, phantom_labels.array)

    # independent readers: ITK (LPS) and the raw sform (RAS)
    img = sitk.ReadImage(str(path))
    assert img[img.TransformPhysicalPointToIndex(LEFT_POINT)] == 7
    i, j, k = (int(v) for v in np.rint(phantom.lps_to_index(LEFT_POINT)))
    ras = _nifti_sform(path) @ np.array([i, j, k, 1.0])
    np.testing.assert_allclose(ras[:3], (-LEFT_POINT[0], -LEFT_POINT[1], LEFT_POINT[2]), atol=1e-4)
    assert ras[0] < 0  # RAS x < 0 is the patient's left
    try:
        import nibabel
    except ImportError:
        nibabel = None
    if nibabel is not None:
        nii = nibabel.load(str(path))
        data = np.asarray(nii.dataobj)  # [i, j, k]
        assert data[i, j, k] == 7
        np.testing.assert_allclose(nii.affine @ [i, j, k, 1], ras, atol=1e-4)
    _no_temp_files(tmp_path)


def test_nifti_oblique_grid_keeps_points(tmp_path: Path) -> None:
    vol = _oblique_volume(tmp_path)
    point = (10.6, -26.0, 26.4)
    arr = np.zeros(vol.geometry.shape, np.uint8)
    arr[_box(vol.geometry, point, 0)] = 2
    lm = LabelMap(vol.geometry, arr, [Label(2, "Marker", (1.0, 0.0, 0.0))])
    path = write_nifti(lm, tmp_path / "oblique.nii.gz")
    img = sitk.ReadImage(str(path))
    assert img[img.TransformPhysicalPointToIndex(point)] == 2
    back = read_nifti(path, geometry=vol.geometry)
    assert np.array_equal(back.array, arr)


def test_nifti_without_sidecar_and_wrong_grid(
    phantom_labels: LabelMap, phantom: Volume, tmp_path: Path
) -> None:
    path = write_nifti(phantom_labels, tmp_path / "spine.nii.gz")
    labels_sidecar_path(path).unlink()
    back = read_nifti(path)
    assert back.names() == ["Label 1", "Label 2", "Label 7"]
    g = phantom.geometry
    other = ImageGeometry(g.shape, (0.9, 0.8, 1.0), g.origin, g.direction)
    with pytest.raises(SegIOError, match="not the volume's grid"):
        read_nifti(path, geometry=other)
    with pytest.raises(SegIOError, match=r"\.nii"):
        write_nifti(phantom_labels, tmp_path / "spine.nrrd")


# ---------------------------------------------------------------------------- DICOM SEG


def _source_headers(vol: Volume) -> dict[str, pydicom.Dataset]:
    out = {}
    for name in vol.source_files:
        if "!" in name:
            archive, member = name.split("!", 1)
            with zipfile.ZipFile(archive) as zf, zf.open(member) as f:
                ds = pydicom.dcmread(io.BytesIO(f.read()), stop_before_pixels=True)
        else:
            ds = pydicom.dcmread(name, stop_before_pixels=True)
        out[ds.SOPInstanceUID] = ds
    return out


def _check_seg(path: Path, vol: Volume, lm: LabelMap) -> pydicom.Dataset:
    """Structure, references and frame positions of a SEG written from ``lm`` on ``vol``."""
    import highdicom as hd

    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == SEG_STORAGE
    assert ds.Modality == "SEG"
    assert ds.SegmentationType == "BINARY"
    assert ds.StudyInstanceUID == vol.info.study_uid
    assert ds.FrameOfReferenceUID == vol.info.frame_of_reference_uid
    seg = hd.seg.segread(path)
    present = [v for v in sorted(lm.labels) if lm.voxel_count(v)]
    assert seg.number_of_segments == len(present)
    by_number = {}
    for number, value in enumerate(present, start=1):
        item = seg.get_segment_description(number)
        assert item.segment_label == lm.labels[value].name
        assert item.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC
        assert item.algorithm_identification[0].AlgorithmName == "SurgTwin"
        assert item.algorithm_identification[0].AlgorithmVersion == __version__
        by_number[number] = value

    # every source image is referenced, in the source series
    sources = _source_headers(vol)
    ref_series = ds.ReferencedSeriesSequence
    assert [s.SeriesInstanceUID for s in ref_series] == [vol.info.series_uid]
    referenced = {r.ReferencedSOPInstanceUID for r in ref_series[0].ReferencedInstanceSequence}
    assert referenced == set(sources)

    # each frame lies on a label slice, shows exactly that slice's voxels of its segment, and
    # derives from the source image at that position
    slice_lps = vol.index_to_lps(
        np.column_stack([np.zeros(vol.size[2]), np.zeros(vol.size[2]), np.arange(vol.size[2])])
    )
    pixels = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    shared = ds.SharedFunctionalGroupsSequence[0]
    seen = set()
    for f, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
        ipp = np.asarray(frame.PlanePositionSequence[0].ImagePositionPatient, float)
        k = int(np.argmin(np.linalg.norm(slice_lps - ipp, axis=1)))
        np.testing.assert_allclose(ipp, slice_lps[k], atol=1e-3)
        ident = frame if "SegmentIdentificationSequence" in frame else shared
        number = int(ident.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        value = by_number[number]
        assert np.array_equal(pixels[f].astype(bool), lm.array[k] == value)
        src_uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        np.testing.assert_allclose(sources[src_uid].ImagePositionPatient, ipp, atol=1e-3)
        seen.add((k, value))
    expected = {(int(k), int(v)) for v in present for k in np.unique(np.nonzero(lm.array == v)[0])}
    assert seen == expected
    return ds


def test_dicom_seg_structure_references_and_positions(
    phantom_labels: LabelMap, phantom: Volume, tmp_path: Path
) -> None:
    path = write_dicom_seg(phantom_labels, phantom, tmp_path / "spine_seg.dcm")
    ds = _check_seg(path, phantom, phantom_labels)
    codes = {
        item.SegmentLabel: (
            item.SegmentedPropertyCategoryCodeSequence[0].CodeValue,
            item.SegmentedPropertyTypeCodeSequence[0].CodeValue,
        )
        for item in ds.SegmentSequence
    }
    assert codes == {
        "Vertebrae": ("85756007", "272673000"),
        "Spinal canal": ("91723000", "91723000"),
        "Left marker": ("49755003", "108369006"),
    }
    assert all(
        item.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == "SCT"
        for item in ds.SegmentSequence
    )
    assert all(len(item.RecommendedDisplayCIELabValue) == 3 for item in ds.SegmentSequence)
    _no_temp_files(tmp_path)


def test_dicom_seg_is_anonymised_unless_asked(
    phantom_labels: LabelMap, phantom: Volume, tmp_path: Path
) -> None:
    anon = write_dicom_seg(phantom_labels, phantom, tmp_path / "anon.dcm")
    raw = anon.read_bytes()
    for secret in (b"PHANTOM^LUMBAR", b"PHANTOM-0001", b"19700101"):
        assert secret not in raw
    ds = pydicom.dcmread(anon)
    assert str(ds.PatientName).rstrip("^") == "ANONYMOUS"
    assert ds.PatientID == "ANONYMOUS"
    assert ds.PatientBirthDate == ""
    assert ds.PatientIdentityRemoved == "YES"

    named = write_dicom_seg(phantom_labels, phantom, tmp_path / "named.dcm", include_patient=True)
    ds = pydicom.dcmread(named)
    assert str(ds.PatientName) == "PHANTOM^LUMBAR"
    assert ds.PatientID == "PHANTOM-0001"
    assert ds.PatientBirthDate == "19700101"
    assert "PatientIdentityRemoved" not in ds


def test_dicom_seg_from_zip_archive_and_unicode_names(tmp_path: Path) -> None:
    values = np.full((5, 8, 9), -1000, dtype=np.int16)
    values[1:4, 2:6, 3:7] = 700
    paths = write_ct_series(
        tmp_path / "series", values, spacing=(0.5, 0.6, 1.5), origin=(-2.0, 3.0, 4.0)
    )
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in reversed(paths):  # order in the archive must not matter
            zf.write(p, f"dicom/{p.name}")
    vol = load(archive)
    assert "!" in vol.source_files[0]
    arr = np.where(vol.array > 200, 3, 0).astype(np.uint8)
    lm = LabelMap(vol.geometry, arr, [Label(3, "Wirbelkörper", (0.9, 0.8, 0.7), Role.BONE)])
    path = write_dicom_seg(lm, vol, tmp_path / "zip_seg.dcm")
    ds = _check_seg(path, vol, lm)
    assert ds.SegmentSequence[0].SegmentLabel == "Wirbelkörper"


def test_dicom_seg_real_ct(tmp_path: Path) -> None:
    vol = load(require_data("ct-abdomen-spine"))
    arr = np.zeros(vol.array.shape, np.uint8)
    arr[vol.array > 250] = 1
    arr[_box(vol.geometry, tuple(vol.index_to_lps((300, 256, 67))), 3)] = 2
    labels = [
        Label(1, "Bone", (0.9, 0.85, 0.72), Role.BONE),
        Label(2, "Probe", (0.3, 0.8, 0.8), Role.OTHER),
    ]
    lm = LabelMap(vol.geometry, arr, labels)
    path = write_dicom_seg(lm, vol, tmp_path / "abdomen_seg.dcm")
    _check_seg(path, vol, lm)
    assert b"Pancreas-CT-CB_001" not in path.read_bytes()


def test_dicom_seg_needs_a_frame_of_reference(tmp_path: Path) -> None:
    vol = load(require_data("ct-head-small"))  # its images carry no FrameOfReferenceUID
    lm = LabelMap(vol.geometry, np.ones(vol.array.shape, np.uint8), [Label(1, "x", (1, 0, 0))])
    with pytest.raises(SegIOError, match=r"FrameOfReferenceUID.*NRRD"):
        write_dicom_seg(lm, vol, tmp_path / "head_seg.dcm")
    assert list(tmp_path.iterdir()) == []


def test_dicom_seg_refuses_tilt_corrected_volume(tmp_path: Path) -> None:
    vol, _folder = _tilted_volume(tmp_path)
    assert "gantry_tilt" in {f.code for f in vol.findings}
    arr = np.where(vol.array > 200, 1, 0).astype(np.uint8)
    assert arr.any()
    lm = LabelMap(vol.geometry, arr, [Label(1, "Bone", (0.9, 0.85, 0.72), Role.BONE)])
    target = tmp_path / "out" / "tilted.dcm"
    target.parent.mkdir()
    with pytest.raises(SegIOError, match=r"original acquisition grid.*NRRD"):
        write_dicom_seg(lm, vol, target)
    assert list(target.parent.iterdir()) == []
    # NRRD takes the corrected grid as it is
    back = read_seg_nrrd(write_seg_nrrd(lm, target.with_suffix(".seg.nrrd")))
    assert np.array_equal(back.array, arr)


def test_dicom_seg_refuses_a_grid_that_does_not_match_the_images(tmp_path: Path) -> None:
    values = np.full((4, 6, 6), -1000, dtype=np.int16)
    paths = write_ct_series(tmp_path / "s", values, spacing=(1.0, 1.0, 2.0))
    shifted = Volume(
        np.zeros((4, 6, 6), np.int16),
        (1.0, 1.0, 2.0),
        (0.0, 0.0, 0.5),
        np.eye(3),
        source_files=tuple(str(p) for p in paths),
    )
    lm = LabelMap(shifted.geometry)
    lm.change("x", 1, np.ones(shifted.geometry.shape, bool), label=Label(1, "x", (1.0, 0.0, 0.0)))
    with pytest.raises(SegIOError, match="does not lie on slice 0"):
        write_dicom_seg(lm, shifted, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_dicom_seg_refuses_multiframe_sources(tmp_path: Path) -> None:
    values = np.full((1, 4, 4), -1000, dtype=np.int16)
    (path,) = write_ct_series(tmp_path / "mf", values, extra={"NumberOfFrames": 3})
    vol = Volume(
        np.zeros((3, 4, 4), np.int16),
        (1.0, 1.0, 1.0),
        (0.0, 0.0, 0.0),
        np.eye(3),
        source_files=(str(path),),
    )
    lm = LabelMap(vol.geometry, np.ones((3, 4, 4), np.uint8), [Label(1, "x", (1.0, 0.0, 0.0))])
    with pytest.raises(SegIOError, match="multi-frame"):
        write_dicom_seg(lm, vol, tmp_path / "mf.dcm")


def test_dicom_seg_refuses_labels_on_another_grid(phantom: Volume, tmp_path: Path) -> None:
    g = phantom.geometry
    other = ImageGeometry(g.shape, g.spacing, (0.0, 0.0, 0.0), g.direction)
    lm = LabelMap(other, np.ones(g.shape, np.uint8), [Label(1, "x", (1.0, 0.0, 0.0))])
    with pytest.raises(SegIOError, match="not the volume's grid"):
        write_dicom_seg(lm, phantom, tmp_path / "x.dcm")


# ---------------------------------------------------------------------------- all writers


def test_empty_label_map_is_refused_everywhere(phantom: Volume, tmp_path: Path) -> None:
    lm = LabelMap.for_volume(phantom)
    lm.set_labels("add", {1: Label(1, "Nothing yet", (1.0, 0.0, 0.0))})
    with pytest.raises(SegIOError, match="empty"):
        write_seg_nrrd(lm, tmp_path / "e.seg.nrrd")
    with pytest.raises(SegIOError, match="empty"):
        write_nifti(lm, tmp_path / "e.nii.gz")
    with pytest.raises(SegIOError, match="empty"):
        write_dicom_seg(lm, phantom, tmp_path / "e.dcm")
    assert list(tmp_path.iterdir()) == []


def test_failed_writes_leave_no_file_and_keep_the_old_one(
    phantom_labels: LabelMap, phantom: Volume, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from surgtwin import fileio

    old = tmp_path / "keep.seg.nrrd"
    old.write_bytes(b"previous version")

    def disk_full(_path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio, "_fsync", disk_full)
    with pytest.raises(SegIOError, match="No space left"):
        write_seg_nrrd(phantom_labels, old)
    with pytest.raises(SegIOError, match="No space left"):
        write_nifti(phantom_labels, tmp_path / "new.nii.gz")
    with pytest.raises(SegIOError, match="No space left"):
        write_dicom_seg(phantom_labels, phantom, tmp_path / "new.dcm")
    assert old.read_bytes() == b"previous version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.seg.nrrd"]
    monkeypatch.undo()

    def itk_fails(*_args, **_kwargs) -> None:
        raise RuntimeError("ITK ERROR: cannot write")

    monkeypatch.setattr(sitk, "WriteImage", itk_fails)
    with pytest.raises(SegIOError, match="could not write"):
        write_nifti(phantom_labels, tmp_path / "new.nii.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.seg.nrrd"]
    with pytest.raises(SegIOError, match="does not exist"):
        write_seg_nrrd(phantom_labels, tmp_path / "missing" / "x.seg.nrrd")
