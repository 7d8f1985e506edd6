"""``meditate review``: a static site from built tracks, opened from ``file://``.

The site folder holds ``index.html``, a page ``<id>.html`` and a version file
``<id>.version.js`` per track, and ``static/`` (style sheet, page script, wavesurfer.js).
Pages link the built audio where it lies (nothing big is copied). Every file is written
atomically and only when its content changed, so a page's version changes only with its
track, and an open page reloads itself only then.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.build.outputs import sha256_file
from pipeline.core.errors import PipelineError
from pipeline.core.fileio import check_writable, display_path, write_bytes_atomic
from pipeline.core.processes import usable_cpus
from pipeline.project.config import Project, flags_layer, resolve
from pipeline.review.levels import Levels, track_levels
from pipeline.review.pages import (
    STATIC,
    index_page,
    qa_status,
    track_page,
    version_script,
    version_script_name,
)
from pipeline.review.tracks import Skipped, Track, find_tracks

log = logging.getLogger(__name__)

STATIC_SOURCE = Path(__file__).resolve().parent / "static"
"""The package's style sheet, page script and vendored wavesurfer.js."""
INDEX = "index.html"
Progress = Callable[[int, int, str], None]
"""Called with (tracks measured, tracks in all, the track id) as levels are read or decoded."""


@dataclass
class ReviewReport:
    """What a review wrote and what it could not show; ``ok`` is False if anything was
    skipped (a track never built, a corrupt sidecar, a missing audio file)."""

    site_dir: Path
    """The site folder."""
    tracks: list[Track] = field(default_factory=list)
    """The tracks shown, in id order."""
    skipped: list[Skipped] = field(default_factory=list)
    """The scripts not shown, with why."""
    written: list[Path] = field(default_factory=list)
    """Files rewritten because their content changed."""
    decoded: int = 0
    """Audio files decoded (the others' levels came from the cache)."""
    elapsed_s: float = 0.0
    """Wall time."""

    @property
    def index(self) -> Path:
        """The index page."""
        return self.site_dir / INDEX

    def page(self, track_id: str) -> Path:
        """A track's page."""
        return self.site_dir / f"{track_id}.html"

    @property
    def ok(self) -> bool:
        """Whether every track asked for is shown."""
        return not self.skipped

    def as_dict(self) -> dict[str, object]:
        """The report for ``--format json``."""
        return {
            "site": str(self.site_dir),
            "index": str(self.index),
            "ok": self.ok,
            "tracks": [
                {
                    "id": track.track_id,
                    "page": str(self.page(track.track_id)),
                    "qa": qa_status(track.sidecar),
                    "change": track.change,
                    "detail": track.change_detail,
                }
                for track in self.tracks
            ],
            "skipped": [
                {"source": str(item.source), "reason": item.reason} for item in self.skipped
            ],
            "decoded": self.decoded,
            "written": [str(path) for path in self.written],
        }


def review(
    paths: Iterable[Path],
    project: Project,
    flags: Mapping[str, object] | None = None,
    *,
    site_dir: Path | None = None,
    tracks_dir: Path | None = None,
    progress: Progress | None = None,
) -> ReviewReport:
    """Write the review site of the tracks of the scripts under ``paths``.

    ``tracks_dir``: where they were built (default: the project's output folder);
    ``site_dir``: where the site goes (default: ``<tracks_dir>/review``). Levels come from
    ``<cache>/review/`` when cached, else each audio file is decoded once (in parallel).
    """
    started = time.monotonic()
    flags = dict(flags or {})
    settings = resolve(project, flags=flags_layer(flags))
    tracks_dir = tracks_dir if tracks_dir is not None else settings.output_dir
    site_dir = site_dir if site_dir is not None else tracks_dir / "review"
    if not tracks_dir.is_dir():
        raise PipelineError(
            f"{display_path(tracks_dir)}: error: no such folder of built tracks; "
            "run `meditate build` first"
        )
    check_writable(site_dir)
    tracks, skipped = find_tracks(paths, project, flags, tracks_dir)
    report = ReviewReport(site_dir, skipped=skipped)
    levels = _levels(tracks, settings.cache_dir, report, progress or (lambda *_: None))
    report.tracks = [track for track in tracks if track.track_id in levels]
    _write_static(site_dir, report)
    for track in report.tracks:
        _write_track(site_dir, track, levels[track.track_id], report)
    names = [str(display_path(item.source)) for item in report.skipped]
    _write(site_dir / INDEX, index_page(report.tracks, report.skipped, names), report)
    report.elapsed_s = time.monotonic() - started
    log.info(
        "review: %d track(s), %d decoded, %d file(s) written in %.2f s",
        len(report.tracks),
        report.decoded,
        len(report.written),
        report.elapsed_s,
    )
    return report


