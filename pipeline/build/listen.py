"""``meditate listen``: prove that each built track says what its script says, sentence by
sentence.

The sentences are those of the script's timeline; each is checked on its clean clip in the
speech cache (before the bed is mixed in), so a flag points at one sentence and its place in
the script. Transcripts are cached by clip key and recogniser identity
(:mod:`pipeline.build.transcripts`): a second run transcribes nothing, one edited sentence one
clip. The verdicts go into a ``qa`` section of each track's sidecar (sealed again) and of its
entry in ``catalog.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.build.outputs import (
    SEAL,
    qa_thresholds,
    sidecar_digest,
    spoken,
    with_qa,
    write_json_atomic,
)
from pipeline.build.state import read_sidecar
from pipeline.build.transcripts import TranscriptCache, audio_digest
from pipeline.core.errors import Place
from pipeline.core.fileio import display_path
from pipeline.plan.checked import Planned, check_scripts, plan_checked
from pipeline.plan.timeline import SpeechCue
from pipeline.plan.validate import Checked
from pipeline.project.config import Project
from pipeline.project.layout import CATALOG_NAME
from pipeline.project.settings import QaSettings, Settings
from pipeline.qa.asr import Transcriber, Transcript, pack_windows
from pipeline.qa.check import SentenceCheck, judge_sentences
from pipeline.qa.compare import Status
from pipeline.speech.cache import SpeechCache
from pipeline.speech.synthesis import ProgressCallback

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

CHUNK_WINDOWS = 4
"""Recogniser windows (30 s each) transcribed per call: transcripts are cached after each call,
so an interrupted run keeps what it heard, and progress is reported."""
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail")


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeardSentence:
    """One sentence of a track, checked on its clip."""

    index: int
    """Its position among the track's spoken sentences (the sidecar's ``sentences``)."""
    place: Place
    """The script step it comes from."""
    start_s: float
    """When it starts in the track."""
    clip: str
    """The speech-cache key of its clean clip."""
    check: SentenceCheck
    """What was heard and measured, and the verdict."""

    @property
    def status(self) -> Status:
        """``ok``, ``warn`` or ``fail``."""
        return self.check.verdict.status

    def entry(self) -> dict[str, Any]:
        """Its entry in a sidecar's ``qa.sentences`` (the text is in ``sentences[index]``)."""
        found = self.check.as_dict()
        del found["text"]
        return {"index": self.index, **found}


@dataclass(frozen=True)
class TrackQa:
    """One track's sentences, checked."""

    track_id: str
    """The script's id."""
    source: Path
    """The script file."""
    sentences: tuple[HeardSentence, ...]
    """Every spoken sentence, in order."""
    sidecar: Path | None = None
    """The sidecar now holding these results; None when none could (see ``note``)."""
    note: str = ""
    """Why no sidecar holds them (the built track is of another version of the script)."""

    @property
    def status(self) -> Status:
        """The worst status of its sentences."""
        return max((s.status for s in self.sentences), key=STATUSES.index, default="ok")

    @property
    def counts(self) -> dict[str, int]:
        """Sentences per status."""
        return {status: sum(s.status == status for s in self.sentences) for status in STATUSES}

    @property
    def wer(self) -> float:
        """Word errors over script words, over the whole track."""
        return _pooled_wer(self.sentences)

    def section(self, recognizer: str, thresholds: Mapping[str, Any]) -> dict[str, Any]:
        """The sidecar's ``qa`` section."""
        return {
            "status": self.status,
            "recognizer": recognizer,
            "counts": self.counts,
            "wer": round(self.wer, 4),
            "thresholds": dict(thresholds),
            "sentences": [sentence.entry() for sentence in self.sentences],
        }


@dataclass(frozen=True)
class SkippedTrack:
    """A track that could not be checked, and why."""

    track_id: str
    """The script's id."""
    source: Path
    """The script file."""
    reason: str
    """What is wrong and what to do, e.g. ``never built: build it first``."""


