"""One error hierarchy for the whole pipeline; the CLI maps it to exit codes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Place:
    """Where something sits in a script file."""

    path: Path
    """The file, as given by the user (relative paths stay relative)."""
    line: int = 0
    """1-based line; 0 when unknown."""
    column: int = 0
    """1-based column; 0 when unknown."""
    key_path: str = ""
    """Dotted key path inside the document, e.g. ``steps[3].pause``."""
    included_from: tuple[Place, ...] = ()
    """The include steps that led to this file, innermost first; empty in a file read
    directly (the one a user named)."""

    def at(self, key_path: str) -> Place:
        """The same position with another key path."""
        return replace(self, key_path=key_path)

    def including(self) -> tuple[Place, ...]:
        """The ``included_from`` of a file included here (by the include step at this place)."""
        return (replace(self, included_from=()), *self.included_from)

    def notes(self) -> list[str]:
        """``path:line:col: note: included from here`` for each include step that led here,
        innermost first (as compilers print them), to follow a message about this place.
        """
        return [f"{step}: note: included from here" for step in self.included_from]

    def __str__(self) -> str:
        where = str(self.path)
        if self.line:
            where += f":{self.line}:{self.column}"
        return where


@dataclass(frozen=True)
class Problem:
    """One finding of validation: an error or a warning at a place."""

    place: Place
    """Where the problem is."""
    message: str
    """What is wrong, in one sentence."""
    severity: str = "error"
    """``error`` or ``warning``."""

    def format(self) -> str:
        """``path:line:col: error: key.path: message``, then one ``note: included from here``
        line per include step that led to the file, innermost first.
        """
        key = f"{self.place.key_path}: " if self.place.key_path else ""
        return "\n".join(
            [f"{self.place}: {self.severity}: {key}{self.message}", *self.place.notes()]
        )

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form for ``--format json``."""
        return {
            "path": str(self.place.path),
            "line": self.place.line,
            "column": self.place.column,
            "key": self.place.key_path,
            "severity": self.severity,
            "message": self.message,
            "included_from": [
                {
                    "path": str(step.path),
                    "line": step.line,
                    "column": step.column,
                    "key": step.key_path,
                }
                for step in self.place.included_from
            ],
        }


class PipelineError(Exception):
    """Base of every error a user may see; its message is shown without a traceback."""

    exit_code = 1


class UsageError(PipelineError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2


class ScriptError(PipelineError):
    """One or more problems in scripts; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.format() for p in problems))


class ConfigError(PipelineError):
    """The project config or an environment variable is invalid."""


class EngineError(PipelineError):
    """A speech engine failed; the message names the probable cause."""


class AudioError(PipelineError):
    """Decoding, mixing or encoding audio failed."""


class BuildError(PipelineError):
    """A batch build failed or found stale outputs."""
