"""Planning one script from its file: validate, resolve settings, then the pure planner."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Project, flags_layer
from pipeline.errors import ScriptError
from pipeline.script.validate import validate_paths
from pipeline.timeline import Timeline, plan


def plan_script(path: Path, project: Project, flags: dict[str, object] | None = None) -> Timeline:
    """The timeline of one script, with measured speech lengths where the cache has them."""
    report = validate_paths([path], project, flags=flags_layer(flags or {}))
    if report.errors or not report.checked:
        raise ScriptError(report.errors or report.problems)
    checked = report.checked[0]
    return plan(checked.script, checked.settings, lengths_for(checked.script, checked.settings))


def lengths_for(script: object, settings: object) -> object:
    """Cached speech lengths when available, else estimates."""
    from pipeline.script.validate import validation_lengths

    return validation_lengths(script, settings)  # type: ignore[arg-type]
