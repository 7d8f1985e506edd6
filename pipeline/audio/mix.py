"""Streaming mixer: the timeline becomes float32 blocks, in constant memory.

Speech clips, a looping bed (equal-power loop crossfade, fades, ducking under speech) and
one-shots are summed block by block. Every gain is a function of the absolute frame index, so
the output is bit-identical whatever the block size, and no step holds the whole track.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from pipeline.core.errors import AudioError
from pipeline.plan.timeline import SoundCue, SpeechCue, Timeline

logger = logging.getLogger(__name__)

Samples = npt.NDArray[np.float32]
Gains = npt.NDArray[np.float64]
_C = TypeVar("_C", SpeechCue, SoundCue)
SpeechSource = Callable[[SpeechCue], npt.NDArray[np.floating]]
"""A speech cue's conditioned clip: mono 1-D float32, its first sample the speech onset."""
AssetSource = Callable[[str], tuple[npt.NDArray[np.floating], float]]
"""An asset's audio ``(frames, channels)`` float32 and its catalog ``level_db``."""

DEFAULT_BLOCK_FRAMES = 65536
LOOP_CROSSFADE_S = 2.0
"""Equal-power crossfade where the bed wraps around."""
DUCK_ATTACK_S = 0.3
"""The bed is fully down when speech starts; it starts falling this long before."""
DUCK_RELEASE_S = 1.0
"""The bed comes back up over this long after speech ends; shorter gaps stay ducked."""
ONE_SHOT_CUT_FADE_S = 1.0
"""Fade of a one-shot cut by the end of an excerpt (a whole track lets every sound ring out)."""
EDGE_FADE_S = 0.01
"""Fade at the very start and end of the track, so it never starts or stops on a click."""


@dataclass(frozen=True)
class Ramp:
    """A raised-cosine ramp between two absolute frames: 0 at ``start``, 1 at ``end``."""

    start: int
    """First frame of the ramp (value 0)."""
    end: int
    """Frame where the ramp reaches 1."""


@dataclass(frozen=True)
class DuckSpan:
    """One stretch of ducking: down over ``attack``, held, back up over ``release``."""

    attack: Ramp
    """The bed goes down; fully down at ``attack.end`` (speech start)."""
    release: Ramp
    """The bed comes back up; starts at ``release.start`` (speech end)."""


def duck_spans(timeline: Timeline, sample_rate: int) -> tuple[DuckSpan, ...]:
    """Where the bed ducks: speech intervals with gaps under ``DUCK_RELEASE_S`` merged. Pure."""
    intervals = sorted((cue.start_s, cue.start_s + cue.length_s) for cue in timeline.speech)
    merged: list[list[float]] = []
    for start_s, end_s in intervals:
        if merged and start_s - merged[-1][1] < DUCK_RELEASE_S:
            merged[-1][1] = max(merged[-1][1], end_s)
        else:
            merged.append([start_s, end_s])
    return tuple(
        DuckSpan(
            attack=Ramp(_frame(start_s - DUCK_ATTACK_S, sample_rate), _frame(start_s, sample_rate)),
            release=Ramp(_frame(end_s, sample_rate), _frame(end_s + DUCK_RELEASE_S, sample_rate)),
        )
        for start_s, end_s in merged
    )


def track_frames(timeline: Timeline, sample_rate: int) -> int:
    """Frames of the mixed track: ``round(length_s * sample_rate)``."""
    return _frame(timeline.length_s, sample_rate)








