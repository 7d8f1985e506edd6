"""Speech synthesis orchestration: keys of sentences, lengths from the cache, warming the cache."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pipeline.cache import SpeechCache, speech_key
from pipeline.engines import get_engine
from pipeline.engines.base import EncodedAudio, Engine
from pipeline.errors import AudioError, EngineError, PipelineError
from pipeline.settings import RetrySettings, VoiceSettings
from pipeline.text import Lexicon, prepare_for_engine

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from pipeline.config import Project
    from pipeline.timeline import SpeechCue, Timeline

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str], None]
"""Called as ``progress(done, total, text)`` after each synthesized sentence."""

SNIPPET_CHARS = 60
"""How much of a sentence error messages quote."""


class SpeechRequest(NamedTuple):
    """One sentence to have in the cache."""

    text: str
    """The sentence as written (display text; the lexicon is applied later)."""
    voice: VoiceSettings
    """The complete voice."""
    context: str
    """Where it comes from, for messages: ``scripts/x.yaml:12:5: steps[3]``."""


@dataclass(frozen=True)
class SpeakReport:
    """What :func:`synthesize_missing` did."""

    total: int
    """Distinct clips requested (a sentence said twice with the same voice counts once)."""
    cached_before: int
    """Of those, already in the cache."""
    synthesized: int
    """Clips synthesized and stored by this call."""
    engine_calls: int
    """Calls to an engine's ``synthesize`` (failed ones included)."""


