"""Parsing of durations (``1m30s``, ``4:30``, ``500ms``...) and gains (``-18dB``)."""

from __future__ import annotations

import math
import re

_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|h|m|s)")
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_GAIN = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:db)?$", re.IGNORECASE)
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(value: object) -> float:
    """Seconds from a duration value; raises ValueError with a readable reason."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s', got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value.strip())
    else:
        raise ValueError(f"expected a duration like '30s', got {type(value).__name__}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def _parse_duration_text(text: str) -> float:
    if _NUMBER.match(text):
        return float(text)
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, seconds = clock.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    total = 0.0
    position = 0
    for match in _PART.finditer(text.lower()):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        position = match.end()
    if position == len(text) and position > 0:
        return total
    raise ValueError(f"expected a duration like '30s', got {text!r}")


def parse_gain(value: object) -> float:
    """Decibels from a gain value (``-18dB`` or a bare number)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a gain like '-18dB', got {value!r}")
    if isinstance(value, (int, float)):
        gain = float(value)
    elif isinstance(value, str) and _GAIN.match(value.strip()):
        gain = float(_GAIN.match(value.strip()).group(1))  # type: ignore[union-attr]
    else:
        raise ValueError(f"expected a gain like '-18dB', got {value!r}")
    if not math.isfinite(gain):
        raise ValueError(f"expected a finite gain, got {value!r}")
    return gain


def format_clock(seconds: float) -> str:
    """``mm:ss.s`` (or ``h:mm:ss.s``) for plans and reports."""
    tenths = round(seconds * 10)
    minutes, tenth_seconds = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    text = f"{minutes:02d}:{tenth_seconds / 10:04.1f}"
    return f"{hours}:{text}" if hours else text
