"""Mastering: ebur128 measurement, static gain, true-peak limiter; measured on encoded files."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio.encode import Encoder
from pipeline.audio.master import (
    SILENCE_LUFS,
    TruePeakLimiter,
    limiter_ceiling_dbtp,
    measure_file,
    measure_stream,
    parse_ebur128_summary,
    static_gain_db,
)

RATE = 44100
BURST = 0.45


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Pink-ish noise bed, a voiced tone in syllables and phrases, and sharp plosive bursts."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * RATE)
    t = np.arange(frames) / RATE
    spectrum = np.fft.rfft(rng.standard_normal(frames))
    freqs = np.fft.rfftfreq(frames, 1 / RATE)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0
    pink = np.fft.irfft(spectrum, frames)
    pink /= np.abs(pink).max()
    phase = 2 * np.pi * np.cumsum(140 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))) / RATE
    voice = sum((0.6 / k) * np.sin(k * phase + 0.3 * k * k) for k in range(1, 25))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2 * ((t % 5) < 3.2)
    bursts = np.zeros(frames)
    for start in rng.integers(0, frames - 400, size=int(seconds * 3)):
        bursts[start : start + 400] += rng.standard_normal(400) * np.exp(-np.arange(400) / 60)
    burst_spectrum = np.fft.rfft(bursts)
    burst_spectrum[freqs > 6000] = 0  # plosives, not clicks: no content near Nyquist
    bursts = np.fft.irfft(burst_spectrum, frames)
    mono = 0.03 * pink + 0.25 * voice * envelope + BURST * bursts
    return np.stack([mono, 0.9 * mono + 0.02 * np.roll(pink, 100)], axis=1).astype(np.float32)


def blocks_of(signal: np.ndarray, size: int = 4096) -> Iterator[np.ndarray]:
    for start in range(0, len(signal), size):
        yield signal[start : start + size]


def limited(signal: np.ndarray, size: int, **options: float) -> np.ndarray:
    limiter = TruePeakLimiter(RATE, signal.shape[1], **options)  # type: ignore[arg-type]
    return np.concatenate(list(limiter.stream(blocks_of(signal, size))))


@pytest.mark.slow
def test_mastered_mp3_and_ogg_hit_target_loudness_under_the_ceiling(tmp_path: Path) -> None:
    signal = speech_like(20)
    raw = measure_stream(blocks_of(signal), RATE, 2)
    gain_db = static_gain_db(raw, -16.0)
    gained = measure_stream(
        blocks_of(signal * np.float32(10 ** (gain_db / 20))), RATE, 2, true_peak=True
    )
    assert (
        gained.true_peak_dbtp is not None and gained.true_peak_dbtp > 0.0
    )  # the limiter must work
    formats = ["mp3", "ogg", "m4a", "opus", "flac"]
    limiter = TruePeakLimiter(RATE, 2, limiter_ceiling_dbtp(-1.0, formats), gain_db=gain_db)
    with Encoder(tmp_path, "t", formats, sample_rate=RATE, channels=2) as encoder:
        for block in limiter.stream(blocks_of(signal)):
            encoder.write(block)
        encoder.close()
        paths = encoder.commit()
    for fmt, path in paths.items():
        loudness = measure_file(path)
        assert abs(loudness.integrated_lufs + 16.0) <= 0.5, (fmt, loudness)
        assert loudness.true_peak_dbtp is not None and loudness.true_peak_dbtp <= -1.0, (
            fmt,
            loudness,
        )
        assert loudness.duration_s == pytest.approx(20.0, abs=0.03), (fmt, loudness)


def test_limiter_output_does_not_depend_on_block_size() -> None:
    signal = speech_like(6, seed=3) * np.float32(3.0)
    reference = limited(signal, 4096, ceiling_dbtp=-1.5, gain_db=2.0)
    assert reference.shape == signal.shape
    assert np.array_equal(reference, limited(signal, 1024, ceiling_dbtp=-1.5, gain_db=2.0))
    assert np.array_equal(reference, limited(signal, 1000, ceiling_dbtp=-1.5, gain_db=2.0))
    assert np.abs(reference).max() < 10 ** (-1.5 / 20)


def test_limiter_is_transparent_under_the_ceiling() -> None:
    signal = speech_like(3) * np.float32(0.2)
    out = limited(signal, 4096, ceiling_dbtp=-1.0, gain_db=-3.0)
    assert np.array_equal(out, signal * np.float32(10 ** (-3.0 / 20)))


def test_limiter_ramps_smoothly_around_a_peak() -> None:
    signal = (
        np.full((RATE, 1), 0.5, np.float32)
        * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE).astype(np.float32)[:, None]
    )
    signal[20000:20050] *= 4.0  # a 2 dB-over burst
    out = limited(signal, 4096, ceiling_dbtp=-1.0)
    gain = out[:, 0] / np.where(np.abs(signal[:, 0]) > 1e-3, signal[:, 0], np.inf)
    active = gain[np.abs(signal[:, 0]) > 1e-3]
    assert active.min() < 0.6
    steps = np.abs(np.diff(20 * np.log10(np.clip(active[active > 0], 1e-6, None))))
    assert steps.max() < 0.2  # dB per sample: ramps, not jumps
    assert np.abs(out[:15000]).max() == pytest.approx(0.5, abs=1e-6)  # untouched before
    assert np.abs(out[40000:]).max() == pytest.approx(0.5, abs=1e-6)  # released after


def test_intersample_peak_is_brought_under_the_ceiling(tmp_path: Path) -> None:
    # a sine at a sixth of the sample rate, sampled either side of its crests:
    # samples at -1.25 dBFS (under the ceiling), true peak 0 dBTP (over it)
    n = np.arange(5 * RATE)
    step = 2 * np.pi / 6
    wave = np.sin(step * n + np.pi / 2 - step / 2).astype(np.float32)
    signal = np.stack([wave, wave], axis=1)
    raw = measure_stream([signal], RATE, 2, true_peak=True)
    assert raw.true_peak_dbtp is not None and raw.true_peak_dbtp > -0.2
    assert 20 * math.log10(np.abs(signal).max()) < -1.2
    limiter = TruePeakLimiter(RATE, 2, limiter_ceiling_dbtp(-1.0, ["wav"]))
    with Encoder(tmp_path, "isp", ["wav"], sample_rate=RATE, channels=2) as encoder:
        for block in limiter.stream(blocks_of(signal)):
            encoder.write(block)
        paths = encoder.commit()
    loudness = measure_file(paths["wav"])
    assert loudness.true_peak_dbtp is not None and -1.6 <= loudness.true_peak_dbtp <= -1.0


def test_mostly_silent_track_gets_its_speech_to_target() -> None:
    signal = np.zeros((30 * RATE, 2), np.float32)
    signal[5 * RATE : 8 * RATE] = speech_like(3)
    raw = measure_stream(blocks_of(signal), RATE, 2)
    short = measure_stream([speech_like(3)], RATE, 2)
    assert raw.integrated_lufs == pytest.approx(short.integrated_lufs, abs=0.5)  # gated
    gain_db = static_gain_db(raw, -16.0)
    limiter = TruePeakLimiter(RATE, 2, -1.5, gain_db=gain_db)
    out = measure_stream(limiter.stream(blocks_of(signal)), RATE, 2, true_peak=True)
    assert out.integrated_lufs == pytest.approx(-16.0, abs=0.5)
    assert out.duration_s == pytest.approx(30.0)


def test_silence_measures_as_gated_and_gets_no_gain() -> None:
    silent = measure_stream([np.zeros((RATE * 2, 2), np.float32)], RATE, 2, true_peak=True)
    assert silent.integrated_lufs == SILENCE_LUFS
    assert silent.true_peak_dbtp == -math.inf
    assert static_gain_db(silent, -16.0) == 0.0
    assert measure_stream([], RATE, 2).duration_s == 0.0
    assert static_gain_db(-60.0, -16.0, max_boost_db=30.0) == 30.0
    assert static_gain_db(-20.0, -16.0) == pytest.approx(4.0)


def test_parse_ebur128_summary() -> None:
    text = (
        "[Parsed_ebur128_0 @ 0x1] Summary:\n\n  Integrated loudness:\n    I:         -16.3 LUFS\n"
        "    Threshold: -26.4 LUFS\n\n  Loudness range:\n    LRA:         5.1 LU\n"
        "    Threshold: -36.0 LUFS\n\n  True peak:\n    Peak:       -1.2 dBFS\n"
    )
    assert parse_ebur128_summary(text) == (-16.3, 5.1, -1.2)
    assert parse_ebur128_summary(text.replace("-1.2 dBFS", "-inf dBFS"))[2] == -math.inf


def test_a_bad_block_mid_stream_stops_the_meter_and_is_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import subprocess as subprocess_module

    started: list[subprocess_module.Popen[bytes]] = []
    real_popen = subprocess_module.Popen

    def recording_popen(*args: object, **kwargs: object) -> subprocess_module.Popen[bytes]:
        process = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(process)
        return process  # type: ignore[no-any-return]

    monkeypatch.setattr(subprocess_module, "Popen", recording_popen)
    blocks = [np.zeros((RATE, 2), np.float32), np.zeros((RATE, 3), np.float32)]
    with pytest.raises(ValueError, match=r"expected blocks of shape \(frames, 2\)"):
        measure_stream(blocks, RATE, 2)
    assert len(started) == 1 and started[0].returncode is not None  # killed and reaped
