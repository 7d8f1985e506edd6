"""The asset catalog: background beds and one-shot sounds, built-in and per project."""

from __future__ import annotations

import difflib
import functools
import importlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, TypeVar

import yaml

from pipeline.core.errors import AudioError, ConfigError, Place, Problem
from pipeline.core.fileio import display_path

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import numpy.typing as npt

    from pipeline.script.nodes import Reader

T = TypeVar("T")

CATALOG_FILE = "catalog.yaml"
KINDS = ("bed", "one-shot")
AUDIO_SUFFIXES = (".ogg", ".opus", ".oga", ".flac", ".wav", ".mp3", ".m4a", ".aac", ".aiff", ".aif")
"""File endings that make a bare ``name.ext`` a path rather than a catalog name."""
MAX_ASSET_BYTES = 200_000_000
"""Larger asset files are refused before decoding (a hostile or mistaken file)."""
MAX_ASSET_S = 30 * 60.0
"""Longer assets are refused: a bed loops, a one-shot rings; neither needs more."""


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
    place: Place | None = field(default=None, compare=False)
    """Where a catalog defines its file (None for a path named by a script)."""

    @property
    def where(self) -> str:
        """The file and the asset, for messages: ``path: asset 'x' (catalog entry f:l:c)``."""
        entry = f" (catalog entry {self.place})" if self.place is not None else ""
        return f"{display_path(self.file)}: asset '{self.name}'{entry}"


@functools.cache
def builtin_assets_dir() -> Path:
    """The catalog shipped with the package (the repository's ``audio_assets/``).

    Found through its package's ``__file__``: ``importlib.resources`` would take 14 ms to
    import in every command.
    """
    package = importlib.import_module("pipeline.audio_assets")
    return Path(str(package.__file__)).resolve().parent


def load_catalog(folder: Path) -> dict[str, Asset]:
    """Entries of ``folder/catalog.yaml``; an absent folder or file is an empty catalog."""
    catalog_path = folder / CATALOG_FILE
    try:
        stat = catalog_path.stat()
    except OSError:
        return {}
    return dict(_read_catalog(catalog_path, stat.st_mtime_ns, stat.st_size))


CATALOG_ENTRY_KEYS = ("kind", "file", "loop", "licence", "description", "level_db")
LEVEL_DB_RANGE = (-60.0, 24.0)


@functools.lru_cache(maxsize=16)
def _read_catalog(catalog_path: Path, mtime_ns: int, size: int) -> dict[str, Asset]:
    """The parsed catalog, memoized on the file's identity (a batch reads it once); every
    problem is reported at once, each at its line and column.
    """
    from pipeline.script.nodes import is_null, read_config_file

    def read(reader: Reader, root: yaml.Node | None) -> dict[str, Asset]:
        catalog: dict[str, Asset] = {}
        if root is None or is_null(root):
            reader.problems.append(
                Problem(Place(reader.path, 1, 1), "expected a mapping 'assets: {name: entry}'")
            )
        else:
            top = reader.mapping(root, "", ("assets",)) or {}
            if "assets" not in top and not reader.problems:
                reader.error(root, "", "expected a mapping 'assets: {name: entry}'")
            elif "assets" in top:
                _read_entries(reader, top["assets"][1], catalog_path.parent, catalog)
        return catalog

    return read_config_file(catalog_path, read)


def _read_entries(reader: Reader, node: yaml.Node, folder: Path, catalog: dict[str, Asset]) -> None:
    """Every ``name: entry`` of the ``assets`` mapping into ``catalog``."""
    from pipeline.script.nodes import scalar

    if not isinstance(node, yaml.MappingNode):
        reader.error(node, "assets", "expected a mapping of asset names to entries")
        return
    seen: set[str] = set()
    for name_node, entry_node in node.value:
        name = str(scalar(name_node)) if isinstance(name_node, yaml.ScalarNode) else ""
        key_path = f"assets.{name}"
        if not name.strip():
            reader.error(name_node, "assets", "an asset needs a name")
            continue
        if name in seen:
            reader.error(name_node, key_path, "duplicate asset name (the first one is kept)")
            continue
        seen.add(name)
        asset = _read_entry(reader, name, entry_node, key_path, folder)
        if asset is not None:
            catalog[name] = asset


