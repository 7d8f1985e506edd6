"""The asset catalog: background beds and one-shot sounds, built-in and per project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.errors import ConfigError

CATALOG_FILE = "catalog.yaml"
KINDS = ("bed", "one-shot")


@dataclass(frozen=True)
class Asset:
    """One entry of the catalog."""

    name: str
    """Catalog name used in scripts (``rain``, ``bowl``)."""
    kind: str
    """``bed`` (looped under the track) or ``one-shot``."""
    file: Path
    """The audio file, absolute."""
    loop: bool
    """Whether the file loops seamlessly (beds)."""
    licence: str
    """Licence of the recording, e.g. ``CC0-1.0``."""
    description: str
    """What it sounds like."""
    level_db: float
    """Reference gain applied before the script's own gain."""


def builtin_assets_dir() -> Path:
    """The catalog shipped with the package (the repository's ``audio_assets/``)."""
    from importlib.resources import files

    return Path(str(files("pipeline.audio_assets")))


def load_catalog(folder: Path) -> dict[str, Asset]:
    """Entries of ``folder/catalog.yaml``; an absent folder or file is an empty catalog."""
    catalog_path = folder / CATALOG_FILE
    if not catalog_path.is_file():
        return {}
    try:
        data = yaml.safe_load(catalog_path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{catalog_path}: error: cannot read the asset catalog: {error}") from None
    entries = data.get("assets") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f"{catalog_path}: error: expected a mapping 'assets: {{name: entry}}'")
    catalog: dict[str, Asset] = {}
    for name, entry in entries.items():
        if not isinstance(entry, dict) or entry.get("kind") not in KINDS or "file" not in entry:
            raise ConfigError(
                f"{catalog_path}: error: assets.{name}: needs 'kind' (bed or one-shot) and 'file'"
            )
        catalog[str(name)] = Asset(
            name=str(name),
            kind=str(entry["kind"]),
            file=(folder / str(entry["file"])).resolve(),
            loop=bool(entry.get("loop", entry["kind"] == "bed")),
            licence=str(entry.get("licence", "")),
            description=str(entry.get("description", "")),
            level_db=float(entry.get("level_db", 0.0)),
        )
    return catalog


def project_catalog(project_assets_dir: Path | None) -> dict[str, Asset]:
    """Built-in catalog, extended and overridden by the project's own assets folder."""
    catalog = load_catalog(builtin_assets_dir())
    if project_assets_dir is not None and project_assets_dir.resolve() != builtin_assets_dir():
        catalog.update(load_catalog(project_assets_dir))
    return catalog
