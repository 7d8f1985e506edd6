"""Outputs on disk: whether a track is up to date, orphans, and the catalog."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.errors import BuildError
from pipeline.plan.validate import Checked
from pipeline.project.layout import CATALOG_NAME

log = logging.getLogger(__name__)


UP_TO_DATE = "up to date"
MISSING = "missing"
STALE = "stale"
BUILT = "built"
FAILED = "failed"
NOT_STARTED = "not started"


@dataclass(frozen=True)
class TrackState:
    """Whether one track's outputs match its inputs."""

    track_id: str
    """The script's id."""
    source: Path
    """The script file."""
    state: str
    """``up to date``, ``missing`` (no sidecar) or ``stale``."""
    reason: str = ""
    """Why it is missing or stale, e.g. ``inputs changed`` or ``x.mp3: 10 bytes, expected 20``."""


@dataclass(frozen=True)
class Orphan:
    """Outputs whose script is gone (deleted, renamed, or its id changed)."""

    track_id: str
    """The id recorded in the sidecar."""
    sidecar: Path
    """The sidecar file in the output folder."""
    source: str
    """The script path the sidecar names (relative to the project root)."""


@dataclass(frozen=True)
class CatalogResult:
    """What writing ``catalog.json`` found."""

    path: Path
    """The catalog file."""
    tracks: int
    """Tracks listed."""
    skipped: tuple[str, ...] = ()
    """Sidecars left out because a file they list is missing or changed (one message each)."""


def track_state(out: Path, checked: Checked, key: str, *, verify: bool = False) -> TrackState:
    """Compare one track's sidecar with its build key and its files with the sidecar."""
    script = checked.script
    sidecar_path = out / f"{script.id}.json"
    if not sidecar_path.is_file():
        return TrackState(script.id, script.path, MISSING, "never built")
    data = read_sidecar(sidecar_path)
    if data is None:
        return TrackState(script.id, script.path, STALE, f"{sidecar_path.name}: unreadable sidecar")
    if data.get("build_key") != key:
        return TrackState(script.id, script.path, STALE, "inputs changed")
    problem = _edited_problem(sidecar_path.name, data, checked) or outputs_problem(
        out, data, verify=verify
    )
    if problem:
        return TrackState(script.id, script.path, STALE, problem)
    return TrackState(script.id, script.path, UP_TO_DATE)


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """A track sidecar's data, or None if the file is not a readable sidecar for its name."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("id") != path.stem
        or not isinstance(data.get("files"), list)
        or not isinstance(data.get("build_key"), str)
    ):
        return None
    return data


def _edited_problem(name: str, data: dict[str, Any], checked: Checked) -> str:
    """How a sidecar's fields differ from what its script says ('' if they agree)."""
    from pipeline.build.outputs import script_fields, source_path

    settings = checked.settings
    expected = script_fields(checked.script, settings.voice)
    expected["source.path"] = source_path(checked.script, settings.root)
    source = data.get("source")
    found = {**data, "source.path": source.get("path") if isinstance(source, dict) else None}
    for field_name, value in expected.items():
        if found.get(field_name) != value:
            return (
                f"{name}: {field_name} is {found.get(field_name)!r}, the script says {value!r} "
                "(edited by hand?)"
            )
    return ""


def outputs_problem(out: Path, data: dict[str, Any], *, verify: bool = False) -> str:
    """What is wrong with a sidecar and the files it lists ('' if all present with recorded
    sizes and the sidecar matches its own ``sidecar_sha256``, when it has one).

    Sizes are always compared; ``verify`` also hashes each file against its SHA-256.
    """
    from pipeline.build.outputs import SEAL, sha256_file, sidecar_digest

    if SEAL in data and data[SEAL] != sidecar_digest(data):
        return f"{data['id']}.json: its content does not match its {SEAL} (edited by hand?)"
    if not data["files"]:
        return "the sidecar lists no audio file"
    for entry in data["files"]:
        if not isinstance(entry, dict):
            return "malformed sidecar"
        path = _inside(out, entry.get("path"))
        if path is None:
            return f"sidecar path {entry.get('path')!r} is outside the output folder"
        try:
            size = path.stat().st_size
        except OSError:
            return f"{path.name}: missing"
        if size != entry.get("bytes"):
            return f"{path.name}: {size} bytes, sidecar says {entry.get('bytes')}"
        if verify and sha256_file(path) != entry.get("sha256"):
            return f"{path.name}: content differs from the sidecar's sha256"
    captions = data.get("captions")
    if captions is not None:
        captions_path = _inside(out, captions)
        if captions_path is None or not captions_path.is_file():
            return f"{captions}: missing"
    return ""


