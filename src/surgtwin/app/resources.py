"""The one way the app finds its Qt Designer layouts, theme and icons (the ``ui/`` folder).

In a source checkout the folder is the repository's top-level ``ui/``; in an installed wheel it
is ``surgtwin/ui`` (hatch ``force-include``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PyQt6 import uic
from PyQt6.QtWidgets import QWidget

__all__ = ["load_ui", "set_style_role", "stylesheet", "ui_dir", "ui_path"]


@cache
def ui_dir() -> Path:
    """The folder holding the ``.ui`` layouts and the ``.qss`` theme."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "ui", package.parents[1] / "ui"):
        if (candidate / "mainwindow.ui").is_file():
            return candidate
    raise FileNotFoundError(
        f"the SurgTwin ui folder is missing (looked in {package / 'ui'} and "
        f"{package.parents[1] / 'ui'}); reinstall SurgTwin"
    )


def ui_path(name: str) -> Path:
    """Path of a resource in the ui folder; FileNotFoundError names it when missing."""
    path = ui_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"SurgTwin resource {name!r} is missing from {ui_dir()}")
    return path


def load_ui(name: str, widget: QWidget) -> QWidget:
    """Build the layout ``name`` (e.g. ``"mainwindow.ui"``) into ``widget``; its named child
    widgets become attributes of ``widget``."""
    uic.loadUi(str(ui_path(name)), widget)
    return widget


@cache
def stylesheet() -> str:
    """The dark theme (``theme.qss``)."""
    return ui_path("theme.qss").read_text(encoding="utf-8")


def set_style_role(widget: QWidget, role: str) -> None:
    """Give ``widget`` the theme's ``role`` property (``"status-ok"``, ``"status-warn"``,
    ``"status-fail"``, ``""`` for none) and restyle it, since Qt does not re-apply a style
    sheet when a property changes."""
    widget.setProperty("role", role)
    widget.style().unpolish(widget)
    widget.style().polish(widget)
