"""Mastering: EBU R128 measurement with ffmpeg's ``ebur128``, one static gain, a true-peak limiter.

The render is two passes over the (cheap, deterministic) mix: pass 1 streams the raw mix
through :func:`measure_stream`; :func:`static_gain_db` turns that into one gain; pass 2
streams the mix through :class:`TruePeakLimiter` (gain + peak control) into the encoder;
then :func:`measure_file` measures each encoded file, and those are the figures recorded.

Nothing here does dynamic loudness processing, so a mostly silent track (a sleep story
with long pauses) keeps its dynamics: BS.1770 integrated loudness gates out silence
(blocks under -70 LUFS, then blocks 10 LU under the ungated mean), so the static gain
brings the *spoken* parts to the target instead of boosting the silence; the limiter only
touches the few peaks the gain pushes over the ceiling. This avoids ffmpeg's one-pass
``loudnorm``, which pumps on such material and silently falls back to dynamic mode.
"""

from __future__ import annotations

import logging
import math
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.errors import AudioError
from pipeline.core.ffmpeg import (
    PipeDrain,
    ffmpeg_exe,
    killed_on_error,
    last_line,
    run_ffmpeg_logged,
    start_ffmpeg,
    widen_pipe,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Block = npt.NDArray[np.float32]

log = logging.getLogger(__name__)

SILENCE_LUFS = -70.0
"""What ``ebur128`` reports when every block is gated out (silence or near silence)."""

LOSSY_MARGIN_DB = {"mp3": 0.5, "m4a": 0.5, "ogg": 1.0, "opus": 1.0, "flac": 0.2, "wav": 0.2}
"""How far under the target true peak the limiter aims, per format: lossy codecs add
overshoot; lossless ones only need room for meter differences and 16-bit rounding."""


@dataclass(frozen=True)
class Loudness:
    """EBU R128 figures of a stream or a file, as ffmpeg's ``ebur128`` filter reports them."""

    integrated_lufs: float
    """Gated integrated loudness (BS.1770); -70.0 for silence."""
    loudness_range_lu: float
    """Loudness range (EBU Tech 3342)."""
    true_peak_dbtp: float | None
    """Maximum true peak over all channels; None when it was not measured; -inf for silence."""
    duration_s: float
    """Length of the audio measured."""


def ebur128_filter(true_peak: bool, dual_mono: bool) -> str:
    """The ``ebur128`` filter printing only its summary (true peak costs a 4x resampling)."""
    options = ["framelog=verbose"]  # per-frame lines at verbose: only the summary is printed
    if true_peak:
        options.append("peak=true")
    if dual_mono:
        options.append("dualmono=true")
    return "ebur128=" + ":".join(options)


_NUMBER = r"(-?inf|nan|-?\d+(?:\.\d+)?)"


def parse_ebur128_summary(stderr: str) -> tuple[float, float, float | None]:
    """(integrated LUFS, LRA LU, true peak dBTP or None) from the last ``ebur128`` summary."""
    start = stderr.rfind("Summary:")
    if start < 0:
        raise AudioError("loudness measurement failed: ffmpeg printed no ebur128 summary")
    summary = stderr[start:]
    integrated = re.search(r"\bI:\s+" + _NUMBER + r" LUFS", summary)
    lra = re.search(r"\bLRA:\s+" + _NUMBER + r" LU\b", summary)
    peak = re.search(r"\bPeak:\s+" + _NUMBER + r" dBFS", summary)
    if integrated is None or lra is None:
        raise AudioError("loudness measurement failed: cannot read ffmpeg's ebur128 summary")
    return (
        float(integrated.group(1)),
        float(lra.group(1)),
        float(peak.group(1)) if peak else None,
    )


def measure_stream(
    blocks: Iterable[Block],
    sample_rate: int,
    channels: int,
    *,
    true_peak: bool = False,
    dual_mono: bool = False,
) -> Loudness:
    """Measure float32 blocks of shape (frames, channels) by piping them into ffmpeg's ``ebur128``.

    Memory stays bounded (one block at a time). True peak costs a 192 kHz resampling in
    ffmpeg, so it is only measured when asked. An empty stream measures as silence.
    """
    import numpy as np

    iterator = iter(blocks)
    first = next(iterator, None)
    if first is None:
        return Loudness(SILENCE_LUFS, 0.0, -math.inf if true_peak else None, 0.0)
    command = [
        ffmpeg_exe(),
        *("-hide_banner", "-nostdin", "-nostats"),
        *("-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels), "-i", "pipe:0"),
        *("-af", ebur128_filter(true_peak, dual_mono), "-f", "null", "-"),
    ]
    process = start_ffmpeg(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert process.stdin is not None and process.stderr is not None
    widen_pipe(process.stdin)
    drain = PipeDrain(process.stderr)
    drain.start()
    frames = 0
    with killed_on_error(process, drain):
        try:
            block: Block | None = first
            while block is not None:
                if block.ndim != 2 or block.shape[1] != channels:
                    raise ValueError(
                        f"expected blocks of shape (frames, {channels}), got {block.shape}"
                    )
                data = np.ascontiguousarray(block, dtype="<f4")
                process.stdin.write(data.data)
                frames += len(data)
                block = next(iterator, None)
            process.stdin.close()
        except BrokenPipeError:
            pass  # ffmpeg died: its exit status and stderr tell why
    returncode = process.wait()
    stderr = drain.text()
    if returncode != 0:
        raise AudioError(f"loudness measurement failed: ffmpeg: {last_line(stderr)}")
    integrated, lra, peak = parse_ebur128_summary(stderr)
    return Loudness(integrated, lra, peak if true_peak else None, frames / sample_rate)


def measure_file(path: Path, *, dual_mono: bool = False) -> Loudness:
    """Integrated loudness, LRA, true peak and decoded duration of an audio file (ffmpeg only)."""
    returncode, stdout, stderr = run_ffmpeg_logged(
        [
            *("-nostats", "-progress", "pipe:1"),
            *("-i", str(path), "-map", "0:a:0", "-af", ebur128_filter(True, dual_mono)),
            *("-f", "null", "-"),
        ]
    )
    if returncode != 0:
        raise AudioError(f"{path}: cannot measure loudness: {last_line(stderr)}")
    integrated, lra, peak = parse_ebur128_summary(stderr)
    times = re.findall(rb"^out_time_us=(\d+)", stdout, re.MULTILINE)
    duration_s = int(times[-1]) / 1e6 if times else 0.0
    return Loudness(integrated, lra, peak if peak is not None else -math.inf, duration_s)


def static_gain_db(
    measured: Loudness | float, target_lufs: float, *, max_boost_db: float = 30.0
) -> float:
    """The one gain taking a measured integrated loudness to the target.

    Silence (everything gated out) gets 0 dB rather than an absurd boost; boosts are capped
    at ``max_boost_db`` so a near-silent mix does not turn into amplified noise.
    """
    integrated = measured.integrated_lufs if isinstance(measured, Loudness) else measured
    if not math.isfinite(integrated) or integrated <= SILENCE_LUFS + 0.05:
        log.warning("the mix is silent (%.1f LUFS): no loudness gain applied", integrated)
        return 0.0
    gain_db = target_lufs - integrated
    if gain_db > max_boost_db:
        log.warning(
            "the mix measures %.1f LUFS: gain capped at +%.0f dB, target %.1f LUFS not reached",
            integrated,
            max_boost_db,
            target_lufs,
        )
        return max_boost_db
    return gain_db


def limiter_ceiling_dbtp(true_peak_dbtp: float, formats: Iterable[str]) -> float:
    """The limiter's ceiling: the target true peak less the largest margin the formats need."""
    margins = [LOSSY_MARGIN_DB.get(fmt, 0.5) for fmt in formats]
    return true_peak_dbtp - max(margins, default=0.5)


# --- true-peak limiter --------------------------------------------------------------------

_UDB = 1e-6
"""Internal gain unit (micro-dB, int64): integer arithmetic keeps results exact and
therefore independent of how the stream is cut into blocks."""
_REDUCTION_STEP_UDB = 10_000
"""Required reductions are rounded up to 0.01 dB."""
_GAIN_STEP_UDB = 1_000
"""Applied gains are tabulated every 0.001 dB (rounded towards more reduction)."""
_MAX_REDUCTION_DB = 48.0
_TAPS_BEFORE = 5
_TAPS_AFTER = 6
"""The interpolator for the gap after sample j reads x[j-5 .. j+6] (12 taps per phase)."""
_CONTEXT = _TAPS_AFTER
"""The peak at sample j needs the gaps before and after it: x[j-6 .. j+6]."""


def _interpolation_phases() -> npt.NDArray[np.float64]:
    """Polyphase 4x interpolator: rows are phases 1/4, 2/4, 3/4; 12 taps each (Kaiser sinc)."""
    import numpy as np

    offsets = np.arange(-_TAPS_BEFORE, _TAPS_AFTER + 1, dtype=np.float64)
    half_width = 6.5
    cutoff = 0.92
    phases = []
    for phase in (0.25, 0.5, 0.75):
        distance = phase - offsets
        window = np.i0(6.0 * np.sqrt(1.0 - (distance / half_width) ** 2)) / np.i0(6.0)
        taps = cutoff * np.sinc(cutoff * distance) * window
        phases.append(taps / taps.sum())
    return np.array(phases)


def _sliding_min(values: npt.NDArray[np.int64], width: int) -> npt.NDArray[np.int64]:
    """``out[i] = min(values[i : i + width])`` in O(n) (van Herk / Gil-Werman)."""
    import numpy as np

    count = len(values) - width + 1
    pad = (-len(values)) % width
    padded = np.concatenate([values, np.full(pad, np.iinfo(np.int64).max, np.int64)])
    chunks = padded.reshape(-1, width)
    prefix = np.minimum.accumulate(chunks, axis=1).ravel()
    suffix = np.minimum.accumulate(chunks[:, ::-1], axis=1)[:, ::-1].ravel()
    result: npt.NDArray[np.int64] = np.minimum(
        suffix[:count], prefix[width - 1 : width - 1 + count]
    )
    return result


class TruePeakLimiter:
    """Streaming look-ahead limiter on 4x-oversampled (true) peaks, with a static input gain.

    Per sample it estimates the true peak (sample and interpolated values around it, all
    channels), derives the gain reduction needed to stay under the ceiling, holds it over
    the look-ahead window, releases linearly in dB at ``release_db_per_s`` and smooths the
    result with a moving average as long as the look-ahead, so the gain ramps down over the
    look-ahead before a peak instead of clipping it. Channels share one gain (no image
    shift). It never raises the level: under the ceiling the output is the gained input.

    Output is delayed internally but not in time: ``process`` returns the finished frames
    (possibly none), ``flush`` the rest, and together they have exactly the input's length.
    All gain arithmetic is done in integers or per-sample float steps, so the output is
    bit-identical whatever the block sizes.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        ceiling_dbtp: float,
        *,
        gain_db: float = 0.0,
        lookahead_s: float = 0.005,
        release_db_per_s: float = 20.0,
    ) -> None:
        import numpy as np

        if sample_rate <= 0 or channels <= 0:
            raise ValueError("sample_rate and channels must be positive")
        self.sample_rate = sample_rate
        self.channels = channels
        self.ceiling_dbtp = ceiling_dbtp
        self.gain_db = gain_db
        self._gain = np.float32(10.0 ** (gain_db / 20.0))
        self._hold = max(_CONTEXT, round(lookahead_s * sample_rate))
        self._release_udb = max(1, round(release_db_per_s / sample_rate / _UDB))
        self._phases = _interpolation_phases().astype(np.float32)
        ceiling = 10.0 ** (ceiling_dbtp / 20.0)
        bound = float(np.abs(self._phases).sum(axis=1).max())
        # float32 comparison threshold, a little low: a superset of candidates is harmless
        self._trigger = np.float32(ceiling / bound * 0.999)
        steps = int(_MAX_REDUCTION_DB * 1e6) // _REDUCTION_STEP_UDB
        self._thresholds = ceiling * 10.0 ** (
            np.arange(steps + 1) * (_REDUCTION_STEP_UDB * _UDB) / 20.0
        )
        gains = int(_MAX_REDUCTION_DB * 1e6) // _GAIN_STEP_UDB
        self._gains = (10.0 ** (-np.arange(gains + 1) * (_GAIN_STEP_UDB * _UDB) / 20.0)).astype(
            np.float32
        )
        # Stream state, in global frame indices. The stream starts with `hold` virtual
        # silent frames (never output), so a peak at the very start is ramped into too.
        self._buffer = np.zeros((self._hold, channels), np.float32)
        self._buffer_start = -self._hold
        self._frames_in = 0
        self._peak_pos = 0
        self._out_pos = -self._hold
        self._reductions = np.zeros(self._hold, np.int64)
        self._release_min = self._release_udb * self._hold
        self._smooth_tail = np.zeros(self._hold, np.int64)
        self._flushed = False

    @property
    def latency_frames(self) -> int:
        """How many frames ``process`` keeps back until more input (or ``flush``) comes."""
        return self._hold + _CONTEXT

    def process(self, block: Block) -> Block:
        """Feed one block; returns the frames finished so far (shape (n, channels), n >= 0)."""
        import numpy as np

        if self._flushed:
            raise RuntimeError("the limiter was already flushed")
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(
                f"expected blocks of shape (frames, {self.channels}), got {block.shape}"
            )
        gained = np.asarray(block, np.float32)
        if self.gain_db != 0.0:
            gained = gained * self._gain
        self._buffer = np.concatenate([self._buffer, gained])
        self._frames_in += len(gained)
        peak_end = self._frames_in - _CONTEXT
        if peak_end > self._peak_pos:
            new = self._required_reductions(self._peak_pos, peak_end)
            self._reductions = np.concatenate([self._reductions, new])
            self._peak_pos = peak_end
        return self._emit()

    def flush(self) -> Block:
        """The remaining frames once the input has ended."""
        import numpy as np

        tail = self.process(np.zeros((self.latency_frames, self.channels), np.float32))
        self._flushed = True
        return tail

    def stream(self, blocks: Iterable[Block]) -> Iterator[Block]:
        """Limit a whole stream of blocks (skipping empty outputs), flushing at the end."""
        for block in blocks:
            out = self.process(block)
            if len(out):
                yield out
        out = self.flush()
        if len(out):
            yield out

    def _required_reductions(self, start: int, end: int) -> npt.NDArray[np.int64]:
        """Gain reduction (micro-dB, <= 0) each sample of [start, end) needs under the ceiling."""
        import numpy as np

        count = end - start
        reductions = np.zeros(count, np.int64)
        lo = start - _CONTEXT - self._buffer_start
        segment = self._buffer[lo : lo + count + 2 * _CONTEXT]
        if segment.max() <= self._trigger and segment.min() >= -self._trigger:
            return reductions
        magnitude = np.abs(segment[:, 0])
        for channel in range(1, self.channels):
            np.maximum(magnitude, np.abs(segment[:, channel]), out=magnitude)
        # candidates: samples with a hot sample within the interpolator's reach (j-6 .. j+6)
        hot_count = np.concatenate(
            [np.zeros(1, np.int32), np.cumsum(magnitude > self._trigger, dtype=np.int32)]
        )
        near = hot_count[2 * _CONTEXT + 1 :] - hot_count[:count] > 0
        candidates = np.flatnonzero(near) + _CONTEXT
        gap_mask = np.zeros(count + 1, bool)
        gap_mask[:-1] |= near
        gap_mask[1:] |= near
        gaps = np.flatnonzero(gap_mask) + _CONTEXT - 1
        gap_peak = np.zeros(count + 1, np.float32)
        gap_peak[gaps - (_CONTEXT - 1)] = self._gap_peaks(segment, gaps)
        local = candidates - _CONTEXT
        peak = np.maximum(
            np.maximum(magnitude[candidates].astype(np.float64), gap_peak[local]),
            gap_peak[local + 1],
        )
        steps = np.searchsorted(self._thresholds, peak, side="left")
        steps = np.minimum(steps, len(self._thresholds) - 1)
        reductions[candidates - _CONTEXT] = -steps.astype(np.int64) * _REDUCTION_STEP_UDB
        return reductions

    def _gap_peaks(self, segment: Block, gaps: npt.NDArray[np.intp]) -> npt.NDArray[np.float32]:
        """Largest interpolated magnitude (3 phases, all channels) in each gap after ``gaps``.

        Dense runs are filtered with contiguous slices, sparse ones by gathering taps; both
        do the same float32 operations in the same order, so results do not depend on it.
        """
        import numpy as np

        first, last = int(gaps[0]), int(gaps[-1])
        dense = len(gaps) * 2 > last - first + 1
        offsets = np.arange(-_TAPS_BEFORE, _TAPS_AFTER + 1)
        found = np.zeros(last - first + 1 if dense else len(gaps), np.float32)
        for channel in range(self.channels):
            samples = np.ascontiguousarray(segment[:, channel])
            if dense:
                span = last - first + 1
                taps = [samples[first + k : first + k + span] for k in offsets]
            else:
                gathered = samples[gaps[None, :] + offsets[:, None]]
                taps = list(gathered)
            value = np.empty_like(found)
            product = np.empty_like(found)
            for phase in self._phases:
                np.multiply(taps[0], phase[0], out=value)
                for k in range(1, len(phase)):
                    np.multiply(taps[k], phase[k], out=product)
                    value += product
                np.abs(value, out=value)
                np.maximum(found, value, out=found)
        result: npt.NDArray[np.float32] = found[gaps - first] if dense else found
        return result

    def _emit(self) -> Block:
        """Apply the gain to every frame whose look-ahead window is complete."""
        import numpy as np

        hold = self._hold
        out_end = self._peak_pos - hold
        count = out_end - self._out_pos
        if count <= 0:
            return np.zeros((0, self.channels), np.float32)
        start = self._out_pos - self._buffer_start
        frames = self._buffer[start : start + count]
        window = self._reductions[: count + hold]
        rate = self._release_udb
        idle = (
            not window.any()
            and not self._smooth_tail.any()
            and self._release_min + rate * self._out_pos >= 0
        )
        out: Block
        if idle:
            out = frames.copy()
            self._release_min = min(self._release_min, -rate * (out_end - 1))
        else:
            held = _sliding_min(window, hold + 1)
            index = np.arange(self._out_pos, out_end, dtype=np.int64)
            running = np.minimum(np.minimum.accumulate(held - rate * index), self._release_min)
            self._release_min = int(running[-1])
            released = running + rate * index
            extended = np.concatenate([self._smooth_tail, released])
            sums = np.concatenate([np.zeros(1, np.int64), np.cumsum(extended)])
            smoothed = (sums[hold + 1 :] - sums[:count]) // (hold + 1)
            self._smooth_tail = extended[-hold:].copy()
            table_index = np.minimum(
                (-smoothed + _GAIN_STEP_UDB - 1) // _GAIN_STEP_UDB, len(self._gains) - 1
            )
            out = frames * self._gains[table_index][:, None]
        self._reductions = self._reductions[count:]
        skip = max(0, -self._out_pos)
        self._out_pos = out_end
        self._buffer = self._buffer[start + count :]
        self._buffer_start = out_end
        return out[skip:] if skip else out
