"""Speech lengths answered from the speech cache, for exact planning."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pipeline.core.errors import EngineError
from pipeline.engines import get_engine
from pipeline.engines.base import Engine
from pipeline.project.settings import RetrySettings, VoiceSettings
from pipeline.script.text import Lexicon
from pipeline.speech.cache import SpeechCache
from pipeline.speech.key import sentence_key

log = logging.getLogger(__name__)


class CachedLengths:
    """:class:`pipeline.plan.timeline.Lengths` answering speech lengths from the speech cache."""

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
            return sentence_key(engine, text, voice, self.lexicon, self.sample_rate)[1]
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
