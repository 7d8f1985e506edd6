"""No dead code: every module-level name of the package is used by the package itself."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"

TEST_ONLY = {"clear_engine_cache"}
"""Public names the package does not use itself: tests (or a host embedding it) reset state."""


def _definitions() -> list[tuple[Path, str]]:
    """Every top-level function, class and assigned name of every module, with its module."""
    found: list[tuple[Path, str]] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found.append((path, node.name))
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                found += [(path, target.id) for target in targets if isinstance(target, ast.Name)]
    return found


def _words(*texts: str) -> Counter[str]:
    """How often each identifier-like word occurs in ``texts``."""
    return Counter(word for text in texts for word in re.findall(r"\w+", text))


def test_private_names_are_used_in_their_module() -> None:
    unused = [
        f"{path.relative_to(PACKAGE.parent)}: {name}"
        for path, name in _definitions()
        if name.startswith("_")
        and not name.startswith("__")
        and _words(path.read_text(encoding="utf-8"))[name] < 2
    ]
    assert unused == []


def test_public_names_are_used_by_the_package() -> None:
    """A public function only tests call is a second path beside the real one; Click commands
    (``cli.py``) are used through their decorators.
    """
    texts = [path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")]
    words = _words(*texts, (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    unused = [
        f"{path.relative_to(PACKAGE.parent)}: {name}"
        for path, name in _definitions()
        if not name.startswith("_")
        and name not in TEST_ONLY
        and path.name != "cli.py"
        and words[name] < 2
    ]
    assert unused == []


STAGED = {
    "build/render.py": "render_checked",
    "speech/synthesis.py": "synthesize_missing",
    "build/run.py": "build",
    "audio/analysis.py": "_analyse",
}
"""Functions that once held every stage of their job (issue 12.3), by module."""
SCREEN_LINES = 40


def test_long_functions_read_as_their_stages() -> None:
    """The orchestrating functions call one named stage after another and fit on a screen."""
    long = []
    for module, name in STAGED.items():
        tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                body = node.body[1:] if ast.get_docstring(node) else node.body
                lines = (body[-1].end_lineno or 0) - body[0].lineno + 1
                if lines > SCREEN_LINES:
                    long.append(f"{module}: {name}: {lines} lines")
    assert long == []
