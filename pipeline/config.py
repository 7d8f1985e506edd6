"""Project config discovery and settings precedence.

Settings are merged from layers of flat keys (``voice.rate``, ``master.loudness``), lowest
first: built-in defaults < project config < script < ``MEDITATE_*`` environment < CLI flags.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError, Place, UsageError
from pipeline.script.model import Script, Voice
from pipeline.script.nodes import Reader, is_null, items, read_config_file
from pipeline.settings import BackgroundSettings, RetrySettings, Settings, VoiceSettings
from pipeline.units import parse_duration, parse_gain

CONFIG_NAME = "meditate.yaml"
FORMATS = ("mp3", "m4a", "ogg", "opus", "flac", "wav")
BACKGROUND_OFF = "background"
"""A layer holding this key (value None) switches off any bed set by lower layers."""

Layer = dict[str, Any]


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected text, got {value!r}")
    return value.strip()


def _number(low: float, high: float) -> Callable[[object], float]:
    def parse(value: object) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        if not low <= float(value) <= high:
            raise ValueError(f"must be between {low:g} and {high:g}, got {value!r}")
        return float(value)

    return parse


def _integer(low: int, high: int) -> Callable[[object], int]:
    def parse(value: object) -> int:
        number = _number(low, high)(value)
        if number != int(number):
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(number)

    return parse


def _seconds(maximum_s: float) -> Callable[[object], float]:
    def parse(value: object) -> float:
        seconds = parse_duration(value)
        if seconds > maximum_s:
            raise ValueError(f"must be at most {maximum_s:g} s, got {value!r}")
        return seconds

    return parse


def _gain(low: float, high: float) -> Callable[[object], float]:
    def parse(value: object) -> float:
        gain = parse_gain(value)
        if not low <= gain <= high:
            raise ValueError(f"must be between {low:g} and {high:g} dB, got {value!r}")
        return gain

    return parse


def _formats(value: object) -> tuple[str, ...]:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names:
        raise ValueError(f"expected a list of formats, got {value!r}")
    formats = tuple(str(name).strip().lower() for name in names)
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}; expected some of: {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(formats))


def _bitrate(value: object) -> str:
    text = str(value).strip().lower()
    if not text.rstrip("k").isdigit() or not 8 <= int(text.rstrip("k")) <= 512:
        raise ValueError(f"expected a bitrate like '128k', got {value!r}")
    return text if text.endswith("k") else f"{text}k"


def _language(value: object) -> str:
    from pipeline.script.parse import LANGUAGE_PATTERN

    text = _text(value)
    if not LANGUAGE_PATTERN.match(text):
        raise ValueError(f"expected a language code like 'en', got {value!r}")
    return text


_TLD = re.compile(r"\.?[a-z0-9-]+(\.[a-z0-9-]+)*")


def _tld(value: object) -> str:
    text = _text(value)
    if not _TLD.fullmatch(text.lower()):
        raise ValueError(f"expected an accent's Google domain like 'com' or 'co.uk', got {value!r}")
    return text


def _endpoint(value: object) -> str:
    text = _text(value)
    try:
        parts = urllib.parse.urlsplit(text)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number, or out of range
        usable = False
    if not usable or parts.query or parts.fragment:
        raise ValueError(
            f"expected an http:// or https:// address like 'http://127.0.0.1:8080', got {value!r}"
        )
    return text


def _lexicon(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of word: respelling")
    return tuple((_text(word), _text(spoken)) for word, spoken in value.items())


PARSERS: dict[str, Callable[[object], Any]] = {
    "scripts": _text,
    "output": _text,
    "cache": _text,
    "assets": _text,
    "language": _language,
    "voice.engine": _text,
    "voice.name": _text,
    "voice.language": _language,
    "voice.tld": _tld,
    "voice.rate": _number(0.5, 2.0),
    "background.asset": _text,
    "background.gain": _gain(-60.0, 12.0),
    "background.fade_in": _seconds(600.0),
    "background.fade_out": _seconds(600.0),
    "background.duck": _gain(0.0, 40.0),
    "pauses.sentence": _seconds(60.0),
    "pauses.paragraph": _seconds(60.0),
    "pauses.lead_in": _seconds(60.0),
    "pauses.tail": _seconds(60.0),
    "master.loudness": _number(-40.0, -5.0),
    "master.true_peak": _number(-9.0, 0.0),
    "formats": _formats,
    "bitrate": _bitrate,
    "sample_rate": _integer(8000, 192000),
    "channels": _integer(1, 2),
    "lexicon": _lexicon,
    "words_per_minute": _number(60.0, 400.0),
    "gtts.tries": _integer(1, 20),
    "gtts.backoff_min": _seconds(600.0),
    "gtts.backoff_max": _seconds(3600.0),
    "gtts.timeout": _seconds(600.0),
    "gtts.concurrency": _integer(1, 16),
    "gtts.min_interval": _seconds(60.0),
    "gtts.endpoint": _endpoint,
}
"""Every settable key, flat, with its parser; the config, environment and flags share them."""

CONFIG_GROUPS = {
    "defaults": ("language", "voice", "background", "pauses"),
    "master": ("loudness", "true_peak"),
    "gtts": (
        "tries",
        "backoff_min",
        "backoff_max",
        "timeout",
        "concurrency",
        "min_interval",
        "endpoint",
    ),
}
TOP_KEYS = (
    "scripts", "output", "cache", "assets", "defaults", "master", "formats",
    "bitrate", "sample_rate", "channels", "lexicon", "words_per_minute", "gtts",
)  # fmt: skip

ENVIRONMENT = {
    "MEDITATE_SCRIPTS": "scripts",
    "MEDITATE_OUTPUT": "output",
    "MEDITATE_CACHE": "cache",
    "MEDITATE_ASSETS": "assets",
    "MEDITATE_LANGUAGE": "language",
    "MEDITATE_ENGINE": "voice.engine",
    "MEDITATE_VOICE": "voice.name",
    "MEDITATE_TLD": "voice.tld",
    "MEDITATE_RATE": "voice.rate",
    "MEDITATE_LOUDNESS": "master.loudness",
    "MEDITATE_TRUE_PEAK": "master.true_peak",
    "MEDITATE_FORMATS": "formats",
    "MEDITATE_BITRATE": "bitrate",
    "MEDITATE_SAMPLE_RATE": "sample_rate",
    "MEDITATE_CHANNELS": "channels",
    "MEDITATE_GTTS_ENDPOINT": "gtts.endpoint",
}
"""Environment variables and the setting each one sets."""


def _builtin_defaults() -> Layer:
    """The defaults of the settings dataclasses, as a layer: they live in one place."""
    settings, bed, retry = Settings(), BackgroundSettings(asset=""), RetrySettings()
    return {
        "scripts": str(settings.scripts_dir),
        "output": str(settings.output_dir),
        "cache": str(settings.cache_dir),
        "assets": str(settings.assets_dir),
        "language": settings.language,
        "voice.engine": settings.voice.engine,
        "voice.tld": settings.voice.tld,
        "voice.rate": settings.voice.rate,
        "background.gain": bed.gain_db,
        "background.fade_in": bed.fade_in_s,
        "background.fade_out": bed.fade_out_s,
        "background.duck": bed.duck_db,
        "pauses.sentence": settings.sentence_pause_s,
        "pauses.paragraph": settings.paragraph_pause_s,
        "pauses.lead_in": settings.lead_in_s,
        "pauses.tail": settings.tail_s,
        "master.loudness": settings.target_lufs,
        "master.true_peak": settings.true_peak_dbtp,
        "formats": settings.formats,
        "bitrate": settings.bitrate,
        "sample_rate": settings.sample_rate,
        "channels": settings.channels,
        "lexicon": settings.lexicon,
        "words_per_minute": settings.words_per_minute,
        "gtts.tries": retry.tries,
        "gtts.backoff_min": retry.backoff_min_s,
        "gtts.backoff_max": retry.backoff_max_s,
        "gtts.timeout": retry.timeout_s,
        "gtts.concurrency": retry.concurrency,
        "gtts.min_interval": retry.min_interval_s,
        "gtts.endpoint": retry.endpoint,
    }


DEFAULTS: Layer = _builtin_defaults()
"""The built-in defaults, as the lowest layer of settings."""


@dataclass(frozen=True)
class Project:
    """A project: its root folder, config file and the config's layer of settings."""

    root: Path
    """The folder of ``meditate.yaml``, else the current folder."""
    config_path: Path | None
    """The config file, if any."""
    layer: Layer = field(default_factory=dict)
    """Settings from the config file."""
    places: dict[str, Place] = field(default_factory=dict, compare=False)
    """Where in the config file each of those settings is (flat key -> place)."""


