"""Loading YAML safely, keeping every node's position, with limits against hostile files."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import Place, Problem

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER: Any = yaml.resolver.Resolver()

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


def place_of(path: Path, node: yaml.Node | yaml.Event, key_path: str = "") -> Place:
    """The 1-based position of a node or parser event."""
    mark = node.start_mark
    if mark is None:
        return Place(path, 0, 0, key_path)
    return Place(path, mark.line + 1, mark.column + 1, key_path)


def load_document(path: Path) -> Document:
    """Read and compose one YAML file; raise LoadFailed with a located problem.

    Documents are memoized on the file's identity, so a partial included by many scripts
    is read once per run.
    """
    try:
        stat = path.stat()
    except OSError as error:
        raise _failed(path, f"cannot read: {error.strerror or error}") from None
    if stat.st_size > MAX_FILE_BYTES:
        raise _failed(path, f"file is {stat.st_size / 1e6:.1f} MB; the limit is 1 MB")
    return _load_document(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _load_document(path: Path, mtime_ns: int, size: int) -> Document:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise _failed(path, f"cannot read: {error.strerror or error}") from None
    return compose_text(path, _decode(path, raw))


def compose_text(path: Path, text: str) -> Document:
    """Compose YAML text into checked nodes (safe tags, bounded size and depth)."""
    try:
        root = _compose(path, text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        message = f"invalid YAML: {error.problem or error.context}"
        if "nesting depth" in str(error.problem):  # libyaml's own limit, deeper than ours
            message = f"nesting is deeper than {MAX_DEPTH} levels"
        elif mark is not None:
            message += _syntax_hint(text, mark.line, mark.column, str(error.problem))
        raise LoadFailed(Problem(Place(path, line, column), message)) from None
    except yaml.YAMLError as error:
        raise _failed(path, f"invalid YAML: {error}") from None
    if root is not None:
        _check_tree(path, root)
    return Document(path, root)


def _syntax_hint(text: str, line: int, column: int, problem: str) -> str:
    """A probable cause for the two syntax errors editors meet most: a colon or a tab in text."""
    lines = text.splitlines()
    source = lines[line] if line < len(lines) else ""
    if "mapping values are not allowed" in problem:
        entry = source.strip()
        entry = entry[2:] if entry.startswith("- ") else entry
        key, separator, value = entry.partition(": ")
        if separator and ": " in value:
            quoted = value.replace("\\", "\\\\").replace('"', '\\"')
            return (
                "; probable cause: ': ' inside unquoted text starts a new key; "
                f'quote the text: {key}: "{quoted}"'
            )
        return "; probable cause: ': ' inside unquoted text; put the text in quotes"
    if source[column : column + 1] == "\t" or "tab" in problem:
        return "; probable cause: a tab; YAML indents with spaces only: replace it with spaces"
    return ""


def _compose(path: Path, text: str) -> yaml.Node | None:
    """Build the node tree from parser events, iteratively, stopping at MAX_DEPTH.

    libyaml's event parser is fast and not recursive; composing here (instead of with
    ``yaml.compose``, whose C composer recurses and can crash on deep nesting) keeps every
    node's position and lets the depth limit act before anything deep is built.
    """
    root: yaml.Node | None = None
    anchors: dict[str, yaml.Node] = {}
    stack: list[tuple[Any, list[yaml.Node], str | None]] = []
    documents = 0

    def add(node: yaml.Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        parent, pending, _ = stack[-1]
        if isinstance(parent, yaml.SequenceNode):
            parent.value.append(node)
        elif pending:
            parent.value.append((pending.pop(), node))
        else:
            pending.append(node)

    events: Iterator[Any] = yaml.parse(text, Loader=_LOADER)
    for event in events:
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise LoadFailed(
                    Problem(place_of(path, event), "expected one YAML document, found several")
                )
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise LoadFailed(
                    Problem(place_of(path, event), f"undefined alias {event.anchor!r}")
                )
            add(anchors[event.anchor])
        elif isinstance(event, yaml.ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
            node: Any = yaml.ScalarNode(
                tag, event.value, _any(event.start_mark), _any(event.end_mark), style=event.style
            )
            if event.anchor is not None:
                anchors[event.anchor] = node
            add(node)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise LoadFailed(
                    Problem(place_of(path, event), f"nesting is deeper than {MAX_DEPTH} levels")
                )
            kind = (
                yaml.SequenceNode
                if isinstance(event, yaml.SequenceStartEvent)
                else yaml.MappingNode
            )
            tag = event.tag
            if tag is None or tag == "!":
                tag = _RESOLVER.resolve(kind, None, event.implicit)
            collection = kind(tag, [], _any(event.start_mark), None, flow_style=event.flow_style)
            add(collection)
            stack.append((collection, [], event.anchor))
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            collection, _, anchor = stack.pop()
            collection.end_mark = event.end_mark
            if isinstance(collection, yaml.MappingNode):
                _merge(path, collection)
            if anchor is not None:
                anchors[anchor] = collection
    return root


MERGE_TAG = "tag:yaml.org,2002:merge"


def _merge(path: Path, mapping: yaml.MappingNode) -> None:
    """Apply the mapping's merge keys (``<<: *shared`` or ``<<: [*a, *b]``) in place.

    The mapping's own keys win, then earlier merged mappings over later ones (YAML 1.1).
    Merged entries keep their own nodes, so a problem in one is reported where it is written.
    """
    if not any(key.tag == MERGE_TAG for key, _ in mapping.value):
        return
    own = [(key, value) for key, value in mapping.value if key.tag != MERGE_TAG]
    seen = {_key_identity(key) for key, _ in own}
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for key, value in mapping.value:
        if key.tag != MERGE_TAG:
            continue
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise LoadFailed(
                    Problem(
                        place_of(path, source),
                        "a merge key '<<' takes a mapping (e.g. *shared) or a list of them",
                    )
                )
            for entry_key, entry_value in source.value:
                identity = _key_identity(entry_key)
                if identity not in seen:
                    seen.add(identity)
                    merged.append((entry_key, entry_value))
    mapping.value = merged + own


def _key_identity(node: yaml.Node) -> object:
    """What makes two mapping keys the same key (scalars by tag and value)."""
    if isinstance(node, yaml.ScalarNode):
        return (node.tag, node.value)
    return id(node)


def _any(value: object) -> Any:
    """libyaml's marks are a different class than PyYAML's stubs expect; same attributes."""
    return value


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
