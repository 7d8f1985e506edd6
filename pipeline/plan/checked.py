"""From script files to timelines: validate, resolve settings, then the pure planner.

Speech lengths come from the speech cache where a clip exists and are estimated otherwise,
through the same `pipeline.plan.timeline.plan`, so plan, captions and render agree.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import ScriptError, UsageError
from pipeline.core.fileio import display_path
from pipeline.plan.timeline import SpeechCue, Timeline, plan
from pipeline.plan.validate import Checked, sound_lengths, validate_paths
from pipeline.project.config import Project, flags_layer
from pipeline.project.settings import Settings
from pipeline.script.model import Script
from pipeline.script.parse import is_partial
from pipeline.speech.cache import SpeechCache
from pipeline.speech.lengths import CachedLengths
from pipeline.speech.synthesis import SpeechRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Planned:
    """A valid script, its settings and its timeline."""

    script: Script
    """The parsed script."""
    settings: Settings
    """Its resolved settings."""
    timeline: Timeline
    """Its timeline, with measured lengths where the cache has them."""
    lengths: CachedLengths
    """Where the lengths came from (also gives each sentence's cache key)."""


def check_scripts(
    paths: Iterable[Path], project: Project, flags: dict[str, object] | None = None
) -> list[Checked]:
    """Validate scripts; raise ScriptError with every error if any."""
    report = validate_paths(paths, project, flags=flags_layer(flags or {}))
    if report.errors:
        raise ScriptError(report.errors)
    return report.checked


def plan_checked(checked: Checked, cache: SpeechCache | None = None) -> Planned:
    """Plan a validated script with cached lengths where available."""
    settings = checked.settings
    lengths = CachedLengths(
        cache or SpeechCache(settings.cache_dir),
        lexicon=settings.lexicon,
        sample_rate=settings.sample_rate,
        sound=sound_lengths(checked.script, settings),
        retry=settings.retry,
    )
    timeline = plan(checked.script, settings, lengths)
    return Planned(checked.script, settings, timeline, lengths)


def replan(planned: Planned) -> Planned:
    """``planned`` planned again, with the lengths of clips cached since (keys are memoized)."""
    timeline = plan(planned.script, planned.settings, planned.lengths)
    return Planned(planned.script, planned.settings, timeline, planned.lengths)


def check_script(path: Path, project: Project, flags: dict[str, object] | None = None) -> Checked:
    """Validate the one script a single-track command works on (not a folder, not a partial)."""
    if path.is_dir():
        raise UsageError(
            f"{display_path(path)}: error: a folder; give one script file (build takes folders)"
        )
    if is_partial(path):
        raise UsageError(
            f"{display_path(path)}: error: a partial (its name or folder starts with '_'); "
            "use a script that includes it"
        )
    return check_scripts([path], project, flags)[0]


def plan_script(path: Path, project: Project, flags: dict[str, object] | None = None) -> Timeline:
    """The timeline of one script file; its warnings are logged."""
    timeline = plan_checked(check_script(path, project, flags)).timeline
    log_warnings(timeline)
    return timeline


def log_warnings(timeline: Timeline) -> None:
    """Log the warnings of a timeline, each at its place in the script (then the include
    steps that led there, one ``note: included from here`` line each).
    """
    for problem in timeline.warnings:
        key = f"{problem.place.key_path}: " if problem.place.key_path else ""
        notes = "".join(f"\n{note}" for note in problem.place.notes())
        logger.warning("%s: %s%s%s", problem.place, key, problem.message, notes)


def speech_requests(
    timeline: Timeline, context: str, *, cues: Iterable[SpeechCue] | None = None
) -> list[SpeechRequest]:
    """A request per speech cue of a timeline (or of ``cues`` of it, e.g. an excerpt's).

    ``context`` names the script (its path).
    """
    requests = []
    for cue in timeline.speech if cues is None else cues:
        place = cue.place
        path = str(place.path)
        if path in ("", "."):
            where = context
        elif path == context:
            where = str(place)
        else:
            where = f"{context} ({place})"
        if place.key_path:
            where += f": {place.key_path}"
        requests.append(SpeechRequest(cue.text, cue.voice, where))
    return requests
