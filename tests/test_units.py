"""Durations and gains in every form docs/scripts.md lists."""

from __future__ import annotations

import pytest

from pipeline.core.units import format_clock, parse_duration, parse_gain


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1m30s", 90.0),
        ("4:30", 270.0),
        ("1:02:03", 3723.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        (12, 12.0),
        (2.5, 2.5),
        ("12", 12.0),
        (" 3s ", 3.0),
        ("0", 0.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ten", "expected a duration like '30s', got 'ten'"),
        ("5 minutes", "expected a duration like '30s'"),
        ("3x", "expected a duration like '30s'"),
        ("s", "expected a duration like '30s'"),
        ("-2s", "expected a duration like '30s'"),
        (-3, "cannot be negative"),
        (True, "expected a duration"),
        ([1], "expected a duration like '30s', got list"),
        (float("inf"), "finite"),
    ],
)
def test_bad_durations(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "db"), [("-18dB", -18.0), ("-18 db", -18.0), ("3", 3.0), (-6, -6.0), ("+2dB", 2.0)]
)
def test_gains(text: object, db: float) -> None:
    assert parse_gain(text) == db


@pytest.mark.parametrize("text", ["loud", "-18 dBFS", "", None, True])
def test_bad_gains(text: object) -> None:
    with pytest.raises(ValueError, match="expected a gain like '-18dB'"):
        parse_gain(text)


@pytest.mark.parametrize(
    ("seconds", "clock"),
    [(0, "00:00.0"), (75.34, "01:15.3"), (599.96, "10:00.0"), (3725, "1:02:05.0")],
)
def test_clock(seconds: float, clock: str) -> None:
    assert format_clock(seconds) == clock
