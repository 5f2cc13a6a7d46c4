"""The Segment panel through the real window on the phantom's images (no automatic segmentation):
presets, threshold preview, region growing by a click, brush strokes, refinements, Build 3D,
and an event loop that keeps answering while segmentation runs."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from guitools import FIELD_TIMEOUT_MS, assert_not_blank, wait_idle
from PyQt6.QtCore import QPoint, Qt, QTimer

from surgtwin.planning.case import CANAL_NAME
from testdata import REPO

pytestmark = pytest.mark.gui

TRUTH = json.loads((REPO / "sample_dicom" / "ground_truth.json").read_text())
JOB_TIMEOUT_MS = 120_000


@pytest.fixture
def seg(window, qtbot):
    """(window, segment panel) on the phantom's images with an empty label map."""
    with qtbot.waitSignal(window.caseOpened, timeout=FIELD_TIMEOUT_MS):
        window.open_path(REPO / "sample_dicom", segment=False)
    wait_idle(qtbot, window)
    return window, window.show_panel("segment")


def wait_jobs(qtbot, window) -> None:
    qtbot.waitUntil(lambda: not window.jobs, timeout=JOB_TIMEOUT_MS)
    assert window.last_error is None, window.last_error


def point(view, lps) -> QPoint:
    pos, depth = view.lps_to_widget(lps)
    assert abs(depth) < 1.0
    return pos.toPoint()


def test_bone_preset_in_one_click_is_one_undo_step(seg, qtbot, artefacts):
    w, panel = seg
    lm = w.session.plan.labelmap
    steps = len(w.session.stack.undo_names)
    qtbot.mouseClick(panel.preset_buttons["bone"], Qt.MouseButton.LeftButton)
    wait_jobs(qtbot, w)
    truth = TRUTH["bone"]["volume_mm3"]
    assert lm.volume_mm3("Bone") == pytest.approx(truth, rel=0.03)
    assert str(lm.label("Bone").role) == "bone"
    assert w.session.stack.undo_names[steps:] == ["Preset Bone"]
    assert panel.current_value() == lm.label("Bone").value
    assert panel.labelTable.item(0, 1).text() == "Bone"
    qtbot.waitUntil(lambda: panel.labelTable.item(0, 3).text().endswith("ml"))
    assert "Bone (no surface yet)" in panel.stale
    shot = w.save_screenshot(artefacts / "segment-bone-preset.png")
    assert_not_blank(shot)

    w.undo()
    assert "Bone" not in lm.names() and not lm.array.any()
    assert panel.labelTable.rowCount() == 0
    w.redo()
    assert lm.volume_mm3("Bone") == pytest.approx(truth, rel=0.03)
    assert panel.labelTable.rowCount() == 1


def test_threshold_preview_then_apply(seg, qtbot, artefacts):
    w, panel = seg
    vol, lm = w.session.volume, w.session.plan.labelmap
    marker = np.array(TRUTH["left_marker"]["centre"], dtype=float)
    w.session.set_cursor(marker)
    panel.set_range(2000, 3071)  # the 2800 HU marker, above cortical bone
    assert (panel.lowSpin.value(), panel.highSpin.value()) == (2000, 3071)
    axial = w.slice_views["axial"]
    assert panel.preview_active()
    _image, inside = panel.preview_image(axial)
    raw = w.session.slicer.image(vol.array, "axial", axial.index)
    assert inside.sum() == np.count_nonzero((raw >= 2000) & (raw <= 3071)) > 20
    shot_path = w.save_screenshot(artefacts / "segment-threshold-preview.png")
    assert_not_blank(shot_path)
    # the preview tints the marker (white) towards its teal, and nothing else
    on = axial.grab().toImage()
    panel.previewCheck.setChecked(False)
    off = axial.grab().toImage()
    panel.previewCheck.setChecked(True)
    at, away = point(axial, marker), point(axial, marker + np.array([0.0, -40.0, 0.0]))
    assert off.pixelColor(at).red() - on.pixelColor(at).red() > 60
    assert on.pixelColor(at).green() > 200
    assert on.pixelColor(away) == off.pixelColor(away)
    assert lm.names() == []  # a preview writes nothing

    qtbot.mouseClick(panel.applyButton, Qt.MouseButton.LeftButton)
    wait_jobs(qtbot, w)
    expected = np.count_nonzero((vol.array >= 2000) & (vol.array <= 3071))
    assert lm.voxel_count("Threshold") == expected
    ball = 4 / 3 * math.pi * TRUTH["left_marker"]["radius_mm"] ** 3
    assert lm.volume_mm3("Threshold") == pytest.approx(ball, rel=0.25)
    assert w.session.stack.undo_names[-1] == "Threshold 2000..3071 HU into Threshold"
    assert not panel.preview_active()  # the label shows now, not the preview
    w.undo()
    assert lm.names() == []


