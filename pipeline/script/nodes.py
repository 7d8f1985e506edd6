"""Typed reading of YAML nodes that records located problems instead of raising."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import yaml
from yaml.constructor import SafeConstructor

from pipeline.core.errors import ConfigError, Place, Problem
from pipeline.core.fileio import display_path
from pipeline.script.load import LoadFailed, load_document, place_of

T = TypeVar("T")

_TAG_NAMES = {
    "tag:yaml.org,2002:str": "a string",
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "true/false",
    "tag:yaml.org,2002:null": "nothing (null)",
    "tag:yaml.org,2002:seq": "a list",
    "tag:yaml.org,2002:map": "a mapping",
}
_constructor = SafeConstructor()


def describe(node: yaml.Node) -> str:
    """What a node is, for messages: ``a list``, ``'ten'``."""
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        return repr(node.value) if len(node.value) <= 40 else repr(node.value[:37] + "...")
    return _TAG_NAMES.get(node.tag, node.tag)


def scalar(node: yaml.Node) -> object:
    """The Python value of a scalar node (safe tags only; the loader checked them)."""
    return _constructor.construct_object(node, deep=True)


def is_null(node: yaml.Node) -> bool:
    """True for ``~``, ``null`` or an empty value."""
    return node.tag == "tag:yaml.org,2002:null"


def read_config_file(path: Path, read: Callable[[Reader, yaml.Node | None], T]) -> T:
    """Load a YAML config file (``meditate.yaml``, an asset catalog) and read it with ``read``;
    every problem of it is reported at once, as one ConfigError.
    """
    shown = display_path(path)
    try:
        document = load_document(shown)
    except LoadFailed as failure:
        raise ConfigError(failure.problem.format()) from None
    problems: list[Problem] = []
    result = read(Reader(shown, problems), document.root)
    if problems:
        raise ConfigError("\n".join(problem.format() for problem in problems))
    return result


class Reader:
    """Reads nodes of one file into values, collecting every problem on the way."""

    def __init__(
        self, path: Path, problems: list[Problem], included_from: tuple[Place, ...] = ()
    ) -> None:
        self.path = path
        self.problems = problems
        self.included_from = included_from

    def place(self, node: yaml.Node, key_path: str) -> Place:
        """Where a node is, with the include steps that led to its file."""
        place = place_of(self.path, node, key_path)
        return replace(place, included_from=self.included_from) if self.included_from else place

    def error(self, node: yaml.Node, key_path: str, message: str) -> None:
        """Record an error at a node."""
        self.problems.append(Problem(self.place(node, key_path), message))

    def warn(self, node: yaml.Node, key_path: str, message: str) -> None:
        """Record a warning at a node."""
        self.problems.append(Problem(self.place(node, key_path), message, "warning"))

    def mapping(
        self, node: yaml.Node, key_path: str, allowed: tuple[str, ...]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        """A mapping's entries by key; unknown and duplicate keys are reported."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, key_path, f"expected a mapping, got {describe(node)}")
            return None
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(scalar(key_node)) if isinstance(key_node, yaml.ScalarNode) else ""
            sub_path = f"{key_path}.{key}" if key_path else key
            if key not in allowed:
                self.error(key_node, sub_path, unknown_key_message(key, allowed))
            elif key in entries:
                self.error(key_node, sub_path, "duplicate key (the first one is kept)")
            else:
                entries[key] = (key_node, value_node)
        return entries

    def values(
        self, node: yaml.Node, key_path: str, allowed: tuple[str, ...], required: str
    ) -> dict[str, yaml.Node] | None:
        """A mapping's value nodes by key; None (reported) if it is not a mapping or lacks
        its ``required`` key.
        """
        entries = self.mapping(node, key_path, allowed)
        if entries is None:
            return None
        values = {key: value for key, (_, value) in entries.items()}
        if required not in values:
            self.error(node, f"{key_path}.{required}", f"missing required key {required!r}")
            return None
        return values

    def sequence(self, node: yaml.Node, key_path: str) -> list[yaml.Node] | None:
        """A sequence's items, or None (reported) if the node is not a list."""
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, key_path, f"expected a list, got {describe(node)}")
            return None
        return list(node.value)

    def text(self, node: yaml.Node, key_path: str, *, allow_empty: bool = False) -> str | None:
        """A string value (numbers are not silently turned into text)."""
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            self.error(node, key_path, f"expected text, got {describe(node)}")
            return None
        if not allow_empty and not node.value.strip():
            self.error(node, key_path, "must not be empty")
            return None
        return str(node.value)

    def convert(self, node: yaml.Node, key_path: str, parse: Callable[[object], T]) -> T | None:
        """A scalar parsed by ``parse`` (which raises ValueError with the reason)."""
        if not isinstance(node, yaml.ScalarNode) or is_null(node):
            self.error(node, key_path, f"expected a value, got {describe(node)}")
            return None
        try:
            return parse(scalar(node))
        except ValueError as error:
            self.error(node, key_path, str(error))
            return None

    def in_range(
        self,
        node: yaml.Node,
        key_path: str,
        value: float | None,
        low: float,
        high: float,
        what: str,
    ) -> float | None:
        """``value`` if within [low, high], else None with an error naming the range."""
        if value is None:
            return None
        if not low <= value <= high:
            self.error(
                node, key_path, f"{what} must be between {low:g} and {high:g}, got {value:g}"
            )
            return None
        return value


def unknown_key_message(key: str, allowed: tuple[str, ...]) -> str:
    """``unknown key 'titel'; did you mean 'title'?`` or the list of valid keys."""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    return f"unknown key {key!r}; expected one of: {', '.join(allowed)}"


def items(entries: dict[str, tuple[yaml.Node, yaml.Node]]) -> Iterator[tuple[str, yaml.Node]]:
    """Key and value node of each entry."""
    for key, (_, value) in entries.items():
        yield key, value
