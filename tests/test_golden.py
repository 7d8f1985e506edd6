"""Golden files: each broken script beside the exact output ``meditate validate`` must give.

Each case ``scripts/<case>.yaml`` (or folder ``scripts/<case>``) has its standard output in
``scripts/<case>.out`` and its standard error in ``scripts/<case>.err``, kept apart as a user sees
them; a stream that stays empty has no file. Suggestions drawn from the installed espeak voice
list are stored as ``did you mean <voices>?`` so that the files hold for every espeak release.

To regenerate after a deliberate change of output::

    MEDITATE_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py
    git diff tests/golden    # review every changed line before committing
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(
    [p.name for p in (GOLDEN / "scripts").glob("*.yaml")] + ["dupes", "include-shared"],
)
REGENERATE = os.environ.get("MEDITATE_REGEN_GOLDEN") == "1"

VOICE_SUGGESTIONS = re.compile(r"(unknown voice or language '[^']*'; did you mean )([^?]*)\?")
VOICE_ID = re.compile(r"[a-z][a-z0-9-]*(?:/[a-z0-9-]+)?")


def run_validate(target: str, *extra: str) -> tuple[int, str, str]:
    """Run the real command in a child process; return its code, stdout and stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "validate", *extra, f"scripts/{target}"],
        cwd=GOLDEN,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout, result.stderr


def without_voice_list(text: str) -> str:
    """``text`` with each list of suggested espeak voices replaced by ``<voices>``, checking
    that every list is a few voice ids led by the obvious one.
    """

    def replace(match: re.Match[str]) -> str:
        voices = match.group(2).split(", ")
        assert 1 <= len(voices) <= 6 and all(VOICE_ID.fullmatch(v) for v in voices), voices
        assert voices[0] == "en-us", voices
        return f"{match.group(1)}<voices>?"

    return VOICE_SUGGESTIONS.sub(replace, text)


