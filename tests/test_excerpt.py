"""Editors' excerpts: found before synthesis, synthesizing only what they need, cut cleanly.

Engine work is counted by the render's speak report and by the clips in the cache; cuts are
measured on real renders (espeak, ffmpeg), relative to the plan rather than to sample 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from chapters_by_ffmpeg import read_chapters
from click.testing import CliRunner
from conftest import write_project

from pipeline.build.render import render_script
from pipeline.build.speak import speak_scripts
from pipeline.cli import cli
from pipeline.core.errors import UsageError
from pipeline.core.ffmpeg import decode
from pipeline.plan.checked import check_script, plan_checked
from pipeline.plan.excerpt import CUT_FADE_S, SNAP_S, Window, find_chapter, needed_speech, snap_end
from pipeline.plan.timeline import Chapter, PauseCue, SpeechCue, Timeline
from pipeline.project.config import load_project
from pipeline.speech.cache import SpeechCache

RATE = 44100
CONFIG = f"""\
sample_rate: {RATE}
channels: 2
formats: [flac]
cache: cache
"""
PARTS = 6
PER_PART = 8
LONG = (
    "This sentence is deliberately long, so that it keeps going on and on about the breath "
    "and the body and the quiet room around you for a good many seconds without any break "
    "at all, and then it slowly comes to an end."
)


def many(*, target: str | None = None, flexible_in_last: bool = False) -> str:
    """A script of PARTS chapters of PER_PART sentences; with a target, flexible pauses."""
    lines = ["title: Many", *([f"duration: {target}"] if target else []), "steps:"]
    for part in range(1, PARTS + 1):
        lines.append(f"  - section: Part {part}")
        for number in range(1, PER_PART + 1):
            lines.append(f"  - say: Part {part}, sentence {number}, is spoken here.")
            lines.append("  - pause: 1s")
        if target and (part < PARTS or flexible_in_last):
            lines.append("  - pause: 20s+")
    return "\n".join(lines) + "\n"


def project_with(tmp_path: Path, config: str = "", **scripts: str) -> Path:
    return write_project(
        tmp_path, CONFIG + config, {f"{name}.yaml": text for name, text in scripts.items()}
    )


def clips(root: Path) -> int:
    return len(list(SpeechCache(root / "cache").keys()))


def full_plan(root: Path, name: str) -> Timeline:
    """The script's plan with every sentence measured (synthesizing what is missing)."""
    project = load_project(root / "meditate.yaml")
    script = root / "scripts" / f"{name}.yaml"
    speak_scripts([script], project)
    timeline = plan_checked(check_script(script, project)).timeline
    assert not any(cue.estimated for cue in timeline.speech)
    return timeline


def relative(timeline: Timeline, start_s: float, end_s: float) -> list[tuple[str, float]]:
    """Text and start of the sentences of a part of a timeline, from its own start."""
    return [
        (cue.text, round(cue.start_s - start_s, 4))
        for cue in timeline.speech
        if start_s <= cue.start_s < end_s
    ]


def rms(pcm: npt.NDArray[np.float32], first_s: float, stop_s: float) -> float:
    part = pcm[round(first_s * RATE) : round(stop_s * RATE)].astype(np.float64)
    return float(np.sqrt(np.mean(part * part)))


def vtt_ends_s(path: Path) -> list[float]:
    times = re.findall(r"--> (\d\d):(\d\d):(\d\d\.\d{3})$", path.read_text(), re.MULTILINE)
    return [int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in times]


# --- which chapter ----------------------------------------------------------------------------

TITLES = ["Arriving", "Body scan", "Breathing", "Closing words"]


@pytest.mark.parametrize(
    ("wanted", "index"),
    [
        ("Breathing", 2),
        ("breathing", 2),
        ("  BREATHING \t", 2),
        ("body   SCAN", 1),
        ("closing", 3),
        ("arr", 0),
    ],
)
def test_a_section_is_found_whatever_its_case_and_surrounding_space(
    wanted: str, index: int
) -> None:
    assert find_chapter(TITLES, wanted) == index


def test_an_unknown_section_is_a_usage_error_with_did_you_mean() -> None:
    with pytest.raises(UsageError) as caught:
        find_chapter(TITLES, "Breathng")
    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        "command line: error: --section: no chapter 'Breathng'; did you mean 'Breathing'? "
        "(chapters: 'Arriving', 'Body scan', 'Breathing', 'Closing words')"
    )


