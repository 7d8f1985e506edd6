"""A built track's waveform peaks and loudness curve, decoded once and cached by the audio
file's SHA-256 (the sidecar's ``files[].sha256``) in ``<cache>/review/``, so that reviewing
a catalog again decodes nothing.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pipeline.core.fileio import write_text_atomic

log = logging.getLogger(__name__)

LEVELS_VERSION = 2
"""Bump when what is cached changes; entries of another version are measured again."""
CACHE_FOLDER = "review"
"""The folder of cached analyses inside the project's cache folder."""
LOUDNESS_POINTS = 1200
"""The loudness curve keeps at most this many points (the loudest of each run of 100 ms)."""
FLOOR_LUFS = -70.0
"""Short-term loudness of silence (the meter's ``-inf``), as plotted."""


@dataclass(frozen=True)
class Levels:
    """What the review page draws of one audio file."""

    duration_s: float
    """Decoded length."""
    peaks: list[float]
    """Highest sample of each waveform column (0..1, all channels), evenly spaced."""
    troughs: list[float]
    """Magnitude of the lowest sample of each column (0..1)."""
    loudness_step_s: float
    """Time between two points of the loudness curve."""
    short_term_lufs: list[float]
    """Short-term loudness (3 s window, BS.1770) at each step, ``FLOOR_LUFS`` for silence."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form the cache stores and the page reads (the lists themselves, not
        copies: ``dataclasses.asdict`` deep-copies every number, most of a warm review)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


def cache_path(cache_dir: Path, sha256: str) -> Path:
    """Where the analysis of the audio file with this SHA-256 is kept."""
    return cache_dir / CACHE_FOLDER / f"{sha256}.json"


def track_levels(audio: Path, sha256: str, cache_dir: Path) -> tuple[Levels, bool]:
    """The levels of ``audio`` (whose content has ``sha256``), and whether they came from the
    cache. A missing, unreadable or outdated entry is measured again and rewritten; AudioError
    naming the file if it cannot be decoded.
    """
    path = cache_path(cache_dir, sha256)
    cached = _read(path)
    if cached is not None:
        return cached, True
    levels = measure_levels(audio)
    try:
        write_text_atomic(path, json.dumps({"version": LEVELS_VERSION, **levels.as_dict()}))
    except Exception as error:  # a read-only cache costs a decode next time, nothing more
        log.warning("%s: not cached: %s", path, error)
    return levels, False


def measure_levels(audio: Path) -> Levels:
    """Decode ``audio`` once: its waveform columns and its short-term loudness curve."""
    from pipeline.audio.analysis import measure_curves

    duration_s, curves = measure_curves(audio)
    peaks = [_unit(value) for value in curves.envelope_max]
    troughs = [_unit(-value) for value in curves.envelope_min]
    step_s = 0.1
    loudness = [_lufs(value) for value in curves.short_term_lufs]
    if len(loudness) > LOUDNESS_POINTS:
        run = math.ceil(len(loudness) / LOUDNESS_POINTS)
        loudness = [max(loudness[i : i + run]) for i in range(0, len(loudness), run)]
        step_s *= run
    return Levels(round(duration_s, 3), peaks, troughs, round(step_s, 3), loudness)


def _unit(value: float) -> float:
    """A sample magnitude for the page: 0..1, three decimals."""
    return round(min(1.0, max(0.0, value)), 3)


def _lufs(value: float) -> float:
    """A meter reading for the page: finite, one decimal, never under ``FLOOR_LUFS``."""
    return round(max(FLOOR_LUFS, value), 1) if math.isfinite(value) else FLOOR_LUFS


def _read(path: Path) -> Levels | None:
    """A cached analysis, or None when absent, unreadable or of another version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.pop("version") != LEVELS_VERSION:
            return None
        return Levels(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        log.warning("%s: unreadable, measured again: %s", path, error)
        return None
