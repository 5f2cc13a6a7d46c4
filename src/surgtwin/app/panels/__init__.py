"""The workflow panels of the dock, in tab order: (key, factory(window) -> QWidget).

Each panel is a QWidget built from its ``ui/<key>_panel.ui`` layout, holds the main window
(for the session, the views and ``run_job``) and changes the plan only through commands.
"""

from __future__ import annotations

from importlib import import_module

__all__ = ["PANELS"]

_SPECS = [
    ("data", "surgtwin.app.panels.data:DataPanel"),
    ("segment", "surgtwin.app.panels.segment:SegmentPanel"),
    ("structures", "surgtwin.app.panels.structures:StructuresPanel"),
    ("implants", "surgtwin.app.panels.implants:ImplantsPanel"),
    ("resect", "surgtwin.app.panels.resect:ResectPanel"),
    ("measure", "surgtwin.app.panels.measure:MeasurePanel"),
    ("export", "surgtwin.app.panels.export:ExportPanel"),
]


def _factory(spec: str):
    module, cls = spec.split(":")

    def make(window):
        klass = getattr(import_module(module), cls)
        try:
            return klass(window)
        except Exception:
            # a panel that failed half-way must not stay in the window as a child
            # (destroyed at once: its own event handlers may not run half-built)
            from PyQt6 import sip

            for orphan in window.findChildren(klass):
                sip.delete(orphan)
            raise

    return make


PANELS = [(key, _factory(spec)) for key, spec in _SPECS]
