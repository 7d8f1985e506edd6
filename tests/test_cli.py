"""The command line: instant start, exit codes, `new`, no traceback (help: test_docs.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_project

from pipeline.cli import cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "pydub", "gtts", "mutagen", "imageio_ffmpeg", "espeakng_loader", "soundfile")


def test_start_up_imports_no_audio_library() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, pipeline.cli; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(probe.stdout.split())
    assert [name for name in HEAVY if name in loaded] == []


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "meditate" in result.stdout


def test_usage_error_exits_2() -> None:
    result = CliRunner().invoke(cli, ["validate", "--format", "xml", "x.yaml"])
    assert result.exit_code == 2


def test_validate_json_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("title: T\nsteps:\n  - pause: ten\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", "--format", "json", "bad.yaml"])
    assert result.exit_code == 1
    import json

    payload = json.loads(result.stdout)
    assert payload["errors"] == 1 and payload["ok"] is False
    assert payload["problems"][0] == {
        "path": "bad.yaml",
        "line": 3,
        "column": 12,
        "key": "steps[0].pause",
        "severity": "error",
        "message": "expected a duration like '30s', got 'ten'",
        "included_from": [],
    }


@pytest.mark.parametrize("template", ["breathing", "body-scan", "sleep", "article"])
def test_new_scripts_validate_without_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: str
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["new", f"my-{template}", "--template", template, "-d", "scripts"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "scripts" / f"my-{template}.yaml"
    assert path.is_file()
    result = runner.invoke(cli, ["validate", "--strict", str(path)])
    assert result.exit_code == 0, result.output


def test_new_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["new", "calm", "-d", "s"]).exit_code == 0
    before = (tmp_path / "s" / "calm.yaml").read_text()
    result = runner.invoke(cli, ["new", "calm", "-d", "s", "--template", "sleep"])
    assert result.exit_code == 1 and "already exists" in result.output
    assert (tmp_path / "s" / "calm.yaml").read_text() == before


def test_new_refuses_an_id_used_elsewhere_in_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text("scripts: scripts\n")
    (tmp_path / "scripts" / "anxiety").mkdir(parents=True)
    (tmp_path / "scripts" / "anxiety" / "calm.yaml").write_text("title: T\nsteps: [say: Hi.]\n")
    (tmp_path / "scripts" / "anxiety" / "x.yaml").write_text("title: T\nid: sos\nsteps: []\n")
    runner = CliRunner()
    for script_id, where in (("calm", "anxiety/calm.yaml:1:1"), ("sos", "anxiety/x.yaml:2:5")):
        for extra in ([], ["-d", "scripts/sleep"]):
            result = runner.invoke(cli, ["new", script_id, *extra])
            assert result.exit_code == 1
            assert result.output == (
                f"scripts/{where}: error: id {script_id!r} already exists here; choose another id\n"
            )
    assert sorted(p.name for p in (tmp_path / "scripts").rglob("*.yaml")) == ["calm.yaml", "x.yaml"]
    result = runner.invoke(cli, ["new", "x", "-d", "scripts/sleep"])  # the name is free: id is sos
    assert result.exit_code == 0 and result.output == "created scripts/sleep/x.yaml\n"


def test_new_refuses_an_id_that_validate_would_refuse_as_reserved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for script_id in ("catalog", "nul"):
        result = CliRunner().invoke(cli, ["new", script_id, "-d", "s"])
        assert result.exit_code == 2, result.output
        assert f"id {script_id!r} is reserved" in result.output
    assert not (tmp_path / "s").exists()


def test_new_rejects_bad_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["new", "Bad Id", "-d", "s"])
    assert result.exit_code == 2 and "invalid id" in result.output
    assert not (tmp_path / "s").exists()


def test_a_partial_given_alone_is_checked_as_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "_ok.yaml").write_text("steps:\n  - say: Bye.\n", encoding="utf-8")
    (tmp_path / "_bad.yaml").write_text("title: T\nsteps:\n  - pause: ten\n", encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli, ["validate", "_ok.yaml"]).exit_code == 0
    result = runner.invoke(cli, ["validate", "_bad.yaml"])
    assert result.exit_code == 1
    assert (
        "_bad.yaml:1:1: error: title: unknown key 'title'; expected one of: steps" in result.output
    )
    assert "_bad.yaml:3:12: error: steps[0].pause: expected a duration like '30s'" in result.output


def test_a_folder_skips_partials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s" / "_snippets").mkdir(parents=True)
    (tmp_path / "s" / "_snippets" / "end.yaml").write_text("steps:\n  - say: Bye.\n")
    (tmp_path / "s" / "_draft.yaml").write_text("not: a script\n")
    (tmp_path / "s" / "one.yaml").write_text(
        "title: One\nsteps:\n  - say: Hi.\n  - include: _snippets/end.yaml\n"
    )
    result = CliRunner().invoke(cli, ["validate", "s"])
    assert result.exit_code == 0, result.output
    assert "1 file(s) checked" in result.output


def test_sidecars_are_readable_by_others(tmp_path: Path) -> None:
    import os
    import stat

    from pipeline.core.fileio import write_text_atomic

    previous = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "x.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "x.json").stat().st_mode) == 0o644


def test_assets_lists_the_catalog_and_project_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text("assets: sounds\n")
    (tmp_path / "sounds").mkdir()
    (tmp_path / "sounds" / "bell.wav").write_bytes(b"not audio at all")
    (tmp_path / "sounds" / "catalog.yaml").write_text(
        "assets:\n  bell: {kind: one-shot, file: bell.wav, licence: CC-BY-4.0}\n"
    )
    result = CliRunner().invoke(cli, ["assets"])
    lines = result.output.splitlines()
    names = [line.split()[0] for line in lines[1:] if not line.startswith(" ")]
    assert names == ["bell", "bowl", "chime", "drone", "gong", "ocean", "rain"]
    assert any(line.startswith("rain") and "bed" in line and "yes" in line for line in lines)
    assert "error:" in result.output and "bell.wav" in result.output
    assert result.exit_code == 1


def _validate_one_script(folder: Path, text: str) -> tuple[list[str], str]:
    """``validate`` of one script in ``folder``: where its errors are, and the whole output."""
    (folder / "s.yaml").write_text(text)
    result = CliRunner().invoke(cli, ["validate", str(folder / "s.yaml")])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if ": error: " in line]
    return [Path(line.split(": error: ")[0]).name for line in errors], result.output


@pytest.mark.parametrize(
    ("text", "expected", "messages"),
    [
        (
            "title: S\npauses: {sentence: -3s}\nbackground: rian\nsteps:\n"
            "  - say: Hello there.\n  - sound: bowel\n  - pause: ten\n",
            ["s.yaml:2:20", "s.yaml:3:13", "s.yaml:6:12", "s.yaml:7:12"],
            ["did you mean 'rain'", "did you mean 'bowl'"],
        ),
        (
            "title: S\npauses: {sentence: -3s}\nvoice: {name: en-uss}\nsteps:\n  - say: Hello.\n"
            "  - say: {text: Hi., voice: {name: fr-xx}}\n  - pause: ten\n",
            ["s.yaml:2:20", "s.yaml:3:8", "s.yaml:6:10", "s.yaml:7:12"],
            ["unknown voice or language 'en-uss'", "unknown voice or language 'fr-xx'"],
        ),
    ],
    ids=["assets", "voices"],
)
def test_validate_reports_assets_and_voices_beside_other_errors_in_one_run(
    tmp_path: Path, text: str, expected: list[str], messages: list[str]
) -> None:
    located, output = _validate_one_script(tmp_path, text)
    assert located == expected
    assert all(message in output for message in messages)


def test_an_unknown_sound_does_not_hold_back_the_voice_check(tmp_path: Path) -> None:
    located, _ = _validate_one_script(
        tmp_path, "title: S\nvoice: {name: en-uss}\nsteps:\n  - say: Hello.\n  - sound: bowel\n"
    )
    assert located == ["s.yaml:2:8", "s.yaml:5:12"]


def test_a_draft_with_a_silent_bed_still_has_its_voices_checked(tmp_path: Path) -> None:
    located, output = _validate_one_script(
        tmp_path,
        "title: S\nvoice: {name: en-uss}\nbackground: {asset: rain, fade_out: 0s}\n"
        "steps:\n  - say: Hello.\n  - pause: ten\n",
    )
    assert "warning: background.fade_out: the bed stops abruptly" in output
    assert located == ["s.yaml:2:8", "s.yaml:6:12"]


@pytest.mark.parametrize("command", [["validate", "s.yaml"], ["render", "s.yaml"], ["assets"]])
def test_a_bad_project_catalog_is_reported_at_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text("assets: sounds\n")
    (tmp_path / "sounds").mkdir()
    (tmp_path / "sounds" / "catalog.yaml").write_text(
        "assets:\n  bell: {kind: one-shot, file: bell.ogg, levl_db: 3}\n"
    )
    (tmp_path / "s.yaml").write_text("title: S\nsteps:\n  - say: One.\n  - sound: bowl\n")
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1
    assert "sounds/catalog.yaml:2:42: error: assets.bell.levl_db: unknown key" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "dist").exists()


def test_config_flag_picks_another_project_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text("pauses: {sentence: 1s}\n")
    (tmp_path / "other.yaml").write_text("defaults: {pauses: {sentence: 3s}}\n")
    (tmp_path / "s.yaml").write_text("title: S\nsteps:\n  - say: One. Two.\n")
    runner = CliRunner()
    found = runner.invoke(cli, ["plan", "--format", "json", "s.yaml"])
    assert found.exit_code == 1 and "meditate.yaml:1:1: error: pauses: unknown key" in found.output
    chosen = json.loads(
        runner.invoke(cli, ["--config", "other.yaml", "plan", "--format", "json", "s.yaml"]).output
    )
    one, two = chosen["cues"]
    assert two["start_s"] == pytest.approx(one["start_s"] + one["length_s"] + 3.0, abs=1e-3)
    missing = runner.invoke(cli, ["--config", "nope.yaml", "validate", "s.yaml"])
    assert missing.exit_code == 1 and "nope.yaml: error: no such config file" in missing.output


def test_single_script_commands_refuse_folders_and_partials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s" / "_parts").mkdir(parents=True)
    (tmp_path / "s" / "_parts" / "end.yaml").write_text("steps:\n  - say: Bye.\n")
    (tmp_path / "s" / "one.yaml").write_text("title: One\nsteps:\n  - say: Hi.\n")
    runner = CliRunner()
    for command in ("plan", "render"):
        folder = runner.invoke(cli, [command, "s"])
        assert folder.exit_code == 2 and "s: error: a folder; give one script file" in folder.output
        partial = runner.invoke(cli, [command, "s/_parts/end.yaml"])
        assert partial.exit_code == 2
        assert "s/_parts/end.yaml: error: a partial" in partial.output
    bad_flag = runner.invoke(cli, ["render", "s/one.yaml", "--formats", "mp4"])
    assert bad_flag.exit_code == 2 and "--formats: unknown format 'mp4'" in bad_flag.output


def test_paths_outside_the_current_folder_are_shown_whole(tmp_path: Path) -> None:
    from pipeline.core.fileio import display_path

    assert display_path(Path("/dev/null")) == Path("/dev/null")
    assert display_path(Path.cwd() / "a" / "b.yaml") == Path("a/b.yaml")


def test_the_console_entry_point_skips_the_collection_at_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    from pipeline import cli as cli_module

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(sys, "argv", ["meditate", "--version"])
    with pytest.raises(SystemExit) as exit_info:
        cli_module.main()
    assert exit_info.value.code == 0
    assert frozen == [True]


def _two_scripts(folder: Path) -> None:
    (folder / "a.yaml").write_text("title: A\nsteps:\n  - say: Hello there.\n")
    (folder / "b.yaml").write_text("title: B\nvoice: {rate: 0.9}\nsteps:\n  - say: Hi.\n")


@pytest.mark.parametrize(
    ("config", "environment", "expected"),
    [
        (
            "defaults:\n  voice: {name: en-uss}\n",
            {},
            "meditate.yaml:2:17: error: defaults.voice.name: espeak: unknown voice or language "
            "'en-uss'",
        ),
        (
            "defaults:\n  voice: {engine: espek}\n",
            {},
            "meditate.yaml:2:19: error: defaults.voice.engine: unknown engine 'espek'",
        ),
        (
            "defaults:\n  voice: {name: en-us}\n",
            {"MEDITATE_VOICE": "xx-yy"},
            "environment: error: MEDITATE_VOICE: espeak: unknown voice or language 'xx-yy'",
        ),
    ],
    ids=["config voice", "config engine", "environment voice"],
)
def test_a_bad_default_voice_is_reported_once_where_it_is_set(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config: str,
    environment: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text(config)
    _two_scripts(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "."], env=environment)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(expected), result.output
    assert "2 file(s) checked: 1 error(s)" in result.output


def test_folders_hold_scripts_but_not_config_catalogs_hidden_files_or_virtualenvs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text("output: dist\n")
    _two_scripts(tmp_path)
    (tmp_path / "audio_assets").mkdir()
    (tmp_path / "audio_assets" / "catalog.yaml").write_text("assets: {}\n")
    for folder in (".venv/lib", "venv/lib", ".git"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "x.yaml").write_text("not: a script\n")
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / ".hidden.yaml").write_text("not: a script\n")
    result = CliRunner().invoke(cli, ["validate", "."])
    assert result.exit_code == 0, result.output
    # the project's own config and catalog are not counted; the others are, and -v lists them
    assert "2 file(s) checked, 4 skipped (-v lists them): 0 error(s)" in result.output


def test_files_skipped_in_folders_are_listed_with_v_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text("scripts: scripts\n")
    script = "title: T\nsteps:\n  - say: Hi.\n"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "linked-script.yaml").write_text(script)
    (tmp_path / "scripts" / "sub").mkdir(parents=True)
    for name in ("real.yaml", "catalog.yaml", ".draft.yaml", "sub/meditate.yaml"):
        (tmp_path / "scripts" / name).write_text(script)
    (tmp_path / "scripts" / "_part.yaml").write_text("steps: []\n")  # a partial: not skipped
    (tmp_path / "scripts" / "shared").symlink_to(tmp_path / "elsewhere")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "-v", "validate"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stderr.splitlines() if ": skipped: " in line]
    assert skipped == [
        "INFO: scripts/.draft.yaml: skipped: a hidden file (give it as a path to check it)",
        "INFO: scripts/catalog.yaml: skipped: an asset catalog's name: not read as a script "
        "(rename it if it is one)",
        "INFO: scripts/shared: skipped: a symbolic link to a folder: not followed "
        "(give it as a path to check it)",
        "INFO: scripts/sub/meditate.yaml: skipped: a project config's name: not read as a "
        "script (rename it if it is one)",
    ]
    assert result.stdout == (
        "1 file(s) checked, 4 skipped (-v lists them): 0 error(s), 0 warning(s)\n"
    )
    payload = json.loads(CliRunner().invoke(cli, ["validate", "--format", "json"]).stdout)
    assert [item["path"] for item in payload["skipped"]] == [
        "scripts/.draft.yaml", "scripts/catalog.yaml", "scripts/shared", "scripts/sub/meditate.yaml"
    ]  # fmt: skip
    assert CliRunner().invoke(cli, ["validate", "scripts/shared"]).output.startswith(
        "1 file(s) checked: 0 error(s)"
    )


def test_a_bad_engine_flag_is_reported_once_at_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _two_scripts(tmp_path)
    result = CliRunner().invoke(cli, ["speak", "--engine", "espek", "a.yaml", "b.yaml"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if "error:" in line]
    assert errors == [
        "command line: error: --engine: unknown engine 'espek' (known engines: espeak, gtts); "
        "did you mean 'espeak'?"
    ], result.output


def _wav_of_unknown_codec() -> bytes:
    """A WAV file whose header is sound (1.024 s) but whose codec (0x1234) nothing decodes."""
    import struct

    data = bytes(range(256)) * 64
    fmt = struct.pack("<HHIIHH", 0x1234, 1, 8000, 16000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        (b"", "the file is empty"),
        (b"OggS" + bytes(range(256)) * 8, "cannot decode it"),
        (_wav_of_unknown_codec(), "cannot decode it"),  # its header tells a length
    ],
    ids=["missing", "empty", "corrupt", "unknown-codec"],
)
@pytest.mark.parametrize("command", ["validate", "render"])
def test_an_unusable_catalog_file_is_caught_for_beds_and_sounds_at_both_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None, message: str,
    command: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text("assets: sounds\n")
    (tmp_path / "sounds").mkdir()
    (tmp_path / "sounds" / "catalog.yaml").write_text(
        "assets:\n  birds: {kind: bed, file: birds.ogg}\n  ding: {kind: one-shot, file: ding.ogg}\n"
    )
    for name in ("birds.ogg", "ding.ogg"):
        if content is not None:
            (tmp_path / "sounds" / name).write_bytes(content)
    (tmp_path / "s.yaml").write_text(
        "title: S\nbackground: birds\nsteps:\n  - say: One.\n  - sound: ding\n"
    )
    result = CliRunner().invoke(cli, [command, "s.yaml"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if ": error: " in line]
    assert errors[0].startswith(
        "s.yaml:2:13: error: background: sounds/birds.ogg: asset 'birds' "
        f"(catalog entry sounds/catalog.yaml:2:28): {message}"
    )
    assert errors[1].startswith(
        "s.yaml:5:12: error: steps[1].sound: sounds/ding.ogg: asset 'ding' "
        f"(catalog entry sounds/catalog.yaml:3:32): {message}"
    )
    assert "Traceback" not in result.output and not (tmp_path / "dist").exists()


def test_quiet_prints_no_summary_in_any_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text("scripts: scripts\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "s.yaml").write_text(
        "title: S\nsteps:\n  - section: Empty\n  - section: Main\n  - say: Hi.\n"
    )
    runner = CliRunner()
    for command in (
        ["validate"],
        ["validate", "--format", "json"],
        ["new", "fresh"],
        ["speak"],
        ["schema", "-o", "schema.json"],
        ["render", "scripts/s.yaml"],
        ["build", "-j", "1"],
        ["build", "--catalog-only"],
        ["check"],
        ["cache", "prune"],
    ):
        result = runner.invoke(cli, ["-q", *command])
        assert result.exit_code == 0, (command, result.output)
        if "json" not in command:
            assert result.output == "", command
    (tmp_path / "scripts" / "bad.yaml").write_text("title: B\nsteps:\n  - pause: ten\n")
    result = runner.invoke(cli, ["-q", "validate"])
    assert result.exit_code == 1  # the error, without the section warning or a summary
    assert result.output == (
        "scripts/bad.yaml:3:12: error: steps[0].pause: expected a duration like '30s', got 'ten'\n"
    )


def test_assets_reports_a_file_that_validate_would_refuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text("assets: sounds\n")
    (tmp_path / "sounds").mkdir()
    (tmp_path / "sounds" / "catalog.yaml").write_text(
        "assets:\n  odd: {kind: one-shot, file: odd.wav}\n"
    )
    (tmp_path / "sounds" / "odd.wav").write_bytes(_wav_of_unknown_codec())
    result = CliRunner().invoke(cli, ["assets"])
    assert result.exit_code == 1
    assert (
        "  error: sounds/odd.wav: asset 'odd' (catalog entry sounds/catalog.yaml:2:31): "
        "cannot decode it"
    ) in result.output


def test_schema_into_a_missing_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["schema", "-o", "gone/schema.json"])
    assert result.exit_code == 2
    assert result.output == (
        "gone/schema.json: error: -o: the folder 'gone' does not exist; create it first\n"
    )
    assert list(tmp_path.iterdir()) == []


# --- a reader that goes away (meditate plan x | head -1) -----------------------------------------

PIPE_CONFIG = "sample_rate: 16000\nchannels: 1\nformats: [wav]\ncache: cache\n"
PRINTING = [
    ["--help"],
    ["--version"],
    ["validate"],
    ["plan", "scripts/s.yaml"],
    ["plan", "--format", "json", "scripts/s.yaml"],
    ["schema"],
    ["new", "fresh"],
    ["speak"],
    ["render", "scripts/s.yaml"],
    ["build"],
    ["build", "--catalog-only"],
    ["check", "--format", "json"],
    ["engines"],
    ["assets"],
    ["cache", "info"],
    ["cache", "prune"],
    ["inspect", "tone.wav"],
]


@pytest.fixture
def piped_project(tmp_path: Path) -> Path:
    from pipeline.core.ffmpeg import run_ffmpeg

    script = "title: S\nsteps:\n  - say: Hello there.\n  - pause: 1s\n"
    write_project(tmp_path, PIPE_CONFIG, {"s.yaml": script})
    (tmp_path / "dist").mkdir()
    run_ffmpeg(["-f", "lavfi", "-i", "sine=duration=1", "-y", str(tmp_path / "tone.wav")])
    return tmp_path


def assert_quiet(stderr: str) -> None:
    for noise in ("Traceback", "internal error", "Exception ignored", "BrokenPipe", "Errno 32"):
        assert noise not in stderr, stderr


@pytest.mark.parametrize("command", PRINTING, ids=" ".join)
def test_a_closed_pipe_ends_quietly_with_status_141(
    piped_project: Path, command: list[str]
) -> None:
    """Like a Unix tool killed by SIGPIPE: no traceback, no message, exit status 128 + 13."""
    reading, writing = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *command],
        cwd=piped_project,
        stdout=writing,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(writing)
    os.close(reading)  # the reader is gone before the first line
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 141, stderr
    assert_quiet(stderr)


def test_a_reader_that_stops_after_one_line_ends_the_command_quietly(tmp_path: Path) -> None:
    (tmp_path / "meditate.yaml").write_text(PIPE_CONFIG, encoding="utf-8")
    steps = "".join(f"  - say: Sentence {n} of a long session.\n" for n in range(3000))
    (tmp_path / "long.yaml").write_text(f"title: Long\nsteps:\n{steps}", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "plan", "long.yaml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().split()[:3] == [b"start", b"length", b"kind"]
    process.stdout.close()  # like `| head -1`: far more than a pipe holds is still to come
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert_quiet(stderr)


def test_closed_stdout_and_stderr_end_quietly_too(tmp_path: Path) -> None:
    """``meditate validate 2>&1 | head -0``: the problems cannot be shown either."""
    (tmp_path / "bad.yaml").write_text("title: T\nsteps:\n  - pause: ten\n", encoding="utf-8")
    reading, writing = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "validate", "bad.yaml"],
        cwd=tmp_path,
        stdout=writing,
        stderr=writing,
    )
    os.close(writing)
    os.close(reading)
    assert process.wait(timeout=60) == 141


def _schema_line(path: Path) -> str | None:
    """The ``$schema`` path of a script's language-server line, if it has one."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    prefix = "# yaml-language-server: $schema="
    return first[len(prefix) :] if first.startswith(prefix) else None


