"""Speech synthesis orchestration: keys of sentences, lengths from the cache, warming the cache."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from pipeline.core.errors import AudioError, EngineError, PipelineError
from pipeline.engines import get_engine
from pipeline.engines.base import EncodedAudio, Engine
from pipeline.project.settings import RetrySettings, VoiceSettings
from pipeline.script.text import Lexicon
from pipeline.speech.cache import SpeechCache
from pipeline.speech.key import Unspeakable, sentence_key

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


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
            prepared, key = sentence_key(engine, request.text, request.voice, lexicon, sample_rate)
        except Unspeakable as error:
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
            voice = job.request.voice
            refused = job.engine.refuses(job.prepared)
            if refused:
                raise EngineError(refused)
            audio = job.engine.synthesize(job.prepared, job.engine.own_voice(voice))
            rate = job.engine.conditioning_rate(voice)
            samples = _condition(audio, rate, voice.pitch, self.sample_rate)
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


def _condition(
    audio: EncodedAudio, rate: float, pitch_semitones: float, sample_rate: int
) -> npt.NDArray[np.float32]:
    from pipeline.speech.condition import condition_clip

    return condition_clip(audio, rate, sample_rate, pitch_semitones=pitch_semitones)


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
