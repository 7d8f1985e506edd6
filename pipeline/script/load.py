"""Loading YAML safely, keeping every node's position, with limits against hostile files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.errors import Place, Problem

MAX_FILE_BYTES = 1_000_000
MAX_NODES = 100_000
MAX_DEPTH = 40

SAFE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}


class LoadFailed(Exception):
    """The file cannot be loaded at all; carries the one problem found."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.format())


@dataclass(frozen=True)
class Document:
    """A composed YAML document: the root node and the file it came from."""

    path: Path
    """The file as given (for messages)."""
    root: yaml.Node | None
    """Root node, ``None`` for an empty document."""


def place_of(path: Path, node: yaml.Node, key_path: str = "") -> Place:
    """The 1-based position of a node."""
    mark = node.start_mark
    return Place(path, mark.line + 1, mark.column + 1, key_path)


def load_document(path: Path) -> Document:
    """Read and compose one YAML file; raise LoadFailed with a located problem."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _failed(path, f"file is {size / 1e6:.1f} MB; the limit is 1 MB")
        raw = path.read_bytes()
    except OSError as error:
        raise _failed(path, f"cannot read: {error.strerror or error}") from None
    return compose_text(path, _decode(path, raw))


def compose_text(path: Path, text: str) -> Document:
    """Compose YAML text into checked nodes (safe tags, bounded size and depth)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        message = f"invalid YAML: {error.problem or error.context}"
        raise LoadFailed(Problem(Place(path, line, column), message)) from None
    except yaml.YAMLError as error:
        raise _failed(path, f"invalid YAML: {error}") from None
    except RecursionError:
        raise _failed(path, f"nesting is deeper than {MAX_DEPTH} levels") from None
    if root is not None:
        _check_tree(path, root)
    return Document(path, root)


def _decode(path: Path, raw: bytes) -> str:
    if b"\x00" in raw:
        raise _failed(path, "this is not a text file (it contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise LoadFailed(
            Problem(Place(path, line, column), "not UTF-8 text: save the file as UTF-8")
        ) from None
    return text


def _check_tree(path: Path, root: yaml.Node) -> None:
    """Reject unsafe tags, too deep nesting and alias expansion bombs, in one walk."""
    count = 0
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise LoadFailed(
                Problem(
                    place_of(path, node),
                    f"the document expands to more than {MAX_NODES} values (too many aliases?)",
                )
            )
        if depth > MAX_DEPTH:
            raise LoadFailed(
                Problem(place_of(path, node), f"nesting is deeper than {MAX_DEPTH} levels")
            )
        if node.tag not in SAFE_TAGS:
            raise LoadFailed(Problem(place_of(path, node), f"unsupported YAML tag {node.tag!r}"))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)


def _failed(path: Path, message: str) -> LoadFailed:
    return LoadFailed(Problem(Place(path, 1, 1), message))
