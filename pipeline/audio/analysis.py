"""``meditate inspect``: what an editor needs to know about a finished track, in one streaming pass.

One ffmpeg process decodes the file once: its ``ebur128`` filter (a pass-through) measures
loudness and logs the short-term loudness every 100 ms on stderr, while the decoded PCM
comes through a pipe in blocks for the clip count, the silence search and the waveform
envelope. Memory stays small whatever the length. A second, header-only ffmpeg call reads
the chapters back (``-f ffmetadata``).
"""

from __future__ import annotations

import logging
import math
import re
import struct
import subprocess
import threading
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pipeline.audio.master import SILENCE_LUFS, parse_ebur128_summary
from pipeline.core.errors import AudioError, PipelineError, UsageError
from pipeline.core.ffmpeg import (
    ffmpeg_exe,
    killed_on_error,
    last_line,
    run_ffmpeg_logged,
    start_ffmpeg,
)
from pipeline.core.units import format_clock
from pipeline.plan.timeline import Chapter

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Block = npt.NDArray[np.float32]

log = logging.getLogger(__name__)

CLIP_LEVEL = 0.999
"""A sample at or above this magnitude (full scale = 1.0) counts as clipped."""
SILENCE_DBFS = -50.0
"""A window whose RMS level (all channels) is under this is silent."""
SILENCE_WINDOW_S = 0.05
"""Length of the windows the silence search measures."""
BLOCK_FRAMES = 65536
"""Frames read from the decoder per block."""
ENVELOPE_COLUMNS = 2000
"""The waveform envelope keeps between this many and twice as many min/max columns."""
ENVELOPE_RATE = 8000
"""Sample rate a quick pass (``measure_curves``) draws its envelope at."""
PLOT_INSTALL_HINT = "install with pip install 'meditation-pipeline[plot]'"

ProgressCallback = Callable[[float, float], None]
"""Called with (seconds decoded, expected total seconds or 0.0 when unknown)."""


@dataclass(frozen=True)
class Inspection:
    """Measured facts about one audio file."""

    path: Path
    """The file inspected, as given."""
    codec: str
    """ffmpeg's name for the audio codec (``mp3``, ``pcm_s16le``, ``aac``...)."""
    duration_s: float
    """Decoded length (frames / sample rate), not the container's estimate."""
    sample_rate: int
    """Decoded sample rate in Hz."""
    channels: int
    """Decoded channel count."""
    integrated_lufs: float
    """Gated integrated loudness (BS.1770, ffmpeg ``ebur128``); -70.0 for silence."""
    loudness_range_lu: float
    """Loudness range (EBU Tech 3342)."""
    true_peak_dbtp: float
    """Maximum true peak over all channels; -inf for digital silence."""
    sample_peak_dbfs: float
    """Largest sample magnitude in dBFS; -inf for digital silence."""
    clipped_samples: int
    """Samples (counting each channel) at or above ``CLIP_LEVEL`` full scale."""
    longest_silence_s: float
    """The longest run of silent windows (see ``SILENCE_DBFS``); 0.0 when there is none."""
    longest_silence_start_s: float
    """Where that run starts (0.0 when there is none)."""
    chapters: tuple[Chapter, ...]
    """Chapters stored in the file, in time order."""
    plot: Path | None = None
    """The plot written, if one was asked for."""


def inspect_audio(
    path: Path, *, plot: Path | None = None, progress: ProgressCallback | None = None
) -> Inspection:
    """Measure ``path`` (streaming, bounded memory); with ``plot``, also draw it there, in the
    image format its extension names (PNG for ``.png``...).
    """
    if plot is not None:
        _plot_format(plot)
        _require_matplotlib()
    _check_readable(path)
    codec, expected_s, chapters = _probe(path)
    info, curves = _analyse(
        path,
        codec,
        chapters,
        plot,
        want_curves=plot is not None,
        expected_s=expected_s,
        progress=progress,
    )
    if plot is not None:
        _write_plot(plot, info, curves)
    return info


