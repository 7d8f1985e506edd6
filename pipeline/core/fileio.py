"""Atomic file writes: a temporary name in the same folder, then a rename into place."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pipeline.core.errors import PipelineError

log = logging.getLogger(__name__)
_umask_lock = threading.Lock()


@contextlib.contextmanager
def atomic_writer(
    path: Path, *, durable: bool = True, mode: int | None = None
) -> Iterator[BinaryIO]:
    """A binary file that appears under ``path`` only if the block completes.

    ``durable``: fsync it before the rename, so that it survives a power cut whole. Files
    checked when read (speech cache entries carry their size and checksum) can skip that.
    ``mode``: its permissions; by default those ``open()`` would give (the umask applied).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temporary, 0o666 & ~_umask() if mode is None else mode)
        with os.fdopen(handle, "wb") as stream:
            yield stream
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def check_writable(folder: Path) -> None:
    """Make ``folder`` if needed and prove that it takes new files, before any work is done;
    PipelineError naming it otherwise (a read-only or foreign folder).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".meditate-probe.", suffix=".tmp", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise PipelineError(
            f"{display_path(folder)}: error: the output folder is not writable: "
            f"{error.strerror or error}"
        ) from None


class FileSet:
    """Files that become final together or not at all, the last one added marking the set
    complete (a track's sidecar after its audio and captions).

    Every file is first written (or handed over) under a hidden temporary name; ``commit``
    then moves the old marker aside, renames each temporary into place, the marker last,
    and only then deletes what it replaced. If anything fails, the new files are removed and
    the old ones put back: a new file never stands beside an old or missing marker, and the
    previous complete set survives. Leaving the ``with`` block without a commit removes the
    temporaries. Backups are named ``.<name>.old.tmp-<pid>``, so that a killed run's are
    recognised as its leftovers.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []
        self._adopted: list[Path] = []
        self._committed = False

    def __enter__(self) -> FileSet:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._committed:
            self.discard()

    def adopt(self, temporary: Path, final: Path) -> None:
        """Add a temporary written elsewhere (e.g. by an encoder), to become ``final``;
        ``commit`` makes it durable before anything is renamed.
        """
        self._pending.append((temporary, final))
        self._adopted.append(temporary)

    def write(self, final: Path, data: bytes) -> None:
        """Write ``data`` durably to a temporary that ``commit`` renames to ``final``."""
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary: str | None = None
        try:
            handle, temporary = tempfile.mkstemp(
                prefix=f".{final.name}.", suffix=".tmp", dir=final.parent
            )
            os.chmod(temporary, 0o666 & ~_umask())
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
        except OSError as error:
            if temporary is not None:
                _remove(Path(temporary))
            reason = error.strerror or str(error)
            raise PipelineError(f"{final}: error: cannot write: {reason}") from None
        self._pending.append((Path(temporary), final))

    def commit(self) -> list[Path]:
        """Rename every temporary into place, the marker last; all or nothing. Returns the
        final paths in the order added.
        """
        backup_of: dict[Path, Path] = {}
        placed: list[Path] = []
        marker = self._pending[-1][1] if self._pending else None
        current = marker
        try:
            for temporary in self._adopted:  # a power cut must not leave a marker over holes
                current = temporary
                with open(temporary, "rb+") as stream:
                    os.fsync(stream.fileno())
            current = marker
            if marker is not None:  # first: from here on the old set no longer looks complete
                self._move_aside(marker, backup_of)
            for temporary, final in self._pending:
                current = final
                if final not in backup_of:
                    self._move_aside(final, backup_of)
                os.replace(temporary, final)
                placed.append(final)
        except BaseException as error:
            self._roll_back(placed, backup_of, marker)
            if isinstance(error, OSError):
                raise PipelineError(
                    f"{current}: error: cannot put it in place: {error.strerror or error}"
                ) from None
            raise
        self._committed = True
        for backup in backup_of.values():
            _remove(backup)
        return placed

    def discard(self) -> None:
        """Remove every temporary not yet renamed into place."""
        for temporary, _final in self._pending:
            _remove(temporary)
        self._pending = []

    @staticmethod
    def _move_aside(final: Path, backup_of: dict[Path, Path]) -> None:
        backup = final.with_name(f".{final.name}.old.tmp-{os.getpid()}")
        try:
            os.rename(final, backup)
        except FileNotFoundError:
            return
        backup_of[final] = backup

    def _roll_back(
        self, placed: list[Path], backup_of: dict[Path, Path], marker: Path | None
    ) -> None:
        """Remove the new files placed, put the old ones back (the marker last), drop the
        temporaries; failures here are logged, never raised over the first error.
        """
        for final in placed:
            _remove(final)
        whole = True
        for final, backup in sorted(backup_of.items(), key=lambda item: item[0] == marker):
            if final == marker and not whole:
                _remove(backup)  # an old marker beside files it does not describe: never
                continue
            try:
                os.replace(backup, final)
            except OSError as error:
                whole = False
                log.warning("cannot put back %s: %s", final, error.strerror or error)
        self.discard()


def _remove(path: Path) -> None:
    """Remove a file in clean-up; a failure is logged, never raised over the error in hand."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning("cannot remove %s: %s", path, error.strerror or error)


def display_path(path: Path) -> Path:
    """A path as users read it: relative to the current folder when inside it, else as is."""
    try:
        relative = Path(os.path.relpath(path))
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.parts[:1] == ("..",) else relative


def _umask() -> int:
    """The process's umask: from /proc where it is shown, since the portable way is to set it
    (for a moment, under a lock, to the most private value) and other threads would see that.
    """
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"Umask:"):
                return int(line.split()[1], 8)
    with _umask_lock:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; a failure names the file."""
    try:
        with atomic_writer(path) as stream:
            stream.write(data)
    except OSError as error:
        raise PipelineError(f"{path}: error: cannot write: {error.strerror or error}") from None


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))
