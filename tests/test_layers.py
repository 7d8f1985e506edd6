"""The packages are layers: a module imports only its own package and the layers below it,
and no two modules import each other, even through others or inside functions."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"

LAYERS = (
    "core", "script", "project", "engines", "speech", "qa", "plan", "audio", "build", "review",
    "cli",
)  # fmt: skip
"""Bottom to top; the README's module table lists them in this order."""

ROOT_MODULES = {"pipeline", "pipeline.__main__"}
"""``pipeline`` holds only the version; ``__main__`` runs the CLI."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in(source: str, name: str, *, is_package: bool = False) -> set[str]:
    """Every pipeline module the module ``name`` imports, wherever the import statement is
    (inside functions and ``TYPE_CHECKING`` blocks too)."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {imported for imported in found if imported in MODULES and imported != name}


def imports_of(path: Path) -> set[str]:
    source = path.read_text(encoding="utf-8")
    return imports_in(source, module_name(path), is_package=path.name == "__init__.py")


MODULES = {module_name(path) for path in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    """The layer's index, or None for the root modules and data packages."""
    parts = module.split(".")
    if module in ROOT_MODULES or len(parts) < 2 or parts[1] not in LAYERS:
        return None
    return LAYERS.index(parts[1])


def upward_imports(graph: Mapping[str, Iterable[str]]) -> list[str]:
    problems = []
    for module, imported in graph.items():
        own = layer_of(module)
        for target in imported:
            theirs = layer_of(target)
            if own is not None and theirs is not None and theirs > own:
                problems.append(f"{module} imports {target}, a layer above it")
    return sorted(problems)


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The import cycles (strongly connected components of more than one module, or a module
    importing itself), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1 or module in graph.get(module, ()):
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return sorted(found)


def package_graph(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for module, imported in graph.items():
        source = ".".join(module.split(".")[:2])
        targets = packages.setdefault(source, set())
        targets.update(".".join(t.split(".")[:2]) for t in imported)
        targets.discard(source)
    return packages


def test_every_package_is_a_known_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages - {"audio_assets"} == set(LAYERS) - {"cli"}


def test_no_module_imports_a_layer_above_it() -> None:
    assert upward_imports(import_graph()) == []


def test_no_import_cycle_between_modules() -> None:
    assert cycles(import_graph()) == []


def test_no_import_cycle_between_packages() -> None:
    assert cycles(package_graph(import_graph())) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"a"}}, [["a"]]),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert cycles(graph) == expected


def test_an_upward_import_is_reported() -> None:
    graph = {"pipeline.script.parse": {"pipeline.build.run", "pipeline.core.errors"}}
    assert upward_imports(graph) == [
        "pipeline.script.parse imports pipeline.build.run, a layer above it"
    ]


def test_imports_inside_functions_and_relative_imports_count() -> None:
    source = (
        "from . import model\n"
        "def later() -> None:\n"
        "    from pipeline.build.run import build\n"
        "    from ..core import errors\n"
    )
    assert imports_in(source, "pipeline.script.parse") == {
        "pipeline.script.model",
        "pipeline.script",
        "pipeline.build.run",
        "pipeline.core",
        "pipeline.core.errors",
    }


def test_every_module_path_written_in_code_strings_and_docs_exists() -> None:
    """Code run in child processes, ``python -m`` lines and docs name modules as text,
    where no import checker sees them."""
    import re

    pattern = re.compile(r"(?:from|import|-m)\s+(pipeline(?:\.[a-z_]+)*)")
    root = PACKAGE.parent
    texts = [*root.glob("tests/*.py"), *root.glob("bench/*.py"), *PACKAGE.rglob("*.py")]
    texts += [root / "README.md", *root.glob("docs/*.md")]
    missing = sorted(
        f"{path.relative_to(root)}: {name}"
        for path in texts
        for name in pattern.findall(path.read_text(encoding="utf-8"))
        if name not in MODULES
    )
    assert missing == []
