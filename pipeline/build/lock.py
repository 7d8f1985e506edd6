"""One build at a time per output folder, and the leftovers of killed ones."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.core.errors import BuildError
from pipeline.core.fileio import display_path
from pipeline.project.layout import LOCK_NAME

log = logging.getLogger(__name__)


STALE_WRITE_S = 60.0
"""Hidden ``.*.tmp`` files older than this in the output folder are left by killed writers
(a sidecar or captions write takes milliseconds; a concurrent ``render`` may be writing one)."""

_held_lock_fd: int | None = None
"""The descriptor of the lock this process holds (inherited by its build workers)."""


def held_lock_fd() -> int | None:
    """The lock this process holds, if any."""
    return _held_lock_fd


@contextlib.contextmanager
def build_lock(out: Path, wait_s: float = 0.0) -> Iterator[None]:
    """Hold ``<out>/.meditate-build.lock`` exclusively; a second build waits ``wait_s``, then stops.

    The lock is an ``flock`` on an open file, so the kernel releases it when its holder exits,
    even by SIGKILL: a stale lock file never blocks anyone. The holder removes the file when it
    is done (interrupted too); a waiter that then holds the lock of a removed file tries again.
    """
    global _held_lock_fd
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    path = out / LOCK_NAME
    deadline = time.monotonic() + wait_s
    waiting = False
    while True:
        try:
            out.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise BuildError(f"{out}: error: cannot lock the output folder: {error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            if time.monotonic() >= deadline:
                shown = display_path(out)
                raise BuildError(
                    f"{shown}: error: another build is running on {shown} (pid {holder}); "
                    "let it finish, or pass --wait to wait for it"
                ) from None
            if not waiting:
                log.warning("waiting for another build on %s (pid %s)", out, holder)
                waiting = True
            time.sleep(0.1)
            continue
        if _same_file(fd, path):
            break
        os.close(fd)  # locked after its holder removed it: lock the file there now
    try:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held_lock_fd = fd
        yield
    finally:
        _held_lock_fd = None
        with contextlib.suppress(OSError):
            os.unlink(path)  # still ours: nobody else can lock a file while we hold it
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``fd`` is the file at ``path`` now (not one removed since it was opened)."""
    try:
        opened, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (opened.st_dev, opened.st_ino) == (there.st_dev, there.st_ino)


def _lock_holder(fd: int) -> str:
    """The pid written by the build holding the lock ('?' if unknown)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "?"
    return text if text.isdigit() else "?"


def remove_leftovers(out: Path) -> None:
    """Delete temporaries of killed runs: encoder outputs of dead pids, old atomic writes.

    A killed worker may linger as a zombie until init reaps it; its temporaries go too.
    """
    import re

    from pipeline.audio.encode import remove_stale_temporaries

    removed = remove_stale_temporaries(out)
    now = time.time()
    with contextlib.suppress(FileNotFoundError), os.scandir(out) as entries:
        for entry in entries:
            name = entry.name
            if not name.startswith("."):
                continue
            encoder = re.fullmatch(r"\..+\.tmp-(\d+)", name)
            with contextlib.suppress(OSError):
                dead = bool(encoder) and _is_zombie(int(encoder.group(1)) if encoder else 0)
                old = name.endswith(".tmp") and now - entry.stat().st_mtime > STALE_WRITE_S
                if dead or old:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    for path in removed:
        log.info("removed %s, left by a killed run", path)


def _is_zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but was not reaped yet (Linux; False when unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] in ("Z", "X")