@dataclass
class ListenReport:
    """What a run of ``listen`` found; ``ok`` is False when a sentence failed or a track could
    not be checked."""

    output_dir: Path
    """The output folder of the tracks."""
    recognizer: str = ""
    """The recogniser's identity."""
    tracks: list[TrackQa] = field(default_factory=list)
    """The tracks checked, in id order."""
    skipped: list[SkippedTrack] = field(default_factory=list)
    """The tracks not checked, in id order."""
    transcribed: int = 0
    """Clips transcribed by this run."""
    cached: int = 0
    """Clips whose transcript came from the cache."""

    @property
    def wer(self) -> float:
        """Word errors over script words, over every track checked."""
        return _pooled_wer(s for track in self.tracks for s in track.sentences)

    @property
    def ok(self) -> bool:
        """No failed sentence and no track left unchecked."""
        return not self.skipped and all(track.status != "fail" for track in self.tracks)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of ``--format json``."""
        return {
            "output": str(self.output_dir),
            "ok": self.ok,
            "recognizer": self.recognizer,
            "transcribed": self.transcribed,
            "cached": self.cached,
            "wer": round(self.wer, 4),
            "tracks": [
                {
                    "id": track.track_id,
                    "source": str(display_path(track.source)),
                    "status": track.status,
                    "counts": track.counts,
                    "wer": round(track.wer, 4),
                    "sidecar": None if track.sidecar is None else str(track.sidecar),
                    "note": track.note,
                    "sentences": [
                        {
                            "place": _shown(sentence.place),
                            "start_s": round(sentence.start_s, 3),
                            **sentence.check.as_dict(),
                            "index": sentence.index,
                        }
                        for sentence in track.sentences
                    ],
                }
                for track in self.tracks
            ],
            "skipped": [
                {"id": s.track_id, "source": str(display_path(s.source)), "reason": s.reason}
                for s in self.skipped
            ],
        }


def _pooled_wer(sentences: Iterable[HeardSentence]) -> float:
    """Word errors over script words, over all ``sentences``."""
    checks = [s.check.words for s in sentences if s.check.words is not None]
    words = sum(check.script_words for check in checks)
    return sum(check.errors for check in checks) / words if words else 0.0


# --- settings ----------------------------------------------------------------------------------


def model_folder(settings: Settings, project: Project) -> Path | None:
    """The recogniser's model folder the settings name (``MEDITATE_ASR_MODEL``, else
    ``qa.model``), checked; None: the installed one."""
    import os

    from pipeline.qa.asr import MODEL_ENV, check_model_folder

    folder = settings.qa.model
    if folder is None:
        return None
    if os.environ.get(MODEL_ENV):
        origin = MODEL_ENV
    else:
        place = project.places.get("qa.model")
        origin = f"{place}: qa.model" if place is not None else "qa.model"
    return check_model_folder(folder.expanduser(), origin)


# --- listening -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sentences:
    """A script's spoken sentences (all, or an excerpt's) and the keys of their clips."""

    checked: Checked
    """The script."""
    texts: tuple[str, ...]
    """Each sentence as written."""
    places: tuple[Place, ...]
    """The step each comes from."""
    starts_s: tuple[float, ...]
    """When each starts in the track."""
    clips: tuple[str, ...]
    """The speech-cache key of each one's clip."""


@dataclass(frozen=True)
class _Track:
    """A built track ready to be checked: its sidecar and its plan's sentences."""

    sentences: Sentences
    sidecar_path: Path
    sidecar: dict[str, Any]


