"""speak, plan with measured lengths, engines, cache info and cache prune, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_project

from pipeline.cli import cli

CONFIG = "sample_rate: 16000\nchannels: 1\ncache: cache\n"
SCRIPT = """\
title: Tiny
steps:
  - section: Start
  - say: |
      Hello there. Breathe softly.
  - pause: 2s
  - say: Goodbye.
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return write_project(tmp_path, CONFIG, {"tiny.yaml": SCRIPT})


def test_speak_then_plan_shows_measured_lengths(project: Path) -> None:
    runner = CliRunner()
    before = json.loads(
        runner.invoke(cli, ["plan", "--format", "json", "scripts/tiny.yaml"]).output
    )
    assert before["estimated"] == 3
    result = runner.invoke(cli, ["speak"])
    assert result.exit_code == 0, result.output
    assert "3 sentence(s): 0 already cached, 3 synthesized" in result.output
    after = json.loads(runner.invoke(cli, ["plan", "--format", "json", "scripts/tiny.yaml"]).output)
    assert after["estimated"] == 0
    says = [cue for cue in after["cues"] if cue["kind"] == "say"]
    assert all(cue["estimated"] is False for cue in says)
    assert says[1]["start_s"] == pytest.approx(
        says[0]["start_s"] + says[0]["length_s"] + 0.8, abs=1e-3
    )
    again = runner.invoke(cli, ["speak", "scripts"])
    assert "3 already cached, 0 synthesized (0 engine call(s))" in again.output


def test_no_progress_label_is_left_in_a_log(project: Path) -> None:
    result = CliRunner().invoke(cli, ["speak"])  # stderr is not a terminal here
    assert result.exit_code == 0, result.output
    assert result.output.startswith("3 sentence(s): 0 already cached"), result.output
    assert "speaking" not in result.output


def test_cache_info_and_prune(project: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["speak"]).exit_code == 0
    info = runner.invoke(cli, ["cache", "info"])
    assert "entries: 3" in info.output and "0 hit(s), 3 miss(es)" in info.output
    script = project / "scripts" / "tiny.yaml"
    script.write_text(SCRIPT.replace("Goodbye.", "See you soon."), encoding="utf-8")
    assert "1 synthesized" in runner.invoke(cli, ["speak"]).output
    pruned = runner.invoke(cli, ["cache", "prune"])
    assert pruned.exit_code == 0 and "removed 1 entry" in pruned.output
    assert "entries: 3" in runner.invoke(cli, ["cache", "info"]).output


def test_speak_reports_invalid_scripts_and_synthesizes_nothing(project: Path) -> None:
    (project / "scripts" / "bad.yaml").write_text("title: B\nsteps:\n  - pause: ten\n")
    result = CliRunner().invoke(cli, ["speak"])
    assert result.exit_code == 1
    assert "scripts/bad.yaml:3:12: error: steps[0].pause" in result.output
    assert not (project / "cache").exists()


def test_unknown_engine_flag_is_a_located_error(project: Path) -> None:
    result = CliRunner().invoke(cli, ["speak", "--engine", "festival"])
    assert result.exit_code == 1
    known = "(known engines: espeak, gtts, kokoro, recorded)"
    assert f"unknown engine 'festival' {known}" in result.output


def test_engines_lists_usability_and_languages() -> None:
    result = CliRunner().invoke(cli, ["engines"])
    assert result.exit_code == 0
    assert "espeak espeak-ng" in result.output and ": usable" in result.output
    assert "gtts gTTS" in result.output and "languages (" in result.output


def test_awkward_text_is_spoken_without_trouble(project: Path) -> None:
    awkward = (
        'title: Awkward\nsteps:\n  - say: "- starts with a dash. Tabs\\tand \\u0007bell. '
        'Emoji 🌿 here. <break time=\\"1s\\"/> Tagged <emphasis>words</emphasis>."\n'
    )
    (project / "scripts" / "awkward.yaml").write_text(awkward, encoding="utf-8")
    result = CliRunner().invoke(cli, ["speak", "scripts/awkward.yaml"])
    assert result.exit_code == 0, result.output
    assert "4 synthesized" in result.output


def test_only_emoji_is_a_located_error(project: Path) -> None:
    (project / "scripts" / "emoji.yaml").write_text(
        "title: E\nsteps:\n  - say: 🌿🌿\n", encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["validate", "scripts/emoji.yaml"])
    assert result.exit_code == 1
    assert "scripts/emoji.yaml:3:10: error: steps[0].say: nothing speakable" in result.output


def test_quiet_render_prints_nothing(project: Path) -> None:
    result = CliRunner().invoke(
        cli, ["-q", "render", "scripts/tiny.yaml", "-o", "out", "--formats", "wav"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == ""  # stdout and stderr both, on click 8.1 and 8.2+ alike
    assert (project / "out" / "tiny.wav").is_file() and (project / "out" / "tiny.json").is_file()
