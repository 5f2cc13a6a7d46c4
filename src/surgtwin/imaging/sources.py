"""Where DICOM files come from: a folder (recursive), a single file, a ``.zip`` or a DICOMDIR.

Every candidate becomes a :class:`FileRef`; anything that cannot be a candidate is kept in a
skipped list with its reason, so the user can see what was left out.
"""

from __future__ import annotations

import io
import os
import stat
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from surgtwin.errors import DicomError

# An archive member larger than this (uncompressed) is not read: no DICOM image file is that big.
MAX_MEMBER_BYTES = 4 << 30
# A member that expands more than this ratio is treated as a zip bomb.
MAX_COMPRESSION_RATIO = 1000
MAX_FILES = 200_000


@dataclass(frozen=True)
class FileRef:
    """A file on disk, or a member of a zip archive.

    Parameters
    ----------
    path : str
        The file on disk (the archive itself for a member).
    member : str, optional
        Name of the member inside the zip archive ``path``.
    size : int
        Size in bytes (uncompressed for a member).
    mtime_ns : int
        Modification time of the file on disk (of the archive for a member), for caching.
    """

    path: str
    member: str | None = None
    size: int = 0
    mtime_ns: int = 0

    @property
    def name(self) -> str:
        """Display name: the path, or ``archive.zip!member``."""
        return f"{self.path}!{self.member}" if self.member else self.path

    def read_bytes(self, limit: int | None = None) -> bytes:
        """Read the whole file (at most ``limit`` bytes)."""
        if self.member is None:
            with open(self.path, "rb") as f:
                return f.read() if limit is None else f.read(limit)
        cap = min(limit or MAX_MEMBER_BYTES, MAX_MEMBER_BYTES)
        try:
            with _open_zip(self.path, self.mtime_ns).open(self.member) as f:
                data = f.read(cap + 1)
        except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, EOFError) as exc:
            raise DicomError(f"the archive member cannot be read ({exc})", self.name) from exc
        if len(data) > cap and limit is None:
            raise DicomError("archive member is larger than 4 GiB; not read", self.name)
        return data[:cap]

    def open(self) -> io.BufferedIOBase:
        """A binary file object positioned at the start."""
        if self.member is None:
            return open(self.path, "rb")
        return io.BytesIO(self.read_bytes())

    def key(self) -> tuple[str, str | None, int, int]:
        """Identity for caches: changes when the file changes."""
        return (self.path, self.member, self.size, self.mtime_ns)


_zip_handles = threading.local()


def _open_zip(path: str, mtime_ns: int) -> zipfile.ZipFile:
    """An open archive per thread, so reading many members parses the directory once."""
    cache = getattr(_zip_handles, "cache", None)
    if cache is None:
        cache = _zip_handles.cache = {}
    key = (path, mtime_ns)
    zf = cache.get(key)
    if zf is None:
        for old in cache.values():
            old.close()
        cache.clear()
        zf = cache[key] = zipfile.ZipFile(path)
    return zf


@dataclass(frozen=True)
class Skipped:
    """A file that was not used, and why (in words a user understands)."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def _file_ref(path: str) -> FileRef:
    st = os.stat(path)
    return FileRef(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)


def is_zip(path: str) -> bool:
    """True when the file starts like a zip archive (by content, not by extension)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except OSError:
        return False


def is_dicomdir(path: str) -> bool:
    """True when ``path`` is a DICOMDIR (media storage directory) file."""
    if os.path.basename(path).upper() != "DICOMDIR":
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    return head[128:132] == b"DICM" and b"1.2.840.10008.1.3.10" in head


