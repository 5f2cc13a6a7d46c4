"""A persistent cache of built distance fields, in the user's cache folder.

Building the :class:`~surgtwin.geometry.sdf.StructureField` of a large structure takes tens of
seconds; reopening the same plan should not. Built fields are kept as ``.npz`` files (plain
arrays, read with ``allow_pickle=False``) named by a SHA-256 key of everything the field is
built from (the caller's digests of the label map, label value and surface, and the build
parameters; see :func:`field_key`).

* Folder: ``fields`` in :func:`surgtwin.paths.cache_dir` (``$SURGTWIN_CACHE_DIR`` when that
  variable is set, else ``platformdirs.user_cache_dir("surgtwin")``).
* Writes are atomic (:func:`surgtwin.fileio.atomic_write`): another process never reads half a
  file.
* Bounded: after each write the least recently used entries are removed until the folder holds
  at most ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`); a field larger than that is not
  kept.
* Never in the way: an unreadable, truncated or otherwise corrupt entry is deleted and counts as
  a miss; a folder that cannot be written only means no caching. Problems are logged, never
  raised.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from surgtwin.geometry.mesh import Mesh
from surgtwin.geometry.sdf import StructureField

__all__ = ["DEFAULT_MAX_BYTES", "FieldCache", "default_cache", "field_key"]

log = logging.getLogger(__name__)

#: Default bound of the cache folder's size (bytes).
DEFAULT_MAX_BYTES = 2 << 30
#: Bump when the field's construction or its arrays change: old entries then miss.
FORMAT_VERSION = 1
_SUFFIX = ".npz"
_STALE_TEMP_S = 24 * 3600.0


def field_key(*parts: Any) -> str:
    """SHA-256 (hex) of plain-data ``parts`` (JSON), with the cache's format version."""
    text = json.dumps([FORMAT_VERSION, *parts], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FieldCache:
    """Built distance fields on disk, by key (see the module notes).

    Parameters
    ----------
    folder : str or os.PathLike
        Where the ``.npz`` files go (created when first written).
    max_bytes : int
        Upper bound of the files' total size, bytes.

    Attributes
    ----------
    hits, misses, writes, dropped : int
        Counters since creation (``dropped``: corrupt entries deleted).
    """

    def __init__(self, folder: str | os.PathLike, max_bytes: int = DEFAULT_MAX_BYTES):
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self.hits = self.misses = self.writes = self.dropped = 0

    def __repr__(self) -> str:
        return f"<FieldCache {str(self.folder)!r}: {self.hits} hits, {self.misses} misses>"

    def path(self, key: str) -> Path:
        """The file of ``key`` (a hex digest from :func:`field_key`)."""
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"a cache key is a hex digest, not {key!r}")
        return self.folder / (key + _SUFFIX)

    def get(self, key: str, surface: Mesh | None = None) -> StructureField | None:
        """The field stored under ``key``, or None (missing or corrupt: then deleted).

        Parameters
        ----------
        key : str
        surface : Mesh, optional
            The surface the field was refined with, for its exact point queries.
        """
        path = self.path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                stored = bytes(np.asarray(data["key"], dtype=np.uint8)).decode("ascii")
                if stored != key:
                    raise ValueError("the entry belongs to another key")
                arrays = {name: np.array(data[name]) for name in data.files if name != "key"}
            field = StructureField.from_arrays(arrays, surface)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("distance field cache: dropping unreadable entry %s (%s)", path, exc)
            self.dropped += 1
            self.misses += 1
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        self.hits += 1
        return field

    def put(self, key: str, field: StructureField) -> Path | None:
        """Store ``field`` under ``key``; returns the file, or None when it was not kept
        (larger than the bound, or the folder cannot be written)."""
        from surgtwin.fileio import FileError, atomic_write

        arrays = field.to_arrays()
        size = sum(a.nbytes for a in arrays.values())
        if size > self.max_bytes:
            return None
        path = self.path(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_write([path]) as (tmp,), open(tmp, "wb") as fh:
                np.savez(fh, key=np.frombuffer(key.encode("ascii"), dtype=np.uint8), **arrays)
        except (OSError, FileError) as exc:
            log.warning("distance field cache: cannot write %s (%s)", path, exc)
            return None
        self.writes += 1
        self.evict(keep=path)
        return path

    def entries(self) -> list[tuple[float, int, Path]]:
        """(mtime, size in bytes, path) of the cached files, oldest first."""
        out = []
        if not self.folder.is_dir():
            return out
        for p in self.folder.glob("*" + _SUFFIX):
            try:
                st = p.stat()
            except OSError:
                continue
            out.append((st.st_mtime, st.st_size, p))
        return sorted(out)

    @property
    def nbytes(self) -> int:
        """Total size of the cached files, bytes."""
        return sum(size for _t, size, _p in self.entries())

    def evict(self, keep: Path | None = None) -> int:
        """Remove the least recently used files until the total is within ``max_bytes`` (and
        temporary files left by interrupted writes); returns how many entries were removed."""
        now = time.time()
        for tmp in self.folder.glob(".*.tmp*"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > _STALE_TEMP_S:
                    tmp.unlink()
        entries = self.entries()
        total = sum(size for _t, size, _p in entries)
        removed = 0
        for _t, size, p in entries:
            if total <= self.max_bytes:
                break
            if keep is not None and p == keep:
                continue
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size
                removed += 1
        return removed

    def clear(self) -> None:
        """Remove every cached field."""
        for _t, _size, p in self.entries():
            with contextlib.suppress(OSError):
                p.unlink()


_DEFAULT: dict[Path, FieldCache] = {}


def default_cache() -> FieldCache:
    """The cache in ``surgtwin.paths.cache_dir()/fields``, read when called (one object per
    folder, so that its counters persist)."""
    from surgtwin.paths import cache_dir

    folder = cache_dir() / "fields"
    cache = _DEFAULT.get(folder)
    if cache is None:
        cache = _DEFAULT[folder] = FieldCache(folder)
    return cache
