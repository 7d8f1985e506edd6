"""Text preparation: small pure functions from script text to engine-ready sentences."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.units import parse_duration

PAUSE_MARKER = re.compile(r"\[pause\s+([^\]]*)\]", re.IGNORECASE)


@dataclass(frozen=True)
class Sentence:
    """One sentence of a ``say`` text and the gap that precedes it."""

    text: str
    """The sentence as written, whitespace-normalized (captions show this)."""
    pause_before_s: float | None = None
    """Exact gap set by a ``[pause Ns]`` marker just before it."""
    new_paragraph: bool = False
    """A blank line precedes it (the paragraph gap applies)."""


def split_say(text: str) -> list[Sentence]:
    """Sentences of a ``say`` text, with paragraph breaks and inline pauses."""
    sentences: list[Sentence] = []
    pending_pause: float | None = None
    new_paragraph = False
    for paragraph in re.split(r"\n\s*\n", text):
        new_paragraph = bool(sentences)
        for chunk_index, chunk in enumerate(PAUSE_MARKER.split(paragraph)):
            if chunk_index % 2 == 1:
                pending_pause = parse_duration(chunk)
                continue
            for piece in re.split(r"(?<=[.!?])\s+", " ".join(chunk.split())):
                if piece:
                    sentences.append(Sentence(piece, pending_pause, new_paragraph))
                    pending_pause = None
                    new_paragraph = False
    return sentences


def prepare_for_engine(text: str, lexicon: Sequence[tuple[str, str]] = ()) -> str:
    """The text an engine receives: lexicon respellings applied, whitespace normalized."""
    for word, respelling in lexicon:
        text = re.sub(rf"\b{re.escape(word)}\b", respelling, text, flags=re.IGNORECASE)
    return " ".join(text.split())
