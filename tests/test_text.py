"""Text preparation: each pre-processor and the tokenizer, as input/output tables."""

from __future__ import annotations

import pytest

from pipeline.script.text import (
    Sentence,
    TextIssue,
    apply_lexicon,
    collapse_whitespace,
    defuse_leading_dash,
    find_pause_marker_errors,
    is_long_sentence,
    is_speakable,
    long_sentence_warning,
    normalize_newlines,
    normalize_quotes,
    normalize_spaces,
    normalize_text,
    normalize_unicode,
    prepare_for_engine,
    remove_control_chars,
    remove_emoji,
    remove_invisible,
    review_say,
    split_for_limit,
    split_paragraphs,
    split_say,
    split_sentences,
    strip_pause_markers,
    strip_tags,
    word_count,
)

LEXICON = (("Klonopin", "KLON-oh-pin"), ("Thich Nhat Hanh", "Tick Not Hahn"), ("don't", "do not"))

# --- display pre-processors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\r\nb", "a\nb"),
        ("a\rb", "a\nb"),
        ("a\x0cb\x0bc", "a\nb\nc"),
        ("a\u2028b", "a\nb"),
        ("a\u2029b", "a\n\nb"),
        ("a\x85b", "a\nb"),
        ("a\nb", "a\nb"),
    ],
)
def test_normalize_newlines(text: str, expected: str) -> None:
    assert normalize_newlines(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Caf\u0065\u0301", "Caf\u00e9"),
        ("u\u0308ber", "\u00fcber"),
        ("\u00e9t\u00e9", "\u00e9t\u00e9"),
        ("\u0418\u0306", "\u0419"),
    ],
)
def test_normalize_unicode_composes(text: str, expected: str) -> None:
    assert normalize_unicode(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zero\u200bwidth", "zerowidth"),
        ("\ufeffStart", "Start"),
        ("soft\u00adhyphen", "softhyphen"),
        ("word\u2060joiner", "wordjoiner"),
        (
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
            "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        ),
        ("lone \u200d joiner", "lone  joiner"),
        ("plain text", "plain text"),
    ],
)
def test_remove_invisible(text: str, expected: str) -> None:
    assert remove_invisible(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Breathe\x00 in", "Breathe in"),
        ("bell\x07 rings\x1b", "bell rings"),
        ("del\x7f", "del"),
        ("c1\x9b control", "c1 control"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("bidi \u202eoverride\u202c", "bidi override"),
        ("lone \ud800surrogate", "lone surrogate"),
        (
            "\u00e9 \u00fc \u041f\u0440\u0438\u0432\u0435\u0442",
            "\u00e9 \u00fc \u041f\u0440\u0438\u0432\u0435\u0442",
        ),
    ],
)
def test_remove_control_chars(text: str, expected: str) -> None:
    assert remove_control_chars(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\u00a0b", "a b"),
        ("a\u202fb\u2007c", "a b c"),
        ("a\t\tb", "a b"),
        ("a   b", "a b"),
        ("a \n b", "a \n b"),
        ("a\u3000b", "a b"),
        ("plain", "plain"),
    ],
)
def test_normalize_spaces(text: str, expected: str) -> None:
    assert normalize_spaces(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('Rest.<break time="1s"/>Now.', "Rest. Now."),
        ("<speak>Hello</speak>", " Hello "),
        ("<prosody rate='slow'>Slowly</prosody>", " Slowly "),
        ("<emphasis>calm</emphasis> now", " calm  now"),
        ("1 < 2 and 3 > 2", "1 < 2 and 3 > 2"),
        ("I <3 you", "I <3 you"),
    ],
)
def test_strip_tags_keeps_text(text: str, expected: str) -> None:
    assert strip_tags(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\u201cRest,\u201d she said\u2026", "\u201cRest,\u201d she said\u2026"),
        ("Caf\u0065\u0301\u00a0au\u200blait", "Caf\u00e9 aulait"),
        ("<speak>Hi\x00</speak>", " Hi "),
        ("one\r\n\r\ntwo", "one\n\ntwo"),
        ("Calm \U0001f642", "Calm \U0001f642"),
    ],
)
def test_normalize_text_is_the_display_form(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


# --- engine pre-processors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Rest [pause 3s] now", "Rest   now"),
        ("[PAUSE 500ms]Go", " Go"),
        ("End. [pause 1.5s]", "End.  "),
        ("[pause3s]", " "),
        ("[soft] voice", "[soft] voice"),
    ],
)
def test_strip_pause_markers(text: str, expected: str) -> None:
    assert strip_pause_markers(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Calm \U0001f642", "Calm  "),
        ("Peace \U0001f54a\ufe0f now", "Peace   now"),
        ("thumbs \U0001f44d\U0001f3fd", "thumbs  "),
        ("family \U0001f468\u200d\U0001f469\u200d\U0001f467", "family  "),
        ("flag \U0001f1eb\U0001f1f7", "flag  "),
        ("star \u2b50 heart \u2764\ufe0f", "star   heart  "),
        ("arrow \u2192 next", "arrow   next"),
        ("keycap 1\ufe0f\u20e3", "keycap 1 "),
        ("20\u00b0 \u00a9 \u2122", "20\u00b0 \u00a9 \u2122"),
        (
            "\u00e9\u00fc \u041a\u0438\u0435\u0432 \u4f60\u597d",
            "\u00e9\u00fc \u041a\u0438\u0435\u0432 \u4f60\u597d",
        ),
    ],
)
def test_remove_emoji(text: str, expected: str) -> None:
    assert remove_emoji(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\u201cRest\u201d", '"Rest"'),
        ("don\u2019t", "don't"),
        ("\u00abcalme\u00bb", '"calme"'),
        ("\u201eRuhe\u201c", '"Ruhe"'),
        ("wait\u2026", "wait..."),
        ("plain 'ascii'", "plain 'ascii'"),
    ],
)
def test_normalize_quotes(text: str, expected: str) -> None:
    assert normalize_quotes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-rate 5", "rate 5"),
        ("- Breathe in", "Breathe in"),
        ("--help", "help"),
        ("\u2014 and now", "and now"),
        ("-5 degrees", "\u22125 degrees"),
        ("Breathe - in", "Breathe - in"),
        ("well-being", "well-being"),
    ],
)
def test_defuse_leading_dash(text: str, expected: str) -> None:
    assert defuse_leading_dash(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  a \n\n b\t", "a b"),
        ("Calm  .", "Calm."),
        ("Rest , now !", "Rest, now!"),
        ("a - b", "a - b"),
    ],
)
def test_collapse_whitespace(text: str, expected: str) -> None:
    assert collapse_whitespace(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Take Klonopin daily.", "Take KLON-oh-pin daily."),
        ("KLONOPIN and klonopin", "KLON-oh-pin and KLON-oh-pin"),
        ("Klonopin's effect", "KLON-oh-pin's effect"),
        ("Klonopins stay", "Klonopins stay"),
        ("preKlonopin stays", "preKlonopin stays"),
        ("Klonopin-based", "KLON-oh-pin-based"),
        ("by Thich  Nhat\nHanh.", "by Tick Not Hahn."),
        ("I don't know", "I do not know"),
        ("nothing here", "nothing here"),
    ],
)
def test_apply_lexicon_whole_words_case_insensitive(text: str, expected: str) -> None:
    assert apply_lexicon(text, LEXICON) == expected


