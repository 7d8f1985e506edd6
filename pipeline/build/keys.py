"""Build keys: the content hash of everything that shapes a track."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.core.errors import BuildError
from pipeline.plan.validate import Checked
from pipeline.project.settings import RECORDED, VoiceSettings
from pipeline.script.model import SayStep, SoundStep

KEY_VERSION = "2"
"""Bump when the build key's recipe changes."""


def build_key(checked: Checked) -> str:
    """Content hash of everything that shapes a track (:func:`build_recipe`)."""
    recipe = build_recipe(checked)
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def build_recipe(checked: Checked) -> dict[str, Any]:
    """Everything that shapes a track; never timestamps or file existence.

    Covers the script and its includes (bytes), every asset it uses (bytes), the resolved
    settings, each voice's engine, engine version and output-shaping settings, the speech
    cache's key and conditioning versions, and the generator's version.
    """
    from pipeline.engines import get_engine
    from pipeline.project.assets import Asset, find_asset, project_catalog
    from pipeline.project.config import voice_for
    from pipeline.speech.key import CONDITIONING_VERSION, KEY_SCHEMA

    script, settings = checked.script, checked.settings
    catalog = project_catalog(settings.assets_dir)
    script_dir = script.path.resolve().parent
    used: list[tuple[str, Asset]] = []
    if settings.background is not None:
        bed = find_asset(settings.background.asset, catalog, script_dir, settings.root, "bed")
        used.append((settings.background.asset, bed))
    for step in script.steps:
        if isinstance(step, SoundStep):
            folder = step.place.path.resolve().parent
            used.append((step.asset, find_asset(step.asset, catalog, folder, settings.root)))
    assets = [  # the bytes and the catalog entry's level and loop flag, not where it lies
        (name, _file_sha256(asset.file), asset.kind, asset.loop, asset.level_db)
        for name, asset in used
    ]
    step_voices = [
        voice_for(step.voice, settings)
        for step in script.steps
        if isinstance(step, SayStep) and step.voice is not None
    ]
    ordered_voices = sorted({voice_for(None, settings), *step_voices}, key=repr)
    engines = []
    for voice in ordered_voices:
        engine = get_engine(voice.engine, settings.retry)
        entry: dict[str, Any] = {
            "voice": voice_recipe(voice),
            "engine_version": engine.version(),
            "engine_settings": engine.cache_settings(engine.own_voice(voice)),
        }
        if voice.engine == RECORDED and voice.takes is not None:
            entry["takes"] = _takes_recipe(Path(voice.takes))
            if voice.fallback is not None:  # the voice that fills in for missing takes
                stand_in = dataclasses.replace(voice, engine=voice.fallback)
                fallback = get_engine(voice.fallback, settings.retry)
                entry["fallback_version"] = fallback.version()
                entry["fallback_settings"] = fallback.cache_settings(fallback.own_voice(stand_in))
        engines.append(entry)
    recipe: dict[str, Any] = {
        "key_version": KEY_VERSION,
        "generator": __version__,
        "speech": f"{KEY_SCHEMA}/{CONDITIONING_VERSION}",
        "script": _file_sha256(script.path.resolve()),
        "includes": [_file_sha256(path) for path in script.includes],
        "assets": assets,
        "engines": engines,
        "step_voices": [ordered_voices.index(voice) for voice in step_voices],
        "settings": _shaping_settings(checked),
    }
    return recipe


def voice_recipe(voice: VoiceSettings) -> dict[str, Any]:
    """A voice as the recipe holds it: the takes folder is not there (its files' content is,
    beside it), and settings left unset are left out, so recipes without takes keep their keys.
    """
    recipe = voice.as_dict()
    recipe.pop("takes", None)
    return recipe


def _takes_recipe(folder: Path) -> list[tuple[str, str]]:
    """Every file of a takes folder by name, with its content's hash (none if no folder)."""
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    except OSError:
        return []
    return [(path.name, _file_sha256(path)) for path in files]


def _shaping_settings(checked: Checked) -> dict[str, Any]:
    """The resolved settings that change the audio or its sidecar (not where files go)."""
    settings = dataclasses.asdict(checked.settings)
    settings["voice"] = voice_recipe(checked.settings.voice)
    for where in ("root", "config_path", "scripts_dir", "output_dir", "cache_dir", "assets_dir"):
        settings.pop(where, None)
    settings["retry"] = None  # how we ask an online engine does not change what it says
    settings["forced_voice"] = None  # its effect is in the resolved voices of the recipe
    settings.pop("qa", None)  # what listen flags; it never changes the audio
    settings["source_path"] = str(
        checked.script.path.resolve().relative_to(checked.settings.root.resolve())
        if checked.script.path.resolve().is_relative_to(checked.settings.root.resolve())
        else checked.script.path.name
    )
    return settings


def _file_sha256(path: Path) -> str:
    """A file's SHA-256; a file that cannot be read is a clear error naming it."""
    try:
        stat = path.stat()
        return _sha256_of(path, stat.st_mtime_ns, stat.st_size)
    except OSError as error:
        raise BuildError(f"{path}: error: cannot read it: {error.strerror or error}") from None


@functools.lru_cache(maxsize=1024)
def _sha256_of(path: Path, mtime_ns: int, size: int) -> str:
    """A file's hash, memoized on its identity (assets are shared by many tracks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
