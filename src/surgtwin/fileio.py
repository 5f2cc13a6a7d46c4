"""Atomic file writing, shared by every exporter (meshes, segmentations).

A write never leaves a half-written file behind and never damages the file it replaces:

1. every target gets a new, empty temporary file next to it (same folder, hence same file
   system), named ``.<target name>.<random hex>.tmp<suffix>``;
2. the caller writes the temporary files completely;
3. each is flushed to disk (``fsync``), and only when *all* of them have been written is each
   renamed over its target (``os.replace``, atomic on POSIX and Windows); the folders are then
   fsynced so that the renames survive a power cut (POSIX);
4. on any error or interruption (including ``KeyboardInterrupt``) every temporary file that has
   not been renamed is removed and the exception propagates. Targets are renamed one after the
   other, so if a rename itself fails, the files renamed before it keep their new contents.

Operating-system errors (``OSError``) become the caller's error class, built as
``error(problem, path)`` with the target concerned (see :class:`FileError`); any other exception,
including the caller's own errors, passes through unchanged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from surgtwin.errors import SurgTwinError

__all__ = ["FileError", "atomic_write", "write_files"]

#: Builds the exception raised for an OS error: ``error(problem, path)``.
ErrorFactory = Callable[[str, Path], BaseException]
#: Writes one complete file into an open binary file.
Writer = Callable[[BinaryIO], None]

_TEMP_ATTEMPTS = 100


class FileError(SurgTwinError):
    """A file that cannot be written or read; the message names the file and the problem.

    Parameters
    ----------
    problem : str
        What is wrong, in plain words.
    path : str or os.PathLike, optional
        The file (or structure) concerned; the message is then ``"<path>: <problem>"``.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


def _reason(what: str, exc: OSError) -> str:
    return f"{what}: {exc.strerror or exc}"


def _new_temp(target: Path, suffix: str, error: ErrorFactory) -> Path:
    """A new, empty file next to ``target`` (permissions as for a normal new file)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_TEMP_ATTEMPTS):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{suffix}")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise error(_reason("cannot create a file here", exc), target) from exc
        os.close(fd)
        return tmp
    raise error("could not create a temporary file next to it", target)


def _fsync(path: Path) -> None:
    """Flush a written file's data to disk."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (POSIX; best effort, errors are ignored)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(
    targets: Sequence[str | os.PathLike],
    *,
    error: ErrorFactory = FileError,
    suffixes: Sequence[str] = (),
) -> Iterator[list[Path]]:
    """Temporary files for ``targets`` that replace them only if every write succeeds.

    Write each yielded temporary path completely inside the ``with`` block (by any means: an
    ``open``, a library writing to a file name). On leaving the block normally, all of them are
    fsynced and then renamed over their targets; if the block raises, they are all removed.

    Parameters
    ----------
    targets : sequence of str or os.PathLike
        The files to write. Their folders must exist.
    error : callable, optional
        ``error(problem, path)`` builds the exception raised for an operating-system error
        (disk full, permission denied, missing folder, ...), e.g. a :class:`FileError`
        subclass. Default :class:`FileError`.
    suffixes : sequence of str, optional
        Extension appended to each temporary name, in ``targets`` order (missing entries:
        none), for writers that choose the format from the file name (e.g. ``".nii.gz"``).

    Yields
    ------
    list of pathlib.Path
        The temporary files, in ``targets`` order, created empty.

    Raises
    ------
    Exception
        ``error(...)`` for an OS error while creating, writing, flushing or renaming a file;
        any other exception raised in the block, unchanged.
    """
    finals = [Path(t) for t in targets]
    for final in finals:
        if not final.parent.is_dir():
            raise error(f"the folder {final.parent} does not exist", final)
    temps: list[Path] = []
    done = 0  # temporary files already renamed into place
    try:
        for i, final in enumerate(finals):
            temps.append(_new_temp(final, suffixes[i] if i < len(suffixes) else "", error))
        try:
            yield temps
        except OSError as exc:
            if not finals:
                raise
            where = {str(tmp): final for tmp, final in zip(temps, finals, strict=True)}
            final = where.get(str(exc.filename), finals[0])
            raise error(_reason("could not write the file", exc), final) from exc
        for tmp, final in zip(temps, finals, strict=True):
            try:
                _fsync(tmp)
            except OSError as exc:
                raise error(_reason("could not write the file", exc), final) from exc
        for tmp, final in zip(temps, finals, strict=True):
            try:
                os.replace(tmp, final)
            except OSError as exc:
                raise error(_reason("could not save the file", exc), final) from exc
            done += 1
    except BaseException:
        for tmp in temps[done:]:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise
    for folder in dict.fromkeys(final.parent for final in finals):
        _fsync_dir(folder)


def write_files(
    jobs: Sequence[tuple[str | os.PathLike, Writer]], *, error: ErrorFactory = FileError
) -> list[Path]:
    """Write several files atomically, all or none: :func:`atomic_write` with writer callables.

    Parameters
    ----------
    jobs : sequence of (target, writer)
        ``writer(fh)`` writes the complete file into the open binary file ``fh``.
    error : callable, optional
        As in :func:`atomic_write`; an OS error while writing names the file being written.

    Returns
    -------
    list of pathlib.Path
        The targets, in ``jobs`` order.
    """
    finals = [Path(target) for target, _writer in jobs]
    with atomic_write(finals, error=error) as temps:
        for tmp, final, (_target, writer) in zip(temps, finals, jobs, strict=True):
            try:
                with open(tmp, "wb") as fh:
                    writer(fh)
            except OSError as exc:
                raise error(_reason("could not write the file", exc), final) from exc
    return finals
