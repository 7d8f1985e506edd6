"""The ``meditate`` command line: parse options, call one library function, map errors.

Nothing heavy is imported at module level, so ``meditate --help`` is instant.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import io
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pipeline.build.pool import BuildEvent
    from pipeline.build.run import BuildReport
    from pipeline.engines import EngineInfo
    from pipeline.plan.validate import Report
    from pipeline.project.config import Project
    from pipeline.review.watch import Round

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("pipeline")


class State:
    """Options of the command group, shared by every command."""

    def __init__(self, verbosity: int, config: Path | None) -> None:
        self.verbosity = verbosity
        self.config = config

    def project(self, start: Path | None = None) -> Project:
        """The project of ``--config``, else the one found from ``start``."""
        from pipeline.project.config import load_project

        return load_project(self.config, start)

    def say(self, text: str, *, err: bool = False) -> None:
        """A summary or status line: printed unless ``-q``, which prints only errors."""
        if self.verbosity >= 0:
            click.echo(text, err=err)


EXIT_INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as shells report it."""
EXIT_TERMINATED = 143
"""Exit status after SIGTERM (128 + SIGTERM), e.g. a CI job cancelled; 129 after SIGHUP."""
EXIT_CLOSED_PIPE = 141
"""Exit status when the reader of our output went away (128 + SIGPIPE), as Unix tools have."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would be: every clean-up that handles one handles all.

    ``args[0]`` is the signal number.
    """


_terminations: list[int] = []
"""The SIGTERM/SIGHUP signals received, for code that meets them as a plain KeyboardInterrupt
(watchfiles turns any exception of a signal handler into one)."""


def _raise_terminated(signum: int, frame: object) -> None:
    _terminations.append(signum)
    raise Terminated(signum)


def handle_errors(command: F) -> F:
    """Turn library errors into messages and exit codes, never a traceback.

    Ctrl-C says ``interrupted`` (exit 130), SIGTERM ``terminated`` (143; SIGHUP, a closed
    terminal: 129), once the library has cleaned up. A closed stdout or stderr
    (``meditate plan x | head -1``) ends quietly, 141.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pipeline.core.errors import PipelineError

        try:
            return command(*args, **kwargs)
        except PipelineError as error:
            _say(str(error))
            sys.exit(error.exit_code)
        except KeyboardInterrupt as interruption:
            if isinstance(interruption, Terminated):
                _say("terminated")
                signum = interruption.args[0] if interruption.args else 15
                sys.exit(128 + signum if isinstance(signum, int) else EXIT_TERMINATED)
            _say("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except Exception as error:  # a bug: still no traceback unless asked
            if isinstance(error, BrokenPipeError) and _silence_closed_streams():
                sys.exit(EXIT_CLOSED_PIPE)
            if log.isEnabledFor(logging.INFO):
                raise
            _say(f"internal error: {type(error).__name__}: {error} (run with -v for details)")
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _say(message: str) -> None:
    """A last message on stderr; if nobody reads it any more (or its terminal is gone), nothing."""
    try:
        click.echo(message, err=True)
    except OSError:
        _silence_closed_streams()


def _silence_closed_streams() -> bool:
    """Point stdout and stderr at /dev/null where their reader has gone; whether one had.

    As Python's documentation recommends for SIGPIPE: later writes and the flush at exit
    then succeed quietly. A broken pipe to a child process (ffmpeg) is not this case.
    """
    closed = []
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            continue
        if _reader_gone(fd):
            closed.append(fd)
    if closed:
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in closed:
            os.dup2(devnull, fd)
        os.close(devnull)
    return bool(closed)


class _WholeWrites(io.BufferedWriter):
    """A buffered writer whose ``write`` writes everything or raises.

    When the reader of a pipe goes away in the middle of a large write, CPython's binary
    streams return a short count, and text streams drop the rest without a word; here that
    is the BrokenPipeError it really is.
    """

    unbuffered = False
    """Pass every write on at once (stdout was unbuffered: ``python -u``, PYTHONUNBUFFERED)."""

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = super().write(view)
        while done < len(view):
            if _reader_gone(self.fileno()):
                raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
            done += super().write(view[done:])
        if self.unbuffered:
            self.flush()
        return done


def _stdout_writes_whole() -> None:
    """Make ``sys.stdout`` report a reader that left in the middle of a write (see above)."""
    stream: Any = sys.stdout
    try:
        binary = stream.buffer
        stream.flush()
    except (AttributeError, OSError, ValueError):
        return
    raw = getattr(binary, "raw", binary)
    if not isinstance(raw, io.FileIO):
        return
    whole = _WholeWrites(io.FileIO(raw.fileno(), "w", closefd=False))
    whole.unbuffered = binary is raw
    sys.stdout = io.TextIOWrapper(
        whole,
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=bool(stream.line_buffering),
        write_through=bool(stream.write_through),
    )


def _reader_gone(fd: int) -> bool:
    """Whether ``fd`` is a pipe or socket whose reading end is closed (POLLERR)."""
    import select

    if not hasattr(select, "poll"):
        return True  # no way to ask: take the broken pipe at its word
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More detail (repeat for debug logs).")
@click.option("-q", "--quiet", is_flag=True,
              help="Only errors: no summaries, warnings or progress (asked-for data is still "
              "printed: plan, engines, assets, inspect, --format json).")  # fmt: skip
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Project config file (default: meditate.yaml found upwards).",
)
@click.version_option(package_name="meditation-pipeline", prog_name="meditate")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, config: Path | None) -> None:
    """Turn YAML meditation scripts into narrated, mastered audio tracks."""
    verbosity = -1 if quiet else verbose
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    ctx.obj = State(verbosity, config)


def _echo_report(report: Report, output_format: str, strict: bool, quiet: bool = False) -> None:
    from pipeline.core.fileio import display_path

    if output_format == "json":
        payload = {
            "files": len(report.files),
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "ok": not report.failed(strict),
            "problems": [p.as_dict() for p in report.problems],
            "skipped": [
                {"path": str(display_path(s.path)), "reason": s.reason} for s in report.skipped
            ],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    for problem in report.problems:
        if not quiet or problem.severity == "error" or strict:
            click.echo(problem.format(), err=True)
    if quiet:
        return
    skipped = f", {len(report.skipped)} skipped (-v lists them)" if report.skipped else ""
    summary = (
        f"{len(report.files)} file(s) checked{skipped}: "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )
    click.echo(summary, err=report.failed(strict))


output_format_option = click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text",
    help="Output format.",
)  # fmt: skip
"""``--format text|json``, shared by the commands that report."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@output_format_option
@click.pass_obj
@handle_errors
def validate(state: State, paths: tuple[Path, ...], strict: bool, output_format: str) -> None:
    """Check scripts (files or folders) without synthesis; report every problem.

    With no PATH, the project's scripts folder is checked.
    """
    from pipeline.plan.validate import validate_paths

    project = state.project(paths[0] if paths else None)
    if not paths:
        paths = (_scripts_dir(project),)
    report = validate_paths(paths, project)
    _echo_report(report, output_format, strict, quiet=state.verbosity < 0)
    if report.failed(strict):
        sys.exit(1)


