"""Batch builds: content-hash build keys, incremental and parallel rendering, catalog.

A track is up to date when its sidecar ``<out>/<id>.json`` records the track's current build
key and every file the sidecar lists exists with the recorded size (``verify`` also compares
SHA-256). Timestamps and mere existence are never trusted. The sidecar is written last, so a
track counts as built only once all its files are in place; a killed build is resumed by
running it again. One build at a time per output folder (``<out>/.meditate-build.lock``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.config import Project
from pipeline.errors import BuildError, PipelineError, UsageError
from pipeline.fileio import display_path
from pipeline.outputs import CATALOG_NAME, LOCK_NAME
from pipeline.processes import usable_cpus, worker_context
from pipeline.script.model import SayStep, SoundStep
from pipeline.script.validate import Checked

log = logging.getLogger(__name__)

UP_TO_DATE = "up to date"
MISSING = "missing"
STALE = "stale"
BUILT = "built"
FAILED = "failed"
NOT_STARTED = "not started"
SENTENCE_JOBS = 2
"""Sentences synthesized at once inside one track's render (online engines overlap requests)."""
STALE_WRITE_S = 60.0
"""Hidden ``.*.tmp`` files older than this in the output folder are left by killed writers
(a sidecar or captions write takes milliseconds; a concurrent ``render`` may be writing one)."""
_STAGE_STEP = 0.02
"""Worker progress is forwarded when a track advances by this fraction (or changes stage)."""

KEY_VERSION = "2"
"""Bump when the build key's recipe changes."""


def build_key(checked: Checked) -> str:
    """Content hash of everything that shapes a track; never timestamps or file existence.

    Covers the script and its includes (bytes), every asset it uses (bytes), the resolved
    settings, each voice's engine, engine version and output-shaping settings, the speech
    cache's key and conditioning versions, and the generator's version.
    """
    from pipeline.assets import Asset, find_asset, project_catalog
    from pipeline.cache import KEY_SCHEMA
    from pipeline.condition import CONDITIONING_VERSION
    from pipeline.engines import get_engine
    from pipeline.timeline import resolve_voice

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
        resolve_voice(step.voice, settings)
        for step in script.steps
        if isinstance(step, SayStep) and step.voice is not None
    ]
    ordered_voices = sorted({resolve_voice(None, settings), *step_voices}, key=repr)
    engines = []
    for voice in ordered_voices:
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
        "speech": f"{KEY_SCHEMA}/{CONDITIONING_VERSION}",
        "script": _file_sha256(script.path.resolve()),
        "includes": [_file_sha256(path) for path in script.includes],
        "assets": assets,
        "engines": engines,
        "step_voices": [ordered_voices.index(voice) for voice in step_voices],
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
    settings["forced_voice"] = None  # its effect is in the resolved voices of the recipe
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


# --- reports ----------------------------------------------------------------------------------


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
class TrackOutcome:
    """What a build did with one track."""

    track_id: str
    """The script's id."""
    source: Path
    """The script file."""
    status: str
    """``built``, ``up to date``, ``failed`` or ``not started`` (a failure stopped the build)."""
    reason: str = ""
    """Why it was rendered: ``missing``, ``forced``, or why it was stale."""
    error: str = ""
    """The failure's message."""
    seconds: float = 0.0
    """Wall time of its render."""
    synthesized: int = 0
    """Sentences synthesized for it."""
    engine_calls: int = 0
    """Calls to an engine's ``synthesize`` for it."""
    retries: int = 0
    """Times it was rendered again because the process rendering it died (killed, out of memory)."""


