"""Reading scripts into the model: every form of docs/scripts.md, and located problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.errors import Problem
from pipeline.script.load import LoadFailed, compose_text
from pipeline.script.model import (
    BreathCues,
    BreatheStep,
    PauseStep,
    SayStep,
    Script,
    SectionStep,
    SoundStep,
    Voice,
)
from pipeline.script.parse import is_partial, parse_partial, read_script


def parse(tmp_path: Path, text: str, name: str = "s.yaml") -> tuple[Script | None, list[Problem]]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    problems: list[Problem] = []
    script = read_script(path, tmp_path, problems)
    return (None if any(p.severity == "error" for p in problems) else script), problems


def messages(problems: list[Problem]) -> list[str]:
    return [f"{p.place.line}:{p.place.column} {p.place.key_path}: {p.message}" for p in problems]


FULL = """\
id: calm-breathing
title: Calm Breathing
description: A five-minute practice.
author: Smart Meditation team
language: en
category: anxiety
tags: [breathing, beginner]
duration: 5m
voice: {engine: espeak, name: en-us, tld: co.uk, rate: 0.9}
background: {asset: rain, gain: -18dB, fade_in: 5s, fade_out: 10s, duck: 10dB}
pauses: {sentence: 0.8s, paragraph: 2s}
steps:
  - section: Arriving
  - sound: bowl
  - sound: {asset: chime, gain: -3dB, wait: 4s}
  - say: |
      Welcome. Find a comfortable position. [pause 3s]
      Let your eyes close.
  - say: {text: Notice your breath., voice: {rate: 0.8}}
  - pause: 10s
  - pause: 30s+
  - breathe: {pattern: 4-7-8, cycles: 4}
  - breathe: {pattern: box, cycles: 2, cues: false}
  - breathe: {pattern: coherent, cues: {in: In, out: Out}}
  - breathe: {pattern: [4, 2, 6, 1], cycles: 1}
