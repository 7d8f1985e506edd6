"""Watch mode for editors: on each save of a script, of a file it includes or of the project's
config, validate it, render its excerpt, check the excerpt's sentences and rewrite its review
page. Errors are reported with their place and watching goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.errors import PipelineError

if TYPE_CHECKING:
    from pipeline.build.listen import Listener, TrackQa
    from pipeline.build.render import RenderResult
    from pipeline.plan.checked import Planned
    from pipeline.plan.timeline import Timeline
    from pipeline.plan.validate import Checked
    from pipeline.project.config import Project
    from pipeline.qa.asr import Transcriber

DEFAULT_PREVIEW_S = 60.0
"""The excerpt without ``--section`` or ``--preview``: the first minute."""
DEBOUNCE_MS = 150
"""Changes closer together than this are one save (editors write a file in several steps)."""


@dataclass(frozen=True)
class WatchOptions:
    """What each round renders, and where."""

    section: str | None = None
    """Render only this chapter."""
    preview_s: float | None = None
    """Render only the first seconds (without a section: ``DEFAULT_PREVIEW_S``)."""
    output_dir: Path | None = None
    """Where the excerpt goes (default: the project's output folder)."""
    review_dir: Path | None = None
    """Where its review page goes (default: ``review/`` in the output folder)."""
    listen: bool = True
    """Check the excerpt's sentences with speech recognition (when a recogniser is installed)."""
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
    transcribed: int = 0
    """Clips transcribed by ``listen`` (the others' transcripts were cached)."""
    flagged: tuple[str, ...] = ()
    """The lines of each sentence ``listen`` flagged (its place, reasons, text, what was heard)."""
    qa_status: str = ""
    """The excerpt's ``listen`` status (ok, warn, fail; '' when not checked)."""
    page: Path | None = None
    """The excerpt's review page."""
    notes: tuple[str, ...] = ()
    """What was left out and why (no recogniser installed, a clip unreadable...)."""

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
        self._transcriber: Transcriber | None = None
        self._no_recogniser = ""
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
        """Validate, render the excerpt, check it and write its page; a PipelineError becomes
        the round's error (the page of the last good round stays)."""
        start = time.perf_counter() if started is None else started
        self.rounds += 1
        try:
            project = self.load_project()
            checked = self._check(project)
            notes: list[str] = []
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="listen") as pool:
                listening: list[Future[tuple[TrackQa | None, int]]] = []

                def listen(planned: Planned, timeline: Timeline) -> None:
                    listener = self._listener(checked, project, notes)
                    if listener is not None:
                        listening.append(pool.submit(_listen, planned, timeline, listener, notes))

                result = self._render(checked, listen)
                qa, transcribed = listening[0].result() if listening else (None, 0)
            page = self._review(checked, project, result, qa, notes)
        except PipelineError as error:
            return Round(self.rounds, changed, time.perf_counter() - start, error=str(error))
        return Round(
            self.rounds,
            changed,
            time.perf_counter() - start,
            files=result.files,
            synthesized=result.speech.synthesized,
            duration_s=result.timeline.length_s,
            transcribed=transcribed,
            flagged=() if qa is None else _flagged(qa),
            qa_status="" if qa is None else qa.status,
            page=page,
            notes=tuple(notes),
        )

    def _check(self, project: Project) -> Checked:
        from pipeline.plan.checked import check_script

        if project.config_path is not None:
            self.sources.add(project.config_path.resolve())
        checked = check_script(self.script, project, self.options.flags)
        self.sources |= {path.resolve() for path in checked.script.includes}
        return checked

    def _render(
        self, checked: Checked, speech_ready: Callable[[Planned, Timeline], None]
    ) -> RenderResult:
        from pipeline.build.keys import build_key
        from pipeline.build.render import RenderOptions, render_checked

        settings = checked.settings
        preview_s = self.options.preview_s
        if self.options.section is None and preview_s is None:
            preview_s = DEFAULT_PREVIEW_S
        options = RenderOptions(
            output_dir=self.output_dir(checked),
            formats=settings.formats[:1],
            section=self.options.section,
            preview_s=preview_s,
            build_key=build_key(checked),
        )
        return render_checked(checked, options, speech_ready=speech_ready)

    def output_dir(self, checked: Checked) -> Path:
        """Where the excerpt goes."""
        return self.options.output_dir or checked.settings.output_dir

    def _listener(self, checked: Checked, project: Project, notes: list[str]) -> Listener | None:
        """A listener with the project's thresholds now; the recogniser is loaded once."""
        from pipeline.build.listen import Listener, model_folder
        from pipeline.qa.asr import AsrUnavailable, load_transcriber

        if not self.options.listen:
            return None
        if self._transcriber is None and not self._no_recogniser:
            try:
                self._transcriber = load_transcriber(model_folder(checked.settings, project))
            except AsrUnavailable as error:
                self._no_recogniser = f"sentences not checked: {error}"
                notes.append(self._no_recogniser)  # said once
        if self._transcriber is None:
            return None
        return Listener.for_project(checked.settings, project, self._transcriber)

    def _review(
        self,
        checked: Checked,
        project: Project,
        result: RenderResult,
        qa: TrackQa | None,
        notes: list[str],
    ) -> Path | None:
        """The excerpt's review page, with its QA flags."""
        from pipeline.build.outputs import qa_thresholds, with_qa
        from pipeline.review.site import review_page
        from pipeline.review.tracks import excerpt_track

        data = result.sidecar
        if qa is not None and self._transcriber is not None:
            recogniser = self._transcriber.identity()
            data = with_qa(data, qa.section(recogniser, qa_thresholds(checked.settings.qa)))
        audio = result.files[0]
        track = excerpt_track(audio.stem, checked.script.path, data, audio, project.root)
        site_dir = self.options.review_dir or self.output_dir(checked) / "review"
        report = review_page(track, site_dir, checked.settings.cache_dir)
        for skipped in report.skipped:
            notes.append(f"no review page: {skipped.reason}")
        return report.page(track.track_id) if report.tracks else None


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


def _listen(
    planned: Planned, timeline: Timeline, listener: Listener, notes: list[str]
) -> tuple[TrackQa | None, int]:
    """The excerpt's sentences checked on their clips (None when one cannot be read) and the
    number of clips transcribed; only clips never heard before are."""
    from pipeline.build.listen import SkippedTrack, check_track_sentences, sentences_of
    from pipeline.speech.cache import SpeechCache

    speech = SpeechCache(planned.settings.cache_dir)
    sentences = sentences_of(planned, speech, timeline.speech)
    checked_qa = (
        sentences
        if isinstance(sentences, SkippedTrack)
        else check_track_sentences(sentences, speech, listener)
    )
    if isinstance(checked_qa, SkippedTrack):
        notes.append(f"not checked: {checked_qa.reason}")
        return None, listener.transcribed
    return checked_qa, listener.transcribed


def _flagged(qa: TrackQa) -> tuple[str, ...]:
    """The lines of each flagged sentence, as ``listen`` prints them."""
    from pipeline.build.listen import sentence_lines

    return tuple(
        line
        for sentence in qa.sentences
        if sentence.status != "ok"
        for line in sentence_lines(sentence)
    )
