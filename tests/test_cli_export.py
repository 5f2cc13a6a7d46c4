"""CLI contract of `surgtwin export` and `surgtwin segment` on the bundled phantom."""

from __future__ import annotations

import json

import pytest
import trimesh

from surgtwin.cli import main
from testdata import REPO

SAMPLE = str(REPO / "sample_dicom")


@pytest.fixture(scope="module")
def lps_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("lps")
    return out, _export(out, "--format", "stl", "--space", "LPS")


def _export(out, *extra) -> dict:
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(
            [
                "export",
                SAMPLE,
                "--preset",
                "bone",
                "--preset",
                "skin",
                "-o",
                str(out),
                "--json",
                *extra,
            ]
        )
    assert code == 0
    return json.loads(buf.getvalue())


def test_export_json_contract(lps_export):
    out, doc = lps_export
    assert [m["name"] for m in doc["meshes"]] == ["Bone", "Skin"]
    for m in doc["meshes"]:
        assert set(m) >= {
            "name",
            "file",
            "triangles",
            "volume_mm3",
            "area_mm2",
            "watertight",
            "bounds_lps",
        }
        assert m["watertight"] is True and m["triangles"] > 10_000
        assert len(m["bounds_lps"]) == 6
        # the file is there and is the same closed mesh
        mesh = trimesh.load(m["file"], force="mesh")
        assert mesh.is_watertight
        assert len(mesh.faces) == m["triangles"]
        assert abs(mesh.volume) == pytest.approx(m["volume_mm3"], rel=1e-4)
    bone, skin = doc["meshes"]
    # the phantom's field of view is x -64..64, y -56..84, z -60..59 mm (LPS)
    xmin, xmax, ymin, ymax, zmin, zmax = bone["bounds_lps"]
    assert -64.5 <= xmin < xmax <= 64.5 and -60.5 <= zmin < zmax <= 59.5
    assert -56.5 <= ymin < ymax <= 84.5
    assert skin["volume_mm3"] > 5 * bone["volume_mm3"]
    assert not any("PHANTOM" in p.name.upper() for p in out.iterdir())


def test_ras_export_reports_lps_bounds_and_writes_ras(lps_export, tmp_path):
    _, lps = lps_export
    ras = _export(tmp_path, "--format", "stl", "--space", "RAS")
    for a, b in zip(lps["meshes"], ras["meshes"], strict=True):
        assert a["bounds_lps"] == pytest.approx(b["bounds_lps"])
        mesh = trimesh.load(b["file"], force="mesh")
        lo, hi = mesh.bounds
        # written in RAS: x and y negated
        assert lo[0] == pytest.approx(-b["bounds_lps"][1], abs=1e-3)
        assert hi[1] == pytest.approx(-b["bounds_lps"][2], abs=1e-3)
        with open(b["file"], "rb") as f:
            assert b"SPACE=RAS" in f.read(80)


@pytest.mark.parametrize("fmt", ["glb", "3mf"])
def test_scene_formats_hold_every_structure(fmt, tmp_path):
    doc = _export(tmp_path, "--format", fmt)
    files = {m["file"] for m in doc["meshes"]}
    assert len(files) == 1
    scene = trimesh.load(files.pop())
    assert len(scene.geometry) == 2


def test_segment_writes_seg_nrrd_and_dicom_seg(tmp_path, capsys):
    out = tmp_path / "case.seg.nrrd"
    assert main(["segment", SAMPLE, "--preset", "bone", "-o", str(out)]) == 0
    assert out.exists() and b"Segment0_Name:=Bone" in out.read_bytes()[:4096]
    dcm = tmp_path / "case_seg.dcm"
    assert main(["segment", SAMPLE, "--preset", "bone", "-o", str(dcm)]) == 0
    assert b"PHANTOM^LUMBAR" not in dcm.read_bytes()
    code = main(["segment", SAMPLE, "--preset", "bone", "-o", str(tmp_path / "x.tiff")])
    assert code == 1
    assert "unknown segmentation format" in capsys.readouterr().err


def test_export_refuses_presets_on_non_hu_ct(tmp_path, capsys):
    from testdata import require_data

    code = main(
        ["export", str(require_data("ct-head-small")), "--preset", "bone", "-o", str(tmp_path)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "Hounsfield" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())
