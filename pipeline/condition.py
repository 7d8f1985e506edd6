"""Clip conditioning: engine output -> trimmed mono float32 speech at the project rate.

One ffmpeg run (per clip, or per batch of clips) decodes, applies the tempo (``atempo``,
pitch kept) and resamples; the silence trim and the edge fades are done in numpy, so
pauses around clips are exact and joins never click.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.engines.base import EncodedAudio
from pipeline.errors import AudioError
from pipeline.ffmpeg import run_ffmpeg

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

CONDITIONING_VERSION = "2"
"""Part of speech cache keys; bump whenever conditioning changes its output."""

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
SPEECH_LEVEL_DBFS = -20.0
"""RMS of the voiced parts of every clip, so all engines and sentences sit at one level."""
SPEECH_PEAK_DBFS = -3.0
"""No clip peaks above this after leveling."""
LEVEL_WINDOW_S = 0.05
"""Window of the voiced-part detector used for leveling."""
BATCH_CLIPS = 32
"""Clips per ffmpeg run in :func:`condition_clips`."""
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


def filter_chain(rate: float, sample_rate: int) -> list[str]:
    """The ffmpeg filters: tempo (on padded input), then mono at ``sample_rate``.

    atempo drops about half a window at each end of its input; silence padded around the
    clip (trimmed again afterwards) keeps every sample of speech.
    """
    tempo = atempo_chain(rate)
    pad = [f"adelay=delays={TEMPO_PAD_MS}:all=1", f"apad=pad_dur={TEMPO_PAD_MS}ms"]
    # rematrix_maxval=1: a stereo source is averaged, never summed into clipping.
    resample = f"aresample=osr={sample_rate}:ochl=mono:rematrix_maxval=1"
    return [*pad, *tempo, resample] if tempo else [resample]


def condition_clip(
    audio: EncodedAudio, rate: float, sample_rate: int, *, label: str = "a sentence"
) -> npt.NDArray[np.float32]:
    """Decode, tempo-adjust, resample to mono ``sample_rate``, trim silence, fade the ends.

    ``label`` names the clip in errors (e.g. the sentence). A clip with no audible sound
    is an AudioError.
    """
    import numpy as np

    _check(audio, sample_rate, label)
    args: list[str] = []
    if audio.format:
        args += ["-f", audio.format]
    args += ["-i", "pipe:0", "-map", "0:a:0", "-af", ",".join(filter_chain(rate, sample_rate))]
    args += ["-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    try:
        raw = run_ffmpeg(args, audio.data)
    except AudioError as error:
        raise AudioError(
            f"cannot decode the engine output for {label} (format {audio.format or '?'}): {error}"
        ) from None
    return _finish(np.frombuffer(raw, dtype="<f4"), sample_rate, label)


def condition_clips(
    clips: Sequence[tuple[EncodedAudio, float]],
    sample_rate: int,
    *,
    labels: Sequence[str] | None = None,
    batch: int = BATCH_CLIPS,
) -> list[npt.NDArray[np.float32]]:
    """``condition_clip`` for many ``(audio, rate)`` pairs, one ffmpeg run per ``batch`` clips.

    Gives the same samples as conditioning each clip alone (each has its own filter chain);
    it only saves ffmpeg start-ups. If a batch fails, its clips are redone one by one so
    the error names the clip at fault.
    """
    import numpy as np

    names = list(labels) if labels is not None else [f"clip {i + 1}" for i in range(len(clips))]
    if len(names) != len(clips):
        raise ValueError("labels and clips differ in length")
    for (audio, _), label in zip(clips, names, strict=True):
        _check(audio, sample_rate, label)
    results: list[npt.NDArray[np.float32]] = []
    for first in range(0, len(clips), max(1, batch)):
        part = clips[first : first + max(1, batch)]
        part_names = names[first : first + len(part)]
        if len(part) == 1:
            results.append(condition_clip(part[0][0], part[0][1], sample_rate, label=part_names[0]))
            continue
        with tempfile.TemporaryDirectory(prefix="meditate-condition-") as folder:
            args: list[str] = []
            graph: list[str] = []
            outputs: list[str] = []
            for index, (audio, rate) in enumerate(part):
                source = Path(folder) / f"in{index}"
                source.write_bytes(audio.data)
                if audio.format:
                    args += ["-f", audio.format]
                args += ["-i", str(source)]
                graph.append(f"[{index}:a:0]{','.join(filter_chain(rate, sample_rate))}[o{index}]")
            args += ["-filter_complex", ";".join(graph)]
            for index in range(len(part)):
                target = str(Path(folder) / f"out{index}.f32")
                outputs.append(target)
                args += ["-map", f"[o{index}]", "-f", "f32le", "-acodec", "pcm_f32le", target]
            try:
                run_ffmpeg(["-y", *args])
            except AudioError:
                log.debug("batch of %d clips failed; conditioning them one by one", len(part))
                for (audio, rate), label in zip(part, part_names, strict=True):
                    results.append(condition_clip(audio, rate, sample_rate, label=label))
                continue
            for target, label in zip(outputs, part_names, strict=True):
                raw = np.fromfile(target, dtype="<f4")
                results.append(_finish(raw, sample_rate, label))
    return results


def _check(audio: EncodedAudio, sample_rate: int, label: str) -> None:
    """Reject what ffmpeg need not see."""
    if sample_rate <= 0:
        raise AudioError(f"sample rate must be positive, got {sample_rate}")
    if not audio.data:
        raise AudioError(f"cannot decode the engine output for {label}: it is empty")


def _finish(
    samples: npt.NDArray[np.float32], sample_rate: int, label: str
) -> npt.NDArray[np.float32]:
    """Trim the silent ends and fade them; silence is an AudioError."""
    import numpy as np

    bounds = audible_bounds(samples, sample_rate)
    if bounds is None:
        raise AudioError(f"engine returned silence for {label}")
    start, end = bounds
    clip = np.array(samples[start:end], dtype=np.float32)
    clip *= np.float32(level_gain(clip, sample_rate))
    apply_edge_fades(clip, sample_rate)
    return clip


def level_gain(clip: npt.NDArray[np.float32], sample_rate: int) -> float:
    """Linear gain bringing the voiced windows' RMS to SPEECH_LEVEL_DBFS, peaks capped."""
    import numpy as np

    window = max(1, round(LEVEL_WINDOW_S * sample_rate))
    count = max(1, clip.size // window)
    frames = (
        clip[: count * window].astype(np.float64).reshape(count, -1)
        if clip.size >= window
        else clip.astype(np.float64).reshape(1, -1)
    )
    energy = np.mean(frames * frames, axis=1)
    voiced = energy[energy >= energy.max() * 0.01]
    rms = math.sqrt(float(np.mean(voiced))) if voiced.size else 0.0
    peak = float(np.max(np.abs(clip))) if clip.size else 0.0
    if rms <= 0.0 or peak <= 0.0:
        return 1.0
    wanted = float(10.0 ** (SPEECH_LEVEL_DBFS / 20.0) / rms)
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


def clip_length_s(samples: npt.NDArray[np.float32], sample_rate: int) -> float:
    """Exact length of a conditioned clip in seconds."""
    return int(samples.shape[0]) / sample_rate
