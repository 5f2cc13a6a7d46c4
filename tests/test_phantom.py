"""Tests of the digital lumbar phantom: anatomy oracle, DICOM series and determinism.

Only numpy, pydicom and :mod:`surgtwin.phantom` are used (not the imaging loader).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

from surgtwin.phantom import Phantom, build_phantom, generate
from surgtwin.phantom.anatomy import Grid, build_canal, build_vertebrae, render_noise_free
from surgtwin.phantom.ground_truth import solid_volume
from surgtwin.phantom.shapes import EllipticCylinder, Frame, Sphere

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_dicom"
LEVELS = ("L3", "L4", "L5")
SIDES = ("left", "right")
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    return build_phantom()


@pytest.fixture(scope="module")
def truth(phantom: Phantom) -> dict:
    return phantom.ground_truth


@pytest.fixture(scope="module")
def series() -> list[pydicom.Dataset]:
    """The committed series, sorted by InstanceNumber."""
    files = sorted((SAMPLE_DIR / "CT").glob("IM*.dcm"))
    assert files, f"no committed phantom series in {SAMPLE_DIR}; run `make phantom`"
    datasets = [pydicom.dcmread(f) for f in files]
    return sorted(datasets, key=lambda ds: int(ds.InstanceNumber))


@pytest.fixture(scope="module")
def dicom_hu(series: list[pydicom.Dataset]) -> np.ndarray:
    """HU volume (z, y, x) decoded from the committed files with their rescale."""
    slices = [
        ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        for ds in series
    ]
    return np.stack(slices)


def _index(phantom: Phantom, point: list[float]) -> tuple[int, int, int]:
    """Nearest voxel index (column, row, slice) of an LPS point."""
    i, j, k = np.rint(phantom.grid.lps_to_index(point)).astype(int)
    return int(i), int(j), int(k)


def _mean3(phantom: Phantom, point: list[float]) -> float:
    """Mean HU over the 3x3x3 voxels around the voxel nearest to ``point`` (LPS mm)."""
    i, j, k = _index(phantom, point)
    return float(phantom.hu[k - 1 : k + 2, j - 1 : j + 2, i - 1 : i + 2].mean())


def _distance_to_ellipse(p: np.ndarray, centre: list[float], radii: list[float]) -> float:
    """In-plane distance (mm) from ``p`` to an axis-aligned ellipse region (0 inside)."""
    dx, dy = p[0] - centre[0], p[1] - centre[1]
    if (dx / radii[0]) ** 2 + (dy / radii[1]) ** 2 <= 1.0:
        return 0.0
    a = np.linspace(0.0, 2 * math.pi, 3600, endpoint=False)
    return float(np.hypot(radii[0] * np.cos(a) - dx, radii[1] * np.sin(a) - dy).min())


def _axis_points(screw: dict, step: float = 1.0) -> np.ndarray:
    """Points every ``step`` mm from entry to target (target included)."""
    entry, target = np.asarray(screw["entry"]), np.asarray(screw["target"])
    length = float(np.linalg.norm(target - entry))
    ts = np.append(np.arange(0.0, length, step), length)
    return entry + ts[:, None] / length * (target - entry)


# --- volume and grid ----------------------------------------------------------------------


def test_volume_shape_dtype_and_grid(phantom: Phantom, truth: dict) -> None:
    image = truth["image"]
    assert phantom.hu.dtype == np.int16
    assert phantom.hu.shape == (image["size"][2], image["size"][1], image["size"][0])
    assert image["size"] == [160, 176, 120]
    assert image["spacing"] == [0.8, 0.8, 1.0]
    assert image["origin"] == [-64.0, -56.0, -60.0]
    assert truth["coordinate_system"] == "LPS" and truth["units"] == "mm"
    assert phantom.hu.min() >= -1024 and phantom.hu.max() <= 3071


def test_index_to_lps_agrees_with_ground_truth(phantom: Phantom, truth: dict) -> None:
    origin = np.asarray(truth["image"]["origin"])
    spacing = np.asarray(truth["image"]["spacing"])
    # the L4 canal centre is the LPS origin and sits on a voxel centre
    assert truth["levels"]["L4"]["canal"]["centre"] == [0.0, 0.0, 0.0]
    assert _index(phantom, [0.0, 0.0, 0.0]) == (80, 70, 60)
    for level in LEVELS:
        centre = truth["levels"][level]["canal"]["centre"]
        ijk = np.asarray(_index(phantom, centre))
        np.testing.assert_allclose(origin + ijk * spacing, centre, atol=1e-9)
        np.testing.assert_allclose(phantom.grid.index_to_lps(ijk), centre, atol=1e-9)
        for screw in truth["levels"][level]["pedicle_screws"].values():
            for point in (screw["entry"], screw["target"]):
                frac = (np.asarray(point) - origin) / spacing
                assert np.all(frac >= 1) and np.all(frac <= np.asarray(phantom.hu.shape[::-1]) - 2)
                np.testing.assert_allclose(origin + frac * spacing, point, atol=1e-9)


# --- anatomy oracle -----------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_canal_centre_is_csf(phantom: Phantom, truth: dict, level: str) -> None:
    assert -10.0 <= _mean3(phantom, truth["levels"][level]["canal"]["centre"]) <= 40.0


def test_canal_centreline_is_csf(phantom: Phantom, truth: dict) -> None:
    # the whole centreline (through discs too) is CSF
    means = [_mean3(phantom, p) for p in truth["canal_centreline"][1:-1]]
    assert min(means) >= -10.0 and max(means) <= 40.0


@pytest.mark.parametrize("level", LEVELS)
def test_canal_enclosed_by_bone_at_pedicle_level(phantom: Phantom, truth: dict, level: str) -> None:
    z = truth["levels"][level]["pedicles"]["axis_z"]
    for angle in np.radians(np.arange(0, 360, 5)):
        ray = [[r * math.cos(angle), r * math.sin(angle), z] for r in np.arange(0, 25, 0.2)]
        values = [phantom.hu[k, j, i] for i, j, k in (_index(phantom, p) for p in ray)]
        assert max(values) > 600, f"{level}: canal open at {math.degrees(angle):.0f} deg"


@pytest.mark.parametrize("level", LEVELS)
def test_body_centre_is_cancellous(phantom: Phantom, truth: dict, level: str) -> None:
    assert 200.0 <= _mean3(phantom, truth["levels"][level]["body_centre"]) <= 300.0


@pytest.mark.parametrize("level", LEVELS)
def test_body_cortex_ring(phantom: Phantom, truth: dict, level: str) -> None:
    body = truth["levels"][level]
    cx, cy, cz = body["body_centre"]
    rx, ry, _ = body["body_radii_mm"]
    half = truth["cortex_mm"]["vertebral_body"] / 2
    values = []
    for angle in np.linspace(math.pi, 2 * math.pi, 25):  # anterior half: no pedicles
        p = [cx + (rx - half) * math.cos(angle), cy + (ry - half) * math.sin(angle), cz]
        i, j, k = _index(phantom, p)
        values.append(phantom.hu[k, j, i])
    assert min(values) >= 1000 and max(values) <= 1500
    assert abs(np.mean(values) - truth["tissues_hu"]["cortical_bone"]) < 30


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("level", LEVELS)
def test_screw_axis_in_bone_and_clear_of_canal(
    phantom: Phantom, truth: dict, level: str, side: str
) -> None:
    lv = truth["levels"][level]
    screw = lv["pedicle_screws"][side]
    points = _axis_points(screw)
    assert len(points) >= 35
    for p in points:
        assert _mean3(phantom, list(p)) > 150.0, f"{level} {side}: {p} not in bone"
        clearance = _distance_to_ellipse(p, lv["canal"]["centre"], lv["canal"]["radii_mm"])
        assert clearance >= screw["max_safe_diameter_mm"] / 2 - 0.25
    length = np.linalg.norm(np.subtract(screw["target"], screw["entry"]))
    assert length == pytest.approx(screw["length_mm"], abs=1e-3)
    # the target stays well inside the body (not through the anterior cortex)
    assert _mean3(phantom, screw["target"]) == pytest.approx(250.0, abs=40.0)


@pytest.mark.parametrize("level", LEVELS)
def test_screw_geometry_is_anatomical(truth: dict, level: str) -> None:
    screws = truth["levels"][level]["pedicle_screws"]
    left, right = screws["left"], screws["right"]
    assert left["entry"][0] > 0 and right["entry"][0] < 0
    assert left["target"][0] > 0 and right["target"][0] < 0  # converge without crossing
    for s in (left, right):
        assert abs(s["target"][0]) < abs(s["entry"][0])  # medial
        assert s["target"][1] < s["entry"][1]  # anterior
        assert 10.0 <= s["medial_angle_deg"] <= 20.0
        assert 35.0 <= s["length_mm"] <= 55.0
        assert s["min_canal_distance_mm"] >= s["max_safe_diameter_mm"] / 2
    # mirror symmetric
    np.testing.assert_allclose(left["entry"], np.multiply(right["entry"], [-1, 1, 1]))
    np.testing.assert_allclose(left["target"], np.multiply(right["target"], [-1, 1, 1]))


def test_pedicles_widen_and_angle_caudally(truth: dict) -> None:
    diameters = [
        truth["levels"][lv]["pedicle_screws"]["left"]["max_safe_diameter_mm"] for lv in LEVELS
    ]
    angles = [truth["levels"][lv]["pedicles"]["medial_angle_deg"] for lv in LEVELS]
    assert 8.0 <= diameters[0] <= 10.0 and 12.0 <= diameters[2] <= 14.0
    assert diameters == sorted(diameters) and angles == sorted(angles)
    for lv in LEVELS:
        assert truth["levels"][lv]["pedicle_screws"]["left"]["max_safe_diameter_mm"] == (
            pytest.approx(truth["levels"][lv]["pedicles"]["width_mm"], abs=0.05)
        )


def test_level_dimensions(truth: dict) -> None:
    zs = []
    for lv in LEVELS:
        level = truth["levels"][lv]
        rx, ry, hz = level["body_radii_mm"]
        assert 43 <= 2 * rx <= 49 and 31 <= 2 * ry <= 35 and 25 <= 2 * hz <= 27
        crx, cry = level["canal"]["radii_mm"]
        assert 20 <= 2 * crx <= 23 and 15 <= 2 * cry <= 18
        zs.append(level["body_centre"][2])
    assert zs == sorted(zs, reverse=True)  # L3 on top (+z superior)
    discs = truth["discs"]
    assert list(discs) == ["L2-L3", "L3-L4", "L4-L5", "L5-S1"]


@pytest.mark.parametrize("name", ["L2-L3", "L3-L4", "L4-L5", "L5-S1"])
def test_disc_hu(phantom: Phantom, truth: dict, name: str) -> None:
    assert 70.0 <= _mean3(phantom, truth["discs"][name]["centre"]) <= 110.0


def test_left_marker(phantom: Phantom, truth: dict) -> None:
    marker = truth["left_marker"]
    x, y, z = marker["centre"]
    assert x > 0 and marker["side"] == "left"
    assert _mean3(phantom, marker["centre"]) > 2000.0
    assert _mean3(phantom, [-x, y, z]) < 100.0  # nothing on the right
    assert int((phantom.hu > 2000).sum()) > 0
    assert np.all(np.nonzero(phantom.hu > 2000)[2] > phantom.hu.shape[2] // 2)


def test_soft_tissues(phantom: Phantom, truth: dict) -> None:
    l4 = truth["levels"]["L4"]
    assert _mean3(phantom, [0.0, 80.0, 0.0]) < -900  # air behind the back
    assert -130 <= _mean3(phantom, [0.0, 57.0, 0.0]) <= -70  # subcutaneous fat
    assert 30 <= _mean3(phantom, [25.0, 30.0, 0.0]) <= 80  # erector spinae
    assert l4["spinous_process_tip"][1] > 30


# --- volumes ------------------------------------------------------------------------------

#: Fine grid spacing (mm) of the independent render check, and its origin offset (mm) away
#: from the round numbers the shapes are built from.
FINE_MM = 0.4
FINE_OFFSET = np.array([0.0137, 0.0291, 0.0173])
#: Rim test: a voxel between the two thresholds is cancellous bone only if no soft tissue voxel
#: lies within this many fine voxels along any axis (the cortex is 1.5-2 mm thick).
RIM_STEPS = 3


def _near(mask: np.ndarray, steps: int) -> np.ndarray:
    """``mask`` dilated by ``steps`` voxels along each axis (a 3-D cross)."""
    out = mask.copy()
    for axis in range(3):
        for s in range(1, steps + 1):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(0, -s), slice(s, None)
            out[tuple(hi)] |= mask[tuple(lo)]
            out[tuple(lo)] |= mask[tuple(hi)]
    return out


def _fine_render_bone_mm3(truth: dict) -> tuple[float, dict[str, float]]:
    """Bone volume (mm³) counted on a fine noise-free render: total and per vertebra.

    The render is thresholded at the midpoint between soft tissue (muscle) and cancellous bone
    inside the cortex, and at the midpoint between water and cortical bone on the outer
    surface (the partial-volume ramp there runs from soft tissue to cortical bone, so the
    first threshold alone would put the surface about 0.3 mm too far out). A voxel between
    the two thresholds counts only if no soft tissue voxel is near (``RIM_STEPS``): then it is
    the cancellous core, not the outer rim. Bone voxels are attributed to the vertebra whose
    outer surface is nearest.
    """
    hu = truth["tissues_hu"]
    t_core = (hu["muscle"] + hu["cancellous_bone"]) / 2
    t_surface = hu["cortical_bone"] / 2
    vertebrae = build_vertebrae()
    lo = np.min([v.bounds()[0] for v in vertebrae], axis=0) - 1.0 + FINE_OFFSET
    hi = np.max([v.bounds()[1] for v in vertebrae], axis=0) + 1.0
    n = np.ceil((hi - lo) / FINE_MM).astype(int)
    counts = np.zeros(len(vertebrae), dtype=np.int64)
    slab = 40
    for k0 in range(0, int(n[2]), slab):  # slabs with a halo of RIM_STEPS slices
        k1 = min(int(n[2]), k0 + slab)
        a, b = max(0, k0 - RIM_STEPS), min(int(n[2]), k1 + RIM_STEPS)
        origin = (float(lo[0]), float(lo[1]), float(lo[2] + a * FINE_MM))
        grid = Grid((int(n[0]), int(n[1]), b - a), (FINE_MM,) * 3, origin)
        image = render_noise_free(grid)
        core = (image >= t_core) & ~_near(image < t_core, RIM_STEPS)
        bone = ((image >= t_surface) | core)[k0 - a : k1 - a]
        k, j, i = np.nonzero(bone)
        x, y, z = lo[:, None] + np.stack([i, j, k + k0]) * FINE_MM
        nearest = np.argmin([v.outer_sdf(x, y, z) for v in vertebrae], axis=0)
        counts += np.bincount(nearest, minlength=len(vertebrae))
    voxel = FINE_MM**3
    per_level = {v.spec.name: float(c) * voxel for v, c in zip(vertebrae, counts, strict=True)}
    return float(counts.sum()) * voxel, per_level


def test_bone_volumes_are_consistent_and_plausible(truth: dict) -> None:
    bone = truth["bone"]
    assert list(bone["levels"]) == list(LEVELS)
    volumes = [truth["levels"][lv]["bone_volume_mm3"] for lv in LEVELS]
    assert volumes == [bone["levels"][lv] for lv in LEVELS]
    # measured as one solid, all vertebrae together equal the sum: they do not overlap
    assert sum(volumes) == pytest.approx(bone["volume_mm3"], abs=1e-3)
    assert 0 < bone["estimated_error_mm3"] < 1e-3 * bone["volume_mm3"]
    for lv, volume in zip(LEVELS, volumes, strict=True):
        level = truth["levels"][lv]
        assert 30e3 <= volume <= 60e3, f"{lv}: {volume:.0f} mm3"
        rx, ry, hz = level["body_radii_mm"]
        cylinder = math.pi * rx * ry * 2 * hz
        # the body cylinder minus the canal it reaches into (1.5 mm of its posterior wall)
        assert 0.98 * cylinder < level["body_volume_mm3"] < cylinder
        assert 0.5 * volume < level["body_volume_mm3"] < 0.7 * volume
        crx, cry = level["canal"]["radii_mm"]
        assert level["canal"]["area_mm2"] == pytest.approx(math.pi * crx * cry, abs=1e-3)
    assert volumes == sorted(volumes)  # larger caudally


def test_canal_volume(truth: dict) -> None:
    canal = truth["canal"]
    z0, z1 = canal["z_range"]
    image = truth["image"]
    assert z0 == image["origin"][2] - image["spacing"][2] / 2
    assert z1 == z0 + image["size"][2] * image["spacing"][2]
    # trapezoidal rule over the centreline radii (every 2 mm), ends extended at constant radii
    zs = np.array([p[2] for p in truth["canal_centreline"]])
    area = np.array([math.pi * rx * ry for rx, ry in truth["canal_centreline_radii_mm"]])
    inner = float(np.sum((area[1:] + area[:-1]) / 2 * np.diff(zs)))
    volume = inner + area[0] * (zs[0] - z0) + area[-1] * (z1 - zs[-1])
    assert volume == pytest.approx(canal["volume_mm3"], rel=1e-4)
    # the supersampled count of the volume integration agrees with the exact integral
    counted, error = solid_volume([build_canal()])
    assert counted == pytest.approx(canal["volume_mm3"], rel=1e-4)
    assert error < 1e-3 * counted


@pytest.mark.parametrize("level", LEVELS)
def test_volume_integration_of_analytic_solids(truth: dict, level: str) -> None:
    rx, ry, hz = truth["levels"][level]["body_radii_mm"]
    cx, cy, cz = truth["levels"][level]["body_centre"]
    body = EllipticCylinder(Frame.vertical((cx, cy, cz)), (rx, ry), hz)
    volume, error = solid_volume([body])
    assert volume == pytest.approx(math.pi * rx * ry * 2 * hz, rel=2e-4)
    assert error < 1e-3 * volume
    sphere = Sphere((cx + 0.123, cy - 0.456, cz + 0.789), ry / 2)
    volume, _ = solid_volume([sphere])
    assert volume == pytest.approx(4 / 3 * math.pi * (ry / 2) ** 3, rel=2e-4)


def test_bone_volume_matches_fine_render(truth: dict) -> None:
    """Independent check: a 0.4 mm voxel count of the noise-free render (partial-volume ramps,
    painting order and all) agrees with the volumes integrated from the shapes.

    The render paints the L4 lesion as soft tissue, while the ground truth counts it as part of
    the vertebra (as the bone preset's hole filling does): the painted bone of L4 is its volume
    minus the lesion's."""
    total, per_level = _fine_render_bone_mm3(truth)
    lesion = truth["lesion"]
    assert total == pytest.approx(truth["bone"]["volume_mm3"] - lesion["volume_mm3"], rel=0.02)
    for lv in LEVELS:
        expected = truth["levels"][lv]["bone_volume_mm3"]
        if lv == lesion["level"]:
            expected -= lesion["volume_mm3"]
        assert per_level[lv] == pytest.approx(expected, rel=0.02)


def test_lesion_in_l4_body(phantom: Phantom, truth: dict) -> None:
    """The lytic lesion: soft tissue at its centre, inside the L4 body's cancellous bone, clear of
    the body centre and of the ideal L4 screw axes."""
    lesion = truth["lesion"]
    centre, r = np.asarray(lesion["centre"]), lesion["radius_mm"]
    l4 = truth["levels"]["L4"]
    assert lesion["level"] == "L4" and lesion["hu"] == truth["tissues_hu"]["lesion"] == 40.0
    assert lesion["volume_mm3"] == pytest.approx(4 / 3 * math.pi * r**3, rel=1e-6)
    assert 6.0 <= r <= 8.0 and lesion["cancellous_clearance_mm"] >= 0.5
    assert 20.0 <= _mean3(phantom, list(centre)) <= 60.0
    # noise-free: cancellous bone halfway between it and the cortex, anteriorly and caudally
    # (1 mm of cancellous bone is left there), and towards the body centre
    for offset in ([0.0, -(r + 0.5), 0.0], [0.0, 0.0, -(r + 0.5)], [0.0, r + 1.5, 0.0]):
        p = centre + np.asarray(offset)
        one_voxel = render_noise_free(Grid((1, 1, 1), (0.8, 0.8, 1.0), tuple(float(v) for v in p)))
        assert float(one_voxel[0, 0, 0]) == pytest.approx(250.0, abs=1e-6), offset
    body = truth["levels"]["L4"]
    lo, hi = body["body_z_range"]
    assert lo + 2.0 < centre[2] - r and centre[2] + r < hi - 2.0
    assert np.linalg.norm(centre - np.asarray(body["body_centre"])) > r + 2.0
    for screw in l4["pedicle_screws"].values():
        axis = _axis_points(screw, 0.25)
        assert np.linalg.norm(axis - centre, axis=1).min() > r + 3.25 + 1.0  # 6.5 mm screws


# --- committed DICOM series ---------------------------------------------------------------


def test_dicom_tags(series: list[pydicom.Dataset], truth: dict) -> None:
    image = truth["image"]
    assert len(series) == image["size"][2]
    first = series[0]
    for n, ds in enumerate(series, start=1):
        assert ds.file_meta.TransferSyntaxUID == EXPLICIT_VR_LE
        assert ds.file_meta.MediaStorageSOPClassUID == CT_IMAGE_STORAGE
        assert "FileMetaInformationGroupLength" in ds.file_meta
        assert ds.preamble == b"\x00" * 128
        assert ds.SOPClassUID == CT_IMAGE_STORAGE
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.Modality == "CT"
        assert str(ds.PatientName) == "PHANTOM^LUMBAR" and ds.PatientID == "PHANTOM-0001"
        assert ds.PatientSex == "O" and ds.PatientPosition == "HFS"
        assert ds.BodyPartExamined == "LSPINE" and ds.Manufacturer == "SurgTwin"
        assert ds.SeriesDescription == "Lumbar phantom L3-L5"
        assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
        assert ds.SpecificCharacterSet == "ISO_IR 100"
        assert ds.InstanceNumber == n
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.PixelSpacing] == [image["spacing"][1], image["spacing"][0]]
        assert (ds.Rows, ds.Columns) == (image["size"][1], image["size"][0])
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 12, 11)
        assert ds.PixelRepresentation == 0 and ds.SamplesPerPixel == 1
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert float(ds.RescaleIntercept) == -1024 and float(ds.RescaleSlope) == 1
        assert ds.RescaleType == "HU"
        assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (400, 1800)
        for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "StudyDate"):
            assert ds[key].value == first[key].value
        assert ds.filename.endswith(f"IM{n:04d}.dcm")
    assert len({ds.SOPInstanceUID for ds in series}) == len(series)
    assert len({first.StudyInstanceUID, first.SeriesInstanceUID, first.FrameOfReferenceUID}) == 3