def snapshot(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def check_stream(expected_file: Path, actual: str) -> None:
    """Compare one stream with its golden file (absent when the stream is empty)."""
    actual = without_voice_list(actual)
    if REGENERATE:
        if actual:
            expected_file.write_text(actual, encoding="utf-8")
        else:
            expected_file.unlink(missing_ok=True)
    expected = expected_file.read_text(encoding="utf-8") if expected_file.exists() else ""
    assert actual == expected, f"differs from {expected_file.relative_to(GOLDEN)}"


@pytest.mark.parametrize("case", CASES)
def test_golden_output(case: str) -> None:
    before = snapshot(GOLDEN)
    code, stdout, stderr = run_validate(case)
    stem = GOLDEN / "scripts" / Path(case).stem
    check_stream(stem.with_suffix(".out"), stdout)
    check_stream(stem.with_suffix(".err"), stderr)
    assert "Traceback" not in stderr
    expected_code = 0 if case == "warnings.yaml" else 1
    assert code == expected_code
    if not REGENERATE:
        assert snapshot(GOLDEN) == before, "validate must write nothing"


def test_golden_files_hide_the_voice_list_of_the_installed_espeak() -> None:
    code, _, stderr = run_validate("unknown-voice.yaml")
    assert code == 1
    [line] = [line for line in stderr.splitlines() if "'en-uss'" in line]
    assert without_voice_list(line) == (
        "scripts/unknown-voice.yaml:2:8: error: voice: espeak: unknown voice or language "
        "'en-uss'; did you mean <voices>? (`meditate engines espeak` lists them all)"
    )
    assert "<voices>" not in line and "did you mean en-us, " in line


def test_warnings_fail_under_strict() -> None:
    code, _, stderr = run_validate("warnings.yaml", "--strict")
    assert code == 1
    assert "warning: background.fade_out" in stderr


def test_random_bytes(tmp_path: Path) -> None:
    import random

    path = tmp_path / "noise.yaml"
    path.write_bytes(bytes(random.Random(7).randrange(256) for _ in range(4096)))
    code, output = _validate_file(path)
    assert code == 1
    assert output.startswith(f"{path.name}:1:1: error: not UTF-8 text")


def test_non_utf8_text_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: Café\nsteps:\n  - say: Olé\n".encode("latin-1"))
    code, output = _validate_file(path)
    assert code == 1
    assert output.startswith(f"{path.name}:1:11: error: not UTF-8 text")


def test_twenty_megabytes(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"title: x\n" + b"# padding padding padding\n" * 800_000)
    started = time.perf_counter()
    code, output = _validate_file(path)
    assert time.perf_counter() - started < 20.0  # refused unread: only a 10x regression fails
    assert code == 1
    assert output.startswith(f"{path.name}:1:1: error: file is 20.8 MB; the limit is 1 MB")


def test_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("title: x\nsteps: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    code, output = _validate_file(path)
    assert code == 1
    assert "nesting is deeper than 40 levels" in output
    assert "Traceback" not in output


def _validate_file(path: Path) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "validate", str(path)],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Traceback" not in result.stderr
    return result.returncode, result.stderr + result.stdout


NESTED_ERRORS = [
    "scripts/_parts/nest_c.yaml:2:12: error: steps[0].pause: expected a duration like '30s', "
    "got 'ten'",
    "scripts/_parts/nest_b.yaml:3:14: note: included from here",
    "scripts/include-nested.yaml:4:14: note: included from here",
]


def test_json_gives_the_include_chain_of_each_problem() -> None:
    code, output, _ = run_validate("include-nested.yaml", "--format", "json")
    assert code == 1
    problems = json.loads(output)["problems"]
    chain = [
        {"path": "scripts/_parts/nest_b.yaml", "line": 3, "column": 14, "key": "steps[1].include"},
        {"path": "scripts/include-nested.yaml", "line": 4, "column": 14, "key": "steps[1].include"},
    ]
    assert [(p["path"], p["line"], p["severity"], p["included_from"]) for p in problems] == [
        ("scripts/_parts/nest_c.yaml", 2, "error", chain),
        ("scripts/_parts/nest_c.yaml", 3, "error", chain),
        ("scripts/_parts/nest_c.yaml", 4, "warning", chain),
    ]
    code, output, _ = run_validate("warnings.yaml", "--format", "json")
    assert all(p["included_from"] == [] for p in json.loads(output)["problems"])


@pytest.mark.parametrize("command", ["plan", "render", "build"])
def test_plan_render_and_build_name_the_script_that_included_the_error(
    command: str, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(GOLDEN, project)
    before = snapshot(project)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", command, "scripts/include-nested.yaml"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    start = lines.index(NESTED_ERRORS[0])
    assert lines[start : start + 3] == NESTED_ERRORS
    assert "Traceback" not in result.stderr
    assert snapshot(project) == before, f"{command} must write nothing for an invalid script"


def test_a_plan_warning_from_an_included_file_names_the_script_that_included_it(
    tmp_path: Path,
) -> None:
    _hebrew_project(tmp_path)
    for command in ("speak", "plan"):
        result = subprocess.run(
            [sys.executable, "-m", "pipeline", command, "scripts/he.yaml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    warning, note = result.stderr.splitlines()
    assert warning.startswith("WARNING: scripts/_s/hebrew.yaml:2:10: steps[0].say: 'שלום")
    assert note == "scripts/he.yaml:6:14: note: included from here"


def test_a_render_error_at_an_included_step_names_the_script_that_included_it(
    tmp_path: Path,
) -> None:
    from pipeline.build.render import _Sources
    from pipeline.core.errors import AudioError
    from pipeline.plan.checked import check_script, plan_checked
    from pipeline.project.config import load_project
    from pipeline.speech.cache import SpeechCache

    _hebrew_project(tmp_path)
    checked = check_script(
        tmp_path / "scripts" / "he.yaml", load_project(tmp_path / "meditate.yaml")
    )
    planned = plan_checked(checked)
    sources = _Sources(planned, SpeechCache(tmp_path / "pruned"))
    with pytest.raises(AudioError) as raised:  # its clip pruned by another process mid-render
        sources.speech(planned.timeline.speech[-1])
    assert str(raised.value).splitlines()[1:] == [
        f"{tmp_path / 'scripts' / 'he.yaml'}:6:14: note: included from here"
    ]


def _hebrew_project(root: Path) -> None:
    """A project whose script includes a sentence far longer than its estimate once measured:
    Hebrew read by an Arabic voice.
    """
    (root / "meditate.yaml").write_text("scripts: scripts\n")
    (root / "scripts" / "_s").mkdir(parents=True)
    (root / "scripts" / "he.yaml").write_text(
        "title: Hebrew\nlanguage: ar\nbackground: null\nsteps:\n"
        "  - say: Welcome.\n  - include: _s/hebrew.yaml\n"
    )
    (root / "scripts" / "_s" / "hebrew.yaml").write_text(
        "steps:\n  - say: שלום, מה שלומך היום?\n", encoding="utf-8"
    )
