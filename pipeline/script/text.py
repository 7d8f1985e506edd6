"""Text preparation: small pure functions from script text to engine-ready sentences.

Like gTTS, text flows through a list of pure ``str -> str`` pre-processors, then a
tokenizer. Two pipelines share the first steps:

- display (:data:`DISPLAY_PREPROCESSORS`): what captions show, Unicode and whitespace
  normalized, SSML-like tags removed, typographic quotes and emoji kept;
- engine (:func:`prepare_for_engine`): the display text plus lexicon respellings, with
  everything an engine must not receive removed (pause markers, emoji, a leading ``-``).
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from pipeline.core.units import parse_duration

Preprocessor: TypeAlias = Callable[[str], str]
Lexicon: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str]]

PAUSE_MARKER = re.compile(r"\[\s*pause(?![A-Za-z])([^\]\[\n]*)\]", re.IGNORECASE)
"""A ``[pause 3s]`` marker; group 1 is the duration text (any form of ``parse_duration``)."""

LONG_SENTENCE_WORDS = 40
"""Sentences with more words than this get a warning (hard to follow, one long clip)."""
LONG_SENTENCE_CHARS = 300
"""Sentences with more characters than this get a warning."""

# --- display pre-processors -------------------------------------------------------------

_NEWLINES = re.compile(r"\r\n|[\r\x0b\x0c\x85\u2028]")
_INVISIBLE = re.compile(r"[\u00ad\u180e\u200b\u2060\ufeff]")
_JOINER_NOT_BETWEEN_LETTERS = re.compile(r"(?<!\w)[\u200c\u200d]|[\u200c\u200d](?!\w)")
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SPACES = re.compile(r"[^\S\n]+")
_TAG = re.compile(r"</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>")


def normalize_newlines(text: str) -> str:
    """CR LF, CR, form feeds, line separators become ``\\n``; a paragraph separator a blank line."""
    return _NEWLINES.sub("\n", text).replace("\u2029", "\n\n")


def normalize_unicode(text: str) -> str:
    """NFC: ``e`` + combining acute becomes ``é``, so equal texts compare (and cache) equal."""
    return unicodedata.normalize("NFC", text)


def remove_invisible(text: str) -> str:
    """Remove zero-width characters; ZWJ and ZWNJ stay only between letters (Persian, Indic)."""
    if text.isascii():
        return text
    return _JOINER_NOT_BETWEEN_LETTERS.sub("", _INVISIBLE.sub("", text))


def remove_control_chars(text: str) -> str:
    """Remove control characters, bidi overrides and lone surrogates (tabs and newlines stay)."""
    return _CONTROL.sub("", text)


def normalize_spaces(text: str) -> str:
    """Tabs, non-breaking and other Unicode spaces become one plain space; newlines stay."""
    if text.isascii() and "\t" not in text and "  " not in text:
        return text
    return _SPACES.sub(" ", text)


def strip_tags(text: str) -> str:
    """Remove SSML-like tags (``<break time="1s"/>``, ``<speak>``); the text between stays."""
    return _TAG.sub(" ", text)


DISPLAY_PREPROCESSORS: tuple[Preprocessor, ...] = (
    normalize_newlines,
    normalize_unicode,
    remove_invisible,
    remove_control_chars,
    strip_tags,
    normalize_spaces,
)
"""Pre-processors of the text captions show, in order."""


def run_preprocessors(text: str, preprocessors: Iterable[Preprocessor]) -> str:
    """``text`` passed through each pre-processor in turn."""
    for preprocess in preprocessors:
        text = preprocess(text)
    return text


def normalize_text(text: str) -> str:
    """The display form of a text: :data:`DISPLAY_PREPROCESSORS` applied."""
    return run_preprocessors(text, DISPLAY_PREPROCESSORS)


# --- engine pre-processors --------------------------------------------------------------

_EMOJI = re.compile(
    "["
    "\u2190-\u21ff"  # arrows
    "\u2300-\u23ff"  # miscellaneous technical (watch, hourglass...)
    "\u25a0-\u25ff"  # geometric shapes
    "\u2600-\u27bf"  # miscellaneous symbols, dingbats
    "\u2b00-\u2bff"  # arrows and stars
    "\u20e3"  # combining keycap
    "\u200d"  # zero-width joiner of emoji sequences
    "\u3030\u303d\u3297\u3299"
    "\ufe00-\ufe0f"  # variation selectors
    "\U0001f000-\U0001faff"  # emoji, pictographs, flags, skin tones
    "\U000e0000-\U000e007f"  # tag characters of flag sequences
    "]+"
)
_QUOTES = str.maketrans(
    {
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2039": "'",
        "\u203a": "'",
        "\u2026": "...",
    }
)
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")
_LEADING_DASHES = re.compile(r"^[\s\-\u2010-\u2015\u2212]+")
_LEADING_MINUS_NUMBER = re.compile(r"^\s*[-\u2212](?=\d)")


def strip_pause_markers(text: str) -> str:
    """Remove ``[pause Ns]`` markers (engines would read them aloud)."""
    return PAUSE_MARKER.sub(" ", text)


def remove_emoji(text: str) -> str:
    """Remove emoji, pictographs, arrows and dingbats (engines read their names or stumble)."""
    return text if text.isascii() else _EMOJI.sub(" ", text)


def normalize_quotes(text: str) -> str:
    """Typographic quotes and apostrophes become ASCII, ``…`` becomes ``...`` (read better)."""
    return text if text.isascii() else text.translate(_QUOTES)


def defuse_leading_dash(text: str) -> str:
    """A leading ``-`` (an option to command-line engines) goes; before a digit it becomes ``−``."""
    if _LEADING_MINUS_NUMBER.match(text):
        return _LEADING_MINUS_NUMBER.sub("\u2212", text, count=1)
    return _LEADING_DASHES.sub("", text)


def collapse_whitespace(text: str) -> str:
    """One space between words, none before ``, . ; : ! ?``, none at the ends."""
    return _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))


ENGINE_PREPROCESSORS: tuple[Preprocessor, ...] = (
    strip_pause_markers,
    remove_emoji,
    normalize_quotes,
)
"""Pre-processors run after the display ones and before the lexicon."""

ENGINE_POSTPROCESSORS: tuple[Preprocessor, ...] = (
    collapse_whitespace,
    defuse_leading_dash,
)
"""Pre-processors run after the lexicon (a respelling may start with ``-``)."""


@functools.lru_cache(maxsize=64)
def _compile_lexicon(
    entries: tuple[tuple[str, str], ...],
) -> tuple[re.Pattern[str], dict[str, str]]:
    respellings: dict[str, str] = {}
    for word, respelling in entries:
        key = " ".join(normalize_quotes(normalize_unicode(word)).split()).lower()
        if key and key not in respellings:
            respellings[key] = respelling
    alternatives = sorted(respellings, key=len, reverse=True)
    body = "|".join(r"\s+".join(re.escape(part) for part in key.split(" ")) for key in alternatives)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE), respellings


def apply_lexicon(text: str, lexicon: Lexicon = ()) -> str:
    """Respell whole words, case-insensitively, in one pass (a respelling is never respelled again).

    ``Klonopin`` matches ``klonopin`` and ``Klonopin's`` but not ``Klonopins``; the first entry
    wins when two differ only in case; spaces in an entry match any run of whitespace.
    """
    entries = tuple(lexicon.items()) if isinstance(lexicon, Mapping) else tuple(lexicon)
    if not entries:
        return text
    pattern, respellings = _compile_lexicon(entries)
    folded = " ".join(text.lower().split())
    if not any(key in folded for key in respellings):
        return text
    return pattern.sub(
        lambda match: respellings.get(" ".join(match.group().split()).lower(), match.group()), text
    )


def is_speakable(text: str) -> bool:
    """Whether the text holds at least one letter or digit."""
    return any(character.isalnum() for character in text)


def prepare_for_engine(text: str, lexicon: Lexicon = ()) -> str:
    """The text an engine receives; raises ValueError when nothing speakable remains."""
    prepared = run_preprocessors(normalize_text(text), ENGINE_PREPROCESSORS)
    prepared = run_preprocessors(apply_lexicon(prepared, lexicon), ENGINE_POSTPROCESSORS)
    if not is_speakable(prepared):
        shown = " ".join(text.split())
        raise ValueError(
            f"nothing speakable in {shown[:60]!r}: only tags, emoji, symbols or pause markers"
        )
    return prepared


# --- pause markers ----------------------------------------------------------------------

_BRACKET = re.compile(r"\[\s*([A-Za-z]+)([^\]\[\n]*)\]")
_UNCLOSED_PAUSE = re.compile(r"\[\s*pause(?![A-Za-z])[^\]\[\n]*(?=[\[\n]|$)", re.IGNORECASE)


def _pause_marker_error(marker: str, duration_text: str) -> str | None:
    duration_text = duration_text.strip()
    if not duration_text:
        return f"pause marker {marker!r} has no duration; write it like '[pause 3s]'"
    try:
        parse_duration(duration_text)
    except ValueError as error:
        return f"malformed pause marker {marker!r}: {error}"
    return None


def _is_duration(text: str) -> bool:
    try:
        parse_duration(text.strip())
    except ValueError:
        return False
    return bool(text.strip())


def _looks_like_pause(word: str) -> bool:
    return difflib.SequenceMatcher(None, word.lower(), "pause").ratio() >= 0.6


def find_pause_marker_errors(text: str) -> list[str]:
    """Messages for every malformed, unclosed or misspelled ``[pause Ns]`` marker, in order."""
    errors: list[tuple[int, str]] = []
    for match in _BRACKET.finditer(text):
        word, rest = match.group(1), match.group(2)
        if word.lower() == "pause":
            error = _pause_marker_error(match.group(), rest)
            if error:
                errors.append((match.start(), error))
        elif _is_duration(rest) and _looks_like_pause(word):
            suggestion = f"[pause {rest.strip()}]"
            message = f"unknown marker {match.group()!r}: did you mean {suggestion!r}?"
            errors.append((match.start(), message))
    for match in _UNCLOSED_PAUSE.finditer(text):
        message = f"unclosed pause marker {match.group().strip()!r}: expected ']'"
        errors.append((match.start(), message))
    return [message for _, message in sorted(errors)]


# --- sentence tokenizer -----------------------------------------------------------------

_SENTENCE_END = re.compile(
    r"(?P<punct>[.!?\u2026\u061f\u0964\u0965]+|[\u3002\uff01\uff1f]+)"
    r"(?P<close>[\"'\u201d\u2019\u00bb\u203a)\]}\u300d\u300f]*)"
    r"(?P<space>\s*)"
)
_CJK_END = frozenset("\u3002\uff01\uff1f")
_OPENERS = "\"'\u201c\u2018\u00ab\u2039([{\u300c\u300e\u201e\u201a"
_NEVER_END = frozenset(
    {
        "dr",
        "mr",
        "mrs",
        "ms",
        "mx",
        "prof",
        "st",
        "mt",
        "sgt",
        "capt",
        "rev",
        "fr",
        "vs",
        "e.g",
        "i.e",
        "cf",
        "approx",
    }
)
"""Abbreviations after which a sentence never ends (titles precede a name)."""
_MAYBE_END = frozenset({"etc", "a.m", "p.m", "jr", "sr", "inc", "ltd", "co"})
"""Abbreviations that end a sentence only when a capital follows."""
_DOTTED = re.compile(r"^(?:[^\W\d_]\.)+[^\W\d_]$")


def _next_letter(text: str) -> str:
    return text.lstrip(_OPENERS + " ")[:1]


def _ends_sentence(before: str, punct: str, after: str) -> bool:
    next_char = _next_letter(after)
    if punct == ".":
        word = before.rsplit(" ", 1)[-1].lstrip(_OPENERS).casefold()
        if word in _NEVER_END:
            return False
        if word in _MAYBE_END or _DOTTED.match(word):
            return next_char.isupper()
    return not next_char.islower()


def split_sentences(text: str) -> list[str]:
    """Sentences of one paragraph; a single newline is a space.

    Survives abbreviations (``Dr.``, ``e.g.``, ``a.m.``), decimals (``3.5``), ellipses
    followed by lowercase, and ends after closing quotes or brackets (``"Rest." Then``).
    """
    text = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if end >= len(text):
            break
        punct = match.group("punct")
        if not match.group("space") and punct[-1] not in _CJK_END:
            continue
        if _ends_sentence(text[start : match.start()], punct, text[end:]):
            sentences.append(text[start : match.end("close")])
            start = end
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


# --- say texts --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sentence:
    """One sentence of a ``say`` text and the gap that precedes it."""

    text: str
    """The sentence as written, normalized for display (captions show this)."""
    pause_before_s: float | None = None
    """Exact gap set by ``[pause Ns]`` markers just before it; replaces the usual gap."""
    new_paragraph: bool = False
    """A blank line precedes it (the paragraph gap applies unless ``pause_before_s`` is set)."""
    pause_after_s: float | None = None
    """Last sentence only: ``[pause Ns]`` markers ending the text (the gap after the step)."""


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs of a normalized text: a blank line separates them; blank ones are dropped."""
    return [paragraph for paragraph in _PARAGRAPH_BREAK.split(text) if paragraph.strip()]