def measure_curves(path: Path) -> tuple[float, Curves]:
    """Decode ``path`` once, quickly, for its length, waveform envelope and loudness curve
    (streaming): the loudness is metered on the file's own samples, without the true peak's
    oversampling; the envelope comes from the samples resampled to ``ENVELOPE_RATE`` (a
    waveform to draw, not a measurement: the review reads loudness and true peak from the
    sidecar).
    """
    _check_readable(path)
    codec, expected_s, chapters = _probe(path)
    info, curves = _analyse(
        path, codec, chapters, None, want_curves=True, expected_s=expected_s, progress=None,
        quick=True,
    )
    return info.duration_s, curves


def format_inspection(info: Inspection) -> str:
    """Readable lines for the CLI."""
    total = info.duration_s * info.sample_rate * info.channels
    share = f" ({info.clipped_samples / total:.4%})" if info.clipped_samples and total else ""
    if info.longest_silence_s > 0:
        silence = f"{info.longest_silence_s:.2f} s at {format_clock(info.longest_silence_start_s)}"
    else:
        silence = "none"
    rows = [
        ("file", str(info.path)),
        ("audio", f"{info.codec}, {info.sample_rate} Hz, {_channel_text(info.channels)}"),
        ("duration", format_clock(info.duration_s)),
        ("loudness", _lufs_text(info.integrated_lufs)),
        ("loudness range", f"{info.loudness_range_lu:.1f} LU"),
        ("true peak", _db_text(info.true_peak_dbtp, "dBTP")),
        ("sample peak", _db_text(info.sample_peak_dbfs, "dBFS")),
        ("clipped samples", f"{info.clipped_samples}{share}"),
        ("longest silence", silence),
        ("chapters", str(len(info.chapters)) if info.chapters else "none"),
    ]
    width = max(len(label) for label, _ in rows) + 1
    lines = [f"{label + ':':<{width}} {value}" for label, value in rows]
    lines += [f"  {format_clock(chapter.start_s)}  {chapter.title}" for chapter in info.chapters]
    if info.plot is not None:
        lines.append(f"{'plot:':<{width}} {info.plot}")
    return "\n".join(lines)


def inspection_as_dict(info: Inspection) -> dict[str, object]:
    """A JSON-friendly form for ``--format json`` (non-finite levels become null)."""
    return {
        "path": str(info.path),
        "codec": info.codec,
        "duration_s": round(info.duration_s, 3),
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "integrated_lufs": _finite(info.integrated_lufs),
        "loudness_range_lu": _finite(info.loudness_range_lu),
        "true_peak_dbtp": _finite(info.true_peak_dbtp),
        "sample_peak_dbfs": _finite(info.sample_peak_dbfs),
        "clipped_samples": info.clipped_samples,
        "longest_silence_s": round(info.longest_silence_s, 3),
        "longest_silence_start_s": round(info.longest_silence_start_s, 3),
        "chapters": [
            {"title": chapter.title, "start_s": round(chapter.start_s, 3)}
            for chapter in info.chapters
        ],
        "plot": None if info.plot is None else str(info.plot),
    }


def _finite(value: float) -> float | None:
    return round(value, 2) if math.isfinite(value) else None


def _lufs_text(value: float) -> str:
    if value <= SILENCE_LUFS:
        return f"{value:.1f} LUFS integrated (silence: everything gated out)"
    return f"{value:.1f} LUFS integrated"


def _db_text(value: float, unit: str) -> str:
    return f"{value:.1f} {unit}" if math.isfinite(value) else "silent"


def _channel_text(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels} channels")


# --- reading the file ---------------------------------------------------------------------


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty")


_CAUSES = (
    ("Invalid data found when processing input", "not an audio file, or corrupt"),
    ("Permission denied", "permission denied"),
    ("No such file or directory", "no such file"),
    ("does not contain any stream", "it contains no streams"),
)
_AUDIO_STREAM = re.compile(r"^\s*Stream #\d+:\d+.*?: Audio: ([\w-]+)", re.MULTILINE)
_DURATION = re.compile(r"^\s*Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", re.MULTILINE)


