"""Segmentation operations with known answers (mm, mm^3), and presets on real data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from surgtwin.imaging import load
from surgtwin.imaging.volume import ImageGeometry
from surgtwin.segmentation import LabelMap, SegmentationError, apply_preset
from surgtwin.segmentation import operations as ops
from testdata import REPO, require_data


def aniso() -> ImageGeometry:
    return ImageGeometry((41, 81, 81), (0.5, 0.5, 2.0), (-20.0, -20.0, -40.0), np.eye(3))


@pytest.fixture(scope="module")
def phantom():
    vol = load(REPO / "sample_dicom", cache=None)
    truth = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
    return vol, truth


def test_grow_and_shrink_honour_anisotropic_spacing():
    g = aniso()
    centre = np.array([0.0, 0.0, 0.0])
    k, j, i = np.indices(g.shape)
    pts = g.index_to_lps(np.stack([i.ravel(), j.ravel(), k.ravel()], 1))
    dist = np.linalg.norm(pts - centre, axis=1).reshape(g.shape)
    ball6, ball10, ball2 = dist <= 6.0, dist <= 10.0, dist <= 2.0
    grown = ops.grow(ball6, g, 4.0)
    # along x (0.5 mm voxels) the grown ball reaches exactly 10 mm; along z (2 mm) 10 mm too
    _jj, ii = np.nonzero(grown[20])
    assert (ii.max() - ii.min()) * 0.5 == pytest.approx(20.0)
    kk = np.nonzero(grown[:, 40, 40])[0]
    assert (kk.max() - kk.min()) * 2.0 == pytest.approx(20.0)
    assert grown.sum() == pytest.approx(ball10.sum(), rel=0.05)
    shrunk = ops.shrink(ball10, g, 4.0)
    assert shrunk.sum() == pytest.approx(ball6.sum(), rel=0.08)
    assert ops.shrink(ball6, g, 4.0).sum() == pytest.approx(ball2.sum(), rel=0.35)
    assert not ops.shrink(ball2, g, 4.0).any()


def test_fill_holes_fills_cavities_not_tunnels():
    g = aniso()
    cube = np.zeros(g.shape, bool)
    cube[10:30, 20:60, 20:60] = True
    hollow = cube.copy()
    hollow[15:25, 30:50, 30:50] = False
    assert np.array_equal(ops.fill_holes(hollow), cube)
    tunnel = cube.copy()
    tunnel[15:25, 30:50, :] = False
    assert np.array_equal(ops.fill_holes(tunnel), tunnel)


def test_islands():
    g = aniso()
    m = np.zeros(g.shape, bool)
    m[5:10, 5:15, 5:15] = True  # 500 voxels = 250 mm3
    m[20:22, 40:42, 40:42] = True  # 8 voxels = 4 mm3
    m[30:35, 60:70, 60:70] = True  # 500 voxels
    assert ops.keep_largest(m).sum() == 500
    small_gone = ops.remove_small(m, g, 10.0)
    assert small_gone.sum() == 1000 and not small_gone[21, 41, 41]
    seed = g.index_to_lps([[41, 41, 21]])[0]
    assert ops.keep_containing(m, g, seed).sum() == 8
    assert [p.sum() for p in ops.split_islands(m)] == [500, 500, 8]
    with pytest.raises(SegmentationError, match="not inside"):
        ops.keep_containing(m, g, g.index_to_lps([[0, 0, 0]])[0])


def test_sphere_brush_volume_and_position():
    g = ImageGeometry((60, 60, 60), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0), np.eye(3))
    box, ball = ops.sphere(g, (15.0, 15.0, 15.0), 5.0)
    assert ball.sum() * g.voxel_volume_mm3 == pytest.approx(4 / 3 * math.pi * 125, rel=0.03)
    k, j, i = np.nonzero(ball)
    centre = g.index_to_lps(
        [[i.mean() + box[2].start, j.mean() + box[1].start, k.mean() + box[0].start]]
    )
    assert centre[0] == pytest.approx([15.0, 15.0, 15.0], abs=0.05)
    assert ops.sphere(g, (500.0, 0.0, 0.0), 2.0) is None


def test_hollow_shell_thickness():
    g = ImageGeometry((80, 80, 80), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0), np.eye(3))
    _, ball = ops.sphere(g, (20.0, 20.0, 20.0), 15.0)
    full = np.zeros(g.shape, bool)
    full[: ball.shape[0], : ball.shape[1], : ball.shape[2]] = ball
    shell = ops.hollow(full, g, 2.0)
    inner_r = (3 * (full.sum() - shell.sum()) * g.voxel_volume_mm3 / (4 * math.pi)) ** (1 / 3)
    outer_r = (3 * full.sum() * g.voxel_volume_mm3 / (4 * math.pi)) ** (1 / 3)
    assert outer_r - inner_r == pytest.approx(2.0, abs=0.5)  # within one voxel


def test_canal_region_grow_matches_ground_truth(phantom):
    vol, truth = phantom
    canal = truth["levels"]["L4"]["canal"]
    mask = ops.region_grow(vol, [canal["centre"]], -50, 45)
    k = round(vol.lps_to_index(canal["centre"])[2])
    area = mask[k].sum() * vol.spacing[0] * vol.spacing[1]
    assert area == pytest.approx(math.pi * canal["radii_mm"][0] * canal["radii_mm"][1], rel=0.06)
    with pytest.raises(SegmentationError, match="outside"):
        ops.region_grow(vol, [truth["levels"]["L4"]["body_centre"]], -50, 45)


def test_bone_preset_on_phantom(phantom):
    vol, truth = phantom
    lm = LabelMap.for_volume(vol)
    edit = apply_preset(lm, vol, "bone")
    assert lm.names() == ["Bone"] and lm.label("Bone").role == "bone"
    # every ideal screw target (deep in cancellous bone) and body centre is bone
    for level in truth["levels"].values():
        i, j, k = np.rint(vol.lps_to_index(level["body_centre"])).astype(int)
        assert lm.array[k, j, i] == lm.label("Bone").value
        i, j, k = np.rint(vol.lps_to_index(level["canal"]["centre"])).astype(int)
        assert lm.array[k, j, i] == 0
    lm.undo(edit)
    assert not lm.array.any()


def test_bone_preset_fills_the_l4_lesion(phantom):
    """The lytic lesion (~40 HU) inside the L4 body is a cavity of the >= 226 HU mask: the bone
    preset fills it, so the lesion counts as part of the vertebra (as in the ground truth's bone
    volumes) and the bone surface stays one closed outer surface."""
    vol, truth = phantom
    lesion = truth["lesion"]
    lm = LabelMap.for_volume(vol)
    apply_preset(lm, vol, "bone")
    mask = lm.mask("Bone")
    k, j, i = (a.ravel() for a in np.indices((20, 24, 24)))
    ijk = np.stack([i + 68, j + 20, k + 46], axis=1)  # a box around the lesion
    d = np.linalg.norm(vol.geometry.index_to_lps(ijk) - lesion["centre"], axis=1)
    inside = ijk[d < lesion["radius_mm"] - 0.5]
    assert len(inside) > 500
    values = vol.array[inside[:, 2], inside[:, 1], inside[:, 0]]
    assert abs(values.mean() - lesion["hu"]) < 5.0 and values.max() < 226
    assert mask[inside[:, 2], inside[:, 1], inside[:, 0]].all()


def test_bone_preset_on_contrast_ct_keeps_bone_not_heart():
    vol = load(require_data("ct-abdomen-spine"))
    lm = LabelMap.for_volume(vol)
    apply_preset(lm, vol, "bone")
    bone = lm.mask("Bone")
    # the heart with contrast (>226 HU, no cortex) at k=120, centre of the chest, is left out
    assert not bone[120, 220:260, 270:300].any()
    # the vertebral body at k=60 (cancellous interior filled) and the spinous process are in
    assert bone[60, 270:290, 250:280].mean() > 0.95
    assert bone[60, 330:336, 264:270].any()
    assert 1.0e6 < lm.volume_mm3("Bone") < 1.5e6


def test_presets_refuse_non_hu_ct():
    vol = load(require_data("ct-head-small"))
    lm = LabelMap.for_volume(vol)
    with pytest.raises(SegmentationError, match="Hounsfield"):
        apply_preset(lm, vol, "bone")
    with pytest.raises(SegmentationError, match="unknown preset"):
        apply_preset(lm, vol, "liver")


@pytest.mark.parametrize("order", [("bone", "skin"), ("skin", "bone")])
def test_body_presets_never_take_voxels_from_bone(phantom, order):
    vol, _ = phantom
    lm = LabelMap.for_volume(vol)
    for key in order:
        apply_preset(lm, vol, key)
    bone_alone = LabelMap.for_volume(vol)
    apply_preset(bone_alone, vol, "bone")
    assert lm.voxel_count("Bone") == bone_alone.voxel_count("Bone") > 0
    assert lm.voxel_count("Skin") > 5 * lm.voxel_count("Bone")


def test_bone_preset_volume_matches_phantom_ground_truth(phantom):
    """The surface sits at the half-maximum of the cortical edge, not at the low threshold."""
    vol, truth = phantom
    lm = LabelMap.for_volume(vol)
    apply_preset(lm, vol, "bone")
    assert lm.volume_mm3("Bone") == pytest.approx(truth["bone"]["volume_mm3"], rel=0.03)


def test_mr_presets_find_the_foreground():
    vol = load(require_data("mr-snippets", "siemens_multiframe", "anatomical", "001"))
    lm = LabelMap.for_volume(vol)
    apply_preset(lm, vol, "mr-foreground")
    fraction = lm.voxel_count("Foreground") / lm.array.size
    assert 0.05 < fraction < 0.95
    # the foreground is brighter than what was left out
    fg = lm.mask("Foreground")
    assert vol.array[fg].mean() > 2 * vol.array[~fg].mean()
    with pytest.raises(SegmentationError, match="for CT"):
        apply_preset(lm, vol, "bone")


def test_skin_preset_leaves_out_the_table_and_immobilisation():
    vol = load(require_data("ct-abdomen-spine"))
    lm = LabelMap.for_volume(vol)
    apply_preset(lm, vol, "skin")
    body = lm.mask("Skin")
    # the couch lies below the patient's back (rows > 390), its side rails at the image edges
    assert not body[:, 390:, :].any()
    assert not body[:, 300:, :25].any() and not body[:, 300:, 490:].any()
    # the abdomen at k=60 is filled (bowel gas and organs inside)
    assert body[60, 200:330, 150:360].mean() > 0.97
    assert 25e6 < lm.volume_mm3("Skin") < 40e6
