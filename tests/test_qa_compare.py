"""Comparing transcripts with scripts: numbers, normalisation, alignment, lexicon, verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.project.settings import QaSettings
from pipeline.qa.compare import (
    CharRate,
    align,
    char_rates,
    check_words,
    judge,
    normalize,
    reference_slots,
    speech_length_s,
    spelling_key,
    spoken_chars,
    word_recall,
)
from pipeline.qa.numbers import cardinal, ordinal, spell_numbers, year

LEXICON = {"clonazepam": "kloh-nazza-pam", "GABA": "gabba", "Klonopin": "klon oh pin"}


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (42, "forty two"),
        (100, "one hundred"),
        (115, "one hundred fifteen"),
        (1000, "one thousand"),
        (1234, "one thousand two hundred thirty four"),
        (1_000_000, "one million"),
        (2_000_017, "two million seventeen"),
        (-3, "minus three"),
        (10**15, "one zero zero zero zero zero zero zero zero zero zero zero zero zero zero zero"),
    ],
)
def test_cardinals(number: int, words: str) -> None:
    assert cardinal(number) == words


@pytest.mark.parametrize(
    ("number", "words"),
    [(1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (12, "twelfth"), (20, "twentieth"),
     (21, "twenty first"), (100, "one hundredth")],
)  # fmt: skip
def test_ordinals(number: int, words: str) -> None:
    assert ordinal(number) == words


@pytest.mark.parametrize(
    ("number", "words"),
    [(1990, "nineteen ninety"), (1905, "nineteen oh five"), (1900, "nineteen hundred"),
     (2000, "two thousand"), (2024, "twenty twenty four")],
)  # fmt: skip
def test_years(number: int, words: str) -> None:
    assert year(number) == words


@pytest.mark.parametrize(
    ("text", "spelled"),
    [
        ("4-7-8 breathing", "four - seven - eight breathing"),
        ("3.5 mg", "three point five mg"),
        ("on the 21st", "on the twenty first"),
        ("the 1990s", "the nineteen nineties"),
        ("in 2024", "in twenty twenty four"),
        ("50% of people", "fifty percent of people"),
        ("$5 or $1", "five dollars or one dollar"),
        ("at 4:30 or 4:05 or 6:00", "at four thirty or four oh five or six"),
        ("1,000,000 breaths", "one million breaths"),
        ("code 007", "code zero zero seven"),
        ("no digits at all", "no digits at all"),
        ("x²", "x²"),
    ],
)
def test_numbers_are_spelled_in_text(text: str, spelled: str) -> None:
    assert " ".join(spell_numbers(text).split()) == spelled


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("Hello, World!", "hello world"),
        ("It\u2019s long-acting\u2014really.", "it's long acting really"),
        ("'Quoted' words, don't they?", "quoted words don't they"),
        ("Breathe in for 4, hold for 7.", "breathe in for four hold for seven"),
        ("Ça va? Très bien…", "ça va très bien"),
        ("  spaced\tout \n text ", "spaced out text"),
        ("(Klonopin)", "klonopin"),
        ("...", ""),
    ],
)
def test_normalisation_follows_seed_tts_eval_with_numbers_spelled(text: str, normal: str) -> None:
    assert normalize(text) == normal


def test_a_plain_sentence_heard_exactly_has_no_error() -> None:
    check = check_words("Let your shoulders soften.", "let your shoulders soften")
    assert (check.wer, check.recall, check.missing, check.extra) == (0.0, 1.0, (), ())


def test_substitution_deletion_and_insertion_are_counted() -> None:
    check = check_words("the quick brown fox jumps", "the quack fox jumps high")
    operations = [step.operation for step in check.steps]
    assert sorted(operations) == ["delete", "equal", "equal", "equal", "insert", "substitute"]
    assert operations[-1] == "insert"
    assert check.missing == ("quick", "brown")
    assert check.extra == ("quack", "high")
    assert check.wer == pytest.approx(3 / 5)
    assert check.recall == pytest.approx(3 / 5)


def test_a_respelt_word_counts_when_the_original_is_heard() -> None:
    check = check_words("Clonazepam is long-acting.", "Clonazepam is long acting.", LEXICON)
    assert check.wer == 0.0


@pytest.mark.parametrize("heard", ["kloh nazza pam is long acting", "klohnazzapam is long acting"])
def test_a_respelt_word_counts_when_the_respelling_is_heard(heard: str) -> None:
    check = check_words("Clonazepam is long-acting.", heard, LEXICON)
    assert (check.wer, check.recall) == (0.0, 1.0)


def test_a_respelt_word_heard_as_something_else_is_missing_once() -> None:
    check = check_words(
        "If you take clonazepam, ask.", "If you take clothes as a palm ask", LEXICON
    )
    assert check.missing == ("clonazepam",)
    assert check.missing_content == ("clonazepam",)
    assert check.script_words == 5


def test_possessive_of_a_lexicon_word_takes_the_respelling_too() -> None:
    slots = reference_slots("Klonopin's effect", LEXICON)
    assert slots[0].written == ("klonopin's",)
    assert ("klon", "oh", "pin's") in slots[0].forms
    assert check_words("Klonopin's effect", "klon oh pin's effect", LEXICON).wer == 0.0


def test_a_multi_word_entry_is_one_slot_that_counts_its_words() -> None:
    lexicon = [("New York", "noo york")]
    slots = reference_slots("I love New York.", lexicon)
    assert [slot.text for slot in slots] == ["i", "love", "new york"]
    check = check_words("I love New York.", "I love", lexicon)
    assert (check.script_words, check.missing, check.wer) == (4, ("new york",), 0.5)


def test_numbers_in_the_script_match_numbers_heard_either_way() -> None:
    assert check_words("Breathe in for 4 counts.", "breathe in for four counts").wer == 0.0
    assert check_words("Breathe in for four counts.", "Breathe in for 4 counts.").wer == 0.0


def test_empty_sides() -> None:
    assert check_words("", "").wer == 0.0
    assert check_words("", "hello").wer == 1.0
    silent = check_words("Hello there.", "")
    assert (silent.wer, silent.recall, silent.missing) == (1.0, 0.0, ("hello", "there"))


def test_alignment_of_nothing_is_empty() -> None:
    assert align([], []) == []


def test_function_words_missing_are_not_content_words() -> None:
    check = check_words("Let the breath slow down.", "let breath slow down")
    assert check.missing == ("the",)
    assert check.missing_content == ()


def test_word_recall_pools_sentences() -> None:
    scripts = ["one two three four", "five six"]
    heard = ["one two three", "five six"]
    assert word_recall(scripts, heard) == pytest.approx(5 / 6)
    assert word_recall([], []) == 1.0
    with pytest.raises(ValueError):
        word_recall(["a"], [])


def test_long_sentences_align_quickly() -> None:
    names = [f"w{a}{b}{c}" for a in "abcd" for b in "abcdefghij" for c in "abcdefghij"]
    script = " ".join(names)
    heard = " ".join(name for n, name in enumerate(names) if n % 7)
    check = check_words(script, heard)
    assert check.script_words == 400
    assert len(check.missing) == len(range(0, 400, 7))


# --- characters per second -------------------------------------------------------------------


def _clip(speech_s: float, silence_s: float = 0.2, rate: int = 16000) -> np.ndarray:
    tone = 0.3 * np.sin(np.arange(round(speech_s * rate)) / 5.0).astype(np.float32)
    quiet = np.zeros(round(silence_s * rate), dtype=np.float32)
    return np.concatenate([quiet, tone, quiet])


def test_spoken_characters_and_speech_length() -> None:
    assert spoken_chars("It's 4 o'clock!") == len("itsfouroclock")
    assert speech_length_s(_clip(2.0), 16000) == pytest.approx(2.0, abs=0.01)
    assert speech_length_s(np.zeros(1000, dtype=np.float32), 16000) == 0.0
    with pytest.raises(ValueError, match="sample rate"):
        speech_length_s(_clip(1.0), 0)


def test_rates_are_compared_with_the_track_median() -> None:
    texts = ["a" * 30, "b" * 30, "c" * 30, "d" * 30, "short"]
    clips = [_clip(2.0), _clip(2.0), _clip(2.0), _clip(0.5), _clip(0.5)]
    rates = char_rates(texts, clips, 16000)
    assert rates[0].per_s == pytest.approx(15.0, rel=0.02)
    assert rates[0].ratio == pytest.approx(1.0, rel=0.02)
    assert rates[3].ratio == pytest.approx(4.0, rel=0.05)
    assert rates[4].ratio is None  # too short to compare
    verdicts = [judge(None, rate) for rate in rates]
    assert [verdict.status for verdict in verdicts] == ["ok", "ok", "ok", "fail", "ok"]
    assert "4.0x faster than the track's median rate" in verdicts[3].reasons[-1]
    with pytest.raises(ValueError, match="2 sentences but 1 clips"):
        char_rates(["a", "b"], [_clip(1.0)], 16000)


def test_a_silent_clip_of_a_sentence_fails() -> None:
    rate = CharRate(chars=20, speech_s=0.0)
    assert rate.per_s == float("inf")
    assert judge(None, rate).status == "fail"
    assert CharRate(chars=0, speech_s=0.0).per_s == 0.0


def test_absolute_rate_bounds_warn() -> None:
    verdict = judge(None, CharRate(chars=100, speech_s=2.0))
    assert verdict.status == "warn"
    assert verdict.reasons == ("50.0 characters/s outside 4-25",)


# --- verdicts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "heard", "status"),
    [
        ("one two three four five six seven eight nine ten", "one two three four five six seven "
         "eight nine ten", "ok"),
        ("one two three four five six seven eight nine ten", "one two three four five six seven "
         "eight nine ten eleven", "ok"),  # 0.10
        ("one two three four five six seven eight nine ten", "one two three four five six seven "
         "eight nine ten eleven twelve", "warn"),  # 0.20
        ("one two three four five six seven eight nine ten", "one two three", "fail"),
        ("Let the breath slow.", "let breath slow", "warn"),  # 0.25 WER, no content word lost
        ("Relax your jaw now.", "relax your now", "warn"),  # a content word lost
    ],
)  # fmt: skip
def test_wer_thresholds(script: str, heard: str, status: str) -> None:
    assert judge(check_words(script, heard)).status == status


def test_thresholds_are_parameters() -> None:
    check = check_words("Relax your jaw now.", "relax your now")
    lenient = QaSettings(warn_wer=0.3, fail_wer=0.6, warn_missing_content=False)
    assert judge(check, thresholds=lenient).status == "ok"
    strict = QaSettings(warn_wer=0.05, fail_wer=0.2)
    verdict = judge(check, thresholds=strict)
    assert verdict.status == "fail"
    assert verdict.reasons == ("WER 0.25 above 0.20", "missing: jaw")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"warn_wer": 0.6, "fail_wer": 0.5}, "WER thresholds"),
        ({"min_chars_per_s": 30.0}, "characters per second"),
        ({"warn_rate_ratio": 1.0}, "rate ratios"),
    ],
)
def test_inconsistent_thresholds_are_found(options: dict[str, float], message: str) -> None:
    found = QaSettings(**options).contradiction()  # type: ignore[arg-type]
    assert found is not None and message in found[1]
    assert QaSettings().contradiction() is None


@pytest.mark.parametrize(
    ("word", "key"),
    [
        ("behavioural", "behavioral"),
        ("colours", "colors"),
        ("favourite", "favorite"),
        ("realised", "realized"),
        ("organisation", "organization"),
        ("analyse", "analyze"),
        ("centre", "center"),
        ("metres", "meters"),
        ("four", "four"),
        ("your", "your"),
        ("hour", "hour"),
        ("rise", "rise"),
    ],
)
def test_british_spellings_key_as_american(word: str, key: str) -> None:
    assert spelling_key(word) == key


def test_a_british_script_matches_an_american_transcript_and_shows_its_own_words() -> None:
    script = "Cognitive behavioural therapy helps you realise your favourite colour."
    heard = "Cognitive behavioral therapy helps you realize your favorite color, four."
    check = check_words(script, heard)
    assert (check.missing, check.extra) == ((), ("four",))
    assert check.steps[1].script == "behavioural"
    assert check.steps[1].heard == "behavioral"


@pytest.mark.parametrize("spoken", [{"phonemes": "klˈɑːnəpɪn"}, "[[klˈɑːnəpɪn]]"])
def test_a_lexicon_entry_with_phonemes_accepts_the_word_itself(spoken: object) -> None:
    lexicon = [("Klonopin", spoken)]
    slots = reference_slots("Klonopin works.", lexicon)  # type: ignore[arg-type]
    assert slots[0].forms == (("klonopin",),)
    assert check_words("Klonopin works.", "Klonopin works", lexicon).wer == 0.0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("script", "heard"),
    [("Goodnight.", "Good night."), ("Time to readjust.", "Time to re-adjust."),
     ("Rest in the sunlight now.", "Rest in the sun light now.")],
)  # fmt: skip
def test_a_word_heard_as_two_that_join_into_it_counts(script: str, heard: str) -> None:
    check = check_words(script, heard)
    assert (check.wer, check.missing, check.extra) == (0.0, (), ())


def test_two_heard_words_that_do_not_join_into_the_script_word_are_errors() -> None:
    check = check_words("Goodnight.", "Good evening.")
    assert check.missing == ("goodnight",) and check.wer == 2.0