class Listener:
    """Checks sentences on their clips, transcribing only what its cache has not heard."""

    def __init__(
        self,
        transcriber: Transcriber,
        transcripts: TranscriptCache,
        thresholds: QaSettings = QaSettings(),  # noqa: B008 - frozen, never mutated
        progress: ProgressCallback | None = None,
    ) -> None:
        self.transcriber = transcriber
        self.transcripts = transcripts
        self.thresholds = thresholds
        self.progress = progress or (lambda done, total, text: None)
        self.transcribed = 0
        """Clips transcribed so far."""
        self.cached = 0
        """Clips whose transcript the cache had."""
        self.expected = 0
        """Clips this run is expected to transcribe (the progress total)."""

    @classmethod
    def for_project(
        cls,
        settings: Settings,
        project: Project,
        transcriber: Transcriber | None = None,
        progress: ProgressCallback | None = None,
    ) -> Listener:
        """A listener with the project's thresholds, its transcript cache and ``transcriber``
        (default: faster-whisper with the model the settings name; AsrUnavailable saying what
        to install when there is none)."""
        thresholds = settings.qa
        if transcriber is None:
            from pipeline.qa.asr import load_transcriber

            transcriber = load_transcriber(model_folder(settings, project))
        transcripts = TranscriptCache(settings.cache_dir, transcriber.identity())
        return cls(transcriber, transcripts, thresholds, progress)

    @property
    def recognizer(self) -> str:
        """The recogniser's identity."""
        return self.transcripts.recognizer

    def check(
        self,
        texts: Sequence[str],
        clip_keys: Sequence[str],
        clips: Sequence[npt.NDArray[np.float32]],
        sample_rate: int,
        lexicon: Sequence[tuple[str, str]] = (),
    ) -> list[SentenceCheck]:
        """One check per sentence; clips whose transcript is not cached are transcribed (each
        key once), in calls of at most :data:`CHUNK_WINDOWS` windows, and cached."""
        heard: dict[str, Transcript] = {}
        todo: dict[str, npt.NDArray[np.float32]] = {}
        digests: dict[str, str] = {}
        for key, clip in zip(clip_keys, clips, strict=True):
            if key in heard or key in todo:
                continue
            digests[key] = audio_digest(clip)
            cached = self.transcripts.get(key, digests[key])
            if cached is None:
                todo[key] = clip
            else:
                heard[key] = cached
                self.cached += 1
        for chunk in _chunks(list(todo.items()), sample_rate):
            transcripts = self.transcriber.transcribe([clip for _, clip in chunk], sample_rate)
            if len(transcripts) != len(chunk):
                raise ValueError(
                    f"the recogniser gave {len(transcripts)} transcripts for {len(chunk)} clips"
                )
            for (key, _), transcript in zip(chunk, transcripts, strict=True):
                self.transcripts.put(key, digests[key], transcript)
                heard[key] = transcript
            self.transcribed += len(chunk)
            self.progress(self.transcribed, max(self.expected, self.transcribed), "")
        return judge_sentences(
            texts,
            clips,
            sample_rate,
            [heard[key] for key in clip_keys],
            lexicon=lexicon,
            thresholds=self.thresholds,
        )


def _chunks(
    items: list[tuple[str, npt.NDArray[np.float32]]], sample_rate: int
) -> Iterator[list[tuple[str, npt.NDArray[np.float32]]]]:
    """The clips in groups of whole recogniser windows (:data:`CHUNK_WINDOWS` at most)."""
    windows = pack_windows([clip.size / sample_rate for _, clip in items])
    packed = {index for window in windows for index in window}
    silent = [items[index] for index in range(len(items)) if index not in packed]
    for start in range(0, len(windows), CHUNK_WINDOWS):
        chunk = [
            items[index] for window in windows[start : start + CHUNK_WINDOWS] for index in window
        ]
        if start == 0:
            chunk += silent  # empty clips: the recogniser hears nothing in them, in no time
        yield chunk
    if not windows and silent:
        yield silent


def listen(
    paths: Iterable[Path],
    project: Project,
    flags: dict[str, object] | None = None,
    *,
    output_dir: Path | None = None,
    transcriber: Transcriber | None = None,
    wait_s: float = 0.0,
    progress: ProgressCallback | None = None,
) -> ListenReport:
    """Check every sentence of every built track of the scripts at ``paths``; record the
    verdicts in the sidecars (and ``catalog.json``).

    ``transcriber``: the recogniser (default: faster-whisper with the model the settings name,
    AsrUnavailable saying what to install when there is none). Tracks never built, or whose
    clips or sidecar are missing or corrupt, are skipped with the reason. The output folder's
    build lock is held while sidecars may change (another build waits ``wait_s``).
    """
    from pipeline.build.lock import build_lock

    checked = check_scripts(list(paths), project, flags)
    if not checked:
        from pipeline.project.config import flags_layer, resolve

        return ListenReport(
            output_dir or resolve(project, flags=flags_layer(flags or {})).output_dir
        )
    settings = checked[0].settings
    out = output_dir if output_dir is not None else settings.output_dir
    listener = Listener.for_project(settings, project, transcriber, progress)
    recognizer = listener.recognizer
    report = ListenReport(out, recognizer)
    speech = SpeechCache(settings.cache_dir)
    lock = build_lock(out, wait_s) if out.is_dir() else contextlib.nullcontext()
    with lock:
        ready: list[_Track] = []
        for item in sorted(checked, key=lambda item: item.script.id):
            found = _built_track(item, out, speech)
            if isinstance(found, SkippedTrack):
                report.skipped.append(found)
            else:
                ready.append(found)
        listener.expected = len(
            {key for t in ready for key in t.sentences.clips if key not in listener.transcripts}
        )
        recorded: dict[str, dict[str, Any]] = {}
        for track in ready:
            result = check_track_sentences(track.sentences, speech, listener)
            if isinstance(result, SkippedTrack):
                report.skipped.append(result)
                continue
            section = result.section(recognizer, qa_thresholds(track.sentences.checked.settings.qa))
            result, data = _record(track, result, section)
            if data is not None:
                recorded[result.track_id] = data
            report.tracks.append(result)
        if recorded:
            _update_catalog(out, recorded)
    report.skipped.sort(key=lambda skipped: skipped.track_id)
    report.transcribed, report.cached = listener.transcribed, listener.cached
    return report