@pytest.mark.parametrize(
    ("lexicon", "text", "expected"),
    [
        ({"a": "b", "b": "c"}, "a b", "b c"),
        ((("calm", "CALM1"), ("Calm", "CALM2")), "Calm", "CALM1"),
        ({"C++": "C plus plus"}, "I like C++.", "I like C plus plus."),
        ({"St. John": "Saint John"}, "St. John's", "Saint John's"),
        ({"": "x", "  ": "y"}, "text", "text"),
        ({"caf\u00e9": "ka-FAY"}, "Caf\u00c9 au lait", "ka-FAY au lait"),
        ((), "unchanged", "unchanged"),
    ],
)
def test_apply_lexicon_edge_cases(lexicon: object, text: str, expected: str) -> None:
    assert apply_lexicon(text, lexicon) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Breathe in.", "Breathe in."),
        ("  Take\u00a0Klonopin\u200b now.  ", "Take KLON-oh-pin now."),
        ("- Breathe in", "Breathe in"),
        ("-5 degrees", "\u22125 degrees"),
        ("\u2014 Rest", "Rest"),
        ('<speak>Rest <break time="1s"/> now.</speak>', "Rest now."),
        ("Calm \U0001f642.", "Calm."),
        ("\U0001f64f Welcome", "Welcome"),
        ("Rest\x00 now\x07.", "Rest now."),
        ("Rest [pause 3s] now.", "Rest now."),
        ("\u201cDon\u2019t\u201d worry\u2026", '"do not" worry...'),
        (
            "Caf\u0065\u0301 \u00fcber \u041f\u0440\u0438\u0432\u0435\u0442",
            "Caf\u00e9 \u00fcber \u041f\u0440\u0438\u0432\u0435\u0442",
        ),
        ("line\none", "line one"),
        ("\u4f60\u597d\u3002", "\u4f60\u597d\u3002"),
    ],
)
def test_prepare_for_engine(text: str, expected: str) -> None:
    assert prepare_for_engine(text, LEXICON) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\U0001f64f\U0001f3fd",
        "<break time='1s'/>",
        "[pause 2s]",
        "...",
        "-",
        "\x00\x01",
        "\u2192 \u2605",
    ],
)
def test_prepare_for_engine_rejects_unspeakable(text: str) -> None:
    with pytest.raises(ValueError, match="nothing speakable"):
        prepare_for_engine(text)


