"""Project config discovery and settings precedence.

Settings are merged from layers of flat keys (``voice.rate``, ``master.loudness``), lowest
first: built-in defaults < project config < script < ``MEDITATE_*`` environment < CLI flags.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import ConfigError, Place, UsageError
from pipeline.project.settings import (
    BackgroundSettings,
    EngineSettings,
    QaSettings,
    Settings,
    VoiceSettings,
)
from pipeline.script.declared import FOLDER, SETTINGS, keys_under
from pipeline.script.model import Script, Voice
from pipeline.script.nodes import Reader, is_null, items, read_config_file

CONFIG_NAME = "meditate.yaml"
BACKGROUND_OFF = "background"
"""A layer holding this key (value None) switches off any bed set by lower layers."""

Layer = dict[str, Any]


PARSERS: dict[str, Callable[[object], Any]] = {s.key: s.value.parse for s in SETTINGS}
"""Every settable key, flat, with its parser; the config, environment and flags share them."""
ENVIRONMENT = {s.env: s.key for s in SETTINGS if s.env}
"""Environment variables and the setting each one sets."""
DEFAULTS: Layer = {s.key: s.default for s in SETTINGS if s.default is not None}
"""The built-in defaults, as the lowest layer of settings."""


def _config_tree() -> dict[str, tuple[str, ...]]:
    """Each mapping of ``meditate.yaml`` (``""`` is the top) and its keys, in order."""
    tree: dict[str, dict[str, None]] = {"": {}}
    for setting in SETTINGS:
        parts = setting.config_key.split(".")
        for depth in range(len(parts)):
            parent = ".".join(parts[:depth])
            tree.setdefault(parent, {})[parts[depth]] = None
    return {parent: tuple(keys) for parent, keys in tree.items()}


CONFIG_TREE = _config_tree()
"""The mappings of ``meditate.yaml`` and the keys each may hold."""
CONFIG_KEYS = {s.config_key: s.key for s in SETTINGS}
"""Where each setting is in ``meditate.yaml`` -> its flat key."""


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
        from pipeline.core.fileio import display_path

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
            _read_mapping(reader, root, "", layer, places)
        return layer, places

    return read_config_file(path, read)


def _read_mapping(
    reader: Reader, node: yaml.Node, path: str, layer: Layer, places: dict[str, Place]
) -> None:
    entries = reader.mapping(node, path, CONFIG_TREE[path])
    for key, value in items(entries or {}):
        inner = f"{path}.{key}" if path else key
        if inner in CONFIG_KEYS:
            _read_value(reader, value, inner, CONFIG_KEYS[inner], layer, places)
        elif inner == f"defaults.{BACKGROUND_OFF}" and is_null(value):
            layer[BACKGROUND_OFF] = None
        else:
            _read_mapping(reader, value, inner, layer, places)


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
        raw = {scalar(k): _plain(v) for k, v in node.value}
    else:
        raw = scalar(node)
    try:
        layer[flat] = PARSERS[flat](raw)
    except ValueError as error:
        reader.error(node, key_path, str(error))
    places[flat] = reader.place(node, key_path)


def _plain(node: yaml.Node) -> object:
    """A node's plain value: a scalar, or a mapping or list of them (a lexicon entry's
    ``{phonemes: ...}``; anything else is reported by the setting's own check)."""
    from pipeline.script.nodes import scalar

    if isinstance(node, yaml.MappingNode):
        return {scalar(k): _plain(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item) for item in node.value]
    return scalar(node)


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
    for setting in SETTINGS:
        if setting.in_script:
            value = _attribute(script, setting.field)
            if value is not None:
                layer[setting.key] = value
    if script.background_off or script.background is not None:
        layer[BACKGROUND_OFF] = None
    return layer


def voice_layer(voice: Voice) -> Layer:
    """The voice fields a step (or a forced voice) sets, as a layer."""
    return {
        f"voice.{name}": value
        for name in keys_under("voice")
        if (value := getattr(voice, name)) is not None
    }


def _attribute(model: object, path: str) -> Any:
    """``model.a.b`` for ``a.b``; None when a part is missing."""
    for name in path.split("."):
        model = getattr(model, name, None)
        if model is None:
            return None
    return model


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
    groups: dict[str, dict[str, Any]] = {
        "": {}, "voice": {}, "background": {}, "retry": {}, "qa": {},
    }  # fmt: skip
    for setting in SETTINGS:
        if setting.key in merged:
            group, _, name = setting.field.rpartition(".")
            value = merged[setting.key]
            if setting.value is FOLDER:
                value = project.root / value
            elif setting.key == "voice.takes":  # a script's is absolute already
                value = str((project.root / value).resolve())
            groups[group][name] = tuple(value) if isinstance(value, list) else value
    top = groups[""]
    voice = groups["voice"]
    voice.setdefault("language", top["language"])
    return Settings(
        **top,
        root=project.root,
        config_path=project.config_path,
        voice=VoiceSettings(**voice),
        forced_voice=Voice(**_voice_fields(forced)),
        background=(
            BackgroundSettings(**groups["background"]) if "asset" in groups["background"] else None
        ),
        retry=EngineSettings(**groups["retry"]),
        qa=_qa_settings(project, groups["qa"]),
    )


def _qa_settings(project: Project, values: dict[str, Any]) -> QaSettings:
    """The ``qa`` settings; a ConfigError at the place of one of two that contradict each
    other (a warning threshold above the failure's)."""
    qa = QaSettings(**values)
    found = qa.contradiction()
    if found is None:
        return qa
    names, why = found
    keys = [f"qa.{name}" for name in names]
    key = next((key for key in keys if key in project.places), keys[0])
    where = project.places.get(key, project.config_path or CONFIG_NAME)
    raise ConfigError(f"{where}: error: {key}: {why}")


def _voice_fields(layer: Layer) -> dict[str, Any]:
    """The voice settings of a layer, by field name."""
    return {k.removeprefix("voice."): v for k, v in layer.items() if k.startswith("voice.")}


def voice_for(step_voice: Voice | None, settings: Settings) -> VoiceSettings:
    """The complete voice of a step: forced fields (flags, environment) > the step's own >
    the script's voice; the one precedence rule, :func:`merge`, decides.
    """
    script_voice = {f"voice.{name}": getattr(settings.voice, name) for name in keys_under("voice")}
    forced = voice_layer(settings.forced_voice)
    merged = merge(script_voice, voice_layer(step_voice or Voice()), forced)
    return VoiceSettings(**_voice_fields(merged))