def _built_track(item: Checked, out: Path, speech: SpeechCache) -> _Track | SkippedTrack:
    """A track's sidecar and its plan's sentences with their clip keys, or why it is skipped."""
    script = item.script
    sidecar_path = out / f"{script.id}.json"
    shown = display_path(sidecar_path)

    def skip(reason: str) -> SkippedTrack:
        return SkippedTrack(script.id, script.path, reason)

    if not sidecar_path.is_file():
        return skip(f"never built ({shown} is missing): build it first")
    data = read_sidecar(sidecar_path)
    if data is None:
        return skip(f"{shown}: unreadable or not this track's sidecar: build it again")
    if SEAL in data and data[SEAL] != sidecar_digest(data):
        return skip(f"{shown}: its content does not match its {SEAL} (edited by hand?): "
                    "build it again")  # fmt: skip
    found = sentences_of(plan_checked(item, speech), speech)
    if isinstance(found, SkippedTrack):
        return found
    return _Track(found, sidecar_path, data)


def sentences_of(
    planned: Planned, speech: SpeechCache, cues: Iterable[SpeechCue] | None = None
) -> Sentences | SkippedTrack:
    """The spoken sentences of a planned script (or ``cues`` of it: an excerpt's) with the keys
    of their clips; skipped when a clip is not in the speech cache."""
    script = planned.script
    cues = tuple(planned.timeline.speech if cues is None else cues)
    keys = [planned.lengths.key(cue.text, cue.voice) for cue in cues]
    absent = [cue for cue, key in zip(cues, keys, strict=True) if key is None or key not in speech]
    if absent:
        first = absent[0]
        return SkippedTrack(
            script.id,
            script.path,
            f"{len(absent)} of {len(cues)} sentence clip(s) are not in the speech cache "
            f"(first: {_shown(first.place)} {_snippet(first.text)}): build it first",
        )
    return Sentences(
        Checked(script, planned.settings),
        tuple(cue.text for cue in cues),
        tuple(cue.place for cue in cues),
        tuple(cue.start_s for cue in cues),
        tuple(key for key in keys if key is not None),
    )


def check_track_sentences(
    track: Sentences, speech: SpeechCache, listener: Listener
) -> TrackQa | SkippedTrack:
    """Sentences checked on their clips (no sidecar is read or written: ``watch`` may check an
    excerpt's); skipped when a clip cannot be read."""
    script, settings = track.checked.script, track.checked.settings
    clips = []
    for text, place, key in zip(track.texts, track.places, track.clips, strict=True):
        clip = speech.get(key)
        if clip is None:  # a corrupt entry: the cache has removed it
            return SkippedTrack(
                script.id,
                script.path,
                f"{_shown(place)}: the clip of {_snippet(text)} is corrupt "
                f"({display_path(speech.path(key))}, removed): build it again",
            )
        clips.append(clip)
    checks = listener.check(track.texts, track.clips, clips, settings.sample_rate, settings.lexicon)
    sentences = tuple(
        HeardSentence(index, place, start_s, key, check)
        for index, (place, start_s, key, check) in enumerate(
            zip(track.places, track.starts_s, track.clips, checks, strict=True)
        )
    )
    return TrackQa(script.id, script.path, sentences)