"""


def test_full_script(tmp_path: Path) -> None:
    script, problems = parse(tmp_path, FULL)
    assert problems == []
    assert script is not None
    assert script.id == "calm-breathing" and script.title == "Calm Breathing"
    assert script.tags == ("breathing", "beginner") and script.duration_s == 300.0
    assert script.voice == Voice("espeak", "en-us", None, "co.uk", 0.9)
    assert script.background is not None
    assert (script.background.asset, script.background.gain_db) == ("rain", -18.0)
    assert (script.background.fade_in_s, script.background.fade_out_s) == (5.0, 10.0)
    assert script.background.duck_db == 10.0
    assert (script.sentence_pause_s, script.paragraph_pause_s) == (0.8, 2.0)
    steps = script.steps
    assert isinstance(steps[0], SectionStep) and steps[0].title == "Arriving"
    assert isinstance(steps[1], SoundStep) and (
        steps[1].asset,
        steps[1].gain_db,
        steps[1].wait_s,
    ) == ("bowl", 0.0, None)
    assert isinstance(steps[2], SoundStep) and (steps[2].gain_db, steps[2].wait_s) == (-3.0, 4.0)
    assert (
        isinstance(steps[3], SayStep) and "[pause 3s]" in steps[3].text and steps[3].voice is None
    )
    assert isinstance(steps[4], SayStep) and steps[4].voice == Voice(rate=0.8)
    assert steps[5] == PauseStep(10.0, False, steps[5].place)
    assert isinstance(steps[6], PauseStep) and steps[6].flexible and steps[6].length_s == 30.0
    assert isinstance(steps[7], BreatheStep) and steps[7].phases_s == (4.0, 7.0, 8.0)
    assert steps[7].cycles == 4 and steps[7].cues == BreathCues()
    assert (
        isinstance(steps[8], BreatheStep)
        and steps[8].phases_s == (4.0,) * 4
        and steps[8].cues is None
    )
    assert isinstance(steps[9], BreatheStep) and steps[9].phases_s == (5.5, 0.0, 5.5)
    assert steps[9].cues == BreathCues("In", "Hold", "Out") and steps[9].cycles == 4
    assert isinstance(steps[10], BreatheStep) and steps[10].phases_s == (4.0, 2.0, 6.0, 1.0)
    assert (steps[3].place.line, steps[3].place.column, steps[3].place.key_path) == (
        16,
        10,
        "steps[3].say",
    )


def test_id_defaults_to_file_stem(tmp_path: Path) -> None:
    script, problems = parse(tmp_path, "title: T\nsteps:\n  - say: Hi.\n", "my-session.yaml")
    assert problems == [] and script is not None and script.id == "my-session"


def test_bad_file_stem_needs_an_id(tmp_path: Path) -> None:
    _, problems = parse(tmp_path, "title: T\nsteps:\n  - say: Hi.\n", "My Session.yaml")
    assert messages(problems) == ["1:1 id: the file name 'My Session' is not a valid id; set 'id:'"]


def test_background_short_form_and_null(tmp_path: Path) -> None:
    script, _ = parse(tmp_path, "title: T\nbackground: ocean\nsteps:\n  - say: Hi.\n")
    assert (
        script is not None and script.background is not None and script.background.asset == "ocean"
    )
    script, _ = parse(tmp_path, "title: T\nbackground: null\nsteps:\n  - say: Hi.\n")
    assert script is not None and script.background is None and script.background_off


def test_every_problem_is_reported_with_its_place(tmp_path: Path) -> None:
    _, problems = parse(
        tmp_path,
        "title: T\nsteps:\n  - pause: ten\n  - breathe: {pattern: 4-4}\n  - say: {txt: Hi}\n",
    )
    assert messages(problems) == [
        "3:12 steps[0].pause: expected a duration like '30s', got 'ten'",
        "4:24 steps[1].breathe.pattern: expected IN-HOLD-OUT or IN-HOLD-OUT-HOLD in seconds "
        "(like 4-7-8) or a preset (box, relax, coherent), got '4-4'",
        "5:11 steps[2].say.txt: unknown key 'txt'; did you mean 'text'?",
        "5:10 steps[2].say.text: missing required key 'text'",
    ]


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    _, problems = parse(tmp_path, "title: A\ntitle: B\nsteps:\n  - say: Hi.\n")
    assert messages(problems) == ["2:1 title: duplicate key (the first one is kept)"]


def test_include_expands_steps_and_records_files(tmp_path: Path) -> None:
    (tmp_path / "_parts").mkdir()
    (tmp_path / "_parts" / "outro.yaml").write_text(
        "steps:\n  - say: Bye.\n  - include: more.yaml\n"
    )
    (tmp_path / "_parts" / "more.yaml").write_text("steps:\n  - pause: 2s\n")
    script, problems = parse(
        tmp_path, "title: T\nsteps:\n  - say: Hi.\n  - include: _parts/outro.yaml\n"
    )
    assert problems == [] and script is not None
    assert [type(s).__name__ for s in script.steps] == ["SayStep", "SayStep", "PauseStep"]
    assert script.steps[1].place.path.name == "outro.yaml"
    assert [p.name for p in script.includes] == ["outro.yaml", "more.yaml"]


def test_included_file_needs_steps_only(tmp_path: Path) -> None:
    (tmp_path / "_bad.yaml").write_text("title: no\nsteps: []\n")
    _, problems = parse(tmp_path, "title: T\nsteps:\n  - include: _bad.yaml\n")
    assert messages(problems) == ["1:1 title: unknown key 'title'; expected one of: steps"]


def test_partials() -> None:
    assert is_partial(Path("scripts/_snippets/closing.yaml"))
    assert is_partial(Path("scripts/_draft.yaml"))
    assert not is_partial(Path("scripts/sleep/body-scan.yaml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!python/object/apply:os.system [ls]", "unsupported YAML tag"),
        ("a: !custom 3", "unsupported YAML tag '!custom'"),
        ("a: [1, 2", "invalid YAML"),
        ("x: " + "[" * 60 + "]" * 60, "nesting is deeper than 40 levels"),
    ],
)
def test_hostile_yaml(text: str, message: str) -> None:
    with pytest.raises(LoadFailed, match=message.replace("[", r"\[")):
        compose_text(Path("x.yaml"), text)


def test_alias_expansion_is_bounded() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for index in range(1, 7):
        previous, name = chr(ord("a") + index - 1), chr(ord("a") + index)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 10) + "]")
    with pytest.raises(LoadFailed, match="expands to more than 100000 values"):
        compose_text(Path("bomb.yaml"), "\n".join(lines))


def test_small_aliases_are_fine() -> None:
    document = compose_text(Path("ok.yaml"), "a: &v 3\nb: *v\n")
    assert document.root is not None


@pytest.mark.parametrize(
    "text",
    [
        "x:\n" + "".join("  " * depth + "- \n" for depth in range(5000)),
        "x:\n" + "".join("  " * depth + "a:\n" for depth in range(5000)),
        "x: " + "{a: " * 5000 + "1" + "}" * 5000,
        "x: " + "[" * 100_000 + "]" * 100_000,
    ],
    ids=["block-sequences", "block-mappings", "flow-mappings", "flow-sequences"],
)
def test_deep_block_and_flow_nesting_is_refused(text: str) -> None:
    with pytest.raises(LoadFailed, match="nesting is deeper than 40 levels"):
        compose_text(Path("deep.yaml"), text)


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(LoadFailed, match="undefined alias 'a'"):
        compose_text(Path("loop.yaml"), "a: &a [1, *a]\n")


def test_several_documents_are_refused() -> None:
    with pytest.raises(LoadFailed, match="expected one YAML document"):
        compose_text(Path("two.yaml"), "title: A\n---\ntitle: B\n")


def test_bad_flexible_pause_and_folder_include_are_named(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _, problems = parse(
        tmp_path, "title: T\nsteps:\n  - pause: 30s++\n  - include: sub\n  - include: gone.yaml\n"
    )
    assert messages(problems) == [
        "3:12 steps[0].pause: expected a duration like '30s' or '30s+', got '30s++'",
        "4:14 steps[1].include: 'sub' is a folder, not a file",
        "5:14 steps[2].include: 'gone.yaml' does not exist",
    ]


def test_a_script_with_errors_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    text = "title: T\npauses: {sentence: -3s}\nsteps:\n  - sound: bowel\n  - pause: ten\n"
    script, problems = parse(tmp_path, text)
    assert script is None and len(problems) == 2
    draft_problems: list[Problem] = []
    draft = read_script(tmp_path / "s.yaml", tmp_path, draft_problems)
    assert draft is not None and messages(draft_problems) == messages(problems)
    assert [type(step).__name__ for step in draft.steps] == ["SoundStep"]  # the bad pause is out
    assert draft.title == "T" and draft.sentence_pause_s is None


MERGED = """\
title: T
steps:
  - say: {text: One., voice: &calm {name: en-us, rate: 0.8}}
  - say:
      text: Two.
      voice:
        <<: *calm
        rate: 0.7
  - say: {text: Three., voice: {<<: [{rate: 1.2, tld: ie}, *calm]}}