@dataclass
class BuildReport:
    """Everything a build did; ``ok`` is False if any track failed or was not started."""

    output_dir: Path
    """The output folder."""
    tracks: list[TrackOutcome] = field(default_factory=list)
    """One entry per selected script, in id order."""
    orphans: list[Orphan] = field(default_factory=list)
    """Orphaned outputs found (removed when ``pruned`` lists them)."""
    pruned: list[Path] = field(default_factory=list)
    """Files removed by ``prune``."""
    catalog_path: Path | None = None
    """``catalog.json``, written at the end of every build."""
    catalog_tracks: int = 0
    """Tracks listed in the catalog."""
    shard: tuple[int, int] | None = None
    """``(K, N)`` when only shard K of N was built."""
    jobs: int = 1
    """Worker processes used."""
    elapsed_s: float = 0.0
    """Wall time of the whole build."""

    def with_status(self, status: str) -> list[TrackOutcome]:
        """The tracks with this status."""
        return [track for track in self.tracks if track.status == status]

    @property
    def built(self) -> int:
        """Tracks rendered by this build."""
        return len(self.with_status(BUILT))

    @property
    def up_to_date(self) -> int:
        """Tracks left as they were."""
        return len(self.with_status(UP_TO_DATE))

    @property
    def failed(self) -> int:
        """Tracks whose render failed."""
        return len(self.with_status(FAILED))

    @property
    def not_started(self) -> int:
        """Tracks never started because an earlier failure stopped the build."""
        return len(self.with_status(NOT_STARTED))

    @property
    def retried(self) -> int:
        """Tracks rendered again because the process rendering them died."""
        return sum(1 for track in self.tracks if track.retries)

    @property
    def synthesized(self) -> int:
        """Sentences synthesized, over every track."""
        return sum(track.synthesized for track in self.tracks)

    @property
    def engine_calls(self) -> int:
        """Engine ``synthesize`` calls, over every track."""
        return sum(track.engine_calls for track in self.tracks)

    @property
    def ok(self) -> bool:
        """Whether every selected track is now up to date."""
        return not (self.failed or self.not_started)


@dataclass
class CheckReport:
    """What ``check`` found; ``ok`` is False if anything is missing, stale or orphaned."""

    output_dir: Path
    """The output folder."""
    tracks: list[TrackState] = field(default_factory=list)
    """One entry per script, in id order."""
    orphans: list[Orphan] = field(default_factory=list)
    """Outputs whose script is gone."""

    @property
    def missing(self) -> list[TrackState]:
        """Tracks never built."""
        return [track for track in self.tracks if track.state == MISSING]

    @property
    def stale(self) -> list[TrackState]:
        """Tracks whose outputs do not match their inputs."""
        return [track for track in self.tracks if track.state == STALE]

    @property
    def ok(self) -> bool:
        """Whether every output is present and current, and nothing is orphaned."""
        return not (self.missing or self.stale or self.orphans)


@dataclass(frozen=True)
class CatalogResult:
    """What writing ``catalog.json`` found."""

    path: Path
    """The catalog file."""
    tracks: int
    """Tracks listed."""
    skipped: tuple[str, ...] = ()
    """Sidecars left out because a file they list is missing or changed (one message each)."""


@dataclass(frozen=True)
class BuildEvent:
    """Progress of a build, for the CLI to draw.

    ``kind``: ``plan`` (what will be rendered is known), ``stage`` (a track's render moved on),
    ``retry`` (the process rendering a track died; ``message`` says how; it starts again)
    or ``finished`` (a track is done, ``outcome`` tells how).
    """

    kind: str
    """``plan``, ``stage``, ``retry`` or ``finished``."""
    done: int
    """Tracks finished so far (rendered or failed)."""
    total: int
    """Tracks to render."""
    track_id: str = ""
    """The track concerned (``stage``, ``finished``)."""
    stage: str = ""
    """Render stage: speech, measure, encode, finish, done."""
    fraction: float = 0.0
    """How far this track's render is, 0..1."""
    outcome: TrackOutcome | None = None
    """How the track finished (``finished``)."""
    message: str = ""
    """Why the track starts again (``retry``)."""


BuildProgress = Callable[[BuildEvent], None]
"""Receives every :class:`BuildEvent`; called from the building thread only."""


