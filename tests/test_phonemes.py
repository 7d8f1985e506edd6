"""Exact pronunciation: lexicon entries with IPA phonemes, spoken by engines that take them
and refused, where they are used, by engines that do not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import write_project

from pipeline.core.errors import ConfigError
from pipeline.engines.espeak import EspeakEngine
from pipeline.engines.ipa import espeak_text, to_espeak
from pipeline.plan.validate import validate_paths
from pipeline.project.config import load_project, resolve
from pipeline.project.settings import VoiceSettings
from pipeline.script.text import prepare_for_engine
from pipeline.speech.condition import condition_clip

CONFIG = 'lexicon:\n  Klonopin: {phonemes: "klˈɑːnəpɪn"}\n  Xanax: ZAN-aks\n'


@pytest.mark.parametrize(
    ("ipa", "espeak"),
    [
        ("klˈɑːnəpɪn", "kl'A:n@pIn"),
        ("mˈɛdɪtˌeɪʃən", "m'EdIt,eIS@n"),
        ("θˈæŋk juː", "T'aNk_ju:"),
        ("dʒˈʌdʒ", "dZ'VdZ"),
    ],
)
def test_ipa_in_espeaks_notation(ipa: str, espeak: str) -> None:
    assert to_espeak(ipa) == espeak


def test_a_symbol_espeak_cannot_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"no English phoneme for 'ʁ' \(U\+0281\)"):
        to_espeak("ʁuʒ")


def test_the_config_reads_respellings_and_phonemes(tmp_path: Path) -> None:
    write_project(tmp_path, CONFIG)
    settings = resolve(load_project(start=tmp_path), environ={})
    assert settings.lexicon == (("Klonopin", "[[klˈɑːnəpɪn]]"), ("Xanax", "ZAN-aks"))
    prepared = prepare_for_engine("Klonopin and Xanax.", settings.lexicon)
    assert prepared == "[[klˈɑːnəpɪn]] and ZAN-aks."
    assert espeak_text(prepared) == "[[kl'A:n@pIn]] and ZAN-aks."


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("Klonopin: {phoneme: x}", "Klonopin: expected a respelling or {phonemes: IPA}"),
        ('Klonopin: "[[k]]"', "a respelling holds no '[[' or ']]'"),
        ("Klonopin: {phonemes: '[[k'}", "phonemes hold no '[[' or ']]'"),
        ("Klonopin: [a, b]", "expected text, got ['a', 'b']"),
    ],
)
def test_a_bad_entry_is_reported_at_its_place(tmp_path: Path, entry: str, message: str) -> None:
    write_project(tmp_path, f"lexicon:\n  {entry}\n")
    with pytest.raises(ConfigError, match=r"meditate.yaml:2:\d+: error: lexicon: ") as caught:
        load_project(start=tmp_path)
    assert message in str(caught.value)


def test_espeak_speaks_the_phonemes() -> None:
    engine = EspeakEngine()
    voice = VoiceSettings()
    by_phonemes_marked = engine.synthesize("[[klˈɑːnəpɪn]].", voice)
    spelled = engine.synthesize("Klonopin.", voice)
    assert by_phonemes_marked.data != spelled.data
    clip = condition_clip(by_phonemes_marked, 1.0, 22050)
    assert 0.4 < clip.size / 22050 < 1.5 and float(np.abs(clip).max()) > 0.1
    literal = condition_clip(engine.synthesize("klonopin", voice), 1.0, 22050)
    assert clip.size != literal.size or not np.array_equal(clip, literal)


def _validate(root: Path, script: str) -> list[str]:
    (root / "scripts").mkdir(exist_ok=True)
    (root / "scripts" / "t.yaml").write_text(script, encoding="utf-8")
    report = validate_paths([root / "scripts" / "t.yaml"], load_project(start=root))
    return [f"{p.place.line}:{p.place.column} {p.message}" for p in report.errors]


def test_an_engine_without_phonemes_refuses_them_where_the_word_is_spoken(tmp_path: Path) -> None:
    write_project(tmp_path, CONFIG)
    script = (
        "title: T\nsteps:\n  - say: Xanax is fine here.\n"
        "  - say: {text: Klonopin helps., voice: {engine: gtts}}\n"
        "  - say: Klonopin with espeak is fine.\n"
    )
    errors = _validate(tmp_path, script)
    assert len(errors) == 1 and errors[0].startswith("4:10 gtts takes no phonemes")


def test_espeak_refuses_phonemes_it_cannot_name_at_validation(tmp_path: Path) -> None:
    write_project(tmp_path, 'lexicon:\n  rouge: {phonemes: "ʁuʒ"}\n')
    errors = _validate(tmp_path, "title: T\nsteps:\n  - say: A rouge sky.\n")
    assert len(errors) == 1 and "espeak has no English phoneme for 'ʁ'" in errors[0]
