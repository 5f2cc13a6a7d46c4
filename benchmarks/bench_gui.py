"""Dragging an implant in the real window: clearance update + render per step vs an empty scene.

Usage: python benchmarks/bench_gui.py [SERIES_DIR] [--steps N]

Opens the main window at 1200 x 900 (under Xvfb when there is no display), measures the frame
time of the empty 3-D scene, then opens the abdominal CT of ../shared/data/ct-abdomen-spine with
the bone preset (its full-resolution surface on screen), places a 6.5 x 45 mm pedicle screw on
the spine and drives ``--steps`` scripted drag steps with the mouse on the axial slice view (the
Move tool: press on the screw, 0.5 mm per mouse move). A step is timed from the mouse event to
the end of the 3-D frame it causes (live clearance against the full-resolution bone field, the
slice views' repaint, and the 3-D render with the decimated display mesh). Also reports the time
from a new window to the first frame of ``sample_dicom`` (as ``surgtwin gui sample_dicom``).
The last line is ``ratio <median drag step / empty frame>``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "data" / "ct-abdomen-spine"


def _ensure_display() -> None:
    if os.environ.get("DISPLAY") or not sys.platform.startswith("linux"):
        return
    import shutil
    import subprocess

    if shutil.which("Xvfb") is None:
        sys.exit("bench_gui: no display and no Xvfb; run under xvfb-run")
    display = ":97"
    proc = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1600x1200x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    os.environ["DISPLAY"] = display
    import atexit

    atexit.register(proc.terminate)


def _wait(app, until, timeout_s: float = 600.0) -> None:
    end = time.monotonic() + timeout_s
    while not until():
        app.processEvents()
        if time.monotonic() > end:
            raise TimeoutError("the window did not finish in time")
        time.sleep(0.002)


def _open(app, window, path, segment=True) -> None:
    opened = []
    window.caseOpened.connect(lambda: opened.append(1))
    errors = []
    job = window.open_path(path, segment=segment)
    job.signals.failed.connect(lambda exc, _tb: errors.append(exc))
    _wait(app, lambda: opened or errors)
    if errors:
        raise SystemExit(f"bench_gui: {path}: {errors[0]}")
    _wait(
        app,
        lambda: (
            not window.session.fields_building
            and not window.jobs
            and not window.view3d.display_copies_pending
        ),
    )


def _until_frame(window, action) -> float:
    """Seconds from ``action()`` to the end of the 3-D frame it causes (the frame swapped onto
    the window, Qt's compositing included): an event loop that ends on the frame signal."""
    from PyQt6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    view = window.view3d
    view.rendered.connect(loop.quit)
    QTimer.singleShot(30_000, loop.quit)
    t = time.perf_counter()
    before = view.frames
    action()
    if view.frames == before:
        loop.exec()
    elapsed = time.perf_counter() - t
    view.rendered.disconnect(loop.quit)
    if view.frames == before:
        raise SystemExit("bench_gui: no frame was drawn within 30 s")
    return elapsed


def _frame_times(app, window, n: int) -> list[float]:
    """Time from a render request to the frame on the window, n times."""
    out = []
    for _ in range(n):
        out.append(_until_frame(window, window.view3d.request_render))
        app.processEvents()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("series", nargs="?", default=str(DEFAULT))
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    _ensure_display()
    from PyQt6.QtCore import QPoint, Qt
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from surgtwin.app.mainwindow import MainWindow
    from surgtwin.planning.checks import entry_and_tip

    # time to first frame on the bundled phantom
    t0 = time.perf_counter()
    first = MainWindow()
    first.confirm_close = False
    first.resize(1200, 900)
    first.show()
    _open(app, first, REPO / "sample_dicom")
    _frame_times(app, first, 1)
    to_first_frame = time.perf_counter() - t0
    first.close()
    app.processEvents()

    window = MainWindow()
    window.confirm_close = False
    window.resize(1200, 900)
    window.show()
    _wait(app, lambda: window.isVisible())
    for _ in range(5):
        app.processEvents()
    _frame_times(app, window, 5)  # warm up
    empty = statistics.median(_frame_times(app, window, 30))

    t = time.perf_counter()
    _open(app, window, args.series)
    open_s = time.perf_counter() - t
    plan = window.session.plan
    bone = next(s for s in plan.structures.values() if s.role == "bone")
    mesh = window.session.geometry.mesh(bone)
    full_frame = statistics.median(_frame_times(app, window, 5))

    # a screw on the spine: from the most posterior bone point near the midline, forwards
    pts = mesh.points
    mid_x = float(np.median(pts[:, 0]))
    mid_z = float(np.median(pts[:, 2]))
    near = pts[(np.abs(pts[:, 0] - mid_x) < 15) & (np.abs(pts[:, 2] - mid_z) < 15)]
    entry = near[np.argmax(near[:, 1])] + np.array([12.0, 0.0, 0.0])
    target = entry + np.array([-8.0, -45.0, 0.0])
    panel = window.show_panel("implants")
    window.session.set_cursor(entry)
    name = panel.place(entry, target)
    _wait(app, lambda: name in window.live.readings)
    record = plan.implants[name]
    view = window.slice_views["axial"]
    window.session.set_cursor(np.asarray(record.pose)[:3, 3])
    app.processEvents()
    e, tip = entry_and_tip(record)
    view.centre_on((e + tip) / 2, zoom=3.0)  # as a surgeon zooms in to place a screw
    app.processEvents()
    grab, _ = view.lps_to_widget((e + tip) / 2)
    start = QPoint(round(grab.x()), round(grab.y()))
    px_per_step = max(1, round(0.5 / view.mm_per_pixel()))
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    app.processEvents()
    if not (window.tool is panel.move_tool and panel.move_tool.mode == "slide"):
        raise SystemExit("bench_gui: the scripted press did not grab the screw")
    steps = []
    pose0 = np.asarray(plan.implants[name].pose).copy()
    for n in range(1, args.steps + 1):
        dx = (n if n <= args.steps // 2 else args.steps - n) * px_per_step
        to = QPoint(start.x() + dx, start.y())
        steps.append(_until_frame(window, lambda to=to: QTest.mouseMove(view, to)))
        app.processEvents()
    moved = np.asarray(plan.implants[name].pose)[:3, 3] - pose0[:3, 3]
    lod_on = window.view3d.interacting
    lod_faces = {
        k: a[1].GetMapper().GetInput().GetNumberOfCells()
        for k, a in window.view3d._structure_actors.items()
        if a[1] is not None
    }
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    app.processEvents()
    faces = len(mesh.faces)
    med = statistics.median(steps)
    p95 = float(np.percentile(steps, 95))
    case = Path(args.series).name
    print(f"case: {case}, bone surface {faces:,} triangles, opened in {open_s:.1f} s")
    print(f"time from a new window to the first frame of sample_dicom: {to_first_frame:.2f} s")
    print(f"empty scene, 1200x900: median frame {1000 * empty:.1f} ms")
    print(f"full-resolution bone on screen (still): median frame {1000 * full_frame:.1f} ms")
    step_mm = px_per_step * view.mm_per_pixel()
    print(
        f"drag: {len(steps)} steps of {px_per_step} px ({step_mm:.2f} mm), level of detail "
        f"while dragging: {lod_on} ({lod_faces} triangles); final offset "
        f"{np.round(moved, 2).tolist()} mm"
    )
    print(
        f"drag step (clearance + slices + 3-D frame): median {1000 * med:.1f} ms, "
        f"p95 {1000 * p95:.1f} ms"
    )
    print(f"undo steps for the drag: {len(window.session.stack.undo_names) - 1} + placement")
    print(f"ratio {med / empty:.2f}")
    window.close()


if __name__ == "__main__":
    main()