# --- build and check ---------------------------------------------------------------------------


def build(
    paths: Iterable[Path],
    project: Project,
    flags: dict[str, object] | None = None,
    *,
    output_dir: Path | None = None,
    jobs: int | None = None,
    force: bool = False,
    keep_going: bool = False,
    shard: tuple[int, int] | None = None,
    prune: bool = False,
    verify: bool = False,
    wait_s: float = 0.0,
    progress: BuildProgress | None = None,
) -> BuildReport:
    """Validate every script, then render what is missing or stale, in parallel; write the catalog.

    Nothing is rendered if any script is invalid (ScriptError lists every problem). Without
    ``keep_going`` the first failure stops new renders (running ones finish); a track whose
    worker process dies (killed, out of memory) is tried once more in a new one first.
    ``shard=(K, N)`` renders a deterministic, length-balanced 1/N of the scripts. ``prune``
    deletes orphaned outputs. ``verify`` compares SHA-256 of existing outputs, not only sizes.
    Another build on the same folder is waited for up to ``wait_s`` seconds, then BuildError.
    """
    from pipeline.planning import check_scripts

    started = time.monotonic()
    emit = progress or (lambda event: None)
    paths = list(paths)
    checked = check_scripts(paths, project, flags)
    out = output_dir if output_dir is not None else _default_output_dir(project, flags)
    selected = checked if shard is None else shard_scripts(checked, *shard)
    report = BuildReport(output_dir=out, shard=shard)
    with build_lock(out, wait_s):
        _remove_leftovers(out)
        plan = _plan_build(selected, out, jobs=jobs, force=force, verify=verify)
        report.jobs = plan.workers
        emit(BuildEvent("plan", 0, len(plan.todo)))
        rendered = _render_all(
            plan.todo, plan.keys, out, plan.workers, keep_going, emit, plan.reasons
        )
        outcomes = dict(plan.up_to_date)
        outcomes.update({outcome.track_id: outcome for outcome in rendered})
        report.tracks = [outcomes[track_id] for track_id in sorted(outcomes)]
        _tidy_and_catalog(report, out, checked, paths, project.root, prune=prune)
    report.elapsed_s = time.monotonic() - started
    log.info(
        "build: %d built, %d up to date, %d failed in %.1f s",
        report.built,
        report.up_to_date,
        report.failed,
        report.elapsed_s,
    )
    return report


@dataclass(frozen=True)
class _BuildPlan:
    """What a build renders, why, and on how many processes."""

    keys: dict[str, str]
    """Build key by track id, of every selected script."""
    todo: list[Checked]
    """The scripts to render, longest first (ties by id)."""
    reasons: dict[str, str]
    """Why each of ``todo`` is rendered, by track id."""
    up_to_date: dict[str, TrackOutcome]
    """The outcomes of the scripts not rendered, by track id."""
    workers: int
    """Processes to render on."""


def _plan_build(
    selected: list[Checked], out: Path, *, jobs: int | None, force: bool, verify: bool
) -> _BuildPlan:
    """Key every selected script, compare it with its outputs, and order what is to render."""
    keys = {item.script.id: build_key(item) for item in selected}
    states = {
        item.script.id: track_state(out, item, keys[item.script.id], verify=verify)
        for item in selected
    }
    todo = [item for item in selected if force or states[item.script.id].state != UP_TO_DATE]
    lengths = _estimated_lengths(todo)
    todo.sort(key=lambda item: (-lengths[item.script.id], item.script.id))
    rendering = {item.script.id for item in todo}
    up_to_date = {
        item.script.id: TrackOutcome(item.script.id, item.script.path, UP_TO_DATE)
        for item in selected
        if item.script.id not in rendering
    }
    reasons = {
        item.script.id: "forced"
        if states[item.script.id].state == UP_TO_DATE
        else (states[item.script.id].reason or states[item.script.id].state)
        for item in todo
    }
    workers = max(1, min(jobs or usable_cpus(), len(todo)))
    return _BuildPlan(keys, todo, reasons, up_to_date, workers)


