"""``meditate cache prune``: drop the clips no script of the project uses (and their
transcripts)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.build.transcripts import prune_transcripts
from pipeline.core.errors import EngineError, PipelineError
from pipeline.plan.checked import check_scripts, plan_checked
from pipeline.project.config import Project
from pipeline.speech.cache import SpeechCache


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune_cache` removed (or, in a dry run, would remove) and kept."""

    scripts: int
    """Scripts whose clips were kept."""
    kept: int
    """Entries kept."""
    kept_bytes: int
    """Their size."""
    removed: int
    """Entries removed (or that would be)."""
    removed_bytes: int
    """Their size, with stale temporary files."""
    dry_run: bool
    """Nothing was removed."""
    transcripts: int = 0
    """Transcripts of the clips removed (``meditate listen``'s), removed (or that would be)."""
    transcripts_bytes: int = 0
    """Their size."""


def prune_cache(
    project: Project,
    extra: Iterable[Path] = (),
    *,
    engines: Iterable[str] = (),
    dry_run: bool = False,
) -> PruneReport:
    """Drop the cached clips no script of the project uses.

    Every script of the project's scripts folder keeps its clips, and so does every script under
    ``extra`` (drafts kept elsewhere): a path never narrows what is kept. ``engines``: also keep
    the clips the scripts would use with each of these engines (``--engine`` renders). Any
    script that cannot be planned stops the prune before anything is removed.
    """
    from pipeline.project.config import resolve

    groups = [[resolve(project).scripts_dir], list(extra)]
    checked = []
    overrides: list[dict[str, object]] = [{}]
    overrides += [{"voice.engine": engine} for engine in dict.fromkeys(engines)]
    for flags in overrides:
        for paths in groups:
            if paths:
                checked += check_scripts(paths, project, flags)
    if not checked:
        raise PipelineError("error: no scripts found: refusing to prune the whole cache")
    cache = SpeechCache(checked[0].settings.cache_dir)
    keep: set[str] = set()
    for item in checked:
        planned = plan_checked(item, cache)
        for cue in planned.timeline.speech:
            key = planned.lengths.key(cue.text, cue.voice)
            if key is None:
                raise EngineError(
                    f"{item.script.path}: engine {cue.voice.engine!r} cannot be loaded, so its "
                    "clips cannot be told apart: nothing pruned"
                )
            keep.add(key)
    scripts = len({item.script.path.resolve() for item in checked})
    kept, kept_bytes, removed, removed_bytes = cache.prune(keep, dry_run=dry_run)
    heard = prune_transcripts(cache.root, keep, dry_run=dry_run)
    return PruneReport(scripts, kept, kept_bytes, removed, removed_bytes, dry_run, *heard)