def test_an_ambiguous_section_lists_its_candidates() -> None:
    with pytest.raises(UsageError, match=r"'b' matches 2 chapters: 'Body scan', 'Breathing'; "):
        find_chapter(TITLES, "b")
    titles = ["Rest", "rest", "Rest"]
    assert find_chapter(titles, "rest") == 1
    with pytest.raises(UsageError, match=r"2 chapters are titled 'Rest'; give them different"):
        find_chapter(titles, "Rest")
    with pytest.raises(UsageError, match=r"'REST' matches 3 chapters: 'Rest', 'rest', 'Rest'"):
        find_chapter(titles, "REST")


def test_no_section_without_chapters_or_title() -> None:
    with pytest.raises(UsageError, match="this script has no chapters"):
        find_chapter([], "Intro")
    with pytest.raises(UsageError, match="give a chapter title"):
        find_chapter(TITLES, "  ")


# --- what an excerpt needs, on a plan -----------------------------------------------------------


def speech(start_s: float, length_s: float, text: str) -> SpeechCue:
    from pipeline.core.errors import Place
    from pipeline.project.settings import VoiceSettings

    return SpeechCue(start_s, length_s, text, VoiceSettings(), "", Place(Path("x")), True)


def pause(start_s: float, length_s: float, *, flexible: bool) -> PauseCue:
    from pipeline.core.errors import Place

    return PauseCue(start_s, length_s, flexible, "", Place(Path("x")))


def line(cues: list[SpeechCue | PauseCue], length_s: float, target_s: float | None) -> Timeline:
    return Timeline(tuple(cues), (Chapter("A", 0.0),), length_s, length_s, target_s, None)


def test_a_preview_needs_the_sentences_up_to_where_it_ends() -> None:
    cues: list[SpeechCue | PauseCue] = [speech(2.0 * i, 1.0, f"s{i}") for i in range(50)]
    timeline = line(cues, 100.0, None)
    needed = needed_speech(timeline, Window(0.0, 10.0, 100.0))
    assert [cue.text for cue in needed] == [f"s{i}" for i in range(5)]
    extended = needed_speech(timeline, Window(0.0, 11.0, 100.0))  # ends after s5, at 11.5 s
    assert [cue.text for cue in extended] == [f"s{i}" for i in range(6)]
    shortened = needed_speech(timeline, Window(0.0, 10.4, 100.0))  # ends before s5, at 10 s
    assert [cue.text for cue in shortened] == [f"s{i}" for i in range(6)]  # s5 decides
    assert len(needed_speech(timeline, None)) == 50


def test_a_flexible_pause_in_an_excerpt_of_a_script_with_a_target_needs_every_sentence() -> None:
    cues: list[SpeechCue | PauseCue] = [speech(2.0 * i, 1.0, f"s{i}") for i in range(50)]
    cues.append(pause(30.0, 0.5, flexible=True))
    assert len(needed_speech(line(cues, 100.0, 100.0), Window(0.0, 10.0, 100.0))) == 5
    assert len(needed_speech(line(cues, 100.0, None), Window(0.0, 40.0, 100.0))) == 20
    assert len(needed_speech(line(cues, 100.0, 100.0), Window(0.0, 40.0, 100.0))) == 50


@pytest.mark.parametrize(
    ("asked_s", "end_s"),
    [
        (4.0, 4.0),  # in a gap, clear of the fade: stays
        (3.2, 3.0 + CUT_FADE_S),  # just after a sentence: the fade must not touch it
        (5.5, 5.0),  # early in a sentence: back to its start
        (8.5, 9.0 + CUT_FADE_S),  # late in a sentence: on to its end and the fade
        (15.0, 15.0),  # mid-way through a long sentence: nothing near, cut there
        (29.0, 29.0),  # in the silence after the last sentence: stays
        (30.0, 30.0),  # the end of the track
    ],
)
def test_a_preview_ends_between_sentences_when_a_gap_is_near(asked_s: float, end_s: float) -> None:
    cues: list[SpeechCue | PauseCue] = [
        speech(1.0, 2.0, "a"),
        speech(5.0, 4.0, "b"),
        speech(10.0, 2 * SNAP_S + 4.0, "long"),
    ]
    timeline = line(cues, 30.0, None)
    assert snap_end(timeline, Window(0.0, asked_s, 30.0)) == pytest.approx(end_s)


# --- real renders: synthesis counted ----------------------------------------------------------


