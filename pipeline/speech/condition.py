"""Clip conditioning: engine output -> trimmed, levelled mono float32 speech at the project
rate.

One ffmpeg run decodes and applies the tempo (``atempo``, pitch kept) and the pitch
(``rubberband``, length and formants kept); steady tones are removed, the silence trimmed,
the clip resampled, levelled to one speech loudness and faded at its ends in numpy, so
pauses around clips are exact, joins never click and every sentence sits at one level.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import TYPE_CHECKING

from pipeline.core.errors import AudioError
from pipeline.core.ffmpeg import run_ffmpeg
from pipeline.engines.base import EncodedAudio
from pipeline.speech.level import loudness_lufs, remove_tones, steady_tones

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)


SILENCE_DBFS = -50.0
"""Level under which the ends of a clip count as silence."""
WINDOW_S = 0.005
"""RMS window of the silence detector, so one stray sample does not count as sound."""
MARGIN_S = 0.004
"""Kept before the first and after the last audible sample, so soft onsets are not cut."""
FADE_S = 0.005
"""Raised-cosine fade at both ends; the first and last samples are 0."""
TEMPO_PAD_MS = 100
"""Silence added at both ends before ``atempo`` so its window never cuts speech."""
SPEECH_LOUDNESS_LUFS = -20.0
"""Gated loudness of every clip, so all engines and sentences sit at one level."""
SPEECH_PEAK_DBFS = -1.0
"""No clip peaks above this after levelling (the master's limiter sets the final ceiling)."""
ATEMPO_MIN = 0.5
ATEMPO_MAX = 2.0


def atempo_chain(rate: float) -> list[str]:
    """``atempo`` filters whose product is ``rate`` (each instance accepts 0.5-2.0)."""
    if not (math.isfinite(rate) and rate > 0):
        raise AudioError(f"speech rate must be a positive number, got {rate}")
    filters: list[str] = []
    remaining = rate
    while remaining < ATEMPO_MIN or remaining > ATEMPO_MAX:
        step = ATEMPO_MIN if remaining < ATEMPO_MIN else ATEMPO_MAX
        filters.append(f"atempo={step}")
        remaining /= step
    if not math.isclose(remaining, 1.0, rel_tol=0, abs_tol=1e-9):
        filters.append(f"atempo={remaining:.9g}")
    return filters


def tempo_filters(rate: float, pitch_semitones: float = 0.0) -> list[str]:
    """The ffmpeg filters applying ``pitch_semitones`` and ``rate`` (on padded input) and a
    mono mix, at the native rate; none when there is nothing to change.

    atempo and rubberband drop part of a window at each end of their input; silence padded
    around the clip (trimmed again afterwards) keeps every sample of speech.
    """
    shaping = atempo_chain(rate)
    if not math.isfinite(pitch_semitones):
        raise AudioError(f"pitch must be a number of semitones, got {pitch_semitones}")
    if pitch_semitones:
        scale = 2.0 ** (pitch_semitones / 12.0)
        shaping = [f"rubberband=pitch={scale:.9g}:formant=preserved", *shaping]
    pad = [f"adelay=delays={TEMPO_PAD_MS}:all=1", f"apad=pad_dur={TEMPO_PAD_MS}ms"]
    # rematrix_maxval=1: a stereo source is averaged, never summed into clipping.
    return [*pad, *shaping, "aresample=ochl=mono:rematrix_maxval=1"] if shaping else []


def condition_clip(
    audio: EncodedAudio,
    rate: float,
    sample_rate: int,
    *,
    pitch_semitones: float = 0.0,
    label: str = "a sentence",
) -> npt.NDArray[np.float32]:
    """Decode, change tempo and pitch, remove steady tones, trim silence, resample to mono
    ``sample_rate``, level to ``SPEECH_LOUDNESS_LUFS``, fade the ends.

    A plain WAV at rate 1.0 and pitch 0 (the espeak case) needs no ffmpeg at all; other
    formats and changes go through one ffmpeg run at the clip's native rate. Resampling is
    done here, always the same way. ``label`` names the clip in errors. A clip with no
    audible sound is an AudioError.
    """
    _check(audio, sample_rate, label)
    filters = tempo_filters(rate, pitch_semitones)
    native = read_wav(audio.data) if audio.format == "wav" and not filters else None
    if native is None:
        args: list[str] = ["-f", audio.format] if audio.format else []
        args += ["-i", "pipe:0", "-map", "0:a:0"]
        if filters:
            args += ["-af", ",".join(filters)]
        args += ["-f", "wav", "-acodec", "pcm_f32le", "pipe:1"]
        try:
            native = read_wav(run_ffmpeg(args, audio.data))
        except AudioError as error:
            raise AudioError(
                f"cannot decode the engine output for {label} "
                f"(format {audio.format or '?'}): {error}"
            ) from None
        if native is None:
            raise AudioError(f"cannot decode the engine output for {label}: no audio in it")
    samples, source_rate = native
    tones = steady_tones(samples, source_rate)
    if tones:
        log.debug("%s: removed steady tones at %s Hz", label, ", ".join(f"{f:.0f}" for f in tones))
        samples = remove_tones(samples, source_rate, tones)
    bounds = audible_bounds(samples, source_rate)
    if bounds is None:
        raise AudioError(f"engine returned silence for {label}")
    loudness = loudness_lufs(samples[bounds[0] : bounds[1]], source_rate)  # resampling keeps it
    return _finish(_resample_span(samples, bounds, source_rate, sample_rate), loudness, sample_rate)


def read_wav(data: bytes) -> tuple[npt.NDArray[np.float32], int] | None:
    """Mono float32 samples and rate of 16-bit PCM or float WAV bytes; None if not such a WAV.

    The data chunk's size is not trusted (ffmpeg writing to a pipe cannot fill it in): the
    data runs to the end of the bytes.
    """
    import numpy as np

    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    position, fmt = 12, b""
    while position + 8 <= len(data):
        chunk = data[position : position + 4]
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        body = position + 8
        if chunk == b"fmt ":
            fmt = data[body : body + 16]
        elif chunk == b"data" and len(fmt) == 16:
            tag = int.from_bytes(fmt[0:2], "little")
            channels = int.from_bytes(fmt[2:4], "little")
            rate = int.from_bytes(fmt[4:8], "little")
            bits = int.from_bytes(fmt[14:16], "little")
            payload = data[body:]
            if tag == 1 and bits == 16:
                pcm = np.frombuffer(payload[: len(payload) // 2 * 2], "<i2") / np.float32(32768)
            elif tag == 3 and bits == 32:
                pcm = np.frombuffer(payload[: len(payload) // 4 * 4], "<f4")
            else:
                return None
            if channels < 1 or rate <= 0:
                return None
            frames = pcm[: len(pcm) // channels * channels].reshape(-1, channels)
            return frames.mean(axis=1, dtype=np.float32), rate
        position = body + size + (size & 1)
    return None


RESAMPLE_HALF_TAPS = 16
"""Input samples on each side of an output sample (counted at the lower rate)."""
RESAMPLE_BETA = 8.0
"""Kaiser window shape: over 85 dB of signal-to-error and stopband for speech."""
RESAMPLE_CUTOFF = 0.95
"""Passband edge as a fraction of the lower Nyquist frequency."""


def resample(
    samples: npt.NDArray[np.float32], source_rate: int, target_rate: int
) -> npt.NDArray[np.float32]:
    """Band-limited rational resampling (polyphase, Kaiser-windowed sinc); deterministic."""
    import numpy as np

    if source_rate == target_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    divisor = math.gcd(source_rate, target_rate)
    up, down = target_rate // divisor, source_rate // divisor
    table, half = _polyphase_table(up, down)
    count = -(-len(samples) * up // down)
    padded = np.concatenate(
        [np.zeros(half, np.float32), samples.astype(np.float32), np.zeros(half + 1, np.float32)]
    )
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half)
    out = np.empty(count, np.float32)
    inverse = pow(down, -1, up)
    for phase in range(up):
        first = phase * inverse % up  # outputs first..count step up share this phase
        if first >= count:
            continue
        start, length = first * down // up + 1, len(range(first, count, up))
        if down == 1:  # consecutive windows: a sum of shifted copies is fastest
            taps = table[phase]
            acc = taps[0] * padded[start : start + length]
            for tap in range(1, taps.size):
                acc += taps[tap] * padded[start + tap : start + tap + length]
            out[first::up] = acc
        else:
            out[first::up] = windows[start::down][:length] @ table[phase]
    return out


@functools.lru_cache(maxsize=16)
def _polyphase_table(up: int, down: int) -> tuple[npt.NDArray[np.float32], int]:
    """Taps per output phase: ``table[p, k]`` weighs input sample ``i - half + 1 + k``."""
    import numpy as np

    stretch = max(1.0, down / up)  # downsampling widens the kernel and lowers the cutoff
    half = math.ceil(RESAMPLE_HALF_TAPS * stretch)
    cutoff = RESAMPLE_CUTOFF * 0.5 / stretch  # cycles per input sample
    distance = np.arange(-half + 1, half + 1)[None, :] - (np.arange(up) / up)[:, None]
    kernel = 2 * cutoff * np.sinc(2 * cutoff * distance) * _kaiser(distance / half)
    return (kernel / kernel.sum(axis=1, keepdims=True)).astype(np.float32), half


def _kaiser(position: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The Kaiser window at continuous positions in [-1, 1] (0 outside)."""
    import numpy as np

    inside = np.clip(1.0 - position**2, 0.0, None)
    window = np.i0(RESAMPLE_BETA * np.sqrt(inside)) / np.i0(RESAMPLE_BETA)
    return np.asarray(window * (np.abs(position) <= 1.0), dtype=np.float64)


def _check(audio: EncodedAudio, sample_rate: int, label: str) -> None:
    """Reject what ffmpeg need not see."""
    if sample_rate <= 0:
        raise AudioError(f"sample rate must be positive, got {sample_rate}")
    if not audio.data:
        raise AudioError(f"cannot decode the engine output for {label}: it is empty")


def _resample_span(
    samples: npt.NDArray[np.float32], bounds: tuple[int, int], source_rate: int, target_rate: int
) -> npt.NDArray[np.float32]:
    """``samples[start:end]`` at ``target_rate``: only the audible part is resampled.

    The filter still sees the real neighbours of the span's edges (that context is resampled
    too, then dropped), so the edges come out as they would from the whole clip.
    """
    import numpy as np

    start, end = bounds
    if source_rate == target_rate:
        return np.array(samples[start:end], dtype=np.float32)
    context = RESAMPLE_HALF_TAPS * max(1, -(-source_rate // target_rate))
    first, last = max(0, start - context), min(samples.size, end + context)
    resampled = resample(samples[first:last], source_rate, target_rate)
    scale = target_rate / source_rate
    offset = round((start - first) * scale)
    return np.array(resampled[offset : offset + round((end - start) * scale)], dtype=np.float32)


def _finish(
    samples: npt.NDArray[np.float32], loudness: float, sample_rate: int
) -> npt.NDArray[np.float32]:
    """Bring the clip of ``loudness`` (LUFS) to the speech level and fade its ends (in place)."""
    import numpy as np

    samples *= np.float32(level_gain(samples, loudness))
    apply_edge_fades(samples, sample_rate)
    return samples


def level_gain(clip: npt.NDArray[np.float32], loudness: float) -> float:
    """Linear gain bringing a clip of ``loudness`` to SPEECH_LOUDNESS_LUFS, its peak capped."""
    import numpy as np

    peak = float(np.max(np.abs(clip))) if clip.size else 0.0
    if not math.isfinite(loudness) or peak <= 0.0:
        return 1.0
    wanted = float(10.0 ** ((SPEECH_LOUDNESS_LUFS - loudness) / 20.0))
    ceiling = float(10.0 ** (SPEECH_PEAK_DBFS / 20.0) / peak)
    return min(wanted, ceiling)


def audible_bounds(
    samples: npt.NDArray[np.float32], sample_rate: int, threshold_dbfs: float = SILENCE_DBFS
) -> tuple[int, int] | None:
    """``(start, end)`` sample indices spanning the audible part plus margins; None if silent.

    A sample counts when it exceeds the threshold and the RMS of a short window around it
    does too, so isolated specks in the silence are ignored.
    """
    import numpy as np

    threshold = 10.0 ** (threshold_dbfs / 20.0)
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return None
    window = max(1, round(WINDOW_S * sample_rate))
    first = _first_sounding(samples, loud, window, threshold)
    last = _first_sounding(samples, loud[::-1], window, threshold)
    if first is None or last is None:
        return None
    margin = round(MARGIN_S * sample_rate)
    return max(0, first - margin), min(samples.size, last + 1 + margin)


def _first_sounding(
    samples: npt.NDArray[np.float32],
    candidates: npt.NDArray[np.intp],
    window: int,
    threshold: float,
    block: int = 256,
) -> int | None:
    """The first candidate index whose surrounding ``window`` has an RMS above ``threshold``.

    Checked a block at a time: normally the first candidate already qualifies, so the cost
    does not grow with the clip length.
    """
    import numpy as np

    half = window // 2
    for offset in range(0, candidates.size, block):
        chunk = candidates[offset : offset + block]
        lo = int(chunk.min()) - half
        hi = int(chunk.max()) - half + window
        start = max(0, lo)
        segment = samples[start : min(samples.size, hi)].astype(np.float64)
        cumulative = np.concatenate(([0.0], np.cumsum(segment * segment)))
        left = np.clip(chunk - half - start, 0, segment.size)
        right = np.clip(chunk - half + window - start, 0, segment.size)
        rms = np.sqrt((cumulative[right] - cumulative[left]) / np.maximum(right - left, 1))
        passing = np.flatnonzero(rms > threshold)
        if passing.size:
            return int(chunk[passing[0]])
    return None


def apply_edge_fades(clip: npt.NDArray[np.float32], sample_rate: int) -> None:
    """In place: raised-cosine fade-in and fade-out of ``FADE_S`` (shorter on tiny clips)."""
    import numpy as np

    length = min(round(FADE_S * sample_rate), clip.size // 2)
    if length <= 0:
        clip[:] = 0.0
        return
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, length))).astype(np.float32)
    clip[:length] *= ramp
    clip[-length:] *= ramp[::-1]
