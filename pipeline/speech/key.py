"""The speech cache key: what makes two clips the same clip."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from pipeline.project.settings import VoiceSettings
from pipeline.script.text import Lexicon, prepare_for_engine

if TYPE_CHECKING:
    from pipeline.engines.base import Engine

KEY_SCHEMA = "meditate-speech-1"
"""Changes when the key recipe changes, so old entries are never misread."""
CONDITIONING_VERSION = "7"
"""Bump whenever conditioning (:mod:`pipeline.speech.condition`) changes its output."""


class Unspeakable(ValueError):
    """Nothing speakable remains of a sentence."""


def speech_key(engine: Engine, voice: VoiceSettings, prepared_text: str, sample_rate: int) -> str:
    """SHA-256 of everything that shapes a conditioned clip: engine, version, voice, text, rate."""
    recipe = {
        "schema": KEY_SCHEMA,
        "engine": engine.name or voice.engine,
        "engine_version": engine.version(),
        "voice": engine.cache_settings(engine.own_voice(voice)),
        "rate": float(voice.rate),
        "pitch": float(voice.pitch),
        "text": prepared_text,
        "sample_rate": int(sample_rate),
        "conditioning": CONDITIONING_VERSION,
    }
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def sentence_key(
    engine: Engine, text: str, voice: VoiceSettings, lexicon: Lexicon, sample_rate: int
) -> tuple[str, str]:
    """A sentence's engine text and the cache key of its clip, for planning, mixing and
    synthesis alike. :class:`Unspeakable` if nothing speakable remains; an engine failing in its
    ``version()`` or ``cache_settings()`` raises its own error.
    """
    try:
        prepared = prepare_for_engine(text, lexicon)
    except ValueError as error:
        raise Unspeakable(str(error)) from None
    return prepared, speech_key(engine, voice, prepared, sample_rate)
