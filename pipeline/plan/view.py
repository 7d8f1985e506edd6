"""How ``meditate plan`` shows a timeline: a readable table, or a JSON-friendly dict."""

from __future__ import annotations

from dataclasses import asdict

from pipeline.core.errors import Place
from pipeline.core.units import format_clock
from pipeline.plan.timeline import BreathPhaseCue, Cue, PauseCue, SoundCue, SpeechCue, Timeline

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
        common.update(text=cue.text, estimated=cue.estimated, voice=asdict(cue.voice))
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
