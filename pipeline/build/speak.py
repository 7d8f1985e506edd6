"""``meditate speak``: synthesize every sentence of scripts not cached yet."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pipeline.plan.checked import check_scripts, plan_checked, speech_requests
from pipeline.project.config import Project
from pipeline.speech.cache import SpeechCache
from pipeline.speech.synthesis import (
    ProgressCallback,
    SpeakReport,
    SpeechRequest,
    synthesize_missing,
)


def speak_scripts(
    paths: Iterable[Path],
    project: Project,
    flags: dict[str, object] | None = None,
    *,
    jobs: int = 1,
    progress: ProgressCallback | None = None,
) -> SpeakReport:
    """Validate scripts, then synthesize every sentence of theirs not cached yet."""

    checked = check_scripts(paths, project, flags)
    if not checked:
        return SpeakReport(0, 0, 0, 0)
    settings = checked[0].settings
    cache = SpeechCache(settings.cache_dir)
    requests: list[SpeechRequest] = []
    for item in checked:
        planned = plan_checked(item, cache)
        requests += speech_requests(planned.timeline, str(item.script.path))
    report = synthesize_missing(
        requests,
        cache,
        lexicon=settings.lexicon,
        sample_rate=settings.sample_rate,
        retry=settings.retry,
        jobs=jobs,
        progress=progress,
    )
    cache.record_run()
    return report
