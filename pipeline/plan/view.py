"""How ``meditate plan`` shows a timeline: a readable table, or a JSON-friendly dict."""

from __future__ import annotations

import glob
from pathlib import Path

from pipeline.core.errors import Place
from pipeline.core.fileio import display_path
from pipeline.core.units import format_clock
from pipeline.plan.timeline import BreathPhaseCue, Cue, PauseCue, SoundCue, SpeechCue, Timeline
from pipeline.script.model import SayStep, Script

TEXT_WIDTH = 50
"""Characters of text shown per row before it is cut with '...'."""
SECTION_WIDTH = 20
"""Widest section column; longer titles are cut."""
ESTIMATED_MARK = "~"
"""Prefix of a length that is estimated, not measured."""


def format_plan(timeline: Timeline) -> str:
    """The timeline as a table (start, length, kind, section, text), then its totals."""
    rows = [("start", "length", "kind", "section", "text")]
    rows += [_row(cue, words) for cue, words in _table_cues(timeline)]
    section_width = min(SECTION_WIDTH, max(len(row[3]) for row in rows))
    length_width = max(len(row[1]) for row in rows)
    kind_width = max(len(row[2]) for row in rows)
    start_width = max(len(row[0]) for row in rows)
    lines = []
    for start, length, kind, section, text in rows:
        line = (
            f"{start:>{start_width}}  {length:>{length_width}}  {kind:<{kind_width}}  "
            f"{_cut(section, section_width):<{section_width}}  {text}"
        )
        lines.append(line.rstrip())
    lines.append("")
    lines += _totals(timeline)
    return "\n".join(lines)


def plan_as_dict(timeline: Timeline) -> dict[str, object]:
    """The timeline for ``--format json``: every cue, the chapters and the totals."""
    speech = timeline.speech
    return {
        "length_s": _round(timeline.length_s),
        "target_s": None if timeline.target_s is None else _round(timeline.target_s),
        "natural_length_s": _round(timeline.natural_length_s),
        "pause_scale": round(timeline.pause_scale, 6),
        "sentences": len(speech),
        "estimated": sum(cue.estimated for cue in speech),
        "background": None if timeline.background is None else timeline.background.asset,
        "chapters": [
            {"title": chapter.title, "start_s": _round(chapter.start_s)}
            for chapter in timeline.chapters
        ],
        "lead_in_s": _round(timeline.lead_in_s),
        "tail_s": _round(timeline.tail_s),
        "warnings": [problem.as_dict() for problem in timeline.warnings],
        "cues": [_cue_dict(cue) for cue in timeline.cues],
    }


def cue_kind(cue: Cue) -> str:
    """``say``, ``cue`` (a breathing cue), ``sound``, ``pause`` or ``breathe``."""
    if isinstance(cue, SpeechCue):
        return "cue" if cue.breathing else "say"
    if isinstance(cue, SoundCue):
        return "sound"
    if isinstance(cue, PauseCue):
        return "pause"
    return "breathe"


def _table_cues(timeline: Timeline) -> list[tuple[Cue, str]]:
    """Cues to show, each breathing cue folded into the row of its phase."""
    spoken: dict[tuple[float, Place], SpeechCue] = {
        (cue.start_s, cue.place): cue
        for cue in timeline.cues
        if isinstance(cue, SpeechCue) and cue.breathing
    }
    folded: set[int] = set()
    shown: list[tuple[Cue, str]] = []
    for cue in timeline.cues:
        if isinstance(cue, BreathPhaseCue):
            words = spoken.get((cue.start_s, cue.place))
            if words is not None:
                folded.add(id(words))
            shown.append((cue, "" if words is None else words.text))
        elif not (isinstance(cue, SpeechCue) and id(cue) in folded):
            shown.append((cue, ""))
    return shown


def _row(cue: Cue, words: str) -> tuple[str, str, str, str, str]:
    """One table row; ``words`` is the cue spoken at a breathing phase's start."""
    if isinstance(cue, SpeechCue):
        mark = ESTIMATED_MARK if cue.estimated else ""
        length, text = f"{mark}{cue.length_s:.1f}", cue.text
    elif isinstance(cue, SoundCue):
        length, text = f"{cue.wait_s:.1f}", cue.asset
        if cue.gain_db:
            text += f" ({cue.gain_db:+g} dB)"
    elif isinstance(cue, PauseCue):
        length, text = f"{cue.length_s:.1f}", ""
        if cue.flexible:
            nominal_s = cue.length_s if cue.nominal_s is None else cue.nominal_s
            text = f"flexible, nominal {nominal_s:g} s"
    else:
        length, text = f"{cue.length_s:.1f}", f"{cue.phase} (cycle {cue.cycle})"
        if words:
            text += f": {words}"
    return (format_clock(cue.start_s), length, cue_kind(cue), cue.section, _cut(text, TEXT_WIDTH))


