"""One error hierarchy for the whole pipeline; the CLI maps it to exit codes."""

from __future__ import annotations

from dataclasses import dataclass
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

    def at(self, key_path: str) -> Place:
        """The same position with another key path."""
        return Place(self.path, self.line, self.column, key_path)

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
        """``path:line:col: error: key.path: message``."""
        key = f"{self.place.key_path}: " if self.place.key_path else ""
        return f"{self.place}: {self.severity}: {key}{self.message}"

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form for ``--format json``."""
        return {
            "path": str(self.place.path),
            "line": self.place.line,
            "column": self.place.column,
            "key": self.place.key_path,
            "severity": self.severity,
            "message": self.message,
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
