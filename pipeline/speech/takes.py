"""Recorded takes: which recording speaks each sentence of a voice with engine ``recorded``.

A takes folder holds one file per sentence, named by its :func:`sentence_take_key`, or one
long take per ``say`` step, named by its :func:`step_take_key` and split at its silences into
the step's sentences, in order. A sentence's own file wins over its part of a step's take.
Planning asks :class:`TakeFinder` for each sentence's voice; the voice then carries the take
(file, bytes' SHA-256 and span), which is all the ``recorded`` engine and the cache key need.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.errors import Place, Problem
from pipeline.core.fileio import display_path
from pipeline.project.settings import RECORDED, Take, VoiceSettings

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")
"""File types a take may be (what libsndfile reads)."""
KEY_WORDS = 6
"""Words of a sentence in its key, before the hash."""
KEY_HASH_CHARS = 8
"""Hex digits of the text's SHA-256 in a key."""
STEP_PREFIX = "step-"
"""Start of a step take's key."""
MIN_GAP_S = 0.6
"""A silence at least this long separates two sentences of a step's long take."""
GAP_BELOW_DB = 20.0
"""A silence is this far below the take's average level (dBFS)."""
MIN_PART_S = 0.15
"""Sounds shorter than this between silences (clicks, breaths) are not sentences."""
SEEK_MS = 20
"""Step of the silence detector (the parts' ends are then refined sample by sample)."""
PART_MARGIN_S = 0.05
"""Kept around each part of a long take, so soft onsets are not cut (conditioning trims)."""
CLIP_LEVEL = 0.999
"""A sample at or above this (of full scale) is at full scale."""
CLIP_RUN = 3
"""That many full-scale samples in a row: the take is clipped (a warning)."""
SILENT_DBFS = -50.0
"""A take with no sample window above this level is silent (an error)."""


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _digest(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:KEY_HASH_CHARS]


def sentence_take_key(text: str) -> str:
    """The stable name of a sentence's take: its first words and a hash of its text.

    It changes only when the sentence's words change (spacing aside), not when others do.
    """
    slug = "-".join(_words(text)[:KEY_WORDS]) or "sentence"
    return f"{slug}-{_digest(text)}"


def step_take_key(text: str) -> str:
    """The stable name of a ``say`` step's long take: ``step-``, its first words, a hash."""
    slug = "-".join(_words(text)[:KEY_WORDS]) or "say"
    return f"{STEP_PREFIX}{slug}-{_digest('step ' + text)}"


@dataclass(frozen=True)
class TakeFile:
    """What a take file holds, read once per content."""

    sha256: str
    """SHA-256 of its bytes."""
    length_s: float
    """Its length."""
    problem: str = ""
    """Why it cannot be used ('' when it can)."""
    clipped_s: float | None = None
    """Where it first reaches full scale for ``CLIP_RUN`` samples (a warning), if it does."""
    parts: tuple[tuple[float, float], ...] = ()
    """Its spoken parts between silences (step takes only)."""


_read_lock = threading.Lock()
_read: dict[tuple[str, int, int, bool], TakeFile] = {}


def read_take(path: Path, split: bool) -> TakeFile:
    """A take's hash, length, fault and, if ``split``, spoken parts; memoized per file state."""
    try:
        stat = path.stat()
    except OSError as error:
        return TakeFile("", 0.0, f"cannot read it: {error.strerror or error}")
    key = (str(path), stat.st_mtime_ns, stat.st_size, split)
    with _read_lock:
        known = _read.get(key)
    if known is None:
        known = _inspect(path, split)
        with _read_lock:
            _read[key] = known
    return known