def find_config(start: Path) -> Path | None:
    """``meditate.yaml`` in ``start`` or the nearest folder above it."""
    folder = start.resolve()
    if not folder.is_dir():
        folder = folder.parent
    for candidate in (folder, *folder.parents):
        if (candidate / CONFIG_NAME).is_file():
            return candidate / CONFIG_NAME
    return None


def find_root_by_scripts(start: Path) -> Path | None:
    """Without ``meditate.yaml``: ``start`` or the nearest folder above it that holds a
    ``scripts/`` folder with YAML files in it or in its subfolders (one level down), below
    the home, temporary and filesystem root folders.
    """
    import tempfile

    default = str(DEFAULTS["scripts"])
    folder = start.resolve()
    if not folder.is_dir():
        folder = folder.parent
    shared = {Path(folder.anchor), Path.home().resolve(), Path(tempfile.gettempdir()).resolve()}
    for candidate in (folder, *folder.parents):
        if candidate in shared:  # a scripts/ folder there is anybody's, not a project's
            break
        scripts = candidate / default
        if scripts.is_dir() and _holds_yaml(scripts):
            return candidate
    return None


def _holds_yaml(folder: Path) -> bool:
    """Whether ``folder`` or one of its subfolders holds a ``.yaml``/``.yml`` file."""
    try:
        entries = list(os.scandir(folder))
        if any(e.name.endswith((".yaml", ".yml")) and e.is_file() for e in entries):
            return True
        for entry in entries:
            if entry.is_dir() and not entry.name.startswith("."):
                with os.scandir(entry.path) as inner:
                    if any(e.name.endswith((".yaml", ".yml")) for e in inner):
                        return True
    except OSError:
        return False
    return False


