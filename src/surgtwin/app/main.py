"""``surgtwin gui [PATH] [--screenshot FILE]``: start the workstation."""

from __future__ import annotations

import contextlib
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


def offer_recovery(window):
    """After a crash: offer the newest autosave. Yes opens it as an unsaved plan that points
    to no file (Save asks where; the autosave stays until the plan is saved or discarded);
    No deletes it. Returns the opening job, or None."""
    from PyQt6.QtWidgets import QMessageBox

    from surgtwin.paths import autosave_dir
    from surgtwin.planning.planfile import AUTOSAVE_SUFFIX, find_recoverable

    found = find_recoverable(autosave_dir())
    if not found:
        return None
    newest = found[0]
    name = newest.name[: -len(AUTOSAVE_SUFFIX)]
    try:
        when = time.strftime(" (autosaved %Y-%m-%d %H:%M)", time.localtime(newest.stat().st_mtime))
    except OSError:
        when = ""
    answer = QMessageBox.question(
        window,
        "Recover unsaved work?",
        f"SurgTwin was closed with unsaved changes to the plan \u201c{name}\u201d{when}.\n"
        "Recover them?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
    )
    if answer == QMessageBox.StandardButton.Yes:
        return recover_autosave(window, newest)
    newest.unlink(missing_ok=True)
    return None


def recover_autosave(window, path: Path):
    """Open the autosave ``path`` in ``window`` as an unsaved plan with no file of its own
    (not added to the recent files). Returns the job."""
    from surgtwin.app.casework import open_plan_case

    def work(progress, cancel):
        case = open_plan_case(path, progress=progress, cancel=cancel)
        case.path = None
        return case

    def show(case) -> None:
        window.show_case(case)
        window.session.stack.set_unsaved()
        window.statusBar().showMessage("Recovered unsaved work: save it to keep it", 15000)

    return window.run_job(f"Recovering {path.name}", work, show)


def _named(path, exc: BaseException) -> str:
    """The error's text, led by the path unless it names it already."""
    text = str(exc)
    return text if str(path) in text else f"{path}: {text}"


def install_excepthook(window) -> None:
    """An error escaping a Qt event handler would abort the process (PyQt6's default): show
    it in the error dialog instead, so no work is lost."""
    import traceback

    def hook(kind, value, tb):
        details = "".join(traceback.format_exception(kind, value, tb))
        sys.stderr.write(details)
        if issubclass(kind, KeyboardInterrupt):
            return
        with contextlib.suppress(Exception):
            window.report_error("Something went wrong", value, details)

    sys.excepthook = hook


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
    install_excepthook(window)
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
            job.signals.failed.connect(lambda exc, _tb: fail(_named(path, exc)))
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
