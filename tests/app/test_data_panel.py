"""The Data panel through the real window: scan -> series browser -> load (or cancel), drag and
drop, File > Open DICOM, recent files, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from guitools import assert_not_blank, wait_idle
from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
from PyQt6.QtGui import QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QApplication, QFileDialog

from surgtwin.app.panels.data import COL_FILES, COL_FINDINGS, COL_MODALITY, COL_SIZE
from testdata import REPO, require_data

pytestmark = pytest.mark.gui

FAILING = ("bad", "dicom2nifti-failing")
AMBER = "#ffb340"
RED = "#ff5a4f"
JOB_MS = 60_000


def _panel(window):
    panel = window.panels["data"]
    assert window.panelTabs.indexOf(panel) == 0, "the Data panel is the first tab"
    window.show_panel("data")
    return panel


def _scan(qtbot, window, path):
    panel = _panel(window)
    panel.scan(path)
    qtbot.waitUntil(lambda: panel._scan_job is None and not window.jobs, timeout=JOB_MS)
    return panel


def _rows(panel):
    tree = panel.seriesTree
    return [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]


def _row_of(panel, folder):
    """The browser row of the series whose files lie in ``folder``."""
    for series in panel.result.index.series:
        if str(folder) in series.first.ref.name:
            return series, panel.series_item(series.uid)
    raise AssertionError(f"no series from {folder}")


def _load(qtbot, window, button, idle=True):
    with qtbot.waitSignal(window.caseOpened, timeout=JOB_MS):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    if idle:  # the distance fields too
        wait_idle(qtbot, window)


def test_scan_shows_findings_highlighted(window, qtbot, artefacts):
    root = require_data()
    tilted = require_data(*FAILING, "gantrytilting")
    panel = _scan(qtbot, window, root)
    index = panel.result.index
    assert len(_rows(panel)) == len(index.series) > 10
    series, item = _row_of(panel, tilted)
    assert "gantry_tilt" in item.text(COL_FINDINGS)
    assert item.foreground(COL_FINDINGS).color().name() == AMBER
    assert (
        "gantry_tilt" in item.toolTip(COL_FINDINGS) and "tilt" in item.toolTip(COL_FINDINGS).lower()
    )
    assert item.text(COL_MODALITY) == "CT"
    assert item.text(COL_SIZE) == "×".join(str(v) for v in series.grid.size)
    assert item.text(COL_FILES) == str(series.n_files)
    assert not item.icon(0).isNull()
    # the gantry-tilted series loads (corrected): its buttons are on
    panel.select_series(series.uid)
    assert panel.loadSegmentButton.isEnabled() and panel.loadOnlyButton.isEnabled()
    assert "gantry_tilt" in panel.detailsLabel.text()
    assert panel.thumbLabel.pixmap() is not None and not panel.thumbLabel.pixmap().isNull()
    # the broken one (all images at one position) is red and cannot be loaded
    broken, bad_item = _row_of(panel, require_data(*FAILING, "notavolume"))
    assert "duplicate_positions" in bad_item.text(COL_FINDINGS)
    assert bad_item.foreground(COL_FINDINGS).color().name() == RED
    panel.select_series(broken.uid)
    assert not panel.loadSegmentButton.isEnabled() and not panel.loadOnlyButton.isEnabled()
    assert not panel.resampleButton.isVisible()
    # missing slices: refused, but offered with resampling
    gap, _ = _row_of(panel, require_data(*FAILING, "sliceincrement", "001"))
    panel.select_series(gap.uid)
    assert panel.resampleButton.isVisible() and panel.resampleButton.isEnabled()
    # files left out and non-image objects are listed with their reasons
    tops = [panel.skippedTree.topLevelItem(i) for i in range(panel.skippedTree.topLevelItemCount())]
    assert any(t.text(0).startswith("Skipped files") for t in tops)
    assert sum(t.childCount() for t in tops) >= min(len(index.skipped) + len(index.non_images), 500)
    assert all(t.child(0).text(1) for t in tops)
    panel.select_series(series.uid)
    qtbot.wait(50)
    shot = window.save_screenshot(artefacts / "data-panel-browser.png")
    assert_not_blank(shot)


def test_load_fills_slice_views_and_recent(window, qtbot, artefacts):
    from surgtwin.imaging import load

    head = require_data("ct-head-small")
    panel = _scan(qtbot, window, head)
    assert len(_rows(panel)) == 1
    assert panel.selected_series() is not None, "the only loadable series is selected"
    _load(qtbot, window, panel.loadOnlyButton)
    expected = load(head)
    volume = window.session.volume
    assert volume.array.shape == expected.array.shape == (93, 64, 64)
    assert volume.spacing == pytest.approx(expected.spacing)
    assert window.session.slicer is not None
    assert window.last_error is None
    for view in window.slice_views.values():
        assert view.grab().toImage().pixelColor(view.width() // 2, view.height() // 2).value() > 0
    # recent files: the panel's list and the File menu
    assert window.recent_files()[0] == str(head.resolve())
    assert panel.recentList.item(0).data(Qt.ItemDataRole.UserRole) == str(head.resolve())
    assert window.menuRecent.actions()[0].text() == str(head.resolve())
    shot = window.save_screenshot(artefacts / "data-panel-loaded.png")
    assert_not_blank(shot)
    # clicking the recent entry lists its series again
    panel.seriesTree.clear()
    rect = panel.recentList.visualItemRect(panel.recentList.item(0))
    qtbot.mouseClick(panel.recentList.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: panel._scan_job is None and not window.jobs, timeout=JOB_MS)
    assert len(_rows(panel)) == 1 and panel.result.path == head.resolve()


def test_cancel_long_load_keeps_previous_case(window, qtbot, artefacts):
    from surgtwin.imaging import DEFAULT_CACHE

    head = require_data("ct-head-small")
    abdomen = require_data("ct-abdomen-spine")
    panel = _scan(qtbot, window, head)
    _load(qtbot, window, panel.loadOnlyButton)
    previous = window.session.volume
    plan = window.session.plan
    _scan(qtbot, window, abdomen)
    DEFAULT_CACHE.clear()
    assert panel.loadSegmentButton.isEnabled()
    qtbot.mouseClick(panel.loadSegmentButton, Qt.MouseButton.LeftButton)
    assert window.jobs and window.jobBox.isVisible()
    assert not panel.loadSegmentButton.isEnabled(), "no second load while one runs"
    qtbot.mouseClick(window.jobCancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.jobs, timeout=JOB_MS)
    wait_idle(qtbot, window)
    assert window.last_error is None, "cancelling is not an error"
    assert window.session.volume is previous and window.session.plan is plan
    assert "cancelled" in window.statusBar().currentMessage()
    assert not window.jobBox.isVisible()
    shot = window.save_screenshot(artefacts / "data-panel-cancelled.png")
    assert_not_blank(shot)
    # still usable: the buttons are back and the previous case can be reloaded
    assert panel.loadSegmentButton.isEnabled() and panel.loadOnlyButton.isEnabled()
    _scan(qtbot, window, head)
    _load(qtbot, window, panel.loadOnlyButton)
    assert window.session.volume.array.shape == previous.array.shape


@pytest.mark.parametrize(
    "parts, words",
    [
        (("bad", "pydicom", "test_files", "no_meta.dcm"), "not a DICOM file"),
        (("bad", "pydicom", "test_files", "rtstruct.dcm"), "RT structure set"),
        (("README.md",), "not a DICOM file"),
    ],
)
def test_bad_file_shows_error_dialog(window, qtbot, artefacts, parts, words):
    bad = require_data(*parts)
    panel = _scan(qtbot, window, bad)
    box = window.last_error
    assert box is not None and box.isVisible()
    assert bad.name in box.informativeText() and words in box.informativeText()
    assert window.session.volume is None and not panel.loadSegmentButton.isEnabled()
    # the file's reason is also listed, unfolded, in the "left out" section
    top = panel.skippedTree.topLevelItem(0)
    assert top.isExpanded() and words in top.child(0).text(1)
    if parts[-1] == "no_meta.dcm":
        assert_not_blank(window.save_screenshot(artefacts / "data-panel-bad-file.png"))
        dialog = artefacts / "data-panel-bad-file-dialog.png"
        assert box.grab().save(str(dialog))
        assert_not_blank(dialog)
    box.close()


def test_missing_path_shows_error_dialog(window, qtbot, tmp_path):
    missing = tmp_path / "no-such-folder"
    _scan(qtbot, window, missing)
    box = window.last_error
    assert box is not None and box.isVisible()
    assert str(missing) in box.informativeText()
    box.close()


def _drop(window, *paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(window.width() / 2, window.height() / 2)
    action = Qt.DropAction.CopyAction
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(pos.toPoint(), action, mime, buttons, mods)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, action, mime, buttons, mods)
    QApplication.sendEvent(window, drop)
    assert drop.isAccepted()


def test_drop_folder_lists_series_and_drop_plan_opens(window, qtbot, tmp_path):
    from surgtwin.planning.plan import Plan

    tilted = require_data(*FAILING, "gantrytilting")
    panel = window.panels["data"]
    window.show_panel("data")
    _drop(window, tilted)
    qtbot.waitUntil(lambda: panel._scan_job is None and not window.jobs, timeout=JOB_MS)
    rows = _rows(panel)
    assert len(rows) == 1 and "gantry_tilt" in rows[0].text(COL_FINDINGS)
    assert panel.result.path == tilted
    # several files from one folder: that folder is scanned
    files = sorted((tilted / "001").glob("*.dcm"))[:2]
    _drop(window, *files)
    qtbot.waitUntil(lambda: panel._scan_job is None and not window.jobs, timeout=JOB_MS)
    assert panel.result.path == tilted / "001"
    assert _rows(panel)[0].text(COL_FILES) == "4"
    assert window.session.volume is None, "dropping a folder only lists its series"
    # load it (the tilt is corrected), save the plan, and drop the plan: it opens
    _load(qtbot, window, panel.loadOnlyButton)
    plan_path = tmp_path / "tilted.surgplan"
    assert window.save_to(plan_path)
    window.session.set_case(None, Plan("Other", window.session.plan.case))  # another case
    assert window.session.volume is None
    with qtbot.waitSignal(window.caseOpened, timeout=JOB_MS):
        _drop(window, plan_path)
    wait_idle(qtbot, window)
    assert window.session.plan_path == plan_path
    assert window.session.volume is not None
    assert window.recent_files()[0] == str(plan_path.resolve())


def test_file_menu_open_dicom_scans_first(window, qtbot, monkeypatch):
    folder = require_data(*FAILING, "sliceincrement")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    window.panelTabs.setCurrentIndex(window.panelTabs.count() - 1)
    window.actionOpenDicom.trigger()
    panel = window.panels["data"]
    assert window.panelTabs.currentWidget() is panel
    qtbot.waitUntil(lambda: panel._scan_job is None and not window.jobs, timeout=JOB_MS)
    assert len(_rows(panel)) == 2
    assert window.session.volume is None, "the user chooses the series first"


def test_load_with_resampling(window, qtbot):
    folder = require_data(*FAILING, "sliceincrement", "001")
    panel = _scan(qtbot, window, folder)
    series = panel.selected_series()
    assert series is not None and not series.loadable
    assert "missing_slices" in _rows(panel)[0].text(COL_FINDINGS)
    assert not panel.loadOnlyButton.isEnabled() and panel.resampleButton.isEnabled()
    # double-click says why it is refused and loads nothing
    panel.activate_selected()
    assert "Load with resampling" in window.statusBar().currentMessage()
    assert not window.jobs
    _load(qtbot, window, panel.resampleButton)
    volume = window.session.volume
    assert volume.array.shape[0] == 5, "4 slices with a gap resampled to 5"
    assert window.last_error is None


def test_unsaved_plan_is_not_replaced_without_asking(window, qtbot, monkeypatch):
    from PyQt6.QtWidgets import QMessageBox

    head = require_data("ct-head-small")
    panel = _scan(qtbot, window, head)
    _load(qtbot, window, panel.loadOnlyButton)
    centre = np.array(window.session.cursor, float)
    assert window.panels["implants"].place(centre, centre + np.array([0.0, 0.0, 40.0]))
    assert window.session.stack.is_dirty
    plan = window.session.plan
    window.confirm_close = True
    asked = []

    def answer(choice):
        def question(*args, **kwargs):
            asked.append(args[2])
            return choice

        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    assert panel.load_selected(segment=False) is None
    assert not window.jobs and window.session.plan is plan
    assert "unsaved changes" in asked[0]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Discard))
    with qtbot.waitSignal(window.caseOpened, timeout=JOB_MS):
        assert panel.load_selected(segment=False) is not None
    wait_idle(qtbot, window)
    assert window.session.plan is not plan and not window.session.stack.is_dirty
    window.confirm_close = False


def test_load_and_segment_the_bundled_phantom(window, qtbot):
    panel = _scan(qtbot, window, REPO / "sample_dicom")
    assert panel.loadSegmentButton.isEnabled()
    _load(qtbot, window, panel.loadSegmentButton, idle=False)
    plan = window.session.plan
    assert {s.role for s in plan.structures.values()} >= {"bone", "critical"}
    assert window.session.volume.array.shape == panel.selected_series().grid.size[::-1]
    assert window.recent_files()[0] == str((REPO / "sample_dicom").resolve())