def _tidy_and_catalog(
    report: BuildReport,
    out: Path,
    checked: list[Checked],
    paths: list[Path],
    root: Path,
    *,
    prune: bool,
) -> None:
    """Find (and with ``prune`` delete) orphaned outputs, then write the catalog."""
    report.orphans = find_orphans(out, checked, paths, root)
    if prune:
        for orphan in report.orphans:
            report.pruned += remove_outputs(out, orphan.sidecar)
    result = write_catalog(out, report.orphans)
    report.catalog_path, report.catalog_tracks = result.path, result.tracks


def check(
    paths: Iterable[Path],
    project: Project,
    flags: dict[str, object] | None = None,
    *,
    output_dir: Path | None = None,
    verify: bool = False,
) -> CheckReport:
    """Validate and compare every script's build key with its sidecar; synthesize and write nothing.

    Lists missing, stale and orphaned outputs (see :func:`find_orphans`).
    """
    from pipeline.planning import check_scripts

    paths = list(paths)
    checked = check_scripts(paths, project, flags)
    out = output_dir if output_dir is not None else _default_output_dir(project, flags)
    tracks = [track_state(out, item, build_key(item), verify=verify) for item in checked]
    tracks.sort(key=lambda track: track.track_id)
    return CheckReport(out, tracks, find_orphans(out, checked, paths, project.root))


def rebuild_catalog(
    project: Project,
    flags: dict[str, object] | None = None,
    *,
    output_dir: Path | None = None,
    wait_s: float = 0.0,
) -> CatalogResult:
    """Write ``catalog.json`` from the sidecars in an output folder (e.g. shards copied in).

    Sidecars whose recorded script is gone from the project are left out (and named).
    """
    out = output_dir if output_dir is not None else _default_output_dir(project, flags)
    if not out.is_dir():
        raise BuildError(f"{out}: error: no such output folder")
    with build_lock(out, wait_s):
        orphans = []
        for track_id, sidecar_path in sidecars_in(out).items():
            data = read_sidecar(sidecar_path)
            recorded, script = _recorded_script(data, project.root)
            if data is not None and (script is None or not script.is_file()):
                orphans.append(Orphan(track_id, sidecar_path, recorded))
        return write_catalog(out, orphans)


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) as ``(K, N)``; UsageError otherwise."""
    left, slash, right = text.partition("/")
    try:
        index, count = int(left), int(right)
    except ValueError:
        index = count = 0
    if not slash or count < 1 or not 1 <= index <= count:
        raise UsageError(f"error: --shard: expected K/N with 1 <= K <= N, like 2/4, got {text!r}")
    return index, count


def shard_scripts(checked: Sequence[Checked], index: int, count: int) -> list[Checked]:
    """Shard ``index`` (1-based) of ``count``: deterministic and balanced by estimated length.

    Scripts are taken longest first (ties by id) and each goes to the shard with the least
    estimated audio so far (ties to the lowest shard). Lengths are estimated from the text,
    never from a machine's speech cache, so every machine computes the same partition.
    """
    if not 1 <= index <= count:
        raise UsageError(f"error: --shard: {index}/{count} is not a shard")
    lengths = _estimated_lengths(checked)
    ordered = sorted(checked, key=lambda item: (-lengths[item.script.id], item.script.id))
    loads = [0.0] * count
    mine: list[Checked] = []
    for item in ordered:
        target = min(range(count), key=lambda shard: (loads[shard], shard))
        loads[target] += max(lengths[item.script.id], 1.0)
        if target == index - 1:
            mine.append(item)
    return sorted(mine, key=lambda item: item.script.id)


# --- outputs on disk -------------------------------------------------------------------------


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
    from pipeline.outputs import script_fields, source_path

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
    from pipeline.outputs import SEAL, sha256_file, sidecar_digest

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
        recorded, script = _recorded_script(data, root)
        if (
            script is None
            or not script.is_file()
            or any(script.is_relative_to(path) for path in looked_at)
        ):
            orphans.append(Orphan(track_id, sidecar_path, recorded))
    return orphans


def _recorded_script(data: dict[str, Any] | None, root: Path) -> tuple[str, Path | None]:
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
    from pipeline.outputs import catalog, write_json_atomic

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


# --- lock and leftovers --------------------------------------------------------------------------


_held_lock_fd: int | None = None


@contextlib.contextmanager
def build_lock(out: Path, wait_s: float = 0.0) -> Iterator[None]:
    """Hold ``<out>/.meditate-build.lock`` exclusively; a second build waits ``wait_s``, then stops.

    The lock is an ``flock`` on an open file, so the kernel releases it when its holder exits,
    even by SIGKILL: a stale lock file never blocks anyone. The holder removes the file when it
    is done (interrupted too); a waiter that then holds the lock of a removed file tries again.
    """
    global _held_lock_fd
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    path = out / LOCK_NAME
    deadline = time.monotonic() + wait_s
    waiting = False
    while True:
        try:
            out.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise BuildError(f"{out}: error: cannot lock the output folder: {error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            if time.monotonic() >= deadline:
                shown = display_path(out)
                raise BuildError(
                    f"{shown}: error: another build is running on {shown} (pid {holder}); "
                    "let it finish, or pass --wait to wait for it"
                ) from None
            if not waiting:
                log.warning("waiting for another build on %s (pid %s)", out, holder)
                waiting = True
            time.sleep(0.1)
            continue
        if _same_file(fd, path):
            break
        os.close(fd)  # locked after its holder removed it: lock the file there now
    try:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held_lock_fd = fd
        yield
    finally:
        _held_lock_fd = None
        with contextlib.suppress(OSError):
            os.unlink(path)  # still ours: nobody else can lock a file while we hold it
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``fd`` is the file at ``path`` now (not one removed since it was opened)."""
    try:
        opened, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (opened.st_dev, opened.st_ino) == (there.st_dev, there.st_ino)


