"""Deterministic generator of the built-in beds and one-shots.

Run it as ``python -m pipeline.audio.assetgen``.

Beds are periodic by construction: noise is shaped on the circle (FFT filtering of a signal whose
length is the loop), every modulation completes a whole number of cycles per loop, and every
sinusoid a whole number of periods, so the last sample runs straight into the first. One-shots are
modal syntheses (decaying sinusoid pairs whose small detuning gives slow beating). Everything is
normalized with ffmpeg's ``ebur128`` meter and encoded to Ogg Opus.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.errors import AudioError, PipelineError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Signal = npt.NDArray[np.float64]

log = logging.getLogger(__name__)

SAMPLE_RATE = 48000
"""Opus works at 48 kHz internally; generating at that rate avoids any resampling."""
BED_LUFS = -23.0
"""Integrated loudness of every bed file (catalog ``level_db: 0``)."""
ONE_SHOT_LUFS = -20.0
"""Integrated loudness of every one-shot file."""
OPUS_BITRATE = "64k"
"""Stereo Opus bitrate: transparent enough for soft, band-limited material, and small."""
PEAK_CEILING_DBFS = -1.0
"""Sample peak above which normalization is refused rather than clipping."""
FADE_OUT_S = 0.5
"""Short fade at the end of each one-shot, after its natural decay."""


@dataclass(frozen=True)
class Recipe:
    """How one built-in asset is made."""

    name: str
    """Catalog name."""
    kind: str
    """``bed`` or ``one-shot``."""
    seconds: float
    """Full length: the loop period for beds, the whole sound for one-shots."""
    seed: int
    """Seed of the random generator, fixed so the output never changes."""
    make: Callable[[int, int, int], Signal]
    """``make(frames, sample_rate, seed)`` -> float64 (frames, 2), not yet normalized."""
    codec: str = "opus"
    """``opus`` (small, lossy) or ``flac`` (lossless: a tonal bed whose loop must stay exact)."""
    sample_rate: int = SAMPLE_RATE
    """Rate of the file; a bed with nothing above 1.2 kHz is stored at a low rate in FLAC."""

    @property
    def target_lufs(self) -> float:
        """Integrated loudness the encoded file is normalized to."""
        return BED_LUFS if self.kind == "bed" else ONE_SHOT_LUFS


# ----------------------------------------------------------------------------- building blocks


def _freqs(frames: int, sample_rate: int) -> Signal:
    import numpy as np

    return np.asarray(np.fft.rfftfreq(frames, 1.0 / sample_rate), dtype=np.float64)


def _lowpass(freqs_hz: Signal, cutoff_hz: float, order: int) -> Signal:
    """Butterworth magnitude response (zero phase when applied on the circle)."""
    import numpy as np

    return np.asarray(1.0 / np.sqrt(1.0 + (freqs_hz / cutoff_hz) ** (2 * order)))


def _highpass(freqs_hz: Signal, cutoff_hz: float, order: int) -> Signal:
    import numpy as np

    ratio = np.divide(cutoff_hz, freqs_hz, out=np.full_like(freqs_hz, np.inf), where=freqs_hz > 0)
    return np.asarray(1.0 / np.sqrt(1.0 + ratio ** (2 * order)))


def _tilt(freqs_hz: Signal, exponent: float) -> Signal:
    """``f ** -exponent`` (0.5: pink, 1: brown), zero at DC."""
    import numpy as np

    safe = np.where(freqs_hz > 0, freqs_hz, 1.0)
    return np.where(freqs_hz > 0, safe**-exponent, 0.0)


def _normalized(signal: Signal) -> Signal:
    import numpy as np

    rms = float(np.sqrt(np.mean(signal**2)))
    return signal / rms if rms > 0 else signal


def _circular_noise(rng: np.random.Generator, frames: int, magnitude: Signal) -> Signal:
    """Gaussian noise of unit RMS with the given magnitude spectrum, periodic over ``frames``."""
    import numpy as np

    bins = magnitude.shape[0]
    spectrum = (rng.standard_normal(bins) + 1j * rng.standard_normal(bins)) * magnitude
    spectrum[0] = 0.0
    return _normalized(np.fft.irfft(spectrum, frames))


def _circular_filter(signal: Signal, magnitude: Signal) -> Signal:
    """Zero-phase filtering on the circle: the end of the signal rings into its start."""
    import numpy as np

    return np.fft.irfft(np.fft.rfft(signal) * magnitude, signal.shape[0])


def _lfo(frames: int, cycles: int, phase: float) -> Signal:
    """A sine with a whole number of cycles over ``frames`` (so it loops), in -1..1."""
    import numpy as np

    return np.sin(2.0 * np.pi * cycles * np.arange(frames) / frames + phase)


def _cycles(frames: int, sample_rate: int, period_s: float) -> int:
    """The whole number of cycles per loop closest to the wanted period (at least one)."""
    return max(1, round(frames / sample_rate / period_s))


def _decorrelated(common: Signal, own: Signal, correlation: float) -> Signal:
    """Mix a shared and a channel's own unit-RMS noise to the given inter-channel correlation."""
    import numpy as np

    return np.asarray(np.sqrt(correlation) * common + np.sqrt(1.0 - correlation) * own)