def _probe(path: Path) -> tuple[str, float, tuple[Chapter, ...]]:
    """(codec, container duration or 0.0, chapters) from the headers: no decoding."""
    # -copyts: keep chapter times as stored (an mp3's encoder delay would shift them otherwise)
    returncode, stdout, stderr = run_ffmpeg_logged(
        ["-copyts", "-i", str(path), "-f", "ffmetadata", "-"]
    )
    if returncode != 0:
        raise AudioError(f"{path}: cannot read audio: {_cause(stderr)}")
    stream = _AUDIO_STREAM.search(stderr)
    if stream is None:
        raise AudioError(
            f"{path}: cannot read audio: it has no audio stream "
            "(probable cause: not an audio file, e.g. an image, a video without sound or text)"
        )
    duration = _DURATION.search(stderr)
    expected_s = 0.0
    if duration:
        hours, minutes, seconds = duration.groups()
        expected_s = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    chapters = parse_ffmetadata_chapters(stdout.decode("utf-8", "replace"))
    return stream.group(1), expected_s, chapters


def _cause(stderr: str) -> str:
    for needle, cause in _CAUSES:
        if needle in stderr:
            return f"{cause} (ffmpeg: {needle})"
    return f"ffmpeg: {last_line(stderr)}"


def parse_ffmetadata_chapters(text: str) -> tuple[Chapter, ...]:
    """Chapters (title, start) from ffmpeg's ``ffmetadata`` text, sorted by start."""
    chapters: list[Chapter] = []
    section: dict[str, str] | None = None

    def close() -> None:
        if section is None or "START" not in section:
            return
        numerator, _, denominator = section.get("TIMEBASE", "1/1000000000").partition("/")
        try:
            start_s = int(section["START"]) * int(numerator) / int(denominator or "1")
        except (ValueError, ZeroDivisionError):
            log.warning("ignoring a chapter with an unreadable start: %r", section)
            return
        chapters.append(Chapter(section.get("title", ""), start_s))

    for line in _ffmetadata_lines(text):
        if line.startswith("["):
            close()
            section = {} if line.strip() == "[CHAPTER]" else None
        elif section is not None and not line.startswith((";", "#")) and "=" in line:
            key, value = _split_key_value(line)
            section[key] = value
    close()
    return tuple(sorted(chapters, key=lambda chapter: chapter.start_s))


def _ffmetadata_lines(text: str) -> list[str]:
    """Logical lines: a backslash before a newline continues the value on the next line."""
    lines: list[str] = []
    current = ""
    escaped = False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "\n":
            lines.append(current)
            current = ""
        else:
            current += char
    lines.append(current)
    return lines


def _split_key_value(line: str) -> tuple[str, str]:
    """Split at the first unescaped ``=`` and unescape both sides."""
    key: list[str] = []
    value: list[str] = []
    target = key
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and index + 1 < len(line):
            target.append(line[index + 1])
            index += 2
            continue
        if char == "=" and target is key:
            target = value
        else:
            target.append(char)
        index += 1
    return "".join(key), "".join(value)


# --- the streaming pass -------------------------------------------------------------------


@dataclass(frozen=True)
class Curves:
    """What the plot and the review page draw: the waveform envelope (min/max columns over
    every channel) and the loudness over time (every 100 ms)."""

    envelope_times_s: tuple[float, ...]
    envelope_min: tuple[float, ...]
    envelope_max: tuple[float, ...]
    meter_times_s: tuple[float, ...]
    momentary_lufs: tuple[float, ...]
    short_term_lufs: tuple[float, ...]


_FRAME_LOG = re.compile(
    rb"\bt:\s*([0-9.]+)\s.*?\bM:\s*(-?inf|-?nan|-?[0-9.]+)\s+S:\s*(-?inf|-?nan|-?[0-9.]+)"
)