def mix(
    timeline: Timeline,
    *,
    speech_clip: SpeechSource,
    sound: AssetSource,
    bed: AssetSource | None,
    sample_rate: int,
    channels: int,
    block_frames: int = DEFAULT_BLOCK_FRAMES,
    gain_db: float = 0.0,
) -> Iterator[Samples]:
    """Yield the mixed track as float32 blocks ``(frames, channels)``.

    The blocks cover exactly ``track_frames(timeline, sample_rate)`` frames; all but the last
    have ``block_frames`` frames. Speech clips are fetched when a block first reaches them and
    dropped once passed; one-shot assets are fetched once per name. ``gain_db`` (the mastering
    gain) applies to the sum. Deterministic, and independent of ``block_frames``.

    The bed is loaded (and a bad one raises ``AudioError``) by this call, before any block.
    """
    if block_frames <= 0 or sample_rate <= 0 or channels <= 0:
        raise ValueError("block_frames, sample_rate and channels must be positive")
    mixer = _Mixer(timeline, speech_clip, sound, bed, sample_rate, channels, gain_db)
    logger.debug(
        "mixing %d frames: %d speech clips, %d one-shots, %d duck spans, bed %s",
        mixer.total,
        len(mixer.speech_cues),
        len(mixer.sound_cues),
        len(mixer.spans),
        "yes" if mixer.bed is not None else "no",
    )
    return _blocks(mixer, block_frames)


def _blocks(mixer: _Mixer, block_frames: int) -> Iterator[Samples]:
    """The mixer's blocks, in order."""
    total = mixer.total
    for start in range(0, total, block_frames):
        yield mixer.block(start, min(total, start + block_frames))


def _frame(time_s: float, sample_rate: int) -> int:
    """The frame at ``time_s``."""
    return round(time_s * sample_rate)


def _db(gain_db: float) -> float:
    """Linear factor of a gain in dB."""
    return float(10.0 ** (gain_db / 20.0))


def _raised_cosine(length: int) -> Gains:
    """``length + 1`` values rising from exactly 0 to exactly 1."""
    if length == 0:
        return np.ones(1, dtype=np.float64)
    position = np.arange(length + 1, dtype=np.float64) / length
    return np.asarray(0.5 - 0.5 * np.cos(np.pi * position), dtype=np.float64)


def _ramp_index(ramp: Ramp, first: int, stop: int) -> npt.NDArray[np.int64]:
    """Position in ``ramp`` of frames ``[first, stop)``: 0 at its start, counting to its end.

    ``end`` may come before ``start`` (a fade-out), positions then count backwards in time.
    """
    if ramp.end >= ramp.start:
        return np.arange(first - ramp.start, stop - ramp.start, dtype=np.int64)
    return np.arange(ramp.start - first, ramp.start - stop, -1, dtype=np.int64)


def _lookup(table: Gains, ramp: Ramp, first: int, stop: int) -> Gains:
    """Values of a ramp's ``table`` (``table[0]`` at its start) for frames ``[first, stop)``.

    Frames outside the ramp take the nearest end value.
    """
    return np.take(table, _ramp_index(ramp, first, stop), mode="clip")


def _rise(ramp: Ramp, first: int, stop: int) -> Gains:
    """Raised-cosine from 0 at ``ramp.start`` to 1 at ``ramp.end``, for frames ``[first, stop)``.

    Computed, not tabled: fades are evaluated once per track, and a long one would make a big
    table.
    """
    length = abs(ramp.end - ramp.start)
    if length == 0:
        return np.ones(stop - first, dtype=np.float64)
    position = np.clip(_ramp_index(ramp, first, stop), 0, length) / length
    return np.asarray(0.5 - 0.5 * np.cos(np.pi * position), dtype=np.float64)


class _Tables:
    """Ducking ramps computed once per length (hundreds per track), so blocks look them up."""

    def __init__(self, duck_db: float) -> None:
        self.duck_db = duck_db
        self._ducks: dict[int, Gains] = {}

    def duck(self, ramp: Ramp) -> Gains:
        """Ducking gain for ``ramp``: 1 at its start, ``-duck_db`` at its end."""
        length = abs(ramp.end - ramp.start)
        if length not in self._ducks:
            self._ducks[length] = np.power(10.0, -self.duck_db * _raised_cosine(length) / 20.0)
        return self._ducks[length]


