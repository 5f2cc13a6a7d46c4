"""Exceptions shared by every layer. Each carries a message a clinician can act on."""

from __future__ import annotations


class SurgTwinError(Exception):
    """Base class of every error SurgTwin raises on purpose."""


class DicomError(SurgTwinError):
    """A DICOM file or series cannot be used, with the file and the reason in plain words.

    Parameters
    ----------
    problem : str
        What is wrong and, where possible, what to do about it.
    path : str, optional
        The file (or folder, archive member) concerned.
    code : str, optional
        A machine-readable reason, the same codes as :class:`surgtwin.imaging.Finding`.
    """

    def __init__(self, problem: str, path: str | None = None, *, code: str | None = None):
        self.problem = problem
        self.path = path
        self.code = code
        super().__init__(f"{path}: {problem}" if path else problem)


class LoadCancelled(SurgTwinError):
    """The user cancelled a long operation."""
