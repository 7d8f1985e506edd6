"""Batch builds: content-hash build keys, incremental and parallel rendering, catalog.

A track is up to date when its sidecar ``<out>/<id>.json`` records the track's current build
key and every file the sidecar lists exists with the recorded size (``verify`` also compares
SHA-256). Timestamps and mere existence are never trusted. The sidecar is written last, so a
track counts as built only once all its files are in place; a killed build is resumed by
running it again. One build at a time per output folder (``<out>/.meditate-build.lock``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.build.keys import build_key
from pipeline.build.lock import build_lock, remove_leftovers
from pipeline.build.pool import BuildEvent, BuildProgress, TrackOutcome, render_all
from pipeline.build.state import (
    BUILT,
    FAILED,
    MISSING,
    NOT_STARTED,
    STALE,
    UP_TO_DATE,
    CatalogResult,
    Orphan,
    TrackState,
    find_orphans,
    read_sidecar,
    recorded_script,
    remove_outputs,
    sidecars_in,
    track_state,
    write_catalog,
)
from pipeline.core.errors import BuildError, PipelineError, UsageError
from pipeline.core.processes import usable_cpus
from pipeline.plan.validate import Checked
from pipeline.project.config import Project

log = logging.getLogger(__name__)


# --- reports ----------------------------------------------------------------------------------


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
    from pipeline.plan.checked import check_scripts

    started = time.monotonic()
    emit = progress or (lambda event: None)
    paths = list(paths)
    checked = check_scripts(paths, project, flags)
    out = output_dir if output_dir is not None else _default_output_dir(project, flags)
    selected = checked if shard is None else shard_scripts(checked, *shard)
    report = BuildReport(output_dir=out, shard=shard)
    with build_lock(out, wait_s):
        remove_leftovers(out)
        plan = _plan_build(selected, out, jobs=jobs, force=force, verify=verify)
        report.jobs = plan.workers
        emit(BuildEvent("plan", 0, len(plan.todo)))
        rendered = render_all(
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
    from pipeline.plan.checked import check_scripts

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
            recorded, script = recorded_script(data, project.root)
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


def _estimated_lengths(checked: Iterable[Checked]) -> dict[str, float]:
    """Each track's length planned from estimated speech (the same on every machine), by id."""
    from pipeline.plan.timeline import plan
    from pipeline.plan.validate import EstimatedLengths

    lengths: dict[str, float] = {}
    for item in checked:
        try:
            estimate = EstimatedLengths(item.script, item.settings)
            lengths[item.script.id] = plan(item.script, item.settings, estimate).length_s
        except PipelineError:
            lengths[item.script.id] = 0.0
    return lengths


def _default_output_dir(project: Project, flags: dict[str, object] | None) -> Path:
    from pipeline.project.config import flags_layer, resolve

    return resolve(project, flags=flags_layer(flags or {})).output_dir
