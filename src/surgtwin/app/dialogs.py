"""Error dialogs: a clear message a clinician can act on, technical details folded away."""

from __future__ import annotations

from PyQt6.QtWidgets import QMessageBox, QWidget

from surgtwin.errors import SurgTwinError

__all__ = ["error_message", "show_error"]


def error_message(exc: BaseException) -> str:
    """The sentence shown for an exception: our own errors carry one; others get a generic
    lead-in plus their text."""
    if isinstance(exc, SurgTwinError):
        return str(exc)
    if isinstance(exc, (OSError, ValueError)):
        return str(exc) or type(exc).__name__
    return f"An unexpected error occurred ({type(exc).__name__}: {exc})."


def show_error(
    parent: QWidget | None, title: str, exc: BaseException, details: str = ""
) -> QMessageBox:
    """Show (non-blocking) an error dialog; returns it so tests can read and close it."""
    box = QMessageBox(parent)
    box.setObjectName("errorDialog")
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setText(f"<b>{title}</b>")
    box.setInformativeText(error_message(exc))
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setModal(True)
    box.show()
    return box