def test_click_on_a_slice_grows_the_canal(seg, qtbot, artefacts):
    w, panel = seg
    lm = w.session.plan.labelmap
    panel.new_label("Canal", "critical")
    panel.rangeCombo.setCurrentIndex(panel.rangeCombo.findText("CSF", Qt.MatchFlag.MatchStartsWith))
    panel.rangeCombo.activated.emit(panel.rangeCombo.currentIndex())
    assert panel.threshold_range() == (-50, 45)
    seed = np.array(TRUTH["levels"]["L4"]["canal"]["centre"], dtype=float)
    w.session.set_cursor(seed)
    qtbot.mouseClick(panel.growButton, Qt.MouseButton.LeftButton)
    assert w.tool is panel.grow_tool
    axial = w.slice_views["axial"]
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=point(axial, seed))
    wait_jobs(qtbot, w)
    assert lm.volume_mm3("Canal") == pytest.approx(TRUTH["canal"]["volume_mm3"], rel=0.05)
    assert w.session.stack.undo_names[-1].startswith("Grow Canal from (0, 0, 0) mm")
    shot = w.save_screenshot(artefacts / "segment-grow-canal.png")
    assert_not_blank(shot)
    w.undo()
    assert lm.voxel_count("Canal") == 0


def test_brush_stroke_paints_a_capsule_in_one_undo_step(seg, qtbot, artefacts):
    w, panel = seg
    lm = w.session.plan.labelmap
    panel.new_label("Painted")
    radius = 4.0
    panel.radiusSpin.setValue(radius)
    qtbot.mouseClick(panel.paintButton, Qt.MouseButton.LeftButton)
    assert w.tool is panel.paint_tool
    axial = w.slice_views["axial"]
    a, b = np.array([-45.0, 30.0, 0.0]), np.array([-20.0, 30.0, 0.0])
    w.session.set_cursor(a)
    steps = len(w.session.stack.undo_names)
    pa, pb = point(axial, a), point(axial, b)
    qtbot.mousePress(axial, Qt.MouseButton.LeftButton, pos=pa)
    for t in np.linspace(0.1, 1.0, 10):
        qtbot.mouseMove(axial, QPoint(round(pa.x() + t * (pb.x() - pa.x())), pa.y()))
        assert not lm.array.any()  # previewed while drawn, written on release
    shot = w.save_screenshot(artefacts / "segment-brush-stroke.png")
    assert_not_blank(shot)
    qtbot.mouseRelease(axial, Qt.MouseButton.LeftButton, pos=pb)
    assert w.session.stack.undo_names[steps:] == ["Paint Painted (r 4 mm)"]
    # a 2-D brush on the axial slice: a stadium of area 2 r L + pi r^2
    length = float(np.linalg.norm(axial.widget_to_lps(pb) - axial.widget_to_lps(pa)))
    pixel_mm2 = np.prod(w.session.volume.spacing[:2])
    expected = (2 * radius * length + math.pi * radius**2) / pixel_mm2
    assert lm.voxel_count("Painted") == pytest.approx(expected, rel=0.08)
    k = int(np.flatnonzero(lm.mask("Painted").any(axis=(1, 2)))[0])
    assert lm.mask("Painted")[k].sum() == lm.voxel_count("Painted")  # one slice only

    qtbot.mouseClick(panel.eraseButton, Qt.MouseButton.LeftButton)
    assert w.tool is panel.erase_tool and not panel.paintButton.isChecked()
    qtbot.mousePress(axial, Qt.MouseButton.LeftButton, pos=pa)
    qtbot.mouseRelease(axial, Qt.MouseButton.LeftButton, pos=pa)
    assert w.session.stack.undo_names[-1] == "Erase Painted (r 4 mm)"
    # a click erases a disc, wholly inside the painted stroke's rounded end
    erased = expected - lm.voxel_count("Painted")
    assert erased == pytest.approx(math.pi * radius**2 / pixel_mm2, rel=0.1)
    w.undo()
    w.undo()
    assert lm.voxel_count("Painted") == 0