def split_say(text: str) -> list[Sentence]:
    """Sentences of a ``say`` text (a fresh list; the work is memoized)."""
    return list(_split_say(text))


@functools.lru_cache(maxsize=4096)
def _split_say(text: str) -> tuple[Sentence, ...]:
    """Sentences of a ``say`` text, with paragraph breaks and inline pauses.

    Raises ValueError for a malformed pause marker (see :func:`find_pause_marker_errors`).
    Consecutive markers add up. A piece without letters or digits (the ``.`` of
    ``Relax [pause 2s].``, an emoji) joins the sentence before it, else the one after it.
    """
    errors = find_pause_marker_errors(text)
    if errors:
        raise ValueError(errors[0])
    texts: list[str] = []
    pauses_before: list[float | None] = []
    paragraph_starts: list[bool] = []
    pending_pause: float | None = None
    carry = ""
    for paragraph_index, paragraph in enumerate(split_paragraphs(normalize_text(text))):
        paragraph_first = len(texts)
        for chunk_index, chunk in enumerate(PAUSE_MARKER.split(paragraph)):
            if chunk_index % 2 == 1:
                pending_pause = (pending_pause or 0.0) + parse_duration(chunk.strip())
                continue
            for piece in split_sentences(chunk):
                if is_speakable(piece):
                    texts.append(f"{carry} {piece}".strip())
                    pauses_before.append(pending_pause)
                    paragraph_starts.append(
                        paragraph_index > 0 and len(texts) - 1 == paragraph_first
                    )
                    pending_pause = None
                    carry = ""
                elif len(texts) > paragraph_first:
                    glue = "" if pending_pause is not None or piece[0] in ".,;:!?" else " "
                    texts[-1] = f"{texts[-1]}{glue}{piece}"
                else:
                    carry = f"{carry} {piece}".strip()
        if carry and texts:
            texts[-1] = f"{texts[-1]} {carry}"
            carry = ""
    if carry:
        texts.append(carry)
        pauses_before.append(pending_pause)
        paragraph_starts.append(False)
        pending_pause = None
    sentences = [
        Sentence(sentence_text, pause, starts)
        for sentence_text, pause, starts in zip(texts, pauses_before, paragraph_starts, strict=True)
    ]
    if sentences and pending_pause is not None:
        last = sentences[-1]
        sentences[-1] = Sentence(last.text, last.pause_before_s, last.new_paragraph, pending_pause)
    return tuple(sentences)


