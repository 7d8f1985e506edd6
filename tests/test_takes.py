"""Recorded human takes: keys, finding takes, long takes split at silences, bad takes, cache and
build keys by content, the fallback engine, ``plan --takes``, render and build."""

from __future__ import annotations

import functools
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
from click.testing import CliRunner
from conftest import sine, write_project

from pipeline.build.keys import build_key
from pipeline.cli import cli
from pipeline.core.errors import EngineError, ScriptError
from pipeline.engines import get_engine
from pipeline.plan.checked import check_script, plan_checked
from pipeline.plan.timeline import Timeline
from pipeline.project.config import load_project
from pipeline.project.settings import VoiceSettings
from pipeline.speech.condition import read_wav
from pipeline.speech.takes import sentence_take_key, split_parts, step_take_key

CONFIG = "sample_rate: 16000\nchannels: 1\ncache: cache\n"
FIRST = "Welcome. Find a comfortable position."
SECOND = "Let your eyes close. Breathe slowly. Notice your body."
SCRIPT = f"""\
title: Calm
voice: {{engine: recorded, takes: ../takes/calm}}
steps:
  - say: {FIRST}
  - pause: 2s
  - say: {SECOND}
"""
SENTENCES = ["Welcome.", "Find a comfortable position."]
STEP = ["Let your eyes close.", "Breathe slowly.", "Notice your body."]


@functools.lru_cache(maxsize=32)
def spoken(text: str) -> tuple[bytes, int]:
    """A sentence said by espeak: float32 mono bytes and the rate (a stand-in for a human)."""
    audio = get_engine("espeak").synthesize(text, VoiceSettings())
    decoded = read_wav(audio.data)
    assert decoded is not None
    return decoded[0].tobytes(), decoded[1]


def voice(text: str) -> tuple[np.ndarray, int]:
    data, rate = spoken(text)
    return np.frombuffer(data, np.float32).copy(), rate