def sidecars_in(out: Path) -> dict[str, Path]:
    """Track sidecar files in the output folder by id (``catalog.json`` and hidden files aside)."""
    found: dict[str, Path] = {}
    try:
        entries = list(os.scandir(out))
    except FileNotFoundError:
        return found
    for entry in entries:
        name = entry.name
        if name.endswith(".json") and not name.startswith(".") and name != CATALOG_NAME:
            found[name[: -len(".json")]] = Path(entry.path)
    return dict(sorted(found.items()))


def find_orphans(
    out: Path, checked: Sequence[Checked], paths: Sequence[Path], root: Path
) -> list[Orphan]:
    """Sidecars whose id no script has, and whose recorded script is gone or was looked at.

    A sidecar whose script still exists outside the ``paths`` of this run (a build of one
    folder of the catalog) is not an orphan: that script was simply not part of this run.
    """
    ids = {item.script.id for item in checked}
    looked_at = [path.resolve() for path in paths]
    orphans: list[Orphan] = []
    for track_id, sidecar_path in sidecars_in(out).items():
        if track_id in ids:
            continue
        data = read_sidecar(sidecar_path)
        if data is None:
            continue
        recorded, script = recorded_script(data, root)
        if (
            script is None
            or not script.is_file()
            or any(script.is_relative_to(path) for path in looked_at)
        ):
            orphans.append(Orphan(track_id, sidecar_path, recorded))
    return orphans


def recorded_script(data: dict[str, Any] | None, root: Path) -> tuple[str, Path | None]:
    """The script path a sidecar records (relative to the project root) and where it is."""
    source = data.get("source") if data is not None else None
    recorded = str(source.get("path", "")) if isinstance(source, dict) else ""
    return recorded, (root / recorded).resolve() if recorded else None


def remove_outputs(out: Path, sidecar_path: Path) -> list[Path]:
    """Delete a track's files, captions and, last, its sidecar; returns what was removed."""
    data = read_sidecar(sidecar_path)
    targets: list[Path] = []
    if data is not None:
        for entry in data["files"]:
            path = _inside(out, entry.get("path")) if isinstance(entry, dict) else None
            if path is not None:
                targets.append(path)
        captions = _inside(out, data.get("captions"))
        if captions is not None:
            targets.append(captions)
    targets.append(sidecar_path)
    removed: list[Path] = []
    for path in targets:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise BuildError(f"{path}: error: cannot remove: {error.strerror or error}") from None
        removed.append(path)
    return removed


def write_catalog(out: Path, orphans: Sequence[Orphan] = ()) -> CatalogResult:
    """Write ``catalog.json`` from every intact sidecar in the output folder, sorted by id.

    A sidecar whose files are missing or differ in size from what it records is left out
    (and named in ``skipped``), so the catalog never points at a file that is not there;
    so are ``orphans``, whose script is gone: the app never lists a deleted session.
    """
    from pipeline.build.outputs import catalog, write_json_atomic

    tracks: list[dict[str, Any]] = []
    skipped: list[str] = []
    gone = {orphan.sidecar.name: orphan for orphan in orphans}
    for sidecar_path in sidecars_in(out).values():
        data = read_sidecar(sidecar_path)
        if data is None:
            continue
        if sidecar_path.name in gone:
            source = gone[sidecar_path.name].source or "?"
            skipped.append(f"{sidecar_path.name}: its script {source} is gone")
            log.info("catalog: %s left out: its script %s is gone", sidecar_path.name, source)
            continue
        problem = outputs_problem(out, data)
        if problem:
            skipped.append(f"{sidecar_path.name}: {problem}")
            log.warning("catalog: %s left out: %s", sidecar_path.name, problem)
            continue
        tracks.append(data)
    path = out / CATALOG_NAME
    write_json_atomic(path, catalog(tracks))
    return CatalogResult(path, len(tracks), tuple(skipped))


def _inside(out: Path, relative: object) -> Path | None:
    """``out / relative`` if ``relative`` is a plain relative path that stays inside ``out``."""
    if not isinstance(relative, str) or not relative:
        return None
    candidate = Path(relative)
    if candidate.is_absolute() or ".." in candidate.parts:
        return None
    return out / candidate