def snippet(text: str) -> str:
    """The first characters of a sentence, for messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS] + "…"


class _Unspeakable(ValueError):
    """Nothing speakable remains of a sentence."""


def _sentence_key(
    engine: Engine, text: str, voice: VoiceSettings, lexicon: Lexicon, sample_rate: int
) -> tuple[str, str]:
    """A sentence's engine text and the cache key of its clip, for planning, mixing and
    synthesis alike. _Unspeakable if nothing speakable remains; an engine failing in its
    ``version()`` or ``cache_settings()`` raises its own error.
    """
    try:
        prepared = prepare_for_engine(text, lexicon)
    except ValueError as error:
        raise _Unspeakable(str(error)) from None
    return prepared, speech_key(engine, voice, prepared, sample_rate)


class CachedLengths:
    """:class:`pipeline.timeline.Lengths` answering speech lengths from the speech cache."""

    def __init__(
        self,
        cache: SpeechCache,
        *,
        lexicon: Lexicon,
        sample_rate: int,
        sound: Callable[[str], float],
        retry: RetrySettings | None = None,
    ) -> None:
        self.cache = cache
        self.lexicon = lexicon
        self.sample_rate = sample_rate
        self.retry = retry
        self._sound = sound
        self._engines: dict[str, Engine | None] = {}
        self._keys: dict[tuple[str, VoiceSettings], str | None] = {}

    def key(self, text: str, voice: VoiceSettings) -> str | None:
        """The clip's cache key, or None when the engine cannot be loaded or the text is empty.

        Memoized: planning and mixing ask for the same sentences.
        """
        if (text, voice) not in self._keys:
            self._keys[text, voice] = self._compute_key(text, voice)
        return self._keys[text, voice]

    def _compute_key(self, text: str, voice: VoiceSettings) -> str | None:
        engine = self._engine(voice.engine)
        if engine is None:
            return None
        try:
            return _sentence_key(engine, text, voice, self.lexicon, self.sample_rate)[1]
        except ValueError:
            return None
        except Exception as error:  # an engine's version() or cache_settings() failing
            log.debug("no speech key for %r with %s: %s", text, voice.engine, error)
            return None

    def speech(self, text: str, voice: VoiceSettings) -> float | None:
        """Length of the cached conditioned clip, or None if it is not cached (yet)."""
        key = self.key(text, voice)
        return None if key is None else self.cache.length_s(key)

    def sound(self, asset: str) -> float:
        """Length of a one-shot asset (delegated to the callable given)."""
        return self._sound(asset)

    def _engine(self, name: str) -> Engine | None:
        if name not in self._engines:
            try:
                self._engines[name] = get_engine(name, self.retry)
            except EngineError as error:
                log.debug("speech lengths unknown for engine %s: %s", name, error)
                self._engines[name] = None
        return self._engines[name]


def speech_requests(
    timeline: Timeline, context: str, *, cues: Iterable[SpeechCue] | None = None
) -> list[SpeechRequest]:
    """A request per speech cue of a timeline (or of ``cues`` of it, e.g. an excerpt's).

    ``context`` names the script (its path).
    """
    requests = []
    for cue in timeline.speech if cues is None else cues:
        place = cue.place
        path = str(place.path)
        if path in ("", "."):
            where = context
        elif path == context:
            where = str(place)
        else:
            where = f"{context} ({place})"
        if place.key_path:
            where += f": {place.key_path}"
        requests.append(SpeechRequest(cue.text, cue.voice, where))
    return requests


@dataclass
class _Job:
    key: str
    request: SpeechRequest
    prepared: str
    engine: Engine


def synthesize_missing(
    requests: Iterable[SpeechRequest | tuple[str, VoiceSettings, str]],
    cache: SpeechCache,
    *,
    lexicon: Lexicon,
    sample_rate: int,
    retry: RetrySettings | None = None,
    jobs: int = 1,
    progress: ProgressCallback | None = None,
) -> SpeakReport:
    """Synthesize, condition and cache every requested sentence not cached yet.

    Sentences are deduplicated by key and run on ``jobs`` threads (engines throttle or serialize
    themselves). On the first failure no new sentence starts, those in flight finish and are
    kept, and the first failure in request order is raised, naming its context and sentence.
    """
    missing = _missing_jobs(requests, cache, lexicon, sample_rate, retry)
    if missing.jobs:
        _load_audio_libraries()
    synthesis = _Synthesis(missing.jobs, cache, sample_rate, progress)
    synthesis.run(jobs)
    synthesis.raise_first_failure()
    log.info(
        "speech: %d sentences, %d cached before, %d synthesized",
        missing.sentences,
        missing.cached_before,
        synthesis.done,
    )
    return SpeakReport(missing.sentences, missing.cached_before, synthesis.done, synthesis.calls)


@dataclass(frozen=True)
class _Missing:
    """The distinct sentences requested and the jobs of those not cached yet."""

    sentences: int
    """Distinct clips requested."""
    cached_before: int
    """Of those, already in the cache."""
    jobs: list[_Job]
    """The others, in request order."""


def _missing_jobs(
    requests: Iterable[SpeechRequest | tuple[str, VoiceSettings, str]],
    cache: SpeechCache,
    lexicon: Lexicon,
    sample_rate: int,
    retry: RetrySettings | None,
) -> _Missing:
    """Key every request, drop repeats and count what the cache already holds."""
    pending: dict[str, _Job] = {}
    seen: set[str] = set()
    cached_before = 0
    for raw in requests:
        request = SpeechRequest(*raw)
        engine = _engine_for(request, retry)
        try:
            prepared, key = _sentence_key(engine, request.text, request.voice, lexicon, sample_rate)
        except _Unspeakable as error:
            raise PipelineError(f"{request.context}: cannot speak this sentence: {error}") from None
        except Exception as error:  # an engine's version() or cache_settings() failing
            raise _failure(request, error) from None
        if key in seen:
            continue
        seen.add(key)
        if cache.verify(key):
            cached_before += 1
        else:
            pending[key] = _Job(key, request, prepared, engine)
    return _Missing(len(seen), cached_before, list(pending.values()))


class _Synthesis:
    """Jobs run on threads that share the counts and the first failures."""

    def __init__(
        self,
        jobs: list[_Job],
        cache: SpeechCache,
        sample_rate: int,
        progress: ProgressCallback | None,
    ) -> None:
        self.jobs = jobs
        self.cache = cache
        self.sample_rate = sample_rate
        self.progress = progress
        self.calls = 0
        """Calls to an engine's ``synthesize``."""
        self.done = 0
        """Clips stored."""
        self.failures: dict[int, BaseException] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self, threads: int) -> None:
        """Run every job, on ``threads`` threads when there is more than one job."""
        if threads <= 1 or len(self.jobs) <= 1:
            for index, job in enumerate(self.jobs):
                self.run_one(index, job)
            return
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="speak")
        try:
            # wait for the work, not in Thread.join: a Ctrl-C there can mark a running thread
            # stopped (seen on CPython 3.11) and the process exits in the middle of its write
            wait([pool.submit(self.run_one, index, job) for index, job in enumerate(self.jobs)])
        except BaseException:  # Ctrl+C: start nothing more, keep what finished
            self.stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def run_one(self, index: int, job: _Job) -> None:
        """Synthesize, condition and store one clip, unless a failure stopped the run."""
        if self.stop.is_set():
            return
        try:
            with self.lock:
                self.calls += 1
            audio = job.engine.synthesize(job.prepared, job.request.voice)
            # an engine that applies the rate itself (Kokoro's speed) must not get it twice
            rate = 1.0 if job.engine.handles_rate else job.request.voice.rate
            samples = _condition(audio, rate, self.sample_rate)
            self.cache.put(job.key, samples, self.sample_rate)
        except BaseException as error:
            self.stop.set()
            self.failures[index] = error
            return
        with self.lock:
            self.done += 1
            finished = self.done
        if self.progress is not None:
            self.progress(finished, len(self.jobs), job.request.text)

    def raise_first_failure(self) -> None:
        """Raise the failure of the first job in request order that failed, if any."""
        if not self.failures:
            return
        index = min(self.failures)
        first = self.failures[index]
        if not isinstance(first, Exception):
            raise first  # KeyboardInterrupt, SystemExit: finished clips are already stored
        raise _failure(self.jobs[index].request, first) from None