def zip_members(path: str) -> tuple[list[FileRef], list[Skipped]]:
    """List the files of a zip archive, refusing encrypted members and zip bombs."""
    refs: list[FileRef] = []
    skipped: list[Skipped] = []
    st = os.stat(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DicomError(f"the zip archive cannot be opened ({exc})", path) from exc
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            name = f"{path}!{info.filename}"
            base = os.path.basename(info.filename.rstrip("/"))
            if base.startswith(".") or "__MACOSX/" in info.filename:
                skipped.append(Skipped(name, "hidden or system file"))
                continue
            if info.flag_bits & 0x1:
                skipped.append(Skipped(name, "the archive member is encrypted; unzip it first"))
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                skipped.append(Skipped(name, "archive member larger than 4 GiB"))
                continue
            if info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
                skipped.append(
                    Skipped(name, "archive member expands more than 1000-fold (zip bomb?)")
                )
                continue
            refs.append(
                FileRef(
                    path=path, member=info.filename, size=info.file_size, mtime_ns=st.st_mtime_ns
                )
            )
            if len(refs) > MAX_FILES:
                raise DicomError(f"more than {MAX_FILES} files in the archive", path)
    return refs, skipped


def dicomdir_files(path: str) -> tuple[list[FileRef], list[Skipped]]:
    """The image files a DICOMDIR references, resolved next to it (case-insensitively)."""
    from surgtwin.imaging.header import read_dicomdir_references

    root = Path(path).parent
    refs: list[FileRef] = []
    skipped: list[Skipped] = []
    for parts in read_dicomdir_references(path):
        resolved = _resolve_case_insensitive(root, parts)
        shown = str(root.joinpath(*parts))
        if resolved is None:
            skipped.append(Skipped(shown, "listed in the DICOMDIR but missing on the medium"))
            continue
        refs.append(_file_ref(str(resolved)))
    return refs, skipped


def _resolve_case_insensitive(root: Path, parts: list[str]) -> Path | None:
    current = root
    for part in parts:
        candidate = current / part
        if candidate.exists():
            current = candidate
            continue
        try:
            names = {p.name.upper(): p for p in current.iterdir()}
        except OSError:
            return None
        match = names.get(part.upper())
        if match is None:
            return None
        current = match
    return current if current.is_file() else None


def _walk(folder: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in sorted(filenames):
            yield os.path.join(dirpath, fn)


def collect(path: str | os.PathLike[str]) -> tuple[list[FileRef], list[Skipped]]:
    """All candidate DICOM files under ``path``, and the files left out with their reasons.

    Parameters
    ----------
    path : str or PathLike
        A folder (searched recursively, zips inside included), a file, a ``.zip`` or a DICOMDIR.

    Raises
    ------
    DicomError
        When ``path`` does not exist or cannot be read at all.
    """
    shown = os.fspath(path)
    if not os.path.exists(shown):
        raise DicomError("no such file or folder", shown)
    # absolute paths, so volumes and plans can reopen their files from any working folder
    path = os.path.abspath(shown)
    if os.path.isfile(path):
        if is_dicomdir(path):
            return dicomdir_files(path)
        if is_zip(path):
            return zip_members(path)
        return [_file_ref(path)], []
    if not os.path.isdir(path):
        raise DicomError("not a file or folder that can be read", shown)
    refs: list[FileRef] = []
    skipped: list[Skipped] = []
    for fp in _walk(path):
        base = os.path.basename(fp)
        try:
            st = os.stat(fp)
        except OSError as exc:
            skipped.append(Skipped(fp, f"cannot be read ({exc.strerror})"))
            continue
        if not stat.S_ISREG(st.st_mode):
            skipped.append(Skipped(fp, "not a regular file"))
            continue
        if base.startswith("."):
            skipped.append(Skipped(fp, "hidden or system file"))
            continue
        if is_zip(fp):
            try:
                zrefs, zskipped = zip_members(fp)
            except DicomError as exc:
                skipped.append(Skipped(fp, exc.problem))
                continue
            refs.extend(zrefs)
            skipped.extend(zskipped)
            continue
        refs.append(FileRef(path=fp, size=st.st_size, mtime_ns=st.st_mtime_ns))
        if len(refs) > MAX_FILES:
            raise DicomError(f"more than {MAX_FILES} files; choose a smaller folder", path)
    return refs, skipped