def long_take(texts: list[str], gap_s: float = 1.0) -> tuple[np.ndarray, int]:
    """Sentences one after another with ``gap_s`` of silence before each (one long take)."""
    parts: list[np.ndarray] = []
    rate = 0
    for text in texts:
        samples, rate = voice(text)
        parts += [np.zeros(round(gap_s * rate), np.float32), samples]
    parts.append(np.zeros(rate // 2, np.float32))
    return np.concatenate(parts), rate


def record(folder: Path, text: str, suffix: str = ".wav") -> Path:
    """A take of one sentence, named by its key."""
    folder.mkdir(parents=True, exist_ok=True)
    samples, rate = voice(text)
    path = folder / f"{sentence_take_key(text)}{suffix}"
    soundfile.write(path, samples, rate)
    return path


def record_step(folder: Path, step_text: str, texts: list[str], gap_s: float = 1.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    samples, rate = long_take(texts, gap_s)
    path = folder / f"{step_take_key(step_text)}.flac"
    soundfile.write(path, samples, rate)
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("MEDITATE_ENGINE", "MEDITATE_VOICE", "MEDITATE_RATE"):
        monkeypatch.delenv(variable, raising=False)
    return write_project(tmp_path, CONFIG, {"calm.yaml": SCRIPT})


def recorded_all(root: Path) -> Path:
    """Every sentence recorded: the first step one file per sentence, the second one long take."""
    folder = root / "takes" / "calm"
    for text in SENTENCES:
        record(folder, text)
    record_step(folder, SECOND, STEP)
    return folder


def timeline_of(root: Path) -> Timeline:
    checked = check_script(root / "scripts" / "calm.yaml", load_project(start=root))
    return plan_checked(checked).timeline


def problems_of(root: Path) -> str:
    with pytest.raises(ScriptError) as caught:
        timeline_of(root)
    return str(caught.value)


# keys


def test_a_sentence_key_is_its_first_words_and_a_hash_of_its_text() -> None:
    key = sentence_take_key("Let your eyes close.")
    assert key.startswith("let-your-eyes-close-") and len(key.rsplit("-", 1)[1]) == 8
    assert sentence_take_key("Let  your eyes\nclose.") == key  # spacing aside
    assert sentence_take_key("Let your eyes close softly.") != key
    assert sentence_take_key("¿Qué?") != sentence_take_key("¿Cómo?")  # no words: the hash differs


def test_a_step_key_is_told_apart_from_sentence_keys() -> None:
    assert step_take_key(SECOND).startswith("step-let-your-eyes-close-breathe-")
    assert step_take_key("Welcome.") != sentence_take_key("Welcome.")


# finding takes


def test_each_sentence_gets_its_take_and_a_long_take_is_split_in_order(project: Path) -> None:
    folder = recorded_all(project)
    speech = timeline_of(project).speech
    assert [cue.text for cue in speech] == [*SENTENCES, *STEP]
    takes = [cue.voice.take for cue in speech]
    assert all(take is not None for take in takes)
    assert [Path(take.file).parent for take in takes if take] == [folder] * 5
    whole, parts = takes[:2], takes[2:]
    assert all(take and take.start_s is None for take in whole)
    spans = [(take.start_s, take.end_s) for take in parts if take]
    rate = voice(STEP[0])[1]
    expected, at = [], 0.0
    for text in STEP:  # a second of silence before each sentence
        at += 1.0
        length = voice(text)[0].size / rate
        expected.append((at, at + length))
        at += length
    for (start, end), (want_start, want_end) in zip(spans, expected, strict=True):
        assert start is not None and end is not None
        assert abs(start - want_start) < 0.1 and abs(end - want_end) < 0.1


def test_split_parts_finds_tones_between_silences() -> None:
    rate = 16000
    tone = sine(0.5, 220, 0.3, rate)
    quiet = np.zeros(rate, np.float32)
    parts = split_parts(np.concatenate([quiet, tone, quiet, tone, quiet[:4000], tone]), rate)
    assert len(parts) == 2  # the 0.25 s gap is inside a sentence
    assert abs(parts[0][0] - 0.95) < 0.02 and abs(parts[1][1] - 3.75) < 0.01


def test_a_sentences_own_take_wins_over_its_part_of_the_step_take(project: Path) -> None:
    folder = recorded_all(project)
    own = record(folder, STEP[1])
    cue = timeline_of(project).speech[3]
    assert cue.voice.take is not None and cue.voice.take.file == str(own)


def test_takes_is_relative_to_the_file_and_the_config_to_the_root(project: Path) -> None:
    recorded_all(project)
    (project / "meditate.yaml").write_text(
        CONFIG + "defaults:\n  voice: {engine: recorded, takes: takes/calm}\n", encoding="utf-8"
    )
    (project / "scripts" / "calm.yaml").write_text(
        SCRIPT.replace("voice: {engine: recorded, takes: ../takes/calm}\n", ""), encoding="utf-8"
    )
    assert all(cue.voice.take for cue in timeline_of(project).speech)


def test_one_step_may_be_recorded_in_a_script_of_another_engine(project: Path) -> None:
    record_step(project / "takes" / "calm", SECOND, STEP)
    (project / "scripts" / "calm.yaml").write_text(
        SCRIPT.replace("voice: {engine: recorded, takes: ../takes/calm}\n", "").replace(
            f"say: {SECOND}",
            f"say: {{text: {SECOND}, voice: {{engine: recorded, takes: ../takes/calm}}}}",
        ),
        encoding="utf-8",
    )
    speech = timeline_of(project).speech
    assert [cue.voice.engine for cue in speech] == ["espeak"] * 2 + ["recorded"] * 3
    assert speech[0].voice.takes is None and not speech[0].voice.fills_in


# bad input


def test_a_missing_take_is_a_located_error_naming_the_keys(project: Path) -> None:
    record(project / "takes" / "calm", "Welcome.")
    message = problems_of(project)
    key = sentence_take_key("Find a comfortable position.")
    assert "scripts/calm.yaml:4:" in message and "steps[0].say" in message
    assert f"for 1 sentence(s): {key}" in message
    assert step_take_key(SECOND) in message  # the step's long take is offered
    assert "fallback: ENGINE" in message


def test_an_explicit_fallback_fills_missing_takes(project: Path) -> None:
    record(project / "takes" / "calm", "Welcome.")
    (project / "scripts" / "calm.yaml").write_text(
        SCRIPT.replace("takes: ../takes/calm}", "takes: ../takes/calm, fallback: espeak}"),
        encoding="utf-8",
    )
    speech = timeline_of(project).speech
    assert [cue.voice.engine for cue in speech] == ["recorded"] + ["espeak"] * 4
    assert [cue.voice.fills_in for cue in speech] == [False] + [True] * 4


def test_a_count_mismatch_lists_the_parts_found(project: Path) -> None:
    record_step(project / "takes" / "calm", SECOND, STEP[:2])
    record(project / "takes" / "calm", SENTENCES[0])
    record(project / "takes" / "calm", SENTENCES[1])
    message = problems_of(project)
    assert "scripts/calm.yaml:6:" in message
    assert re.search(
        r"found 2 spoken part\(s\), the step has 3 sentence\(s\): "
        r"0\.9\d-2\.\d\d s, 3\.\d\d-4\.\d\d s \(sentences are split at silences",
        message,
    ), message


def test_a_takes_folder_that_does_not_exist(project: Path) -> None:
    message = problems_of(project)
    assert "scripts/calm.yaml:4:" in message
    assert message.count("takes folder takes/calm does not exist") == 1  # at its first step
    assert "no take" not in message


def test_engine_recorded_without_takes(project: Path) -> None:
    (project / "scripts" / "calm.yaml").write_text(
        SCRIPT.replace(", takes: ../takes/calm", ""), encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["validate", "scripts"])
    assert result.exit_code == 1
    assert "needs a folder of takes: 'takes: FOLDER'" in result.output
    assert "Traceback" not in result.output


def test_a_clipped_take_does_not_hide_a_missing_one(project: Path) -> None:
    folder = project / "takes" / "calm"
    loud, rate = voice(SENTENCES[0])
    folder.mkdir(parents=True)
    soundfile.write(folder / f"{sentence_take_key(SENTENCES[0])}.wav", np.clip(loud * 40, -1, 1),
                    rate)  # fmt: skip
    message = problems_of(project)
    assert sentence_take_key(SENTENCES[1]) in message
    assert "is clipped" not in message  # a warning, reported apart


def test_unreadable_silent_and_clipped_takes(project: Path) -> None:
    folder = recorded_all(project)
    (folder / f"{sentence_take_key(SENTENCES[0])}.wav").write_bytes(b"RIFF not really a wav")
    soundfile.write(folder / f"{sentence_take_key(SENTENCES[1])}.wav",
                    np.zeros(16000, np.float32), 16000)  # fmt: skip
    message = problems_of(project)
    assert "welcome-" in message and "cannot decode it" in message
    assert "silent (nothing above -50 dBFS)" in message
    assert "Traceback" not in message
    loud, rate = voice(SENTENCES[0])
    soundfile.write(folder / f"{sentence_take_key(SENTENCES[0])}.wav",
                    np.clip(loud * 40, -1, 1), rate)  # fmt: skip
    record(folder, SENTENCES[1])
    warnings = [w.message for w in timeline_of(project).warnings]
    assert any("is clipped (full scale at" in w for w in warnings), warnings


def test_a_folder_with_extra_files_is_a_warning_listing_them(project: Path) -> None:
    folder = recorded_all(project)
    (folder / "notes.txt").write_text("take 2 was better", encoding="utf-8")
    record(folder, "A sentence the script does not say.")
    (folder / ".DS_Store").write_bytes(b"")
    warnings = [w for w in timeline_of(project).warnings if "match no sentence" in w.message]
    assert len(warnings) == 1
    assert warnings[0].message.startswith("takes folder takes/calm: 2 file(s) match no sentence")
    assert "notes.txt" in warnings[0].message and "a-sentence-the-script" in warnings[0].message


def test_two_files_for_one_take(project: Path) -> None:
    folder = recorded_all(project)
    record(folder, SENTENCES[0], ".flac")
    assert "is given by several files" in problems_of(project)


# keys by content


def test_re_recording_a_take_changes_only_its_sentences_key_and_the_build_key(
    project: Path, tmp_path: Path
) -> None:
    folder = recorded_all(project)
    checked = check_script(project / "scripts" / "calm.yaml", load_project(start=project))
    planned = plan_checked(checked)
    before = [planned.lengths.key(cue.text, cue.voice) for cue in planned.timeline.speech]
    key_before = build_key(checked)
    samples, rate = voice(SENTENCES[1])
    soundfile.write(folder / f"{sentence_take_key(SENTENCES[1])}.wav", samples * 0.5, rate)
    checked = check_script(project / "scripts" / "calm.yaml", load_project(start=project))
    planned = plan_checked(checked)
    after = [planned.lengths.key(cue.text, cue.voice) for cue in planned.timeline.speech]
    assert [b == a for b, a in zip(before, after, strict=True)] == [
        True, False, True, True, True,
    ]  # fmt: skip
    assert build_key(checked) != key_before


def test_the_build_key_does_not_depend_on_where_the_project_lies(
    project: Path, tmp_path: Path
) -> None:
    recorded_all(project)
    key = build_key(check_script(project / "scripts" / "calm.yaml", load_project(start=project)))
    copy = shutil.copytree(project, tmp_path.parent / f"{tmp_path.name}-copy")
    moved = build_key(check_script(copy / "scripts" / "calm.yaml", load_project(start=copy)))
    assert moved == key


def test_a_take_keeps_its_tempo_and_pitch_and_the_fallback_gets_them(project: Path) -> None:
    record(project / "takes" / "calm", SENTENCES[0])
    (project / "scripts" / "calm.yaml").write_text(
        SCRIPT.replace(
            "takes: ../takes/calm}", "takes: ../takes/calm, fallback: espeak, rate: 0.8, pitch: -1}"
        ),
        encoding="utf-8",
    )
    speech = timeline_of(project).speech
    assert (speech[0].voice.rate, speech[0].voice.pitch) == (1.0, 0.0)
    assert (speech[1].voice.rate, speech[1].voice.pitch) == (0.8, -1.0)
    engine = get_engine("recorded")
    slow = replace(speech[0].voice, rate=0.8)
    assert engine.cache_settings(engine.own_voice(slow)) == engine.cache_settings(speech[0].voice)
    assert engine.conditioning_rate(slow) == 1.0


# commands


def test_plan_takes_lists_every_key_and_what_speaks_it(project: Path) -> None:
    folder = project / "takes" / "calm"
    record(folder, SENTENCES[0])
    record_step(folder, SECOND, STEP)
    result = CliRunner().invoke(cli, ["plan", "--takes", "scripts/calm.yaml"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(step_take_key(FIRST) in line and "(step)" in line for line in lines)
    assert any(sentence_take_key(SENTENCES[0]) in line and " take " in line for line in lines)
    assert any(sentence_take_key(SENTENCES[1]) in line and "missing" in line for line in lines)
    assert any(sentence_take_key(STEP[2]) in line and "part " in line for line in lines)
    assert (
        "sentences 5: 1 with their own take, 3 from a step's take, 0 by the fallback engine, "
        "1 missing" in result.output
    )
    as_json = CliRunner().invoke(cli, ["plan", "--takes", "--format", "json", "scripts/calm.yaml"])
    rows = json.loads(as_json.output)["takes"]
    assert [row["status"] for row in rows] == ["step", "take", "missing", "step"] + ["part"] * 3


@pytest.mark.slow
def test_render_and_build_report_the_fallback(project: Path) -> None:
    record(project / "takes" / "calm", SENTENCES[0])
    record_step(project / "takes" / "calm", SECOND, STEP)
    (project / "scripts" / "calm.yaml").write_text(
        SCRIPT.replace("takes: ../takes/calm}", "takes: ../takes/calm, fallback: espeak}"),
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["render", "scripts/calm.yaml", "-o", "out"])
    assert result.exit_code == 0, result.output
    assert "1 sentence(s) without a take, spoken by the fallback engine" in result.output
    info = soundfile.info(str(project / "out" / "calm.mp3"))
    assert info.duration > 8
    built = runner.invoke(cli, ["build"])
    assert built.exit_code == 0, built.output
    assert "fallback     1 sentence(s) without a take" in built.output


def test_breathing_cues_of_a_recorded_script_have_takes_too(project: Path) -> None:
    folder = recorded_all(project)
    (project / "scripts" / "calm.yaml").write_text(
        SCRIPT + "  - breathe: {pattern: 4-2-6, cycles: 2}\n", encoding="utf-8"
    )
    message = problems_of(project)
    assert "scripts/calm.yaml:7:" in message and "steps[3].breathe" in message
    assert "for 3 sentence(s): " in message and "whole step" not in message
    for words in ("Breathe in", "Hold", "Breathe out"):
        assert sentence_take_key(words) in message
    for words in ("Breathe in", "Hold", "Breathe out"):
        record(folder, words)
    cues = [cue for cue in timeline_of(project).speech if cue.breathing]
    assert len(cues) == 6 and all(cue.voice.take for cue in cues)


def test_takes_in_an_included_file_are_relative_to_it(project: Path) -> None:
    record_step(project / "scripts" / "_parts" / "takes", SECOND, STEP)
    (project / "scripts" / "_parts" / "closing.yaml").write_text(
        f"steps:\n  - say: {{text: {SECOND}, voice: {{engine: recorded, takes: takes}}}}\n",
        encoding="utf-8",
    )
    (project / "scripts" / "calm.yaml").write_text(
        f"title: Calm\nsteps:\n  - say: {FIRST}\n  - include: _parts/closing.yaml\n",
        encoding="utf-8",
    )
    speech = timeline_of(project).speech
    assert [cue.voice.engine for cue in speech] == ["espeak"] * 2 + ["recorded"] * 3
    assert all(cue.voice.take for cue in speech[2:])


def test_a_take_changed_after_planning_is_not_cached_under_its_old_key(project: Path) -> None:
    recorded_all(project)
    cue = timeline_of(project).speech[0]
    engine = get_engine("recorded")
    assert engine.synthesize(cue.text, cue.voice).format == "wav"
    record(project / "takes" / "calm", SENTENCES[1]).replace(
        Path(cue.voice.take.file)  # type: ignore[union-attr]
    )
    with pytest.raises(EngineError, match="changed while rendering"):
        engine.synthesize(cue.text, cue.voice)


@pytest.mark.parametrize(
    ("suffix", "options"),
    [(".wav", {"subtype": "PCM_24"}), (".flac", {}), (".mp3", {}), (".ogg", {})],
    ids=["wav-24bit", "flac", "mp3", "ogg"],
)
def test_takes_of_each_format_are_conditioned_like_clips(
    project: Path, suffix: str, options: dict[str, str]
) -> None:
    from pipeline.speech.condition import SPEECH_LOUDNESS_LUFS, condition_clip
    from pipeline.speech.level import loudness_lufs

    folder = recorded_all(project)
    samples, rate = voice(SENTENCES[0])
    stereo = np.stack([samples, samples], axis=1) * 0.1  # quiet and stereo: levelled, mono
    (folder / f"{sentence_take_key(SENTENCES[0])}.wav").unlink()
    soundfile.write(folder / f"{sentence_take_key(SENTENCES[0])}{suffix}", stereo, rate, **options)
    cue = timeline_of(project).speech[0]
    clip = condition_clip(get_engine("recorded").synthesize(cue.text, cue.voice), 1.0, 44100)
    assert clip.ndim == 1 and abs(clip.size / 44100 - samples.size / rate) < 0.08
    assert abs(loudness_lufs(clip, 44100) - SPEECH_LOUDNESS_LUFS) < 1.0


def test_plan_takes_fails_on_other_errors_and_says_when_nothing_is_recorded(
    project: Path,
) -> None:
    result = CliRunner().invoke(cli, ["plan", "--takes", "scripts/calm.yaml"])
    assert result.exit_code == 1
    assert (
        "scripts/calm.yaml:4:10: error: steps[0].say: takes folder takes/calm does not exist"
        in (result.output)
    )
    (project / "scripts" / "calm.yaml").write_text(
        SCRIPT.replace("voice: {engine: recorded, takes: ../takes/calm}\n", ""), encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["plan", "--takes", "scripts/calm.yaml"])
    assert result.exit_code == 0
    assert result.output.startswith("no sentence is spoken by a recorded voice")