def test_a_mistyped_section_synthesizes_nothing(tmp_path: Path) -> None:
    root = project_with(tmp_path, many=many())
    project = load_project(root / "meditate.yaml")
    with pytest.raises(UsageError, match=r"no chapter 'Prat 3'; did you mean 'Part 3'"):
        render_script(root / "scripts" / "many.yaml", project, section="Prat 3")
    assert clips(root) == 0
    assert not (root / "dist").exists()


def test_a_preview_without_target_synthesizes_only_its_own_sentences(tmp_path: Path) -> None:
    root = project_with(tmp_path, many=many())
    project = load_project(root / "meditate.yaml")
    result = render_script(root / "scripts" / "many.yaml", project, preview_s=6.0)
    spoken = clips(root)
    assert spoken == result.speech.total == result.speech.synthesized == result.speech.engine_calls
    # the sentences it plays, and one more if its end moved back to that one's start
    assert len(result.timeline.speech) in (spoken, spoken - 1)
    full = full_plan(root, "many")
    inside = len(relative(full, 0.0, 6.0))
    # an estimate may put one more sentence inside the preview before it is measured
    assert inside <= spoken <= inside + 1 < PER_PART
    assert relative(result.timeline, 0.0, 99.0) == relative(full, 0.0, result.timeline.length_s)


def test_sentences_that_move_into_a_preview_once_measured_are_spoken_too(
    tmp_path: Path,
) -> None:
    root = project_with(tmp_path, "words_per_minute: 60\n", many=many())  # estimates too long
    project = load_project(root / "meditate.yaml")
    seen: list[tuple[int, int]] = []
    result = render_script(
        root / "scripts" / "many.yaml",
        project,
        preview_s=8.0,
        progress=lambda done, total, text: seen.append((done, total)),
    )
    synthesized = result.speech.synthesized
    assert [done for done, _total in seen] == list(range(1, synthesized + 1))
    assert seen[-1] == (synthesized, synthesized) and seen[0][1] < synthesized  # two rounds
    assert synthesized == clips(root) == result.speech.total
    full = full_plan(root, "many")
    assert relative(result.timeline, 0.0, 99.0) == relative(full, 0.0, result.timeline.length_s)
    assert synthesized == len(relative(full, 0.0, max(8.0, result.timeline.length_s)))


def test_a_section_without_target_synthesizes_only_its_chapter(tmp_path: Path) -> None:
    root = project_with(tmp_path, many=many())
    project = load_project(root / "meditate.yaml")
    result = render_script(
        root / "scripts" / "many.yaml", project, output_dir=root / "out", section=" part 4 "
    )
    assert result.speech.total == result.speech.engine_calls == clips(root) == PER_PART
    assert sorted(path.name for path in (root / "out").iterdir()) == [
        "many.section-part-4.flac",
        "many.section-part-4.vtt",
    ]
    full = full_plan(root, "many")
    start_s, end_s = full.chapters[3].start_s, full.chapters[4].start_s
    assert relative(result.timeline, 0.0, 999.0) == relative(full, start_s, end_s)
    assert result.timeline.length_s == pytest.approx(end_s - start_s, abs=1e-6)


def test_an_excerpt_of_a_script_with_a_target_measures_all_only_if_its_pauses_stretch(
    tmp_path: Path,
) -> None:
    root = project_with(tmp_path, many=many(target="5m"))
    project = load_project(root / "meditate.yaml")
    script = root / "scripts" / "many.yaml"
    last = render_script(script, project, output_dir=root / "out", section="Part 6")
    assert last.speech.total == PER_PART  # no flexible pause in it: its times are exact
    first = render_script(script, project, output_dir=root / "out", preview_s=5.0)
    assert first.speech.total < PER_PART
    assert clips(root) < 2 * PER_PART
    stretched = render_script(script, project, output_dir=root / "out", section="Part 2")
    assert clips(root) == PARTS * PER_PART
    full = full_plan(root, "many")
    start_s, end_s = full.chapters[1].start_s, full.chapters[2].start_s
    assert relative(stretched.timeline, 0.0, 999.0) == relative(full, start_s, end_s)


