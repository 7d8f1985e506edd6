"""The ``meditate`` command line: parse options, call one library function, map errors.

Nothing heavy is imported at module level, so ``meditate --help`` is instant.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pipeline.config import Project
    from pipeline.script.validate import Report

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("pipeline")


class State:
    """Options of the command group, shared by every command."""

    def __init__(self, verbosity: int, config: Path | None) -> None:
        self.verbosity = verbosity
        self.config = config

    def project(self, start: Path | None = None) -> Project:
        """The project of ``--config``, else the one found from ``start``."""
        from pipeline.config import load_project

        return load_project(self.config, start)


def handle_errors(command: F) -> F:
    """Turn library errors into messages and exit codes, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pipeline.errors import PipelineError

        try:
            return command(*args, **kwargs)
        except PipelineError as error:
            click.echo(str(error), err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as error:  # a bug: still no traceback unless asked
            if log.isEnabledFor(logging.INFO):
                raise
            click.echo(
                f"internal error: {type(error).__name__}: {error} (run with -v for details)",
                err=True,
            )
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More detail (repeat for debug logs).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
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


def _echo_report(report: Report, output_format: str, strict: bool) -> None:
    if output_format == "json":
        payload = {
            "files": len(report.files),
            "errors": len(report.errors),
            "warnings": len(report.warnings),
            "ok": not report.failed(strict),
            "problems": [p.as_dict() for p in report.problems],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    for problem in report.problems:
        click.echo(problem.format(), err=True)
    summary = (
        f"{len(report.files)} file(s) checked: "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)"
    )
    click.echo(summary, err=report.failed(strict))


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text",
    help="Output format.",
)  # fmt: skip
@click.pass_obj
@handle_errors
def validate(state: State, paths: tuple[Path, ...], strict: bool, output_format: str) -> None:
    """Check scripts (files or folders) without synthesis; report every problem.

    With no PATH, the project's scripts folder is checked.
    """
    from pipeline.script.validate import validate_paths

    project = state.project(paths[0] if paths else None)
    if not paths:
        from pipeline.config import resolve

        paths = (resolve(project).scripts_dir,)
    report = validate_paths(paths, project)
    _echo_report(report, output_format, strict)
    if report.failed(strict):
        sys.exit(1)


@cli.command()
@click.argument("script", type=click.Path(path_type=Path))
@click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text",
    help="Output format.",
)  # fmt: skip
@click.option("--engine", help="Speech engine (overrides script and config).")
@click.pass_obj
@handle_errors
def plan(state: State, script: Path, output_format: str, engine: str | None) -> None:
    """Show the timeline of SCRIPT: start, length, kind, text; totals vs target.

    Lengths are estimated until the speech is cached, exact after `meditate speak`.
    """
    from pipeline.planning import plan_script
    from pipeline.planview import format_plan, plan_as_dict

    timeline = plan_script(script, state.project(script), {"voice.engine": engine})
    if output_format == "json":
        click.echo(json.dumps(plan_as_dict(timeline), indent=2))
    else:
        click.echo(format_plan(timeline))


@cli.command()
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@handle_errors
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the script format (for editors' YAML plugins)."""
    from pipeline.fileio import write_text_atomic
    from pipeline.script.schema import script_schema

    text = json.dumps(script_schema(), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        write_text_atomic(output, text)
        click.echo(f"wrote {output}", err=True)


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
    from pipeline.config import resolve
    from pipeline.script.templates import create_script

    if folder is None:
        folder = resolve(state.project()).scripts_dir
    path = create_script(folder, script_id, template)
    click.echo(f"created {path}")


def main() -> None:
    """Console entry point."""
    cli(prog_name="meditate")
