"""Where SurgTwin keeps its own files: user data (autosaves, recent files, training history)
and caches (distance fields). ``SURGTWIN_DATA_DIR`` / ``SURGTWIN_CACHE_DIR`` override the
platform folders (tests and portable installs use them)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["autosave_dir", "cache_dir", "data_dir", "implants_dir"]


def data_dir() -> Path:
    """The user's SurgTwin data folder (created on demand by the writers)."""
    override = os.environ.get("SURGTWIN_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir("surgtwin", False))


def cache_dir() -> Path:
    """The user's SurgTwin cache folder (anything in it can be rebuilt)."""
    override = os.environ.get("SURGTWIN_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("surgtwin", False))


def autosave_dir() -> Path:
    """Where plans are autosaved for recovery after a crash."""
    return data_dir() / "autosave"


def implants_dir() -> Path:
    """Where the user's implant catalogue files (``*.json``) are kept."""
    return data_dir() / "implants"