def test_prepare_for_engine_accepts_mapping_lexicon() -> None:
    assert prepare_for_engine("Klonopin", {"Klonopin": "KLON-oh-pin"}) == "KLON-oh-pin"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a", True),
        ("5", True),
        ("\u00e9", True),
        ("\u4f60", True),
        ("...", False),
        ("", False),
        ("\U0001f642", False),
    ],
)
def test_is_speakable(text: str, expected: bool) -> None:
    assert is_speakable(text) is expected


# --- pause markers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Rest [pause 3s] now.", []),
        ("[pause 1.5s] [pause 500ms] [Pause 1m30s] [pause 4:30] [pause 2]", []),
        ("[pause3s] and [ pause 3s ]", []),
        (
            "[pause ten]",
            ["malformed pause marker '[pause ten]': expected a duration like '30s', got 'ten'"],
        ),
        ("[pause]", ["pause marker '[pause]' has no duration; write it like '[pause 3s]'"]),
        (
            "[pause -2s]",
            ["malformed pause marker '[pause -2s]': expected a duration like '30s', got '-2s'"],
        ),
        ("Rest [pause 3s", ["unclosed pause marker '[pause 3s': expected ']'"]),
        ("Rest [pause 3s\nnow", ["unclosed pause marker '[pause 3s': expected ']'"]),
        ("[paus 3s]", ["unknown marker '[paus 3s]': did you mean '[pause 3s]'?"]),
        ("[pasue 2s]", ["unknown marker '[pasue 2s]': did you mean '[pause 2s]'?"]),
        ("[softly] and [pass] and [1]", []),
        (
            "[pause 3s [pause x]",
            [
                "unclosed pause marker '[pause 3s': expected ']'",
                "malformed pause marker '[pause x]': expected a duration like '30s', got 'x'",
            ],
        ),
        (
            "[pause 1s] [pause x] [pause 2y]",
            [
                "malformed pause marker '[pause x]': expected a duration like '30s', got 'x'",
                "malformed pause marker '[pause 2y]': expected a duration like '30s', got '2y'",
            ],
        ),
    ],
)
def test_find_pause_marker_errors(text: str, expected: list[str]) -> None:
    assert find_pause_marker_errors(text) == expected