def _lock_holder(fd: int) -> str:
    """The pid written by the build holding the lock ('?' if unknown)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "?"
    return text if text.isdigit() else "?"


def _remove_leftovers(out: Path) -> None:
    """Delete temporaries of killed runs: encoder outputs of dead pids, old atomic writes.

    A killed worker may linger as a zombie until init reaps it; its temporaries go too.
    """
    import re

    from pipeline.encode import remove_stale_temporaries

    removed = remove_stale_temporaries(out)
    now = time.time()
    with contextlib.suppress(FileNotFoundError), os.scandir(out) as entries:
        for entry in entries:
            name = entry.name
            if not name.startswith("."):
                continue
            encoder = re.fullmatch(r"\..+\.tmp-(\d+)", name)
            with contextlib.suppress(OSError):
                dead = bool(encoder) and _is_zombie(int(encoder.group(1)) if encoder else 0)
                old = name.endswith(".tmp") and now - entry.stat().st_mtime > STALE_WRITE_S
                if dead or old:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    for path in removed:
        log.info("removed %s, left by a killed run", path)


def _is_zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but was not reaped yet (Linux; False when unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    return bool(fields) and fields[0] in ("Z", "X")


# --- rendering -------------------------------------------------------------------------------

RENDER_TRIES = 2
"""Tries of a track whose worker process dies (killed, out of memory): the first and one more."""
STOP_GRACE_S = 5.0
"""How long stopped workers have to clean up (stop their ffmpeg, remove temporaries)."""


@dataclass(frozen=True)
class _Rendered:
    """A worker's answer: plain data, so it crosses process boundaries."""

    track_id: str
    error: str
    seconds: float
    synthesized: int = 0
    engine_calls: int = 0
    retries: int = 0