class _MeterLog(threading.Thread):
    """Reads ffmpeg's stderr as it comes: keeps the per-100 ms momentary and short-term
    loudness, and the other lines (the ``ebur128`` summary, errors) as text; never the
    whole frame log."""

    def __init__(self, pipe: IO[bytes], keep_curve: bool) -> None:
        super().__init__(daemon=True)
        self._pipe = pipe
        self._keep_curve = keep_curve
        self.times_s = array("d")
        self.momentary_lufs = array("d")
        self.short_term_lufs = array("d")
        self._other: list[bytes] = []

    def run(self) -> None:
        for line in self._pipe:
            if b"Parsed_ebur128" in line and b" t:" in line:
                if self._keep_curve:
                    match = _FRAME_LOG.search(line)
                    if match:
                        self.times_s.append(float(match.group(1)))
                        self.momentary_lufs.append(float(match.group(2)))
                        self.short_term_lufs.append(float(match.group(3)))
            else:
                self._other.append(line)

    def text(self) -> str:
        self.join()
        return b"".join(self._other).decode("utf-8", "replace")


def _read_exact(stream: IO[bytes], count: int) -> bytes:
    data = stream.read(count)
    return data if data is not None else b""


def _read_wav_header(stream: IO[bytes]) -> tuple[int, int] | None:
    """(sample rate, channels) from a streamed WAV header, leaving ``stream`` at the samples."""
    riff = _read_exact(stream, 12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:] != b"WAVE":
        return None
    format_found: tuple[int, int] | None = None
    while True:
        head = _read_exact(stream, 8)
        if len(head) < 8:
            return None
        chunk_id, size = head[:4], struct.unpack("<I", head[4:])[0]
        if chunk_id == b"data":
            return format_found
        body = _read_exact(stream, size + (size & 1))
        if chunk_id == b"fmt " and len(body) >= 16:
            channels, sample_rate = struct.unpack("<HI", body[2:8])
            format_found = (sample_rate, channels)


class _Envelope:
    """Min/max per column of the waveform, at a resolution that adapts to the length:
    columns of ``frames_per_column`` frames, merged in pairs whenever there are too many."""

    def __init__(self) -> None:
        self.frames_per_column = 64
        self.mins = array("f")
        self.maxs = array("f")
        self._pending_min = math.inf
        self._pending_max = -math.inf
        self._pending_frames = 0

    def feed(self, mono_min: npt.NDArray[np.float32], mono_max: npt.NDArray[np.float32]) -> None:
        import numpy as np

        position = 0
        count = len(mono_min)
        while position < count:
            take = min(self.frames_per_column - self._pending_frames, count - position)
            if self._pending_frames == 0 and take == self.frames_per_column:
                whole = (count - position) // self.frames_per_column
                stop = position + whole * self.frames_per_column
                shape = (whole, self.frames_per_column)
                self.mins.extend(mono_min[position:stop].reshape(shape).min(axis=1).tolist())
                self.maxs.extend(mono_max[position:stop].reshape(shape).max(axis=1).tolist())
                position = stop
            else:
                part = slice(position, position + take)
                self._pending_min = min(self._pending_min, float(np.min(mono_min[part])))
                self._pending_max = max(self._pending_max, float(np.max(mono_max[part])))
                self._pending_frames += take
                position += take
                if self._pending_frames == self.frames_per_column:
                    self._close_pending()
            while len(self.mins) >= 2 * ENVELOPE_COLUMNS:
                self._halve()

    def _close_pending(self) -> None:
        self.mins.append(self._pending_min)
        self.maxs.append(self._pending_max)
        self._pending_min, self._pending_max, self._pending_frames = math.inf, -math.inf, 0

    def _halve(self) -> None:
        import numpy as np

        even = len(self.mins) // 2 * 2
        mins = np.asarray(self.mins[:even], np.float32).reshape(-1, 2).min(axis=1)
        maxs = np.asarray(self.maxs[:even], np.float32).reshape(-1, 2).max(axis=1)
        # an odd last column covers only half a new one: fold it into the pending one
        if even < len(self.mins):
            self._pending_min = min(self._pending_min, self.mins[-1])
            self._pending_max = max(self._pending_max, self.maxs[-1])
            self._pending_frames += self.frames_per_column
        self.mins = array("f", mins.tolist())
        self.maxs = array("f", maxs.tolist())
        self.frames_per_column *= 2

    def finish(
        self, sample_rate: int
    ) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
        """(column centre times, minima, maxima)."""
        if self._pending_frames:
            self.mins.append(self._pending_min)
            self.maxs.append(self._pending_max)
        width_s = self.frames_per_column / sample_rate
        times = tuple((index + 0.5) * width_s for index in range(len(self.mins)))
        return times, tuple(self.mins), tuple(self.maxs)