def test_split_say_raises_on_malformed_marker() -> None:
    with pytest.raises(ValueError, match=r"malformed pause marker '\[pause ten\]'"):
        split_say("Rest. [pause ten] Now.")


# --- sentence tokenizer -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Welcome. Sit down.", ["Welcome.", "Sit down."]),
        ("Dr. Lee is here. Mr. and Mrs. Ross too.", ["Dr. Lee is here.", "Mr. and Mrs. Ross too."]),
        ("Ask Ms. Park. She knows.", ["Ask Ms. Park.", "She knows."]),
        ("Fruit, e.g. apples. Or i.e. This.", ["Fruit, e.g. apples.", "Or i.e. This."]),
        ("Calm vs. Busy minds. Next.", ["Calm vs. Busy minds.", "Next."]),
        ("Walk down St. Mark's road. Stop.", ["Walk down St. Mark's road.", "Stop."]),
        (
            "Pears, etc. and more. Apples etc. Then stop.",
            ["Pears, etc. and more.", "Apples etc.", "Then stop."],
        ),
        (
            "At 7 a.m. we sit. At 9 p.m. Then sleep.",
            ["At 7 a.m. we sit.", "At 9 p.m.", "Then sleep."],
        ),
        ("Hold for 3.5 seconds. Then 0.5 more.", ["Hold for 3.5 seconds.", "Then 0.5 more."]),
        ("It costs 1,000.50 dollars. Fine.", ["It costs 1,000.50 dollars.", "Fine."]),
        ("Breathe... and let go.", ["Breathe... and let go."]),
        ("Breathe... Let go.", ["Breathe...", "Let go."]),
        (
            "Breathe\u2026 and let go. Breathe\u2026 Now.",
            ["Breathe\u2026 and let go.", "Breathe\u2026", "Now."],
        ),
        ('"Rest." Then relax.', ['"Rest."', "Then relax."]),
        ("\u201cRest.\u201d Then relax.", ["\u201cRest.\u201d", "Then relax."]),
        ('He said "Rest." then left.', ['He said "Rest." then left.']),
        ("(Slowly.) Now.", ["(Slowly.)", "Now."]),
        ('Rest. "Then" we go.', ["Rest.", '"Then" we go.']),
        ("Really?! Yes!! Why? Because.", ["Really?!", "Yes!!", "Why?", "Because."]),
        ('"Why?" she asked.', ['"Why?" she asked.']),
        ("One\ntwo.\nThree.", ["One two.", "Three."]),
        ("No final stop", ["No final stop"]),
        ("Count. 1, 2, 3.", ["Count.", "1, 2, 3."]),
        (
            "\u041f\u0440\u0438\u0432\u0435\u0442. \u041a\u0430\u043a \u0434\u0435\u043b\u0430?",
            [
                "\u041f\u0440\u0438\u0432\u0435\u0442.",
                "\u041a\u0430\u043a \u0434\u0435\u043b\u0430?",
            ],
        ),
        ("\u00c9t\u00e9. \u00dcber alles.", ["\u00c9t\u00e9.", "\u00dcber alles."]),
        (
            "\u4f60\u597d\u3002\u6211\u5f88\u597d\uff01",
            ["\u4f60\u597d\u3002", "\u6211\u5f88\u597d\uff01"],
        ),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("one\n\ntwo", ["one", "two"]),
        ("one\n \t\ntwo\nstill two", ["one", "two\nstill two"]),
        ("\n\none\n\n\n\n", ["one"]),
        ("", []),
    ],
)
def test_split_paragraphs(text: str, expected: list[str]) -> None:
    assert split_paragraphs(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Welcome. Find a comfortable position. [pause 3s]\nLet your eyes close.",
            [
                Sentence("Welcome."),
                Sentence("Find a comfortable position."),
                Sentence("Let your eyes close.", 3.0),
            ],
        ),
        ("[pause 2s] Start here. Go on.", [Sentence("Start here.", 2.0), Sentence("Go on.")]),
        (
            "Rest. [pause 1.5s] Go on. End.",
            [Sentence("Rest."), Sentence("Go on.", 1.5), Sentence("End.")],
        ),
        ("Rest. End. [pause 500ms]", [Sentence("Rest."), Sentence("End.", pause_after_s=0.5)]),
        ("Rest. [pause 1s][pause 2s] Go.", [Sentence("Rest."), Sentence("Go.", 3.0)]),
        ("Rest [pause 2s]. Now breathe.", [Sentence("Rest."), Sentence("Now breathe.", 2.0)]),
        ("Breathe in [pause 2s] and out.", [Sentence("Breathe in"), Sentence("and out.", 2.0)]),
        (
            "One.\n\nTwo. Three.\n\n\n\nFour.",
            [
                Sentence("One."),
                Sentence("Two.", None, True),
                Sentence("Three."),
                Sentence("Four.", None, True),
            ],
        ),
        (
            "One. [pause 3s]\n\nTwo.",
            [Sentence("One."), Sentence("Two.", 3.0, True)],
        ),
        (
            "One.\n\n[pause 3s] Two.",
            [Sentence("One."), Sentence("Two.", 3.0, True)],
        ),
        (
            "One.\n\n[pause 4s]\n\nTwo.",
            [Sentence("One."), Sentence("Two.", 4.0, True)],
        ),
        (
            "Line one\nline two.\nLine three.",
            [Sentence("Line one line two."), Sentence("Line three.")],
        ),
        (
            "Dr. Lee says: rest 3.5 min. Breathe... and relax.",
            [Sentence("Dr. Lee says: rest 3.5 min."), Sentence("Breathe... and relax.")],
        ),
        ('"Rest." Then relax.', [Sentence('"Rest."'), Sentence("Then relax.")]),
        (
            "Relax. \U0001f64f\n\n\U0001f64f\n\nEnd.",
            [Sentence("Relax. \U0001f64f \U0001f64f"), Sentence("End.", None, True)],
        ),
        ("\U0001f64f", [Sentence("\U0001f64f")]),
        ('<speak>Hello.<break time="1s"/>World.</speak>', [Sentence("Hello."), Sentence("World.")]),
        ("Zero\u200bwidth\u00a0space.\x00", [Sentence("Zerowidth space.")]),
        ("\u201cCalm,\u201d caf\u0065\u0301.", [Sentence("\u201cCalm,\u201d caf\u00e9.")]),
        ("[pause 3s]", []),
        ("", []),
        ("  \n\n  ", []),
    ],
)
def test_split_say(text: str, expected: list[Sentence]) -> None:
    assert split_say(text) == expected