def load_project(config: Path | None = None, start: Path | None = None) -> Project:
    """The project for an explicit config file, or the one found from ``start`` (or cwd):
    the folder of the nearest ``meditate.yaml`` above, else of the nearest ``scripts/``
    folder above, else the current folder.
    """
    if config is None:
        config = find_config(start or Path.cwd())
    elif not config.is_file():
        raise ConfigError(f"{config}: error: no such config file")
    if config is None:
        root = find_root_by_scripts(start or Path.cwd()) or Path.cwd().resolve()
        return Project(root, None, {})
    layer, places = read_config(config)
    return Project(config.resolve().parent, config, layer, places)


def scripts_dir(project: Project) -> Path:
    """The project's scripts folder, the default of commands given no path; a ConfigError
    saying how to make a project when there is neither a config nor that folder.
    """
    folder = resolve(project).scripts_dir
    if project.config_path is None and not folder.is_dir():
        from pipeline.fileio import display_path

        raise ConfigError(
            f"{display_path(folder)}: error: no such folder, and no {CONFIG_NAME} in "
            f"{Path.cwd()} or above: name the scripts (e.g. `meditate validate my-scripts`), "
            f"or make a project: `meditate new ID` starts '{folder.name}/' here, and a "
            f"{CONFIG_NAME} (every key optional, e.g. `scripts: my-scripts`) marks its root"
        )
    return folder


