"""``meditate say``: an audition of one text in several voices, through the speech cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile
from click.testing import CliRunner
from conftest import write_project

from pipeline.audio.master import measure_file
from pipeline.build.say import label, parse_voice, say
from pipeline.cli import cli
from pipeline.project.config import load_project
from pipeline.project.settings import VoiceSettings


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "p", "lexicon: {Klonopin: KLON-oh-pin}\n")


def test_two_voices_one_after_another_then_all_from_the_cache(project: Path) -> None:
    out = project / "audition.wav"
    first = say("Klonopin is a medicine. Breathe.", load_project(start=project), out,
                ["espeak", "espeak:en-us"])  # fmt: skip
    assert [label(take.voice) for take in first.takes] == ["espeak", "espeak:en-us"]
    assert first.synthesized == 4
    one, two = first.takes
    assert two.start_s == pytest.approx(one.start_s + one.length_s + 1.0, abs=1e-3)
    info = soundfile.info(str(out))
    assert info.samplerate == 44100 and info.channels == 1
    assert info.duration == pytest.approx(two.start_s + two.length_s, abs=0.01)
    again = say("Klonopin is a medicine. Breathe.", load_project(start=project), out, ["espeak"])
    assert again.synthesized == 0


def test_the_lexicon_and_the_rate_apply_as_in_a_render(project: Path) -> None:
    plain = say("Klonopin.", load_project(start=project), project / "a.wav")
    slow = say("Klonopin.", load_project(start=project), project / "b.wav",
               flags={"voice.rate": "0.8"})  # fmt: skip
    assert slow.takes[0].length_s == pytest.approx(plain.takes[0].length_s / 0.8, rel=0.05)
    assert slow.takes[0].voice.rate == 0.8


def test_a_compressed_format_by_its_suffix(project: Path) -> None:
    out = project / "a.mp3"
    say("Rest here.", load_project(start=project), out)
    assert measure_file(out).duration_s > 0.5


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("gtts", VoiceSettings(engine="gtts", name="")),
        ("espeak:en-gb", VoiceSettings(engine="espeak", name="en-gb")),
        (":en-gb", VoiceSettings(engine="espeak", name="en-gb")),
    ],
)
def test_voice_specs(spec: str, expected: VoiceSettings) -> None:
    assert parse_voice(spec, VoiceSettings(name="en-us")) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Hi.", "--voice", ":"], "error: --voice: expected ENGINE, ENGINE:NAME or :NAME"),
        (["Hi.", "-o", "x.txt"], "x.txt: error: -o: the file name must end in one of"),
        (["   "], "error: TEXT: nothing to say"),
        (["Hi.", "--pitch", "30"], "error: --pitch: must be between -12 and 12"),
        (["Hi.", "--voice", "nope"], "nope"),
        (["Hi.", "-o", "gone/x.wav"], "gone/x.wav: error: -o: the folder 'gone' does not exist"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["say", *args])
    assert result.exit_code in (1, 2), result.output
    assert message in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in project.iterdir() if p.suffix in (".wav", ".txt")) == []
    assert not (project / "gone").exists()


def test_the_command_prints_where_each_voice_starts(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["say", "Be still.", "--voice", "espeak", "--voice", ":en-us"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("00:00.0  espeak (") and "espeak:en-us" in lines[1]
    assert lines[2].startswith("wrote say.wav (2 synthesized)")
