"""Exporting a plan's models (checked for printing) and its segmentation, on the phantom."""

from __future__ import annotations

import dataclasses

import numpy as np
import pydicom
import pytest

from surgtwin.planning.checks import entry_and_tip
from surgtwin.planning.plan_export import (
    ExportError,
    export_plan_meshes,
    plan_meshes,
    write_segmentation,
)
from testdata import REPO

SAMPLE = REPO / "sample_dicom"
SCREW = "L4 left pedicle screw"


@pytest.fixture(scope="module")
def case():
    from surgtwin.app.casework import open_dicom_case

    return open_dicom_case(SAMPLE)


@pytest.fixture(scope="module")
def patient_name() -> str:
    first = sorted((SAMPLE / "CT").iterdir())[0]
    return str(pydicom.dcmread(first, stop_before_pixels=True).PatientName)


def test_implant_model_is_at_its_planned_pose(case):
    ((kind, mesh),) = plan_meshes(case.plan, implants=[SCREW])
    assert kind == "implant" and mesh.name == SCREW and mesh.role == "implant"
    entry, tip = entry_and_tip(case.plan.implants[SCREW])
    axis = (entry - tip) / np.linalg.norm(entry - tip)
    # every vertex lies around the planned axis (head 11 mm wide), from the tip onwards
    rel = mesh.points - tip
    along = rel @ axis
    radial = np.linalg.norm(rel - np.outer(along, axis), axis=1)
    assert radial.max() <= 5.5 + 1e-6
    assert along.min() > -0.5 and 45.0 - 0.5 < along.max() < 60.0


def test_export_writes_one_checked_file_per_model(case, tmp_path):
    rows = export_plan_meshes(
        case.plan, tmp_path, structures=["Spinal canal"], implants=[SCREW], fmt="stl"
    )
    assert [(r.name, r.kind) for r in rows] == [("Spinal canal", "structure"), (SCREW, "implant")]
    for row in rows:
        assert len(row.files) == 1 and row.files[0].is_file()
        assert row.files[0].suffix == ".stl"
        assert row.watertight and row.triangles > 1000 and row.volume_mm3 > 0
    # the screw's threads are thinner than a printer can make: reported, not hidden
    assert any("thinnest wall" in p for p in rows[1].problems)
    assert not rows[1].printable
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file is left behind"


def test_glb_holds_every_model_in_one_file(case, tmp_path):
    rows = export_plan_meshes(
        case.plan, tmp_path, structures=["Spinal canal"], implants=[SCREW], fmt="glb",
        base_name="case_models", check=False,
    )  # fmt: skip
    assert rows[0].files == rows[1].files == [tmp_path / "case_models.glb"]


def test_export_refuses_what_it_cannot_do(case, tmp_path):
    with pytest.raises(ExportError, match="at least one"):
        export_plan_meshes(case.plan, tmp_path)
    with pytest.raises(ExportError, match="no structure 'Liver'"):
        export_plan_meshes(case.plan, tmp_path, structures=["Liver"])
    with pytest.raises(ExportError, match="patient's details"):
        export_plan_meshes(case.plan, tmp_path, implants=[SCREW], include_patient=True)
    assert not any(tmp_path.iterdir())


def test_cancel_writes_nothing(case, tmp_path):
    from surgtwin.errors import LoadCancelled

    with pytest.raises(LoadCancelled):
        export_plan_meshes(case.plan, tmp_path / "out", implants=[SCREW], cancel=lambda: True)
    assert not (tmp_path / "out").exists()


def test_segmentation_nrrd_and_nifti(case, tmp_path):
    from surgtwin.segmentation.seg_io import labels_sidecar_path, read_seg_nrrd

    out = write_segmentation(case.plan, tmp_path / "plan.seg.nrrd")
    back = read_seg_nrrd(out)
    assert {lab.name for lab in back.labels.values()} == {
        lab.name for lab in case.plan.labelmap.labels.values()
    }
    assert np.array_equal(np.asarray(back.array), np.asarray(case.plan.labelmap.array))
    nii = write_segmentation(case.plan, tmp_path / "plan.nii.gz")
    assert nii.is_file() and labels_sidecar_path(nii).is_file()
    with pytest.raises(ExportError, match="unknown segmentation format"):
        write_segmentation(case.plan, tmp_path / "plan.png")


def test_dicom_seg_is_anonymised_unless_asked(case, tmp_path, patient_name):
    anon = write_segmentation(case.plan, tmp_path / "anon.dcm", volume=case.volume)
    ds = pydicom.dcmread(anon)
    assert ds.Modality == "SEG" and str(ds.PatientName).rstrip("^") == "ANONYMOUS"
    assert patient_name.encode() not in anon.read_bytes()
    # without a volume, the source images are loaded from the plan's source path
    named = write_segmentation(case.plan, tmp_path / "named.dcm", include_patient=True)
    assert str(pydicom.dcmread(named).PatientName) == patient_name


def test_dicom_seg_needs_the_source_images(case, tmp_path):
    from surgtwin.planning.plan import Plan

    moved = Plan("moved", dataclasses.replace(case.plan.case, source_path=str(tmp_path / "gone")))
    moved.labelmap = case.plan.labelmap
    with pytest.raises(ExportError, match="original DICOM images"):
        write_segmentation(moved, tmp_path / "seg.dcm")
