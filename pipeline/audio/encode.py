"""Encoding every format of a track in one ffmpeg process, then tagging with mutagen.

The render feeds mastered float32 blocks to an :class:`Encoder`, which runs ONE ffmpeg
reading raw PCM on stdin and writing each requested format to a hidden temporary name in
the output folder. After ``close()`` the caller tags the temporaries (:func:`tag_file`),
measures them, then ``commit()`` renames them into place; on any error ``abort()`` (also
called by ``__exit__``) kills ffmpeg and removes them, so no truncated file ever sits
under a final name.

Chapters: ID3 CHAP + CTOC for mp3 (and the ID3 chunk of wav), Vorbis comments
``CHAPTER001=00:00:00.000`` / ``CHAPTER001NAME=...`` for ogg, opus and flac, and for m4a
the MP4 chapters ffmpeg writes at encode time from an ffmetadata input (mutagen cannot
write MP4 chapters), which is why the Encoder takes the tags too.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import AudioError
from pipeline.core.ffmpeg import PipeDrain, ffmpeg_exe, widen_pipe

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from pipeline.audio.master import Loudness

log = logging.getLogger(__name__)

FORMATS = ("mp3", "m4a", "ogg", "opus", "flac", "wav")
"""Every format the encoder writes, by file extension."""
LOSSY_FORMATS = frozenset({"mp3", "m4a", "ogg", "opus"})
MUTAGEN_RANGE = ">=1.47,<1.49"
"""The mutagen releases :func:`save_in_chapter_order` is known to work with (pyproject.toml's)."""

_CODEC_ARGS: dict[str, list[str]] = {
    "mp3": ["-c:a", "libmp3lame", "-f", "mp3"],
    "m4a": ["-c:a", "aac", "-movflags", "+faststart", "-f", "ipod"],
    "ogg": ["-c:a", "libvorbis", "-f", "ogg"],
    "opus": ["-c:a", "libopus", "-ar", "48000", "-f", "opus"],
    "flac": ["-c:a", "flac", "-sample_fmt", "s16", "-f", "flac"],
    "wav": ["-c:a", "pcm_s16le", "-f", "wav"],
}
_BITRATE = re.compile(r"^[1-9][0-9]*k?$")
_TEMP = re.compile(r"^\..+\.tmp-(\d+)$")
_PREFIX = re.compile(r"\[[^\]]*@ 0x[0-9a-f]+\]\s*")


@dataclass(frozen=True)
class TrackTags:
    """What every encoded file is tagged with."""

    title: str
    """Track title."""
    artist: str = ""
    """The script's author."""
    album: str = ""
    """The script's category."""
    genre: str = "Meditation"
    """Always ``Meditation`` for this product."""
    comment: str = ""
    """The script's description."""
    chapters: Sequence[tuple[str, float]] = ()
    """(title, start_s) in time order."""
    duration_s: float = 0.0
    """Track length: the end of the last chapter (0: take it from the file)."""


@functools.lru_cache(maxsize=32)
def codec_gain_db(fmt: str, bitrate: str, sample_rate: int, channels: int) -> float:
    """The gain that undoes a lossy encoder's level change, measured once per process.

    libmp3lame at 128k and below scales its input by about -0.44 dB, whatever the content;
    without this the encoded file would miss the loudness target. Measured on 4 s of tones
    across the speech band encoded exactly as the track will be; rounded to 0.01 dB.
    """
    if fmt not in LOSSY_FORMATS:
        return 0.0
    import numpy as np

    from pipeline.core.ffmpeg import decode, run_ffmpeg

    source = "aevalsrc=0.05*(sin(2*PI*220*t)+sin(2*PI*530*t)+sin(2*PI*1210*t)+sin(2*PI*2470*t)):d=4"
    layout = "stereo" if channels == 2 else "mono"
    try:
        with tempfile.TemporaryDirectory(prefix="meditate-codec-") as folder:
            reference = Path(folder) / "reference.wav"
            encoded = Path(folder) / f"encoded.{fmt}"
            run_ffmpeg(
                ["-f", "lavfi", "-i", f"{source},aformat=channel_layouts={layout}",
                 "-ar", str(sample_rate), "-c:a", "pcm_f32le", "-y", str(reference)]
            )  # fmt: skip
            run_ffmpeg(
                ["-i", str(reference), "-b:a", bitrate, "-fflags", "+bitexact",
                 "-flags:a", "+bitexact", *_CODEC_ARGS[fmt], "-y", str(encoded)]
            )  # fmt: skip
            before = decode(reference, sample_rate, channels).astype(np.float64)
            after = decode(encoded, sample_rate, channels).astype(np.float64)
    except AudioError as error:  # the real encode will report it, naming the track
        log.debug("codec gain of %s at %s not measured: %s", fmt, bitrate, error)
        return 0.0
    edge = sample_rate // 2
    frames = min(len(before), len(after)) - edge
    ratio = np.mean(before[edge:frames] ** 2) / max(np.mean(after[edge:frames] ** 2), 1e-20)
    return round(float(10.0 * np.log10(ratio)), 2)


def temporary_path(out_dir: Path, track_id: str, fmt: str) -> Path:
    """The hidden name a format is encoded to before it is renamed into place."""
    return out_dir / f".{track_id}.{fmt}.tmp-{os.getpid()}"


def remove_stale_temporaries(out_dir: Path) -> list[Path]:
    """Delete temporaries left in ``out_dir`` by killed processes (their pid is gone)."""
    removed: list[Path] = []
    if not out_dir.is_dir():
        return removed
    for path in out_dir.iterdir():
        match = _TEMP.match(path.name)
        if not match or int(match.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(match.group(1)), 0)
            continue  # that process is still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            pass
        except OSError as error:  # a read-only folder: not this render's problem to report
            log.debug("cannot remove %s: %s", path, error)
    return removed


def _remove_quietly(path: Path) -> None:
    """Remove a temporary in clean-up: a failure there must never hide the error being
    handled, so it is only logged, and only if the file is really there (a read-only folder
    refuses even to remove a file it does not hold).
    """
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as error:
        if os.path.lexists(path):
            log.warning("cannot remove %s: %s", path, error.strerror or error)


def _tee_escape(path: str) -> str:
    """A file name as one output of ffmpeg's tee muxer (its separators escaped)."""
    return re.sub(r"([\\|\[\]:=])", r"\\\1", path)


def _escape_ffmetadata(value: str) -> str:
    return re.sub(r"([=;#\\\n])", r"\\\1", value)


def ffmetadata(tags: TrackTags) -> str:
    """The tags and chapters in ffmpeg's ffmetadata text format (times in ms)."""
    lines = [";FFMETADATA1"]
    for key, value in (
        ("title", tags.title),
        ("artist", tags.artist),
        ("album", tags.album),
        ("genre", tags.genre),
        ("comment", tags.comment),
    ):
        if value:
            lines.append(f"{key}={_escape_ffmetadata(value)}")
    for (title, start_ms), end_ms in _chapter_spans(tags):
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start_ms}", f"END={end_ms}"]
        lines.append(f"title={_escape_ffmetadata(title)}")
    return "\n".join(lines) + "\n"