def read_config(path: Path) -> tuple[Layer, dict[str, Place]]:
    """Read ``meditate.yaml`` into a layer, and where each of its settings is; every problem
    is reported at once.
    """

    def read(reader: Reader, root: yaml.Node | None) -> tuple[Layer, dict[str, Place]]:
        layer: Layer = {}
        places: dict[str, Place] = {}
        if root is not None and not is_null(root):
            entries = reader.mapping(root, "", TOP_KEYS)
            for key, node in items(entries or {}):
                if key in CONFIG_GROUPS:
                    _read_group(reader, node, key, layer, places)
                else:
                    _read_value(reader, node, key, key, layer, places)
        return layer, places

    return read_config_file(path, read)


def _read_group(
    reader: Reader, node: yaml.Node, group: str, layer: Layer, places: dict[str, Place]
) -> None:
    entries = reader.mapping(node, group, CONFIG_GROUPS[group])
    for key, value in items(entries or {}):
        if group == "defaults" and key == "background" and is_null(value):
            layer[BACKGROUND_OFF] = None
        elif group == "defaults" and key in ("voice", "background", "pauses"):
            allowed = tuple(k.split(".", 1)[1] for k in PARSERS if k.startswith(f"{key}."))
            sub_entries = reader.mapping(value, f"{group}.{key}", allowed)
            for sub_key, sub_value in items(sub_entries or {}):
                flat = f"{key}.{sub_key}"
                _read_value(reader, sub_value, f"{group}.{flat}", flat, layer, places)
        else:
            flat = key if group == "defaults" else f"{group}.{key}"
            _read_value(reader, value, f"{group}.{key}", flat, layer, places)


def _read_value(
    reader: Reader,
    node: yaml.Node,
    key_path: str,
    flat: str,
    layer: Layer,
    places: dict[str, Place],
) -> None:
    from pipeline.script.nodes import scalar

    raw: object
    if isinstance(node, yaml.SequenceNode):
        raw = [scalar(item) for item in node.value if isinstance(item, yaml.ScalarNode)]
    elif isinstance(node, yaml.MappingNode):
        raw = {scalar(k): scalar(v) for k, v in node.value if isinstance(v, yaml.ScalarNode)}
    else:
        raw = scalar(node)
    try:
        layer[flat] = PARSERS[flat](raw)
    except ValueError as error:
        reader.error(node, key_path, str(error))
    places[flat] = reader.place(node, key_path)


def environment_layer(environ: Mapping[str, str] | None = None) -> Layer:
    """Settings from ``MEDITATE_*`` variables; an invalid value names the variable."""
    environ = os.environ if environ is None else environ
    layer: Layer = {}
    for variable, flat in ENVIRONMENT.items():
        value = environ.get(variable)
        if value is None or value == "":
            continue
        try:
            layer[flat] = PARSERS[flat](_coerce(value))
        except ValueError as error:
            raise ConfigError(f"environment: error: {variable}: {error}") from None
    return layer


def flags_layer(flags: Mapping[str, object]) -> Layer:
    """Settings from CLI flags given as flat keys; None means the flag was not given."""
    layer: Layer = {}
    for flat, value in flags.items():
        if value is None:
            continue
        try:
            layer[flat] = PARSERS[flat](_coerce(value) if isinstance(value, str) else value)
        except ValueError as error:
            raise UsageError(f"error: {flag_name(flat)}: {error}") from None
    return layer


def flag_name(flat: str) -> str:
    """The command-line option of a setting: ``voice.engine`` -> ``--engine``."""
    return "--" + flat.replace("voice.", "").replace(".", "-").replace("_", "-")


def _coerce(text: str) -> object:
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        return text


