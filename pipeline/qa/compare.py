"""Compare what was heard with what the script says: normalisation, word alignment, verdicts.

Normalisation follows Seed-TTS-eval (lowercase, punctuation except apostrophes removed), with
numbers spelled out and punctuation turned into spaces (so ``long-acting`` and "long acting"
agree). Alignment is a word-level Levenshtein alignment in which a lexicon entry matches
either its written form or its respelling, so a respelt word counts when either is heard.
"""

from __future__ import annotations

import functools
import re
import statistics
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pipeline.project.settings import QaSettings
from pipeline.qa.numbers import spell_numbers
from pipeline.script.declared import PHONEME_MARKS

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from pipeline.script.text import Lexicon

Status = Literal["ok", "warn", "fail"]

_APOSTROPHES = str.maketrans(dict.fromkeys("\u2018\u2019\u02bc\u02b9`\u00b4\u2032", "'"))

_FUNCTION_WORDS = """
a an the and or but nor so yet if then than as of to in on at by for from with without into onto
upon over under about after before up down out off through is am are was were be been being do
does did doing have has had having will would shall should can could may might must it its it's
i i'm i've i'll i'd me my you you're you've you'll your yours we we're we've we'll our he she him
her his they them their this that these those there here what which who whom whose when where
how not no just also very too all any some each every one let's let oh
"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())
"""Words whose loss does not change the meaning much; any other missing word is a content
word and deserves a warning."""


def normalize(text: str) -> str:
    """The comparable form of a text: numbers in words, lowercase, punctuation as spaces,
    apostrophes kept inside words, one space between words.
    """
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    text = spell_numbers(text).lower()
    kept = "".join(
        character if character == "'" or unicodedata.category(character)[0] in "LNM" else " "
        for character in text
    )
    return " ".join(word for word in (raw.strip("'") for raw in kept.split()) if word)


def words(text: str) -> tuple[str, ...]:
    """The normalised words of a text."""
    return tuple(normalize(text).split())


_BRITISH = (
    (re.compile(r"iour"), "ior"),  # behaviour, behavioural
    (re.compile(r"(?<=[lvnbmp])our(s|ed|ing|ful|ite|able|ably|al|ly)?$"), r"or\1"),  # colour
    (re.compile(r"(?<=\w{3})is(e|es|ed|ing|ation|ations)$"), r"iz\1"),  # realise, organisation
    (re.compile(r"(?<=\w{3})ys(e|es|ed|ing)$"), r"yz\1"),  # analyse, paralysed
    (re.compile(r"(?<=\w{2})tre(s)?$"), r"ter\1"),  # centre, metres
)


def spelling_key(word: str) -> str:
    """A word with British spellings made American (``behavioural`` -> ``behavioral``), so
    the recogniser's spelling matches the script's; words of four letters or fewer stay
    (``four`` never becomes ``for``).
    """
    if len(word) <= 4:
        return word
    for pattern, replacement in _BRITISH:
        word = pattern.sub(replacement, word)
    return word


# --- reference slots: script words, some with accepted respellings -----------------------


@dataclass(frozen=True)
class Slot:
    """One script word (or a multi-word lexicon entry) and the word sequences that count as it."""

    written: tuple[str, ...]
    """The normalised words as the script writes them."""
    forms: tuple[tuple[str, ...], ...]
    """Every accepted sequence, ``written`` first (then the respelling, split and joined)."""

    @property
    def text(self) -> str:
        """The script word(s), for reports."""
        return " ".join(self.written)


def _lexicon_entries(lexicon: Lexicon) -> tuple[tuple[str, str], ...]:
    """(word, respelling) pairs; an entry giving phonemes instead (``[[klˈɑːnəpɪn]]``, or
    ``{phonemes: ...}`` unconverted) keeps the word alone, since a recogniser writes no phonemes.
    """
    start = PHONEME_MARKS[0]
    pairs = lexicon.items() if isinstance(lexicon, Mapping) else lexicon
    return tuple(
        (word, spoken if isinstance(spoken, str) and not spoken.startswith(start) else "")
        for word, spoken in pairs
    )


@functools.lru_cache(maxsize=64)
def _compiled_lexicon(
    entries: tuple[tuple[str, str], ...],
) -> tuple[tuple[tuple[str, ...], tuple[tuple[str, ...], ...]], ...]:
    """Each entry as (written words, accepted respellings), the longest entries first."""
    compiled: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {}
    for word, respelling in entries:
        key, spoken = words(word), words(respelling)
        if not key or key in compiled:
            continue
        alternatives = [spoken, ("".join(spoken),)] if spoken else []
        compiled[key] = tuple(dict.fromkeys(form for form in alternatives if form != key))
    return tuple(sorted(compiled.items(), key=lambda item: -len(item[0])))


def reference_slots(text: str, lexicon: Lexicon = ()) -> list[Slot]:
    """The script words of ``text``; a lexicon entry (``Klonopin's`` too) becomes one slot
    that also accepts its respelling.
    """
    tokens = words(text)
    entries = _compiled_lexicon(_lexicon_entries(lexicon))
    slots: list[Slot] = []
    index = 0
    while index < len(tokens):
        for key, respellings in entries:
            end = index + len(key)
            found = tokens[index:end]
            if len(found) < len(key) or found[:-1] != key[:-1]:
                continue
            suffix = found[-1][len(key[-1]) :]
            if found[-1] == key[-1] or (found[-1].startswith(key[-1]) and suffix == "'s"):
                forms = (found, *((*form[:-1], form[-1] + suffix) for form in respellings))
                slots.append(Slot(found, tuple(dict.fromkeys(forms))))
                index = end
                break
        else:
            slots.append(Slot((tokens[index],), ((tokens[index],),)))
            index += 1
    return slots


# --- alignment ----------------------------------------------------------------------------

Operation = Literal["equal", "substitute", "delete", "insert"]


@dataclass(frozen=True)
class Step:
    """One step of an alignment."""

    operation: Operation
    """``equal``, ``substitute``, ``delete`` (script word not heard), ``insert`` (extra word)."""
    script: str
    """The script word(s) ('' for an insertion)."""
    heard: str
    """The word(s) heard ('' for a deletion)."""


def align(slots: Sequence[Slot], heard: Sequence[str]) -> list[Step]:
    """A minimal-cost alignment of script slots and heard words (Levenshtein on words).

    A slot matches any of its forms at no cost (British and American spellings alike, see
    :func:`spelling_key`), and a one-word slot also matches two heard words that join into it
    ("goodnight" heard as "good night", "readjust" as "re-adjust"); substituting or deleting a
    slot costs its written length; an extra heard word costs 1. Ties prefer matches, then
    substitutions.
    """
    rows, columns = len(slots), len(heard)
    infinity = float("inf")
    cost = [[infinity] * (columns + 1) for _ in range(rows + 1)]
    back: list[list[tuple[Operation, int]]] = [
        [("equal", 0)] * (columns + 1) for _ in range(rows + 1)
    ]
    cost[0][0] = 0.0
    heard_keys = [spelling_key(word) for word in heard]
    for column in range(1, columns + 1):
        cost[0][column] = float(column)
        back[0][column] = ("insert", 1)
    for row in range(1, rows + 1):
        slot = slots[row - 1]
        weight = float(len(slot.written))
        current, previous = cost[row], cost[row - 1]
        forms = [tuple(spelling_key(word) for word in form) for form in slot.forms]
        joined = {form[0] for form in forms if len(form) == 1} if len(slot.written) == 1 else set()
        for column in range(columns + 1):
            best = previous[column] + weight
            move: tuple[Operation, int] = ("delete", 0)
            if column:
                if current[column - 1] + 1 < best:
                    best, move = current[column - 1] + 1, ("insert", 1)
                if len(slot.written) == 1 and previous[column - 1] + 1 <= best:
                    best, move = previous[column - 1] + 1, ("substitute", 1)
            if (
                column >= 2
                and previous[column - 2] <= best
                and heard_keys[column - 2] + heard_keys[column - 1] in joined
            ):
                best, move = previous[column - 2], ("equal", 2)
            for form in forms:
                size = len(form)
                if (
                    size <= column
                    and previous[column - size] <= best
                    and tuple(heard_keys[column - size : column]) == form
                ):
                    best, move = previous[column - size], ("equal", size)
            current[column] = best
            back[row][column] = move
    steps: list[Step] = []
    row, column = rows, columns
    while row or column:
        operation, size = back[row][column]
        if operation == "insert":
            steps.append(Step("insert", "", heard[column - 1]))
            column -= 1
            continue
        script = slots[row - 1].text
        steps.append(Step(operation, script, " ".join(heard[column - size : column])))
        row, column = row - 1, column - size
    return steps[::-1]


# --- word checks --------------------------------------------------------------------------


@dataclass(frozen=True)
class WordCheck:
    """How well the heard words match a script sentence."""

    script_words: int
    """Number of normalised script words (the WER denominator)."""
    heard: str
    """The normalised transcript."""
    steps: tuple[Step, ...]
    """The alignment, in order."""

    def _count(self, operation: Operation) -> int:
        return sum(
            len(step.script.split()) if operation != "insert" else 1
            for step in self.steps
            if step.operation == operation
        )

    @property
    def matched(self) -> int:
        """Script words heard."""
        return self._count("equal")

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return self._count("substitute") + self._count("delete") + self._count("insert")

    @property
    def wer(self) -> float:
        """Word error rate; with an empty script, 0 when nothing was heard, else 1."""
        if not self.script_words:
            return 1.0 if self.errors else 0.0
        return self.errors / self.script_words

    @property
    def recall(self) -> float:
        """Fraction of script words heard (1 for an empty script)."""
        return self.matched / self.script_words if self.script_words else 1.0

    @property
    def missing(self) -> tuple[str, ...]:
        """Script words not heard (deleted, or heard as something else), in order."""
        return tuple(
            step.script for step in self.steps if step.operation in ("delete", "substitute")
        )

    @property
    def extra(self) -> tuple[str, ...]:
        """Heard words the script does not have (inserted, or heard instead of a script word)."""
        return tuple(
            step.heard for step in self.steps if step.operation in ("insert", "substitute")
        )

    @property
    def missing_content(self) -> tuple[str, ...]:
        """Missing words that carry meaning (not in :data:`FUNCTION_WORDS`)."""
        return tuple(word for word in self.missing if word not in FUNCTION_WORDS)


def check_words(script: str, heard: str, lexicon: Lexicon = ()) -> WordCheck:
    """Compare one script sentence with its transcript."""
    slots = reference_slots(script, lexicon)
    heard_words = words(heard)
    return WordCheck(
        script_words=sum(len(slot.written) for slot in slots),
        heard=" ".join(heard_words),
        steps=tuple(align(slots, heard_words)),
    )


def word_recall(scripts: Iterable[str], transcripts: Iterable[str], lexicon: Lexicon = ()) -> float:
    """Fraction of all script words heard, sentence by sentence (1 when there are none)."""
    pairs = list(zip(scripts, transcripts, strict=True))
    checks = [check_words(script, heard, lexicon) for script, heard in pairs]
    total = sum(check.script_words for check in checks)
    return sum(check.matched for check in checks) / total if total else 1.0


# --- speaking rate, without ASR --------------------------------------------------------------

SILENCE_DBFS = -50.0
"""Samples below this level at a clip's ends are silence, not speech."""


def spoken_chars(text: str) -> int:
    """Letters and digits a narrator says (numbers spelled out)."""
    return sum(1 for character in normalize(text) if character.isalnum())


def speech_length_s(samples: npt.NDArray[np.float32], sample_rate: int) -> float:
    """Length of a clip from its first to its last sample above :data:`SILENCE_DBFS`."""
    import numpy as np

    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    loud = np.flatnonzero(np.abs(np.asarray(samples, dtype=np.float32)) > 10 ** (SILENCE_DBFS / 20))
    return float(loud[-1] - loud[0] + 1) / sample_rate if loud.size else 0.0


@dataclass(frozen=True)
class CharRate:
    """Characters per second of one clip, alone and against the clips around it."""

    chars: int
    """Letters and digits the sentence has."""
    speech_s: float
    """Speech length of its clip (silent ends trimmed)."""
    ratio: float | None = None
    """Its rate over the median rate of the clips checked with it; None when too short."""

    @property
    def per_s(self) -> float:
        """Characters per second (infinite for a silent clip of a non-empty sentence)."""
        if self.speech_s > 0:
            return self.chars / self.speech_s
        return float("inf") if self.chars else 0.0


# --- verdicts ------------------------------------------------------------------------------------

MIN_CHARS_FOR_RATIO = 12
"""Sentences shorter than this are too short for a rate comparison."""


def char_rates(
    texts: Sequence[str],
    clips: Sequence[npt.NDArray[np.float32]],
    sample_rate: int,
    thresholds: QaSettings = QaSettings(),  # noqa: B008 - frozen, never mutated
) -> list[CharRate]:
    """The rate of each clip and its ratio to the median rate of these clips."""
    if len(texts) != len(clips):
        raise ValueError(f"{len(texts)} sentences but {len(clips)} clips")
    measured = [
        (spoken_chars(text), speech_length_s(clip, sample_rate))
        for text, clip in zip(texts, clips, strict=True)
    ]
    usable = [
        chars / length
        for chars, length in measured
        if chars >= MIN_CHARS_FOR_RATIO and length > 0
    ]
    median = statistics.median(usable) if usable else None
    rates = []
    for chars, length in measured:
        rate = CharRate(chars, length)
        if median and chars >= MIN_CHARS_FOR_RATIO and length > 0:
            rate = CharRate(chars, length, rate.per_s / median)
        rates.append(rate)
    return rates


@dataclass(frozen=True)
class Verdict:
    """The outcome for one sentence, with its reasons."""

    status: Status
    """``ok``, ``warn`` or ``fail``."""
    reasons: tuple[str, ...] = field(default=())
    """Why it is not ok, one short phrase each."""


def _worse(first: Status, second: Status) -> Status:
    order: tuple[Status, ...] = ("ok", "warn", "fail")
    return max(first, second, key=order.index)


def judge(
    words_check: WordCheck | None,
    rate: CharRate | None = None,
    thresholds: QaSettings = QaSettings(),  # noqa: B008 - frozen, never mutated
) -> Verdict:
    """The verdict on a sentence from its word check and/or its character rate."""
    status: Status = "ok"
    reasons: list[str] = []
    if words_check is not None:
        wer = words_check.wer
        if wer > thresholds.fail_wer:
            status = "fail"
            reasons.append(f"WER {wer:.2f} above {thresholds.fail_wer:.2f}")
        elif wer > thresholds.warn_wer:
            status = "warn"
            reasons.append(f"WER {wer:.2f} above {thresholds.warn_wer:.2f}")
        missing = words_check.missing_content
        if missing and thresholds.warn_missing_content:
            status = _worse(status, "warn")
            reasons.append("missing: " + ", ".join(missing))
    if rate is not None:
        per_s = rate.per_s
        if rate.chars and rate.speech_s == 0:
            status = "fail"
            reasons.append("silent clip")
        elif not thresholds.min_chars_per_s <= per_s <= thresholds.max_chars_per_s:
            status = _worse(status, "warn")
            reasons.append(
                f"{per_s:.1f} characters/s outside {thresholds.min_chars_per_s:g}"
                f"-{thresholds.max_chars_per_s:g}"
            )
        if rate.ratio is not None:
            factor = max(rate.ratio, 1 / rate.ratio) if rate.ratio > 0 else float("inf")
            kind = "faster" if rate.ratio > 1 else "slower"
            if factor > thresholds.fail_rate_ratio:
                status = "fail"
                reasons.append(f"{factor:.1f}x {kind} than the track's median rate")
            elif factor > thresholds.warn_rate_ratio:
                status = _worse(status, "warn")
                reasons.append(f"{factor:.1f}x {kind} than the track's median rate")
    return Verdict(status, tuple(reasons))