def _add_circular(out: Signal, start: int, values: Signal) -> None:
    """Add ``values`` into ``out`` from ``start`` on, wrapping around the end (several times)."""
    frames = out.shape[0]
    position = start % frames
    done = 0
    while done < values.shape[0]:
        take = min(frames - position, values.shape[0] - done)
        out[position : position + take] += values[done : done + take]
        done += take
        position = 0


def _fade(frames: int, sample_rate: int, attack_s: float, release_s: float) -> Signal:
    """Raised-cosine attack and release envelope over ``frames``."""
    import numpy as np

    envelope = np.ones(frames)
    for length_s, at_end in ((attack_s, False), (release_s, True)):
        n = min(frames, round(length_s * sample_rate))
        if n <= 0:
            continue
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
        if at_end:
            envelope[frames - n :] *= ramp[::-1]
        else:
            envelope[:n] *= ramp
    return envelope


# ----------------------------------------------------------------------------- beds


def make_rain(frames: int, sample_rate: int, seed: int) -> Signal:
    """Soft rain: pink hiss low-passed under 3 kHz plus thousands of small droplets."""
    import numpy as np

    rng = np.random.default_rng(seed)
    f = _freqs(frames, sample_rate)
    band = _highpass(f, 180.0, 2) * _tilt(f, 0.5)
    dark = band * _lowpass(f, 1600.0, 3)
    bright = band * _lowpass(f, 2800.0, 3)
    channels = []
    common_dark = _circular_noise(rng, frames, dark)
    common_bright = _circular_noise(rng, frames, bright)
    swell = 1.0 + 0.14 * _lfo(frames, _cycles(frames, sample_rate, 23.0), 0.7)
    swell += 0.08 * _lfo(frames, _cycles(frames, sample_rate, 9.0), 2.1)
    shimmer = 0.5 + 0.25 * _lfo(frames, _cycles(frames, sample_rate, 14.0), 1.3)
    for channel in range(2):
        hiss_dark = _decorrelated(common_dark, _circular_noise(rng, frames, dark), 0.45)
        hiss_bright = _decorrelated(common_bright, _circular_noise(rng, frames, bright), 0.45)
        pan_phase = np.pi * channel
        tilt = shimmer + 0.1 * _lfo(frames, _cycles(frames, sample_rate, 31.0), pan_phase)
        hiss = (1.0 - tilt) * hiss_dark + tilt * hiss_bright
        drops = _droplets(rng, frames, sample_rate, rate_hz=55.0)
        drops = _circular_filter(drops, _highpass(f, 300.0, 1) * _lowpass(f, 3200.0, 4))
        channels.append((hiss + 1.6 * _normalized(drops) * 0.5) * swell)
    return np.stack(channels, axis=1)


def _droplets(rng: np.random.Generator, frames: int, sample_rate: int, rate_hz: float) -> Signal:
    """Short decaying sine bursts at random places on the circle (indices wrap)."""
    import numpy as np

    count = max(1, int(frames / sample_rate * rate_hz))
    out = np.zeros(frames)
    length = int(0.12 * sample_rate)
    t = np.arange(length) / sample_rate
    starts = rng.integers(0, frames, count)
    freqs_hz = rng.uniform(700.0, 2300.0, count)
    decays_s = rng.uniform(0.004, 0.014, count)
    gains = rng.lognormal(0.0, 0.5, count)
    attack = 1.0 - np.exp(-t / 0.0008)
    for start, freq, decay, gain in zip(starts, freqs_hz, decays_s, gains, strict=True):
        chirp = 2.0 * np.pi * freq * (t - 2.0 * t**2)
        _add_circular(out, int(start), gain * attack * np.exp(-t / decay) * np.sin(chirp))
    return out


