"""The Export panel on the phantom: models in LPS and RAS, privacy, segmentation, report,
screenshot, and errors that name the file."""

from __future__ import annotations

import gzip

import numpy as np
import pydicom
import pytest
import trimesh
from guitools import assert_not_blank
from PyQt6.QtCore import Qt

from testdata import REPO

pytestmark = pytest.mark.gui

SCREW = "L4 left pedicle screw"
JOB_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def patient() -> tuple[str, str]:
    """The phantom's patient name and ID, as in its DICOM files."""
    first = sorted((REPO / "sample_dicom" / "CT").iterdir())[0]
    ds = pydicom.dcmread(first, stop_before_pixels=True)
    return str(ds.PatientName), str(ds.PatientID)


def run(qtbot, window, button) -> None:
    """Click ``button`` and wait for the job it starts; no error dialog may open."""
    with qtbot.waitSignal(window.jobFinished, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.jobs, timeout=JOB_TIMEOUT_MS)
    assert window.last_error is None, window.last_error.informativeText()


def stl_triangles(path) -> tuple[bytes, np.ndarray]:
    """Header and (n, 3, 3) vertices of a binary STL."""
    data = path.read_bytes()
    n = int(np.frombuffer(data, "<u4", 1, 80)[0])
    rec = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    return data[:80], np.frombuffer(data, rec, n, 84)["v"]


def contains(path, text: str) -> bool:
    return text.encode() in path.read_bytes()


def export_panel(window):
    panel = window.show_panel("export")
    assert window.panelTabs.currentWidget() is panel
    return panel


def test_models_as_stl_in_lps_and_ras(sample_window, qtbot, tmp_path, artefacts, patient):
    w = sample_window
    panel = export_panel(w)
    assert not panel.includePatientCheck.isChecked(), "anonymised by default"
    panel.set_checked(structures=["Bone"], implants=[SCREW])
    assert panel.checked_models() == (["Bone"], [SCREW])
    assert_not_blank(w.save_screenshot(artefacts / "export-panel.png"))
    panel.formatCombo.setCurrentIndex(panel.formatCombo.findData("stl"))
    files = {}
    for space in ("LPS", "RAS"):
        panel.spaceCombo.setCurrentIndex(panel.spaceCombo.findData(space))
        panel.folderEdit.setText(str(tmp_path / space))
        run(qtbot, w, panel.exportMeshesButton)
        files[space] = {p.name: p for p in (tmp_path / space).iterdir()}
        assert sorted(files[space]) == ["Bone.stl", "L4_left_pedicle_screw.stl"]
    for name in ("Bone.stl", "L4_left_pedicle_screw.stl"):
        lps, ras = files["LPS"][name], files["RAS"][name]
        head_l, tri_l = stl_triangles(lps)
        head_r, tri_r = stl_triangles(ras)
        assert b"SPACE=LPS" in head_l and b"SPACE=RAS" in head_r
        assert len(tri_l) > 1000
        assert np.array_equal(tri_r[..., :2], -tri_l[..., :2])
        assert np.array_equal(tri_r[..., 2], tri_l[..., 2])
        for path in (lps, ras):
            assert trimesh.load(path, force="mesh").is_watertight, path
            assert not contains(path, patient[0]) and not contains(path, patient[1])
    # the screw is where it was planned: its STL contains the planned tip (LPS mm)
    tip = w.session.plan.implants[SCREW].pose[:3, 3]
    screw = stl_triangles(files["LPS"]["L4_left_pedicle_screw.stl"])[1].reshape(-1, 3)
    assert np.linalg.norm(screw - tip, axis=1).min() < 1.0
    # the table lists every file with its print check
    table = panel.resultTable
    assert table.rowCount() == 4
    files_shown = [table.item(r, 0).text() for r in range(table.rowCount())]
    assert (
        files_shown[0] == "Bone.stl (LPS)" and files_shown[3] == "L4_left_pedicle_screw.stl (RAS)"
    )
    checks = [table.item(r, 1).text() for r in range(table.rowCount())]
    assert all(c.startswith("watertight") for c in checks), checks
    # the screw's threads are too thin to print reliably: said so, in full when selected
    assert "print warning" in checks[1] and "thinnest wall" in panel.written[1].details
    table.setCurrentCell(1, 0)
    assert "thinnest wall" in panel.detailLabel.text()
    assert "all watertight" in panel.statusLabel.text()
    shot = w.save_screenshot(artefacts / "export-panel-models.png")
    assert_not_blank(shot)


