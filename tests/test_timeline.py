"""Planning: every timing rule of docs/scripts.md, with exact start times."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.core.errors import Place, ScriptError
from pipeline.plan.timeline import (
    MAX_PAUSE_STRETCH,
    BreathPhaseCue,
    Chapter,
    PauseCue,
    SoundCue,
    SpeechCue,
    Timeline,
    estimate_speech_s,
    plan,
)
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
    Step,
    Voice,
)

PATH = Path("x.yaml")
# Binary-exact numbers, so start times compare with ==. No lead-in or tail, so the step rules
# read plainly; the lead-in and tail have tests of their own.
SETTINGS = Settings(sentence_pause_s=0.5, paragraph_pause_s=2.0, lead_in_s=0.0, tail_s=0.0)


class FakeLengths:
    """Fixed speech lengths (2 s unless listed; None = not synthesized) and sound lengths."""

    def __init__(
        self,
        speech: dict[str, float | None] | None = None,
        default_s: float | None = 2.0,
        sounds: dict[str, float] | None = None,
    ) -> None:
        self.table = speech or {}
        self.default_s = default_s
        self.sounds = sounds or {}
        self.speech_calls: list[tuple[str, VoiceSettings]] = []

    def speech(self, text: str, voice: VoiceSettings) -> float | None:
        self.speech_calls.append((text, voice))
        return self.table.get(text, self.default_s)

    def sound(self, asset: str) -> float:
        return self.sounds.get(asset, 5.0)


def at(index: int) -> Place:
    return Place(PATH, index + 10, 5, f"steps[{index}]")


def say(text: str, index: int = 0, voice: Voice | None = None) -> SayStep:
    return SayStep(text, voice, at(index))


def pause(length_s: float, flexible: bool = False, index: int = 0) -> PauseStep:
    return PauseStep(length_s, flexible, at(index))


def sound(asset: str = "bowl", wait_s: float | None = None, index: int = 0) -> SoundStep:
    return SoundStep(asset, -3.0, wait_s, at(index))


def breathe(
    phases_s: tuple[float, ...],
    cycles: int = 1,
    cues: BreathCues | None = BreathCues(),  # noqa: B008
    index: int = 0,
) -> BreatheStep:
    return BreatheStep(phases_s, cycles, cues, at(index))


def section(title: str, index: int = 0) -> SectionStep:
    return SectionStep(title, at(index))


def script(*steps: Step, duration_s: float | None = None, **extra: object) -> Script:
    return Script(path=PATH, id="x", title="X", steps=steps, duration_s=duration_s, **extra)  # type: ignore[arg-type]


def make(
    *steps: Step,
    lengths: FakeLengths | None = None,
    settings: Settings = SETTINGS,
    duration_s: float | None = None,
) -> Timeline:
    return plan(script(*steps, duration_s=duration_s), settings, lengths or FakeLengths())


def speech_starts(timeline: Timeline) -> list[float]:
    return [cue.start_s for cue in timeline.speech]


def of_kind(timeline: Timeline, kind: type) -> list:  # type: ignore[type-arg]
    return [cue for cue in timeline.cues if isinstance(cue, kind)]


# Gaps inside a say


def test_sentences_are_sentence_pause_apart() -> None:
    timeline = make(say("One. Two! Three?"))
    assert speech_starts(timeline) == [0.0, 2.5, 5.0]
    assert [cue.text for cue in timeline.speech] == ["One.", "Two!", "Three?"]
    assert timeline.length_s == 7.0


def test_paragraphs_are_paragraph_pause_apart() -> None:
    timeline = make(say("One. Two.\n\nThree."))
    assert speech_starts(timeline) == [0.0, 2.5, 6.5]
    assert timeline.length_s == 8.5


def test_inline_pause_sets_the_gap_exactly() -> None:
    assert speech_starts(make(say("One. [pause 3s] Two."))) == [0.0, 5.0]
    assert speech_starts(make(say("One.\n\n[pause 1s] Two."))) == [0.0, 3.0]
    assert speech_starts(make(say("One. [pause 0s] Two."))) == [0.0, 2.0]


def test_measured_lengths_shape_the_times() -> None:
    lengths = FakeLengths({"Long one.": 4.25, "Short.": 0.75})
    timeline = make(say("Long one. Short. Other."), lengths=lengths)
    assert speech_starts(timeline) == [0.0, 4.75, 6.0]
    assert [cue.length_s for cue in timeline.speech] == [4.25, 0.75, 2.0]
    assert not any(cue.estimated for cue in timeline.speech)


# Gaps between steps


def test_consecutive_says_are_paragraph_pause_apart() -> None:
    timeline = make(say("One.", 0), say("Two.", 1))
    assert speech_starts(timeline) == [0.0, 4.0]
    assert timeline.length_s == 6.0


def test_a_pause_replaces_the_paragraph_gap() -> None:
    timeline = make(say("One.", 0), pause(3.0, index=1), say("Two.", 2))
    assert speech_starts(timeline) == [0.0, 5.0]
    (silence,) = of_kind(timeline, PauseCue)
    assert (silence.start_s, silence.length_s, silence.flexible) == (2.0, 3.0, False)
    assert silence.place == at(1)


def test_two_pauses_set_the_gap_to_their_sum() -> None:
    timeline = make(say("One."), pause(3.0), pause(1.5), say("Two."))
    assert speech_starts(timeline) == [0.0, 6.5]
    assert [c.start_s for c in of_kind(timeline, PauseCue)] == [2.0, 5.0]


def test_a_pause_shorter_than_the_paragraph_gap_still_replaces_it() -> None:
    assert speech_starts(make(say("One."), pause(0.5), say("Two."))) == [0.0, 2.5]


def test_a_pause_at_the_start_advances_time() -> None:
    timeline = make(pause(4.0), say("One."))
    assert speech_starts(timeline) == [4.0]
    assert timeline.length_s == 6.0


def test_a_trailing_pause_ends_the_track() -> None:
    timeline = make(say("One."), pause(10.0))
    assert timeline.length_s == 12.0


def test_a_leading_inline_pause_replaces_the_gap() -> None:
    assert speech_starts(make(say("One."), say("[pause 1s] Two."))) == [0.0, 3.0]
    assert speech_starts(make(say("[pause 1s] One."))) == [1.0]


def test_a_trailing_inline_pause_sets_the_gap_after_the_say() -> None:
    timeline = make(say("One. [pause 3s]"), say("Two."))
    assert speech_starts(timeline) == [0.0, 5.0]
    assert make(say("One. [pause 3s]")).length_s == 5.0
    timeline = make(say("One. [pause 3s]"), sound(wait_s=1.0))
    assert of_kind(timeline, SoundCue)[0].start_s == 5.0


def test_a_malformed_pause_marker_is_a_problem_at_the_step() -> None:
    with pytest.raises(ScriptError) as caught:
        make(say("One. [pause soon] Two.", 2))
    (problem,) = caught.value.problems
    assert problem.place == at(2)


# Sounds


def test_sound_advances_by_its_wait_and_the_next_say_follows_at_once() -> None:
    timeline = make(say("One."), sound(wait_s=1.5), say("Two."))
    (bell,) = of_kind(timeline, SoundCue)
    assert (bell.start_s, bell.wait_s, bell.asset, bell.gain_db) == (2.0, 1.5, "bowl", -3.0)
    assert speech_starts(timeline) == [0.0, 3.5]
    assert timeline.length_s == 7.0  # the 5 s bowl started at 2.0 rings out


def test_sound_without_wait_advances_by_its_full_length() -> None:
    lengths = FakeLengths(sounds={"chime": 3.25})
    timeline = make(sound("chime"), say("One."), lengths=lengths)
    (bell,) = of_kind(timeline, SoundCue)
    assert (bell.start_s, bell.wait_s) == (0.0, 3.25)
    assert speech_starts(timeline) == [3.25]


def test_sound_at_the_end_rings_out_before_the_track_ends() -> None:
    # issue 11 D9: 'say: Goodbye.' then a 9 s chime with 'wait: 1s' ended 0.8 s into the chime
    lengths = FakeLengths({"Goodbye.": 0.8}, sounds={"chime": 9.0})
    settings = replace(SETTINGS, tail_s=2.0)
    timeline = make(say("Goodbye."), sound("chime", wait_s=1.0), lengths=lengths, settings=settings)
    assert timeline.length_s == 0.8 + 9.0
    # a wait longer than the sound: the tail follows the last step as usual
    timeline = make(
        say("Goodbye."), sound("chime", wait_s=12.0), lengths=lengths, settings=settings
    )
    assert timeline.length_s == 0.8 + 12.0 + 2.0


def test_an_earlier_sound_still_ringing_sets_the_end_too() -> None:
    lengths = FakeLengths(sounds={"gong": 20.0})
    timeline = make(sound("gong", wait_s=1.0), say("One."), lengths=lengths)
    assert timeline.length_s == 20.0


def test_a_target_counts_the_ring_out_of_the_last_sound() -> None:
    lengths = FakeLengths(sounds={"chime": 9.0})
    steps = (say("One."), pause(10.0, flexible=True, index=1), sound("chime", 1.0, index=2))
    timeline = make(*steps, lengths=lengths, duration_s=31.0)
    # 2 s of speech + 10 s x scale + 9 s of chime = 31 s
    assert timeline.pause_scale == pytest.approx(2.0)
    assert timeline.length_s == pytest.approx(31.0)
    assert timeline.natural_length_s == pytest.approx(21.0)
    with pytest.raises(ScriptError, match=r"reachable 00:14\.4 and longer"):
        make(*steps, lengths=lengths, duration_s=12.0)


def test_a_target_met_by_a_sound_that_rings_past_the_steps_while_pauses_stretch() -> None:
    # the bell rings out after the steps at scale 1; stretched, the steps end later than it
    lengths = FakeLengths(sounds={"gong": 20.0})
    steps = (sound("gong", 1.0), say("One.", index=1), pause(4.0, flexible=True, index=2))
    assert make(*steps, lengths=lengths).length_s == 20.0
    timeline = make(*steps, lengths=lengths, duration_s=27.0)
    assert timeline.pause_scale == pytest.approx(6.0)
    assert timeline.length_s == pytest.approx(27.0)


def test_lead_in_and_tail_frame_the_steps() -> None:
    settings = replace(SETTINGS, lead_in_s=1.0, tail_s=2.5)
    timeline = make(section("Start"), say("One. Two."), section("End", index=1), settings=settings)
    assert speech_starts(timeline) == [1.0, 3.5]
    assert timeline.length_s == 1.0 + 4.5 + 2.5
    assert (timeline.lead_in_s, timeline.tail_s) == (1.0, 2.5)
    # the first chapter holds the lead-in; later ones start where their steps do
    assert [c.start_s for c in timeline.chapters] == [0.0, 5.5]


def test_lead_in_and_tail_count_in_the_target() -> None:
    settings = replace(SETTINGS, lead_in_s=1.0, tail_s=2.0)
    timeline = make(say("One."), pause(10.0, flexible=True, index=1), settings=settings,
                    duration_s=20.0)  # fmt: skip
    assert timeline.length_s == pytest.approx(20.0)
    assert timeline.pause_scale == pytest.approx(1.5)


def test_the_default_lead_in_and_tail() -> None:
    timeline = plan(script(say("One.")), Settings(), FakeLengths())
    assert speech_starts(timeline) == [1.0]
    assert timeline.length_s == 1.0 + 2.0 + 2.0


def test_pauses_stretched_beyond_the_limit_give_a_warning() -> None:
    # issue 11 D10: 'duration: 2h' with one 'Hi.' stretched a pause x1439.9 without a word
    steps = (say("Hi."), pause(5.0, flexible=True, index=1))
    lengths = FakeLengths({"Hi.": 0.5})
    within = make(*steps, lengths=lengths, duration_s=0.5 + 5.0 * MAX_PAUSE_STRETCH)
    assert within.warnings == ()
    far = make(*steps, lengths=lengths, duration_s=7200.0)
    (warning,) = far.warnings
    assert warning.severity == "warning"
    assert warning.place.key_path == "duration"
    assert "flexible pauses stretch x1439.90 to last 2:00:00.0" in warning.message
    assert "more than x2" in warning.message


def test_pause_after_a_sound_simply_advances() -> None:
    timeline = make(say("One."), sound(wait_s=1.0), pause(2.0), say("Two."))
    assert speech_starts(timeline) == [0.0, 5.0]


def test_a_sound_and_the_say_after_it_share_a_start_in_order() -> None:
    timeline = make(sound(wait_s=0.0), say("One."))
    assert [type(cue) for cue in timeline.cues] == [SoundCue, SpeechCue]
    assert [cue.start_s for cue in timeline.cues] == [0.0, 0.0]


# Breathing


def test_breathing_phases_have_exact_lengths_and_cues_at_their_starts() -> None:
    lengths = FakeLengths({"Breathe in": 1.0, "Hold": 0.5, "Breathe out": 1.25})
    timeline = make(say("Ready."), breathe((4.0, 7.0, 8.0), cycles=2), lengths=lengths)
    phases = of_kind(timeline, BreathPhaseCue)
    assert [(p.phase, p.cycle, p.start_s, p.length_s) for p in phases] == [
        ("in", 1, 4.0, 4.0),
        ("hold", 1, 8.0, 7.0),
        ("out", 1, 15.0, 8.0),
        ("in", 2, 23.0, 4.0),
        ("hold", 2, 27.0, 7.0),
        ("out", 2, 34.0, 8.0),
    ]
    cues = [cue for cue in timeline.speech if cue.breathing]
    assert [(c.text, c.start_s, c.length_s) for c in cues] == [
        ("Breathe in", 4.0, 1.0),
        ("Hold", 8.0, 0.5),
        ("Breathe out", 15.0, 1.25),
        ("Breathe in", 23.0, 1.0),
        ("Hold", 27.0, 0.5),
        ("Breathe out", 34.0, 1.25),
    ]
    assert timeline.length_s == 42.0


def test_four_phase_pattern_names_and_a_zero_phase_is_skipped() -> None:
    box = make(breathe((4.0, 4.0, 4.0, 4.0), cues=None))
    assert [p.phase for p in of_kind(box, BreathPhaseCue)] == ["in", "hold", "out", "hold"]
    assert box.speech == ()
    assert box.length_s == 16.0
    coherent = make(breathe((5.5, 0.0, 5.5), cycles=2))
    phases = of_kind(coherent, BreathPhaseCue)
    assert [(p.phase, p.start_s) for p in phases] == [
        ("in", 0.0),
        ("out", 5.5),
        ("in", 11.0),
        ("out", 16.5),
    ]
    assert [c.text for c in coherent.speech] == ["Breathe in", "Breathe out"] * 2
    assert coherent.length_s == 22.0


def test_custom_cue_words_and_the_gap_after_breathing() -> None:
    words = BreathCues(inhale="In", hold="", exhale="Out")
    timeline = make(breathe((2.0, 1.0, 3.0), cues=words), say("Done."))
    assert [(c.text, c.start_s) for c in timeline.speech] == [
        ("In", 0.0),
        ("Out", 3.0),
        ("Done.", 8.0),
    ]
    assert timeline.speech[-1].breathing is False


def test_pause_between_breathing_and_say_replaces_the_gap() -> None:
    timeline = make(breathe((2.0, 0.0, 2.0), cues=None), pause(1.0), say("Done."))
    assert speech_starts(timeline) == [5.0]


def test_a_cue_longer_than_its_phase_is_an_error() -> None:
    lengths = FakeLengths({"Breathe out": 1.5, "Breathe in": 0.5, "Hold": 0.5})
    with pytest.raises(ScriptError) as caught:
        make(say("One.", 3), breathe((1.0, 1.0, 1.0), cycles=3, index=4), lengths=lengths)
    (problem,) = caught.value.problems
    assert problem.place == Place(PATH, 14, 5, "steps[4].breathe")
    assert "'Breathe out'" in problem.message
    assert "1.50 s" in problem.message and "1 s 'out' phase" in problem.message
    assert problem.format().startswith("x.yaml:14:5: error: steps[4].breathe: ")


def test_an_estimated_cue_longer_than_its_phase_is_an_error_too() -> None:
    lengths = FakeLengths(default_s=None)
    slow = Settings(words_per_minute=60.0)
    with pytest.raises(ScriptError, match=r"'Breathe in' is estimated at 2\.00 s"):
        make(breathe((1.0, 0.0, 4.0)), lengths=lengths, settings=slow)


# Voices


def test_resolve_voice_layers_forced_over_step_over_script() -> None:
    script_voice = VoiceSettings(engine="espeak", name="en-us", language="en", tld="com", rate=0.9)
    settings = Settings(voice=script_voice)
    assert voice_for(None, settings) == script_voice
    step_voice = Voice(name="en-gb", rate=0.8)
    assert voice_for(step_voice, settings) == VoiceSettings("espeak", "en-gb", "en", "com", 0.8)
    forced = Settings(voice=script_voice, forced_voice=Voice(engine="gtts", rate=1.25))
    assert voice_for(step_voice, forced) == VoiceSettings("gtts", "en-gb", "en", "com", 1.25)
    assert voice_for(Voice(tld="co.uk"), forced) == VoiceSettings(
        "gtts", "en-us", "en", "co.uk", 1.25
    )


def test_each_sentence_is_measured_with_its_resolved_voice() -> None:
    settings = Settings(
        sentence_pause_s=0.5,
        paragraph_pause_s=2.0,
        voice=VoiceSettings(name="en-us", rate=0.9),
        forced_voice=Voice(engine="gtts"),
    )
    lengths = FakeLengths()
    timeline = make(
        say("Plain.", 0), say("Slow.", 1, voice=Voice(rate=0.8)), lengths=lengths, settings=settings
    )
    plain, slow = timeline.speech
    assert plain.voice == VoiceSettings(engine="gtts", name="en-us", rate=0.9)
    assert slow.voice == VoiceSettings(engine="gtts", name="en-us", rate=0.8)
    assert ("Slow.", slow.voice) in lengths.speech_calls


def test_breathing_cues_use_the_script_voice_under_forced_fields() -> None:
    settings = Settings(voice=VoiceSettings(rate=0.9), forced_voice=Voice(name="en-gb"))
    timeline = make(breathe((4.0, 0.0, 4.0)), settings=settings)
    assert {cue.voice for cue in timeline.speech} == {VoiceSettings(name="en-gb", rate=0.9)}


# Estimation


def test_estimate_is_words_per_minute_over_rate_with_a_floor() -> None:
    voice = VoiceSettings(rate=0.5)
    assert estimate_speech_s("one two three four five", voice, 150.0) == pytest.approx(4.0)
    assert estimate_speech_s("one two three", VoiceSettings(rate=2.0), 90.0) == pytest.approx(1.0)
    assert estimate_speech_s("Hi.", VoiceSettings(), 300.0) == pytest.approx(0.4)
    assert estimate_speech_s("Don't worry, it's 3.5 km.", VoiceSettings(), 60.0) == 5.0


def test_unmeasured_sentences_are_estimated_and_marked() -> None:
    lengths = FakeLengths({"Measured one.": 1.5}, default_s=None)
    settings = replace(SETTINGS, voice=VoiceSettings(rate=0.5))
    timeline = make(
        say("Measured one. Six words are in this sentence."), lengths=lengths, settings=settings
    )
    measured, guessed = timeline.speech
    assert (measured.length_s, measured.estimated) == (1.5, False)
    assert guessed.estimated is True
    assert guessed.length_s == pytest.approx(6 / 150 * 60 / 0.5)
    assert guessed.start_s == 2.0


def test_each_length_is_asked_once_per_plan_even_when_solving() -> None:
    lengths = FakeLengths()
    make(say("Same."), pause(10.0, True), say("Same."), lengths=lengths, duration_s=20.0)
    assert len(lengths.speech_calls) == 1


# Target duration


def solver_script() -> tuple[Step, ...]:
    return (
        say("One.", 0),
        pause(30.0, True, 1),
        say("Two.", 2),
        pause(10.0, False, 3),
        pause(20.0, True, 4),
    )


def test_no_target_keeps_nominal_pauses() -> None:
    timeline = make(*solver_script())
    assert timeline.length_s == timeline.natural_length_s == 64.0
    assert timeline.target_s is None and timeline.pause_scale == 1.0


def test_solver_shrinks_flexible_pauses_in_proportion_to_meet_the_target() -> None:
    timeline = make(*solver_script(), duration_s=44.0)
    assert timeline.length_s == pytest.approx(44.0, abs=1e-9)
    assert timeline.natural_length_s == 64.0
    assert timeline.target_s == 44.0
    assert timeline.pause_scale == pytest.approx(0.6)
    pauses = of_kind(timeline, PauseCue)
    assert [p.length_s for p in pauses] == pytest.approx([18.0, 10.0, 12.0])
    assert [p.nominal_s for p in pauses] == [30.0, 10.0, 20.0]
    assert speech_starts(timeline) == pytest.approx([0.0, 20.0])


def test_solver_stretches_flexible_pauses() -> None:
    timeline = make(*solver_script(), duration_s=300.0)
    assert timeline.length_s == pytest.approx(300.0, abs=1e-9)
    assert timeline.pause_scale == pytest.approx(286.0 / 50.0)


def test_solver_exact_on_an_awkward_target() -> None:
    lengths = FakeLengths({"One.": 1.2345678, "Two.": 3.3333333})
    timeline = make(*solver_script(), lengths=lengths, duration_s=100.0 / 3.0)
    assert abs(timeline.length_s - 100.0 / 3.0) < 1e-6


def test_solver_may_shrink_to_exactly_a_third() -> None:
    timeline = make(*solver_script(), duration_s=14.0 + 50.0 / 3.0)
    assert timeline.pause_scale == pytest.approx(1 / 3)
    assert timeline.length_s == pytest.approx(14.0 + 50.0 / 3.0, abs=1e-9)


def test_target_below_a_third_of_the_pauses_is_an_error_with_the_range() -> None:
    with pytest.raises(ScriptError) as caught:
        make(*solver_script(), duration_s=30.0)
    (problem,) = caught.value.problems
    assert problem.place == Place(PATH, 0, 0, "duration")
    assert problem.message == (
        "cannot last 00:30.0: natural length 01:04.0, reachable 00:30.7 and longer "
        "(flexible pauses shrink to a third)"
    )


def test_target_without_flexible_pauses_is_an_error() -> None:
    with pytest.raises(ScriptError) as caught:
        make(say("One."), pause(10.0), duration_s=180.0)
    (problem,) = caught.value.problems
    assert "cannot last 03:00.0: natural length 00:12.0" in problem.message
    assert "add a flexible pause like '30s+'" in problem.message


def test_target_equal_to_the_natural_length_needs_no_flexible_pause() -> None:
    timeline = make(say("One."), pause(10.0), duration_s=12.0)
    assert timeline.length_s == 12.0


def test_duration_errors_point_at_the_duration_key_when_known() -> None:
    where = Place(PATH, 3, 11, "")
    doc = script(say("One."), duration_s=60.0, duration_place=where)
    with pytest.raises(ScriptError) as caught:
        plan(doc, SETTINGS, FakeLengths())
    assert caught.value.problems[0].place == Place(PATH, 3, 11, "duration")


# Chapters, order, background


def test_sections_open_chapters_at_the_current_time() -> None:
    timeline = make(
        SectionStep("Arriving", at(0)),
        say("One.", 1),
        pause(3.0, index=2),
        SectionStep("Breathing", at(3)),
        breathe((2.0, 0.0, 2.0), cues=None, index=4),
        SectionStep("Closing", at(5)),
        say("Bye.", 6),
    )
    assert timeline.chapters == (
        Chapter("Arriving", 0.0),
        Chapter("Breathing", 5.0),
        Chapter("Closing", 9.0),
    )
    assert [cue.section for cue in timeline.cues] == [
        "Arriving",
        "Arriving",
        "Breathing",
        "Breathing",
        "Closing",
    ]
    assert speech_starts(timeline) == [0.0, 11.0]


def test_speech_before_the_first_section_has_no_section() -> None:
    timeline = make(say("One."), SectionStep("Later", at(1)), say("Two."))
    assert [cue.section for cue in timeline.speech] == ["", "Later"]
    assert timeline.chapters == (Chapter("Later", 2.0),)


def test_cues_are_in_start_order_and_carry_their_step_place() -> None:
    timeline = make(
        say("One. Two.", 0), sound(wait_s=1.0, index=1), breathe((3.0, 3.0, 3.0), index=2)
    )
    starts = [cue.start_s for cue in timeline.cues]
    assert starts == sorted(starts)
    assert timeline.speech[0].place == at(0)
    assert of_kind(timeline, SoundCue)[0].place == at(1)


def test_background_comes_from_settings() -> None:
    bed = BackgroundSettings(asset="rain", gain_db=-18.0)
    settings = Settings(background=bed)
    assert make(say("One."), settings=settings).background == bed
    assert make(say("One.")).background is None


@pytest.mark.parametrize("template", ["breathing", "body-scan", "sleep", "article"])
def test_every_template_meets_its_default_duration_within_the_stretch_limit(
    template: str, tmp_path: Path
) -> None:
    # issue 11 D10: the templates stretched their pauses x2.85 to x5.05
    from pipeline.plan.checked import plan_checked
    from pipeline.plan.validate import validate_paths
    from pipeline.project.config import load_project
    from pipeline.project.templates import create_script

    (tmp_path / "meditate.yaml").write_text("cache: cache\n", encoding="utf-8")
    path = create_script(tmp_path / "scripts", "new-one", template)
    report = validate_paths([path], load_project(tmp_path / "meditate.yaml"))
    assert report.problems == []
    timeline = plan_checked(report.checked[0]).timeline
    assert timeline.pause_scale <= MAX_PAUSE_STRETCH
    assert timeline.warnings == ()


def test_a_measured_length_far_from_its_estimate_is_a_warning_at_its_step() -> None:
    # issue 11 F-language: Hebrew read by an Arabic voice, estimated 1.6 s, lasted 18.5 s
    hebrew = "שלום, מה שלומך היום?"
    lengths = FakeLengths({hebrew: 18.5, "Fine.": 0.5, "One two three four five six.": 0.3})
    timeline = make(
        say("Fine.", index=0),
        say(hebrew, index=1),
        say(hebrew, index=2),
        say("One two three four five six.", index=3),
        lengths=lengths,
    )
    first, second = timeline.warnings
    assert first.place == at(1) and first.severity == "warning"  # once, at its first place
    assert first.message == (
        f"{hebrew!r} lasts 18.5 s as synthesized, x11.6 its estimate of 1.6 s (more than x3 "
        "either way): is the text in the language of its voice (espeak 'en')?"
    )
    assert second.place == at(3) and "x0.1 its estimate of 2.4 s" in second.message


def test_lengths_near_their_estimate_or_not_measured_give_no_warning() -> None:
    lengths = FakeLengths({"Hi.": 1.5, "Six words are in this sentence.": 5.0}, default_s=None)
    timeline = make(say("Hi. Six words are in this sentence. Not measured yet."), lengths=lengths)
    assert timeline.warnings == ()
