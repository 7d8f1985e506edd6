"""The plan as a table and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core.errors import Place
from pipeline.plan.timeline import Timeline, plan
from pipeline.plan.view import format_plan, plan_as_dict
from pipeline.project.settings import BackgroundSettings, Settings, VoiceSettings
from pipeline.script.model import (
    BreathCues,
    BreatheStep,
    PauseStep,
    SayStep,
    Script,
    SectionStep,
    SoundStep,
)

PATH = Path("x.yaml")
LONG = "This sentence is deliberately much longer than fifty characters so that the plan cuts it."


class Lengths:
    """'Welcome.' is measured; everything else is not synthesized yet."""

    def speech(self, text: str, voice: VoiceSettings) -> float | None:
        return 1.5 if text == "Welcome." else None

    def sound(self, asset: str) -> float:
        return 4.0


def at(index: int) -> Place:
    return Place(PATH, index + 1, 3, f"steps[{index}]")


def sample(duration_s: float | None = 120.0) -> Timeline:
    steps = (
        SectionStep("Arriving", at(0)),
        SoundStep("bowl", -3.0, None, at(1)),
        SayStep(f"Welcome. {LONG}", None, at(2)),
        PauseStep(30.0, True, at(3)),
        SectionStep("Breathing", at(4)),
        BreatheStep((4.0, 0.0, 4.0), 1, BreathCues(), at(5)),
        PauseStep(1 / 3, False, at(6)),
    )
    script = Script(path=PATH, id="x", title="X", steps=steps, duration_s=duration_s)
    settings = Settings(background=BackgroundSettings(asset="rain"))
    return plan(script, settings, Lengths())


def test_table_has_a_row_per_cue_with_clock_length_kind_section_text() -> None:
    text = format_plan(sample())
    lines = text.splitlines()
    assert lines[0].split() == ["start", "length", "kind", "section", "text"]
    assert lines[1].split() == ["00:01.0", "4.0", "sound", "Arriving", "bowl", "(-3", "dB)"]
    assert lines[2].split() == ["00:05.0", "1.5", "say", "Arriving", "Welcome."]
    row = lines[3].split(maxsplit=4)
    assert row[0] == "00:07.3" and row[1].startswith("~") and row[2:4] == ["say", "Arriving"]
    assert row[4].endswith("...") and len(row[4]) <= 50
    assert "pause" in lines[4] and "flexible, nominal 30 s" in lines[4]
    assert lines[5].split()[2:] == ["breathe", "Breathing", "in", "(cycle", "1):", "Breathe", "in"]
    assert lines[6].split()[2:] == [
        "breathe",
        "Breathing",
        "out",
        "(cycle",
        "1):",
        "Breathe",
        "out",
    ]
    assert lines[7].split()[:3] == ["01:57.7", "0.3", "pause"]  # ends 2 s before the end: the tail
    assert lines[8] == ""


def test_totals_give_length_target_natural_and_estimates() -> None:
    timeline = sample()
    text = format_plan(timeline)
    assert "length    02:00.0, target 02:00.0" in text
    natural = timeline.natural_length_s
    assert f"natural   {int(natural // 60):02d}:" in text
    assert "4 sentences (2 breathing cues): 3 of 4 estimated" in text
    assert "1 measured" in text
    assert "chapters  Arriving 00:00.0, Breathing" in text


def test_totals_without_target() -> None:
    text = format_plan(sample(duration_s=None))
    assert "(no target)" in text


def test_json_has_every_cue_rounded_and_round_trips() -> None:
    timeline = sample()
    data = plan_as_dict(timeline)
    assert json.loads(json.dumps(data)) == data
    assert data["length_s"] == 120.0
    assert data["target_s"] == 120.0
    assert data["natural_length_s"] == round(timeline.natural_length_s, 3)
    assert data["sentences"] == 4 and data["estimated"] == 3
    assert data["background"] == "rain"
    assert (data["lead_in_s"], data["tail_s"]) == (1.0, 2.0)
    assert data["chapters"] == [
        {"title": "Arriving", "start_s": 0.0},
        {"title": "Breathing", "start_s": round(timeline.chapters[1].start_s, 3)},
    ]
    cues = data["cues"]
    assert isinstance(cues, list)
    assert [cue["kind"] for cue in cues] == [
        "sound",
        "say",
        "say",
        "pause",
        "breathe",
        "cue",
        "breathe",
        "cue",
        "pause",
    ]
    welcome = cues[1]
    assert welcome == {
        "kind": "say",
        "start_s": 5.0,
        "length_s": 1.5,
        "text": "Welcome.",
        "section": "Arriving",
        "estimated": False,
        "place": "x.yaml:3:3",
        "voice": {
            "engine": "espeak", "name": "", "language": "en", "tld": "com", "rate": 1.0,
            "pitch": 0.0,
        },
    }
    assert cues[2]["estimated"] is True and cues[2]["text"] == LONG
    assert cues[-1]["length_s"] == 0.333
    for cue in cues:
        for key in ("start_s", "length_s"):
            assert cue[key] == round(cue[key], 3)


def test_a_pause_stretched_too_far_is_a_warning_in_the_json() -> None:
    (warning,) = plan_as_dict(sample())["warnings"]  # type: ignore[misc]
    assert warning["severity"] == "warning" and warning["key"] == "duration"
    assert "flexible pauses stretch x3.21 to last 02:00.0" in warning["message"]
    assert plan_as_dict(sample(duration_s=None))["warnings"] == []


def test_plan_logs_a_stretch_warning_at_the_duration_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pipeline.plan.checked import plan_script
    from pipeline.project.config import load_project

    (tmp_path / "meditate.yaml").write_text("cache: cache\n", encoding="utf-8")
    path = tmp_path / "hi.yaml"
    path.write_text("title: Hi\nduration: 2h\nsteps:\n  - say: Hi.\n  - pause: 5s+\n")
    with caplog.at_level("WARNING", logger="pipeline"):
        plan_script(path, load_project(tmp_path / "meditate.yaml"))
    (message,) = [record.getMessage() for record in caplog.records]
    assert message.startswith(f"{path}:2:11: duration: flexible pauses stretch x1439.")
