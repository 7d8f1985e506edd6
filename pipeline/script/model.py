"""The script model: frozen dataclasses, one per concept of the script format (docs/scripts.md).

Values that may be left to project defaults are ``None`` here; `pipeline.project.config`
resolves them into complete settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.errors import Place


@dataclass(frozen=True)
class Voice:
    """A (possibly partial) voice; unset fields fall back to the enclosing voice."""

    engine: str | None = None
    """Registered engine name, e.g. ``espeak`` or ``gtts``."""
    name: str | None = None
    """Engine-specific voice name, e.g. ``en-us`` for espeak; ignored by gtts."""
    language: str | None = None
    """Language code; defaults to the script's ``language``."""
    tld: str | None = None
    """gTTS accent, the Google Translate top-level domain (``com``, ``co.uk``...)."""
    rate: float | None = None
    """Tempo factor 0.5 to 2.0, the pitch kept."""
    pitch: float | None = None
    """Pitch shift in semitones, -12 to 12, the length kept."""


@dataclass(frozen=True)
class Background:
    """A looping bed under the whole track."""

    asset: str
    """Catalog name, or a path relative to the script."""
    gain_db: float | None = None
    """Level relative to the asset's catalog level."""
    fade_in_s: float | None = None
    """Fade-in at the start of the track."""
    fade_out_s: float | None = None
    """Fade-out that ends exactly at the end of the track."""
    duck_db: float | None = None
    """Extra attenuation while speech plays; 0 turns ducking off."""
    place: Place | None = field(default=None, compare=False)
    """Where the background is declared."""


@dataclass(frozen=True)
class SayStep:
    """Speak a text, sentence by sentence."""

    text: str
    """The text, possibly with paragraphs and ``[pause Ns]`` markers."""
    voice: Voice | None
    """Per-step voice override merged over the script voice."""
    place: Place
    """Where the step is."""


@dataclass(frozen=True)
class SoundStep:
    """Play a one-shot asset."""

    asset: str
    """Catalog name, or a path relative to the script."""
    gain_db: float
    """Gain relative to the asset's catalog level."""
    wait_s: float | None
    """How far the timeline advances; ``None`` means the sound's full length."""
    place: Place
    """Where the step is."""


@dataclass(frozen=True)
class PauseStep:
    """Silence in the speech (the bed keeps playing)."""

    length_s: float
    """Nominal length."""
    flexible: bool
    """``30s+``: scaled to meet the script's target duration."""
    place: Place
    """Where the step is."""


@dataclass(frozen=True)
class BreathCues:
    """Words spoken at the start of each breathing phase."""

    inhale: str = "Breathe in"
    """Spoken at the start of an IN phase."""
    hold: str = "Hold"
    """Spoken at the start of a HOLD phase."""
    exhale: str = "Breathe out"
    """Spoken at the start of an OUT phase."""


@dataclass(frozen=True)
class BreatheStep:
    """A paced breathing exercise."""

    phases_s: tuple[float, ...]
    """IN, HOLD, OUT[, HOLD] lengths in seconds; a 0 s phase is skipped."""
    cycles: int
    """How many times the pattern repeats."""
    cues: BreathCues | None
    """Cue words, or ``None`` for silent phases."""
    place: Place
    """Where the step is."""


@dataclass(frozen=True)
class SectionStep:
    """Start a chapter; takes no time."""

    title: str
    """The chapter title."""
    place: Place
    """Where the step is."""


Step = SayStep | SoundStep | PauseStep | BreatheStep | SectionStep


@dataclass(frozen=True)
class Script:
    """One meditation session, with includes expanded."""

    path: Path
    """The script file as given."""
    id: str
    """Track id, ``^[a-z0-9][a-z0-9-]*$``; defaults to the file stem."""
    title: str
    """Human title, used in tags and the manifest."""
    id_place: Place | None = field(default=None, compare=False)
    """Where ``id`` is written; None when it comes from the file name."""
    description: str = ""
    """One or two sentences for the app and the comment tag."""
    author: str = ""
    """Author (artist tag)."""
    language: str | None = None
    """Language code; project default, else ``en``."""
    category: str = ""
    """Category (album tag), e.g. ``anxiety``."""
    tags: tuple[str, ...] = ()
    """Free tags for the app."""
    duration_s: float | None = None
    """Target length; flexible pauses are scaled to meet it."""
    duration_place: Place | None = field(default=None, compare=False)
    """Where ``duration`` is written, for the solver's errors."""
    voice: Voice = Voice()
    """Script voice, merged over project defaults."""
    voice_place: Place | None = field(default=None, compare=False)
    """Where ``voice`` is written, for errors about the voice it names."""
    background: Background | None = None
    """Bed under the track, or ``None``."""
    background_off: bool = False
    """``background: null`` given explicitly: no bed even if the project has one."""
    sentence_pause_s: float | None = None
    """Gap between sentences inside one ``say``."""
    paragraph_pause_s: float | None = None
    """Gap at a blank line inside ``say`` and between consecutive spoken steps."""
    lead_in_s: float | None = None
    """Silence before the first step."""
    tail_s: float | None = None
    """Silence after the last step (a sound still ringing then rings out first)."""
    steps: tuple[Step, ...] = ()
    """Steps in play order, includes expanded."""
    includes: tuple[Path, ...] = ()
    """Every file included, directly or not (for build keys)."""