@cli.command()
@click.argument("script", type=click.Path(path_type=Path))
@output_format_option
@click.option("--engine", help="Speech engine (overrides script and config).")
@click.option(
    "--takes", "takes", is_flag=True,
    help="List the recorded takes the script needs: each name, and which are missing.",
)  # fmt: skip
@click.pass_obj
@handle_errors
def plan(state: State, script: Path, output_format: str, engine: str | None, takes: bool) -> None:
    """Show the timeline of SCRIPT: start, length, kind, text; totals vs target.

    Lengths are estimated until the speech is cached, exact after `meditate speak`.
    """
    from pipeline.plan.checked import plan_script, plan_takes
    from pipeline.plan.view import format_plan, format_takes, plan_as_dict, take_rows

    if takes:
        parsed, timeline = plan_takes(script, state.project(script), {"voice.engine": engine})
        if output_format == "json":
            click.echo(json.dumps({"takes": take_rows(parsed, timeline)}, indent=2))
        else:
            click.echo(format_takes(parsed, timeline))
        return
    timeline = plan_script(script, state.project(script), {"voice.engine": engine})
    if output_format == "json":
        click.echo(json.dumps(plan_as_dict(timeline), indent=2))
    else:
        click.echo(format_plan(timeline))


@cli.command()
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@click.pass_obj
@handle_errors
def schema(state: State, output: Path | None) -> None:
    """Print the JSON Schema of the script format (for editors' YAML plugins)."""
    from pipeline.core.fileio import write_text_atomic
    from pipeline.script.schema import script_schema

    text = json.dumps(script_schema(), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        if not output.parent.is_dir():
            from pipeline.core.errors import UsageError

            raise UsageError(
                f"{output}: error: -o: the folder '{output.parent}' does not exist; create it first"
            )
        write_text_atomic(output, text)
        state.say(f"wrote {output}", err=True)


@cli.command()
@click.argument("script_id")
@click.option(
    "--template", type=click.Choice(["breathing", "body-scan", "sleep", "article"]),
    default="breathing", show_default=True, help="What kind of session to start from.",
)  # fmt: skip
@click.option(
    "-d", "--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the new script (default: the project's scripts folder).",
)  # fmt: skip
@click.pass_obj
@handle_errors
def new(state: State, script_id: str, template: str, folder: Path | None) -> None:
    """Create a new script SCRIPT_ID from a template; never overwrites."""
    from pipeline.core.fileio import display_path
    from pipeline.project.config import resolve
    from pipeline.project.templates import create_script
    from pipeline.script.schema import PROJECT_SCHEMA

    settings = resolve(state.project(folder))
    scripts_dir = settings.scripts_dir
    path = create_script(
        folder or scripts_dir,
        script_id,
        template,
        search=(scripts_dir,),
        schema=settings.root / PROJECT_SCHEMA,
    )
    state.say(f"created {display_path(path)}")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--engine", help="Speech engine (overrides scripts and config).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Sentences synthesized at once.")  # fmt: skip
@click.pass_obj
@handle_errors
def speak(state: State, paths: tuple[Path, ...], engine: str | None, jobs: int) -> None:
    """Synthesize every sentence not yet cached, so renders need no engine.

    With no PATH, the project's scripts folder. Run it ahead of a render, e.g. overnight
    for gtts; afterwards `meditate plan` shows measured lengths.
    """
    from pipeline.build.speak import speak_scripts

    project = state.project(paths[0] if paths else None)
    paths = paths or (_scripts_dir(project),)
    with _progress_bar(state, "speaking") as progress:
        report = speak_scripts(
            paths, project, {"voice.engine": engine}, jobs=jobs, progress=progress
        )
    state.say(
        f"{report.total} sentence(s): {report.cached_before} already cached, "
        f"{report.synthesized} synthesized ({report.engine_calls} engine call(s))"
    )


@cli.command("say")
@click.argument("text")
@click.option("--voice", "voices", multiple=True,
              help="ENGINE, ENGINE:NAME or :NAME (default: the project's voice); repeat it "
                   "to hear voices one after another.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("say.wav"), show_default=True,
              help="The audio file; its suffix names the format (wav, mp3, ogg...).")  # fmt: skip
@click.option("--rate", help="Tempo factor, e.g. 0.85 (overrides config).")
@click.option("--pitch", help="Pitch shift in semitones, e.g. -1 (overrides config).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Sentences synthesized at once.")  # fmt: skip
@click.pass_obj
@handle_errors
def say_command(
    state: State,
    text: str,
    voices: tuple[str, ...],
    output: Path,
    rate: str | None,
    pitch: str | None,
    jobs: int,
) -> None:
    """Speak TEXT in one or several voices into one file: an audition of a voice or a word.

    The same synthesis, lexicon and conditioning as a render, through the speech cache.
    """
    from pipeline.build.say import label, say
    from pipeline.core.fileio import display_path
    from pipeline.core.units import format_clock

    flags: dict[str, object] = {"voice.rate": rate, "voice.pitch": pitch}
    audition = say(text, state.project(None), output, voices, flags, jobs=jobs)
    for take in audition.takes:
        state.say(f"{format_clock(take.start_s)}  {label(take.voice)} ({take.length_s:.1f} s)")
    state.say(f"wrote {display_path(audition.path)} ({audition.synthesized} synthesized)")


@cli.command()
@click.argument("script", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: the project's output folder).")  # fmt: skip
@click.option("--engine", help="Speech engine (overrides script and config).")
@click.option("--formats", help="Comma-separated formats: mp3, m4a, ogg, opus, flac, wav.")
@click.option("--section", help="Render only this chapter (any case; a unique start will do).")
@click.option("--preview", "preview",
              help="Render only the first part, e.g. 60s (ends between sentences).")  # fmt: skip
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Sentences synthesized at once.")  # fmt: skip
@click.pass_obj
@handle_errors
def render(
    state: State,
    script: Path,
    output: Path | None,
    engine: str | None,
    formats: str | None,
    section: str | None,
    preview: str | None,
    jobs: int,
) -> None:
    """Render SCRIPT to audio with captions and a sidecar.

    --section and --preview render an excerpt quickly for editors (named
    <id>.section-<title>.<format> or <id>.preview.<format>, no sidecar),
    synthesizing only its own sentences (all of them when it holds a flexible
    pause of a script with a target duration).
    """
    from pipeline.build.render import render_script
    from pipeline.core.fileio import display_path

    preview_s = _preview_seconds(preview)
    with _progress_bar(state, "speaking") as progress:
        result = render_script(
            script,
            state.project(script),
            {"voice.engine": engine, "formats": formats},
            output_dir=output,
            section=section,
            preview_s=preview_s,
            progress=progress,
            jobs=jobs,
        )
    if state.verbosity < 0:
        return
    for path in result.files:
        click.echo(f"wrote {display_path(path)}")
    loudness = result.sidecar["loudness"]
    click.echo(
        f"{result.sidecar['duration_s']:.1f} s, {loudness['integrated_lufs']:.1f} LUFS, "
        f"true peak {loudness['true_peak_dbtp']:.1f} dBTP"
    )
    if result.fallback:
        click.echo(
            f"{result.fallback} sentence(s) without a take, spoken by the fallback engine "
            "(`meditate plan --takes` lists them)"
        )


def _preview_seconds(preview: str | None) -> float | None:
    """``--preview`` in seconds (None when not given)."""
    from pipeline.core.errors import UsageError
    from pipeline.core.units import parse_duration

    if preview is None:
        return None
    try:
        preview_s = parse_duration(preview)
    except ValueError as error:
        raise UsageError(f"command line: error: --preview: {error}") from None
    if preview_s <= 0:
        raise UsageError("command line: error: --preview: must be longer than 0 s")
    return preview_s


@cli.command("watch")
@click.argument("script", type=click.Path(path_type=Path))
@click.option("--section", help="Render only this chapter (any case; a unique start will do).")
@click.option("--preview", "preview",
              help="Render only the first part (default: 60s without --section).")  # fmt: skip
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: the project's output folder).")  # fmt: skip
@click.option("--engine", help="Speech engine (overrides script and config).")
@click.option("--no-listen", "no_listen", is_flag=True,
              help="Do not check the sentences with speech recognition.")  # fmt: skip
@click.pass_obj
@handle_errors
def watch_command(
    state: State,
    script: Path,
    section: str | None,
    preview: str | None,
    output: Path | None,
    engine: str | None,
    no_listen: bool,
) -> None:
    """Re-render an excerpt of SCRIPT each time it is saved, for editors.

    Each save of the script, of a file it includes or of meditate.yaml
    validates it, renders the excerpt (as render --section/--preview: only
    changed sentences are synthesized), checks its sentences as listen does
    (only clips never heard are transcribed) and rewrites its review page,
    which reloads itself. Errors print with their place and watching goes
    on. Ctrl-C stops.
    """
    from pipeline.core.errors import UsageError
    from pipeline.plan.checked import check_script_path
    from pipeline.project.config import find_config
    from pipeline.review.watch import Watcher, WatchOptions, watch

    check_script_path(script)
    if not script.is_file():
        raise UsageError(f"{script}: error: no such script file")
    options = WatchOptions(
        section=section,
        preview_s=_preview_seconds(preview),
        output_dir=output,
        flags={"voice.engine": engine},
        listen=not no_listen,
    )
    config = state.config or find_config(script)
    watcher = Watcher(script, config, options, load_project=lambda: state.project(script))
    state.say(f"watching {script} (Ctrl-C stops)", err=True)
    try:
        watch(watcher, _echo_round(state))
    except KeyboardInterrupt as stopped:
        if isinstance(stopped, Terminated):
            raise  # a cancelled job, not an editor's Ctrl-C: its own exit status
        if _terminations:
            raise Terminated(_terminations[-1]) from None
        state.say("stopped watching", err=True)


def _echo_round(state: State) -> Callable[[Round], None]:
    """Prints each round of ``watch``: what was written, or the errors with their places."""
    from pipeline.core.fileio import display_path

    def echo(round_: Round) -> None:
        when = time.strftime("%H:%M:%S")
        cause = ", ".join(path.name for path in round_.changed) or "start"
        if not round_.ok:
            click.echo(f"[{when}] {cause}: not rendered ({round_.seconds:.1f} s)", err=True)
            click.echo(round_.error, err=True)
            return
        audio = display_path(round_.files[0]) if round_.files else "nothing"
        checked = (
            f", {round_.transcribed} transcribed, QA {round_.qa_status}" if round_.qa_status else ""
        )
        state.say(
            f"[{when}] {cause}: wrote {audio} ({round_.duration_s:.1f} s of audio, "
            f"{round_.synthesized} sentence(s) synthesized{checked}) in {round_.seconds:.1f} s"
        )
        for line in (*round_.flagged, *round_.notes):
            state.say(f"  {line}")
        if round_.page is not None and round_.number == 1:
            state.say(f"  open {display_path(round_.page)} (it reloads itself on each save)")

    return echo


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: the project's output folder).")  # fmt: skip
@click.option("-j", "--jobs", type=click.IntRange(1, 256),
              help="Tracks rendered at once (processes)  [default: number of cores].")  # fmt: skip
@click.option("--force", is_flag=True, help="Render every track, even those up to date.")
@click.option("--keep-going", is_flag=True, help="Render the other tracks after a failure.")
@click.option("--shard", help="Build only shard K of N (K/N), balanced by estimated length.")
@click.option("--engine", help="Speech engine (overrides scripts and config).")
@click.option("--prune", is_flag=True, help="Delete outputs whose script is gone.")
@click.option("--verify", is_flag=True,
              help="Check existing outputs by SHA-256, not only by size.")  # fmt: skip
@click.option("--wait", "wait", default="0s", show_default=True,
              help="How long to wait for another build on the same folder, e.g. 10m.")  # fmt: skip
@click.option("--catalog-only", is_flag=True,
              help="Only rewrite catalog.json from the sidecars in the output folder.")  # fmt: skip
@click.pass_obj
@handle_errors
def build(
    state: State,
    paths: tuple[Path, ...],
    output: Path | None,
    jobs: int | None,
    force: bool,
    keep_going: bool,
    shard: str | None,
    engine: str | None,
    prune: bool,
    verify: bool,
    wait: str,
    catalog_only: bool,
) -> None:
    """Render every script that is missing or stale, in parallel; write catalog.json.

    With no PATH, the project's scripts folder. All scripts are validated first: nothing is
    rendered if one is invalid. A track is up to date when its sidecar holds the build key
    of its current inputs and its files are intact. Exit status 1 if a track failed.
    """
    from pipeline.build import run as building
    from pipeline.core.fileio import display_path

    project = state.project(paths[0] if paths else None)
    wait_s = _duration_option("--wait", wait)
    flags: dict[str, object] = {"voice.engine": engine}
    if catalog_only:
        result = building.rebuild_catalog(project, flags, output_dir=output, wait_s=wait_s)
        for skipped in result.skipped:
            state.say(f"left out {skipped}", err=True)
        state.say(f"wrote {display_path(result.path)} ({result.tracks} track(s))")
        return
    with _BuildDisplay(state) as display:
        report = building.build(
            paths or (_scripts_dir(project),),
            project,
            flags,
            output_dir=output,
            jobs=jobs,
            force=force,
            keep_going=keep_going,
            shard=building.parse_shard(shard) if shard else None,
            prune=prune,
            verify=verify,
            wait_s=wait_s,
            progress=display,
        )
    _echo_build_summary(report, quiet=state.verbosity < 0)
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: the project's output folder).")  # fmt: skip
@click.option("--engine", help="Speech engine (overrides scripts and config).")
@click.option("--verify", is_flag=True,
              help="Check outputs by SHA-256, not only by size.")  # fmt: skip
@output_format_option
@click.pass_obj
@handle_errors
def check(
    state: State,
    paths: tuple[Path, ...],
    output: Path | None,
    engine: str | None,
    verify: bool,
    output_format: str,
) -> None:
    """For CI: list outputs that are missing, stale or orphaned; exit 1 if any.

    Validates and compares build keys with sidecars; synthesizes and writes nothing.
    With no PATH, the project's scripts folder.
    """
    from pipeline.build.run import check as check_outputs
    from pipeline.core.fileio import display_path

    project = state.project(paths[0] if paths else None)
    report = check_outputs(
        paths or (_scripts_dir(project),),
        project,
        {"voice.engine": engine},
        output_dir=output,
        verify=verify,
    )
    if output_format == "json":
        payload = {
            "output": str(report.output_dir),
            "ok": report.ok,
            "tracks": [
                {"id": t.track_id, "source": str(t.source), "state": t.state, "reason": t.reason}
                for t in report.tracks
            ],
            "orphans": [
                {"id": o.track_id, "sidecar": str(o.sidecar), "source": o.source}
                for o in report.orphans
            ],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        for track in report.missing + report.stale:
            click.echo(f"{track.state:<9} {track.track_id}  {track.source}: {track.reason}")
        for orphan in report.orphans:
            click.echo(
                f"orphaned  {orphan.track_id}  {display_path(orphan.sidecar)} "
                f"(script {orphan.source or '?'} "
                "is gone; `meditate build --prune` removes it)"
            )
        state.say(
            f"{len(report.tracks)} track(s): "
            f"{len(report.tracks) - len(report.missing) - len(report.stale)} up to date, "
            f"{len(report.missing)} missing, {len(report.stale)} stale; "
            f"{len(report.orphans)} orphaned",
            err=not report.ok,
        )
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder of the built tracks (default: the project's).")  # fmt: skip
@click.option("--engine", help="Speech engine (overrides scripts and config), as built.")
@click.option("--all", "show_all", is_flag=True,
              help="Show every sentence, not only the flagged ones.")  # fmt: skip
@click.option("--wait", "wait", default="0s", show_default=True,
              help="How long to wait for a build on the same folder, e.g. 10m.")  # fmt: skip
@output_format_option
@click.pass_obj
@handle_errors
def listen(
    state: State,
    paths: tuple[Path, ...],
    output: Path | None,
    engine: str | None,
    show_all: bool,
    wait: str,
    output_format: str,
) -> None:
    """Transcribe each built track's sentences and compare them with the script.

    Each sentence's clean clip (from the speech cache) is transcribed (Whisper tiny.en, extra
    [qa]) and compared with its text: word error rate, missing and extra words, characters
    per second. Flagged sentences are listed at their place; the verdicts go into each
    sidecar's "qa". With no PATH, the project's scripts folder. Exit status 1 if a sentence
    fails or a track could not be checked, 2 without a speech recogniser.
    """
    from pipeline.build.listen import listen as listen_tracks
    from pipeline.build.listen import report_lines

    project = state.project(paths[0] if paths else None)
    with _progress_bar(state, "listening") as progress:
        report = listen_tracks(
            paths or (_scripts_dir(project),),
            project,
            {"voice.engine": engine},
            output_dir=output,
            wait_s=_duration_option("--wait", wait),
            progress=progress,
        )
    if output_format == "json":
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    elif state.verbosity >= 0 or not report.ok:
        for line in report_lines(report, every=show_all or state.verbosity > 0):
            click.echo(line)
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Site folder (default: review/ in the folder of built tracks).")  # fmt: skip
@click.option("--tracks", "tracks_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of built tracks (default: the project's output folder).")  # fmt: skip
@output_format_option
@click.pass_obj
@handle_errors
def review(
    state: State,
    paths: tuple[Path, ...],
    output: Path | None,
    tracks_dir: Path | None,
    output_format: str,
) -> None:
    """A static review site of built tracks, opened from file:// in a browser.

    An index (duration, loudness, QA, what changed since the build) and a page per track:
    audio, waveform with chapters and sentences, loudness plot, transcript with QA flags and
    script lines. Exit 1 if a script's track cannot be shown (never built, corrupt sidecar);
    the others are written. With no PATH, the project's scripts folder.
    """
    from pipeline.core.fileio import display_path
    from pipeline.review.site import review as review_site

    project = state.project(paths[0] if paths else None)
    with _progress_bar(state, "reading the tracks") as progress:
        report = review_site(
            paths or (_scripts_dir(project),),
            project,
            site_dir=output,
            tracks_dir=tracks_dir,
            progress=progress,
        )
    if output_format == "json":
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        for item in report.skipped:
            click.echo(f"skipped  {display_path(item.source)}: {item.reason}", err=True)
        state.say(
            f"{len(report.tracks)} track(s) reviewed, {len(report.skipped)} skipped; "
            f"{report.decoded} decoded, {len(report.written)} file(s) written "
            f"in {report.elapsed_s:.1f} s\nopen {display_path(report.index)}"
        )
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--all", "show_all", is_flag=True,
              help="Every voice of every engine, with its languages.")  # fmt: skip
@output_format_option
@handle_errors
def engines(names: tuple[str, ...], show_all: bool, output_format: str) -> None:
    """List speech engines, whether each is usable here, and their voices and languages.

    With NAME (or --all), every voice with the languages it speaks, and every language.
    """
    from pipeline.core.errors import EngineError, UsageError
    from pipeline.engines import describe_engines

    details = show_all or bool(names) or output_format == "json"
    try:
        infos = describe_engines(list(dict.fromkeys(names)) or None, details=details)
    except EngineError as error:
        raise UsageError(f"command line: error: NAME: {error}") from None
    if output_format == "json":
        click.echo(json.dumps({"engines": [info.as_dict() for info in infos]}, indent=2))
        return
    for info in infos:
        status = "usable" if info.usable else "NOT usable"
        click.echo(
            f"{info.name} {info.version}: {status}{': ' + info.reason if info.reason else ''}"
        )
        if not details:
            if info.languages:
                click.echo(f"  languages ({len(info.languages)}): {_shorten(info.languages)}")
            if info.voices:
                click.echo(f"  voices ({len(info.voices)}): {_shorten(info.voices)}")
            if info.languages or info.voices:
                click.echo(f"  (`meditate engines {info.name}` lists them all)")
            continue
        _echo_engine_details(info)


def _echo_engine_details(info: EngineInfo) -> None:
    """Every voice of one engine with its languages, then every language with its name."""
    import textwrap

    for line in info.details:
        click.echo(f"  {line}")
    if info.voice_list:
        click.echo(f"  voices ({len(info.voice_list)}): name, languages, description")
        width = max(len(voice.name) for voice in info.voice_list)
        for voice in info.voice_list:
            licence = f" [{voice.licence}]" if voice.licence else ""
            click.echo(
                f"    {voice.name:<{width}}  {', '.join(voice.languages) or '-'}"
                f"{'  ' + voice.description if voice.description else ''}{licence}"
            )
            if voice.credit:
                click.echo(f"    {'':<{width}}  credit: {voice.credit}")
    if info.language_names and any(label for _, label in info.language_names):
        click.echo(f"  languages ({len(info.language_names)}): code, name")
        width = max(len(code) for code, _ in info.language_names)
        for code, label in info.language_names:
            click.echo(f"    {code:<{width}}  {label}")
    elif info.languages:
        click.echo(f"  languages ({len(info.languages)}):")
        text = ", ".join(info.languages)
        wrapped = textwrap.fill(
            text, width=88, initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False
        )
        click.echo(wrapped)


@cli.command()
@click.pass_obj
@handle_errors
def assets(state: State) -> None:
    """List the asset catalog: name, kind, length, loop, licence, description.

    The built-in catalog, extended or overridden by the project's own assets folder.
    Regenerate the built-in files with `python -m pipeline.audio.assetgen`.
    """
    from pipeline.core.units import format_clock
    from pipeline.project.assets import list_assets
    from pipeline.project.config import resolve

    rows = list_assets(resolve(state.project()).assets_dir)
    click.echo(f"{'name':<10} {'kind':<9} {'length':>7}  {'loop':<4}  {'licence':<9}  description")
    for row in rows:
        asset = row.asset
        length = format_clock(row.length_s) if row.length_s is not None else "?"
        loop = "yes" if asset.loop else "no"
        click.echo(
            f"{asset.name:<10} {asset.kind:<9} {length:>7}  {loop:<4}  {asset.licence or '-':<9}  "
            f"{asset.description}"
        )
        if row.problem:
            click.echo(f"  error: {row.problem}", err=True)
    if any(row.problem for row in rows):
        sys.exit(1)


@cli.group()
def cache() -> None:
    """Inspect or prune the speech cache."""


@cache.command("info")
@click.pass_obj
@handle_errors
def cache_info(state: State) -> None:
    """Entries and size of the speech cache, and the hits and misses of the last run."""
    from pipeline.project.config import resolve
    from pipeline.speech.cache import SpeechCache

    info = SpeechCache(resolve(state.project()).cache_dir).info()
    click.echo(f"cache: {info.root}")
    click.echo(f"entries: {info.entries}, size: {_size(info.bytes)}")
    if info.old_entries:
        click.echo(
            f"older format: {_entries(info.old_entries)} ({_size(info.old_bytes)}), not read; "
            "`meditate cache prune` deletes them"
        )
    if info.last_run is not None:
        click.echo(
            f"last run ({info.last_run_at}): {info.last_run.hits} hit(s), "
            f"{info.last_run.misses} miss(es)"
        )


@cache.command("prune")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@click.option("--engine", "engines", multiple=True,
              help="Also keep the clips of the scripts with this engine (repeatable).")  # fmt: skip
@click.pass_obj
@handle_errors
def cache_prune(
    state: State, paths: tuple[Path, ...], dry_run: bool, engines: tuple[str, ...]
) -> None:
    """Drop cached clips that no script of the project uses.

    Every script of the project's scripts folder keeps its clips; PATH adds scripts kept
    elsewhere (drafts) whose clips are kept too. It never narrows what is kept.
    """
    from pipeline.build.prune import prune_cache

    project = state.project(paths[0] if paths else None)
    report = prune_cache(project, paths, engines=engines, dry_run=dry_run)
    verb = "would remove" if report.dry_run else "removed"
    say = click.echo if report.dry_run else state.say  # a dry run's answer is what was asked
    say(
        f"{verb} {_entries(report.removed)} ({_size(report.removed_bytes)}); "
        f"kept {_entries(report.kept)} ({_size(report.kept_bytes)}) "
        f"used by {report.scripts} script(s)"
        + (
            f"; {verb} {report.transcripts} transcript(s) of other clips "
            f"({_size(report.transcripts_bytes)})"
            if report.transcripts
            else ""
        )
    )


def _entries(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def _size(count: int) -> str:
    """A size in bytes as people read it: 512 B, 12.3 kB, 115.2 MB, 1.4 GB."""
    if count < 1000:
        return f"{count} B"
    value = count / 1000.0
    for unit in ("kB", "MB"):
        if value < 999.95:
            return f"{value:.1f} {unit}"
        value /= 1000.0
    return f"{value:.1f} GB"


@cli.command("inspect")
@click.argument("audio", type=click.Path(path_type=Path))
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path),
    help="Also draw the waveform and loudness with chapter marks to this image, in the format "
    "its extension names (.png, .svg, .pdf, .jpg...); its folder must exist.",
)  # fmt: skip
@output_format_option
@handle_errors
def inspect_command(audio: Path, plot: Path | None, output_format: str) -> None:
    """Measure an audio file: duration, loudness, true peak, clipping, silences, chapters."""
    from pipeline.audio.analysis import format_inspection, inspect_audio, inspection_as_dict

    info = inspect_audio(audio, plot=plot)
    if output_format == "json":
        click.echo(json.dumps(inspection_as_dict(info), indent=2))
    else:
        click.echo(format_inspection(info))


def _duration_option(option: str, text: str) -> float:
    from pipeline.core.errors import UsageError
    from pipeline.core.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise UsageError(f"error: {option}: {error}") from None


class _BuildDisplay:
    """Draws build progress on stderr: a live status line on a terminal, else one line per track."""

    def __init__(self, state: State) -> None:
        self.quiet = state.verbosity < 0
        self.live = sys.stderr.isatty() and not self.quiet
        self.running: dict[str, tuple[str, float]] = {}
        self.done = self.total = 0
        self.drawn = False

    def __enter__(self) -> _BuildDisplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._clear()

    def __call__(self, event: BuildEvent) -> None:
        self.done, self.total = event.done, event.total
        if event.kind == "stage":
            self.running[event.track_id] = (event.stage, event.fraction)
        elif event.kind == "retry":
            self.running.pop(event.track_id, None)
            if not self.quiet:
                self._line(f"[{self.done}/{self.total}] RETRY {event.track_id}: {event.message}")
        elif event.kind == "finished":
            self.running.pop(event.track_id, None)
            outcome = event.outcome
            if outcome is None:
                pass
            elif outcome.error:
                self._line(f"[{self.done}/{self.total}] FAILED {outcome.track_id}")
                self._line(outcome.error)
            elif not self.quiet:
                self._line(f"[{self.done}/{self.total}] built {outcome.track_id} "
                           f"({outcome.seconds:.1f} s)")  # fmt: skip
        if self.live:
            self._draw()

    def _line(self, text: str) -> None:
        self._clear()
        click.echo(text, err=True)

    def _clear(self) -> None:
        if self.drawn:
            click.echo("\r\x1b[K", nl=False, err=True)
            self.drawn = False

    def _draw(self) -> None:
        if not self.running and self.done >= self.total:
            self._clear()
            return
        import shutil

        running = sorted(self.running.items())
        overall = (self.done + sum(fraction for _, (_, fraction) in running)) / max(self.total, 1)
        busy = ", ".join(f"{name} {stage} {fraction:.0%}" for name, (stage, fraction) in running)
        text = f"[{self.done}/{self.total} {overall:.0%}] {busy or 'starting'}"
        width = max(20, shutil.get_terminal_size().columns - 1)
        click.echo("\r\x1b[K" + text[:width], nl=False, err=True)
        self.drawn = True


def _echo_build_summary(report: BuildReport, quiet: bool = False) -> None:
    """The table at the end of a build: counts, time, catalog, orphans."""
    from pipeline.core.fileio import display_path

    rows = [("built", str(report.built)), ("up to date", str(report.up_to_date)),
            ("failed", str(report.failed))]  # fmt: skip
    if report.retried:
        rows.append(("retried", f"{report.retried} (the process rendering it died)"))
    if report.not_started:
        rows.append(("not started", f"{report.not_started} (stopped by a failure; --keep-going)"))
    if report.shard is not None:
        rows.append(("shard", f"{report.shard[0]}/{report.shard[1]}"))
    rows.append(("time", f"{report.elapsed_s:.1f} s ({report.jobs} process(es))"))
    rows.append(("speech", f"{report.synthesized} sentence(s) synthesized"))
    if report.fallback:
        rows.append(("fallback", f"{report.fallback} sentence(s) without a take, spoken by "
                     "the fallback engine (`meditate plan --takes` lists them)"))  # fmt: skip
    if report.pruned:
        rows.append(("pruned", f"{len(report.pruned)} file(s) of {len(report.orphans)} orphan(s)"))
    elif report.orphans:
        names = ", ".join(orphan.track_id for orphan in report.orphans)
        rows.append(("orphaned", f"{names} (script gone; --prune removes them)"))
    if report.catalog_path is not None:
        rows.append(
            ("catalog", f"{display_path(report.catalog_path)} ({report.catalog_tracks} track(s))")
        )
    for failed in report.with_status("failed"):
        click.echo(f"failed: {failed.track_id} ({failed.source})", err=True)
    if quiet:
        return
    for name, value in rows:
        click.echo(f"{name:<12} {value}")


def _scripts_dir(project: Project) -> Path:
    from pipeline.project.config import scripts_dir

    return scripts_dir(project)


def _shorten(names: tuple[str, ...], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... (+{len(names) - limit})" if len(names) > limit else "")


@contextlib.contextmanager
def _progress_bar(state: State, label: str) -> Iterator[Callable[[int, int, str], None]]:
    """A progress callback for the library, drawn as a bar on a terminal's stderr.

    Not on a log file or pipe: click would print the bare label there, unterminated.
    """
    bar: Any = None
    drawn = state.verbosity >= 0 and sys.stderr.isatty()

    def progress(done: int, total: int, text: str) -> None:
        nonlocal bar
        if not drawn:
            return
        if bar is None:
            bar = click.progressbar(length=total, label=label, file=sys.stderr)
            bar.__enter__()
        bar.length = max(bar.length, total)  # an excerpt may find more to say as it goes
        bar.update(done - bar.pos)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def main() -> None:
    """Console entry point."""
    import signal

    for name in ("SIGTERM", "SIGHUP"):  # a CI job cancelled, a terminal closed; not if ignored
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) == signal.SIG_DFL:
            signal.signal(number, _raise_terminated)
    _stdout_writes_whole()
    try:
        cli(prog_name="meditate")
    except SystemExit as ending:
        # click's own output (--help, --version) meets a closed pipe with a quiet exit 1
        if isinstance(sys.stdout, click.utils.PacifyFlushWrapper) and ending.code == 1:
            raise SystemExit(EXIT_CLOSED_PIPE) from None
        raise
    finally:
        # The process ends here. Its last garbage collection would walk every object (numpy's
        # too) for about 50 ms; our files are all closed by now, no finalizer is waited for.
        gc.freeze()
