"""Editors' excerpts (``render --section`` / ``--preview``), resolved before any synthesis.

The chapter is found from the script's own titles, and the excerpt's window on a plan whose
speech lengths may still be estimates; only the sentences the window needs are synthesized.
A preview's end then moves to the nearest gap between sentences when one is close, so an
excerpt seldom stops mid-word, and the mix fades out where the excerpt cuts the track.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pipeline.core.errors import UsageError
from pipeline.plan.timeline import Chapter, Cue, PauseCue, SoundCue, SpeechCue, Timeline
from pipeline.script.model import Script, SectionStep

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

SNAP_S = 3.0
"""How far a preview's end may move to fall between sentences rather than inside one."""
CUT_FADE_S = 0.5
"""Fade-out of the whole mix where an excerpt ends before the track does."""
_LISTED = 12
"""Most chapter titles an error lists."""
_EXACT_S = 1e-6


@dataclass(frozen=True)
class Window:
    """Where an excerpt lies on a track's timeline."""

    start_s: float
    """Its start: 0, or its chapter's start."""
    end_s: float
    """Its end as asked: the chapter's end, or the start plus the preview length."""
    limit_s: float
    """The furthest it may end: its chapter's end, or the track's."""


def section_titles(script: Script) -> list[str]:
    """The chapter titles of a script, in the order its timeline has them."""
    return [step.title for step in script.steps if isinstance(step, SectionStep)]


def find_chapter(titles: Sequence[str], wanted: str) -> int:
    """Index of the chapter ``--section wanted`` names; UsageError with did-you-mean if none.

    Matching ignores case and surrounding or repeated whitespace; a title matched exactly
    wins over others equal to it but for case. Failing a whole title, a unique start of one
    is taken. Several candidates are an error listing them.
    """
    key = _fold(wanted)
    if not key:
        raise _usage("give a chapter title")
    if not titles:
        raise _usage("this script has no chapters (a chapter starts at a 'section:' step)")
    folded = [_fold(title) for title in titles]
    whole = [index for index, title in enumerate(folded) if title == key]
    exact = [index for index in whole if titles[index] == wanted.strip()]
    if len(whole) == 1 or len(exact) == 1:
        return (exact or whole)[0]
    if len(exact) > 1:
        raise _usage(
            f"{len(exact)} chapters are titled {titles[exact[0]]!r}; "
            "give them different titles to render one of them"
        )
    if whole:
        raise _usage(
            f"{wanted.strip()!r} matches {len(whole)} chapters: {_listed(titles, whole)}; "
            "give the title exactly as written"
        )
    starts = [index for index, title in enumerate(folded) if title.startswith(key)]
    if len(starts) == 1:
        return starts[0]
    if starts:
        raise _usage(
            f"{wanted.strip()!r} matches {len(starts)} chapters: {_listed(titles, starts)}; "
            "give more of the title"
        )
    close = difflib.get_close_matches(key, folded, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(titles[folded.index(c)]) for c in close)}?"
    raise _usage(
        f"no chapter {wanted.strip()!r}{hint if close else ''} "
        f"(chapters: {_listed(titles, range(len(titles)))})"
    )


def excerpt_window(timeline: Timeline, chapter: int | None, preview_s: float | None) -> Window:
    """The window of chapter number ``chapter`` (or the whole track), cut to ``preview_s``."""
    start_s, limit_s = 0.0, timeline.length_s
    if chapter is not None:
        start_s = timeline.chapters[chapter].start_s
        if chapter + 1 < len(timeline.chapters):
            limit_s = timeline.chapters[chapter + 1].start_s
        if limit_s <= start_s + _EXACT_S:
            raise _usage(f"chapter {timeline.chapters[chapter].title!r} takes no time")
    end_s = limit_s if preview_s is None else min(limit_s, start_s + preview_s)
    return Window(start_s, end_s, limit_s)


def needed_speech(timeline: Timeline, window: Window | None) -> tuple[SpeechCue, ...]:
    """The sentences an excerpt needs synthesized (every one for the whole track).

    Those starting before the end asked for (where it ends depends on their lengths) or before
    where it ends on this plan (:func:`snap_end`): times inside a window do not depend on speech
    before or after it. With a target duration, though, the flexible pauses depend on every
    sentence's length: an excerpt holding one needs them all.
    """
    if window is None:
        return timeline.speech
    end_s = max(window.end_s, snap_end(timeline, window))
    inside = [cue for cue in timeline.cues if window.start_s <= cue.start_s < end_s]
    scaled = timeline.target_s is not None and any(
        isinstance(cue, PauseCue) and cue.flexible for cue in inside
    )
    if scaled:
        return timeline.speech
    return tuple(cue for cue in inside if isinstance(cue, SpeechCue))