def script_layer(script: Script) -> Layer:
    """The settings a script sets for itself."""
    layer: Layer = {}
    if script.language is not None:
        layer["language"] = script.language
    for name in ("engine", "name", "language", "tld", "rate"):
        value = getattr(script.voice, name)
        if value is not None:
            layer[f"voice.{name}"] = value
    if script.background_off:
        layer[BACKGROUND_OFF] = None
    elif script.background is not None:
        background = script.background
        layer[BACKGROUND_OFF] = None
        layer["background.asset"] = background.asset
        for key, value in (
            ("gain", background.gain_db),
            ("fade_in", background.fade_in_s),
            ("fade_out", background.fade_out_s),
            ("duck", background.duck_db),
        ):
            if value is not None:
                layer[f"background.{key}"] = value
    if script.pauses.sentence_s is not None:
        layer["pauses.sentence"] = script.pauses.sentence_s
    if script.pauses.paragraph_s is not None:
        layer["pauses.paragraph"] = script.pauses.paragraph_s
    if script.pauses.lead_in_s is not None:
        layer["pauses.lead_in"] = script.pauses.lead_in_s
    if script.pauses.tail_s is not None:
        layer["pauses.tail"] = script.pauses.tail_s
    return layer


def merge(*layers: Layer) -> Layer:
    """Layers merged lowest first; a bed switched off drops the lower layers' bed asset."""
    merged: Layer = {}
    for layer in layers:
        if BACKGROUND_OFF in layer:
            merged.pop("background.asset", None)
        merged.update({k: v for k, v in layer.items() if k != BACKGROUND_OFF})
    return merged


def resolve(
    project: Project,
    script: Script | None = None,
    environ: Layer | None = None,
    flags: Layer | None = None,
) -> Settings:
    """Settings for one script (or for the project alone) after every precedence rule."""
    environ = environment_layer() if environ is None else environ
    flags = flags or {}
    merged = merge(DEFAULTS, project.layer, script_layer(script) if script else {}, environ, flags)
    forced = {**environ, **flags}
    language = merged["language"]
    voice = VoiceSettings(
        engine=merged["voice.engine"],
        name=merged.get("voice.name") or "",
        language=merged.get("voice.language") or language,
        tld=merged["voice.tld"],
        rate=merged["voice.rate"],
    )
    background = None
    if "background.asset" in merged:
        background = BackgroundSettings(
            asset=merged["background.asset"],
            gain_db=merged["background.gain"],
            fade_in_s=merged["background.fade_in"],
            fade_out_s=merged["background.fade_out"],
            duck_db=merged["background.duck"],
        )
    return Settings(
        root=project.root,
        config_path=project.config_path,
        scripts_dir=project.root / merged["scripts"],
        output_dir=project.root / merged["output"],
        cache_dir=project.root / merged["cache"],
        assets_dir=project.root / merged["assets"],
        language=language,
        voice=voice,
        forced_voice=Voice(
            engine=forced.get("voice.engine"),
            name=forced.get("voice.name"),
            language=forced.get("voice.language"),
            tld=forced.get("voice.tld"),
            rate=forced.get("voice.rate"),
        ),
        background=background,
        sentence_pause_s=merged["pauses.sentence"],
        paragraph_pause_s=merged["pauses.paragraph"],
        lead_in_s=merged["pauses.lead_in"],
        tail_s=merged["pauses.tail"],
        target_lufs=merged["master.loudness"],
        true_peak_dbtp=merged["master.true_peak"],
        formats=tuple(merged["formats"]),
        bitrate=merged["bitrate"],
        sample_rate=merged["sample_rate"],
        channels=merged["channels"],
        lexicon=tuple(merged["lexicon"]),
        words_per_minute=merged["words_per_minute"],
        retry=RetrySettings(
            tries=merged["gtts.tries"],
            backoff_min_s=merged["gtts.backoff_min"],
            backoff_max_s=merged["gtts.backoff_max"],
            timeout_s=merged["gtts.timeout"],
            concurrency=merged["gtts.concurrency"],
            min_interval_s=merged["gtts.min_interval"],
            endpoint=merged["gtts.endpoint"],
        ),
    )
