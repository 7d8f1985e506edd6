"""pyproject.toml tells the truth: each declared dependency is imported where it is declared for."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the test extra installs tomli there
    import tomli as tomllib

import pipeline

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _normalized(name: str) -> str:
    """A distribution name as the registry compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _distribution(requirement: str) -> str:
    """The distribution a requirement names: ``'gTTS>=2.5'`` -> ``'gtts'``."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"pyproject.toml: cannot read the requirement {requirement!r}"
    return _normalized(match.group(1))


def _modules_by_distribution() -> dict[str, set[str]]:
    """The top-level modules each installed distribution provides, from its metadata."""
    found: dict[str, set[str]] = {}
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            found.setdefault(_normalized(distribution), set()).add(module)
    return found


MODULES = _modules_by_distribution()


def _modules_of(distribution: str) -> set[str]:
    """What ``import`` names a distribution by; its own name when it is not installed here."""
    return MODULES.get(distribution) or {distribution.replace("-", "_")}


def _distribution_of(module: str) -> set[str]:
    return {name for name, modules in MODULES.items() if module in modules}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_time_imports(tree: ast.AST) -> Iterator[str]:
    """Top-level names of absolute imports run at some time (function-local ones too)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            yield from (name for child in node.orelse for name in _run_time_imports(child))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]
        yield from _run_time_imports(node)


def _imports_under(folder: str) -> dict[str, set[str]]:
    """Third-party top-level modules imported under a folder of the repository, with where."""
    root = ROOT / folder
    # tests and benchmarks run with their folder on sys.path: their files import one another
    beside = {path.stem for path in root.glob("*.py")} if folder != "pipeline" else set()
    local = beside | {"pipeline", "tests", "bench"}
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for module in _run_time_imports(tree):
            if module in sys.stdlib_module_names or module in local:
                continue
            found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


NEEDED_BY = {"audioop-lts": "pydub"}
"""Runtime dependencies that a library, not the pipeline, imports (pydub needs audioop-lts on
Python 3.13, where audioop left the standard library)."""


def _declared(*extras: str, here: bool = False) -> set[str]:
    """The distributions declared; ``here``: only those whose marker holds on this Python."""
    from packaging.requirements import Requirement

    requirements = list(PROJECT["dependencies"])
    for extra in extras:
        requirements += PROJECT["optional-dependencies"][extra]
    return {
        _distribution(requirement)
        for requirement in requirements
        if not here or (marker := Requirement(requirement).marker) is None or marker.evaluate()
    }


def test_every_runtime_dependency_is_imported_by_the_pipeline() -> None:
    """pydub and audioop-lts were runtime dependencies that nothing under pipeline/ imported."""
    imported = set(_imports_under("pipeline"))
    unused = {
        distribution: sorted(_modules_of(distribution))
        if distribution in MODULES
        else "not installed here"
        for distribution in sorted(_declared(here=True))
        if not _modules_of(NEEDED_BY.get(distribution, distribution)) & imported
    }
    assert not unused, (
        "pyproject.toml declares runtime dependencies that nothing under pipeline/ imports "
        f"(distribution: its modules): {unused}; move them to the extra that uses them"
    )


@pytest.mark.parametrize(
    ("folder", "extras"),
    [
        ("pipeline", [e for e in PROJECT["optional-dependencies"] if e not in ("test", "bench")]),
        ("tests", ["test"]),
        ("bench", ["bench"]),
    ],
)
def test_every_imported_library_is_declared(folder: str, extras: list[str]) -> None:
    """What pipeline/, the tests and the benchmarks import, `pip install -e '.[extra]'` brings."""
    declared = _declared(*extras)
    missing = {
        module: sorted(where)
        for module, where in _imports_under(folder).items()
        if not _distribution_of(module) & declared and _normalized(module) not in declared
    }
    assert not missing, (
        f"{folder}/ imports libraries that neither the runtime dependencies nor the extras "
        f"{extras} of pyproject.toml declare (module: files): {missing}"
    )


def test_the_version_is_written_once() -> None:
    """The version was written both in pyproject.toml and in pipeline/__init__.py."""
    assert "version" not in PROJECT, "pyproject.toml writes the version: read it from pipeline"
    assert "version" in PROJECT.get("dynamic", [])
    assert importlib.metadata.version("meditation-pipeline") == pipeline.__version__
