"""IPA phonemes (as the lexicon writes them, Kokoro's alphabet) in espeak's own notation for
English, so one ``{phonemes: ...}`` entry serves every engine that takes phonemes."""

from __future__ import annotations

import re

from pipeline.script.declared import PHONEME_MARKS

ENGLISH: dict[str, str] = {
    # vowels and diphthongs (longest first when matched)
    "ɑːɹ": "A@", "ɔːɹ": "O@", "ɪɹ": "i@3", "ɛɹ": "e@", "ʊɹ": "U@",
    "eɪ": "eI", "aɪ": "aI", "ɔɪ": "OI", "oʊ": "oU", "əʊ": "oU", "aʊ": "aU",
    "ɪə": "i@", "eə": "e@", "ʊə": "U@",
    "ɑː": "A:", "ɔː": "O:", "ɜː": "3:", "iː": "i:", "uː": "u:",
    "ɑ": "A", "æ": "a", "ʌ": "V", "ɒ": "0", "ɔ": "O", "ə": "@", "ɚ": "3", "ɜ": "3",
    "ɛ": "E", "e": "e", "ɪ": "I", "i": "i", "ʊ": "U", "u": "u", "ᵻ": "I2", "ɐ": "a#",
    "a": "a", "o": "o",
    # consonants
    "tʃ": "tS", "dʒ": "dZ", "θ": "T", "ð": "D", "ʃ": "S", "ʒ": "Z", "ŋ": "N", "ɹ": "r",
    "ɾ": "*", "ʔ": "?", "ɡ": "g", "ɫ": "l",
    **{c: c for c in "pbtdkgfvszhmnlrwj"},
    # stress and length
    "ˈ": "'", "ˌ": ",", "ː": ":", ".": "", " ": "_",
}  # fmt: skip
"""IPA -> espeak mnemonics (espeak-ng's English phoneme names)."""

_SYMBOLS = sorted(ENGLISH, key=len, reverse=True)
_SPAN = re.compile(re.escape(PHONEME_MARKS[0]) + r"(.*?)" + re.escape(PHONEME_MARKS[1]))


def to_espeak(ipa: str) -> str:
    """``klˈɑːnəpɪn`` -> ``kl'A:n@pIn``; ValueError naming a symbol espeak has no name for."""
    out: list[str] = []
    position = 0
    while position < len(ipa):
        for symbol in _SYMBOLS:
            if ipa.startswith(symbol, position):
                out.append(ENGLISH[symbol])
                position += len(symbol)
                break
        else:
            raise ValueError(
                f"espeak has no English phoneme for {ipa[position]!r} "
                f"(U+{ord(ipa[position]):04X}) in {ipa!r}"
            )
    return "".join(out)


def espeak_text(text: str) -> str:
    """``text`` with every IPA span in espeak's notation (spoken with phoneme input on)."""
    return _SPAN.sub(lambda match: f"[[{to_espeak(match.group(1))}]]", text)
