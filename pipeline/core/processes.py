"""Worker processes: how they start and how many cores they may use."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

FORKS = sys.platform == "linux"
"""Workers fork on Linux (cheap: they inherit the loaded modules); elsewhere they spawn."""


def worker_context() -> BaseContext:
    """The multiprocessing context workers start from."""
    import multiprocessing

    return multiprocessing.get_context("fork" if FORKS else "spawn")


def usable_cpus() -> int:
    """Cores this process may run on (its CPU affinity where the system tells it), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