def review_page(track: Track, site_dir: Path, cache_dir: Path) -> ReviewReport:
    """Write one track's page, its version file and the static files, with no index (``watch``
    shows the excerpt it renders this way); the track is skipped if its audio cannot be read."""
    started = time.monotonic()
    check_writable(site_dir)
    report = ReviewReport(site_dir)
    levels = _levels([track], cache_dir, report, lambda *_: None)
    if track.track_id in levels:
        report.tracks = [track]
        _write_static(site_dir, report)
        _write_track(site_dir, track, levels[track.track_id], report)
    report.elapsed_s = time.monotonic() - started
    return report


def _levels(
    tracks: list[Track], cache_dir: Path, report: ReviewReport, progress: Progress
) -> dict[str, Levels]:
    """Each track's levels by id, decoded in parallel where not cached; a track whose audio
    cannot be decoded is skipped (named, with the decoder's reason)."""

    def measure(track: Track) -> tuple[Track, Levels | None, bool, str]:
        sha256 = track.audio_sha256
        if track.audio.stat().st_size != _recorded_bytes(track):
            sha256 = sha256_file(track.audio)  # changed since the build: never the old key
        try:
            found, cached = track_levels(track.audio, sha256, cache_dir)
        except PipelineError as error:
            return track, None, False, str(error)
        return track, found, cached, ""

    found: dict[str, Levels] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(usable_cpus(), len(tracks)))) as pool:
        for done, (track, levels, cached, problem) in enumerate(pool.map(measure, tracks), 1):
            progress(done, len(tracks), track.track_id)
            if levels is None:
                report.skipped.append(Skipped(track.source, problem))
                continue
            found[track.track_id] = levels
            report.decoded += not cached
    return found


def _recorded_bytes(track: Track) -> object:
    for entry in track.sidecar.get("files", []):
        if isinstance(entry, dict) and entry.get("sha256") == track.audio_sha256:
            return entry.get("bytes")
    return None


def _write_track(site_dir: Path, track: Track, levels: Levels, report: ReviewReport) -> None:
    """A track's page, then its version file (only when the page changed)."""
    href = urllib.parse.quote(Path(os.path.relpath(track.audio, site_dir)).as_posix())
    page = track_page(track, levels, href)
    _write(site_dir / f"{track.track_id}.html", page, report)
    version = hashlib.sha256(page.encode("utf-8")).hexdigest()[:16]
    _write(site_dir / version_script_name(track.track_id), version_script(version), report)


def _write_static(site_dir: Path, report: ReviewReport) -> None:
    """Copy the style sheet, page script and wavesurfer.js (with its licence) into the site."""
    for source in sorted(STATIC_SOURCE.rglob("*")):
        if source.is_file():
            target = site_dir / STATIC / source.relative_to(STATIC_SOURCE)
            _write_bytes(target, source.read_bytes(), report)


def _write(path: Path, text: str, report: ReviewReport) -> None:
    _write_bytes(path, text.encode("utf-8"), report)


def _write_bytes(path: Path, data: bytes, report: ReviewReport) -> None:
    """Write ``data`` atomically unless the file already holds exactly it."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return
    except OSError:
        pass
    write_bytes_atomic(path, data)
    report.written.append(path)
