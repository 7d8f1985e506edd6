"""Pure planning: a script and its settings become a timeline of cues with exact times."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Union

from pipeline.errors import Place
from pipeline.settings import BackgroundSettings, VoiceSettings


class Lengths(Protocol):
    """Where planning gets the lengths it cannot compute itself."""

    def speech(self, text: str, voice: VoiceSettings) -> float | None:
        """Measured length of a sentence's conditioned clip, or None if not synthesized yet."""

    def sound(self, asset: str) -> float:
        """Full length of a one-shot asset."""


@dataclass(frozen=True)
class SpeechCue:
    """One sentence spoken at an exact time."""

    start_s: float
    """Start of the speech (its first non-silent sample)."""
    length_s: float
    """Length of the conditioned clip (measured, or estimated before synthesis)."""
    text: str
    """The sentence as written (captions show this)."""
    voice: VoiceSettings
    """The complete voice for this sentence."""
    section: str
    """Title of the chapter it belongs to ('' before the first section)."""
    place: Place
    """The step it comes from."""
    estimated: bool
    """True while the length is an estimate (speech not cached yet)."""


@dataclass(frozen=True)
class SoundCue:
    """A one-shot asset started at an exact time."""

    start_s: float
    """When the sound starts."""
    asset: str
    """Catalog name or script-relative path."""
    gain_db: float
    """Gain relative to the catalog level."""
    wait_s: float
    """How far the timeline advanced for it (the sound may ring on)."""
    section: str
    """Chapter title."""
    place: Place
    """The step it comes from."""


@dataclass(frozen=True)
class PauseCue:
    """Silence in the speech; shown in plans, not rendered."""

    start_s: float
    """Start of the silence."""
    length_s: float
    """Exact length after the duration solver."""
    flexible: bool
    """Whether the solver could scale it."""
    section: str
    """Chapter title."""
    place: Place
    """The step it comes from."""


@dataclass(frozen=True)
class BreathPhaseCue:
    """One breathing phase of exact length; its spoken cue is a separate SpeechCue."""

    start_s: float
    """Start of the phase."""
    length_s: float
    """Exact length of the phase."""
    phase: str
    """``in``, ``hold`` or ``out``."""
    cycle: int
    """1-based cycle number."""
    section: str
    """Chapter title."""
    place: Place
    """The step it comes from."""


Cue = Union[SpeechCue, SoundCue, PauseCue, BreathPhaseCue]


@dataclass(frozen=True)
class Chapter:
    """A chapter mark."""

    title: str
    """Section title."""
    start_s: float
    """Where it starts."""


@dataclass(frozen=True)
class Timeline:
    """The whole track, time-exact; mixing and captions consume it and decide nothing."""

    cues: tuple[Cue, ...]
    """Every cue, in start order."""
    chapters: tuple[Chapter, ...]
    """Chapters in time order."""
    length_s: float
    """End of the last step; the bed's fade-out ends here."""
    natural_length_s: float
    """Length with flexible pauses at their nominal lengths."""
    target_s: float | None
    """The script's target duration, if any."""
    background: BackgroundSettings | None
    """The bed, resolved."""

    @property
    def speech(self) -> tuple[SpeechCue, ...]:
        """The speech cues only."""
        return tuple(c for c in self.cues if isinstance(c, SpeechCue))
