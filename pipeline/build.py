"""Batch builds: content-hash build keys, incremental and parallel rendering, catalog."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.script.model import SayStep, SoundStep
from pipeline.script.validate import Checked

KEY_VERSION = "1"
"""Bump when the build key's recipe changes."""


def build_key(checked: Checked) -> str:
    """Content hash of everything that shapes a track; never timestamps or file existence.

    Covers the script and its includes (bytes), every asset it uses (bytes), the resolved
    settings, each voice's engine, engine version and output-shaping settings, and the
    generator's version.
    """
    from pipeline.assets import find_asset, project_catalog
    from pipeline.engines import get_engine
    from pipeline.timeline import resolve_voice

    script, settings = checked.script, checked.settings
    catalog = project_catalog(settings.assets_dir)
    script_dir = script.path.resolve().parent
    assets: list[tuple[str, str]] = []
    if settings.background is not None:
        bed = find_asset(settings.background.asset, catalog, script_dir, settings.root, "bed")
        assets.append((settings.background.asset, _file_sha256(bed.file)))
    for step in script.steps:
        if isinstance(step, SoundStep):
            folder = step.place.path.resolve().parent
            sound = find_asset(step.asset, catalog, folder, settings.root)
            assets.append((step.asset, _file_sha256(sound.file)))
    voices = {resolve_voice(None, settings)}
    voices |= {
        resolve_voice(step.voice, settings)
        for step in script.steps
        if isinstance(step, SayStep) and step.voice is not None
    }
    engines = []
    for voice in sorted(voices, key=repr):
        engine = get_engine(voice.engine, settings.retry)
        engines.append(
            {
                "voice": dataclasses.asdict(voice),
                "engine_version": engine.version(),
                "engine_settings": engine.cache_settings(voice),
            }
        )
    recipe: dict[str, Any] = {
        "key_version": KEY_VERSION,
        "generator": __version__,
        "script": _file_sha256(script.path.resolve()),
        "includes": [_file_sha256(path) for path in script.includes],
        "assets": assets,
        "engines": engines,
        "settings": _shaping_settings(checked),
    }
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _shaping_settings(checked: Checked) -> dict[str, Any]:
    """The resolved settings that change the audio or its sidecar (not where files go)."""
    settings = dataclasses.asdict(checked.settings)
    for where in ("root", "config_path", "scripts_dir", "output_dir", "cache_dir", "assets_dir"):
        settings.pop(where, None)
    settings["retry"] = None  # how we ask an online engine does not change what it says
    settings["source_path"] = str(
        checked.script.path.resolve().relative_to(checked.settings.root.resolve())
        if checked.script.path.resolve().is_relative_to(checked.settings.root.resolve())
        else checked.script.path.name
    )
    return settings


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_of(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1024)
def _sha256_of(path: Path, mtime_ns: int, size: int) -> str:
    """A file's hash, memoized on its identity (assets are shared by many tracks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