_worker_send: Callable[[tuple[Any, ...]], None] | None = None
"""In a worker process: sends a message to the build (from any thread)."""


def _render_all(
    todo: list[Checked],
    keys: dict[str, str],
    out: Path,
    workers: int,
    keep_going: bool,
    emit: BuildProgress,
    reasons: dict[str, str],
) -> list[TrackOutcome]:
    """Render ``todo`` on ``workers`` processes (in this process for one); stop on failure."""
    by_id = {item.script.id: item for item in todo}
    outcomes: list[TrackOutcome] = []

    def finish(rendered: _Rendered) -> bool:
        item = by_id[rendered.track_id]
        outcome = TrackOutcome(
            rendered.track_id,
            item.script.path,
            FAILED if rendered.error else BUILT,
            reasons.get(rendered.track_id, ""),
            rendered.error,
            rendered.seconds,
            rendered.synthesized,
            rendered.engine_calls,
            rendered.retries,
        )
        outcomes.append(outcome)
        emit(BuildEvent("finished", len(outcomes), len(todo), outcome.track_id, outcome=outcome))
        return bool(rendered.error) and not keep_going

    pending = list(todo)
    if workers <= 1:
        while pending:
            item = pending.pop(0)
            track_id = item.script.id

            def stage(name: str, fraction: float, track_id: str = track_id) -> None:
                emit(BuildEvent("stage", len(outcomes), len(todo), track_id, name, fraction))

            if finish(_render_one(item, keys[track_id], out, stage)):
                break
    else:
        pending = _render_in_pool(pending, keys, out, workers, finish, emit, len(todo), outcomes)
    outcomes += [
        TrackOutcome(item.script.id, item.script.path, NOT_STARTED, reasons.get(item.script.id, ""))
        for item in pending
    ]
    return outcomes


class _Worker:
    """One render process and the pipe to it; it renders one track at a time."""

    def __init__(self, context: Any) -> None:
        self.conn, theirs = context.Pipe()
        self.process = context.Process(
            target=_worker_main,
            args=(theirs, os.getpid(), _held_lock_fd),
            name="meditate-render",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        self.track: Checked | None = None
        """The track it is rendering, None when idle."""
        self.started = 0.0
        """When it was given its track (monotonic)."""

    @property
    def pid(self) -> int:
        """The worker's process id (it names the worker's encoder temporaries)."""
        return int(self.process.pid or 0)

    def give(self, item: Checked, key: str, out: Path) -> None:
        """Start rendering ``item``."""
        self.track, self.started = item, time.monotonic()
        self.conn.send((item, key, out))

    def collect(self, stage: Callable[[str, str, float], None]) -> _Rendered | None:
        """Forward the stages it sent; its answer once it has one (None: still working or dead)."""
        with contextlib.suppress(EOFError, OSError):
            while self.conn.poll():
                message = self.conn.recv()
                if message[0] == "stage":
                    stage(*message[1:])
                else:
                    self.track = None
                    answer: _Rendered = message[1]
                    return answer
        return None

    def died(self) -> bool:
        """Whether the process has ended (it is reaped then)."""
        return not self.process.is_alive()

    def cause(self) -> str:
        """How the process ended, e.g. ``killed by SIGKILL``."""
        import signal

        code = self.process.exitcode
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
            return f"killed by signal {-code}"
        return f"exit status {code}"


def _render_in_pool(
    pending: list[Checked],
    keys: dict[str, str],
    out: Path,
    workers: int,
    finish: Callable[[_Rendered], bool],
    emit: BuildProgress,
    total: int,
    outcomes: list[TrackOutcome],
) -> list[Checked]:
    """Keep ``workers`` renders running, one per worker process; returns the tracks never started.

    A worker that dies (killed, out of memory) costs its own track only: what it was writing
    is removed and the track is tried once more in a new worker; the others go on. On any
    exception (Ctrl-C, SIGTERM, a closed stderr) every worker is stopped and cleaned up first.
    """
    from multiprocessing.connection import wait

    context = worker_context()
    pool: list[_Worker] = []
    tries: dict[str, int] = {}
    stop = False

    def stage(track_id: str, name: str, fraction: float) -> None:
        emit(BuildEvent("stage", len(outcomes), total, track_id, name, fraction))

    try:
        while (not stop and pending) or any(worker.track for worker in pool):
            while not stop and pending:
                for worker in [w for w in pool if w.track is None and w.died()]:
                    pool.remove(worker)  # it died between two tracks: nothing was lost
                    with contextlib.suppress(OSError):
                        worker.conn.close()
                idle = [worker for worker in pool if worker.track is None]
                if not idle and len(pool) >= workers:
                    break
                worker = idle[0] if idle else _Worker(context)
                if not idle:
                    pool.append(worker)
                item = pending.pop(0)
                tries[item.script.id] = tries.get(item.script.id, 0) + 1
                with contextlib.suppress(OSError):  # it died just now: handled below
                    worker.give(item, keys[item.script.id], out)
            busy = [worker for worker in pool if worker.track is not None]
            wait([worker.conn for worker in busy] + [w.process.sentinel for w in busy], 0.5)
            for worker in sorted(busy, key=lambda worker: _track_id(worker.track)):
                track = worker.track
                assert track is not None
                track_id = track.script.id
                rendered = worker.collect(stage)
                if rendered is None and worker.died():
                    rendered = worker.collect(stage)  # it may have answered before it died
                    if rendered is None:
                        pool.remove(worker)
                        rendered = _lost(worker, track, out, tries[track_id], stop)
                        if rendered is None:
                            emit(_retry_event(worker, track_id, len(outcomes), total))
                            pending.insert(0, track)
                            continue
                if rendered is not None:
                    retries = tries[track_id] - 1
                    stop = finish(dataclasses.replace(rendered, retries=retries)) or stop
    finally:
        _stop_workers(pool, out)
    return pending


def _track_id(track: Checked | None) -> str:
    return track.script.id if track is not None else ""


def _lost(worker: _Worker, track: Checked, out: Path, tries: int, stop: bool) -> _Rendered | None:
    """A worker died while rendering ``track``: remove what it was writing; None to try again."""
    _remove_temporaries_of(out, worker.pid, track.script.id)
    with contextlib.suppress(OSError):
        worker.conn.close()
    cause = worker.cause()
    log.info("the process rendering %s died (%s)", track.script.id, cause)
    if tries < RENDER_TRIES and not stop:
        return None
    times = " twice" if tries > 1 else ""
    if cause == "killed by SIGKILL":
        cause += "; probable cause: the machine ran out of memory, or it was killed by hand"
    return _Rendered(
        track.script.id,
        f"{track.script.path}: error: the process rendering it died{times} ({cause})",
        time.monotonic() - worker.started,
        retries=tries - 1,
    )


def _retry_event(worker: _Worker, track_id: str, done: int, total: int) -> BuildEvent:
    message = f"the process rendering it died ({worker.cause()}); rendering it again"
    return BuildEvent("retry", done, total, track_id, message=message)


def _stop_workers(pool: list[_Worker], out: Path) -> None:
    """End every worker: idle ones when told, busy ones by SIGTERM (they clean up), then SIGKILL.

    Runs with SIGINT, SIGTERM and SIGHUP held, so a second Ctrl-C cannot cut the clean-up short.
    """
    import signal

    names = ("SIGINT", "SIGTERM", "SIGHUP")
    held = {getattr(signal, name) for name in names if hasattr(signal, name)}
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        for worker in pool:
            if worker.track is None:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
            else:
                with contextlib.suppress(OSError):
                    worker.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in pool:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            if worker.track is not None:
                _remove_temporaries_of(out, worker.pid, worker.track.script.id)
            with contextlib.suppress(OSError):
                worker.conn.close()
    finally:
        if in_main and hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def _remove_temporaries_of(out: Path, pid: int, track_id: str) -> None:
    """Delete what a dead worker was writing: its encoder temporaries, the track's atomic writes."""
    import re

    pattern = re.compile(rf"\..+\.tmp-{pid}|\.{re.escape(track_id)}\..+\.tmp")
    with contextlib.suppress(FileNotFoundError), os.scandir(out) as entries:
        for entry in entries:
            if pattern.fullmatch(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    log.info("removed %s, left by a stopped worker", entry.path)


def _worker_main(conn: Any, parent_pid: int, lock_fd: int | None) -> None:
    """A worker process: render each track the build sends, answer, until told to stop."""
    global _worker_send
    _init_worker(parent_pid, lock_fd)
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            conn.send(message)

    _worker_send = send
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        item, key, out = task
        send(("done", _render_one(item, key, out)))


def _init_worker(parent_pid: int, lock_fd: int | None) -> None:
    """Set up a worker: die with the build, leave Ctrl-C to it, clean up on SIGTERM, drop its lock.

    The build stops its workers itself (SIGTERM) when interrupted; SIGTERM unwinds the render,
    which stops its ffmpeg and removes its temporaries.
    """
    import signal

    if lock_fd is not None:
        with contextlib.suppress(OSError):
            os.close(lock_fd)
    for name in ("SIGINT", "SIGHUP"):  # a terminal's Ctrl-C or hang-up reaches the build too,
        if hasattr(signal, name):  # which stops its workers itself
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if sys.platform == "linux":
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(1)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _render_one(
    checked: Checked, key: str, out: Path, stage: Callable[[str, float], None] | None = None
) -> _Rendered:
    """Render one track; failures come back as messages (never raised across processes)."""
    from pipeline.render import RenderOptions, render_checked

    track_id = checked.script.id
    report = stage or _queue_stage(track_id)
    started = time.monotonic()

    def speech(done: int, total: int, text: str) -> None:
        report("speech", 0.2 * done / max(total, 1))

    options = RenderOptions(out, checked.settings.formats, build_key=key, jobs=SENTENCE_JOBS)
    try:
        result = render_checked(checked, options, progress=speech, stage=report)
    except PipelineError as error:
        return _Rendered(track_id, str(error), time.monotonic() - started)
    except Exception as error:  # a bug in one track must not take the batch down
        log.debug("render of %s failed", track_id, exc_info=True)
        message = f"{checked.script.path}: internal error: {type(error).__name__}: {error}"
        return _Rendered(track_id, message, time.monotonic() - started)
    return _Rendered(
        track_id,
        "",
        time.monotonic() - started,
        result.speech.synthesized,
        result.speech.engine_calls,
    )


def _queue_stage(track_id: str) -> Callable[[str, float], None]:
    """A stage callback that forwards to the build process, thinned to a few events per track."""
    last = ("", -1.0)

    def report(name: str, fraction: float) -> None:
        nonlocal last
        if _worker_send is None:
            return
        if name == last[0] and fraction - last[1] < _STAGE_STEP:
            return
        last = (name, fraction)
        with contextlib.suppress(Exception):
            _worker_send(("stage", track_id, name, fraction))

    return report


def _estimated_lengths(checked: Iterable[Checked]) -> dict[str, float]:
    """Each track's length planned from estimated speech (the same on every machine), by id."""
    from pipeline.script.validate import EstimatedLengths
    from pipeline.timeline import plan

    lengths: dict[str, float] = {}
    for item in checked:
        try:
            estimate = EstimatedLengths(item.script, item.settings)
            lengths[item.script.id] = plan(item.script, item.settings, estimate).length_s
        except PipelineError:
            lengths[item.script.id] = 0.0
    return lengths


def _default_output_dir(project: Project, flags: dict[str, object] | None) -> Path:
    from pipeline.config import flags_layer, resolve

    return resolve(project, flags=flags_layer(flags or {})).output_dir
