"""The speech cache: keys, exact round trips, corruption, atomic and concurrent writes, prune."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import multiprocessing
import os
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import StubEngine, sine

from pipeline.engines.base import Engine
from pipeline.project.settings import VoiceSettings
from pipeline.speech.cache import HEADER, SUFFIX, SpeechCache
from pipeline.speech.key import speech_key

RATE = 22050


class KeyEngine(StubEngine):
    """An engine whose name, version and voice-relevant settings are set by the test."""

    def __init__(self, name: str = "fake", version: str = "1.0") -> None:
        super().__init__()
        self.name = name
        self.VERSION = version

    def cache_settings(self, voice: VoiceSettings) -> dict[str, str]:
        return {"name": voice.name, "language": voice.language}  # tld is ignored


@pytest.fixture
def condition() -> types.ModuleType:
    """The conditioning module, whose version enters every key."""
    return importlib.import_module("pipeline.speech.key")


def _key(cache_engine: Engine | None = None, **changes: Any) -> str:
    sample_rate = changes.pop("sample_rate", RATE)
    text = changes.pop("text", "Breathe in.")
    voice = dataclasses.replace(VoiceSettings(engine="fake", name="v1"), **changes)
    return speech_key(cache_engine or KeyEngine(), voice, text, sample_rate)


def _tone(seconds: float, frequency: float = 220.0) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A tone quantized to 16-bit steps, so it round-trips exactly."""
    return (np.round(sine(seconds, frequency, 0.5, RATE) * 32768) / 32768).astype(np.float32)


def test_key_changes_with_each_input_and_not_otherwise(
    condition: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _key()
    assert base == _key()
    assert len(base) == 64 and int(base, 16) >= 0
    assert _key(rate=1) == _key(rate=1.0) == base
    assert _key(tld="co.uk") == base  # not a setting of this engine
    variants = {
        "engine": _key(KeyEngine(name="other")),
        "version": _key(KeyEngine(version="1.1")),
        "voice name": _key(name="v2"),
        "language": _key(language="fr"),
        "rate": _key(rate=0.9),
        "text": _key(text="Breathe in"),
        "sample rate": _key(sample_rate=48000),
    }
    monkeypatch.setattr(condition, "CONDITIONING_VERSION", "another-version")
    variants["conditioning"] = _key()
    assert len({base, *variants.values()}) == len(variants) + 1, variants


def test_round_trip_is_exact(tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path / "cache")
    key = "ab" + "0" * 62
    samples = _tone(1.5)
    assert cache.get(key) is None and cache.length_s(key) is None
    cache.put(key, samples, RATE)
    loaded = cache.get(key)
    assert loaded is not None and loaded.dtype == np.float32 and loaded.ndim == 1
    assert np.array_equal(loaded, samples)
    assert cache.length_s(key) == pytest.approx(1.5, abs=1 / RATE)
    assert (tmp_path / "cache" / "ab" / f"{key}{SUFFIX}").is_file()


def test_unquantized_samples_within_half_a_step_and_clipped(tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path)
    key = "cd" + "1" * 62
    samples = np.array([0.1234567, -0.7654321, 1.5, -1.5, 0.0], dtype=np.float32)
    cache.put(key, samples, RATE)
    loaded = cache.get(key)
    assert loaded is not None
    assert np.max(np.abs(loaded[:2] - samples[:2])) <= 0.5 / 32768 + 1e-9
    assert loaded[2] == pytest.approx(32767 / 32768) and loaded[3] == -1.0
    with pytest.raises(ValueError, match="mono"):
        cache.put(key, np.zeros((10, 2)), RATE)


def test_truncated_entry_is_detected_deleted_and_redone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = SpeechCache(tmp_path)
    key = "ef" + "2" * 62
    samples = _tone(0.5)
    cache.put(key, samples, RATE)
    path = cache.path(key)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 1000)
    with caplog.at_level(logging.WARNING, logger="pipeline.speech.cache"):
        assert cache.length_s(key) is None
    assert "corrupt" in caplog.text and not path.exists()
    cache.put(key, samples, RATE)
    with open(path, "r+b") as handle:
        handle.truncate(HEADER.size - 4)
    assert cache.get(key) is None and not path.exists()
    cache.put(key, samples, RATE)
    loaded = cache.get(key)
    assert loaded is not None and np.array_equal(loaded, samples)


def test_flipped_byte_is_caught_by_checksum(tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path)
    key = "12" + "3" * 62
    cache.put(key, _tone(0.3), RATE)
    path = cache.path(key)
    data = bytearray(path.read_bytes())
    data[HEADER.size + 100] ^= 0x40
    path.write_bytes(bytes(data))
    assert cache.length_s(key) == pytest.approx(0.3, abs=1e-4)  # header looks fine
    assert not cache.verify(key)
    assert not path.exists() and cache.get(key) is None


HEADER_FIELDS = {  # name: (offset, size) in the header
    "magic": (0, 4),
    "format version": (4, 2),
    "channels": (6, 2),
    "sample rate": (8, 4),
    "frames": (12, 8),
    "payload size": (20, 4),
    "payload checksum": (24, 4),
    "header checksum": (28, 4),
}


