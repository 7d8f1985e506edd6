"""gTTS through the whole command line, against the local fake Google server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_gtts import FakeGtts

from pipeline.cli import cli
from pipeline.engines import clear_engine_cache
from pipeline.speech.cache import SUFFIX

SCRIPT = """\
title: Online voice
voice: {engine: gtts, tld: co.uk}
steps:
  - say: Hello there. Breathe softly.
"""


def make_project(root: Path, fake: FakeGtts, tries: int = 3) -> None:
    make_project_config(root, fake, tries)
    (root / "scripts").mkdir()
    (root / "scripts" / "online.yaml").write_text(SCRIPT, encoding="utf-8")


def make_project_config(root: Path, fake: FakeGtts, tries: int = 3) -> None:
    (root / "meditate.yaml").write_text(
        "sample_rate: 16000\nchannels: 1\ncache: cache\n"
        f"gtts: {{endpoint: '{fake.url}', tries: {tries}, backoff_min: 10ms, "
        "backoff_max: 20ms, timeout: 1s, min_interval: 0s}\n",
        encoding="utf-8",
    )


@pytest.fixture(autouse=True)
def fresh_engines() -> None:
    clear_engine_cache()


def test_speak_with_gtts_fills_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with FakeGtts() as fake:
        make_project(tmp_path, fake)
        result = CliRunner().invoke(cli, ["speak", "-j", "1"])
        assert result.exit_code == 0, result.output
        assert "2 sentence(s): 0 already cached, 2 synthesized" in result.output
        assert sorted(fake.texts) == ["Breathe softly.", "Hello there."]
        assert {request.tld for request in fake.requests} == {"co.uk"}
        again = CliRunner().invoke(cli, ["speak"])
        assert "0 synthesized (0 engine call(s))" in again.output
        assert len(fake.requests) == 2


def test_clips_of_another_endpoint_are_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with FakeGtts() as test_server, FakeGtts() as other_server:
        make_project(tmp_path, test_server)
        assert CliRunner().invoke(cli, ["speak", "-j", "1"]).exit_code == 0
        make_project_config(tmp_path, other_server)
        result = CliRunner().invoke(cli, ["speak", "-j", "1"])
        assert result.exit_code == 0, result.output
        assert "0 already cached, 2 synthesized" in result.output
        assert len(other_server.requests) == 2


def test_rate_limited_forever_is_a_clear_error_and_caches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with FakeGtts(default_mode="429") as fake:
        make_project(tmp_path, fake, tries=3)
        result = CliRunner().invoke(cli, ["speak", "-j", "1"])
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        assert "scripts/online.yaml:4:10: steps[0].say" in result.output
        assert "429 (Too Many Requests)" in result.output and "after 3 tries" in result.output
        assert "probable cause: rate limit" in result.output
        assert len(fake.requests) == 3, "no other sentence is tried after the first failure"
    entries = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.suffix == SUFFIX]
    assert entries == []


def test_never_falls_back_to_another_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with FakeGtts(default_mode="500") as fake:
        make_project(tmp_path, fake, tries=2)
        result = CliRunner().invoke(cli, ["render", "scripts/online.yaml", "-o", "out"])
    assert result.exit_code == 1
    assert "500" in result.output
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_render_fails_in_bounded_time_on_a_trickled_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one byte every 50 ms: each read beats the 1 s timeout, the answer never does
    monkeypatch.chdir(tmp_path)
    with FakeGtts(default_mode="trickle", trickle_s=0.05) as fake:
        make_project(tmp_path, fake, tries=2)
        start_s = time.monotonic()
        result = CliRunner().invoke(
            cli, ["render", "scripts/online.yaml", "--engine", "gtts", "-o", "out"]
        )
        elapsed_s = time.monotonic() - start_s
        assert 2 <= len(fake.requests) <= 4  # two tries of each of the two sentences at most
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"no complete answer from {fake.url} within 1 s after 2 tries" in result.output
    assert elapsed_s < 2 * 1.0 + 3.0


def test_speak_with_an_unresolvable_endpoint_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # .invalid never resolves (RFC 2606); tries and back-off would take minutes if retried
    monkeypatch.chdir(tmp_path)
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    (tmp_path / "meditate.yaml").write_text(
        "cache: cache\ngtts: {endpoint: 'http://tts.example.invalid', tries: 5, "
        "backoff_min: 5s, timeout: 5s}\n",
        encoding="utf-8",
    )
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "online.yaml").write_text(SCRIPT, encoding="utf-8")
    start_s = time.monotonic()
    result = CliRunner().invoke(cli, ["speak", "-j", "1"])
    assert time.monotonic() - start_s < 5.0
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "cannot resolve host 'tts.example.invalid'" in result.output
    assert "after" not in result.output


@pytest.mark.parametrize(
    ("config", "environment", "expected"),
    [
        (
            "",
            {"MEDITATE_TLD": "../evil"},
            "environment: error: MEDITATE_TLD: expected an accent's Google domain like 'com' or "
            "'co.uk', got '../evil'",
        ),
        (
            "",
            {"MEDITATE_ENGINE": "gtts", "MEDITATE_TLD": "../evil"},
            "environment: error: MEDITATE_TLD: expected an accent's Google domain",
        ),
        (
            "",
            {"MEDITATE_ENGINE": "gtts", "MEDITATE_TLD": "co.ukk"},
            "environment: error: MEDITATE_TLD: gtts: unknown tld 'co.ukk'",
        ),
        (
            "defaults:\n  voice: {engine: gtts}\n",
            {"MEDITATE_TLD": "co.ukk"},
            "environment: error: MEDITATE_TLD: gtts: unknown tld 'co.ukk'",
        ),
        (
            "defaults:\n  voice: {engine: gtts, tld: co.ukk}\n",
            {},
            "meditate.yaml:2:30: error: defaults.voice.tld: gtts: unknown tld 'co.ukk'",
        ),
        (
            "defaults:\n  voice: {tld: co.ukk}\n",
            {"MEDITATE_ENGINE": "gtts"},
            "meditate.yaml:2:16: error: defaults.voice.tld: gtts: unknown tld 'co.ukk'",
        ),
        (
            "",
            {"MEDITATE_ENGINE": "gtts", "MEDITATE_VOICE": "x", "MEDITATE_LANGUAGE": "zz"},
            "environment: error: MEDITATE_LANGUAGE: gtts: unknown language 'zz'",
        ),
        (
            "defaults:\n  voice: {engine: gtts, name: x}\n",
            {"MEDITATE_LANGUAGE": "zz"},
            "environment: error: MEDITATE_LANGUAGE: gtts: unknown language 'zz'",
        ),
        (
            "",
            {"MEDITATE_RATE": "fast"},
            "environment: error: MEDITATE_RATE: expected a number, got 'fast'",
        ),
        (
            "",
            {"MEDITATE_GTTS_ENDPOINT": "ftp://mirror.example"},
            "environment: error: MEDITATE_GTTS_ENDPOINT: expected an http:// or https:// address",
        ),
        (
            "gtts: {endpoint: 'mirror.example:8080'}\n",
            {},
            "meditate.yaml:1:18: error: gtts.endpoint: expected an http:// or https:// address",
        ),
    ],
    ids=[
        "env tld, espeak",
        "env tld and engine",
        "env unknown tld",
        "env tld, config engine",
        "config tld",
        "config tld, env engine",
        "env language beside a voice name",
        "env language beside a config voice name",
        "env rate",
        "env endpoint",
        "config endpoint",
    ],
)
def test_a_bad_voice_setting_is_blamed_where_it_is_set(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config: str,
    environment: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text(config, encoding="utf-8")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "a.yaml").write_text("title: A\nsteps:\n  - say: Hello.\n")
    for command in (["validate"], ["render", "scripts/a.yaml", "-o", "out"]):
        result = CliRunner().invoke(cli, command, env=environment)
        assert result.exit_code in (1, 2), result.output
        errors = [line for line in result.output.splitlines() if "error: " in line]
        assert len(errors) == 1 and errors[0].startswith(expected), (command, result.output)
        assert "MEDITATE_ENGINE" not in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()