def _read_entry(
    reader: Reader, name: str, node: yaml.Node, key_path: str, folder: Path
) -> Asset | None:
    """One catalog entry, or None (reported) when it is incomplete or wrong."""
    entries = reader.mapping(node, key_path, CATALOG_ENTRY_KEYS)
    if entries is None:
        return None
    missing = [key for key in ("kind", "file") if key not in entries]
    if missing:
        reader.error(node, key_path, f"needs {' and '.join(repr(key) for key in missing)}")
        return None

    def value(key: str, parse: Callable[[object], T], default: T) -> T | None:
        if key not in entries:
            return default
        return reader.convert(entries[key][1], f"{key_path}.{key}", parse)

    kind = reader.text(entries["kind"][1], f"{key_path}.kind")
    if kind is not None and kind not in KINDS:
        message = f"unknown kind {kind!r}; expected one of: {', '.join(KINDS)}"
        reader.error(entries["kind"][1], f"{key_path}.kind", message)
        kind = None
    file = reader.text(entries["file"][1], f"{key_path}.file")
    path = None
    if file is not None:
        try:
            path = _contained(
                file,
                folder,
                folder,
                relative_to="a path relative to the catalog",
                inside="the catalog's folder",
            )
        except AssetLookupError as error:
            reader.error(entries["file"][1], f"{key_path}.file", str(error))
    loop = value("loop", _boolean, kind == "bed")
    licence = value("licence", str, "")
    description = value("description", str, "")
    level = value("level_db", _number, 0.0)
    if level is not None and "level_db" in entries:
        level = reader.in_range(
            entries["level_db"][1], f"{key_path}.level_db", level, *LEVEL_DB_RANGE, "level_db"
        )
    if path is None or None in (kind, loop, licence, description, level):
        return None
    return Asset(
        name=name,
        kind=str(kind),
        file=path,
        loop=bool(loop),
        licence=str(licence),
        description=str(description),
        level_db=float(level or 0.0),
        place=reader.place(entries["file"][1], ""),
    )


