"""Project config discovery and the precedence flag > environment > script > config > default."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_project

from pipeline.core.errors import ConfigError, UsageError
from pipeline.project.config import (
    environment_layer,
    find_config,
    flags_layer,
    load_project,
    read_config,
    resolve,
)
from pipeline.script.parse import read_script

CONFIG = """\
output: out
defaults:
  language: de
  voice: {engine: espeak, rate: 0.9, name: de}
  background: {asset: ocean, gain: -20dB}
  pauses: {sentence: 1s}
master: {loudness: -18}
formats: [mp3, ogg]
lexicon: {Klonopin: KLON-oh-pin}
gtts: {tries: 3, backoff_min: 1s}
"""


def make_project(tmp_path: Path, config: str = CONFIG) -> Path:
    (tmp_path / "meditate.yaml").write_text(config, encoding="utf-8")
    (tmp_path / "scripts" / "deep").mkdir(parents=True)
    return tmp_path


def make_script(folder: Path, body: str = "") -> Path:
    path = folder / "scripts" / "deep" / "s.yaml"
    path.write_text("title: S\n" + body + "steps:\n  - say: Hello.\n", encoding="utf-8")
    return path


def settings_for(
    root: Path,
    script_body: str = "",
    environ: dict[str, str] | None = None,
    flags: dict[str, object] | None = None,
):  # type: ignore[no-untyped-def]
    path = make_script(root, script_body)
    project = load_project(start=path)
    problems: list = []  # type: ignore[type-arg]
    script = read_script(path, project.root, problems)
    assert script is not None and all(p.severity != "error" for p in problems), problems
    return resolve(project, script, environment_layer(environ or {}), flags_layer(flags or {}))


def test_config_is_found_by_walking_up(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    script = make_script(root)
    assert find_config(script) == root / "meditate.yaml"
    assert load_project(start=script).root == root.resolve()


def test_no_config_means_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    project = load_project(start=tmp_path)
    assert project.config_path is None and project.root == tmp_path.resolve()


def test_without_a_config_the_root_is_found_by_its_scripts_folder_from_a_subfolder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    (tmp_path / "scripts" / "deep").mkdir(parents=True)
    make_script(tmp_path)
    (tmp_path / "docs").mkdir()
    for subfolder in (tmp_path / "scripts" / "deep", tmp_path / "docs"):
        monkeypatch.chdir(subfolder)
        project = load_project()
        assert project.config_path is None and project.root == tmp_path.resolve()
        result = CliRunner().invoke(cli, ["validate"])
        assert (
            result.exit_code == 0
            and result.output == "1 file(s) checked: 0 error(s), 0 warning(s)\n"
        )
        result = CliRunner().invoke(cli, ["check"])
        assert result.exit_code == 1 and "missing   s  " in result.output
        assert resolve(project).output_dir == tmp_path.resolve() / "dist"
    assert not (tmp_path / "docs" / "dist").exists() and not (tmp_path / "dist").exists()


@pytest.mark.parametrize("command", [["validate"], ["check"], ["build"], ["speak"]])
def test_without_a_project_the_error_says_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "scripts").mkdir()  # a scripts folder without scripts is no project root
    (tmp_path / "scripts" / "notes.txt").write_text("")
    monkeypatch.chdir(tmp_path / "scripts")
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1
    assert result.output.startswith("scripts: error: no such folder, and no meditate.yaml in ")
    assert "`meditate new ID` starts 'scripts/' here" in result.output
    assert list((tmp_path / "scripts").iterdir()) == [tmp_path / "scripts" / "notes.txt"]


def test_explicit_config_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_project(tmp_path / "nope.yaml")


def test_builtin_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scripts" / "deep").mkdir(parents=True)
    settings = settings_for(tmp_path)
    assert settings.voice.engine == "espeak" and settings.voice.rate == 1.0
    assert settings.language == "en" and settings.background is None
    assert settings.target_lufs == -16.0 and settings.true_peak_dbtp == -1.0
    assert settings.formats == ("mp3",) and settings.bitrate == "128k"
    assert (settings.sample_rate, settings.channels) == (44100, 2)
    assert (settings.sentence_pause_s, settings.paragraph_pause_s) == (0.8, 2.0)


def test_project_config_over_defaults(tmp_path: Path) -> None:
    settings = settings_for(make_project(tmp_path))
    assert settings.voice.rate == 0.9 and settings.voice.name == "de"
    assert settings.language == "de" and settings.voice.language == "de"
    assert settings.background is not None and settings.background.asset == "ocean"
    assert settings.background.gain_db == -20.0 and settings.background.fade_out_s == 10.0
    assert settings.sentence_pause_s == 1.0 and settings.paragraph_pause_s == 2.0
    assert settings.target_lufs == -18.0 and settings.formats == ("mp3", "ogg")
    assert settings.output_dir == tmp_path.resolve() / "out"
    assert settings.lexicon == (("Klonopin", "KLON-oh-pin"),)
    assert settings.retry.tries == 3 and settings.retry.backoff_min_s == 1.0


def test_script_over_project_config(tmp_path: Path) -> None:
    body = "language: en\nvoice: {rate: 0.8}\nbackground: {asset: rain}\npauses: {sentence: 0.5s}\n"
    settings = settings_for(make_project(tmp_path), body)
    assert settings.voice.rate == 0.8 and settings.voice.name == "de"
    assert settings.language == "en"
    assert settings.background is not None and settings.background.asset == "rain"
    assert settings.background.gain_db == -20.0, "bed settings merge over the project defaults"
    assert settings.sentence_pause_s == 0.5
    assert settings.forced_voice.rate is None


def test_script_can_switch_the_bed_off(tmp_path: Path) -> None:
    settings = settings_for(make_project(tmp_path), "background: null\n")
    assert settings.background is None


def test_environment_over_script(tmp_path: Path) -> None:
    settings = settings_for(
        make_project(tmp_path),
        "voice: {rate: 0.8, engine: espeak}\n",
        environ={"MEDITATE_RATE": "1.2", "MEDITATE_ENGINE": "gtts", "MEDITATE_FORMATS": "ogg,flac"},
    )
    assert settings.voice.rate == 1.2 and settings.voice.engine == "gtts"
    assert settings.forced_voice.engine == "gtts" and settings.forced_voice.rate == 1.2
    assert settings.formats == ("ogg", "flac")


def test_flag_over_environment(tmp_path: Path) -> None:
    settings = settings_for(
        make_project(tmp_path),
        environ={"MEDITATE_ENGINE": "gtts", "MEDITATE_OUTPUT": "env-out"},
        flags={"voice.engine": "espeak", "output": "flag-out", "formats": "wav"},
    )
    assert settings.voice.engine == "espeak" and settings.forced_voice.engine == "espeak"
    assert settings.output_dir.name == "flag-out" and settings.formats == ("wav",)


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"MEDITATE_RATE: must be between 0\.5 and 2"):
        environment_layer({"MEDITATE_RATE": "7"})


def test_bad_flag_names_the_option() -> None:
    with pytest.raises(UsageError, match="--formats: unknown format 'mp4'"):
        flags_layer({"formats": "mp4"})


def test_config_errors_are_all_reported_with_places(tmp_path: Path) -> None:
    path = tmp_path / "meditate.yaml"
    path.write_text(
        "outptu: x\nmaster: {loudness: loud}\nformats: [mp3, aiff]\nsample_rate: 12\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        read_config(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 4
    assert lines[0].endswith(
        "meditate.yaml:1:1: error: outptu: unknown key 'outptu'; did you mean 'output'?"
    )
    assert ":2:20: error: master.loudness: expected a number, got 'loud'" in lines[1]
    assert "formats: unknown format 'aiff'" in lines[2]
    assert "sample_rate: must be between 8000 and 192000, got 12" in lines[3]


def test_lead_in_and_tail_from_defaults_config_and_script(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    settings = settings_for(root)
    assert (settings.lead_in_s, settings.tail_s) == (1.0, 2.0)
    config = CONFIG.replace(
        "pauses: {sentence: 1s}", "pauses: {sentence: 1s, lead_in: 0.5s, tail: 4s}"
    )
    (root / "meditate.yaml").write_text(config, encoding="utf-8")
    settings = settings_for(root)
    assert (settings.lead_in_s, settings.tail_s) == (0.5, 4.0)
    settings = settings_for(root, "pauses: {lead_in: 0s}\n")
    assert (settings.lead_in_s, settings.tail_s) == (0.0, 4.0)


def test_a_lead_in_out_of_range_in_the_config_is_reported_at_its_place(tmp_path: Path) -> None:
    config = CONFIG.replace("pauses: {sentence: 1s}", "pauses: {sentence: 1s, lead_in: 2m}")
    path = make_project(tmp_path, config) / "meditate.yaml"
    with pytest.raises(
        ConfigError, match=r"meditate.yaml:6:\d+: error: defaults.pauses.lead_in: .*60"
    ):
        read_config(path)


def test_merge_keys_work_in_the_project_config_too(tmp_path: Path) -> None:
    path = tmp_path / "meditate.yaml"
    path.write_text(
        "defaults:\n  voice: &calm {engine: espeak, rate: 0.9}\n"
        "master: {<<: {loudness: -18, true_peak: -2}, true_peak: -1.5}\n",
        encoding="utf-8",
    )
    layer, places = read_config(path)
    assert layer["master.loudness"] == -18 and layer["master.true_peak"] == -1.5
    assert places["master.loudness"].line == 3
    path.write_text("master: {<<: {loudness: loud}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"meditate.yaml:1:25: error: master.loudness: expected"):
        read_config(path)


def test_a_scripts_folder_in_the_temporary_folder_makes_no_project_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from pipeline.project.config import find_root_by_scripts

    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "s.yaml").write_text("title: S\nsteps: [say: Hi.]\n")
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert find_root_by_scripts(tmp_path / "work") is None
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert find_root_by_scripts(tmp_path / "work") == tmp_path.resolve()


@pytest.mark.parametrize(
    ("qa", "where"),
    [
        ("qa:\n  warn_wer: 0.6\n  fail_wer: 0.5\n", "meditate.yaml:4:13: error: qa.fail_wer: WER"),
        ("qa:\n  warn_wer: 0.7\n", "meditate.yaml:3:13: error: qa.warn_wer: WER"),
        ("qa: {min_chars_per_s: 30}\n", "meditate.yaml:2:23: error: qa.min_chars_per_s: char"),
    ],
)
def test_contradicting_qa_thresholds_are_a_config_error_at_their_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qa: str, where: str
) -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    write_project(tmp_path, "formats: [wav]\n" + qa, {"a.yaml": "title: A\nsteps:\n  - say: Hi.\n"})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 1
    assert where in result.output