def snap_end(timeline: Timeline, window: Window) -> float:
    """Where the excerpt ends: ``window.end_s``, moved to the nearest gap between sentences.

    A good end leaves ``CUT_FADE_S`` of silence after the last sentence, so the fade-out never
    touches speech. The end moves at most ``SNAP_S``, stays within ``window.limit_s`` and keeps
    at least half of what was asked; when no gap is that close it stays (cut mid-sentence).
    """
    end_s = window.end_s
    if end_s >= window.limit_s - _EXACT_S:
        return window.limit_s
    lowest_s = window.start_s + (end_s - window.start_s) / 2
    highest_s = min(window.limit_s, end_s + SNAP_S)
    spans = sorted(
        (cue.start_s, cue.start_s + cue.length_s + CUT_FADE_S)
        for cue in timeline.speech
        if cue.start_s < highest_s and cue.start_s + cue.length_s + CUT_FADE_S > lowest_s
    )
    gaps: list[tuple[float, float]] = []
    free_s = lowest_s
    for start_s, stop_s in spans:
        if start_s > free_s:
            gaps.append((free_s, start_s))
        free_s = max(free_s, stop_s)
    if free_s <= highest_s:
        gaps.append((free_s, highest_s))
    candidates = [min(max(end_s, low_s), high_s) for low_s, high_s in gaps]
    if not candidates:
        return end_s
    best_s = min(candidates, key=lambda at_s: (abs(at_s - end_s), -at_s))
    return best_s if abs(best_s - end_s) <= SNAP_S else end_s


def cut(timeline: Timeline, window: Window) -> tuple[Timeline, float]:
    """The excerpt's own timeline, and how long the mix fades out at its end (0: not cut).

    Its end is snapped (:func:`snap_end`). The bed fades in over at least ``CUT_FADE_S``
    where the excerpt starts inside the track; speech never starts mid-sentence there.
    """
    from pipeline.plan.excerpt import excerpt

    end_s = snap_end(timeline, window)
    part = excerpt(timeline, window.start_s, end_s)
    bed = part.background
    if window.start_s > 0 and bed is not None and bed.fade_in_s < CUT_FADE_S:
        part = replace(part, background=replace(bed, fade_in_s=CUT_FADE_S))
    return part, CUT_FADE_S if end_s < timeline.length_s - _EXACT_S else 0.0


def fade_out(
    blocks: Iterator[npt.NDArray[np.float32]], total_frames: int, fade_frames: int
) -> Iterator[npt.NDArray[np.float32]]:
    """The blocks of a mix of ``total_frames``, its last ``fade_frames`` faded to silence."""
    import numpy as np

    first = total_frames - fade_frames
    done = 0
    for block in blocks:
        end = done + block.shape[0]
        if fade_frames > 0 and end > first:
            position = np.arange(max(done, first), end, dtype=np.float64) - first
            gains = 0.5 + 0.5 * np.cos(np.pi * np.clip(position / fade_frames, 0.0, 1.0))
            block = block.copy()
            block[max(0, first - done) :] *= gains.astype(np.float32)[:, None]
        done = end
        yield block


def _fold(title: str) -> str:
    """A title as matching compares it: case folded, whitespace collapsed."""
    return " ".join(title.split()).casefold()


def _listed(titles: Sequence[str], indexes: Sequence[int]) -> str:
    """Some chapter titles for a message, the first ones if there are many."""
    shown = ", ".join(repr(titles[index]) for index in indexes[:_LISTED])
    more = len(indexes) - _LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _usage(message: str) -> UsageError:
    return UsageError(f"command line: error: --section: {message}")


def excerpt(timeline: Timeline, start_s: float, end_s: float) -> Timeline:
    """The part of a timeline between two times, shifted to start at 0 (previews, sections).

    Cues starting in ``[start_s, end_s)`` are kept; a sentence, pause or breathing phase that
    runs past ``end_s`` is shortened to end there (so are its caption and ducking), and the
    mixer cuts its audio. Background fades then apply to the excerpt's own start and end.
    """
    end_s = min(end_s, timeline.length_s)
    cues = tuple(
        _clipped(replace(cue, start_s=cue.start_s - start_s), end_s - start_s)
        for cue in timeline.cues
        if start_s <= cue.start_s < end_s
    )
    chapters = tuple(
        Chapter(ch.title, max(0.0, ch.start_s - start_s))
        for ch in timeline.chapters
        if ch.start_s < end_s and (ch.start_s >= start_s or _chapter_covers(timeline, ch, start_s))
    )
    length_s = max(0.0, end_s - start_s)
    return replace(
        timeline,
        cues=cues,
        chapters=chapters,
        length_s=length_s,
        natural_length_s=length_s,
        target_s=None,
    )


def _clipped(cue: Cue, end_s: float) -> Cue:
    """``cue`` ending at ``end_s`` at the latest (a one-shot keeps ringing until the mixer cuts)."""
    if isinstance(cue, SoundCue) or cue.start_s + cue.length_s <= end_s:
        return cue
    return replace(cue, length_s=end_s - cue.start_s)


def _chapter_covers(timeline: Timeline, chapter: Chapter, at_s: float) -> bool:
    """Whether ``chapter`` is the one running at ``at_s``."""
    running = [ch for ch in timeline.chapters if ch.start_s <= at_s]
    return bool(running) and running[-1] is chapter