def _totals(timeline: Timeline) -> list[str]:
    """Lines under the table: length vs target, natural length, speech, chapters."""
    length = format_clock(timeline.length_s)
    if timeline.target_s is None:
        lines = [f"length    {length} (no target)"]
    else:
        lines = [
            f"length    {length}, target {format_clock(timeline.target_s)}"
            f" (flexible pauses x{timeline.pause_scale:.3f})"
        ]
    lines.append(f"natural   {format_clock(timeline.natural_length_s)}")
    speech = timeline.speech
    breathing = sum(cue.breathing for cue in speech)
    estimated = sum(cue.estimated for cue in speech)
    count = f"{len(speech)} sentences"
    if breathing:
        count += f" ({breathing} breathing cues)"
    if not speech:
        lines.append("speech    none")
    elif estimated == 0:
        lines.append(f"speech    {count}, all measured")
    else:
        lines.append(
            f"speech    {count}: {estimated} of {len(speech)} estimated "
            f"(marked {ESTIMATED_MARK}: not synthesized yet), {len(speech) - estimated} measured"
        )
    if timeline.chapters:
        marks = ", ".join(f"{c.title} {format_clock(c.start_s)}" for c in timeline.chapters)
        lines.append(f"chapters  {marks}")
    return lines


def _cue_dict(cue: Cue) -> dict[str, object]:
    """One cue for JSON: the common fields, then those of its kind."""
    common: dict[str, object] = {
        "kind": cue_kind(cue),
        "start_s": _round(cue.start_s),
        "length_s": _round(cue.wait_s if isinstance(cue, SoundCue) else cue.length_s),
        "text": "",
        "section": cue.section,
        "estimated": False,
        "place": str(cue.place),
    }
    if isinstance(cue, SpeechCue):
        common.update(text=cue.text, estimated=cue.estimated, voice=cue.voice.as_dict())
    elif isinstance(cue, SoundCue):
        common.update(text=cue.asset, asset=cue.asset, gain_db=_round(cue.gain_db))
    elif isinstance(cue, PauseCue):
        nominal_s = cue.length_s if cue.nominal_s is None else cue.nominal_s
        common.update(flexible=cue.flexible, nominal_s=_round(nominal_s))
    else:
        common.update(text=cue.phase, phase=cue.phase, cycle=cue.cycle)
    return common


def _cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending with '...' when cut."""
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _round(seconds: float) -> float:
    """Three decimals, as JSON shows them."""
    return round(seconds, 3)


def take_rows(script: Script, timeline: Timeline) -> list[dict[str, object]]:
    """Each sentence spoken by a ``recorded`` voice (or its fallback) and each ``say`` step of
    one, in order: where, its take's key, what speaks it (``take``, ``step`` take, the fallback
    engine's name, or ``missing``), the file, and the text.
    """
    from pipeline.project.settings import RECORDED
    from pipeline.speech.takes import sentence_take_key, step_take_key

    steps = {step.place: step for step in script.steps if isinstance(step, SayStep)}
    rows: list[dict[str, object]] = []
    seen_steps: set[Place] = set()
    for cue in timeline.speech:
        voice = cue.voice
        if voice.takes is None:
            continue
        step = steps.get(cue.place)
        if step is not None and cue.place not in seen_steps and not cue.breathing:
            seen_steps.add(cue.place)
            key = step_take_key(step.text)
            found = sorted(Path(voice.takes).glob(f"{glob.escape(key)}.*"))
            rows.append(_take_row(cue.place, "step", key, found[0] if found else None, step.text))
        take = voice.take
        if voice.engine != RECORDED:
            status = voice.engine
        elif take is None:
            status = "missing"
        else:
            status = "take" if take.start_s is None else "part"
        file = Path(take.file) if take is not None else None
        row = _take_row(cue.place, status, sentence_take_key(cue.text), file, cue.text)
        if take is not None and take.start_s is not None:
            row["span_s"] = [round(take.start_s, 3), round(take.end_s or 0.0, 3)]
        rows.append(row)
    return rows


def _take_row(
    place: Place, status: str, key: str, file: Path | None, text: str
) -> dict[str, object]:
    return {
        "place": str(place),
        "key": key,
        "status": status,
        "file": None if file is None else str(display_path(file)),
        "text": " ".join(text.split()),
    }


def format_takes(script: Script, timeline: Timeline) -> str:
    """The takes a script needs, as a table, then how many sentences have one."""
    rows = take_rows(script, timeline)
    if not rows:
        return "no sentence is spoken by a recorded voice (voice: {engine: recorded, takes: ...})"
    table = [("where", "status", "key (file name without its extension)", "text")]
    for row in rows:
        status = str(row["status"])
        if status == "step":
            status = "step" if row["file"] else "(step)"
        elif status == "part":
            span: list[float] = row["span_s"]  # type: ignore[assignment]
            status = f"part {span[0]:.1f}-{span[1]:.1f}"
        text = str(row["text"])
        text = "whole step: " + _cut(text, TEXT_WIDTH - 12) if row["status"] == "step" else text
        table.append((str(row["place"]), status, str(row["key"]), _cut(text, TEXT_WIDTH)))
    widths = [max(len(row[column]) for row in table) for column in range(3)]
    lines = [
        f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip()
        for a, b, c, d in table
    ]
    sentences = [row for row in rows if row["status"] != "step"]
    counts = {
        "take": sum(row["status"] == "take" for row in sentences),
        "part": sum(row["status"] == "part" for row in sentences),
        "missing": sum(row["status"] == "missing" for row in sentences),
    }
    fallback = len(sentences) - sum(counts.values())
    folders = sorted({str(display_path(Path(str(cue.voice.takes)))) for cue in timeline.speech
                      if cue.voice.takes is not None})  # fmt: skip
    lines += [
        "",
        f"takes     {', '.join(folders)}",
        f"sentences {len(sentences)}: {counts['take']} with their own take, {counts['part']} "
        f"from a step's take, {fallback} by the fallback engine, {counts['missing']} missing",
    ]
    return "\n".join(lines)
