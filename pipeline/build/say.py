"""``meditate say``: one text spoken in one or several voices, an audition for editors.

The sentences go through the same synthesis, conditioning and speech cache as a render, so
what is heard is what a track will hold, and a later render finds the clips cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.errors import AudioError, UsageError
from pipeline.project.config import Project, flags_layer, resolve
from pipeline.project.settings import Settings, VoiceSettings
from pipeline.script.declared import FORMATS
from pipeline.script.text import Sentence, split_say
from pipeline.speech.cache import SpeechCache
from pipeline.speech.lengths import CachedLengths
from pipeline.speech.synthesis import SpeechRequest, synthesize_missing

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

GAP_S = 1.0
"""Silence between two voices."""


@dataclass(frozen=True)
class Take:
    """One voice's part of an audition."""

    voice: VoiceSettings
    """The voice, complete."""
    start_s: float
    """Where it starts in the file."""
    length_s: float
    """How long it speaks."""


@dataclass(frozen=True)
class Audition:
    """What ``say`` wrote."""

    path: Path
    """The audio file."""
    takes: tuple[Take, ...]
    """One per voice, in order."""
    synthesized: int
    """Sentences synthesized (the others were cached)."""


def parse_voice(spec: str, base: VoiceSettings) -> VoiceSettings:
    """``base`` with the engine and voice of ``ENGINE``, ``ENGINE:NAME`` or ``:NAME``
    (another engine alone speaks with its own default voice)."""
    engine, _, name = (part.strip() for part in spec.partition(":"))
    if not (engine or name):
        raise UsageError(f"error: --voice: expected ENGINE, ENGINE:NAME or :NAME, got {spec!r}")
    return replace(base, engine=engine or base.engine, name=name if engine or name else base.name)


def label(voice: VoiceSettings) -> str:
    """``engine`` or ``engine:name``."""
    return f"{voice.engine}:{voice.name}" if voice.name else voice.engine


def say(
    text: str,
    project: Project,
    output: Path,
    voices: Sequence[str] = (),
    flags: dict[str, object] | None = None,
    *,
    jobs: int = 2,
) -> Audition:
    """Speak ``text`` in each of ``voices`` (``ENGINE[:NAME]``; none: the project's voice),
    one after another, into ``output`` (its suffix names the format)."""
    fmt = output.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise UsageError(
            f"{output}: error: -o: the file name must end in one of "
            f".{', .'.join(FORMATS)}, got {output.suffix or 'no suffix'!r}"
        )
    if not output.parent.is_dir():
        raise UsageError(
            f"{output}: error: -o: the folder '{output.parent}' does not exist; create it first"
        )
    sentences = [sentence for sentence in split_say(text) if sentence.text.strip()]
    if not sentences:
        raise UsageError("error: TEXT: nothing to say")
    settings = resolve(project, flags=flags_layer(flags or {}))
    chosen = [parse_voice(spec, settings.voice) for spec in voices] or [settings.voice]
    cache = SpeechCache(settings.cache_dir)
    requests = [
        SpeechRequest(sentence.text, voice, f"say ({label(voice)})")
        for voice in chosen
        for sentence in sentences
    ]
    report = synthesize_missing(
        requests,
        cache,
        lexicon=settings.lexicon,
        sample_rate=settings.sample_rate,
        retry=settings.retry,
        jobs=jobs,
    )
    lengths = CachedLengths(
        cache, lexicon=settings.lexicon, sample_rate=settings.sample_rate, sound=lambda _: 0.0
    )
    return _write(output, fmt, chosen, sentences, lengths, settings, report.synthesized)


def _write(
    output: Path,
    fmt: str,
    voices: Sequence[VoiceSettings],
    sentences: Sequence[Sentence],
    lengths: CachedLengths,
    settings: Settings,
    synthesized: int,
) -> Audition:
    import numpy as np

    from pipeline.audio.encode import Encoder

    rate = settings.sample_rate
    pieces: list[npt.NDArray[np.float32]] = []
    takes: list[Take] = []
    at_s = 0.0
    for number, voice in enumerate(voices):
        if number:
            pieces.append(np.zeros(round(GAP_S * rate), np.float32))
            at_s += GAP_S
        start_s = at_s
        for index, sentence in enumerate(sentences):
            if index:
                gap_s = sentence.pause_before_s
                if gap_s is None:
                    gap_s = (
                        settings.paragraph_pause_s
                        if sentence.new_paragraph
                        else settings.sentence_pause_s
                    )
                pieces.append(np.zeros(round(gap_s * rate), np.float32))
                at_s += gap_s
            clip = lengths.cache.get(lengths.key(sentence.text, voice) or "")
            if clip is None:
                raise AudioError(f"say: the clip of {sentence.text!r} is missing from the cache")
            pieces.append(clip)
            at_s += clip.size / rate
        takes.append(Take(voice, start_s, at_s - start_s))
    with Encoder(
        output.parent, output.stem, [fmt], sample_rate=rate, channels=1, bitrate=settings.bitrate
    ) as encoder:
        encoder.write(np.concatenate(pieces)[:, None])
        encoder.close()
        encoder.commit()
    return Audition(output, tuple(takes), synthesized)