def test_dicom_positions(series: list[pydicom.Dataset], truth: dict) -> None:
    origin = truth["image"]["origin"]
    dz = truth["image"]["spacing"][2]
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in series])
    np.testing.assert_allclose(positions[:, :2], np.tile(origin[:2], (len(series), 1)))
    np.testing.assert_allclose(np.diff(positions[:, 2]), dz)
    assert positions[0, 2] == pytest.approx(origin[2])
    for ds, z in zip(series, positions[:, 2], strict=True):
        assert float(ds.SliceLocation) == pytest.approx(z)
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == dz


def test_dicom_pixels_match_phantom(dicom_hu: np.ndarray, phantom: Phantom) -> None:
    np.testing.assert_array_equal(dicom_hu, phantom.hu)


def test_pixel_data_size(series: list[pydicom.Dataset]) -> None:
    total = sum(len(ds.PixelData) for ds in series)
    assert 2e6 <= total <= 10e6


def test_marker_found_via_dicom_geometry(series: list[pydicom.Dataset], dicom_hu, truth) -> None:
    """Left stays left: locate the bead from pixels + DICOM geometry tags alone."""
    k, j, i = np.nonzero(dicom_hu > 2000)
    assert len(i) > 50
    ds = series[round(k.mean())]
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    z0 = float(series[0].ImagePositionPatient[2])
    dz = float(series[1].ImagePositionPatient[2]) - z0
    point = ipp + i.mean() * col_spacing * iop[:3] + j.mean() * row_spacing * iop[3:]
    point[2] = z0 + k.mean() * dz
    np.testing.assert_allclose(point, truth["left_marker"]["centre"], atol=0.3)
    assert point[0] > 0  # patient left


def test_committed_ground_truth_matches(truth: dict) -> None:
    committed = json.loads((SAMPLE_DIR / "ground_truth.json").read_text(encoding="utf-8"))
    assert committed == truth
    assert committed["schema"] == 1


# --- determinism --------------------------------------------------------------------------


def test_fresh_generation_matches_committed_files(tmp_path: Path) -> None:
    stale = tmp_path / "CT" / "IM9999.dcm"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    series_dir = generate(tmp_path)
    assert series_dir == tmp_path / "CT"
    assert not stale.exists()
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert Path("ground_truth.json") in fresh and Path("README.md") in fresh
    assert len([p for p in fresh if p.parent == Path("CT")]) == 120
    committed_ct = sorted(p.name for p in (SAMPLE_DIR / "CT").iterdir())
    assert committed_ct == sorted(p.name for p in fresh if p.parent == Path("CT"))
    for rel in fresh:
        assert (SAMPLE_DIR / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel
