"""Pure planning: a script and its settings become a timeline of cues with exact times."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Protocol

from pipeline.core.errors import Place, Problem, ScriptError
from pipeline.core.units import format_clock
from pipeline.project.config import voice_for
from pipeline.project.settings import BackgroundSettings, Settings, VoiceSettings
from pipeline.script.model import (
    BreathCues,
    BreatheStep,
    PauseStep,
    SayStep,
    Script,
    SectionStep,
    SoundStep,
)
from pipeline.script.text import Sentence, split_say, word_count

logger = logging.getLogger(__name__)

MIN_PAUSE_SCALE = 1 / 3
"""A flexible pause never shrinks below a third of its nominal length."""
MIN_ESTIMATE_S = 0.4
"""Shortest estimated length of a sentence: even one word takes a moment to say."""
SPEECH_LENGTH_FACTOR = 3.0
"""A sentence whose synthesized length is this many times its estimate (or under a
1/factor of it) is likely not in its voice's language: a warning."""
SPEECH_LENGTH_MIN_GAP_S = 1.5
"""...if measured and estimate also differ by this much (a one-word sentence varies a lot)."""
MAX_PAUSE_STRETCH = 2.0
"""Flexible pauses stretched further than this to meet a target get a warning (long silences)."""
_EXACT_S = 1e-6


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
    breathing: bool = False
    """True for a breathing cue spoken at the start of a phase."""


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
    nominal_s: float | None = None
    """Length as written, before the solver scaled it (None: same as ``length_s``)."""


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


Cue = SpeechCue | SoundCue | PauseCue | BreathPhaseCue


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
    """End of the track: the tail after the last step, or later when a sound is still ringing
    then (it rings out); the bed's fade-out ends here."""
    natural_length_s: float
    """Length with flexible pauses at their nominal lengths."""
    target_s: float | None
    """The script's target duration, if any."""
    background: BackgroundSettings | None
    """The bed, resolved."""
    pause_scale: float = 1.0
    """Factor the solver applied to every flexible pause (1 without a target)."""
    lead_in_s: float = 0.0
    """Silence before the first step."""
    tail_s: float = 0.0
    """Silence after the last step (a sound still ringing then makes the track longer)."""
    warnings: tuple[Problem, ...] = ()
    """Findings of planning that do not stop it (a pause stretched very far, ...)."""

    @property
    def speech(self) -> tuple[SpeechCue, ...]:
        """The speech cues only."""
        return tuple(c for c in self.cues if isinstance(c, SpeechCue))


def estimate_speech_s(text: str, voice: VoiceSettings, words_per_minute: float) -> float:
    """Length of a sentence before synthesis: its words at ``words_per_minute``, over the rate."""
    words = word_count(text)
    rate = voice.rate if voice.rate > 0 else 1.0
    return max(MIN_ESTIMATE_S, words / words_per_minute * 60.0 / rate)


def breath_phase_names(phase_count: int) -> tuple[str, ...]:
    """``in, hold, out`` for 3 phases; ``in, hold, out, hold`` for 4."""
    return ("in", "hold", "out", "hold")[:phase_count]


def plan(script: Script, settings: Settings, lengths: Lengths) -> Timeline:
    """The timeline of a script: every cue at its exact time, flexible pauses meeting the target.

    ``settings`` are already resolved for this script. Pure: lengths come from ``lengths``,
    estimated from words per minute where speech is not measured yet.
    """
    speech_s = _SpeechLengths(lengths, settings)
    natural_planner = _Planner(script, settings, speech_s, 1.0)
    natural = natural_planner.run()
    target_s = script.duration_s
    if target_s is None:
        return natural
    scale = _solve_scale(script, natural_planner.ends, natural.length_s, target_s)
    if scale == 1.0:
        return natural
    timeline = replace(
        _Planner(script, settings, speech_s, scale).run(), natural_length_s=natural.length_s
    )
    if scale > MAX_PAUSE_STRETCH:
        timeline = replace(
            timeline, warnings=(*timeline.warnings, _stretch_warning(script, timeline))
        )
    logger.debug(
        "%s: flexible pauses x%.4f for %.3f s (natural %.3f s)",
        script.path,
        scale,
        timeline.length_s,
        natural.length_s,
    )
    return timeline


def _solve_scale(
    script: Script, ends: list[tuple[float, float]], natural_s: float, target_s: float
) -> float:
    """The common factor of flexible pauses that makes the track last ``target_s``.

    The track ends at the latest of ``ends``, each ``(time at scale 1, flexible seconds before
    it)``: a time ``a + b * scale``. The answer is the largest scale whose latest end is the
    target, the one where the first end to reach it does.
    """
    if abs(natural_s - target_s) <= _EXACT_S:
        return 1.0
    where = _duration_place(script)
    wanted = f"cannot last {format_clock(target_s)}: natural length {format_clock(natural_s)}"
    if not any(flexible_s > 0 for _, flexible_s in ends):
        raise ScriptError(
            [
                Problem(
                    where,
                    f"{wanted} and nothing can stretch or shrink; add a flexible pause like '30s+'",
                )
            ]
        )
    lines = [(at_s - flexible_s, flexible_s) for at_s, flexible_s in ends]
    shortest_s = max(fixed_s + flexible_s * MIN_PAUSE_SCALE for fixed_s, flexible_s in lines)
    if target_s < shortest_s - _EXACT_S:
        reachable_s = math.ceil(shortest_s * 10 - 1e-9) / 10
        raise ScriptError(
            [
                Problem(
                    where,
                    f"{wanted}, reachable {format_clock(reachable_s)} and longer "
                    "(flexible pauses shrink to a third)",
                )
            ]
        )
    return min((target_s - fixed_s) / flexible_s for fixed_s, flexible_s in lines if flexible_s > 0)


def _stretch_warning(script: Script, timeline: Timeline) -> Problem:
    """The warning for flexible pauses stretched more than ``MAX_PAUSE_STRETCH`` times."""
    return Problem(
        _duration_place(script),
        f"flexible pauses stretch x{timeline.pause_scale:.2f} to last "
        f"{format_clock(timeline.length_s)} (natural length "
        f"{format_clock(timeline.natural_length_s)}; more than x{MAX_PAUSE_STRETCH:g} leaves "
        "long silences): add content or flexible pauses, or shorten 'duration'",
        "warning",
    )


def _duration_place(script: Script) -> Place:
    """Where the script's ``duration`` key is, as precisely as the model knows."""
    if script.duration_place is not None:
        return script.duration_place.at("duration")
    return Place(script.path, 0, 0, "duration")


class _SpeechLengths:
    """Sentence lengths, measured or estimated, each looked up once per plan."""

    def __init__(self, lengths: Lengths, settings: Settings) -> None:
        self._lengths = lengths
        self._words_per_minute = settings.words_per_minute
        self._known: dict[tuple[str, VoiceSettings], tuple[float, bool]] = {}
        self._sounds: dict[str, float] = {}

    def speech(self, text: str, voice: VoiceSettings) -> tuple[float, bool]:
        """``(length_s, estimated)`` of a sentence."""
        key = (text, voice)
        if key not in self._known:
            measured_s = self._lengths.speech(text, voice)
            if measured_s is None:
                estimate_s = estimate_speech_s(text, voice, self._words_per_minute)
                self._known[key] = (estimate_s, True)
            else:
                self._known[key] = (measured_s, False)
        return self._known[key]

    def sound(self, asset: str) -> float:
        """Full length of a one-shot asset."""
        if asset not in self._sounds:
            self._sounds[asset] = self._lengths.sound(asset)
        return self._sounds[asset]


class _Planner:
    """One pass over the steps with flexible pauses scaled by ``scale``."""

    def __init__(
        self, script: Script, settings: Settings, lengths: _SpeechLengths, scale: float
    ) -> None:
        self.script = script
        self.settings = settings
        self.lengths = lengths
        self.scale = scale
        self.now_s = settings.lead_in_s
        self.flexible_s = 0.0
        """Nominal length of the flexible pauses passed so far."""
        self.ends: list[tuple[float, float]] = []
        """Where the track may end, each with ``flexible_s`` at that point: sounds ringing out."""
        self.after_speech = False
        """The last step that took time was a ``say`` or ``breathe``: a paragraph gap is due."""
        self.section = ""
        self.cues: list[Cue] = []
        self.chapters: list[Chapter] = []
        self.problems: list[Problem] = []
        self.warnings: dict[tuple[str, VoiceSettings], Problem] = {}

    def run(self) -> Timeline:
        """The timeline; its natural length is its own length (the caller fixes it if scaled)."""
        for step in self.script.steps:
            if isinstance(step, SayStep):
                self._say(step)
            elif isinstance(step, PauseStep):
                self._pause(step)
            elif isinstance(step, BreatheStep):
                self._breathe(step)
            elif isinstance(step, SoundStep):
                self._sound(step)
            else:
                self._section(step)
        if self.problems:
            raise ScriptError(self.problems)
        self.ends.append((self.now_s + self.settings.tail_s, self.flexible_s))
        length_s = max(end_s for end_s, _ in self.ends)
        return Timeline(
            cues=tuple(sorted(self.cues, key=lambda cue: cue.start_s)),
            chapters=tuple(self.chapters),
            length_s=length_s,
            natural_length_s=length_s,
            target_s=self.script.duration_s,
            background=self.settings.background,
            pause_scale=self.scale,
            lead_in_s=self.settings.lead_in_s,
            tail_s=self.settings.tail_s,
            warnings=tuple(self.warnings.values()),
        )

    def _section(self, step: SectionStep) -> None:
        self.section = step.title
        # a chapter that nothing precedes holds the lead-in too: chapters start at 0
        start_s = 0.0 if not self.cues and self.now_s <= self.settings.lead_in_s else self.now_s
        self.chapters.append(Chapter(step.title, start_s))

    def _pause(self, step: PauseStep) -> None:
        length_s = step.length_s * self.scale if step.flexible else step.length_s
        self.cues.append(
            PauseCue(
                start_s=self.now_s,
                length_s=length_s,
                flexible=step.flexible,
                section=self.section,
                place=step.place,
                nominal_s=step.length_s,
            )
        )
        self.now_s += length_s
        if step.flexible:
            self.flexible_s += step.length_s
        self.after_speech = False

    def _sound(self, step: SoundStep) -> None:
        full_s = self.lengths.sound(step.asset)
        wait_s = step.wait_s if step.wait_s is not None else full_s
        self.ends.append((self.now_s + full_s, self.flexible_s))
        self.cues.append(
            SoundCue(
                start_s=self.now_s,
                asset=step.asset,
                gain_db=step.gain_db,
                wait_s=wait_s,
                section=self.section,
                place=step.place,
            )
        )
        self.now_s += wait_s
        self.after_speech = False

    def _say(self, step: SayStep) -> None:
        sentences = self._sentences(step)
        if not sentences:
            return
        voice = voice_for(step.voice, self.settings)
        for index, sentence in enumerate(sentences):
            if sentence.pause_before_s is not None:
                self.now_s += sentence.pause_before_s
            elif index > 0:
                self.now_s += (
                    self.settings.paragraph_pause_s
                    if sentence.new_paragraph
                    else self.settings.sentence_pause_s
                )
            elif self.after_speech:
                self.now_s += self.settings.paragraph_pause_s
            length_s, estimated = self._speech(sentence.text, voice, step.place)
            self.cues.append(
                SpeechCue(
                    start_s=self.now_s,
                    length_s=length_s,
                    text=sentence.text,
                    voice=voice,
                    section=self.section,
                    place=step.place,
                    estimated=estimated,
                )
            )
            self.now_s += length_s
        self.after_speech = True
        if sentences[-1].pause_after_s is not None:
            self.now_s += sentences[-1].pause_after_s
            self.after_speech = False

    def _speech(self, text: str, voice: VoiceSettings, place: Place) -> tuple[float, bool]:
        """``(length_s, estimated)`` of a sentence; a measured length far from the estimate
        (text not in the voice's language?) is a warning at its first place.
        """
        length_s, estimated = self.lengths.speech(text, voice)
        if not estimated and (text, voice) not in self.warnings:
            estimate_s = estimate_speech_s(text, voice, self.settings.words_per_minute)
            ratio = length_s / estimate_s
            far = ratio > SPEECH_LENGTH_FACTOR or ratio < 1 / SPEECH_LENGTH_FACTOR
            if far and abs(length_s - estimate_s) >= SPEECH_LENGTH_MIN_GAP_S:
                self.warnings[(text, voice)] = _length_warning(
                    text, voice, place, length_s, estimate_s
                )
        return length_s, estimated

    def _sentences(self, step: SayStep) -> list[Sentence]:
        """The sentences of a ``say``; a malformed pause marker is a problem at the step."""
        try:
            return split_say(step.text)
        except ValueError as error:
            self.problems.append(Problem(step.place, str(error)))
            return []

    def _breathe(self, step: BreatheStep) -> None:
        if self.after_speech:
            self.now_s += self.settings.paragraph_pause_s
        voice = voice_for(None, self.settings)
        names = breath_phase_names(len(step.phases_s))
        reported: set[int] = set()
        for cycle in range(1, step.cycles + 1):
            for index, (name, phase_s) in enumerate(zip(names, step.phases_s, strict=False)):
                if phase_s <= 0:
                    continue
                self.cues.append(
                    BreathPhaseCue(
                        start_s=self.now_s,
                        length_s=phase_s,
                        phase=name,
                        cycle=cycle,
                        section=self.section,
                        place=step.place,
                    )
                )
                words = _cue_words(step.cues, name)
                if words:
                    length_s, estimated = self._speech(words, voice, step.place)
                    if length_s > phase_s + _EXACT_S and index not in reported:
                        reported.add(index)
                        self.problems.append(
                            _cue_too_long(step, words, name, length_s, estimated, phase_s)
                        )
                    self.cues.append(
                        SpeechCue(
                            start_s=self.now_s,
                            length_s=length_s,
                            text=words,
                            voice=voice,
                            section=self.section,
                            place=step.place,
                            estimated=estimated,
                            breathing=True,
                        )
                    )
                self.now_s += phase_s
        self.after_speech = True