def test_new_points_the_schema_line_at_the_projects_schema_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text("scripts: scripts\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["schema", "-o", "schema/meditate-script.schema.json"])
    assert result.exit_code == 2  # the folder must exist first
    (tmp_path / "schema").mkdir()
    assert runner.invoke(cli, ["schema", "-o", "schema/meditate-script.schema.json"]).exit_code == 0
    for args, made in (
        (["new", "calm"], "scripts/calm.yaml"),
        (["new", "deep", "-d", "scripts/sleep/long"], "scripts/sleep/long/deep.yaml"),
        (["new", "here", "-d", "."], "here.yaml"),
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        reference = _schema_line(tmp_path / made)
        assert reference is not None and "://" not in reference
        assert ((tmp_path / made).parent / reference).resolve() == (
            tmp_path / "schema" / "meditate-script.schema.json"
        )


def test_new_writes_no_schema_line_without_a_schema_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "meditate.yaml").write_text("scripts: scripts\n")
    (tmp_path / "schema").mkdir()  # outside the project: not its schema
    (tmp_path / "schema" / "meditate-script.schema.json").write_text("{}\n")
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["new", "calm"])
    assert result.exit_code == 0, result.output
    text = (project / "scripts" / "calm.yaml").read_text(encoding="utf-8")
    assert "$schema" not in text and text.startswith("id: calm\n")


@pytest.mark.parametrize(
    "path", sorted((ROOT / "scripts").rglob("*.y*ml")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_shipped_scripts_schema_line_resolves(path: Path) -> None:
    reference = _schema_line(path)
    assert reference is not None, "a shipped script starts with its $schema line"
    target = (path.parent / reference).resolve()
    assert target == ROOT / "schema" / "meditate-script.schema.json" and target.is_file()