def _chapter_spans(tags: TrackTags, length_s: float = 0.0) -> list[tuple[tuple[str, int], int]]:
    """((title, start_ms), end_ms) per chapter; each ends where the next starts."""
    starts = [(title, round(start_s * 1000)) for title, start_s in tags.chapters]
    end_ms = round(max(tags.duration_s or length_s, 0.0) * 1000)
    spans = []
    for index, (title, start_ms) in enumerate(starts):
        end = starts[index + 1][1] if index + 1 < len(starts) else max(end_ms, start_ms)
        spans.append(((title, start_ms), end))
    return spans


def _is_disk_full(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


class Encoder:
    """One ffmpeg process encoding a PCM stream to several formats at once.

    Use as a context manager: ``write`` blocks, ``close`` (checks ffmpeg's exit status),
    tag and measure ``temp_paths``, then ``commit``. Leaving the ``with`` block without a
    commit (or with an exception) aborts: temporaries are removed, final names untouched.
    """

    def __init__(
        self,
        out_dir: Path,
        track_id: str,
        formats: Sequence[str],
        *,
        sample_rate: int = 44100,
        channels: int = 2,
        bitrate: str = "128k",
        tags: TrackTags | None = None,
        measure: bool = False,
    ) -> None:
        unknown = [fmt for fmt in formats if fmt not in FORMATS]
        if unknown or not formats:
            raise AudioError(
                f"unknown output format {', '.join(unknown) or '(none)'}: "
                f"expected some of {', '.join(FORMATS)}"
            )
        if not _BITRATE.match(bitrate):
            raise AudioError(
                f"invalid bitrate {bitrate!r}: expected a number of kbit/s like '128k'"
            )
        self.out_dir = Path(out_dir)
        self.track_id = track_id
        self.formats = tuple(dict.fromkeys(formats))
        self.sample_rate = sample_rate
        self.channels = channels
        self.bitrate = bitrate
        self.tags = tags
        self.measure = measure and self.formats[0] != "m4a"
        """Measure the first format's encoded audio while it is encoded (see ``loudness``); not
        m4a, whose chapters (written at encode time) ffmpeg's tee muxer would drop.
        """
        self.loudness: Loudness | None = None
        """EBU R128 figures of the first format's encoded packets, after ``close`` (``measure``)."""
        self.temp_paths = {fmt: temporary_path(self.out_dir, track_id, fmt) for fmt in self.formats}
        """Where each format is being written (tag and measure these before commit)."""
        self.final_paths = {fmt: self.out_dir / f"{track_id}.{fmt}" for fmt in self.formats}
        """Where ``commit`` puts each format."""
        self.frames_written = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._drain: PipeDrain | None = None
        self._meter: subprocess.Popen[bytes] | None = None
        self._meter_drain: PipeDrain | None = None
        self._metadata_path: Path | None = None
        self._closed = False
        self._committed = False

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> Encoder:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._committed:
            if exc_type is None:
                log.warning("encoder for %s left without commit: outputs discarded", self.track_id)
            self.abort()

    def command(self) -> list[str]:
        """The ffmpeg command: raw PCM input, optional ffmetadata input, one output per format."""
        command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"]
        command += ["-f", "f32le", "-ar", str(self.sample_rate), "-ac", str(self.channels)]
        command += ["-i", "pipe:0"]
        if self._metadata_path is not None:
            command += ["-f", "ffmetadata", "-i", str(self._metadata_path)]
        for fmt in self.formats:
            command += ["-map", "0:a"]
            if self._metadata_path is not None:
                command += ["-map_metadata", "1", "-map_chapters", "1"]
            else:
                command += ["-map_metadata", "-1", "-map_chapters", "-1"]
            if fmt in LOSSY_FORMATS:
                command += ["-b:a", self.bitrate]
                compensation_db = codec_gain_db(fmt, self.bitrate, self.sample_rate, self.channels)
                if compensation_db:
                    command += ["-filter:a", f"volume={compensation_db:.2f}dB"]
            command += ["-fflags", "+bitexact", "-flags:a", "+bitexact"]
            if self.measure and fmt == self.formats[0]:
                # the same packets go to the file and, in nut, to the meter on stdout
                codec, muxer = _CODEC_ARGS[fmt][:-2], _CODEC_ARGS[fmt][-1]
                options = ":movflags=+faststart" if fmt == "m4a" else ""
                target = _tee_escape(str(self.temp_paths[fmt]))
                command += [*codec, "-f", "tee", "-y"]
                command += [f"[f={muxer}{options}]{target}|[f=nut]pipe:1"]
            else:
                command += [*_CODEC_ARGS[fmt], "-y", str(self.temp_paths[fmt])]
        return command

    def meter_command(self) -> list[str]:
        """The ffmpeg measuring the first format's packets (nut on stdin) with ``ebur128``."""
        from pipeline.audio.master import ebur128_filter

        command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats"]
        command += ["-f", "nut", "-i", "pipe:0", "-map", "0:a:0"]
        command += ["-af", ebur128_filter(True, False), "-f", "null", "-"]
        return command

    def start(self) -> None:
        """Start ffmpeg (``__enter__`` does it)."""
        if self._process is not None:
            return
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if self.tags is not None:
                # beside the outputs, named like them: a killed run's copy is cleaned up too
                self._metadata_path = temporary_path(self.out_dir, self.track_id, "ffmetadata")
                self._metadata_path.write_text(ffmetadata(self.tags), encoding="utf-8")
        except OSError as error:
            self.abort()
            if _is_disk_full(error):
                raise AudioError(
                    f"disk full while encoding {self.final_paths[self.formats[0]]}"
                ) from None
            raise AudioError(f"cannot prepare encoding into {self.out_dir}: {error}") from None
        try:
            command = self.command()
        except AudioError:  # no ffmpeg: nothing may stay behind
            self.abort()
            raise
        output = subprocess.PIPE if self.measure else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C reaches us, not ffmpeg (see pipeline.core.ffmpeg)
            )
            if self.measure:
                assert self._process.stdout is not None
                self._meter = subprocess.Popen(
                    self.meter_command(),
                    stdin=self._process.stdout,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
                self._process.stdout.close()
        except OSError as error:
            self.abort()
            raise AudioError(f"cannot run ffmpeg ({command[0]}): {error}") from None
        assert self._process.stderr is not None and self._process.stdin is not None
        widen_pipe(self._process.stdin)
        self._drain = PipeDrain(self._process.stderr)
        self._drain.start()
        if self._meter is not None:
            assert self._meter.stderr is not None
            self._meter_drain = PipeDrain(self._meter.stderr)
            self._meter_drain.start()

    def write(self, block: npt.NDArray[np.float32]) -> None:
        """Encode one block of shape (frames, channels)."""
        import numpy as np

        if self._process is None:
            self.start()
        assert self._process is not None and self._process.stdin is not None
        if self._closed:
            raise RuntimeError("the encoder is closed")
        if block.ndim != 2 or block.shape[1] != self.channels:
            raise ValueError(
                f"expected blocks of shape (frames, {self.channels}), got {block.shape}"
            )
        data = np.ascontiguousarray(block, dtype="<f4")
        try:
            self._process.stdin.write(data.tobytes() if not data.flags.c_contiguous else data.data)
        except (BrokenPipeError, OSError):
            self._check_exit()
            self.abort()
            raise AudioError(
                f"encoding {self.track_id}: ffmpeg stopped reading its input"
            ) from None
        self.frames_written += len(data)

    def close(self) -> None:
        """End the input and wait for ffmpeg; raises AudioError (and aborts) if it failed."""
        if self._closed:
            return
        if self._process is None:
            self.start()
        assert self._process is not None and self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            self._process.stdin.close()
        self._check_exit()
        if self._meter is not None:
            self._read_meter()
        self._closed = True
        self._remove_metadata()

    def _read_meter(self) -> None:
        """Wait for the meter and keep its figures in ``loudness``."""
        import math

        from pipeline.audio.master import Loudness, parse_ebur128_summary

        assert self._meter is not None and self._meter_drain is not None
        returncode = self._meter.wait()
        stderr = self._meter_drain.text()
        if returncode != 0:
            self.abort()
            lines = [_PREFIX.sub("", line).strip() for line in stderr.splitlines() if line.strip()]
            raise AudioError(
                f"measuring {self.track_id}.{self.formats[0]} failed: ffmpeg: "
                f"{lines[-1] if lines else f'exit status {returncode}'}"
            )
        integrated, lra, peak = parse_ebur128_summary(stderr)
        self.loudness = Loudness(
            integrated,
            lra,
            peak if peak is not None else -math.inf,
            self.frames_written / self.sample_rate,
        )

    def commit(self) -> dict[str, Path]:
        """Rename every temporary into place (after ``close``); returns the final paths."""
        if not self._closed:
            self.close()
        for fmt in self.formats:
            os.replace(self.temp_paths[fmt], self.final_paths[fmt])
        self._committed = True
        return dict(self.final_paths)

    def release(self) -> dict[str, Path]:
        """Hand the finished temporaries to the caller, who renames them into place itself
        (with the files that go with them, see ``fileio.FileSet``); returns them by format.
        """
        if not self._closed:
            self.close()
        self._committed = True
        return dict(self.temp_paths)

    def abort(self) -> None:
        """Stop ffmpeg and remove every temporary; final names are left as they were."""
        for process in (self._process, self._meter):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        for drain in (self._drain, self._meter_drain):
            if drain is not None:
                drain.join(timeout=5)
        for path in self.temp_paths.values():
            _remove_quietly(path)
        self._remove_metadata()
        self._closed = True

    # --- internals -------------------------------------------------------------------------

    def _remove_metadata(self) -> None:
        if self._metadata_path is not None:
            path, self._metadata_path = self._metadata_path, None
            _remove_quietly(path)

    def _check_exit(self) -> None:
        """Wait for ffmpeg; on a non-zero exit, abort and raise a clear AudioError."""
        assert self._process is not None and self._drain is not None
        returncode = self._process.wait()
        if returncode == 0:
            return
        stderr = self._drain.text()
        self.abort()
        if "No space left on device" in stderr or "Disk quota exceeded" in stderr:
            raise AudioError(f"disk full while encoding {self._failed_output(stderr)}")
        lines = [_PREFIX.sub("", line).strip() for line in stderr.splitlines()]
        lines = [line for line in lines if line]
        detail = lines[0] if lines else f"exit status {returncode}"
        raise AudioError(
            f"encoding {self.track_id} ({', '.join(self.formats)}) failed: ffmpeg: {detail}"
        )

    def _failed_output(self, stderr: str) -> Path:
        """The final name of the output ffmpeg could not write (first one if unclear)."""
        for fmt in self.formats:
            if self.temp_paths[fmt].name in stderr:
                return self.final_paths[fmt]
        match = re.search(r"out#(\d+)", stderr)
        if match and int(match.group(1)) < len(self.formats):
            return self.final_paths[self.formats[int(match.group(1))]]
        return self.final_paths[self.formats[0]]


# --- tags -------------------------------------------------------------------------------------


def _untyped(module: Any) -> Any:
    """A mutagen module seen as untyped (its constructors carry no annotations)."""
    return module


def _clock(seconds_ms: int) -> str:
    hours, rest = divmod(seconds_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _reorder_chapter_frames(data: bytes, v2_version: int) -> bytes:
    """Put ID3 CHAP frames in time order (mutagen sorts frames by size; ffmpeg reads file order)."""
    frames: list[bytes] = []
    offset = 0
    while offset + 10 <= len(data) and data[offset] != 0:
        raw = data[offset + 4 : offset + 8]
        if v2_version == 4:
            size = (raw[0] << 21) | (raw[1] << 14) | (raw[2] << 7) | raw[3]
        else:
            size = int.from_bytes(raw, "big")
        frames.append(data[offset : offset + 10 + size])
        offset += 10 + size
    if offset != len(data):
        return data  # not what we expected: leave it as mutagen made it

    def start_ms(frame: bytes) -> int:
        body = frame[10:]
        end = body.index(b"\0")
        return int.from_bytes(body[end + 1 : end + 5], "big")

    chapters = iter(sorted((f for f in frames if f[:4] == b"CHAP"), key=start_ms))
    return b"".join(next(chapters) if f[:4] == b"CHAP" else f for f in frames)


def save_in_chapter_order(tags: Any, save: Callable[[], None]) -> None:
    """Save an ID3 object (mp3's or wav's) with its CHAP frames in time order.

    The one place mutagen internals are used: mutagen has no public hook for frame order, so
    the object's class becomes a subclass overriding the private ``ID3._write(config)`` (frame
    bytes before padding). A mutagen that no longer calls it is an AudioError, not chapters
    silently in size order.
    """
    import mutagen

    called: list[bool] = []

    class ChapterOrderedID3(type(tags)):  # type: ignore[misc]
        def _write(self, config: Any) -> bytearray:
            data = super()._write(config)
            called.append(True)
            return bytearray(_reorder_chapter_frames(bytes(data), config.v2_version))

    tags.__class__ = ChapterOrderedID3
    save()
    if not called:
        raise AudioError(
            f"mutagen {mutagen.version_string} no longer writes ID3 frames through ID3._write, "
            f"which meditate overrides to put chapters in time order; meditate works with "
            f"mutagen {MUTAGEN_RANGE}"
        )


def _fill_id3(tags: Any, track: TrackTags, length_s: float) -> None:
    import mutagen.id3

    id3: Any = mutagen.id3  # mutagen's frame constructors are untyped
    CHAP, COMM, CTOC, TALB, TCON, TIT2, TPE1 = (
        id3.CHAP,
        id3.COMM,
        id3.CTOC,
        id3.TALB,
        id3.TCON,
        id3.TIT2,
        id3.TPE1,
    )
    tags.clear()
    for frame, value in ((TIT2, track.title), (TPE1, track.artist), (TALB, track.album)):
        if value:
            tags.add(frame(encoding=3, text=[value]))
    if track.genre:
        tags.add(TCON(encoding=3, text=[track.genre]))
    if track.comment:
        tags.add(COMM(encoding=3, lang="eng", desc="", text=[track.comment]))
    spans = _chapter_spans(track, length_s)
    ids = [f"chp{index:03d}" for index in range(len(spans))]
    for element_id, ((title, start_ms), end_ms) in zip(ids, spans, strict=True):
        tags.add(
            CHAP(
                element_id=element_id,
                start_time=start_ms,
                end_time=end_ms,
                start_offset=0xFFFFFFFF,
                end_offset=0xFFFFFFFF,
                sub_frames=[TIT2(encoding=3, text=[title])],
            )
        )
    if ids:
        tags.add(
            CTOC(
                element_id="toc",
                flags=id3.CTOCFlags.TOP_LEVEL | id3.CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[TIT2(encoding=3, text=[track.title or "Chapters"])],
            )
        )


def _tag_mp3(path: Path, track: TrackTags) -> None:
    import mutagen.id3
    import mutagen.mp3

    length_s = _untyped(mutagen.mp3).MP3(path).info.length
    tags = _untyped(mutagen.id3).ID3()
    _fill_id3(tags, track, length_s)
    save_in_chapter_order(tags, lambda: tags.save(path, v2_version=3))


def _tag_wav(path: Path, track: TrackTags) -> None:
    import mutagen.wave

    audio = _untyped(mutagen.wave).WAVE(path)
    if audio.tags is None:
        audio.add_tags()
    _fill_id3(audio.tags, track, audio.info.length)
    save_in_chapter_order(audio.tags, lambda: audio.save(v2_version=3))


def _tag_vorbis(path: Path, fmt: str, track: TrackTags) -> None:
    import mutagen.flac
    import mutagen.oggopus
    import mutagen.oggvorbis

    kind = {
        "ogg": _untyped(mutagen.oggvorbis).OggVorbis,
        "opus": _untyped(mutagen.oggopus).OggOpus,
        "flac": _untyped(mutagen.flac).FLAC,
    }[fmt]
    audio = kind(path)
    if audio.tags is None:
        audio.add_tags()
    comments = audio.tags
    assert comments is not None
    comments.clear()
    for key, value in (
        ("TITLE", track.title),
        ("ARTIST", track.artist),
        ("ALBUM", track.album),
        ("GENRE", track.genre),
        ("COMMENT", track.comment),
    ):
        if value:
            comments[key] = [value]
    for index, ((title, start_ms), _end) in enumerate(_chapter_spans(track), start=1):
        comments[f"CHAPTER{index:03d}"] = [_clock(start_ms)]
        comments[f"CHAPTER{index:03d}NAME"] = [title]
    audio.save()


def _tag_m4a(path: Path, track: TrackTags) -> None:
    import mutagen.mp4

    audio = _untyped(mutagen.mp4).MP4(path)
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    assert tags is not None
    for key in ("\xa9nam", "\xa9ART", "\xa9alb", "\xa9gen", "\xa9cmt", "\xa9too"):
        tags.pop(key, None)
    for key, value in (
        ("\xa9nam", track.title),
        ("\xa9ART", track.artist),
        ("\xa9alb", track.album),
        ("\xa9gen", track.genre),
        ("\xa9cmt", track.comment),
    ):
        if value:
            tags[key] = [value]
    written = [chapter.title for chapter in (audio.chapters or [])]
    wanted = [title for title, _start in track.chapters]
    if written != wanted:
        raise AudioError(
            f"{path}: m4a chapters are written at encode time: give the same tags to the Encoder"
        )
    audio.save()


def tag_file(path: Path, fmt: str, tags: TrackTags) -> None:
    """Write title, artist, album, genre, comment and chapters (in time order) with mutagen."""
    from mutagen import MutagenError

    if fmt not in FORMATS:
        raise AudioError(f"cannot tag {path}: unknown format {fmt!r}")
    if any(b[1] < a[1] for a, b in zip(tags.chapters, tags.chapters[1:], strict=False)):
        raise AudioError(f"cannot tag {path}: chapters are not in time order")
    try:
        if fmt == "mp3":
            _tag_mp3(path, tags)
        elif fmt == "wav":
            _tag_wav(path, tags)
        elif fmt == "m4a":
            _tag_m4a(path, tags)
        else:
            _tag_vorbis(path, fmt, tags)
    except (MutagenError, OSError) as error:
        if _is_disk_full(error):
            raise AudioError(f"disk full while tagging {path}") from None
        raise AudioError(f"cannot tag {path}: {error}") from None