# --- measures and limits ----------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:['\u2019.,\-][^\W_]+)*")


@functools.cache
def _cjk_char() -> re.Pattern[str]:
    """One CJK character; compiled on first use (its ranges take 4 ms to compile)."""
    return re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@functools.lru_cache(maxsize=8192)
def word_count(text: str) -> int:
    """Spoken words for length estimates; ``3.5``, ``don't`` count once, a CJK character once."""
    text = strip_tags(strip_pause_markers(text))
    if text.isascii():
        return len(_WORD.findall(text))
    cjk = len(_cjk_char().findall(text))
    return cjk + len(_WORD.findall(_cjk_char().sub(" ", text)))


def is_long_sentence(
    text: str, max_words: int = LONG_SENTENCE_WORDS, max_chars: int = LONG_SENTENCE_CHARS
) -> bool:
    """Whether a sentence is long enough to deserve a warning (over 40 words or 300 characters)."""
    return word_count(text) > max_words or len(" ".join(text.split())) > max_chars


def long_sentence_warning(
    text: str, max_words: int = LONG_SENTENCE_WORDS, max_chars: int = LONG_SENTENCE_CHARS
) -> str | None:
    """A warning message for a long sentence, or None."""
    if not is_long_sentence(text, max_words, max_chars):
        return None
    words = word_count(text)
    chars = len(" ".join(text.split()))
    start = " ".join(text.split()[:6])
    return (
        f"long sentence ({words} words, {chars} characters) starting {start!r}: "
        f"over {max_words} words or {max_chars} characters is hard to follow; consider splitting it"
    )