def _length_warning(
    text: str, voice: VoiceSettings, place: Place, length_s: float, estimate_s: float
) -> Problem:
    """The warning for a sentence whose synthesized length is far from its estimate."""
    shown = text if len(text) <= 40 else text[:37].rstrip() + "..."
    name = voice.name or voice.language
    return Problem(
        place,
        f"{shown!r} lasts {length_s:.1f} s as synthesized, x{length_s / estimate_s:.1f} its "
        f"estimate of {estimate_s:.1f} s (more than x{SPEECH_LENGTH_FACTOR:g} either way): "
        f"is the text in the language of its voice ({voice.engine} {name!r})?",
        "warning",
    )


def _cue_words(cues: BreathCues | None, phase: str) -> str:
    """The words spoken at the start of a phase ('' for none)."""
    if cues is None:
        return ""
    return {"in": cues.inhale, "hold": cues.hold, "out": cues.exhale}[phase].strip()


def _cue_too_long(
    step: BreatheStep, words: str, phase: str, length_s: float, estimated: bool, phase_s: float
) -> Problem:
    """The error for a breathing cue that does not fit in its phase."""
    key_path = step.place.key_path
    if not key_path.endswith("breathe"):
        key_path = f"{key_path}.breathe" if key_path else "breathe"
    how = "is estimated at" if estimated else "lasts"
    return Problem(
        step.place.at(key_path),
        f"the cue {words!r} {how} {length_s:.2f} s, longer than its {phase_s:g} s "
        f"'{phase}' phase; shorten the cue or lengthen the phase",
    )
