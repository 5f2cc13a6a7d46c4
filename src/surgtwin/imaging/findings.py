"""Validation findings: what is wrong (or worth knowing) about a series, as data, not log lines."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How a finding affects loading."""

    INFO = "info"  # worth knowing; the volume is exact
    WARNING = "warning"  # loaded, but the user must know (corrected, resampled, assumed)
    ERROR = "error"  # the series cannot be loaded as a volume as it is


# The finding codes, also used as DicomError codes.
DUPLICATE_POSITIONS = "duplicate_positions"
MISSING_SLICES = "missing_slices"
UNEVEN_SPACING = "uneven_spacing"
GANTRY_TILT = "gantry_tilt"
MIXED_ORIENTATION = "mixed_orientation"
INCONSISTENT_SIZE = "inconsistent_size"
NO_RESCALE = "no_rescale"
UNDECODABLE = "undecodable"
NOT_A_VOLUME = "not_a_volume"
SPLIT_SERIES = "split_series"
COLOUR_IMAGE = "colour_image"
SINGLE_SLICE = "single_slice"
TRUNCATED = "truncated"
NO_GEOMETRY = "no_geometry"
DUPLICATE_FILES = "duplicate_files"


@dataclass(frozen=True)
class Finding:
    """One fact about a series that a user must see.

    Parameters
    ----------
    code : str
        Stable machine-readable code, e.g. ``"gantry_tilt"``.
    message : str
        Plain-language explanation with numbers (mm, degrees) and what SurgTwin does about it.
    severity : Severity
        ``error`` findings stop the series from loading.
    """

    code: str
    message: str
    severity: Severity = Severity.WARNING

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "severity": str(self.severity)}