# --- measures and limits ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Breathe in slowly.", 3),
        ("Hold for 3.5 seconds.", 4),
        ("Don't worry, it's well-being.", 4),
        ("Rest [pause 3s] now.", 2),
        ('<break time="1s"/> Rest', 1),
        ("\u2014 \U0001f642 ...", 0),
        ("\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!", 2),
        ("\u4f60\u597d\u4e16\u754c", 4),
        ("Breathe \u547c\u5438 slowly.", 4),
        ("", 0),
    ],
)
def test_word_count(text: str, expected: int) -> None:
    assert word_count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Breathe in.", False),
        (" ".join(["word"] * 40), False),
        (" ".join(["word"] * 41), True),
        ("x" * 300, False),
        ("x" * 301, True),
    ],
)
def test_is_long_sentence(text: str, expected: bool) -> None:
    assert is_long_sentence(text) is expected


def test_long_sentence_warning() -> None:
    assert long_sentence_warning("Short one.") is None
    warning = long_sentence_warning(" ".join(["calm"] * 45))
    assert warning is not None
    assert "45 words" in warning and "over 40 words" in warning


LONG_SENTENCE = (
    "As you rest here, notice the weight of your body against the floor; feel the breath "
    "moving in and out, slow and steady, like waves on a quiet shore \u2014 and let every "
    "thought drift past like a cloud in a wide, open sky, without holding on to any of it."
)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Short.", 100, ["Short."]),
        ("x" * 100, 100, ["x" * 100]),
        ("", 100, []),
        ("one, two, three", 10, ["one, two,", "three"]),
        ("one; two: three", 9, ["one; two:", "three"]),
        ("calm \u2014 and rest", 6, ["calm \u2014", "and", "rest"]),
        ("calm\u2014rest now", 10, ["calm\u2014rest", "now"]),
        ("in - and out", 5, ["in -", "and", "out"]),
        ("aaa bbb ccc ddd", 8, ["aaa bbb", "ccc ddd"]),
        ("1,000 people, 2,000 more", 14, ["1,000 people,", "2,000 more"]),
        ("short, " + "y" * 12 + " z", 10, ["short,", "y" * 10, "yy z"]),
        (
            LONG_SENTENCE,
            100,
            [
                "As you rest here, notice the weight of your body against the floor;",
                "feel the breath moving in and out, slow and steady, "
                "like waves on a quiet shore \u2014",
                "and let every thought drift past like a cloud in a wide, open sky, "
                "without holding on to any of it.",
            ],
        ),
    ],
)
def test_split_for_limit(text: str, limit: int, expected: list[str]) -> None:
    assert split_for_limit(text, limit) == expected