class _Scanner:
    """Per-block statistics: clipped samples, sample peak, silent 50 ms windows, envelope."""

    def __init__(self, sample_rate: int, channels: int, want_envelope: bool) -> None:
        import numpy as np

        self.sample_rate = sample_rate
        self.channels = channels
        self.frames = 0
        self.clipped = 0
        self.peak = 0.0
        self.window_frames = max(1, round(SILENCE_WINDOW_S * sample_rate))
        self._threshold_power = 10.0 ** (SILENCE_DBFS / 10.0)
        self._carry = np.zeros((0, channels), np.float32)
        self._windows_done = 0
        self._run_start: int | None = None
        self.best_start_frame = 0
        self.best_frames = 0
        self.envelope = _Envelope() if want_envelope else None

    def feed(self, block: Block) -> None:
        import numpy as np

        self.frames += len(block)
        magnitude = np.abs(block)
        self.clipped += int(np.count_nonzero(magnitude >= CLIP_LEVEL))
        if len(block):
            self.peak = max(self.peak, float(magnitude.max()))
        if self.envelope is not None:
            # column by column: numpy reductions along a short last axis are very slow
            lowest, highest = block[:, 0].copy(), block[:, 0].copy()
            for channel in range(1, self.channels):
                np.minimum(lowest, block[:, channel], out=lowest)
                np.maximum(highest, block[:, channel], out=highest)
            self.envelope.feed(lowest, highest)
        pending = np.concatenate([self._carry, block]) if len(self._carry) else block
        whole = len(pending) // self.window_frames
        if whole:
            windows = pending[: whole * self.window_frames].reshape(
                whole, self.window_frames * self.channels
            )
            power = np.mean(np.square(windows, dtype=np.float64), axis=1)
            self._track_silence(power < self._threshold_power)
        self._carry = pending[whole * self.window_frames :].copy()

    def _track_silence(self, silent: npt.NDArray[np.bool_]) -> None:
        import numpy as np

        # run boundaries: where the silent flag flips, the state before this block first
        flags = np.concatenate([[self._run_start is not None], silent])
        for edge in np.flatnonzero(flags[1:] != flags[:-1]):
            window = self._windows_done + int(edge)
            if flags[edge + 1]:
                self._run_start = window
            elif self._run_start is not None:
                self._close_run(self._run_start * self.window_frames, window * self.window_frames)
                self._run_start = None
        self._windows_done += len(silent)

    def _close_run(self, start_frame: int, end_frame: int) -> None:
        if end_frame - start_frame > self.best_frames:
            self.best_frames = end_frame - start_frame
            self.best_start_frame = start_frame

    def finish(self) -> None:
        """Account for the last partial window and a run still open at the end."""
        import numpy as np

        end_frame = self._windows_done * self.window_frames
        if len(self._carry):
            power = float(np.mean(np.square(self._carry, dtype=np.float64)))
            if power < self._threshold_power:
                if self._run_start is None:
                    self._run_start = self._windows_done
                end_frame += len(self._carry)
            elif self._run_start is not None:
                self._close_run(self._run_start * self.window_frames, end_frame)
                self._run_start = None
        if self._run_start is not None:
            self._close_run(self._run_start * self.window_frames, end_frame)
            self._run_start = None


