"""The engine interface every text-to-speech backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace

from pipeline.project.settings import RetrySettings, VoiceSettings
from pipeline.script.declared import PHONEME_MARKS


@dataclass(frozen=True)
class Availability:
    """Whether an engine can run here, and why not."""

    usable: bool
    """True when the engine can synthesize on this machine."""
    reason: str = ""
    """Why it cannot (or a note), shown by ``meditate engines``."""


@dataclass(frozen=True)
class EncodedAudio:
    """Raw engine output before conditioning."""

    data: bytes
    """The audio file bytes (WAV, MP3...)."""
    format: str
    """ffmpeg demuxer name of ``data``: ``wav``, ``mp3``..."""


@dataclass(frozen=True)
class VoiceInfo:
    """One selectable voice, for ``meditate engines NAME``."""

    name: str
    """What a script's ``voice.name`` takes."""
    languages: tuple[str, ...] = ()
    """Language codes it speaks, preferred first."""
    description: str = ""
    """A human name, e.g. ``English (America)``."""


class Engine(ABC):
    """A text-to-speech backend. Subclasses import heavy libraries lazily, inside methods."""

    name: str = ""
    """Registry name."""
    takes_phonemes: bool = False
    """True if ``[[...]]`` spans of IPA phonemes (lexicon ``{phonemes: ...}`` entries) in its
    text are spoken as such; otherwise :meth:`refuses` such a text."""
    applies_rate: bool = False
    """True if the engine speaks at ``voice.rate`` itself; otherwise it is given rate 1 and
    conditioning changes the tempo, pitch kept."""

    def __init__(self, retry: RetrySettings | None = None) -> None:
        self.retry = retry or RetrySettings()

    @abstractmethod
    def version(self) -> str:
        """Engine version; part of the cache key."""

    @abstractmethod
    def availability(self) -> Availability:
        """Whether it can run here."""

    @abstractmethod
    def voices(self) -> list[str]:
        """Voice names it accepts (empty if voices are not selectable)."""

    @abstractmethod
    def languages(self) -> list[str]:
        """Language codes it accepts."""

    def voice_list(self) -> list[VoiceInfo]:
        """Every voice with its languages (by default: the names alone)."""
        return [VoiceInfo(name) for name in self.voices()]

    def language_names(self) -> dict[str, str]:
        """Every language code with its name, where the engine knows it."""
        return {code: "" for code in self.languages()}

    def refuses(self, text: str) -> str:
        """Why this engine cannot speak a prepared text ('' if it can); validation reports it
        at the step."""
        if not self.takes_phonemes and PHONEME_MARKS[0] in text:
            return (
                f"{self.name} takes no phonemes, and the lexicon gives phonemes for a word "
                "here: give that word a respelling, or use an engine that takes phonemes "
                "(espeak, kokoro)"
            )
        return ""

    def own_voice(self, voice: VoiceSettings) -> VoiceSettings:
        """What of a voice enters this engine's output: the rate only if it applies it; never
        the pitch, which conditioning applies."""
        return replace(voice, rate=voice.rate if self.applies_rate else 1.0, pitch=0.0)

    def conditioning_rate(self, voice: VoiceSettings) -> float:
        """The tempo change left to conditioning after this engine has spoken."""
        return 1.0 if self.applies_rate else voice.rate

    @abstractmethod
    def cache_settings(self, voice: VoiceSettings) -> dict[str, str]:
        """The voice settings that change its output (given :meth:`own_voice`)."""

    @abstractmethod
    def synthesize(self, text: str, voice: VoiceSettings) -> EncodedAudio:
        """Speak one prepared sentence (``voice`` is :meth:`own_voice` of the requested one)."""
