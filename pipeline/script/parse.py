"""From composed YAML to the script model, reporting every problem with its place."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import Place, Problem
from pipeline.core.fileio import display_path
from pipeline.core.units import parse_duration
from pipeline.script import text as textprep
from pipeline.script.declared import GAIN, SETTING, Seconds, Text, Value, keys_under
from pipeline.script.load import Document, LoadFailed, load_document
from pipeline.script.model import (
    Background,
    BreathCues,
    BreatheStep,
    PauseStep,
    SayStep,
    Script,
    SectionStep,
    SoundStep,
    Step,
    Voice,
)
from pipeline.script.nodes import Reader, describe, is_null, items, scalar

SCRIPT_KEYS = (
    "id",
    "title",
    "description",
    "author",
    "language",
    "category",
    "tags",
    "duration",
    "voice",
    "background",
    "pauses",
    "steps",
)
VOICE_KEYS = keys_under("voice")
BACKGROUND_KEYS = keys_under("background")
STEP_KINDS = ("say", "sound", "pause", "breathe", "section", "include")
SAY_KEYS = ("text", "voice")
SOUND_KEYS = ("asset", "gain", "wait")
BREATHE_KEYS = ("pattern", "cycles", "cues")
CUES_KEYS = ("in", "hold", "out")
PRESETS: dict[str, tuple[float, ...]] = {
    "box": (4.0, 4.0, 4.0, 4.0),
    "relax": (4.0, 7.0, 8.0),
    "coherent": (5.5, 0.0, 5.5),
}
DEFAULT_CYCLES = 4

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
MAX_PAUSE_S = 3600.0
MAX_TARGET_S = 6 * 3600.0
MAX_PHASE_S = 60.0
MAX_CYCLES = 100
WAIT = Seconds(0.0, MAX_PAUSE_S, "length (s)")
"""How far a sound step advances the timeline."""


def is_partial(path: Path) -> bool:
    """Files or folders whose name starts with ``_`` are partials, never built alone."""
    return any(part.startswith("_") for part in path.parts[-4:] if part not in (".", ".."))


def read_script(path: Path, root: Path, problems: list[Problem]) -> Script | None:
    """The script as far as it can be read, problems appended: a value in error is left out
    (a step) or at its default. None when the file is not a YAML mapping at all.
    """
    shown = display_path(path)
    try:
        document = load_document(shown)
    except LoadFailed as failure:
        problems.append(failure.problem)
        return None
    return _ScriptParser(document, root.resolve(), problems).script()


def parse_partial(path: Path, root: Path, problems: list[Problem]) -> None:
    """Check a partial (a ``steps:``-only file) on its own; problems are appended."""
    shown = display_path(path)
    try:
        document = load_document(shown)
    except LoadFailed as failure:
        problems.append(failure.problem)
        return
    parser = _ScriptParser(document, root.resolve(), problems)
    parser.partial_steps()


class _ScriptParser:
    def __init__(self, document: Document, root: Path, problems: list[Problem]) -> None:
        self.document = document
        self.root = root
        self.problems = problems
        self.reader = Reader(document.path, problems)
        self.includes: list[Path] = []

    def script(self) -> Script | None:
        path = self.document.path
        node = self.document.root
        if node is None or is_null(node):
            self.problems.append(
                Problem(Place(path, 1, 1), "the file is empty; a script needs 'title' and 'steps'")
            )
            return None
        entries = self.reader.mapping(node, "", SCRIPT_KEYS)
        if entries is None:
            return None
        for required in ("title", "steps"):
            if required not in entries:
                self.reader.error(node, required, f"missing required key {required!r}")
        values = dict(items(entries))
        script_id = path.stem
        if "id" in values:
            script_id = self.reader.text(values["id"], "id") or script_id
            if not ID_PATTERN.match(script_id):
                self.reader.error(
                    values["id"],
                    "id",
                    f"ids use lowercase letters, digits and dashes, got {script_id!r}",
                )
        elif not ID_PATTERN.match(script_id):
            self.reader.error(
                node, "id", f"the file name {path.stem!r} is not a valid id; set 'id:'"
            )
        title = self.reader.text(values["title"], "title") if "title" in values else None
        steps = self._top_steps(values["steps"]) if "steps" in values else ()
        script = Script(
            path=path,
            id=script_id,
            id_place=self.reader.place(values["id"], "id") if "id" in values else None,
            title=title or "",
            description=self._optional_text(values, "description"),
            author=self._optional_text(values, "author"),
            language=self._language(values["language"], "language")
            if "language" in values
            else None,
            category=self._optional_text(values, "category"),
            tags=self._tags(values["tags"]) if "tags" in values else (),
            duration_s=self._target(values["duration"]) if "duration" in values else None,
            duration_place=(
                self.reader.place(values["duration"], "duration") if "duration" in values else None
            ),
            voice=self.voice(self.reader, values["voice"], "voice")
            if "voice" in values
            else Voice(),
            voice_place=self.reader.place(values["voice"], "voice") if "voice" in values else None,
            background=self._background(values["background"]) if "background" in values else None,
            background_off="background" in values and is_null(values["background"]),
            **(self._settings(self.reader, values["pauses"], "pauses", "pauses") or {}
               if "pauses" in values else {}),
            steps=tuple(steps),
            includes=tuple(self.includes),
        )
        return script

    def partial_steps(self) -> list[Step]:
        """The steps of this document read as a partial."""
        return self._partial_steps(self.document, [self.document.path.resolve()], ())

    def _partial_steps(
        self, document: Document, chain: list[Path], included_from: tuple[Place, ...]
    ) -> list[Step]:
        """Steps of a partial document: a mapping with only a ``steps:`` list.

        ``included_from``: the include steps that led here, innermost first; every problem
        found in the partial carries them, so that it names the script the user gave.
        """
        reader = Reader(document.path, self.problems, included_from)
        root = document.root
        if root is None or is_null(root):
            self.problems.append(
                Problem(
                    Place(document.path, 1, 1, included_from=included_from),
                    "a partial needs a 'steps:' list",
                )
            )
            return []
        entries = reader.mapping(root, "", ("steps",))
        if entries is None:
            return []
        if "steps" not in entries:
            reader.error(root, "steps", "a partial needs a 'steps:' list")
            return []
        return self.steps(reader, entries["steps"][1], "steps", chain)

    def _optional_text(self, values: dict[str, yaml.Node], key: str) -> str:
        if key not in values or is_null(values[key]):
            return ""
        return (self.reader.text(values[key], key, allow_empty=True) or "").strip()

    def _language(self, node: yaml.Node, key_path: str) -> str | None:
        return read_setting(self.reader, node, key_path, SETTING["language"].value)  # type: ignore[no-any-return]

    def _tags(self, node: yaml.Node) -> tuple[str, ...]:
        tags: list[str] = []
        for index, item in enumerate(self.reader.sequence(node, "tags") or []):
            tag = self.reader.text(item, f"tags[{index}]")
            if tag is not None:
                tags.append(tag)
        return tuple(tags)

    def _target(self, node: yaml.Node) -> float | None:
        seconds = self.reader.convert(node, "duration", parse_duration)
        return self.reader.in_range(node, "duration", seconds, 1.0, MAX_TARGET_S, "duration (s)")

    def voice(self, reader: Reader, node: yaml.Node, key_path: str) -> Voice:
        values = self._settings(reader, node, key_path, "voice")
        return Voice(**values) if values is not None else Voice()

    def _background(self, node: yaml.Node) -> Background | None:
        reader = self.reader
        if is_null(node):
            return None
        if isinstance(node, yaml.ScalarNode):
            asset = reader.text(node, "background")
            return Background(asset, place=reader.place(node, "background")) if asset else None
        nodes = reader.values(node, "background", BACKGROUND_KEYS, "asset")
        values = self._settings(reader, node, "background", "background")
        if nodes is None or values is None or values.get("asset") is None:
            return None
        return Background(**values, place=reader.place(nodes["asset"], "background.asset"))

    def _settings(
        self, reader: Reader, node: yaml.Node, key_path: str, block: str
    ) -> dict[str, Any] | None:
        """A block of script settings (``voice``, ``background``, ``pauses``) by model field;
        None (reported) if it is not a mapping. A value in error is left out."""
        entries = reader.mapping(node, key_path, keys_under(block))
        if entries is None:
            return None
        values: dict[str, Any] = {}
        for key, value_node in items(entries):
            setting = SETTING[f"{block}.{key}"]
            value = read_setting(reader, value_node, f"{key_path}.{key}", setting.value)
            if value is not None:
                values[setting.field.rpartition(".")[2]] = value
        return values

    def _top_steps(self, node: yaml.Node) -> list[Step]:
        steps = self.steps(self.reader, node, "steps", [self.document.path.resolve()])
        nodes = self.reader.sequence(node, "steps") if isinstance(node, yaml.SequenceNode) else None
        if nodes == []:
            self.reader.error(node, "steps", "a script needs at least one step")
        return steps

    def steps(
        self, reader: Reader, node: yaml.Node, key_path: str, chain: list[Path]
    ) -> list[Step]:
        nodes = reader.sequence(node, key_path)
        steps: list[Step] = []
        for index, item in enumerate(nodes or []):
            steps.extend(self._step(reader, item, f"{key_path}[{index}]", chain))
        return steps

    def _step(
        self, reader: Reader, node: yaml.Node, key_path: str, chain: list[Path]
    ) -> list[Step]:
        if not isinstance(node, yaml.MappingNode):
            reader.error(node, key_path, f"expected a step like 'say: ...', got {describe(node)}")
            return []
        entries = reader.mapping(node, key_path, STEP_KINDS)
        if not entries:
            if not node.value:
                reader.error(
                    node, key_path, f"empty step; expected one of: {', '.join(STEP_KINDS)}"
                )
            return []
        if len(entries) > 1:
            reader.error(node, key_path, f"one step per list item, found {' and '.join(entries)}")
            return []
        kind, (_, value) = next(iter(entries.items()))
        step_path = f"{key_path}.{kind}"
        place = reader.place(value, step_path)
        if kind == "include":
            return self._include(reader, value, step_path, chain)
        step: Step | None
        if kind == "say":
            step = self._say(reader, value, step_path, place)
        elif kind == "sound":
            step = self._sound(reader, value, step_path, place)
        elif kind == "pause":
            step = self._pause(reader, value, step_path, place)
        elif kind == "breathe":
            step = self._breathe(reader, value, step_path, place)
        else:
            title = reader.text(value, step_path)
            step = SectionStep(title.strip(), place) if title else None
        return [step] if step else []

    def _say(self, reader: Reader, node: yaml.Node, key_path: str, place: Place) -> SayStep | None:
        voice = None
        text_node = node
        text_path = key_path
        if isinstance(node, yaml.MappingNode):
            values = reader.values(node, key_path, SAY_KEYS, "text")
            if values is None:
                return None
            text_node, text_path = values["text"], f"{key_path}.text"
            if "voice" in values:
                voice = self.voice(reader, values["voice"], f"{key_path}.voice")
        text = reader.text(text_node, text_path)
        if text is None:
            return None
        issues = textprep.review_say(text)
        for issue in issues:
            report = reader.error if issue.severity == "error" else reader.warn
            report(text_node, text_path, issue.message)
        if any(issue.severity == "error" for issue in issues):
            return None
        return SayStep(text, voice, place)

    def _sound(
        self, reader: Reader, node: yaml.Node, key_path: str, place: Place
    ) -> SoundStep | None:
        if isinstance(node, yaml.ScalarNode):
            asset = reader.text(node, key_path)
            return SoundStep(asset, 0.0, None, place) if asset else None
        values = reader.values(node, key_path, SOUND_KEYS, "asset")
        if values is None:
            return None
        asset = reader.text(values["asset"], f"{key_path}.asset")
        gain = None
        if "gain" in values:
            gain = read_setting(reader, values["gain"], f"{key_path}.gain", GAIN)
        wait = None
        if "wait" in values:
            wait = read_setting(reader, values["wait"], f"{key_path}.wait", WAIT)
        if (
            asset is None
            or ("gain" in values and gain is None)
            or ("wait" in values and wait is None)
        ):
            return None
        return SoundStep(
            asset, gain or 0.0, wait, reader.place(values["asset"], f"{key_path}.asset")
        )

    def _pause(
        self, reader: Reader, node: yaml.Node, key_path: str, place: Place
    ) -> PauseStep | None:
        flexible = False

        def parse(value: object) -> float:
            nonlocal flexible
            if isinstance(value, str) and value.strip().endswith("+"):
                flexible = True
                try:
                    return parse_duration(value.strip()[:-1])
                except ValueError:
                    raise ValueError(
                        f"expected a duration like '30s' or '30s+', got {value!r}"
                    ) from None
            return parse_duration(value)

        seconds = reader.convert(node, key_path, parse)
        seconds = reader.in_range(node, key_path, seconds, 0.0, MAX_PAUSE_S, "a pause (s)")
        if seconds is None:
            return None
        if seconds == 0:
            reader.error(node, key_path, "a pause must be longer than 0 s")
            return None
        return PauseStep(seconds, flexible, place)

    def _breathe(
        self, reader: Reader, node: yaml.Node, key_path: str, place: Place
    ) -> BreatheStep | None:
        values = reader.values(node, key_path, BREATHE_KEYS, "pattern")
        if values is None:
            return None
        phases = self._pattern(reader, values["pattern"], f"{key_path}.pattern")
        cycles: int | None = DEFAULT_CYCLES
        if "cycles" in values:
            cycles_node = values["cycles"]
            value = scalar(cycles_node) if isinstance(cycles_node, yaml.ScalarNode) else None
            if not isinstance(value, int) or isinstance(value, bool):
                reader.error(
                    cycles_node,
                    f"{key_path}.cycles",
                    f"expected a whole number, got {describe(cycles_node)}",
                )
                cycles = None
            elif not 1 <= value <= MAX_CYCLES:
                reader.error(
                    cycles_node,
                    f"{key_path}.cycles",
                    f"cycles must be between 1 and {MAX_CYCLES}, got {value}",
                )
                cycles = None
            else:
                cycles = value
        cues: BreathCues | None = BreathCues()
        cues_ok = True
        if "cues" in values:
            cues_ok, cues = self._cues(reader, values["cues"], f"{key_path}.cues")
        if phases is None or cycles is None or not cues_ok:
            return None
        return BreatheStep(phases, cycles, cues, place)

    def _pattern(self, reader: Reader, node: yaml.Node, key_path: str) -> tuple[float, ...] | None:
        raw: list[object]
        if isinstance(node, yaml.SequenceNode):
            raw = [
                scalar(item) if isinstance(item, yaml.ScalarNode) else None for item in node.value
            ]
        elif isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
            if node.value in PRESETS:
                return PRESETS[node.value]
            raw = list(node.value.split("-"))
        else:
            raw = []
        try:
            phases = tuple(parse_duration(value) for value in raw)
        except ValueError:
            phases = ()
        if len(phases) not in (3, 4):
            reader.error(
                node,
                key_path,
                f"expected IN-HOLD-OUT or IN-HOLD-OUT-HOLD in seconds (like 4-7-8) or a preset "
                f"({', '.join(PRESETS)}), got {describe(node)}",
            )
            return None
        names = ("in", "hold", "out", "hold")
        for name, seconds in zip(names, phases, strict=False):
            if name in ("in", "out") and seconds <= 0:
                reader.error(node, key_path, f"the {name.upper()} phase must be longer than 0 s")
                return None
            if seconds > MAX_PHASE_S:
                reader.error(
                    node,
                    key_path,
                    f"a breathing phase of {seconds:g} s is too long (max {MAX_PHASE_S:g} s)",
                )
                return None
        return phases

    def _cues(
        self, reader: Reader, node: yaml.Node, key_path: str
    ) -> tuple[bool, BreathCues | None]:
        """Whether the cues are valid, and the cue words (None: silent phases)."""
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
            return True, (BreathCues() if scalar(node) else None)
        entries = reader.mapping(node, key_path, CUES_KEYS)
        if entries is None:
            return False, None
        words = {key: reader.text(value, f"{key_path}.{key}") for key, value in items(entries)}
        if any(word is None for word in words.values()):
            return False, None
        default = BreathCues()
        cues = BreathCues(
            inhale=words.get("in") or default.inhale,
            hold=words.get("hold") or default.hold,
            exhale=words.get("out") or default.exhale,
        )
        return True, cues

    def _include(
        self, reader: Reader, node: yaml.Node, key_path: str, chain: list[Path]
    ) -> list[Step]:
        relative = reader.text(node, key_path)
        if relative is None:
            return []
        if Path(relative).is_absolute() or relative.startswith("~"):
            reader.error(
                node, key_path, f"include paths are relative to this file, got {relative!r}"
            )
            return []
        target = (chain[-1].parent / relative).resolve()
        if not target.is_relative_to(self.root):
            reader.error(node, key_path, f"{relative!r} leaves the project folder")
            return []
        if target in chain:
            cycle = " -> ".join(
                str(display_path(p)) for p in [*chain[chain.index(target) :], target]
            )
            reader.error(node, key_path, f"include cycle: {cycle}")
            return []
        if not target.is_file():
            what = "is a folder, not a file" if target.is_dir() else "does not exist"
            reader.error(node, key_path, f"{relative!r} {what}")
            return []
        self.includes.append(target)
        included_from = reader.place(node, key_path).including()
        try:
            document = load_document(display_path(target))
        except LoadFailed as failure:
            problem = failure.problem
            place = replace(problem.place, included_from=included_from)
            self.problems.append(replace(problem, place=place))
            return []
        return self._partial_steps(document, [*chain, target], included_from)


def read_setting(reader: Reader, node: yaml.Node, key_path: str, kind: Value) -> Any:
    """A script's value of a declared kind, range checked; None (reported) if invalid."""
    if isinstance(kind, Text):
        text = reader.text(node, key_path)
        if text is None:
            return None
        try:
            return kind.convert(text)
        except ValueError as error:
            reader.error(node, key_path, str(error))
            return None
    value = reader.convert(node, key_path, kind.convert)
    if kind.low is None or kind.high is None:
        return value
    return reader.in_range(node, key_path, value, kind.low, kind.high, kind.what)