def _analyse(
    path: Path,
    codec: str,
    chapters: tuple[Chapter, ...],
    plot: Path | None,
    *,
    want_curves: bool,
    expected_s: float,
    progress: ProgressCallback | None,
    quick: bool = False,
) -> tuple[Inspection, Curves]:
    """Decode once through ``ebur128`` (loudness on stderr) into a WAV pipe (samples)."""
    scanner, meter, returncode = _decode(
        path, want_curves=want_curves, expected_s=expected_s, progress=progress,
        quick=quick,
    )
    stderr = meter.text()
    if returncode != 0:
        raise AudioError(f"{path}: cannot decode: {_cause(stderr)}")
    if scanner is None or scanner.frames == 0:
        raise AudioError(
            f"{path}: cannot decode: no audio samples in it "
            "(probable cause: empty or truncated file)"
        )
    scanner.finish()
    if progress is not None:
        progress(scanner.frames / scanner.sample_rate, expected_s)
    try:
        loudness = parse_ebur128_summary(stderr)
    except AudioError as error:
        raise AudioError(f"{path}: {error}") from None
    info = _inspection(path, codec, chapters, plot, scanner, loudness)
    return info, _curves(scanner, meter)


def _decode(
    path: Path,
    *,
    want_curves: bool,
    expected_s: float,
    progress: ProgressCallback | None,
    quick: bool = False,
) -> tuple[_Scanner | None, _MeterLog, int]:
    """Run the decoder, scanning its samples while its meter log is read; its exit status.

    The scanner is None when no WAV header came through (ffmpeg failed to decode).
    ``quick``: no true peak (its 4x oversampling is half the time), and the samples that come
    through are resampled to ``ENVELOPE_RATE`` (the scan's figures are then of those).
    """
    meter_filter = "ebur128=framelog=info" if quick else "ebur128=peak=true:framelog=info"
    mix = ("-ar", str(ENVELOPE_RATE)) if quick else ()
    command = [
        ffmpeg_exe(),
        *("-hide_banner", "-nostdin", "-nostats", "-i", str(path), "-map", "0:a:0"),
        *("-af", meter_filter, *mix, "-map_metadata", "-1"),
        *("-fflags", "+bitexact", "-c:a", "pcm_f32le", "-f", "wav", "pipe:1"),
    ]
    process = start_ffmpeg(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    meter = _MeterLog(process.stderr, keep_curve=want_curves)
    meter.start()
    scanner: _Scanner | None = None
    with killed_on_error(process, meter):
        header = _read_wav_header(process.stdout)
        if header is not None:
            scanner = _Scanner(*header, want_envelope=want_curves)
            _scan(process.stdout, scanner, expected_s, progress)
        process.stdout.read()
    return scanner, meter, process.wait()


def _scan(
    stream: IO[bytes], scanner: _Scanner, expected_s: float, progress: ProgressCallback | None
) -> None:
    """Feed the float samples of ``stream`` to ``scanner`` block by block, every 10 s reported."""
    import numpy as np

    sample_rate, channels = scanner.sample_rate, scanner.channels
    block_bytes = BLOCK_FRAMES * channels * 4
    next_report_s = 0.0
    while True:
        data = _read_exact(stream, block_bytes)
        usable = len(data) - len(data) % (channels * 4)
        if usable:
            scanner.feed(np.frombuffer(data[:usable], "<f4").reshape(-1, channels))
        if progress is not None and scanner.frames / sample_rate >= next_report_s:
            progress(scanner.frames / sample_rate, expected_s)
            next_report_s += 10.0
        if len(data) < block_bytes:
            break


def _inspection(
    path: Path,
    codec: str,
    chapters: tuple[Chapter, ...],
    plot: Path | None,
    scanner: _Scanner,
    loudness: tuple[float, float, float | None],
) -> Inspection:
    """The facts a finished scan and the ``ebur128`` summary give."""
    integrated, lra, true_peak = loudness
    rate = scanner.sample_rate
    return Inspection(
        path=path,
        codec=codec,
        chapters=chapters,
        plot=plot,
        sample_rate=rate,
        channels=scanner.channels,
        duration_s=scanner.frames / rate,
        integrated_lufs=integrated,
        loudness_range_lu=lra,
        true_peak_dbtp=true_peak if true_peak is not None else -math.inf,
        sample_peak_dbfs=20.0 * math.log10(scanner.peak) if scanner.peak > 0 else -math.inf,
        clipped_samples=scanner.clipped,
        longest_silence_s=scanner.best_frames / rate,
        longest_silence_start_s=scanner.best_start_frame / rate,
    )


def _curves(scanner: _Scanner, meter: _MeterLog) -> Curves:
    """The waveform envelope (empty unless kept) and the loudness over time."""
    times: tuple[float, ...] = ()
    minima: tuple[float, ...] = ()
    maxima: tuple[float, ...] = ()
    if scanner.envelope is not None:
        times, minima, maxima = scanner.envelope.finish(scanner.sample_rate)
    return Curves(
        envelope_times_s=times,
        envelope_min=minima,
        envelope_max=maxima,
        meter_times_s=tuple(meter.times_s),
        momentary_lufs=tuple(meter.momentary_lufs),
        short_term_lufs=tuple(meter.short_term_lufs),
    )


# --- the plot -----------------------------------------------------------------------------

PLOT_FLOOR_LUFS = -70.0
"""Short-term loudness under this (silence) is drawn at this floor."""
PLOT_POINTS = 4000
"""At most this many short-term loudness points are drawn (maxima per bucket)."""


PLOT_FORMATS = (
    "png", "svg", "svgz", "pdf", "jpg", "jpeg", "webp", "tif", "tiff", "gif", "eps", "ps",
)  # fmt: skip
"""Image formats the plot can be written in, by file extension (matplotlib's writers)."""


def _plot_format(target: Path) -> str:
    """The image format ``target``'s extension names; UsageError for an unknown one, or for
    a folder that does not exist (it is not created on a guess: a typo would hide the plot).
    """
    from pipeline.core.fileio import display_path

    shown = display_path(target)
    extension = target.suffix.lower().lstrip(".")
    if extension not in PLOT_FORMATS:
        given = f"extension '.{extension}'" if extension else "no extension"
        raise UsageError(
            f"{shown}: error: --plot: {given}; name the image format with one of: "
            + ", ".join(f".{name}" for name in PLOT_FORMATS)
        )
    folder = target.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(
            f"{shown}: error: --plot: the folder '{display_path(folder)}' {what}; create it first"
        )
    return "jpeg" if extension == "jpg" else extension


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PipelineError(f"the plot needs matplotlib: {PLOT_INSTALL_HINT}") from None


def _meter_curve(
    times_s: tuple[float, ...], values: tuple[float, ...], window_s: float
) -> tuple[list[float], list[float]]:
    """Points to draw: NaN until the meter's window is full, silence at the floor, and at most
    ``PLOT_POINTS`` points (the loudest of each bucket, at the bucket's middle)."""
    import numpy as np

    times = np.asarray(times_s, np.float64)
    # ebur128 logs "nan" for some silent windows (rounding below zero energy): silence too
    curve = np.nan_to_num(np.asarray(values, np.float64), nan=PLOT_FLOOR_LUFS)
    curve = np.maximum(curve, PLOT_FLOOR_LUFS)
    curve[times < window_s - 0.05] = np.nan
    if len(curve) > PLOT_POINTS:
        size = math.ceil(len(curve) / PLOT_POINTS)
        count = len(curve) // size * size
        curve = np.fmax.reduce(curve[:count].reshape(-1, size), axis=1)
        times = times[:count].reshape(-1, size).mean(axis=1)
    return times.tolist(), curve.tolist()


_TICK_STEPS_S = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600)