def make_ocean(frames: int, sample_rate: int, seed: int) -> Signal:
    """Slow waves: dark surf swelling every ~10 s, brighter foam at each crest, a low floor."""
    import numpy as np

    rng = np.random.default_rng(seed)
    f = _freqs(frames, sample_rate)
    dark = _highpass(f, 70.0, 2) * _tilt(f, 0.7) * _lowpass(f, 850.0, 2)
    foam = _highpass(f, 250.0, 2) * _tilt(f, 0.5) * _lowpass(f, 2600.0, 3)
    waves = _cycles(frames, sample_rate, 10.0)
    lengths = rng.uniform(0.8, 1.2, waves)
    starts = np.concatenate(([0.0], np.cumsum(lengths)[:-1])) / lengths.sum() * frames
    heights = rng.uniform(0.65, 1.0, waves)
    peak_s = rng.uniform(2.6, 3.8, waves)
    common_dark = _circular_noise(rng, frames, dark)
    common_foam = _circular_noise(rng, frames, foam)
    channels = []
    for channel in range(2):
        offset = int(0.35 * sample_rate) * channel
        envelope = np.zeros(frames)
        for start, height, peak in zip(starts, heights, peak_s, strict=True):
            span = int(peak * 10.0 * sample_rate)
            tau = np.arange(span) / (peak * sample_rate)
            shape = height * tau**2.2 * np.exp(2.2 * (1.0 - tau))
            _add_circular(envelope, int(start) + offset, shape)
        envelope = 0.35 + envelope
        surf = _decorrelated(common_dark, _circular_noise(rng, frames, dark), 0.4)
        spray = _decorrelated(common_foam, _circular_noise(rng, frames, foam), 0.4)
        channels.append(envelope * surf + 0.55 * envelope**2.5 * spray)
    return np.stack(channels, axis=1)


def make_drone(frames: int, sample_rate: int, seed: int) -> Signal:
    """A warm drone on G2 with its fifth: chorused harmonics, slow breathing and timbre drift."""
    import numpy as np

    rng = np.random.default_rng(seed)
    loop_s = frames / sample_rate
    bins = frames // 2 + 1
    low = np.zeros((2, bins), dtype=complex)
    high = np.zeros((2, bins), dtype=complex)
    voices = [(98.0, 1.0, 8), (147.0, 0.45, 5), (49.0, 0.18, 2)]
    for root_hz, level, harmonics in voices:
        for n in range(1, harmonics + 1):
            amplitude = level / n**1.3
            for detune_hz, share in ((-0.11, 0.4), (0.0, 1.0), (0.13, 0.35)):
                cycles = round((root_hz * n + detune_hz * n**0.5) * loop_s)
                if not 0 < cycles < bins:
                    continue
                shared_phase = rng.uniform(0.0, 2.0 * np.pi)
                for channel in range(2):
                    weight = amplitude * share * rng.uniform(0.8, 1.0)
                    if n <= 2:
                        target, phase = low, shared_phase + 0.3 * channel
                    else:
                        target, phase = high, rng.uniform(0.0, 2.0 * np.pi)
                    target[channel, cycles] += weight * np.exp(1j * phase)
    air_shape = _highpass(_freqs(frames, sample_rate), 80.0, 2)
    air_shape = air_shape * _lowpass(_freqs(frames, sample_rate), 900.0, 2)
    air_shape = air_shape * _tilt(_freqs(frames, sample_rate), 0.5)
    breath = 1.0 + 0.12 * _lfo(frames, _cycles(frames, sample_rate, 10.0), 0.0)
    channels = []
    for channel in range(2):
        body = _normalized(np.fft.irfft(low[channel], frames))
        overtones = _normalized(np.fft.irfft(high[channel], frames))
        drift = 0.45 + 0.2 * _lfo(frames, _cycles(frames, sample_rate, 16.0), 1.0 + 2.0 * channel)
        drift += 0.1 * _lfo(frames, _cycles(frames, sample_rate, 27.0), 0.4)
        air = _circular_noise(rng, frames, air_shape)
        channels.append(breath * (body + drift * overtones + 0.02 * air))
    return np.stack(channels, axis=1)


# ----------------------------------------------------------------------------- one-shots


@dataclass(frozen=True)
class _Mode:
    """One vibration mode of a struck object: a pair of slightly detuned partials."""

    freq_hz: float
    amplitude: float
    t60_s: float
    beat_hz: float