def _inspect(path: Path, split: bool) -> TakeFile:
    import numpy as np

    try:
        data = path.read_bytes()
    except OSError as error:
        return TakeFile("", 0.0, f"cannot read it: {error.strerror or error}")
    sha256 = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        return TakeFile(
            sha256, 0.0, f"not an audio file we read; save it as {', '.join(AUDIO_SUFFIXES)}"
        )
    try:
        frames, rate = decode_take(path)
    except ValueError as error:
        return TakeFile(sha256, 0.0, str(error))
    length_s = frames.shape[0] / rate
    mono = frames.mean(axis=1, dtype=np.float32)
    from pipeline.speech.condition import audible_bounds

    if frames.size == 0 or audible_bounds(mono, rate, SILENT_DBFS) is None:
        return TakeFile(sha256, length_s, f"silent (nothing above {SILENT_DBFS:g} dBFS)")
    clipped_s = _clipped_at(frames, rate)
    parts = split_parts(mono, rate) if split else ()
    return TakeFile(sha256, length_s, "", clipped_s, parts)


def decode_take(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    """A take's samples (frames x channels, float32) and rate; ValueError saying why not."""
    import soundfile

    try:
        frames, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile's errors are RuntimeError subclasses, or worse
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(
            f"cannot decode it ({reason}); save takes as WAV or FLAC (16 or 24 bit)"
        ) from None
    return frames, int(rate)


def _clipped_at(frames: npt.NDArray[np.float32], rate: int) -> float | None:
    """Where ``CLIP_RUN`` samples in a row first reach full scale, in seconds; None if never."""
    import numpy as np

    full = (np.abs(frames) >= CLIP_LEVEL).any(axis=1).astype(np.int8)
    if int(full.sum()) < CLIP_RUN:
        return None
    runs = np.convolve(full, np.ones(CLIP_RUN, np.int8), mode="valid")
    hits = np.flatnonzero(runs >= CLIP_RUN)
    return float(hits[0]) / rate if hits.size else None


def split_parts(mono: npt.NDArray[np.float32], rate: int) -> tuple[tuple[float, float], ...]:
    """The spoken parts of a long take, ``(start_s, end_s)``, split at silences of at least
    ``MIN_GAP_S`` that are ``GAP_BELOW_DB`` under the take's average level (pydub).
    """
    import warnings

    import numpy as np

    with warnings.catch_warnings():  # its ffmpeg (not used here) and audioop (3.11, 3.12)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from pydub import AudioSegment
        from pydub.silence import detect_nonsilent

    from pipeline.speech.condition import audible_bounds

    pcm = (np.clip(mono, -1.0, 1.0) * 32767.0).astype("<i2")
    segment = AudioSegment(data=pcm.tobytes(), sample_width=2, frame_rate=rate, channels=1)
    threshold_dbfs = segment.dBFS - GAP_BELOW_DB
    spans = detect_nonsilent(
        segment, min_silence_len=round(MIN_GAP_S * 1000), silence_thresh=threshold_dbfs,
        seek_step=SEEK_MS,
    )  # fmt: skip
    parts = []
    for start_ms, end_ms in spans:  # a silence shorter than MIN_GAP_S at an end stays: trim it
        first = start_ms * rate // 1000
        bounds = audible_bounds(mono[first : end_ms * rate // 1000], rate, threshold_dbfs)
        if bounds is None:
            continue
        start_s, end_s = (first + bounds[0]) / rate, (first + bounds[1]) / rate
        if end_s - start_s >= MIN_PART_S:
            parts.append(
                (max(0.0, start_s - PART_MARGIN_S), min(mono.size / rate, end_s + PART_MARGIN_S))
            )
    return tuple(parts)


def _taken(voice: VoiceSettings, take: Take) -> VoiceSettings:
    """The voice of a sentence spoken by ``take``: a recording keeps its tempo and pitch (the
    fallback engine, speaking the others, gets the voice's rate and pitch)."""
    return replace(voice, take=take, rate=1.0, pitch=0.0)


@dataclass(frozen=True)
class MissingTake(Problem):
    """A sentence without a take and no fallback: an error (``plan --takes`` lists them)."""


@dataclass
class _Folder:
    """One takes folder as this plan found it."""

    files: dict[str, Path]
    """Audio (or other) files by stem."""
    first_place: Place
    """The first step that uses it, for folder-wide warnings."""
    used: set[str] = field(default_factory=set)
    """Stems that matched a sentence or step."""
    problem: str = ""
    """Why the folder cannot be used."""
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    """Stems given by more than one file."""


class TakeFinder:
    """Gives each sentence of a ``recorded`` voice its take, for one plan; collects problems."""

    def __init__(self, *, allow_missing: bool = False) -> None:
        self.allow_missing = allow_missing
        """Leave a sentence without a take (and no fallback) take-less instead of an error."""
        self.problems: list[Problem] = []
        self._folders: dict[str, _Folder] = {}
        self._reported: set[tuple[str, str]] = set()
        self._missing: dict[Place, tuple[str, dict[str, None], str | None]] = {}
        """Sentences without a take by step: the folder, the texts, the step's text."""

    def voices(
        self, voice: VoiceSettings, texts: list[str], place: Place, step_text: str | None = None
    ) -> list[VoiceSettings]:
        """The voice of each sentence (``texts``, of a ``say`` whose text is ``step_text``)."""
        if voice.engine != RECORDED:  # takes only matter to a recorded voice
            plain = replace(voice, takes=None, fallback=None, take=None)
            return [plain] * len(texts)
        if voice.takes is None:
            message = "engine 'recorded' needs a folder of takes: 'takes: FOLDER'"
            self._problem(place, message, once=True)
            return [voice] * len(texts)
        if voice.fallback == RECORDED:
            message = "'fallback' must name another engine than 'recorded'"
            self._problem(place, message, once=True)
            return [voice] * len(texts)
        folder = self._folder(voice.takes, place)
        if folder.problem:
            self._problem(place, folder.problem, once=True)
            return [voice] * len(texts)
        parts = self._step_parts(folder, texts, place, step_text) if step_text else None
        voices = [
            self._voice(voice, folder, text, parts[index] if parts else None, place)
            for index, text in enumerate(texts)
        ]
        missing = [
            text
            for text, chosen in zip(texts, voices, strict=True)
            if chosen.engine == RECORDED and chosen.take is None
        ]
        if missing and not self.allow_missing:
            texts_of_step = self._missing.setdefault(place, (voice.takes, {}, step_text))[1]
            texts_of_step.update(dict.fromkeys(missing))
        return voices

    def _missing_problem(
        self, place: Place, takes: str, texts: list[str], step_text: str | None
    ) -> MissingTake:
        shown = [text if len(text) <= 30 else text[:27].rstrip() + "..." for text in texts]
        names = ", ".join(
            f"{sentence_take_key(text)} ({short!r})"
            for text, short in zip(texts, shown, strict=True)
        )
        whole = f" (or the whole step as {step_take_key(step_text)})" if step_text else ""
        return MissingTake(
            place,
            f"no take in {display_path(Path(takes))} for {len(texts)} sentence(s): {names}; "
            f"record them{whole}, or set 'fallback: ENGINE' "
            "(`meditate plan --takes` lists every name)",
        )

    def finish(self) -> list[Problem]:
        """Every problem found: a step's missing takes in one error (unless its takes are
        faulty, reported already), a warning per folder holding files no sentence used.
        """
        faulty = {p.place for p in self.problems if p.severity == "error"}
        problems = list(self.problems)
        problems += [
            self._missing_problem(place, takes, list(texts), step_text)
            for place, (takes, texts, step_text) in self._missing.items()
            if place not in faulty
        ]
        for path, folder in self._folders.items():
            extra = sorted(
                f"{folder.files[stem].name}" for stem in folder.files if stem not in folder.used
            )
            if extra and not folder.problem:
                problems.append(
                    Problem(
                        folder.first_place,
                        f"takes folder {display_path(Path(path))}: {len(extra)} file(s) match "
                        f"no sentence of this script: {', '.join(extra)} "
                        "(`meditate plan --takes` lists the names it expects)",
                        "warning",
                    )
                )
        return problems

    def _problem(
        self,
        place: Place,
        message: str,
        kind: type[Problem] = Problem,
        severity: str = "error",
        once: bool = False,
    ) -> None:
        """Report a problem once per place (``once``: once in all, at its first place)."""
        where = "" if once else str(place)
        if (where, message) not in self._reported:
            self._reported.add((where, message))
            self.problems.append(kind(place, message, severity))

    def _folder(self, takes: str, place: Place) -> _Folder:
        if takes in self._folders:
            return self._folders[takes]
        files: dict[str, Path] = {}
        duplicates: dict[str, list[str]] = {}
        problem = ""
        try:
            with os.scandir(takes) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    if entry.name.startswith(".") or not entry.is_file():
                        continue
                    stem = Path(entry.name).stem
                    if stem in files:
                        duplicates.setdefault(stem, [files[stem].name]).append(entry.name)
                    files[stem] = Path(entry.path)
        except FileNotFoundError:
            problem = f"takes folder {display_path(Path(takes))} does not exist"
        except NotADirectoryError:
            problem = f"takes folder {display_path(Path(takes))} is not a folder"
        except OSError as error:
            problem = f"takes folder {display_path(Path(takes))}: {error.strerror or error}"
        folder = _Folder(files, place, problem=problem, duplicates=duplicates)
        self._folders[takes] = folder
        return folder

    def _file(self, folder: _Folder, stem: str, place: Place, split: bool) -> TakeFile | None:
        """The usable take named ``stem``, warnings and errors reported; None if unusable."""
        path = folder.files[stem]
        folder.used.add(stem)
        shown = display_path(path)
        if stem in folder.duplicates:
            names = ", ".join(folder.duplicates[stem])
            self._problem(place, f"take {stem!r} is given by several files ({names}): keep one")
            return None
        take = read_take(path, split)
        if take.problem:
            self._problem(place, f"take {shown}: {take.problem}")
            return None
        if take.clipped_s is not None:
            self._problem(
                place,
                f"take {shown} is clipped (full scale at {take.clipped_s:.2f} s): "
                "record it again lower",
                severity="warning",
            )
        return take

    def _step_parts(
        self, folder: _Folder, texts: list[str], place: Place, step_text: str
    ) -> list[Take | None] | None:
        """The step's long take split into one take per sentence; None without a step take."""
        stem = step_take_key(step_text)
        if stem not in folder.files:
            return None
        path = folder.files[stem]
        take = self._file(folder, stem, place, split=True)
        if take is None:
            return [None] * len(texts)
        if len(take.parts) != len(texts):
            found = ", ".join(f"{start:.2f}-{end:.2f} s" for start, end in take.parts)
            self._problem(
                place,
                f"take {display_path(path)}: found {len(take.parts)} spoken part(s), the step "
                f"has {len(texts)} sentence(s): {found or 'none'} (sentences are split at "
                f"silences of {MIN_GAP_S:g} s or more, {GAP_BELOW_DB:g} dB under the take's "
                "level)",
            )
            return [None] * len(texts)
        return [Take(str(path), take.sha256, start, end) for start, end in take.parts]

    def _voice(
        self,
        voice: VoiceSettings,
        folder: _Folder,
        text: str,
        part: Take | None,
        place: Place,
    ) -> VoiceSettings:
        """The voice of one sentence: its own take, else its part of the step's, else the
        fallback engine's, else without a take (reported by the caller)."""
        key = sentence_take_key(text)
        if key in folder.files:
            take = self._file(folder, key, place, split=False)
            if take is None:
                return voice
            return _taken(voice, Take(str(folder.files[key]), take.sha256))
        if part is not None:
            return _taken(voice, part)
        if voice.fallback is not None:
            return replace(voice, engine=voice.fallback, take=None)
        return voice