def test_the_cli_says_did_you_mean_and_exits_2(tmp_path: Path) -> None:
    root = project_with(tmp_path, many=many())
    result = CliRunner().invoke(
        cli, ["render", str(root / "scripts" / "many.yaml"), "--section", "part"]
    )
    assert result.exit_code == 2, result.output
    assert "command line: error: --section: 'part' matches 6 chapters: 'Part 1'," in result.output
    result = CliRunner().invoke(
        cli, ["render", str(root / "scripts" / "many.yaml"), "--preview", "ten"]
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith("command line: error: --preview: ")
    assert clips(root) == 0


# --- real renders: where an excerpt ends --------------------------------------------------------

CUT_SCRIPT = f"""\
title: Cut
background: null
steps:
  - section: Start
  - say: A short first sentence.
  - say: {LONG}
  - pause: 3s
  - section: Rest
  - say: The last words.
"""
BED_SCRIPT = """\
title: Bed
background: {asset: rain, fade_in: 0s, fade_out: 0s, duck: 0dB}
steps:
  - section: One
  - say: The first chapter.
  - pause: 4s
  - section: Two
  - pause: 2s
  - say: The second chapter.
  - pause: 4s
  - section: Three
  - say: The third chapter.
"""


@pytest.fixture(scope="module")
def cut_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Timeline]:
    root = project_with(tmp_path_factory.mktemp("cut"), cut=CUT_SCRIPT, bed=BED_SCRIPT)
    return root, full_plan(root, "cut")


def test_a_preview_cut_mid_sentence_fades_out_and_its_captions_end_with_the_file(
    cut_project: tuple[Path, Timeline],
) -> None:
    root, plan = cut_project
    long = plan.speech[1]
    assert long.length_s > 2 * SNAP_S + 1.0  # nowhere to move the end to
    asked_s = long.start_s + long.length_s / 2
    result = render_script(
        root / "scripts" / "cut.yaml",
        load_project(root / "meditate.yaml"),
        {"formats": "flac,mp3"},
        output_dir=root / "mid",
        preview_s=asked_s,
    )
    pcm = decode(root / "mid" / "cut.preview.flac", RATE, 2)
    duration_s = pcm.shape[0] / RATE
    assert duration_s == pytest.approx(asked_s, abs=0.002)
    ends_s = vtt_ends_s(root / "mid" / "cut.preview.vtt")
    assert ends_s and max(ends_s) <= duration_s
    assert max(ends_s) <= decode(root / "mid" / "cut.preview.mp3", RATE, 2).shape[0] / RATE
    assert [title for title, _start in read_chapters(root / "mid" / "cut.preview.mp3")] == ["Start"]
    assert max(ends_s) == pytest.approx(duration_s, abs=0.002)  # the cut sentence, cut
    assert result.timeline.speech[-1].start_s + result.timeline.speech[-1].length_s <= duration_s
    speaking = rms(pcm, duration_s - CUT_FADE_S - 1.5, duration_s - CUT_FADE_S)
    assert rms(pcm, duration_s - 0.05, duration_s) < 0.1 * speaking


def test_a_preview_ending_late_in_a_sentence_lets_it_finish(
    cut_project: tuple[Path, Timeline],
) -> None:
    root, plan = cut_project
    long = plan.speech[1]
    long_end_s = long.start_s + long.length_s
    result = render_script(
        root / "scripts" / "cut.yaml",
        load_project(root / "meditate.yaml"),
        output_dir=root / "late",
        preview_s=long_end_s - 1.0,
    )
    pcm = decode(root / "late" / "cut.preview.flac", RATE, 2)
    duration_s = pcm.shape[0] / RATE
    assert duration_s == pytest.approx(long_end_s + CUT_FADE_S, abs=0.002)
    assert result.timeline.speech[-1].length_s == pytest.approx(long.length_s)
    ends_s = vtt_ends_s(root / "late" / "cut.preview.vtt")
    assert max(ends_s) == pytest.approx(long_end_s, abs=0.002) and max(ends_s) <= duration_s
    assert np.abs(pcm[round((long_end_s + 0.01) * RATE) :]).max() < 1e-3  # said in full


def test_a_section_fades_its_bed_in_and_out_at_its_edges(
    cut_project: tuple[Path, Timeline],
) -> None:
    root = cut_project[0]
    project = load_project(root / "meditate.yaml")
    render_script(root / "scripts" / "bed.yaml", project, output_dir=root / "bed", section="two")
    pcm = decode(root / "bed" / "bed.section-two.flac", RATE, 2)
    duration_s = pcm.shape[0] / RATE
    bed_rms = rms(pcm, 0.7, 1.7)  # the bed alone, before the speech
    assert bed_rms > 0.0
    assert rms(pcm, 0.0, 0.1) < 0.2 * bed_rms
    assert rms(pcm, duration_s - 0.1, duration_s) < 0.2 * bed_rms
    assert rms(pcm, duration_s - 1.5, duration_s - 0.6) > 0.5 * bed_rms