@pytest.mark.parametrize("field", HEADER_FIELDS)
def test_every_header_field_is_checked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, field: str
) -> None:
    """Two bytes changed in any header field: a warned miss, never a wrong length or clip."""
    assert HEADER.size == sum(size for _, size in HEADER_FIELDS.values())
    cache = SpeechCache(tmp_path)
    key = "13" + "4" * 62
    samples = _tone(0.4)
    offset, size = HEADER_FIELDS[field]
    for read in (cache.length_s, cache.get, cache.verify):
        cache.put(key, samples, RATE)
        path = cache.path(key)
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01  # the field's low byte(s): e.g. 22050 Hz becomes 22051...
        data[offset + min(1, size - 1)] ^= 0x08
        path.write_bytes(bytes(data))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pipeline.speech.cache"):
            assert read(key) in (None, False), (field, read.__name__)
        assert "corrupt" in caplog.text, (field, read.__name__)
        assert not path.exists()
    cache.put(key, samples, RATE)
    loaded = cache.get(key)
    assert loaded is not None and np.array_equal(loaded, samples)


def test_an_entry_under_another_key_is_a_miss(tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path)
    key, other = "24" + "6" * 62, "24" + "7" * 62
    cache.put(key, _tone(0.2), RATE)
    cache.path(other).write_bytes(cache.path(key).read_bytes())
    assert cache.length_s(other) is None and cache.get(other) is None
    assert cache.length_s(key) is not None


def test_an_entry_of_another_format_version_is_a_quiet_miss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry of format 1 (a 24-byte header, no header checksum) is synthesized again."""
    import struct
    import zlib

    cache = SpeechCache(tmp_path)
    key = "35" + "8" * 62
    payload = (_tone(0.3) * 32768).astype("<i2").tobytes()
    old = struct.pack("<4sHHIIQ", b"MSPC", 1, 1, RATE, zlib.crc32(payload), len(payload) // 2)
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_bytes(old + payload)
    with caplog.at_level(logging.INFO, logger="pipeline.speech.cache"):
        assert cache.length_s(key) is None and cache.get(key) is None
        assert not cache.verify(key)
    assert caplog.text == ""
    cache.put(key, _tone(0.3), RATE)
    assert cache.length_s(key) == pytest.approx(0.3, abs=1e-4)


def test_raw_entries_of_older_formats_are_misses_that_prune_deletes(tmp_path: Path) -> None:
    """Formats 1 and 2 stored raw PCM in ``.s16`` files: not read, counted apart, pruned."""
    cache = SpeechCache(tmp_path)
    key = "46" + "9" * 62
    old = tmp_path / key[:2] / f"{key}.s16"
    old.parent.mkdir()
    old.write_bytes(b"MSPC" + bytes(1000))
    assert cache.get(key) is None and cache.length_s(key) is None and not cache.verify(key)
    assert old.exists() and list(cache.keys()) == []
    info = cache.info()
    assert (info.entries, info.old_entries, info.old_bytes) == (0, 1, 1004)
    cache.put(key, _tone(0.1), RATE)
    size = cache.path(key).stat().st_size
    assert cache.prune({key}) == (1, size, 1, 1004)
    assert not old.exists() and list(cache.keys()) == [key]


def _noise(frames: int, seed: int = 7) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Every 16-bit value at random, the extremes included: the hardest case for a codec."""
    pcm = np.random.default_rng(seed).integers(-32768, 32768, frames, dtype=np.int32)
    pcm[:4] = [-32768, 32767, 0, -1][:frames]
    return (pcm / 32768.0).astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 37800, 44100, 48000, 192000])