def _as_frames(audio: npt.NDArray[np.floating], channels: int, what: str) -> Samples:
    """``audio`` as float32 ``(frames, channels)``; mono is spread over every channel."""
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] not in (1, channels):
        raise AudioError(
            f"{what}: error: expected audio of {channels} channel(s), got shape {data.shape}"
        )
    if data.shape[1] == 1 and channels > 1:
        data = np.repeat(data, channels, axis=1)
    return data


def _crossfade_gains(tail: Gains, head: Gains) -> tuple[Gains, Gains]:
    """Gains ``(fade_in, fade_out)`` per frame that keep the power of ``tail`` into ``head``.

    Uncorrelated material (a noise bed) gets the equal-power sin/cos law; correlated material
    (a loop already seamless, a tone) gets gains that add up to 1, which avoids the +3 dB bump
    the sin/cos law gives there. In between, the normalised correlation sets the law.
    """
    frames = tail.shape[0]
    energy = float(np.sqrt(np.sum(tail * tail) * np.sum(head * head)))
    correlation = float(np.sum(tail * head)) / energy if energy > 0 else 0.0
    correlation = min(1.0, max(0.0, correlation))
    angle = 0.5 * np.pi * (np.arange(frames, dtype=np.float64) / max(1, frames))
    rise, fall = np.sin(angle), np.cos(angle)
    power = rise * rise + fall * fall + 2.0 * correlation * rise * fall
    norm = 1.0 / np.sqrt(power)
    return (rise * norm)[:, None], (fall * norm)[:, None]


