"""No dead code: every module-level name of the package is used by the package itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"


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


def _uses(name: str, text: str) -> int:
    return len(re.findall(rf"\b{re.escape(name)}\b", text))


def test_private_names_are_used_in_their_module() -> None:
    unused = [
        f"{path.relative_to(PACKAGE.parent)}: {name}"
        for path, name in _definitions()
        if name.startswith("_")
        and not name.startswith("__")
        and _uses(name, path.read_text(encoding="utf-8")) < 2
    ]
    assert unused == []