def test_patient_identifiers_only_when_opted_in(sample_window, qtbot, tmp_path, patient):
    w = sample_window
    panel = export_panel(w)
    panel.set_checked(implants=[SCREW])
    panel.formatCombo.setCurrentIndex(panel.formatCombo.findData("obj"))
    panel.folderEdit.setText(str(tmp_path / "anon"))
    run(qtbot, w, panel.exportMeshesButton)
    anon = tmp_path / "anon" / "L4_left_pedicle_screw.obj"
    assert not contains(anon, patient[0]) and not contains(anon, patient[1])
    panel.includePatientCheck.setChecked(True)
    assert "WILL be written" in panel.privacyLabel.text()
    panel.folderEdit.setText(str(tmp_path / "named"))
    run(qtbot, w, panel.exportMeshesButton)
    named = tmp_path / "named" / "L4_left_pedicle_screw.obj"
    assert contains(named, patient[0]) and contains(named, patient[1])
    # the report too: anonymised HTML, then with the patient
    panel.reportFormatCombo.setCurrentIndex(panel.reportFormatCombo.findData(".html"))
    panel.includePatientCheck.setChecked(False)
    panel.folderEdit.setText(str(tmp_path / "anon"))
    run(qtbot, w, panel.exportReportButton)
    report = tmp_path / "anon" / "Plan_report.html"
    assert report.is_file() and not contains(report, patient[0].split("^")[0])
    assert not contains(report, patient[1])
    panel.includePatientCheck.setChecked(True)
    panel.folderEdit.setText(str(tmp_path / "named"))
    run(qtbot, w, panel.exportReportButton)
    assert contains(tmp_path / "named" / "Plan_report.html", patient[1])


def test_segmentation_report_and_screenshot(sample_window, qtbot, tmp_path, artefacts, patient):
    w = sample_window
    panel = export_panel(w)
    panel.folderEdit.setText(str(tmp_path))
    # 3D Slicer segmentation: LPS header, one named segment per label
    panel.segFormatCombo.setCurrentIndex(panel.segFormatCombo.findData(".seg.nrrd"))
    run(qtbot, w, panel.exportSegButton)
    seg = tmp_path / "Plan.seg.nrrd"
    header = seg.read_bytes().split(b"\n\n", 1)[0].decode()
    assert "space: left-posterior-superior" in header
    names = {
        line.split(":=", 1)[1]
        for line in header.splitlines()
        if line.startswith("Segment") and "_Name:=" in line
    }
    assert names == {lab.name for lab in w.session.plan.labelmap.labels.values()}
    assert {"Bone", "Spinal canal"} <= names
    raw = gzip.decompress(seg.read_bytes().split(b"\n\n", 1)[1])
    assert len(raw) == w.session.plan.labelmap.array.size
    assert not contains(seg, patient[0])
    # PDF report
    panel.reportFormatCombo.setCurrentIndex(panel.reportFormatCombo.findData(".pdf"))
    run(qtbot, w, panel.exportReportButton)
    pdf = tmp_path / "Plan_report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    # screenshot of the window
    shot = panel.save_screenshot()
    assert shot is not None and shot.parent == tmp_path and shot.suffix == ".png"
    assert_not_blank(shot)
    written = [e.path for e in panel.written]
    assert written == [seg, pdf, shot]
    assert not list(tmp_path.glob(".*.tmp*")), "no temporary file is left behind"
    assert_not_blank(w.save_screenshot(artefacts / "export-panel-documents.png"))


def test_write_errors_name_the_file(sample_window, qtbot, tmp_path):
    w = sample_window
    panel = export_panel(w)
    panel.set_checked(implants=[SCREW])
    panel.formatCombo.setCurrentIndex(panel.formatCombo.findData("stl"))
    # a folder stands where the file must go: the write fails, the dialog names the file
    target = tmp_path / "L4_left_pedicle_screw.stl"
    (target / "in the way").mkdir(parents=True)
    panel.folderEdit.setText(str(tmp_path))
    with qtbot.waitSignal(w.jobFinished, timeout=JOB_TIMEOUT_MS):
        panel.export_meshes()
    qtbot.waitUntil(lambda: w.last_error is not None)
    assert str(target) in w.last_error.informativeText()
    assert "not completed" in panel.statusLabel.text()
    assert panel.exportMeshesButton.isEnabled()
    assert not list(tmp_path.glob(".*.tmp*")), "no temporary file is left behind"
    w.last_error.close()
    # an output folder that cannot be created
    w.last_error = None
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    panel.folderEdit.setText(str(blocker / "sub"))
    assert panel.export_meshes() is None
    assert w.last_error is not None and str(blocker / "sub") in w.last_error.informativeText()
    w.last_error.close()