def _tick_step_s(length_s: float) -> float:
    """A round time step giving at most 12 ticks."""
    return next((step for step in _TICK_STEPS_S if length_s / step <= 12), 3600.0 * 2)


def _clock_label(seconds: float, _position: object = None) -> str:
    """``m:ss`` or ``h:mm:ss`` for the time axis (tenths when a tick is not on a second)."""
    tenths = max(0, round(seconds * 10))
    minutes, tenth_seconds = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    secs = (
        f"{tenth_seconds // 10:02d}" if tenth_seconds % 10 == 0 else f"{tenth_seconds / 10:04.1f}"
    )
    return f"{hours}:{minutes:02d}:{secs}" if hours else f"{minutes}:{secs}"


def _write_plot(target: Path, info: Inspection, curves: Curves) -> None:
    """Waveform envelope over short-term loudness, chapter marks on both; in the format the
    extension names, atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    from pipeline.core.fileio import atomic_writer

    figure = Figure(figsize=(12, 6), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    wave, loud = figure.subplots(2, 1, sharex=True, height_ratios=(1, 1.2))
    end_s = max(info.duration_s, 1e-3)

    wave.fill_between(
        curves.envelope_times_s,
        curves.envelope_min,
        curves.envelope_max,
        color="#3b6ea5",
        linewidth=0.3,
    )
    wave.axhline(CLIP_LEVEL, color="#c0392b", linewidth=0.6, linestyle=":")
    wave.axhline(-CLIP_LEVEL, color="#c0392b", linewidth=0.6, linestyle=":")
    wave.set_ylim(-1.05, 1.05)
    wave.set_ylabel("amplitude")
    wave.set_title(
        f"{info.path.name}  ·  {format_clock(info.duration_s)}  ·  "
        f"{_lufs_text(info.integrated_lufs).replace(' integrated', '')}  ·  "
        f"LRA {info.loudness_range_lu:.1f} LU  ·  "
        f"true peak {_db_text(info.true_peak_dbtp, 'dBTP')}  ·  "
        f"clipped {info.clipped_samples}",
        fontsize=10,
    )

    times, momentary = _meter_curve(curves.meter_times_s, curves.momentary_lufs, 0.4)
    loud.plot(times, momentary, color="#9cc5a1", linewidth=0.5, label="momentary (400 ms)")
    times, short_term = _meter_curve(curves.meter_times_s, curves.short_term_lufs, 3.0)
    loud.plot(times, short_term, color="#2d7d46", linewidth=1.1, label="short-term (3 s)")
    finite = [value for value in short_term + momentary if math.isfinite(value)]
    top = max([*finite, info.integrated_lufs, -20.0]) + 3.0
    bottom = max(PLOT_FLOOR_LUFS, 5.0 * math.floor((min([*finite, top - 20.0]) - 6.0) / 5.0))
    if info.integrated_lufs > SILENCE_LUFS:
        loud.axhline(
            info.integrated_lufs,
            color="#8e44ad",
            linewidth=1.0,
            linestyle="--",
            label=f"integrated {info.integrated_lufs:.1f} LUFS",
        )
    loud.set_ylim(bottom, top)
    loud.set_ylabel("loudness (LUFS)")
    loud.set_xlabel("time")
    loud.legend(loc="lower right", fontsize=8)

    for chapter in info.chapters:
        for axes in (wave, loud):
            axes.axvline(chapter.start_s, color="#e67e22", linewidth=0.9)
        wave.annotate(
            chapter.title,
            xy=(chapter.start_s, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            rotation=90,
            va="top",
            ha="left",
            fontsize=8,
            color="#a04000",
            annotation_clip=True,
        )
    for axes in (wave, loud):
        axes.set_xlim(0.0, end_s)
        axes.grid(True, linewidth=0.3, alpha=0.5)
    loud.xaxis.set_major_locator(MultipleLocator(_tick_step_s(end_s)))
    loud.xaxis.set_major_formatter(FuncFormatter(_clock_label))
    try:
        with atomic_writer(target) as stream:
            figure.savefig(stream, format=_plot_format(target))
    except OSError as error:
        raise PipelineError(f"{target}: error: cannot write: {error.strerror or error}") from None