class _Bed:
    """A looping bed: one period ``L - X`` whose wrap is seamless, read modulo the period.

    The first ``X`` frames of the period are the crossfade of the file's tail (fading out)
    into its head (fading in), equal-power for uncorrelated material; the rest is the file
    itself. The first pass plays the file's own head instead, so the file is heard as
    recorded until its first wrap. Only the crossfade is computed; the file is not copied.
    """

    def __init__(self, audio: Samples, sample_rate: int) -> None:
        frames = audio.shape[0]
        fade = min(_frame(LOOP_CROSSFADE_S, sample_rate), frames // 2)
        self.audio = audio
        self.period = frames - fade
        self.fade = fade
        tail = audio[self.period :].astype(np.float64)
        head = audio[:fade].astype(np.float64)
        fade_in, fade_out = _crossfade_gains(tail, head)
        self.crossfade = (tail * fade_out + head * fade_in).astype(np.float32)

    def fill(self, out: Samples, start: int) -> None:
        """Copy the bed's frames ``start...`` into ``out``."""
        filled = 0
        wanted = out.shape[0]
        while filled < wanted:
            frame = start + filled
            index = frame % self.period
            if frame < self.fade:
                source = self.audio[frame : self.fade]
            elif index < self.fade:
                source = self.crossfade[index:]
            else:
                source = self.audio[index : self.period]
            count = min(wanted - filled, source.shape[0])
            out[filled : filled + count] = source[:count]
            filled += count


@dataclass
class _Placed:
    """Audio placed at an absolute frame, with a linear gain."""

    start: int
    """First frame."""
    audio: Samples
    """Mono 1-D or ``(frames, channels)``."""
    gain: float
    """Linear gain applied when adding."""

    @property
    def end(self) -> int:
        """Frame after the last one."""
        return self.start + int(self.audio.shape[0])


class _Mixer:
    """State of one mix: the pending cues, the clips sounding now, the bed.

    The mastering gain is folded into each source's gain, which saves a pass over the sum.
    """

    def __init__(
        self,
        timeline: Timeline,
        speech_clip: SpeechSource,
        sound: AssetSource,
        bed: AssetSource | None,
        sample_rate: int,
        channels: int,
        gain_db: float,
    ) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.total = track_frames(timeline, sample_rate)
        self.gain = _db(gain_db)
        self.speech_clip = speech_clip
        self.sound = sound
        self.sounds: dict[str, tuple[Samples, float]] = {}
        self.speech_cues = sorted(
            (cue for cue in timeline.cues if isinstance(cue, SpeechCue)),
            key=lambda cue: _frame(cue.start_s, sample_rate),
        )
        self.sound_cues = sorted(
            (cue for cue in timeline.cues if isinstance(cue, SoundCue)),
            key=lambda cue: _frame(cue.start_s, sample_rate),
        )
        self.next_speech = 0
        self.next_sound = 0
        self.speaking: list[_Placed] = []
        self.ringing: list[_Placed] = []
        self.edge = max(1, _frame(EDGE_FADE_S, sample_rate))
        self.cut_fade = max(1, _frame(ONE_SHOT_CUT_FADE_S, sample_rate))
        self.bed: _Bed | None = None
        self.bed_gain = 1.0
        self.fade_in = Ramp(0, 0)
        self.fade_out = Ramp(self.total - 1, self.total - 1)
        self.tables = _Tables(0.0)
        self.spans: tuple[DuckSpan, ...] = ()
        self.span_ends = np.zeros(0, dtype=np.int64)
        background = timeline.background
        if background is not None and bed is not None and self.total > 0:
            audio, level_db = bed(background.asset)
            samples = _as_frames(audio, channels, f"bed {background.asset!r}")
            if samples.shape[0] == 0:
                raise AudioError(f"bed {background.asset!r}: error: the asset has no audio")
            self.bed = _Bed(samples, sample_rate)
            self.bed_gain = _db(level_db + background.gain_db)
            self.fade_in = Ramp(0, _frame(background.fade_in_s, sample_rate))
            fade_out = _frame(background.fade_out_s, sample_rate)
            self.fade_out = Ramp(self.total - 1, self.total - 1 - fade_out)
            self.tables = _Tables(background.duck_db)
            if background.duck_db > 0:
                self.spans = duck_spans(timeline, sample_rate)
                self.span_ends = np.array([s.release.end for s in self.spans], dtype=np.int64)

    def block(self, start: int, end: int) -> Samples:
        """The mixed frames ``[start, end)``."""
        out = np.zeros((end - start, self.channels), dtype=np.float32)
        if self.bed is not None:
            self.bed.fill(out, start)
            out *= self._bed_gains(start, end).astype(np.float32)[:, None]
        self._add_speech(out, start, end)
        self._add_sounds(out, start, end)
        self._edge_fades(out, start, end)
        return out

    def _bed_gains(self, start: int, end: int) -> Gains:
        """Bed gain per frame: level, fade-in, fade-out and ducking."""
        gains = np.full(end - start, self.bed_gain * self.gain, dtype=np.float64)
        if start < self.fade_in.end:
            stop = min(end, self.fade_in.end)
            gains[: stop - start] *= _rise(self.fade_in, start, stop)
        if end > self.fade_out.end:
            first = max(start, self.fade_out.end)
            gains[first - start :] *= _rise(self.fade_out, first, end)
        if self.spans:
            gains *= self._duck(start, end)
        return gains

    def _duck(self, start: int, end: int) -> Gains:
        """Ducking factor per frame: the lowest of every span's envelope."""
        duck = np.ones(end - start, dtype=np.float64)
        hold = _db(-self.tables.duck_db)
        first = int(np.searchsorted(self.span_ends, start, side="right"))
        for span in self.spans[first:]:
            if span.attack.start >= end:
                break
            self._ramp_into(duck, start, end, span.attack)
            hold_from = max(start, span.attack.end)
            hold_to = min(end, span.release.start)
            if hold_from < hold_to:
                section = duck[hold_from - start : hold_to - start]
                np.minimum(section, hold, out=section)
            self._ramp_into(duck, start, end, Ramp(span.release.end, span.release.start))
        return duck

    def _ramp_into(self, duck: Gains, start: int, end: int, ramp: Ramp) -> None:
        """Lower ``duck`` to a ducking ramp (unducked at its start) where it overlaps the block."""
        first = max(start, min(ramp.start, ramp.end))
        stop = min(end, max(ramp.start, ramp.end))
        if first >= stop:
            return
        section = duck[first - start : stop - start]
        np.minimum(section, _lookup(self.tables.duck(ramp), ramp, first, stop), out=section)

    def _add_speech(self, out: Samples, start: int, end: int) -> None:
        """Add every speech clip sounding in ``[start, end)``; fetch new ones, drop passed ones."""
        due, self.next_speech = self._due(self.speech_cues, self.next_speech, end)
        for at, cue in due:
            clip = np.asarray(self.speech_clip(cue), dtype=np.float32)
            if clip.ndim == 2 and clip.shape[1] == 1:
                clip = clip[:, 0]
            if clip.ndim != 1:
                clip = _as_frames(clip, self.channels, f"speech {cue.text[:40]!r}")
            self.speaking.append(_Placed(at, clip, self.gain))
        self.speaking = self._overlay(out, start, end, self.speaking)

    def _add_sounds(self, out: Samples, start: int, end: int) -> None:
        """Add every one-shot ringing in ``[start, end)``; a cut at the track end fades."""
        due, self.next_sound = self._due(self.sound_cues, self.next_sound, end)
        for at, cue in due:
            audio, level_db = self._sound(cue.asset)
            self.ringing.append(_Placed(at, audio, _db(level_db + cue.gain_db) * self.gain))
        self.ringing = self._overlay(out, start, end, self.ringing, cut_fade=True)

    def _due(self, cues: list[_C], first: int, end: int) -> tuple[list[tuple[int, _C]], int]:
        """The cues from index ``first`` on that start before frame ``end``, with their start
        frames (those at or past the track's end left out), and the index after them.
        """
        due: list[tuple[int, _C]] = []
        while first < len(cues):
            at = _frame(cues[first].start_s, self.sample_rate)
            if at >= end:
                break
            if at < self.total:
                due.append((at, cues[first]))
            first += 1
        return due, first

    def _sound(self, asset: str) -> tuple[Samples, float]:
        """A one-shot's audio and level, loaded once per mix."""
        if asset not in self.sounds:
            audio, level_db = self.sound(asset)
            self.sounds[asset] = (_as_frames(audio, self.channels, f"sound {asset!r}"), level_db)
        return self.sounds[asset]

    def _overlay(
        self, out: Samples, start: int, end: int, placed: list[_Placed], *, cut_fade: bool = False
    ) -> list[_Placed]:
        """Add the part of each placed clip inside ``[start, end)``; return those still sounding."""
        for item in placed:
            first = max(start, item.start)
            stop = min(end, item.end)
            if first >= stop:
                continue
            segment = item.audio[first - item.start : stop - item.start]
            if item.gain != 1.0:
                segment = segment * np.float32(item.gain)
            if cut_fade and item.end > self.total and stop > self.total - self.cut_fade:
                segment = segment * self._cut_fade(first, stop)[:, None]
            target = out[first - start : stop - start]
            if segment.ndim == 1:
                target += segment[:, None]
            else:
                target += segment
        return [item for item in placed if item.end > end and end < self.total]

    def _cut_fade(self, first: int, stop: int) -> Samples:
        """Gains of frames ``[first, stop)`` for a sound cut by the end of the track."""
        ramp = Ramp(self.total - 1, self.total - 1 - self.cut_fade)
        return _rise(ramp, first, stop).astype(np.float32)

    def _edge_fades(self, out: Samples, start: int, end: int) -> None:
        """Short fades at the very start and end of the track."""
        head = Ramp(0, self.edge)
        if start < head.end:
            stop = min(end, head.end)
            gains = _rise(head, start, stop)
            out[: stop - start] *= gains.astype(np.float32)[:, None]
        tail = Ramp(self.total - 1, self.total - 1 - self.edge)
        if end > tail.end:
            first = max(start, tail.end)
            gains = _rise(tail, first, end)
            out[first - start :] *= gains.astype(np.float32)[:, None]
