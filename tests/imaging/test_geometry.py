"""Geometry and validation of synthetic CT series: every voxel must land at its true LPS position.

All series are written with pydicom by ``dicom_factory`` into ``tmp_path``; nothing here needs
external data. Positions are checked in patient LPS millimetres, the only coordinates a surgeon's
plan is made in.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from surgtwin.errors import DicomError
from surgtwin.imaging import Severity, VolumeCache, load, scan

try:
    from .dicom_factory import pixel_lps, slice_positions, uid, write_ct_series
except ImportError:  # tests/ is not a package: pytest puts this folder on sys.path
    from dicom_factory import pixel_lps, slice_positions, uid, write_ct_series


def _load(source, **kwargs):
    """Load without the shared cache, so each test reads its own files."""
    return load(source, cache=None, **kwargs)


def _only(index):
    assert len(index.series) == 1, [s.uid for s in index.series]
    return index.series[0]


def _finding(findings, code):
    hits = [f for f in findings if f.code == code]
    assert hits, f"no {code!r} finding in {[f.code for f in findings]}"
    return hits[0]


def _codes(findings) -> set[str]:
    return {f.code for f in findings}


def _assert_right_handed_orthonormal(direction: np.ndarray) -> None:
    d = np.asarray(direction, float)
    np.testing.assert_allclose(d.T @ d, np.eye(3), atol=1e-6)
    assert np.linalg.det(d) == pytest.approx(1.0, abs=1e-6)


def _bright_centroid_lps(vol, threshold: float) -> np.ndarray:
    kji = np.argwhere(vol.array > threshold)
    assert len(kji), "no voxel above the threshold"
    return vol.index_to_lps(kji[:, ::-1].mean(axis=0))


# ---------------------------------------------------------------------------- sorting and LPS


def test_cube_lands_at_its_lps_position_whatever_the_file_order(tmp_path):
    n, rows, cols = 12, 20, 24
    spacing = (0.7, 0.9, 2.5)
    vol = np.full((n, rows, cols), -1000, np.int16)
    ci, cj, ck = 15, 6, 4  # cube centre (i, j, k) in written order
    vol[ck - 1 : ck + 2, cj - 1 : cj + 2, ci - 1 : ci + 2] = 1500
    # Written head first (z decreasing), file names shuffled, instance numbers reversed.
    positions = [(-8.0, 12.5, 40.0 - k * spacing[2]) for k in range(n)]
    perm = np.random.default_rng(7).permutation(n)
    write_ct_series(
        tmp_path,
        vol,
        spacing=spacing,
        positions=positions,
        names=[f"IMG{int(p):03d}.dcm" for p in perm],
        extra=lambda k: {"InstanceNumber": n - k},
    )
    cube_lps = pixel_lps(positions[ck], [(ci, cj)], spacing, (1, 0, 0), (0, 1, 0))[0]

    v = _load(tmp_path)

    assert v.size == (cols, rows, n)
    assert v.spacing == pytest.approx(spacing, abs=1e-9)
    # origin: the centre of the first pixel of the lowest slice (z = 40 - 11 * 2.5)
    np.testing.assert_allclose(v.origin, (-8.0, 12.5, 12.5), atol=1e-6)
    _assert_right_handed_orthonormal(v.direction)
    np.testing.assert_allclose(v.direction[:, 2], (0, 0, 1), atol=1e-9)
    np.testing.assert_allclose(_bright_centroid_lps(v, 500), cube_lps, atol=1e-6)
    assert v.value_at(cube_lps) > 500
    np.testing.assert_allclose(v.index_to_lps((ci, cj, n - 1 - ck)), cube_lps, atol=1e-6)
    np.testing.assert_allclose(v.lps_to_index(cube_lps), (ci, cj, n - 1 - ck), atol=1e-6)
    # Every voxel, not only the cube: the stack is the written one, bottom to top.
    np.testing.assert_array_equal(v.array, vol[::-1])


def test_left_stays_left_with_a_left_right_flipped_image(tmp_path):
    n, rows, cols = 6, 16, 18
    spacing = (1.0, 1.25, 2.0)
    row, col = (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)  # i runs from patient left to right
    origin = (8.5, -10.0, 0.0)
    vol = np.full((n, rows, cols), -1000, np.int16)
    left = (2, 5, 3)  # (i, j, k): x = 8.5 - 2 = +6.5 mm, patient left in LPS
    right = (15, 9, 1)  # x = 8.5 - 15 = -6.5 mm, patient right
    vol[left[2], left[1], left[0]] = 2000
    vol[right[2], right[1], right[0]] = 700
    write_ct_series(tmp_path, vol, spacing=spacing, origin=origin, row=row, col=col)
    positions = slice_positions(n, spacing, origin, row, col)
    left_lps = pixel_lps(positions[left[2]], [left[:2]], spacing, row, col)[0]
    right_lps = pixel_lps(positions[right[2]], [right[:2]], spacing, row, col)[0]
    assert left_lps[0] > 0 > right_lps[0]

    v = _load(tmp_path)

    _assert_right_handed_orthonormal(v.direction)
    assert v.value_at(left_lps) == 2000
    assert v.value_at(right_lps) == 700
    k, j, i = np.argwhere(v.array == 2000)[0]
    marker = v.index_to_lps((i, j, k))
    assert marker[0] > 0, "the left marker moved to the patient's right"
    np.testing.assert_allclose(marker, left_lps, atol=1e-6)
    k, j, i = np.argwhere(v.array == 700)[0]
    np.testing.assert_allclose(v.index_to_lps((i, j, k)), right_lps, atol=1e-6)


@pytest.mark.parametrize(
    ("plane", "row", "col"),
    [
        ("sagittal", (0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
        ("coronal", (1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
        ("oblique", (math.cos(0.3), math.sin(0.3), 0.0), (0.0, 0.0, -1.0)),
    ],
)
def test_sagittal_coronal_oblique_stacks(tmp_path, plane, row, col):
    n, rows, cols = 7, 14, 11
    spacing = (0.8, 1.3, 2.2)
    origin = (-5.0, 20.0, 30.0)
    vol = np.full((n, rows, cols), -1000, np.int16)
    mi, mj, mk = 8, 3, 5
    vol[mk, mj, mi] = 1800
    # Written in reverse stacking order, so the loader has to sort.
    positions = slice_positions(n, spacing, origin, row, col)
    write_ct_series(
        tmp_path, vol[::-1], spacing=spacing, positions=positions[::-1], row=row, col=col
    )
    marker_lps = pixel_lps(positions[mk], [(mi, mj)], spacing, row, col)[0]
    normal = np.cross(row, col)

    v = _load(tmp_path)

    # DICOM decimal strings hold 16 characters: oblique cosines are exact to ~1e-7 only
    tol = 1e-5
    _assert_right_handed_orthonormal(v.direction)
    assert abs(float(v.direction[:, 2] @ normal)) == pytest.approx(1.0, abs=tol)
    assert abs(float(v.direction[:, 0] @ np.asarray(row))) == pytest.approx(1.0, abs=tol)
    assert abs(float(v.direction[:, 1] @ np.asarray(col))) == pytest.approx(1.0, abs=tol)
    assert v.spacing == pytest.approx(spacing, abs=tol)
    assert v.size == (cols, rows, n)
    assert v.value_at(marker_lps) == 1800
    k, j, i = np.argwhere(v.array == 1800)[0]
    np.testing.assert_allclose(v.index_to_lps((i, j, k)), marker_lps, atol=tol)


# ---------------------------------------------------------------------------- gantry tilt


def _tilted_sphere(folder: Path, tilt_deg: float, centre, radius: float = 10.0):
    t = math.radians(tilt_deg)
    row, col = (1.0, 0.0, 0.0), (0.0, math.cos(t), -math.sin(t))
    dx = dy = 1.0
    table_step = 2.0
    n, rows, cols = 22, 48, 40
    positions = np.array([(-19.5, -23.5, -20.0 + k * table_step) for k in range(n)])
    jj, ii = np.mgrid[0:rows, 0:cols]
    vol = np.empty((n, rows, cols), np.int16)
    for k in range(n):
        lps = pixel_lps(positions[k], np.column_stack([ii.ravel(), jj.ravel()]), (dx, dy), row, col)
        inside = np.linalg.norm(lps - np.asarray(centre), axis=1) <= radius
        vol[k] = np.where(inside, 1000, -1000).reshape(rows, cols)
    # the sphere must lie wholly inside the scanned slab, or the test proves nothing
    assert vol[0].max() < 0 and vol[-1].max() < 0
    assert vol[:, 0].max() < 0 and vol[:, -1].max() < 0
    assert vol[:, :, 0].max() < 0 and vol[:, :, -1].max() < 0
    write_ct_series(
        folder,
        vol,
        spacing=(dx, dy, table_step),
        positions=positions,
        row=row,
        col=col,
        extra={"GantryDetectorTilt": f"{tilt_deg:g}"},
    )


def test_gantry_tilt_is_detected_and_corrected(tmp_path):
    centre = np.array([1.3, -2.4, 0.7])
    _tilted_sphere(tmp_path, 15.0, centre)

    series = _only(scan(tmp_path))
    tilt = _finding(series.findings, "gantry_tilt")
    assert tilt.severity == Severity.WARNING
    assert "15.0" in tilt.message
    assert series.loadable

    v = _load(tmp_path)

    assert "gantry_tilt" in _codes(v.findings)
    _assert_right_handed_orthonormal(v.direction)
    bright = np.argwhere(v.array > 0)[:, ::-1]  # (i, j, k)
    lps = v.index_to_lps(bright)
    centroid = lps.mean(axis=0)
    # within one voxel of the true centre, along every grid axis
    offset_ijk = v.lps_to_index(centroid) - v.lps_to_index(centre)
    assert np.all(np.abs(offset_ijk) < 1.0), (centroid, centre, offset_ijk)
    assert np.linalg.norm(centroid - centre) < min(v.spacing)
    assert v.value_at(centre) > 0
    # The sphere is round again: no shear left (a sheared sphere has correlated axes).
    eig = np.linalg.eigvalsh(np.cov(lps.T))
    assert eig.max() / eig.min() < 1.2, eig
    # and it has its true volume (4/3 pi r^3)
    voxel = float(np.prod(v.spacing))
    assert len(bright) * voxel == pytest.approx(4 / 3 * math.pi * 10.0**3, rel=0.1)
    # 8 mm from the centre along x, y and z is inside the sphere, 12 mm is outside
    for axis in np.eye(3):
        for sign in (1, -1):
            assert v.value_at(centre + sign * 8 * axis) > 0
            assert v.value_at(centre + sign * 12 * axis) < 0


def test_gantry_tilt_with_a_missing_slice_resampled(tmp_path):
    centre = np.array([1.3, -2.4, 0.7])
    _tilted_sphere(tmp_path, 15.0, centre)
    sorted(tmp_path.glob("*.dcm"))[9].unlink()

    series = _only(scan(tmp_path))
    assert {"gantry_tilt", "missing_slices"} <= _codes(series.findings)
    v = _load(tmp_path, resample=True)

    assert v.size[2] == 22
    _assert_right_handed_orthonormal(v.direction)
    centroid = _bright_centroid_lps(v, 0)
    assert np.all(np.abs(v.lps_to_index(centroid) - v.lps_to_index(centre)) < 1.0)
    assert v.value_at(centre) > 0


# ---------------------------------------------------------------------------- spacing


def _ramp(n: int, rows: int = 8, cols: int = 10) -> np.ndarray:
    """Slice k holds -1000 + 100 k everywhere, plus an in-plane pattern."""
    base = (-1000 + 100 * np.arange(n))[:, None, None]
    pattern = (np.arange(rows)[:, None] + 2 * np.arange(cols)[None, :]) * 2
    return (base + pattern).astype(np.int16)


def test_missing_slice_is_refused_then_resampled(tmp_path):
    n, dz = 10, 2.5
    vol = _ramp(n)
    paths = write_ct_series(tmp_path, vol, spacing=(0.5, 0.5, dz), origin=(0, 0, -10))
    paths[4].unlink()

    series = _only(scan(tmp_path))
    missing = _finding(series.findings, "missing_slices")
    assert missing.severity == Severity.ERROR
    assert not series.loadable
    with pytest.raises(DicomError) as err:
        _load(series)
    assert err.value.code == "missing_slices"
    assert "--resample" in str(err.value)
    with pytest.raises(DicomError):
        _load(tmp_path)

    for source in (series, tmp_path):
        v = _load(source, resample=True)
        assert v.size == (10, 8, n)
        assert v.spacing == pytest.approx((0.5, 0.5, dz), abs=1e-9)
        np.testing.assert_allclose(v.origin, (0, 0, -10), atol=1e-6)
        # the original slices are exact, the missing one lies between its neighbours
        for k in (0, 3, 5, 9):
            np.testing.assert_array_equal(v.array[k], vol[k])
        lo, hi = np.minimum(vol[3], vol[5]), np.maximum(vol[3], vol[5])
        assert np.all((v.array[4] >= lo) & (v.array[4] <= hi))
        np.testing.assert_array_equal(v.array[4], vol[4])  # linear data: exact
        assert v.index_to_lps((0, 0, 4))[2] == pytest.approx(-10 + 4 * dz)
        resampled = _finding(v.findings, "missing_slices")
        assert resampled.severity == Severity.WARNING


def test_uneven_spacing(tmp_path):
    n = 9
    jitter = [0.0, 0.3, -0.25, 0.2, -0.3, 0.35, -0.1, 0.25, 0.0]
    positions = [(0.0, 0.0, 3.0 * k + jitter[k]) for k in range(n)]
    write_ct_series(tmp_path, _ramp(n), spacing=(1, 1, 3), positions=positions)

    series = _only(scan(tmp_path))
    uneven = _finding(series.findings, "uneven_spacing")
    assert "missing_slices" not in _codes(series.findings)
    assert uneven.severity == Severity.ERROR
    with pytest.raises(DicomError) as err:
        _load(series)
    assert err.value.code == "uneven_spacing"

    vol = _ramp(n)
    v = _load(series, resample=True)
    nk = v.size[2]
    zs = v.index_to_lps(np.column_stack([np.zeros(nk), np.zeros(nk), np.arange(nk)]))[:, 2]
    assert zs[0] == pytest.approx(0.0)
    assert zs[-1] == pytest.approx(positions[-1][2], abs=v.spacing[2])
    np.testing.assert_allclose(np.diff(zs), v.spacing[2], atol=1e-9)
    # each resampled slice is the linear interpolation, along z, of the slices around it
    z_written = np.array([p[2] for p in positions])
    for j, i in ((0, 0), (7, 9), (3, 4)):
        expected = np.interp(zs, z_written, vol[:, j, i].astype(float))
        np.testing.assert_allclose(v.array[:, j, i], expected, atol=0.51)


def test_value_at_never_wraps_around_to_the_opposite_side(tmp_path):
    vol = np.zeros((4, 6, 8), np.int16)
    vol[:, :, 0] = 100  # first column
    vol[:, :, -1] = 900  # last column
    write_ct_series(tmp_path, vol, spacing=(1, 1, 1))
    v = _load(tmp_path)
    assert v.value_at(v.index_to_lps((0, 2, 1))) == 100
    # half a voxel and one voxel beyond the first column: the nearest voxel is the first
    # column (or the point is refused), never the last column on the other side
    for i in (-0.6, -1.0):
        try:
            value = v.value_at(v.index_to_lps((i, 2, 1)))
        except (IndexError, ValueError):
            continue
        assert value == 100, f"value_at(i={i}) returned the far side's value {value}"


# ---------------------------------------------------------------------------- duplicates


def test_duplicate_positions_without_a_tie_breaker_are_refused(tmp_path):
    n = 6
    positions = [(0.0, 0.0, z) for z in (0.0, 2.0, 4.0, 4.0, 6.0, 8.0)]
    write_ct_series(tmp_path, _ramp(n), spacing=(1, 1, 2), positions=positions)

    series = _only(scan(tmp_path))
    dup = _finding(series.findings, "duplicate_positions")
    assert dup.severity == Severity.ERROR
    assert not series.loadable
    with pytest.raises(DicomError) as err:
        _load(series)
    assert err.value.code == "duplicate_positions"
    with pytest.raises(DicomError):
        _load(tmp_path)


def test_echoes_at_the_same_positions_split_into_parts(tmp_path):
    n = 5
    echo1 = _ramp(n)
    echo2 = (_ramp(n) // 2 + 300).astype(np.int16)
    series_uid = uid("two echoes")
    for echo, vol in ((1, echo1), (2, echo2)):
        write_ct_series(
            tmp_path,
            vol,
            spacing=(1, 1, 2),
            series_uid=series_uid,
            extra={"EchoNumbers": echo},
            names=[f"e{echo}_{k:03d}.dcm" for k in range(n)],
        )

    index = scan(tmp_path)
    assert sorted(s.uid for s in index.series) == [f"{series_uid}#1", f"{series_uid}#2"]
    loaded = []
    for s in index.series:
        assert s.loadable
        assert len(s.slices) == n
        assert _finding(s.findings, "split_series").severity == Severity.INFO
        v = _load(s)
        assert v.size[2] == n
        loaded.append(v.array)
        # each part loads by its uid too
        assert _load(tmp_path, uid=s.uid).array.tobytes() == v.array.tobytes()
    # one part is echo 1, the other echo 2: nothing mixed
    assert sorted(a.tobytes() for a in loaded) == sorted(e.tobytes() for e in (echo1, echo2))


def test_exact_copy_of_a_file_is_used_once(tmp_path):
    n = 6
    vol = _ramp(n)
    paths = write_ct_series(tmp_path / "a", vol, spacing=(1, 1, 2))
    (tmp_path / "b").mkdir()
    shutil.copy(paths[2], tmp_path / "b" / "copy.dcm")

    series = _only(scan(tmp_path))
    assert series.loadable
    assert len(series.slices) == n
    dup = _finding(series.findings, "duplicate_files")
    assert dup.severity == Severity.INFO
    assert "duplicate_positions" not in _codes(series.findings)
    v = _load(series)
    np.testing.assert_array_equal(v.array, vol)


# ---------------------------------------------------------------------------- splitting


def test_mixed_orientation_splits_into_parts(tmp_path):
    series_uid = uid("mixed orientation")
    n = 5
    write_ct_series(tmp_path / "ax", _ramp(n), spacing=(1, 1, 2), series_uid=series_uid)
    write_ct_series(
        tmp_path / "sag",
        _ramp(n),
        spacing=(1, 1, 2),
        series_uid=series_uid,
        row=(0, 1, 0),
        col=(0, 0, -1),
        origin=(-4, -5, 5),
    )

    index = scan(tmp_path)
    assert sorted(s.uid for s in index.series) == [f"{series_uid}#1", f"{series_uid}#2"]
    normals = []
    for s in index.series:
        assert "mixed_orientation" in _codes(s.findings)
        assert s.loadable
        v = _load(s)
        assert v.size == (10, 8, n)
        normals.append(tuple(np.round(np.abs(v.direction[:, 2]), 6)))
    assert sorted(normals) == [(0, 0, 1), (1, 0, 0)]


def test_inconsistent_size_splits_into_parts(tmp_path):
    series_uid = uid("two sizes")
    small = _ramp(6, rows=8, cols=10)
    large = _ramp(6, rows=12, cols=20)
    write_ct_series(
        tmp_path,
        small,
        spacing=(1, 1, 2),
        series_uid=series_uid,
        names=[f"s{k}.dcm" for k in range(6)],
    )
    write_ct_series(
        tmp_path,
        large,
        spacing=(1, 1, 2),
        series_uid=series_uid,
        origin=(0, 0, 20),
        names=[f"l{k}.dcm" for k in range(6)],
    )

    index = scan(tmp_path)
    assert len(index.series) == 2
    sizes = set()
    for s in index.series:
        assert s.uid.startswith(series_uid + "#")
        assert "inconsistent_size" in _codes(s.findings)
        assert s.loadable
        sizes.add(_load(s).size)
    assert sizes == {(10, 8, 6), (20, 12, 6)}


# ---------------------------------------------------------------------------- values


def test_ct_without_rescale_keeps_stored_values(tmp_path):
    vol = (_ramp(4) + 1024).astype(np.int16)  # raw 24..1366, as old scanners store them
    write_ct_series(tmp_path, vol, rescale=None)

    series = _only(scan(tmp_path))
    assert _finding(series.findings, "no_rescale").severity == Severity.WARNING
    v = _load(series)
    np.testing.assert_array_equal(v.array, vol)
    assert v.info.units != "HU"
    assert "no_rescale" in _codes(v.findings)


def test_ct_slope_two_gives_exact_hu(tmp_path):
    hu = np.array([-1024, -1000, -2, 0, 40, 1000, 2000, 3070], np.int16).reshape(1, 2, 4)
    hu = np.repeat(hu, 3, axis=0)
    write_ct_series(tmp_path, hu, rescale=(2.0, -1024.0))

    series = _only(scan(tmp_path))
    assert "no_rescale" not in _codes(series.findings)
    v = _load(series)
    np.testing.assert_array_equal(v.array, hu)
    assert v.info.units == "HU"


def test_ct_fractional_slope_gives_float_volume(tmp_path):
    hu = np.array([-1000.5, -1000.0, -0.5, 0.5, 41.5, 1234.5], float).reshape(1, 2, 3)
    hu = np.repeat(hu, 3, axis=0)
    write_ct_series(tmp_path, hu, rescale=(0.5, -1024.0))

    v = _load(tmp_path)
    assert v.array.dtype == np.float32
    np.testing.assert_array_equal(v.array, hu.astype(np.float32))


@pytest.mark.parametrize("pixel_representation", [0, 1])
def test_twelve_bit_pixels_ignore_garbage_high_bits(tmp_path, pixel_representation):
    rng = np.random.default_rng(pixel_representation)
    shape = (3, 6, 7)
    if pixel_representation:
        true = rng.integers(-2048, 2048, shape)
    else:
        true = rng.integers(0, 4096, shape)
    true.flat[:4] = [-2048, 2047, -1, 0] if pixel_representation else [0, 4095, 1, 2048]
    garbage = rng.integers(1, 16, shape) << 12  # overlay bits, never zero
    stored = ((true & 0x0FFF) | garbage).astype(np.uint16)
    write_ct_series(
        tmp_path,
        stored,
        rescale=(1.0, -1024.0),
        values_are_stored=True,
        bits_stored=12,
        pixel_representation=pixel_representation,
    )

    v = _load(tmp_path)
    np.testing.assert_array_equal(v.array, true - 1024)


# ---------------------------------------------------------------------------- sources


def test_zip_loads_like_the_folder(tmp_path):
    vol = _ramp(7)
    paths = write_ct_series(tmp_path / "series", vol, spacing=(0.6, 0.7, 1.5), origin=(3, 4, 5))
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in paths:
            zf.write(p, f"patient/ct/{p.name}")

    from_folder = _load(tmp_path / "series")
    series = _only(scan(archive))
    assert series.n_files == len(paths)
    from_zip = _load(archive)
    np.testing.assert_array_equal(from_zip.array, from_folder.array)
    assert from_zip.spacing == from_folder.spacing
    np.testing.assert_allclose(from_zip.origin, from_folder.origin)
    np.testing.assert_allclose(from_zip.direction, from_folder.direction)


def test_dicomdir_references_the_series(tmp_path):
    from pydicom.fileset import FileSet

    vol = _ramp(5)
    paths = write_ct_series(tmp_path / "src", vol, spacing=(1, 1, 2))
    fs = FileSet()
    for p in paths:
        fs.add(p)
    media = tmp_path / "media"
    fs.write(media)
    dicomdir = media / "DICOMDIR"
    assert dicomdir.is_file()

    series = _only(scan(dicomdir))
    assert series.loadable
    assert len(series.slices) == 5
    np.testing.assert_array_equal(_load(dicomdir).array, vol)


# ---------------------------------------------------------------------------- cache


def test_cache_returns_the_same_volume_until_a_file_changes(tmp_path):
    n = 40
    vol = np.random.default_rng(3).integers(-1000, 2000, (n, 128, 128)).astype(np.int16)
    folder = tmp_path / "ct"
    paths = write_ct_series(folder, vol, spacing=(0.5, 0.5, 1.0))
    cache = VolumeCache()

    first = load(folder, cache=cache)
    start = time.perf_counter()
    second = load(folder, cache=cache)
    elapsed = time.perf_counter() - start
    assert second is first
    assert elapsed < 1.0
    assert not first.array.flags.writeable

    changed = vol.copy()
    changed[5] = 1234
    write_ct_series(tmp_path / "new", changed, spacing=(0.5, 0.5, 1.0))
    before = os.stat(paths[5])
    shutil.copyfile(tmp_path / "new" / paths[5].name, paths[5])
    after = os.stat(paths[5])
    if after.st_mtime_ns == before.st_mtime_ns:  # coarse file system clock
        os.utime(paths[5], ns=(after.st_atime_ns, before.st_mtime_ns + 1_000_000_000))

    third = load(folder, cache=cache)
    assert third is not first
    assert np.all(third.array[5] == 1234)
    np.testing.assert_array_equal(third.array[4], vol[4])
    np.testing.assert_array_equal(first.array[5], vol[5])  # the old volume is untouched