"""


def test_merge_keys_share_blocks_and_own_keys_win(tmp_path: Path) -> None:
    script, problems = parse(tmp_path, MERGED)
    assert problems == [] and script is not None
    voices = [step.voice for step in script.steps if isinstance(step, SayStep)]
    assert voices[1] == Voice(name="en-us", rate=0.7)
    assert voices[2] == Voice(name="en-us", rate=1.2, tld="ie")  # the earlier merge wins


def test_an_error_inside_a_merged_mapping_is_reported_where_it_is_written(
    tmp_path: Path,
) -> None:
    text = MERGED.replace("rate: 0.8}", "rate: fast, speed: 3}").replace("rate: 1.2, ", "")
    _, problems = parse(tmp_path, text)
    assert {m.split(" ", 1)[0] for m in messages(problems)} == {"3:56", "3:62"}
    assert any("steps[1].say.voice.rate" in m for m in messages(problems)) is False
    assert any(
        m.startswith("3:62 steps[1].say.voice.speed: unknown key") for m in messages(problems)
    )


def test_a_merge_key_needs_mappings() -> None:
    with pytest.raises(LoadFailed, match="merge key '<<' takes a mapping") as caught:
        compose_text(Path("m.yaml"), "voice:\n  <<: 3\n")
    assert (caught.value.problem.place.line, caught.value.problem.place.column) == (2, 7)


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        (
            "title: T\nsteps:\n  - say: Note: breathe\n",
            (3, 14),
            "probable cause: ': ' inside unquoted text starts a new key; "
            'quote the text: say: "Note: breathe"',
        ),
        (
            'title: T\nsteps:\n  - say: A "calm": mind\n',
            (3, 18),
            r'quote the text: say: "A \"calm\": mind"',
        ),
        ("title: T\nsteps:\n\t- say: Hi\n", (3, 1), "probable cause: a tab"),
        ("title: T\nsteps:\n  -\tpause: 3s\n", (3, 4), "replace it with spaces"),
        ("title: T\nsteps:\n  - say: |\n\tHi there\n", (4, 1), "probable cause: a tab"),
    ],
    ids=["colon", "colon-with-quotes", "tab-indent", "tab-after-dash", "tab-in-block"],
)
def test_yaml_errors_from_a_colon_or_a_tab_suggest_the_fix(
    text: str, where: tuple[int, int], hint: str
) -> None:
    with pytest.raises(LoadFailed) as caught:
        compose_text(Path("s.yaml"), text)
    problem = caught.value.problem
    assert (problem.place.line, problem.place.column) == where
    assert problem.message.startswith("invalid YAML: ") and hint in problem.message


def test_a_problem_in_an_included_file_carries_the_include_steps_that_led_there(
    tmp_path: Path,
) -> None:
    (tmp_path / "_b.yaml").write_text("steps:\n  - say: B.\n  - include: _c.yaml\n")
    (tmp_path / "_c.yaml").write_text("steps:\n  - pause: ten\n")
    _, problems = parse(tmp_path, "title: T\nsteps:\n  - say: A.\n  - include: _b.yaml\n")
    (problem,) = problems
    assert (problem.place.path.name, problem.place.line, problem.place.column) == ("_c.yaml", 2, 12)
    chain = [(p.path.name, p.line, p.column, p.key_path) for p in problem.place.included_from]
    assert chain == [("_b.yaml", 3, 14, "steps[1].include"), ("s.yaml", 4, 14, "steps[1].include")]
    assert problem.format().splitlines()[1:] == [
        f"{tmp_path / '_b.yaml'}:3:14: note: included from here",
        f"{tmp_path / 's.yaml'}:4:14: note: included from here",
    ]


def test_a_file_included_twice_gives_its_problem_once_per_include_step(tmp_path: Path) -> None:
    (tmp_path / "_end.yaml").write_text("steps:\n  - pause: 0s\n")
    _, problems = parse(
        tmp_path, "title: T\nsteps:\n  - include: _end.yaml\n  - say: A.\n  - include: _end.yaml\n"
    )
    assert [[p.line for p in problem.place.included_from] for problem in problems] == [[3], [5]]


@pytest.mark.parametrize(
    ("partial", "message"),
    [
        ("steps: [\n", "invalid YAML"),
        ("", "a partial needs a 'steps:' list"),
        ("title: no\n", "unknown key 'title'"),
        ("steps:\n  - include: _x.yaml\n", "include cycle"),
    ],
)
def test_an_included_file_that_cannot_be_used_names_its_include_step(
    tmp_path: Path, partial: str, message: str
) -> None:
    (tmp_path / "_x.yaml").write_text(partial)
    _, problems = parse(tmp_path, "title: T\nsteps:\n  - include: _x.yaml\n")
    assert [p.message for p in problems if message in p.message] != []
    for problem in problems:
        assert problem.place.path.name == "_x.yaml"
        assert problem.place.included_from[-1].path.name == "s.yaml"


def test_a_partial_read_alone_has_no_include_chain_but_its_own_includes(tmp_path: Path) -> None:
    (tmp_path / "_c.yaml").write_text("steps:\n  - pause: ten\n")
    path = tmp_path / "_b.yaml"
    path.write_text("steps:\n  - pause: -1s\n  - include: _c.yaml\n")
    problems: list[Problem] = []
    parse_partial(path, tmp_path, problems)
    assert [
        (p.place.path.name, [s.path.name for s in p.place.included_from]) for p in problems
    ] == [
        ("_b.yaml", []),
        ("_c.yaml", ["_b.yaml"]),
    ]