def _modes_to_signal(
    rng: np.random.Generator,
    frames: int,
    sample_rate: int,
    modes: Sequence[_Mode],
    attack_s: float,
    start_s: float = 0.0,
    spread: float = 0.3,
) -> Signal:
    """Sum of decaying detuned partial pairs, stereo; the pairs beat at ``beat_hz``."""
    import numpy as np

    t = np.arange(frames) / sample_rate - start_s
    active = t >= 0.0
    tc = np.where(active, t, 0.0)
    onset = np.where(active, 1.0 - np.exp(-tc / attack_s), 0.0)
    out = np.zeros((frames, 2))
    for mode in modes:
        decay = np.exp(-tc * 6.907755 / mode.t60_s)
        for sign, share in ((-0.5, 0.55), (0.5, 0.45)):
            freq = mode.freq_hz + sign * mode.beat_hz
            pan = rng.uniform(-spread, spread)
            shared_phase = rng.uniform(0.0, 2.0 * np.pi)
            for channel, side in ((0, 1.0 - pan), (1, 1.0 + pan)):
                phase = shared_phase + rng.uniform(0.0, 0.8)
                out[:, channel] += (
                    mode.amplitude * share * side * np.sin(2 * np.pi * freq * tc + phase) * decay
                )
    return out * onset[:, None]


def _thump(
    rng: np.random.Generator, frames: int, sample_rate: int, cutoff_hz: float, decay_s: float
) -> Signal:
    """The soft felt contact of a mallet: low-passed noise decaying within tens of ms."""
    import numpy as np

    length = min(frames, int(decay_s * 8 * sample_rate))
    t = np.arange(length) / sample_rate
    noise = rng.standard_normal((length, 2))
    f = _freqs(length, sample_rate)
    shape = _lowpass(f, cutoff_hz, 2)
    burst = np.stack([_circular_filter(noise[:, c], shape) for c in range(2)], axis=1)
    burst *= (np.exp(-t / decay_s) * (1.0 - np.exp(-t / 0.002)))[:, None]
    out = np.zeros((frames, 2))
    out[:length] = _normalized(burst)
    return out


def make_bowl(frames: int, sample_rate: int, seed: int) -> Signal:
    """A singing bowl on ~175 Hz: inharmonic partials 1, 2.76, 5.40, 8.93, slow beating."""
    import numpy as np

    rng = np.random.default_rng(seed)
    root_hz = 174.6
    modes = [
        _Mode(root_hz * 1.0, 1.0, 14.0, 0.55),
        _Mode(root_hz * 2.76, 0.55, 10.0, 0.9),
        _Mode(root_hz * 5.40, 0.22, 6.0, 1.4),
        _Mode(root_hz * 8.93, 0.08, 3.5, 2.1),
        _Mode(root_hz * 13.34, 0.025, 2.0, 2.8),
    ]
    ring = _modes_to_signal(rng, frames, sample_rate, modes, attack_s=0.004)
    strike = _thump(rng, frames, sample_rate, 1200.0, 0.012)
    out = ring + 0.04 * strike * float(np.max(np.abs(ring)))
    return out * _fade(frames, sample_rate, 0.0, FADE_OUT_S)[:, None]


