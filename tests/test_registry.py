"""The engine registry: built-ins, entry-point engines, unknown and broken engines."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import StubEngine

from pipeline.core.errors import EngineError
from pipeline.engines import (
    EngineInfo,
    clear_engine_cache,
    describe_engines,
    engine_names,
    get_engine,
)
from pipeline.engines.base import Availability, EncodedAudio, Engine
from pipeline.project.settings import RetrySettings, VoiceSettings


class FakeEngine(StubEngine):
    """A third-party engine that counts its instances."""

    VERSION = "9.9"
    VOICES = ("robot",)
    LANGUAGES = ("en", "fr")
    instances = 0

    def __init__(self, retry: RetrySettings | None = None) -> None:
        super().__init__(retry)
        type(self).instances += 1

    def synthesize(self, text: str, voice: VoiceSettings) -> EncodedAudio:
        return EncodedAudio(b"", "wav")


class GrumpyEngine(FakeEngine):
    """Loads, but cannot tell its availability."""

    def availability(self) -> Availability:
        raise RuntimeError("backend exploded")


class FakeEntryPoint:
    """What importlib.metadata returns, loading a given object or raising."""

    def __init__(self, name: str, load: Callable[[], Any]) -> None:
        self.name = name
        self.value = f"fake_plugin:{name}"
        self.group = "pipeline.engines"
        self._load = load

    def load(self) -> Any:
        return self._load()


def _broken() -> Any:
    raise ImportError("No module named 'fancy_tts_backend'")


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Install fake entry points: fake (works), broken (import fails), grumpy, notengine."""
    original = importlib.metadata.entry_points
    fakes = [
        FakeEntryPoint("fake", lambda: FakeEngine),
        FakeEntryPoint("broken", _broken),
        FakeEntryPoint("grumpy", lambda: GrumpyEngine),
        FakeEntryPoint("notengine", lambda: dict),
        FakeEntryPoint("espeak", lambda: FakeEngine),  # must not shadow the built-in
    ]

    def entry_points(**params: Any) -> Any:
        if params.get("group") == "pipeline.engines":
            return fakes
        return original(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    clear_engine_cache()
    FakeEngine.instances = 0
    yield
    clear_engine_cache()


def test_builtin_names_listed_without_importing_engines() -> None:
    code = (
        "import sys; from pipeline.engines import engine_names; names = engine_names();"
        "print(names, any(m.startswith('pipeline.engines.') and m != 'pipeline.engines.base'"
        " for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("[") and "'espeak'" in out.stdout
    assert "'gtts'" in out.stdout
    assert out.stdout.strip().endswith("False")


def test_unknown_engine_lists_names(plugins: None) -> None:
    with pytest.raises(EngineError) as caught:
        get_engine("espek")
    message = str(caught.value)
    assert "unknown engine 'espek'" in message
    assert "espeak, fake, grumpy, gtts" in message.replace("broken, ", "").replace(
        "notengine, ", ""
    )
    assert "did you mean 'espeak'?" in message


def test_entry_point_engine_is_found_and_cached(plugins: None) -> None:
    assert {"espeak", "gtts", "fake", "broken"} <= set(engine_names())
    engine = get_engine("fake")
    assert isinstance(engine, FakeEngine)
    assert engine.name == "fake"
    assert get_engine("fake") is engine
    assert FakeEngine.instances == 1


def test_builtin_name_is_not_shadowed_by_entry_point(plugins: None) -> None:
    assert engine_names().count("espeak") == 1
    try:
        engine = get_engine("espeak")
    except EngineError:
        return  # the espeak module is not there (yet): it was still not the plugin
    assert not isinstance(engine, FakeEngine)


def test_retry_settings_reach_the_engine(plugins: None) -> None:
    retry = RetrySettings(tries=2)
    engine = get_engine("fake", retry)
    assert engine.retry == retry
    assert get_engine("fake", RetrySettings(tries=2)) is engine


def test_one_instance_under_threads(plugins: None) -> None:
    found: list[Engine] = []
    threads = [threading.Thread(target=lambda: found.append(get_engine("fake"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(engine) for engine in found}) == 1
    assert FakeEngine.instances == 1


def test_broken_engine_error_gives_reason(plugins: None) -> None:
    with pytest.raises(EngineError, match=r"engine 'broken' cannot be loaded .*fancy_tts_backend"):
        get_engine("broken")
    with pytest.raises(EngineError, match="not a subclass"):
        get_engine("notengine")


def test_describe_reports_broken_engines_as_unusable(plugins: None) -> None:
    infos = {info.name: info for info in describe_engines()}
    assert infos["fake"] == EngineInfo("fake", True, "", "9.9", ("robot",), ("en", "fr"))
    assert not infos["broken"].usable
    assert "fancy_tts_backend" in infos["broken"].reason
    assert not infos["grumpy"].usable
    assert "backend exploded" in infos["grumpy"].reason
    assert not infos["notengine"].usable
    assert {"espeak", "gtts"} <= set(infos)
    for info in infos.values():
        assert info.usable or info.reason


def test_entry_point_metadata_failure_keeps_builtins(monkeypatch: pytest.MonkeyPatch) -> None:
    def entry_points(**params: Any) -> Any:
        raise RuntimeError("corrupt METADATA")

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert engine_names() == ["espeak", "gtts"]


def test_engines_name_lists_every_voice_with_its_languages() -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    espeak = get_engine("espeak")
    result = CliRunner().invoke(cli, ["engines", "espeak"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.startswith("    ")]
    listed = {row[0] for row in rows if not row[0].endswith(",")}
    assert listed >= set(espeak.voices())
    assert "    en-us" in result.output and "en-us, en  English (America)" in result.output
    assert "vi-vn-x-central" in result.output  # every language too, none cut at a hyphen
    gtts = CliRunner().invoke(cli, ["engines", "gtts"]).output
    assert "    en     English" in gtts and gtts.count("\n    ") == len(
        get_engine("gtts").languages()
    )


def test_engines_all_and_json_list_every_voice_of_every_engine() -> None:
    import json

    from click.testing import CliRunner

    from pipeline.cli import cli

    shown = CliRunner().invoke(cli, ["engines", "--all"]).output
    assert "English (America)" in shown and "    en     English" in shown
    result = CliRunner().invoke(cli, ["engines", "--format", "json"])
    assert result.exit_code == 0
    payload = {engine["name"]: engine for engine in json.loads(result.output)["engines"]}
    voices = {voice["name"]: voice for voice in payload["espeak"]["voices"]}
    assert len(voices) == len(get_engine("espeak").voices())
    assert voices["en-us"]["languages"][0] == "en-us"
    assert {"code": "en", "name": "English"} in payload["gtts"]["languages"]
    assert payload["gtts"]["usable"] is True


def test_engines_with_an_unknown_name_is_a_usage_error() -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    result = CliRunner().invoke(cli, ["engines", "espak"])
    assert result.exit_code == 2
    assert "unknown engine 'espak'" in result.output and "did you mean 'espeak'" in result.output


@pytest.mark.parametrize(
    ("engine", "voice"),
    [
        ("espeak", VoiceSettings(name="en-uss")),
        ("gtts", VoiceSettings(engine="gtts", language="xx")),
    ],
)
def test_a_voice_error_names_the_command_that_lists_them_all(
    engine: str, voice: VoiceSettings
) -> None:
    with pytest.raises(EngineError, match=f"`meditate engines {engine}` lists") as caught:
        get_engine(engine).cache_settings(voice)
    assert "`meditate engines` " not in str(caught.value)


def test_the_short_listing_says_which_command_lists_them_all() -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli

    output = CliRunner().invoke(cli, ["engines"]).output
    assert "... (+" in output
    for name in ("espeak", "gtts"):
        assert f"  (`meditate engines {name}` lists them all)\n" in output
