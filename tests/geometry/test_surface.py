"""Surfaces from masks: closed, in the right place (LPS mm), the right size."""

from __future__ import annotations

import math

import numpy as np
import pytest

from surgtwin.geometry.surface import SurfaceError, labelmap_to_meshes, mask_to_mesh
from surgtwin.imaging import load
from surgtwin.imaging.volume import ImageGeometry
from surgtwin.segmentation import LabelMap, apply_preset
from testdata import require_data


def ball_mask(geometry: ImageGeometry, centre, radius):
    k, j, i = np.indices(geometry.shape)
    pts = geometry.index_to_lps(np.stack([i.ravel(), j.ravel(), k.ravel()], 1))
    return (np.linalg.norm(pts - np.asarray(centre), axis=1) <= radius).reshape(geometry.shape)


def test_sphere_volume_position_and_orientation():
    # a flipped, anisotropic grid: i runs to the patient's right, j anterior
    direction = np.diag([-1.0, -1.0, 1.0])
    g = ImageGeometry((50, 90, 90), (0.5, 0.5, 1.0), (40.0, 30.0, -10.0), direction)
    centre = (25.0, 10.0, 12.0)  # on the patient's left
    mesh = mask_to_mesh(ball_mask(g, centre, 10.0), g, name="ball")
    st = mesh.stats()
    assert st.watertight
    assert st.volume_mm3 == pytest.approx(4 / 3 * math.pi * 1000, rel=0.03)
    assert st.area_mm2 == pytest.approx(4 * math.pi * 100, rel=0.05)
    assert mesh.points.mean(axis=0) == pytest.approx(centre, abs=0.2)
    xmin, xmax, *_ = st.bounds_lps
    assert (xmin, xmax) == pytest.approx((15.0, 35.0), abs=0.6)


def test_structure_touching_the_volume_edge_is_closed():
    g = ImageGeometry((20, 30, 30), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    m = np.zeros(g.shape, bool)
    m[:, 10:20, 0:15] = True  # touches four faces of the volume
    mesh = mask_to_mesh(m, g, smooth_iterations=0)
    assert mesh.is_watertight()
    assert mesh.volume_mm3() == pytest.approx(m.sum(), rel=0.05)


def test_one_slice_volume_and_empty_mask():
    g = ImageGeometry((1, 40, 40), (0.5, 0.5, 3.0), (0.0, 0.0, 0.0), np.eye(3))
    m = np.zeros(g.shape, bool)
    m[0, 10:30, 10:30] = True
    mesh = mask_to_mesh(m, g)
    assert mesh.is_watertight() and mesh.volume_mm3() > 0
    with pytest.raises(SurfaceError, match="empty"):
        mask_to_mesh(np.zeros(g.shape, bool), g, name="Canal")


def test_decimation_keeps_a_closed_surface_of_the_same_size():
    g = ImageGeometry((60, 60, 60), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0), np.eye(3))
    full = mask_to_mesh(ball_mask(g, (15, 15, 15), 10.0), g)
    half = mask_to_mesh(ball_mask(g, (15, 15, 15), 10.0), g, decimate=0.5)
    assert half.n_triangles == pytest.approx(full.n_triangles / 2, rel=0.05)
    assert half.volume_mm3() == pytest.approx(full.volume_mm3(), rel=0.01)


def test_real_ct_bone_mesh_is_closed_inside_and_on_the_mask_boundary():
    vol = load(require_data("ct-abdomen-spine"))
    lm = LabelMap.for_volume(vol)
    apply_preset(lm, vol, "bone")
    (mesh,) = labelmap_to_meshes(lm)
    st = mesh.stats()
    assert st.watertight and st.triangles > 300_000
    lo = np.array(vol.bounds()[::2]) - np.array(vol.spacing) / 2
    hi = np.array(vol.bounds()[1::2]) + np.array(vol.spacing) / 2
    assert np.all(mesh.points >= lo - 1e-6) and np.all(mesh.points <= hi + 1e-6)
    # each vertex lies in a cell of 8 voxel centres that has voxels both in and out of the mask:
    # within half a voxel diagonal of the mask's boundary
    mask = np.pad(lm.mask("Bone"), 1)
    ijk = vol.lps_to_index(mesh.points) + 1.0
    lo_idx = np.floor(ijk).astype(int)
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    idx = lo_idx[:, None, :] + corners[None]
    values = mask[idx[..., 2], idx[..., 1], idx[..., 0]]
    straddles = values.any(axis=1) & ~values.all(axis=1)
    assert straddles.mean() >= 0.99, straddles.mean()


def test_skin_surface_encloses_the_bone(tmp_path):
    from testdata import REPO

    vol = load(REPO / "sample_dicom")
    lm = LabelMap.for_volume(vol)
    apply_preset(lm, vol, "skin")
    apply_preset(lm, vol, "bone")
    skin, bone = labelmap_to_meshes(lm)
    assert skin.name == "Skin" and bone.name == "Bone"
    assert skin.is_watertight() and bone.is_watertight()
    assert skin.volume_mm3() > 5 * bone.volume_mm3()
    sb, bb = np.array(skin.bounds()), np.array(bone.bounds())
    assert np.all(sb[::2] <= bb[::2]) and np.all(sb[1::2] >= bb[1::2])


def test_phantom_bone_mesh_volume_and_canal_radius_match_ground_truth():
    import json

    from surgtwin.segmentation import operations as ops
    from testdata import REPO

    vol = load(REPO / "sample_dicom")
    truth = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
    lm = LabelMap.for_volume(vol)
    apply_preset(lm, vol, "bone")
    (bone,) = labelmap_to_meshes(lm)
    assert bone.volume_mm3() == pytest.approx(truth["bone"]["volume_mm3"], rel=0.03)
    half_voxel = vol.spacing[0] / 2
    for level in ("L3", "L4", "L5"):
        canal = truth["levels"][level]["canal"]
        grown = ops.fill_holes(ops.region_grow(vol, [canal["centre"]], -50, 45))
        mesh = mask_to_mesh(grown, vol.geometry, name="canal")
        section = mesh.to_pyvista().slice(normal="z", origin=canal["centre"]).strip()
        area, centre = _largest_loop(section)
        radius = math.sqrt(area / math.pi)  # equivalent radius of the cross-section
        rx, ry = canal["radii_mm"]
        assert radius == pytest.approx(math.sqrt(rx * ry), abs=half_voxel), level
        assert centre == pytest.approx(canal["centre"][:2], abs=half_voxel), level


def _largest_loop(polylines) -> tuple[float, np.ndarray]:
    """Area (shoelace) and centroid of the largest closed loop of a planar section."""
    lines, pts = polylines.lines, polylines.points
    best = (0.0, np.zeros(2))
    pos = 0
    while pos < len(lines):
        n = lines[pos]
        p = pts[lines[pos + 1 : pos + 1 + n]][:, :2]
        pos += n + 1
        q = np.roll(p, -1, axis=0)
        cross = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
        signed = 0.5 * cross.sum()
        if abs(signed) > best[0]:
            centroid = ((p + q) * cross[:, None]).sum(axis=0) / (6 * signed)
            best = (abs(signed), centroid)
    return best