def make_chime(frames: int, sample_rate: int, seed: int) -> Signal:
    """A gentle strum of four pentatonic chime bars (D5, E5, A5, B5), spread across the field."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.zeros((frames, 2))
    notes = [(587.33, 0.0, 1.0), (659.26, 0.31, 0.8), (880.0, 0.66, 0.85), (987.77, 1.08, 0.65)]
    for index, (root_hz, start_s, level) in enumerate(notes):
        modes = [
            _Mode(root_hz, level, 6.0, 0.35),
            _Mode(root_hz * 2.76, level * 0.18, 2.6, 0.7),
            _Mode(root_hz * 5.40, level * 0.03, 1.1, 1.1),
        ]
        bar = _modes_to_signal(rng, frames, sample_rate, modes, attack_s=0.0015, start_s=start_s)
        pan = (index / (len(notes) - 1) - 0.5) * 0.6
        out[:, 0] += bar[:, 0] * (1.0 - pan)
        out[:, 1] += bar[:, 1] * (1.0 + pan)
    return out * _fade(frames, sample_rate, 0.0, FADE_OUT_S)[:, None]


def make_gong(frames: int, sample_rate: int, seed: int) -> Signal:
    """A soft, deep gong on ~82 Hz: dense inharmonic partials, the upper ones blooming late."""
    import numpy as np

    rng = np.random.default_rng(seed)
    root_hz = 82.0
    ratios = [1.0, 1.49, 1.98, 2.43, 2.81, 3.35, 3.92, 4.52, 5.1, 5.87, 6.6, 7.4, 8.5, 9.7, 11.2]
    direct: list[_Mode] = []
    bloom: list[_Mode] = []
    for ratio in ratios:
        amplitude = rng.uniform(0.6, 1.0) / ratio**0.9
        t60_s = 16.0 / ratio**0.45
        mode = _Mode(root_hz * ratio, amplitude, t60_s, rng.uniform(0.2, 0.9))
        (bloom if 2.0 < ratio < 8.0 else direct).append(mode)
    out = _modes_to_signal(rng, frames, sample_rate, direct, attack_s=0.012, spread=0.4)
    swell = _modes_to_signal(rng, frames, sample_rate, bloom, attack_s=0.9, spread=0.4)
    strike = _thump(rng, frames, sample_rate, 350.0, 0.06)
    out = out + 0.8 * swell
    out = out + 0.08 * strike * float(np.max(np.abs(out)))
    return out * _fade(frames, sample_rate, 0.0, FADE_OUT_S)[:, None]


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe("rain", "bed", 72.0, 1101, make_rain),
        Recipe("ocean", "bed", 90.0, 2202, make_ocean),
        Recipe("drone", "bed", 80.0, 3303, make_drone, codec="flac", sample_rate=16000),
        Recipe("bowl", "one-shot", 18.0, 4404, make_bowl),
        Recipe("chime", "one-shot", 9.0, 5505, make_chime),
        Recipe("gong", "one-shot", 20.0, 6606, make_gong),
    )
}
"""Every built-in asset the generator knows, by catalog name."""


# ----------------------------------------------------------------------------- public API


def synthesize(
    name: str, seconds: float | None = None, sample_rate: int | None = None
) -> npt.NDArray[np.float32]:
    """The raw (unnormalized) float32 stereo signal of a recipe; ``seconds`` shortens it for tests.

    A shortened bed is still periodic over its own length.
    """
    import numpy as np

    recipe = RECIPES.get(name)
    if recipe is None:
        raise PipelineError(f"no generator recipe for asset '{name}'")
    rate = sample_rate or recipe.sample_rate
    frames = round((seconds if seconds is not None else recipe.seconds) * rate)
    if frames <= 0:
        raise PipelineError(f"asset '{name}': length must be positive")
    signal = recipe.make(frames, rate, recipe.seed)
    return np.ascontiguousarray(signal, dtype=np.float32)


def measure_lufs(samples: npt.NDArray[np.float32], sample_rate: int) -> float:
    """Integrated loudness (LUFS) of float samples, measured by ffmpeg's ``ebur128`` filter."""
    from pipeline.core.ffmpeg import run_ffmpeg

    filters = "ebur128=metadata=1,ametadata=mode=print:key=lavfi.r128.I:file=-"
    channels = samples.shape[1] if samples.ndim == 2 else 1
    out = run_ffmpeg(
        [
            "-f",
            "f32le",
            "-ar",
            str(sample_rate),
            "-ac",
            str(channels),
            "-i",
            "pipe:0",
            "-af",
            filters,
            "-f",
            "null",
            "-",
        ],
        samples.astype("<f4").tobytes(),
    )
    return _last_integrated(out.decode("utf-8", "replace"))


def measure_file_lufs(path: Path) -> float:
    """Integrated loudness (LUFS) of an audio file, measured by ffmpeg's ``ebur128`` filter."""
    from pipeline.core.ffmpeg import run_ffmpeg

    filters = "ebur128=metadata=1,ametadata=mode=print:key=lavfi.r128.I:file=-"
    out = run_ffmpeg(["-i", str(path), "-map", "0:a:0", "-af", filters, "-f", "null", "-"])
    return _last_integrated(out.decode("utf-8", "replace"))


def _last_integrated(text: str) -> float:
    values = [line.split("=", 1)[1] for line in text.splitlines() if "lavfi.r128.I=" in line]
    if not values:
        raise AudioError("ebur128 gave no loudness reading (is the audio empty?)")
    return float(values[-1])


