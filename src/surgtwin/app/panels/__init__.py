"""The workflow panels of the dock, in tab order: (key, factory(window) -> QWidget).

Each panel is a QWidget built from its ``ui/<key>_panel.ui`` layout, holds the main window
(for the session, the views and ``run_job``) and changes the plan only through commands.
"""

from __future__ import annotations

from importlib import import_module

__all__ = ["PANELS"]

_SPECS = [
    ("implants", "surgtwin.app.panels.implants:ImplantsPanel"),
]


def _factory(spec: str):
    module, cls = spec.split(":")

    def make(window):
        return getattr(import_module(module), cls)(window)

    return make


PANELS = [(key, _factory(spec)) for key, spec in _SPECS]