@pytest.mark.parametrize(
    "text",
    [
        LONG_SENTENCE,
        LONG_SENTENCE * 3,
        " ".join(["Breathe"] * 60),
        "x" * 250,
        "one, two; three: four \u2013 five - six, " * 8,
        "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440, " * 20,
        "word\u2014word " * 20,
    ],
)
@pytest.mark.parametrize("limit", [100, 40, 7])
def test_split_for_limit_pieces_fit_and_rejoin(text: str, limit: int) -> None:
    pieces = split_for_limit(text, limit)
    assert pieces
    assert all(0 < len(piece) <= limit for piece in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())
    words = text.split()
    if all(len(word) <= limit for word in words):
        assert (
            " ".join(pieces).replace("\u2014 ", "\u2014").split()
            == text.replace("\u2014 ", "\u2014").split()
        )


def test_split_for_limit_rejects_bad_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_for_limit("text", 0)


# --- review -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Welcome. [pause 2s] Rest.", []),
        (
            "Welcome. [pause ten] Rest.",
            [
                TextIssue(
                    "error",
                    "malformed pause marker '[pause ten]': "
                    "expected a duration like '30s', got 'ten'",
                )
            ],
        ),
        ("[pause 3s]", [TextIssue("error", "the text has nothing to say")]),
        (
            "\U0001f64f",
            [
                TextIssue(
                    "error",
                    "nothing speakable in '\U0001f64f': only tags, emoji, symbols or pause markers",
                )
            ],
        ),
    ],
)
def test_review_say_errors(text: str, expected: list[TextIssue]) -> None:
    assert review_say(text) == expected


def test_review_say_warns_on_long_sentence() -> None:
    issues = review_say("Short. Calm " + " ".join(["calm"] * 49) + ".")
    assert [issue.severity for issue in issues] == ["warning"]
    assert "50 words" in issues[0].message


@pytest.mark.parametrize(
    "text",
    [
        "- \u201cDon\u2019t\u201d \U0001f642 <speak>rest</speak>\u2026 [pause 2s] now\x00.",
        "Caf\u0065\u0301\u00a0\u00fcber \u041f\u0440\u0438\u0432\u0435\u0442\u200b.",
        "-5 degrees \u2192 colder",
    ],
)
def test_preparation_is_idempotent(text: str) -> None:
    assert normalize_text(normalize_text(text)) == normalize_text(text)
    prepared = prepare_for_engine(text)
    assert prepare_for_engine(prepared) == prepared
