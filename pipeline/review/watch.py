"""Watch mode for editors: on each save of a script, of a file it includes or of the project's
config, validate it, render its excerpt, check the excerpt's sentences and rewrite its review
page. Errors are reported with their place and watching goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.errors import PipelineError

if TYPE_CHECKING:
    from pipeline.build.render import RenderResult
    from pipeline.project.config import Project

DEBOUNCE_MS = 150
"""Changes closer together than this are one save (editors write a file in several steps)."""


@dataclass(frozen=True)
class WatchOptions:
    """What each round renders, and where."""

    section: str | None = None
    """Render only this chapter."""
    preview_s: float | None = None
    """Render only the first seconds (the default when no section is given: 60 s)."""
    output_dir: Path | None = None
    """Where the excerpt goes (default: the project's output folder)."""
    flags: dict[str, object] = field(default_factory=dict)
    """Command-line settings (``voice.engine`` ...), as for ``render``."""


@dataclass(frozen=True)
class Round:
    """What one round of watching did."""

    number: int
    """1 for the round at start, then one per save."""
    changed: tuple[Path, ...]
    """The files whose change started it (none for the first)."""
    seconds: float
    """From the change seen to the round's end."""
    error: str = ""
    """The problems found or the failure, with their places; empty when it went through."""
    files: tuple[Path, ...] = ()
    """Files written: the excerpt's audio and captions."""
    synthesized: int = 0
    """Sentences synthesized (the others came from the speech cache)."""
    duration_s: float = 0.0
    """Length of the excerpt."""

    @property
    def ok(self) -> bool:
        """Whether the round validated and rendered."""
        return not self.error


class Watcher:
    """One script watched: the files that make it up, and a round for each change."""

    def __init__(
        self,
        script: Path,
        config: Path | None,
        options: WatchOptions,
        *,
        load_project: Callable[[], Project],
    ) -> None:
        self.script = script
        self.config = config
        self.options = options
        self.load_project = load_project
        self.rounds = 0
        self.sources: set[Path] = {script.resolve()}
        """The script, what it includes and the project's config: a change to one starts a round."""
        if config is not None:
            self.sources.add(config.resolve())

    def watched_folders(self) -> list[Path]:
        """Folders holding the sources (watched whole: an editor may replace a file)."""
        return sorted({path.parent for path in self.sources})

    def relevant(self, changed: Iterable[Path]) -> tuple[Path, ...]:
        """The changed files that are sources, in a stable order."""
        return tuple(sorted({path.resolve() for path in changed} & self.sources))

    def run_round(self, changed: tuple[Path, ...] = (), started: float | None = None) -> Round:
        """Validate, render the excerpt; never raises a PipelineError (it becomes the error)."""
        start = time.perf_counter() if started is None else started
        self.rounds += 1
        try:
            result = self._render()
        except PipelineError as error:
            return Round(self.rounds, changed, time.perf_counter() - start, error=str(error))
        return Round(
            self.rounds,
            changed,
            time.perf_counter() - start,
            files=result.files,
            synthesized=result.speech.synthesized,
            duration_s=result.timeline.length_s,
        )

    def _render(self) -> RenderResult:
        from pipeline.build.keys import build_key
        from pipeline.build.render import RenderOptions, render_checked
        from pipeline.plan.checked import check_script

        project = self.load_project()
        if project.config_path is not None:
            self.sources.add(project.config_path.resolve())
        checked = check_script(self.script, project, self.options.flags)
        self.sources |= {path.resolve() for path in checked.script.includes}
        settings = checked.settings
        preview_s = self.options.preview_s
        if self.options.section is None and preview_s is None:
            preview_s = 60.0
        options = RenderOptions(
            output_dir=self.options.output_dir or settings.output_dir,
            formats=settings.formats[:1],
            section=self.options.section,
            preview_s=preview_s,
            build_key=build_key(checked),
        )
        return render_checked(checked, options)


def watch(
    watcher: Watcher,
    report: Callable[[Round], None],
    *,
    stop: threading.Event | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """A round now, then one per change of the watcher's sources, until ``stop`` is set (or
    Ctrl-C). ``ready`` is called once the files are watched."""
    import watchfiles

    report(watcher.run_round())
    while stop is None or not stop.is_set():
        folders = watcher.watched_folders()
        for changes in watchfiles.watch(
            *folders,
            debounce=DEBOUNCE_MS,
            step=20,
            stop_event=stop,
            rust_timeout=500,
            yield_on_timeout=True,
            recursive=False,
        ):
            if ready is not None:
                ready()
                ready = None
            changed = watcher.relevant(Path(name) for _, name in changes)
            if changed:
                report(watcher.run_round(changed, time.perf_counter()))
                if watcher.watched_folders() != folders:
                    break  # an include was added: watch its folder too