def split_for_limit(text: str, limit: int) -> list[str]:
    """Cut ``text`` into parts of at most ``limit`` characters, where the seam is least audible.

    A text within the limit stays whole. Otherwise the cuts go after sentence and clause ends
    (``.;:!?`` first, then commas, dashes, closing quotes), between words only when a clause is
    too long, and inside a word only when one word is; then as few and as even parts as possible.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1 character, got {limit}")
    text = " ".join(text.split())
    if len(text) <= limit:
        return [text] if text else []
    atoms: list[tuple[str, str, float]] = []
    for word in text.split(" "):
        pieces = [word[start : start + limit] for start in range(0, len(word), limit)]
        atoms += [(piece, "", 50.0) for piece in pieces[:-1]]
        atoms.append((pieces[-1], " ", _cut_penalty(word)))
    count = len(atoms)
    best: list[tuple[float, int]] = [(0.0, 0)] + [(float("inf"), 0)] * count
    for end in range(1, count + 1):
        length = -len(atoms[end - 1][1])
        for begin in range(end - 1, -1, -1):
            length += len(atoms[begin][0]) + len(atoms[begin][1])
            if length > limit:
                break
            penalty = atoms[end - 1][2] if end < count else 0.0
            cost = best[begin][0] + 1.0 + penalty + 0.01 * ((limit - length) / limit) ** 2
            if cost < best[end][0]:
                best[end] = (cost, begin)
    parts: list[str] = []
    end = count
    while end > 0:
        begin = best[end][1]
        parts.append("".join(atom + sep for atom, sep, _ in atoms[begin:end]).rstrip(" "))
        end = begin
    return parts[::-1]


def _cut_penalty(word: str) -> float:
    """How audible a seam after ``word`` is: 0 after a sentence or clause end, 5 mid-clause."""
    bare = word.rstrip("\"'”’)]»")
    if bare and bare[-1] in ".!?;:…":
        return 0.0
    if bare != word or (bare and bare[-1] in ",—–-"):
        return 0.5
    return 5.0


# --- review for the validator ------------------------------------------------------------


@dataclass(frozen=True)
class TextIssue:
    """One problem of a ``say`` text, for the validator to report at the step's place."""

    severity: str
    """``error`` or ``warning``."""
    message: str
    """What is wrong, in one sentence."""


def review_say(text: str, lexicon: Lexicon = ()) -> list[TextIssue]:
    """Every problem of a ``say`` text: bad pause markers, unspeakable text, long sentences."""
    errors = find_pause_marker_errors(text)
    if errors:
        return [TextIssue("error", message) for message in errors]
    sentences = split_say(text)
    if not sentences:
        return [TextIssue("error", "the text has nothing to say")]
    issues: list[TextIssue] = []
    for sentence in sentences:
        try:
            prepared = prepare_for_engine(sentence.text, lexicon)
        except ValueError as error:
            issues.append(TextIssue("error", str(error)))
            continue
        warning = long_sentence_warning(prepared)
        if warning:
            issues.append(TextIssue("warning", warning))
    return issues
