"""Numbers spelled out in English words, so ``4-7-8`` in a script matches "four seven eight".

Both the script and the transcript pass through :func:`spell_numbers`, so what matters is
that one number always reads one way; the readings follow what a narrator says.
"""

from __future__ import annotations

import re

_ONES_TEXT = """zero one two three four five six seven eight nine ten eleven twelve thirteen
fourteen fifteen sixteen seventeen eighteen nineteen"""
_ONES = _ONES_TEXT.split()
_TENS_TEXT = "_ _ twenty thirty forty fifty sixty seventy eighty ninety"
_TENS = _TENS_TEXT.split()
_SCALES = ("", "thousand", "million", "billion", "trillion")
_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}

MAX_SPELLED = 10**15 - 1
"""Beyond this, digits are read one by one (no scale word after trillion)."""

_NUMBER = re.compile(
    r"(?P<currency>[$£€])?"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)"
    r"(?:\.(?P<frac>\d+))?"
    r"(?:(?P<ordinal>st|nd|rd|th)\b|(?P<plural>'?s)\b)?"
    r"(?P<percent>\s?%)?"
)
_CLOCK = re.compile(r"\b(?P<hour>\d{1,2}):(?P<minute>[0-5]\d)\b")
_CURRENCY = {"$": ("dollar", "dollars"), "£": ("pound", "pounds"), "€": ("euro", "euros")}


def _below_thousand(number: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(number, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens] if not ones else f"{_TENS[tens]} {_ONES[ones]}")
    elif rest or not words:
        words.append(_ONES[rest])
    return words


def cardinal(number: int) -> str:
    """``1234`` -> ``one thousand two hundred thirty four`` (no "and", no hyphens)."""
    if number < 0:
        return "minus " + cardinal(-number)
    if number > MAX_SPELLED:
        return digits(str(number))
    if number == 0:
        return "zero"
    groups: list[str] = []
    scale = 0
    while number:
        number, group = divmod(number, 1000)
        if group:
            groups.insert(0, " ".join([*_below_thousand(group), _SCALES[scale]]).strip())
        scale += 1
    return " ".join(groups)


def ordinal(number: int) -> str:
    """``21`` -> ``twenty first``; ``12`` -> ``twelfth``."""
    words = cardinal(number).split(" ")
    last = words[-1]
    if last in _ORDINALS:
        words[-1] = _ORDINALS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def year(number: int) -> str:
    """``1990`` -> ``nineteen ninety``, ``1905`` -> ``nineteen oh five``, ``2000`` -> ``two
    thousand``: four-digit years as people say them.
    """
    high, low = divmod(number, 100)
    if low == 0:
        return cardinal(number) if high % 10 == 0 else f"{cardinal(high)} hundred"
    if low < 10:
        return f"{cardinal(high)} oh {_ONES[low]}"
    return f"{cardinal(high)} {cardinal(low)}"


def digits(text: str) -> str:
    """Digits read one by one: ``"007"`` -> ``zero zero seven``."""
    return " ".join(_ONES[int(digit)] for digit in text if digit.isdecimal())


def _is_year(text: str) -> bool:
    return len(text) == 4 and (1100 <= int(text) <= 1999 or 2010 <= int(text) <= 2099)


def _plural(words: str) -> str:
    last = words.rsplit(" ", 1)[-1]
    stem = words[: len(words) - len(last)]
    return stem + (last[:-1] + "ies" if last.endswith("y") else last + "s")


def _spell(match: re.Match[str]) -> str:
    whole = match.group("int").replace(",", "")
    fraction = match.group("frac")
    value = int(whole)
    if match.group("ordinal") and not fraction:
        words = ordinal(value)
    elif not fraction and "," not in match.group("int") and _is_year(whole):
        words = year(value)
    elif len(whole) > 1 and whole.startswith("0"):
        words = digits(whole)
    else:
        words = cardinal(value)
    if fraction:
        words += " point " + digits(fraction)
    if match.group("plural"):
        words = _plural(words)
    if match.group("percent"):
        words += " percent"
    currency = match.group("currency")
    if currency:
        singular, plural = _CURRENCY[currency]
        words += " " + (singular if value == 1 and not fraction else plural)
    return f" {words} "


def _clock(match: re.Match[str]) -> str:
    hour, minute = int(match.group("hour")), int(match.group("minute"))
    if minute == 0:
        return f" {cardinal(hour)} "
    if minute < 10:
        return f" {cardinal(hour)} oh {_ONES[minute]} "
    return f" {cardinal(hour)} {cardinal(minute)} "


def spell_numbers(text: str) -> str:
    """Every number in ``text`` in words: ``3.5`` ``21st`` ``50%`` ``$5`` ``1990s`` ``4:30``.

    Spelled numbers get a space on each side, so ``4-7-8`` becomes three words once
    punctuation goes.
    """
    if not any(character.isdecimal() for character in text):
        return text
    return _NUMBER.sub(_spell, _CLOCK.sub(_clock, text))
