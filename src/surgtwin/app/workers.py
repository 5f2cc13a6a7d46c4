"""Long work off the GUI thread: a core function with ``progress``/``cancel`` callbacks runs on
the thread pool; its result (or error) comes back to the GUI thread through a signal.

VTK and Qt widgets are touched only on the GUI thread: jobs compute plain data (arrays,
meshes, fields); the ``done`` callback applies it.
"""

from __future__ import annotations

import contextlib
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal

from surgtwin.errors import LoadCancelled

__all__ = ["Job", "JobSignals", "background_pool", "start_job"]


class JobSignals(QObject):
    progress = pyqtSignal(int, int)
    finished = pyqtSignal(object)
    failed = pyqtSignal(object, str)  # exception, formatted traceback
    cancelled = pyqtSignal()


class Job(QRunnable):
    """One background computation.

    Parameters
    ----------
    name : str
        Shown while it runs ("Loading series").
    fn : callable
        ``fn(progress, cancel)``: ``progress(done, total)`` reports, ``cancel()`` returns True
        once the user asked to stop (the function then raises ``LoadCancelled`` or returns).
    """

    def __init__(self, name: str, fn: Callable[[Callable, Callable], Any]):
        super().__init__()
        self.setAutoDelete(False)
        self.name = name
        self.fn = fn
        self.signals = JobSignals()
        self._cancel = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:  # on a pool thread
        try:
            result = self.fn(self._progress, self._cancel.is_set)
        except LoadCancelled:
            self._emit("cancelled")
        except BaseException as exc:  # every failure goes to the GUI's dialog
            if self._cancel.is_set():
                self._emit("cancelled")
            else:
                self._emit("failed", exc, traceback.format_exc())
        else:
            if self._cancel.is_set():
                self._emit("cancelled")
            else:
                self._emit("finished", result)
        finally:
            self.done.set()

    def _progress(self, done: int, total: int) -> None:
        self._emit("progress", int(done), int(total))

    def _emit(self, name: str, *args) -> None:
        # RuntimeError: the window that asked for the job is gone, nobody to tell
        with contextlib.suppress(RuntimeError):
            getattr(self.signals, name).emit(*args)


_BACKGROUND: QThreadPool | None = None


def background_pool() -> QThreadPool:
    """One thread for the app's own upkeep (distance maps, display copies, autosave), so the
    user's jobs on the global pool never wait behind it."""
    global _BACKGROUND
    if _BACKGROUND is None:
        _BACKGROUND = QThreadPool()
        _BACKGROUND.setMaxThreadCount(1)
    return _BACKGROUND


def start_job(job: Job, pool: QThreadPool | None = None) -> Job:
    (pool or QThreadPool.globalInstance()).start(job)
    return job
