"""Atomic file writes: a temporary name in the same folder, then a rename into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import PipelineError

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