def _record(
    track: _Track, result: TrackQa, section: dict[str, Any]
) -> tuple[TrackQa, dict[str, Any] | None]:
    """Write ``section`` into the track's sidecar when the sidecar describes these very
    sentences and clips; the result says where it went, or why nowhere."""
    from dataclasses import replace

    said = track.sentences
    if spoken(track.sidecar) != list(zip(said.texts, said.clips, strict=True)):
        if spoken(track.sidecar) is None:
            note = "its sidecar lists no sentences (built by an older version): build it again"
        else:
            note = "the built track is of another version of the script: build it again"
        where = display_path(track.sidecar_path)
        return replace(result, note=f"not recorded in {where}: {note}"), None
    data = with_qa(track.sidecar, section)
    write_json_atomic(track.sidecar_path, data)
    return replace(result, sidecar=track.sidecar_path), data


def _update_catalog(out: Path, recorded: Mapping[str, Mapping[str, Any]]) -> None:
    """Put the sidecars just written into ``catalog.json``, where it lists the same build."""
    path = out / CATALOG_NAME
    try:
        catalog = json.loads(path.read_text(encoding="utf-8"))
        tracks = catalog["tracks"]
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("%s: not updated, unreadable: %s", display_path(path), error)
        return
    changed = False
    for index, entry in enumerate(tracks if isinstance(tracks, list) else []):
        if not isinstance(entry, dict):
            continue
        data = recorded.get(str(entry.get("id")))
        if data is not None and data.get("build_key") == entry.get("build_key"):
            tracks[index] = dict(data)
            changed = True
    if changed:
        write_json_atomic(path, catalog)


# --- text output ---------------------------------------------------------------------------------


def _shown(place: Place) -> str:
    """A place as a user reads it: ``scripts/x.yaml:12:7`` relative to the current folder."""
    shown = str(display_path(place.path)) if str(place.path) not in ("", ".") else "?"
    return f"{shown}:{place.line}:{place.column}" if place.line else shown


def _snippet(text: str, limit: int = 60) -> str:
    one_line = " ".join(text.split())
    return repr(one_line if len(one_line) <= limit else one_line[: limit - 3] + "...")


def sentence_lines(sentence: HeardSentence) -> list[str]:
    """A checked sentence for the terminal: its place, verdict and reasons, the include steps
    that led there, its script text and what was heard."""
    check = sentence.check
    why = "".join(f"; {reason}" for reason in check.verdict.reasons)[1:]
    return [
        f"{_shown(sentence.place)}: {sentence.status}{':' if why else ''}{why}",
        *(f"{_shown(step)}: note: included from here" for step in sentence.place.included_from),
        f"    script: {' '.join(check.text.split())}",
        f"    heard:  {check.heard or '(nothing)'}",
    ]


def report_lines(report: ListenReport, *, every: bool = False) -> list[str]:
    """The terminal report: one entry per flagged sentence (every sentence with ``every``) at
    its place, a table of the tracks, the skipped tracks and a total line."""
    lines: list[str] = []
    for track in report.tracks:
        for sentence in track.sentences:
            if sentence.status != "ok" or every:
                lines += sentence_lines(sentence)
    if report.tracks:
        width = max(len("track"), *(len(track.track_id) for track in report.tracks))
        lines.append(f"{'track':<{width}}  sentences    ok  warn  fail    WER  status")
        for track in report.tracks:
            counts = track.counts
            lines.append(
                f"{track.track_id:<{width}}  {len(track.sentences):>9}  {counts['ok']:>4}  "
                f"{counts['warn']:>4}  {counts['fail']:>4}  {track.wer:>5.1%}  {track.status}"
            )
            if track.note:
                lines.append(f"{'':<{width}}  {track.note}")
    for skipped in report.skipped:
        source = display_path(skipped.source)
        lines.append(f"skipped   {skipped.track_id}  {source}: {skipped.reason}")
    sentences = [s for track in report.tracks for s in track.sentences]
    warned = sum(s.status == "warn" for s in sentences)
    failed = sum(s.status == "fail" for s in sentences)
    lines.append(
        f"{len(report.tracks)} track(s) checked, {len(report.skipped)} skipped: "
        f"{len(sentences)} sentence(s), {warned} warn, {failed} fail, WER {report.wer:.1%}; "
        f"{report.transcribed} clip(s) transcribed, {report.cached} from the cache"
    )
    return lines