def _boolean(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise ValueError("expected true or false")
    return raw


def _number(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError("expected a number (decibels)")
    return float(raw)


def _contained(text: str, base: Path, root: Path, *, relative_to: str, inside: str) -> Path:
    """``base / text`` with symlinks resolved; AssetLookupError if ``text`` is absolute, starts
    with ``~`` or leads outside ``root``. The messages ask for ``relative_to``, name ``inside``.
    """
    if (
        PurePosixPath(text).is_absolute()
        or PureWindowsPath(text).is_absolute()
        or PureWindowsPath(text).drive
    ):
        raise AssetLookupError(f"asset path '{text}' is absolute; use {relative_to}")
    if text.startswith("~"):
        raise AssetLookupError(f"asset path '{text}': '~' is not expanded; use a relative path")
    resolved = (base / text).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise AssetLookupError(f"asset path '{text}' leads outside {inside}")
    return resolved


def project_catalog(project_assets_dir: Path | None) -> dict[str, Asset]:
    """Built-in catalog, extended and overridden by the project's own assets folder."""
    catalog = load_catalog(builtin_assets_dir())
    if project_assets_dir is not None and project_assets_dir.resolve() != builtin_assets_dir():
        catalog.update(load_catalog(project_assets_dir))
    return catalog


class AssetLookupError(ConfigError):
    """An asset name or path that does not resolve; ``suggestions`` holds close catalog names."""

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []


def find_asset(
    name_or_path: str,
    catalog: dict[str, Asset],
    script_dir: Path,
    project_root: Path,
    kind: str = "one-shot",
) -> Asset:
    """The catalog entry called ``name_or_path``, else the file it names relative to the script.

    A path must be relative and stay inside the project root (symlinks resolved); ``kind``
    (``bed`` loops) applies to path assets only.
    """
    text = name_or_path.strip()
    if text in catalog:
        return catalog[text]
    if not text:
        raise AssetLookupError("empty asset name")
    if not _looks_like_path(text):
        close = difflib.get_close_matches(text, list(catalog), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(sorted(catalog)) or "none"
        raise AssetLookupError(f"unknown asset '{text}'{hint} (catalog: {known})", close)
    resolved = _contained(
        text,
        script_dir,
        project_root,
        relative_to="a catalog name or a path relative to the script",
        inside="the project folder",
    )
    if not resolved.exists():
        raise AssetLookupError(
            f"asset file '{text}' not found (looked for {display_path(resolved)})"
        )
    if not resolved.is_file():
        raise AssetLookupError(f"asset path '{text}' is not a file ({display_path(resolved)})")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return Asset(
        name=text,
        kind=kind,
        file=resolved,
        loop=kind == "bed",
        licence="",
        description=f"file {text}",
        level_db=0.0,
    )


def _looks_like_path(text: str) -> bool:
    return (
        "/" in text
        or "\\" in text
        or text.startswith((".", "~"))
        or text.lower().endswith(AUDIO_SUFFIXES)
    )


def _check_file(asset: Asset) -> os.stat_result:
    """Stat the asset file, turning every way it can be unusable into a clear AudioError."""
    where = asset.where
    try:
        stat = asset.file.stat()
    except FileNotFoundError:
        raise AudioError(
            f"{where}: file not found (probable cause: it was moved, deleted or misspelt "
            "in the catalog)"
        ) from None
    except OSError as error:
        raise AudioError(f"{where}: cannot read it ({error.strerror})") from None
    if asset.file.is_dir():
        raise AudioError(f"{where}: cannot read it: Is a directory (a file is expected)")
    if not asset.file.is_file():
        raise AudioError(f"{where}: not a regular file")
    if not os.access(asset.file, os.R_OK):
        raise AudioError(f"{where}: cannot read it (probable cause: file permissions)")
    if stat.st_size == 0:
        raise AudioError(f"{where}: the file is empty (probable cause: an interrupted copy)")
    if stat.st_size > MAX_ASSET_BYTES:
        raise AudioError(
            f"{where}: {stat.st_size} bytes is too large for an asset "
            f"(limit {MAX_ASSET_BYTES // 1_000_000} MB)"
        )
    return stat


def asset_length_s(asset: Asset) -> float:
    """Length of the asset in seconds, from the file's header when it tells, else by decoding."""
    stat = _check_file(asset)
    length = _header_length_s(str(asset.file), stat.st_mtime_ns, stat.st_size)
    if length is None:
        samples = load_asset_audio(asset, 8000, 1)
        length = samples.shape[0] / 8000.0
    return length


def asset_file_problem(asset: Asset) -> str | None:
    """Why the asset's file cannot be used (missing, unreadable, empty, too large or long,
    not decodable), or None; what ``validate`` checks so that a render cannot meet it.
    """
    try:
        length = asset_length_s(asset)
        stat = asset.file.stat()
        if not asset.file.is_relative_to(builtin_assets_dir()):  # shipped files are tested
            _decodes(str(asset.file), asset.where, stat.st_mtime_ns, stat.st_size)
    except (AudioError, OSError) as error:
        return str(error)
    if length > MAX_ASSET_S:
        return f"{asset.where}: {length:.0f} s is too long for an asset (limit {MAX_ASSET_S:.0f} s)"
    return None


DECODE_PROBE_S = 1.0
"""How much of an asset ``validate`` decodes: enough to meet a codec ffmpeg cannot read."""


@lru_cache(maxsize=64)
def _decodes(path: str, where: str, mtime_ns: int, size: int) -> None:
    """Decode the start of the file, memoized per file version; AudioError if it yields no
    audio (a header can be read while its codec cannot).
    """
    from pipeline.core.ffmpeg import run_ffmpeg

    args = ["-t", str(DECODE_PROBE_S), "-i", path, "-map", "0:a:0"]
    args += ["-f", "u8", "-ac", "1", "-ar", "8000", "pipe:1"]
    try:
        decoded = run_ffmpeg(args)
    except AudioError as error:
        detail = str(error)
    else:
        if decoded:
            return
        detail = "no audio in it"
    raise AudioError(
        f"{where}: cannot decode it (probable cause: the file is corrupt, truncated or "
        f"not audio): {detail}"
    )


@dataclass(frozen=True)
class AssetListing:
    """One row of ``meditate assets``."""

    asset: Asset
    """The catalog entry."""
    length_s: float | None
    """Its length, or None when the file cannot be read."""
    problem: str = ""
    """Why the file cannot be read."""


def list_assets(project_assets_dir: Path | None) -> list[AssetListing]:
    """Every asset of the project's catalog with its length; a file that ``validate`` would
    refuse is reported the same way.
    """
    rows: list[AssetListing] = []
    for _, asset in sorted(project_catalog(project_assets_dir).items()):
        problem = asset_file_problem(asset)
        if problem is not None:
            rows.append(AssetListing(asset, None, problem))
        else:
            rows.append(AssetListing(asset, asset_length_s(asset)))
    return rows


@lru_cache(maxsize=64)
def _header_length_s(path: str, mtime_ns: int, size: int) -> float | None:
    """Length from the container header (mutagen); None when unknown or unreadable."""
    try:
        import mutagen

        info = mutagen.File(path)
    except Exception:  # mutagen raises many types on damaged files; decoding reports those
        return None
    length = getattr(getattr(info, "info", None), "length", None)
    return float(length) if isinstance(length, (int, float)) and length > 0 else None


def load_asset_audio(asset: Asset, sample_rate: int, channels: int) -> npt.NDArray[np.float32]:
    """Decoded float32 samples (frames, channels) at the given rate, converted as needed.

    Results are memoized per file version and format; the returned array is read-only.
    """
    stat = _check_file(asset)
    length = _header_length_s(str(asset.file), stat.st_mtime_ns, stat.st_size)
    if length is not None and length > MAX_ASSET_S:
        raise AudioError(
            f"{asset.where}: {length:.0f} s is too long for an asset "
            f"(limit {MAX_ASSET_S:.0f} s)"
        )
    return _decode_cached(
        str(asset.file), asset.where, stat.st_mtime_ns, stat.st_size, sample_rate, channels
    )


@lru_cache(maxsize=16)
def _decode_cached(
    path: str, where: str, mtime_ns: int, size: int, sample_rate: int, channels: int
) -> npt.NDArray[np.float32]:
    from pipeline.core.ffmpeg import decode

    try:
        samples = decode(Path(path), sample_rate, channels)
    except AudioError as error:
        detail = str(error).removeprefix(f"{path}: ").removeprefix("cannot decode: ")
        raise AudioError(
            f"{where}: cannot decode it (probable cause: the file is corrupt, truncated or "
            f"not audio): {detail}"
        ) from None
    if samples.shape[0] > MAX_ASSET_S * sample_rate:
        raise AudioError(f"{where}: too long for an asset (limit {MAX_ASSET_S:.0f} s)")
    samples.setflags(write=False)
    return samples