def _engine_for(request: SpeechRequest, retry: RetrySettings | None) -> Engine:
    try:
        return get_engine(request.voice.engine, retry)
    except EngineError as error:
        raise _failure(request, error) from None


def _load_audio_libraries() -> None:
    """Import numpy before the workers start. Imported by the first worker to condition a
    clip, it stalls every worker: its import holds the GIL in long stretches, so even the
    synthesis threads wait (measured side by side: 7% slower in all for a paragraph).
    """
    import numpy  # noqa: F401


def _condition(audio: EncodedAudio, rate: float, sample_rate: int) -> npt.NDArray[np.float32]:
    from pipeline.condition import condition_clip  # lazy: decoding pulls in audio libraries

    return condition_clip(audio, rate, sample_rate)


def _failure(request: SpeechRequest, error: BaseException) -> PipelineError:
    """The error a user sees: where, which sentence, with which engine, and the probable cause."""
    if isinstance(error, PipelineError):
        cause = str(error)
    else:
        cause = f"unexpected {type(error).__name__}: {error}"
    message = (
        f'{request.context}: cannot speak "{snippet(request.text)}" '
        f"with engine '{request.voice.engine}': {cause}"
    )
    return AudioError(message) if isinstance(error, AudioError) else EngineError(message)


def speak_scripts(
    paths: Iterable[Path],
    project: Project,
    flags: dict[str, object] | None = None,
    *,
    jobs: int = 1,
    progress: ProgressCallback | None = None,
) -> SpeakReport:
    """Validate scripts, then synthesize every sentence of theirs not cached yet."""
    from pipeline.planning import check_scripts, plan_checked

    checked = check_scripts(paths, project, flags)
    if not checked:
        return SpeakReport(0, 0, 0, 0)
    settings = checked[0].settings
    cache = SpeechCache(settings.cache_dir)
    requests: list[SpeechRequest] = []
    for item in checked:
        planned = plan_checked(item, cache)
        requests += speech_requests(planned.timeline, str(item.script.path))
    report = synthesize_missing(
        requests,
        cache,
        lexicon=settings.lexicon,
        sample_rate=settings.sample_rate,
        retry=settings.retry,
        jobs=jobs,
        progress=progress,
    )
    cache.record_run()
    return report


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune_cache` removed (or, in a dry run, would remove) and kept."""

    scripts: int
    """Scripts whose clips were kept."""
    kept: int
    """Entries kept."""
    kept_bytes: int
    """Their size."""
    removed: int
    """Entries removed (or that would be)."""
    removed_bytes: int
    """Their size, with stale temporary files."""
    dry_run: bool
    """Nothing was removed."""


def prune_cache(
    project: Project,
    extra: Iterable[Path] = (),
    *,
    engines: Iterable[str] = (),
    dry_run: bool = False,
) -> PruneReport:
    """Drop the cached clips no script of the project uses.

    Every script of the project's scripts folder keeps its clips, and so does every script under
    ``extra`` (drafts kept elsewhere): a path never narrows what is kept. ``engines``: also keep
    the clips the scripts would use with each of these engines (``--engine`` renders). Any
    script that cannot be planned stops the prune before anything is removed.
    """
    from pipeline.config import resolve
    from pipeline.planning import check_scripts, plan_checked

    groups = [[resolve(project).scripts_dir], list(extra)]
    checked = []
    overrides: list[dict[str, object]] = [{}]
    overrides += [{"voice.engine": engine} for engine in dict.fromkeys(engines)]
    for flags in overrides:
        for paths in groups:
            if paths:
                checked += check_scripts(paths, project, flags)
    if not checked:
        raise PipelineError("error: no scripts found: refusing to prune the whole cache")
    cache = SpeechCache(checked[0].settings.cache_dir)
    keep: set[str] = set()
    for item in checked:
        planned = plan_checked(item, cache)
        for cue in planned.timeline.speech:
            key = planned.lengths.key(cue.text, cue.voice)
            if key is None:
                raise EngineError(
                    f"{item.script.path}: engine {cue.voice.engine!r} cannot be loaded, so its "
                    "clips cannot be told apart: nothing pruned"
                )
            keep.add(key)
    scripts = len({item.script.path.resolve() for item in checked})
    kept, kept_bytes, removed, removed_bytes = cache.prune(keep, dry_run=dry_run)
    return PruneReport(scripts, kept, kept_bytes, removed, removed_bytes, dry_run)
