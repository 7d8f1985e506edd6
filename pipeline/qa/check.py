"""Per-sentence checks of clean speech clips: transcribe them in one batch, compare each with
its script sentence, measure its character rate, and give a verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.project.settings import QaSettings
from pipeline.qa.compare import (
    CharRate,
    Verdict,
    WordCheck,
    char_rates,
    check_words,
    judge,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from pipeline.qa.asr import Transcriber, Transcript
    from pipeline.script.text import Lexicon


@dataclass(frozen=True)
class SentenceCheck:
    """Everything measured about one sentence's clip."""

    text: str
    """The sentence as the script writes it."""
    heard: str
    """The transcript, as the recogniser wrote it ('' without ASR)."""
    words: WordCheck | None
    """The word comparison (None when not transcribed)."""
    rate: CharRate
    """Characters per second of the clip."""
    verdict: Verdict
    """ok, warn or fail, with reasons."""

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form (for ``--format json`` and sidecars)."""
        found: dict[str, object] = {
            "text": self.text,
            "status": self.verdict.status,
            "reasons": list(self.verdict.reasons),
            "chars_per_s": round(self.rate.per_s, 2) if self.rate.speech_s else None,
            "rate_ratio": None if self.rate.ratio is None else round(self.rate.ratio, 3),
        }
        if self.words is not None:
            found |= {
                "heard": self.heard,
                "wer": round(self.words.wer, 4),
                "missing": list(self.words.missing),
                "extra": list(self.words.extra),
            }
        return found


def check_sentences(
    texts: Sequence[str],
    clips: Sequence[npt.NDArray[np.float32]],
    sample_rate: int,
    transcriber: Transcriber | None,
    *,
    lexicon: Lexicon = (),
    thresholds: QaSettings = QaSettings(),  # noqa: B008 - frozen, never mutated
) -> list[SentenceCheck]:
    """One check per sentence, in order; every clip goes to ``transcriber`` in one call (so it
    can pack them), or none is transcribed when it is None (character rates only).
    """
    if len(texts) != len(clips):
        raise ValueError(f"{len(texts)} sentences but {len(clips)} clips")
    transcripts: list[Transcript | None] = [None] * len(texts)
    if transcriber is not None and clips:
        transcripts = list(transcriber.transcribe(clips, sample_rate))
        if len(transcripts) != len(clips):
            raise ValueError(
                f"the recogniser gave {len(transcripts)} transcripts for {len(clips)} clips"
            )
    return judge_sentences(
        texts, clips, sample_rate, transcripts, lexicon=lexicon, thresholds=thresholds
    )


def judge_sentences(
    texts: Sequence[str],
    clips: Sequence[npt.NDArray[np.float32]],
    sample_rate: int,
    transcripts: Sequence[Transcript | None],
    *,
    lexicon: Lexicon = (),
    thresholds: QaSettings = QaSettings(),  # noqa: B008 - frozen, never mutated
) -> list[SentenceCheck]:
    """One check per sentence from transcripts already made (None: not transcribed, character
    rates only); the clips give the rates, each against the median of these clips.
    """
    if not len(texts) == len(clips) == len(transcripts):
        raise ValueError(
            f"{len(texts)} sentences, {len(clips)} clips and {len(transcripts)} transcripts"
        )
    rates = char_rates(texts, clips, sample_rate, thresholds)
    checks = []
    for text, rate, transcript in zip(texts, rates, transcripts, strict=True):
        words = None if transcript is None else check_words(text, transcript.text, lexicon)
        checks.append(
            SentenceCheck(
                text,
                "" if transcript is None else transcript.text,
                words,
                rate,
                judge(words, rate, thresholds),
            )
        )
    return checks