def test_compression_is_lossless_and_deterministic(tmp_path: Path, rate: int) -> None:
    """Every sample comes back bit for bit; the same clip always gives the same bytes."""
    first, second = SpeechCache(tmp_path / "a"), SpeechCache(tmp_path / "b")
    key = "57" + "a" * 62
    t = np.arange(int(2.5 * rate)) / rate
    speechlike = np.round(0.4 * np.sin(2 * np.pi * 180 * t) * np.sin(3 * t) * 32768) / 32768
    for clip in (_noise(rate // 3), speechlike.astype(np.float32), _noise(1), _noise(0)):
        first.put(key, clip, rate)
        second.put(key, clip, rate)
        loaded = first.get(key)
        assert loaded is not None and loaded.dtype == np.float32
        assert np.array_equal(loaded, clip), rate
        assert first.length_s(key) == pytest.approx(len(clip) / rate)
        assert first.path(key).read_bytes() == second.path(key).read_bytes()


def test_speech_is_stored_compressed(tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path)
    key = "68" + "b" * 62
    t = np.arange(3 * RATE) / RATE
    clip = np.round(0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(5 * t)) * 16384) / 32768
    cache.put(key, clip.astype(np.float32), RATE)
    assert cache.path(key).stat().st_size < 0.6 * 2 * len(clip)


def test_a_payload_that_disagrees_with_its_header_is_a_miss(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Belt and braces: checksums right, but the stream is not what the header says."""
    import struct
    import zlib

    cache = SpeechCache(tmp_path)
    key, other = "79" + "c" * 62, "79" + "d" * 62
    cache.put(key, _tone(0.5), RATE)
    cache.put(other, _tone(0.5), 2 * RATE)
    header = bytearray(cache.path(key).read_bytes()[: HEADER.size])
    payload = cache.path(other).read_bytes()[HEADER.size :]
    struct.pack_into("<II", header, 20, len(payload), zlib.crc32(payload))
    crc = zlib.crc32(bytes(header[: HEADER.size - 4]), zlib.crc32(key.encode()))
    struct.pack_into("<I", header, HEADER.size - 4, crc)
    cache.path(key).write_bytes(bytes(header) + payload)
    assert cache.verify(key)  # the checksums are right
    with caplog.at_level(logging.WARNING, logger="pipeline.speech.cache"):
        assert cache.get(key) is None
    assert "disagrees with its header" in caplog.text


def test_interrupted_write_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = SpeechCache(tmp_path)
    key = "34" + "5" * 62

    def killed(source: str, target: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        cache.put(key, _tone(0.2), RATE)
    monkeypatch.undo()
    assert cache.get(key) is None
    assert list((tmp_path / "34").iterdir()) == []
    assert cache.info().entries == 0


def _writer(root: str, key: str, value: float, rounds: int) -> None:
    cache = SpeechCache(Path(root))
    samples = np.full(20000, value, dtype=np.float32)
    for _ in range(rounds):
        cache.put(key, samples, RATE)


def test_concurrent_writers_leave_a_valid_entry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = "56" + "7" * 62
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context: Any = multiprocessing.get_context(method)
    writers = [
        context.Process(target=_writer, args=(str(tmp_path), key, value, 40))
        for value in (0.25, -0.5)
    ]
    for writer in writers:
        writer.start()
    reader = SpeechCache(tmp_path)
    seen: set[float] = set()
    with caplog.at_level(logging.WARNING, logger="pipeline.speech.cache"):
        while any(writer.is_alive() for writer in writers):
            loaded = reader.get(key)
            if loaded is not None:
                assert len(loaded) == 20000 and len(set(loaded.tolist())) == 1
                seen.add(float(loaded[0]))
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert "corrupt" not in caplog.text
    final = reader.get(key)
    assert final is not None and float(final[0]) in (0.25, -0.5)
    assert seen <= {0.25, -0.5}
    assert [p.name for p in (tmp_path / "56").iterdir()] == [f"{key}{SUFFIX}"]


def test_prune_keeps_only_given_keys(tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path)
    keys = [f"{i:02x}" + "a" * 62 for i in range(6)] + ["00" + "b" * 62]
    for key in keys:
        cache.put(key, _tone(0.1), RATE)
    keep = set(keys[:3])
    size = cache.path(keys[3]).stat().st_size
    stale = tmp_path / "00" / f".{keys[0]}{SUFFIX}.x1y2.tmp"
    stale.write_bytes(b"partial")
    fresh = tmp_path / "00" / f".{keys[0]}{SUFFIX}.z9.tmp"
    fresh.write_bytes(b"being written")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    expected = (3, 3 * size, 4, 4 * size + len(b"partial"))
    assert cache.prune(keep, dry_run=True) == expected
    assert set(cache.keys()) == set(keys) and stale.exists()
    assert cache.prune(keep) == expected
    assert set(cache.keys()) == keep
    assert not stale.exists() and fresh.exists()
    assert cache.prune(keep) == (3, 3 * size, 0, 0)
    assert SpeechCache(tmp_path / "absent").prune(set()) == (0, 0, 0, 0)


def test_info_counts_entries_bytes_and_last_run(tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path)
    empty = cache.info()
    assert (empty.entries, empty.bytes, empty.last_run) == (0, 0, None)
    keys = [f"{i:02x}" + "c" * 62 for i in range(3)]
    for key in keys[:2]:
        cache.put(key, _tone(0.2), RATE)
    for key in keys:
        cache.length_s(key)
        cache.get(key)  # a second look-up of a key does not count again
    cache.put(keys[2], _tone(0.2), RATE)
    assert cache.get(keys[2]) is not None
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (2, 1)
    cache.record_run()
    info = SpeechCache(tmp_path).info()
    assert info.entries == 3
    assert info.bytes == sum(cache.path(key).stat().st_size for key in keys)
    assert info.last_run == stats
    assert info.last_run_at.endswith("Z")
    assert "stats.json" in os.listdir(tmp_path)


def test_bad_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SpeechCache(tmp_path).get("../../etc/passwd")


def test_entries_are_not_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Their size and checksum catch what a power cut leaves; fsync would cost a disk flush each."""

    def forbidden(fd: int) -> None:
        raise AssertionError("fsync called")

    monkeypatch.setattr(os, "fsync", forbidden)
    cache = SpeechCache(tmp_path)
    key = "9a" + "b" * 62
    cache.put(key, _tone(0.2), RATE)
    cache.record_run()
    assert cache.verify(key)
