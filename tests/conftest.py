"""Helpers shared by the test modules."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def mounted(target: Path, *mount_args: str) -> Iterator[Path]:
    """``mount MOUNT_ARGS target`` for the block (skips the test where that is not allowed)."""
    done = subprocess.run(["mount", *mount_args, str(target)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount {' '.join(mount_args)}: {done.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def tmpfs(folder: Path, options: str) -> contextlib.AbstractContextManager[Path]:
    """A tmpfs with ``options`` (``size=300k``, ``ro,size=64k``) mounted on a new ``folder``."""
    folder.mkdir()
    return mounted(folder, "-t", "tmpfs", "-o", options, "tmpfs")
