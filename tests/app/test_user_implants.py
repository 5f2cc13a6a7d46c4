"""User STL implants through the real window: add a mesh file with the "Add STL implant"
dialog, place it with two clicks, read its live clearance of the spinal canal."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtTest import QTest

from testdata import REPO

pytestmark = pytest.mark.gui

TRUTH = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
LEFT = TRUTH["levels"]["L4"]["pedicle_screws"]["left"]


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """A fresh user data folder, set before the window is created (autouse runs first)."""
    folder = tmp_path / "data"
    monkeypatch.setenv("SURGTWIN_DATA_DIR", str(folder))
    (folder / "implants").mkdir(parents=True)
    (folder / "implants" / "broken.json").write_text("{not json", encoding="utf-8")
    return folder


def _point(view, lps) -> QPoint:
    pos, depth = view.lps_to_widget(np.asarray(lps, dtype=float))
    assert abs(depth) < 1.0, "the point is not on the shown slice"
    return QPoint(round(pos.x()), round(pos.y()))


def test_add_place_and_check_an_stl_implant(sample_window, qtbot, tmp_path, data_dir):
    from surgtwin.planning.implants import USER_STL, Catalogue

    w = sample_window
    plan = w.session.plan
    panel = w.show_panel("implants")
    assert USER_STL not in panel.catalogue.kinds()  # the broken file is left out, no crash

    stl = tmp_path / "cylinder.stl"
    trimesh.creation.cylinder(radius=3.25, height=45.0, sections=96).export(stl)
    dialog = panel.add_stl_implant()
    dialog.set_file(stl)
    # the defaults: the top centre, straight down, the whole height
    assert [b.value() for b in dialog.entrySpins] == pytest.approx([0.0, 0.0, 22.5])
    assert [b.value() for b in dialog.directionSpins] == [0.0, 0.0, -1.0]
    assert dialog.lengthSpin.value() == pytest.approx(45.0)
    dialog.nameEdit.setText("Test cylinder")
    dialog.manufacturerEdit.setText("Workshop")
    dialog.diameterSpin.setValue(6.5)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted

    saved = data_dir / "implants" / "user_catalogue.json"
    (spec,) = Catalogue.read_file(saved)
    assert spec.kind == USER_STL and spec.name == "Test cylinder"
    assert spec.diameter_mm == 6.5 and spec.length_mm == pytest.approx(45.0)
    assert panel.kindCombo.currentData() == USER_STL
    assert panel.selected_spec() == spec
    assert "Added Test cylinder" in w.statusBar().currentMessage()

    # two clicks on the axial slice: entry, then target
    axial = w.slice_views["axial"]
    w.session.set_cursor(LEFT["entry"])
    qtbot.wait(10)
    panel.placeButton.click()
    QTest.mouseClick(axial, Qt.MouseButton.LeftButton, pos=_point(axial, LEFT["entry"]))
    QTest.mouseClick(axial, Qt.MouseButton.LeftButton, pos=_point(axial, LEFT["target"]))
    assert "Test cylinder" in plan.implants
    record = plan.implants["Test cylinder"]
    assert record.parameters["file"] == str(stl.resolve())
    assert w.session.current_implant == "Test cylinder"

    qtbot.waitUntil(lambda: "Test cylinder" in w.live.readings, timeout=10_000)
    canal = next(r for r in w.live.readings["Test cylinder"] if r.role == "critical")
    assert canal.clearance_mm == pytest.approx(LEFT["min_canal_distance_mm"] - 3.25, abs=0.5)
    assert canal.status == "ok"
    assert "Clear" in panel.statusLabel.text()


def test_a_broken_user_catalogue_is_reported(data_dir):
    from surgtwin.app.panels.implants import load_catalogue
    from surgtwin.planning.implants import Catalogue

    catalogue, problems = load_catalogue()
    assert len(catalogue) == len(Catalogue.builtin())
    (message,) = problems
    assert "broken.json" in message