def normalize(
    samples: npt.NDArray[np.float32], sample_rate: int, target_lufs: float
) -> npt.NDArray[np.float32]:
    """Scale to the target integrated loudness; refuse rather than clip."""
    import numpy as np

    gain_db = target_lufs - measure_lufs(samples, sample_rate)
    scaled: npt.NDArray[np.float32] = (samples * np.float32(10.0 ** (gain_db / 20.0))).astype(
        np.float32
    )
    peak = float(np.max(np.abs(scaled)))
    if peak > 10.0 ** (PEAK_CEILING_DBFS / 20.0):
        raise AudioError(f"normalizing to {target_lufs} LUFS would peak at {peak:.2f} (too high)")
    return scaled


def encode(
    samples: npt.NDArray[np.float32], sample_rate: int, path: Path, codec: str, title: str = ""
) -> None:
    """Encode float samples to Ogg Opus or FLAC, bit-exact and atomically (temp name, rename)."""
    from pipeline.core.ffmpeg import run_ffmpeg

    if codec == "opus":
        codec_args = ["-c:a", "libopus", "-b:a", OPUS_BITRATE, "-vbr", "on"]
        codec_args += ["-application", "audio", "-frame_duration", "20", "-f", "ogg"]
    elif codec == "flac":
        codec_args = [
            "-c:a",
            "flac",
            "-sample_fmt",
            "s16",
            "-compression_level",
            "12",
            "-f",
            "flac",
        ]
    else:
        raise PipelineError(f"unknown codec '{codec}' (opus or flac)")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent
    )
    os.close(handle)
    try:
        run_ffmpeg(
            [
                "-y",
                "-f",
                "f32le",
                "-ar",
                str(sample_rate),
                "-ac",
                str(samples.shape[1]),
                "-i",
                "pipe:0",
                *codec_args,
                "-fflags",
                "+bitexact",
                "-flags:a",
                "+bitexact",
                "-map_metadata",
                "-1",
                "-metadata",
                f"title={title}",
                "-metadata",
                "license=CC0-1.0",
                temp_name,
            ],
            samples.astype("<f4").tobytes(),
        )
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    finally:
        with contextlib.suppress(OSError):  # clean-up must not hide the error being raised
            os.unlink(temp_name)


def build(name: str, path: Path, seconds: float | None = None) -> float:
    """Synthesize, normalize and encode one asset to ``path``; returns its measured file LUFS."""
    import numpy as np

    recipe = RECIPES[name]
    rate = recipe.sample_rate
    samples = normalize(synthesize(name, seconds), rate, recipe.target_lufs)
    encode(samples, rate, path, recipe.codec, title=name)
    measured = measure_file_lufs(path)
    # A lossy codec shifts loudness a little; one correction pass lands within hundredths of an LU.
    correction_db = recipe.target_lufs - measured
    if abs(correction_db) > 0.05:
        samples = (samples * np.float32(10.0 ** (correction_db / 20.0))).astype(np.float32)
        encode(samples, rate, path, recipe.codec, title=name)
        measured = measure_file_lufs(path)
    return measured


def regenerate(
    out_dir: Path | None = None,
    names: Sequence[str] | None = None,
    progress: Callable[[str, Path, float], None] | None = None,
) -> dict[str, Path]:
    """Rebuild every file of the built-in catalog (or ``names``) into ``out_dir``."""
    from pipeline.project.assets import builtin_assets_dir, load_catalog

    catalog = load_catalog(builtin_assets_dir())
    target_dir = out_dir if out_dir is not None else builtin_assets_dir()
    wanted = list(names) if names else list(catalog)
    written: dict[str, Path] = {}
    for name in wanted:
        if name not in RECIPES:
            raise PipelineError(f"no generator recipe for asset '{name}'")
        suffix = ".flac" if RECIPES[name].codec == "flac" else ".ogg"
        path = target_dir / f"{name}{suffix}"
        if name in catalog and catalog[name].file.name != path.name:
            raise PipelineError(
                f"catalog entry '{name}' names {catalog[name].file.name}, not {path.name}"
            )
        lufs = build(name, path)
        log.info("%s: %s (%.2f LUFS, %d bytes)", name, path, lufs, path.stat().st_size)
        if progress is not None:
            progress(name, path, lufs)
        written[name] = path
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipeline.audio.assetgen [--out DIR] [NAME...]``: regenerate the assets."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.audio.assetgen", description=__doc__)
    parser.add_argument("names", nargs="*", help="assets to build (default: the whole catalog)")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: audio_assets/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        regenerate(args.out, args.names or None)
    except PipelineError as error:
        log.error("error: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
