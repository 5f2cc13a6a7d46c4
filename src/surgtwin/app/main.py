"""``surgtwin gui [PATH] [--screenshot FILE]``: start the workstation."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

__all__ = ["run_gui"]


def _qapp():
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("SurgTwin")
        app.setOrganizationName("SurgTwin")
        app.setStyle("Fusion")
    return app


def offer_recovery(window) -> None:
    """After a crash: offer the newest autosave (opened as an unsaved plan)."""
    from PyQt6.QtWidgets import QMessageBox

    from surgtwin.paths import autosave_dir
    from surgtwin.planning.planfile import find_recoverable

    found = find_recoverable(autosave_dir())
    if not found:
        return
    newest = found[0]
    answer = QMessageBox.question(
        window,
        "Recover unsaved work?",
        f"SurgTwin was closed with unsaved changes to a plan.\nRecover {newest.name}?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
    )
    if answer == QMessageBox.StandardButton.Yes:
        window.open_path(newest)
    else:
        newest.unlink(missing_ok=True)


def run_gui(path: str | None = None, screenshot: str | None = None) -> int:
    """Open the window (on ``path`` when given); with ``screenshot``, save the window once the
    case is shown and its live clearance is ready, then exit (0 on success)."""
    if screenshot and not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = _qapp()
    from PyQt6.QtCore import QTimer

    from surgtwin.app.mainwindow import MainWindow

    t0 = time.perf_counter()
    window = MainWindow()
    window.resize(1440, 900)
    window.show()
    result = {"code": 0}
    if screenshot:
        window.confirm_close = False

        def fail(message: str) -> None:
            sys.stderr.write(f"surgtwin gui: {message}\n")
            result["code"] = 1
            app.quit()

        def shoot() -> None:
            if not window.session.wait_for_fields(0.0):
                QTimer.singleShot(100, shoot)
                return
            QTimer.singleShot(50, lambda: finish_shot())

        def finish_shot() -> None:
            window.live.update_all()
            window.view3d.render_now()
            try:
                out = window.save_screenshot(screenshot)
            except OSError as exc:
                fail(str(exc))
                return
            sys.stdout.write(f"{out}\n")
            app.quit()

        if path is None:
            QTimer.singleShot(200, finish_shot)
        else:
            job = window.open_path(path)
            job.signals.finished.connect(lambda _r: QTimer.singleShot(0, shoot))
            job.signals.failed.connect(lambda exc, _tb: fail(f"{path}: {exc}"))
            job.signals.cancelled.connect(lambda: fail("cancelled"))
        app.exec()
        window.close()
        return result["code"]
    first = {"done": False}

    def first_frame() -> None:
        if not first["done"]:
            first["done"] = True
            window.statusBar().showMessage(f"Ready in {time.perf_counter() - t0:.1f} s", 5000)

    window.caseOpened.connect(first_frame)
    if path is not None:
        window.open_path(Path(path))
    else:
        QTimer.singleShot(0, lambda: offer_recovery(window))
    return app.exec()
