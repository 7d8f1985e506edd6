"""One declaration per setting: config, environment, flags, scripts, schema and docs all
follow it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_project

from pipeline.core.errors import ConfigError
from pipeline.plan.validate import validate_paths
from pipeline.project.config import (
    CONFIG_TREE,
    DEFAULTS,
    ENVIRONMENT,
    Project,
    environment_layer,
    load_project,
    resolve,
)
from pipeline.project.settings import BackgroundSettings, Settings
from pipeline.script.declared import SETTINGS, Setting, Text
from pipeline.script.schema import script_schema

ROOT = Path(__file__).resolve().parent.parent
RANGED = [s for s in SETTINGS if s.value.low is not None and s.value.high is not None]


def _attribute(model: object, path: str) -> object:
    for name in path.split("."):
        model = getattr(model, name)
    return model


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.key)
def test_a_default_is_valid_and_is_what_resolve_gives(setting: Setting) -> None:
    bed = {"background.asset": "rain"}
    settings = resolve(Project(Path("/project"), None, {}), environ={}, flags=bed)
    if setting.default is None:
        assert setting.key not in DEFAULTS
        return
    if setting.default not in ("", ()) and not isinstance(setting.value, Text):
        assert setting.value.parse(setting.default) == setting.default
    resolved = _attribute(settings, setting.field)
    if isinstance(resolved, Path):  # folders are relative to the project root
        assert resolved == Path("/project", setting.default)
        assert _attribute(Settings(), setting.field) == Path(setting.default)
    else:
        assert resolved == setting.default
        if setting.key.startswith("background."):  # no bed by default: its dataclass holds them
            assert getattr(BackgroundSettings(""), setting.field.rpartition(".")[2]) == resolved
        else:
            assert _attribute(Settings(), setting.field) == resolved


@pytest.mark.parametrize("setting", RANGED, ids=lambda s: s.key)
def test_the_range_is_checked_in_the_config(setting: Setting, tmp_path: Path) -> None:
    assert setting.value.high is not None
    too_high = setting.value.high + 1
    path = setting.config_key.split(".")
    config = f"{path[-1]}: {too_high:g}\n"
    for parent in reversed(path[:-1]):
        config = f"{parent}:\n" + "".join(f"  {line}\n" for line in config.splitlines())
    write_project(tmp_path, config)
    with pytest.raises(ConfigError, match=rf"meditate.yaml:\d+:\d+: error: {setting.config_key}:"):
        load_project(start=tmp_path)


@pytest.mark.parametrize("setting", [s for s in RANGED if s.in_script], ids=lambda s: s.key)
def test_the_range_is_checked_in_a_script(setting: Setting, tmp_path: Path) -> None:
    assert setting.value.high is not None
    block, key = setting.key.split(".")
    extra = "asset: rain, " if block == "background" and key != "asset" else ""
    script = (
        f"title: T\n{block}: {{{extra}{key}: {setting.value.high + 1:g}}}\nsteps:\n  - say: Hi.\n"
    )
    root = write_project(tmp_path, "", {"t.yaml": script})
    report = validate_paths([root / "scripts" / "t.yaml"], load_project(start=root))
    assert [(p.place.key_path, p.place.line) for p in report.errors] == [(setting.key, 2)]
    assert "must be between" in report.errors[0].message


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.env], ids=lambda s: s.env)
def test_each_variable_sets_its_setting(setting: Setting) -> None:
    assert ENVIRONMENT[setting.env] == setting.key
    with pytest.raises(ConfigError, match=f"environment: error: {setting.env}: "):
        environment_layer({setting.env: "x" if not isinstance(setting.value, Text) else " "})


def test_the_config_layout_follows_the_declarations() -> None:
    assert CONFIG_TREE[""] == (
        "scripts", "output", "cache", "assets", "defaults", "master", "formats",
        "bitrate", "sample_rate", "channels", "lexicon", "words_per_minute", "gtts", "engines",
        "qa",
    )  # fmt: skip
    assert CONFIG_TREE["defaults"] == ("language", "voice", "background", "pauses")
    assert CONFIG_TREE["defaults.voice"] == (
        "engine", "name", "language", "tld", "rate", "pitch", "takes", "fallback",
    )  # fmt: skip


def test_the_script_schema_takes_each_script_setting_from_its_declaration() -> None:
    properties = script_schema()["anyOf"][0]["properties"]
    for setting in SETTINGS:
        if setting.in_script and "." in setting.key:
            block, key = setting.key.split(".")
            holder = properties[block]
            if block == "background":
                holder = holder["anyOf"][2]
            assert holder["properties"][key] == setting.schema()
            if setting.value.low is not None and "minimum" in setting.schema():
                assert setting.schema()["minimum"] == setting.value.low


def test_the_docs_name_every_setting_and_variable() -> None:
    docs = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"{setting.key.rpartition('.')[2]}" in docs, setting.key
        if setting.env:
            assert f"`{setting.env}`" in docs, setting.env


def test_a_script_accent_is_checked_where_it_is_written(tmp_path: Path) -> None:
    script = "title: T\nvoice:\n  tld: ../evil\nsteps:\n  - say: Hi.\n"
    root = write_project(tmp_path, "", {"t.yaml": script})
    report = validate_paths([root / "scripts" / "t.yaml"], load_project(start=root))
    assert [(p.place.key_path, p.place.line, p.place.column) for p in report.errors] == [
        ("voice.tld", 3, 8)
    ]
    assert "expected an accent's Google domain" in report.errors[0].message