def test_refinements_are_single_undo_steps(seg, qtbot):
    w, panel = seg
    lm = w.session.plan.labelmap
    panel.apply_preset("bone")
    wait_jobs(qtbot, w)
    before = lm.voxel_count("Bone")
    panel.marginSpin.setValue(1.0)
    qtbot.mouseClick(panel.growMarginButton, Qt.MouseButton.LeftButton)
    wait_jobs(qtbot, w)
    assert w.session.stack.undo_names[-1] == "Grow Bone by 1 mm"
    assert lm.voxel_count("Bone") > 1.1 * before
    w.undo()
    assert lm.voxel_count("Bone") == before
    # the phantom's three vertebrae are three islands: one label each, in one step
    qtbot.mouseClick(panel.splitButton, Qt.MouseButton.LeftButton)
    wait_jobs(qtbot, w)
    assert sorted(lm.names()) == ["Bone", "Bone 2", "Bone 3"]
    assert sum(lm.voxel_count(n) for n in lm.names()) == before
    assert w.session.stack.undo_names[-1] == "Split Bone into 3 labels"
    w.undo()
    assert lm.names() == ["Bone"] and lm.voxel_count("Bone") == before


def test_build_3d_makes_a_watertight_structure_in_one_step(seg, qtbot, artefacts):
    w, panel = seg
    plan, lm = w.session.plan, w.session.plan.labelmap
    panel.set_range(2000, 3071)
    panel.apply_threshold()
    wait_jobs(qtbot, w)
    assert panel.set_label(lm.label("Threshold").value, name="Marker")
    qtbot.mouseClick(panel.buildButton, Qt.MouseButton.LeftButton)
    wait_jobs(qtbot, w)
    s = plan.structures["Marker"]
    assert s.source == "label" and s.label_value == lm.label("Marker").value
    assert s.mesh.is_watertight()
    assert s.mesh.volume_mm3() == pytest.approx(lm.volume_mm3("Marker"), rel=0.15)
    assert "Marker" in w.view3d._structure_actors
    assert w.session.stack.undo_names[-1] == "Build 3D: Marker"
    qtbot.waitUntil(lambda: panel.stale == [])
    # unchanged labels are not rebuilt
    panel.build_3d()
    wait_jobs(qtbot, w)
    assert w.session.stack.undo_names[-1] == "Build 3D: Marker"
    w.view3d.reset_camera()
    shot = w.save_screenshot(artefacts / "segment-build-3d.png")
    assert_not_blank(shot)
    w.undo()
    assert "Marker" not in plan.structures and "Marker" not in w.view3d._structure_actors


def test_event_loop_answers_while_a_long_segmentation_runs(seg, qtbot):
    w, panel = seg
    stamps: list[float] = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: stamps.append(time.perf_counter()))
    timer.start()
    started = time.perf_counter()
    panel.apply_preset("skin")  # about a second of morphology on a worker
    wait_jobs(qtbot, w)
    qtbot.wait(150)  # the edit is applied on the GUI thread after the job
    timer.stop()
    assert time.perf_counter() - started > 0.3
    assert w.session.plan.labelmap.voxel_count("Skin") > 0
    gaps = np.diff([started, *stamps])
    assert gaps.max() < 0.1, f"the event loop stalled {gaps.max() * 1000:.0f} ms"


def test_a_seed_outside_the_range_is_a_status_message_not_an_error(seg, qtbot):
    w, panel = seg
    panel.set_range(-50, 45)
    bone = np.array(TRUTH["levels"]["L4"]["body_centre"], dtype=float)
    bone[0] += 15.0  # cancellous bone, off the midline lesion: ~250 HU
    panel.grow_at(bone)
    wait_jobs(qtbot, w)
    assert "outside -50..45" in w.statusBar().currentMessage()
    assert w.session.stack.undo_names == []


def test_build_3d_rebuilds_only_the_changed_labels_of_an_opened_case(sample_window, qtbot):
    w = sample_window
    plan = w.session.plan
    panel = w.show_panel("segment")
    # the surfaces that came with the case match its labels
    qtbot.waitUntil(lambda: panel._counts is not None and panel.stale == [], timeout=30_000)
    bone_mesh, canal_mesh = plan.structures["Bone"].mesh, plan.structures[CANAL_NAME].mesh
    panel.select_label(CANAL_NAME)
    centre = TRUTH["levels"]["L4"]["canal"]["centre"]
    assert panel.apply_stroke([centre], None, erase=True)  # a 3 mm ball out of the canal
    qtbot.waitUntil(lambda: panel.stale == [CANAL_NAME], timeout=30_000)
    panel.build_3d()
    wait_jobs(qtbot, w)
    assert w.session.stack.undo_names[-1] == f"Build 3D: {CANAL_NAME}"
    new = plan.structures[CANAL_NAME].mesh
    assert new is not canal_mesh and new.is_watertight()
    assert new.volume_mm3() < canal_mesh.volume_mm3() - 50  # the 113 mm³ bite
    assert plan.structures["Bone"].mesh is bone_mesh
    qtbot.waitUntil(lambda: panel.stale == [], timeout=30_000)
    w.undo()
    assert plan.structures[CANAL_NAME].mesh is canal_mesh
    qtbot.waitUntil(lambda: panel.stale == [CANAL_NAME], timeout=30_000)
