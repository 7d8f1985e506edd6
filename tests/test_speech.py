"""Speech orchestration: incremental synthesis, errors naming the sentence, crash safety."""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import StubEngine, sine, wav_audio

from pipeline.core.errors import AudioError, EngineError, Place
from pipeline.engines import clear_engine_cache, get_engine
from pipeline.engines.base import EncodedAudio
from pipeline.plan.checked import speech_requests
from pipeline.plan.timeline import PauseCue, SpeechCue, Timeline
from pipeline.project.settings import RetrySettings, VoiceSettings
from pipeline.speech.cache import SpeechCache
from pipeline.speech.key import speech_key
from pipeline.speech.lengths import CachedLengths
from pipeline.speech.level import loudness_lufs
from pipeline.speech.synthesis import SpeechRequest, synthesize_missing

RATE = 22050
ENGINE_RATE = 16000
VOICE = VoiceSettings(engine="tone", name="low")


def tone_length_s(text: str) -> float:
    """Length of the fake engine's clip for a text."""
    return 0.3 + 0.01 * len(text)


class ToneEngine(StubEngine):
    """A fake engine: a WAV tone whose length depends on the text; counts and can fail calls."""

    VOICES = ("low", "high")

    def __init__(self, retry: RetrySettings | None = None) -> None:
        super().__init__(retry)
        self.calls: list[str] = []
        self.fail: dict[str, BaseException] = {}
        self.gate: threading.Event | None = None
        self._lock = threading.Lock()

    def cache_settings(self, voice: VoiceSettings) -> dict[str, str]:
        return {"name": voice.name or "low"}

    def synthesize(self, text: str, voice: VoiceSettings) -> EncodedAudio:
        with self._lock:
            self.calls.append(text)
        if text in self.fail:
            if self.gate is not None:
                self.gate.wait(5)
            raise self.fail[text]
        frequency = 440.0 if voice.name == "high" else 220.0
        return wav_audio(sine(tone_length_s(text), frequency, 0.5, ENGINE_RATE), ENGINE_RATE)


class ToneEntryPoint:
    name = "tone"
    value = "tests:ToneEngine"
    group = "pipeline.engines"

    def load(self) -> Any:
        return ToneEngine


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[ToneEngine]:
    """The fake engine registered as ``tone`` through a (fake) entry point."""
    original = importlib.metadata.entry_points

    def entry_points(**params: Any) -> Any:
        if params.get("group") == "pipeline.engines":
            return [ToneEntryPoint()]
        return original(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    clear_engine_cache()
    instance = get_engine("tone")
    assert isinstance(instance, ToneEngine)
    yield instance
    clear_engine_cache()


SCRIPT = [
    "Welcome to this practice.",
    "Find a comfortable position.",
    "Let your eyes close.",
    "Notice your breath.",
    "Rest here for a moment.",
]


def _requests(sentences: list[str], voice: VoiceSettings = VOICE) -> list[SpeechRequest]:
    return [
        SpeechRequest(text, voice, f"scripts/calm.yaml:{i + 5}:5: steps[{i}]")
        for i, text in enumerate(sentences)
    ]


def _speak(cache: SpeechCache, requests: list[SpeechRequest], jobs: int = 2) -> Any:
    return synthesize_missing(
        requests, cache, lexicon=(), sample_rate=RATE, retry=None, jobs=jobs, progress=None
    )


def test_second_run_calls_no_engine(engine: ToneEngine, tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path)
    first = _speak(cache, _requests(SCRIPT))
    assert (first.total, first.cached_before, first.synthesized, first.engine_calls) == (5, 0, 5, 5)
    assert sorted(engine.calls) == sorted(SCRIPT)
    engine.calls.clear()
    second = _speak(cache, _requests(SCRIPT))
    assert engine.calls == []
    assert (second.total, second.cached_before, second.synthesized, second.engine_calls) == (
        5,
        5,
        0,
        0,
    )


@pytest.mark.parametrize("applies_rate", [False, True])
def test_an_engine_sees_the_rate_only_if_it_applies_it(
    engine: ToneEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, applies_rate: bool
) -> None:
    seen: list[VoiceSettings] = []
    speak = engine.synthesize
    monkeypatch.setattr(engine, "applies_rate", applies_rate)
    monkeypatch.setattr(
        engine, "synthesize", lambda text, voice: seen.append(voice) or speak(text, voice)
    )
    cache = SpeechCache(tmp_path)
    fast = replace(VOICE, rate=1.25)
    _speak(cache, _requests(SCRIPT[:1], fast))
    assert [voice.rate for voice in seen] == [1.25 if applies_rate else 1.0]
    key = speech_key(engine, fast, SCRIPT[0], RATE)
    tempo = 1.0 if applies_rate else 1.25  # what conditioning did to the engine's clip
    assert cache.length_s(key) == pytest.approx(tone_length_s(SCRIPT[0]) / tempo, abs=0.03)


def test_editing_one_sentence_synthesizes_exactly_one(engine: ToneEngine, tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path)
    _speak(cache, _requests(SCRIPT))
    engine.calls.clear()
    edited = [*SCRIPT]
    edited[2] = "Let your eyes gently close."
    report = _speak(cache, _requests(edited))
    assert engine.calls == ["Let your eyes gently close."]
    assert (report.cached_before, report.synthesized) == (4, 1)


def test_same_sentence_twice_is_synthesized_once(engine: ToneEngine, tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path)
    requests = _requests(["Breathe in.", "Breathe out.", "Breathe in.", "Breathe  in."])
    requests.append(SpeechRequest("Breathe in.", VoiceSettings(engine="tone", name="high"), "x"))
    report = _speak(cache, requests)
    assert sorted(engine.calls) == ["Breathe in.", "Breathe in.", "Breathe out."]
    assert (report.total, report.synthesized) == (3, 3)


def test_lengths_measured_after_synthesis(engine: ToneEngine, tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path)
    lengths = CachedLengths(cache, lexicon=(), sample_rate=RATE, sound=lambda asset: 4.0)
    slow = VoiceSettings(engine="tone", name="low", rate=0.8)
    assert lengths.speech(SCRIPT[0], VOICE) is None
    assert lengths.sound("bowl") == 4.0
    _speak(cache, [*_requests(SCRIPT[:1]), SpeechRequest(SCRIPT[0], slow, "x")])
    measured = lengths.speech(SCRIPT[0], VOICE)
    assert measured == pytest.approx(tone_length_s(SCRIPT[0]), abs=0.03)
    measured_slow = lengths.speech(SCRIPT[0], slow)
    assert measured_slow == pytest.approx(tone_length_s(SCRIPT[0]) / 0.8, rel=0.1)  # atempo
    clip = cache.get(lengths.key(SCRIPT[0], VOICE) or "")
    assert clip is not None and len(clip) / RATE == pytest.approx(measured, abs=1e-6)
    assert loudness_lufs(clip, RATE) == pytest.approx(-20.0, abs=0.1)  # levelled
    assert lengths.speech(SCRIPT[0], VoiceSettings(engine="nosuch")) is None


def test_lexicon_enters_the_key(engine: ToneEngine, tmp_path: Path) -> None:
    cache = SpeechCache(tmp_path)
    plain = CachedLengths(cache, lexicon=(), sample_rate=RATE, sound=lambda asset: 0.0)
    respelled = CachedLengths(
        cache, lexicon=(("Klonopin", "KLON-oh-pin"),), sample_rate=RATE, sound=lambda asset: 0.0
    )
    assert plain.key("Take Klonopin.", VOICE) != respelled.key("Take Klonopin.", VOICE)
    synthesize_missing(
        _requests(["Take Klonopin."]),
        cache,
        lexicon=(("Klonopin", "KLON-oh-pin"),),
        sample_rate=RATE,
        jobs=1,
    )
    assert engine.calls == ["Take KLON-oh-pin."]
    assert respelled.speech("Take Klonopin.", VOICE) is not None  # planning finds synthesis's clip
    assert plain.speech("Take Klonopin.", VOICE) is None


def test_error_names_context_sentence_and_cause(engine: ToneEngine, tmp_path: Path) -> None:
    long_sentence = (
        "Let the weight of your body sink into the floor beneath you, slowly and softly."
    )
    engine.fail[long_sentence] = EngineError(
        "gTTS answered 429 (Too Many Requests) 5 times; probable cause: rate limit"
    )
    cache = SpeechCache(tmp_path)
    with pytest.raises(EngineError) as caught:
        _speak(cache, _requests([SCRIPT[0], long_sentence]), jobs=1)
    message = str(caught.value)
    assert message.startswith("scripts/calm.yaml:6:5: steps[1]: cannot speak ")
    assert '"Let the weight of your body sink into the floor beneath you,…"' in message
    assert "engine 'tone'" in message and "probable cause: rate limit" in message
    assert "\n" not in message


def test_unknown_engine_error_names_context(engine: ToneEngine, tmp_path: Path) -> None:
    requests = [SpeechRequest("Hello.", VoiceSettings(engine="tonne"), "scripts/a.yaml: steps[0]")]
    with pytest.raises(EngineError, match=r"scripts/a.yaml: steps\[0\]: .*did you mean 'tone'"):
        _speak(SpeechCache(tmp_path), requests)


def test_bad_audio_from_engine_is_an_error_and_not_cached(
    engine: ToneEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def garbled(text: str, voice: VoiceSettings) -> EncodedAudio:
        return EncodedAudio(b"RIFF\x00\x00garbage", "wav")

    monkeypatch.setattr(engine, "synthesize", garbled)
    cache = SpeechCache(tmp_path)
    with pytest.raises((AudioError, EngineError), match=r"steps\[0\]: cannot speak \"Welcome"):
        _speak(cache, _requests(SCRIPT[:1]), jobs=1)
    assert cache.info().entries == 0


@pytest.mark.parametrize("jobs", [1, 3])
def test_crash_mid_batch_keeps_finished_clips_valid(
    engine: ToneEngine, tmp_path: Path, jobs: int
) -> None:
    engine.fail[SCRIPT[2]] = RuntimeError("segmentation fault in backend")
    if jobs > 1:
        engine.gate = threading.Event()
    cache = SpeechCache(tmp_path)
    progress: list[tuple[int, int, str]] = []

    def report(done: int, total: int, text: str) -> None:
        progress.append((done, total, text))
        if engine.gate is not None and done >= 2:
            engine.gate.set()  # fail only once two clips are stored

    with pytest.raises(EngineError, match=r"steps\[2\]: .*unexpected RuntimeError: segmentation"):
        synthesize_missing(
            _requests(SCRIPT), cache, lexicon=(), sample_rate=RATE, jobs=jobs, progress=report
        )
    lengths = CachedLengths(cache, lexicon=(), sample_rate=RATE, sound=lambda asset: 0.0)
    stored = [text for text in SCRIPT if lengths.speech(text, VOICE) is not None]
    assert SCRIPT[2] not in stored and len(stored) >= 2
    assert [done for done, _, _ in progress] == list(range(1, len(progress) + 1))
    assert all(total == 5 for _, total, _ in progress)
    for text in stored:
        clip = cache.get(lengths.key(text, VOICE) or "")
        assert clip is not None and len(clip) / RATE == pytest.approx(tone_length_s(text), abs=0.03)
    assert not list(tmp_path.glob("*/.*.tmp"))
    del engine.fail[SCRIPT[2]]
    engine.calls.clear()
    again = _speak(cache, _requests(SCRIPT), jobs=jobs)
    assert sorted(engine.calls) == sorted(set(SCRIPT) - set(stored))
    assert again.cached_before == len(stored)


def test_interrupt_keeps_finished_clips(engine: ToneEngine, tmp_path: Path) -> None:
    engine.fail[SCRIPT[1]] = KeyboardInterrupt()
    cache = SpeechCache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        _speak(cache, _requests(SCRIPT), jobs=1)
    assert engine.calls == SCRIPT[:2]
    assert cache.info().entries == 1


def test_speech_requests_from_timeline() -> None:
    script = Path("scripts/calm.yaml")
    cues = (
        SpeechCue(0.0, 1.0, "Welcome.", VOICE, "", Place(script, 7, 5, "steps[1].say"), True),
        PauseCue(1.0, 2.0, False, "", Place(script, 8, 5, "steps[2].pause")),
        SpeechCue(
            3.0, 1.0, "Rest.", VOICE, "", Place(Path("_parts/end.yaml"), 2, 3, "steps[0]"), True
        ),
        SpeechCue(4.0, 1.0, "Breathe in", VOICE, "", Place(Path(""), 0, 0, "steps[3]"), True),
    )
    timeline = Timeline(cues, (), 5.0, 5.0, None, None)
    requests = speech_requests(timeline, str(script))
    assert requests == [
        SpeechRequest("Welcome.", VOICE, "scripts/calm.yaml:7:5: steps[1].say"),
        SpeechRequest("Rest.", VOICE, "scripts/calm.yaml (_parts/end.yaml:2:3): steps[0]"),
        SpeechRequest("Breathe in", VOICE, "scripts/calm.yaml: steps[3]"),
    ]


def test_espeak_end_to_end(tmp_path: Path) -> None:
    """The real offline engine: synthesized once, measured, then served from the cache."""
    clear_engine_cache()
    espeak = get_engine("espeak")
    if not espeak.availability().usable:
        pytest.skip(f"espeak unusable here: {espeak.availability().reason}")
    cache = SpeechCache(tmp_path)
    voice = VoiceSettings(engine="espeak", name="", language="en")
    requests = [SpeechRequest(text, voice, "scripts/x.yaml") for text in SCRIPT[:2]]
    first = synthesize_missing(requests, cache, lexicon=(), sample_rate=RATE, jobs=2)
    second = synthesize_missing(requests, cache, lexicon=(), sample_rate=RATE, jobs=2)
    assert (first.synthesized, second.synthesized, second.cached_before) == (2, 0, 2)
    lengths = CachedLengths(cache, lexicon=(), sample_rate=RATE, sound=lambda asset: 0.0)
    for text in SCRIPT[:2]:
        length_s = lengths.speech(text, voice)
        assert length_s is not None and 0.8 < length_s < 4.0, (text, length_s)


NUMPY_PROBE = r"""
import json, sys
from pathlib import Path
from pipeline.speech.cache import SpeechCache
from pipeline.engines.espeak import EspeakEngine
from pipeline.project.settings import VoiceSettings
from pipeline.speech.synthesis import synthesize_missing

seen = []
synthesize = EspeakEngine.synthesize

def probe(self, text, voice):
    seen.append("numpy" in sys.modules)
    return synthesize(self, text, voice)

EspeakEngine.synthesize = probe
requests = [(text, VoiceSettings(), f"probe {n}") for n, text in enumerate(["One.", "Two."])]
synthesize_missing(requests, SpeechCache(Path(sys.argv[1])), lexicon=(), sample_rate=22050, jobs=2)
print(json.dumps({"at_synthesis": seen, "after": "numpy" in sys.modules}))
"""


def test_numpy_is_imported_before_synthesis_starts_and_only_when_needed(tmp_path: Path) -> None:
    """Imported by a worker mid-batch it stalls all of them; with nothing to do, never."""
    import json
    import subprocess
    import sys

    def probe() -> Any:
        done = subprocess.run(
            [sys.executable, "-c", NUMPY_PROBE, str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        return json.loads(done.stdout)

    assert probe() == {"at_synthesis": [True, True], "after": True}
    assert probe() == {"at_synthesis": [], "after": False}  # all cached


PRUNE_CONFIG = "sample_rate: 16000\nchannels: 1\ncache: cache\n"


@pytest.fixture
def prune_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two scripts in the scripts folder (one in a subfolder) and a draft outside it, spoken."""
    from click.testing import CliRunner

    from pipeline.cli import cli

    clear_engine_cache()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meditate.yaml").write_text(PRUNE_CONFIG, encoding="utf-8")
    scripts = tmp_path / "scripts"
    (scripts / "anxiety").mkdir(parents=True)
    (scripts / "calm.yaml").write_text("title: Calm\nsteps:\n  - say: Rest. Be still.\n")
    (scripts / "anxiety" / "ease.yaml").write_text("title: Ease\nsteps:\n  - say: Let go.\n")
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "new.yaml").write_text("title: New\nsteps:\n  - say: Soon.\n")
    (scripts / "gone.yaml").write_text("title: Gone\nsteps:\n  - say: Farewell.\n")
    runner = CliRunner()
    for target in ("scripts", "drafts"):
        result = runner.invoke(cli, ["speak", target])
        assert result.exit_code == 0, result.output
    (scripts / "gone.yaml").unlink()
    assert SpeechCache(tmp_path / "cache").info().entries == 5
    return tmp_path


def _cli(*args: str) -> Any:
    """Run the CLI with stdout and stderr kept apart, on click 8.1 and 8.2+ alike."""
    import inspect

    from click.testing import CliRunner

    from pipeline.cli import cli

    # click 8.2+ keeps them apart by default and has no mix_stderr; gTTS still holds pip to 8.1
    apart = {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}
    return CliRunner(**apart).invoke(cli, list(args))


def test_prune_of_a_subfolder_keeps_every_script_of_the_project(prune_project: Path) -> None:
    """Pruning scripts/anxiety deleted the clips of every other script (333 of 384)."""
    cache = SpeechCache(prune_project / "cache")
    size = cache.info().bytes
    result = _cli("cache", "prune", "scripts/anxiety")
    assert result.exit_code == 0, result.stdout + result.stderr
    # the draft's clip and the deleted script's go; calm's two and ease's stay
    assert result.stdout.startswith("removed 2 entries (")
    assert "kept 3 entries (" in result.stdout and "used by 2 script(s)" in result.stdout
    assert cache.info().entries == 3
    assert cache.info().bytes < size


def test_prune_keeps_the_scripts_of_extra_paths(prune_project: Path) -> None:
    result = _cli("cache", "prune", "drafts")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("removed 1 entry (")
    assert "kept 4 entries" in result.stdout and "used by 3 script(s)" in result.stdout
    assert SpeechCache(prune_project / "cache").info().entries == 4


def test_prune_dry_run_removes_nothing_and_says_what_it_would(prune_project: Path) -> None:
    cache = SpeechCache(prune_project / "cache")
    before = sorted(cache.keys())
    dry = _cli("cache", "prune", "--dry-run")
    assert dry.exit_code == 0, dry.stdout + dry.stderr
    assert dry.stdout.startswith("would remove 2 entries (") and " kB)" in dry.stdout
    assert sorted(cache.keys()) == before
    real = _cli("cache", "prune")
    assert real.stdout == dry.stdout.replace("would remove", "removed")
    assert _cli("cache", "prune").stdout.startswith("removed 0 entries (0 B)")


def test_prune_keeps_the_clips_of_another_engine_when_asked(
    prune_project: Path, engine: ToneEngine
) -> None:
    """Clips spoken with --engine are used by the scripts too: --engine keeps them."""
    spoken = _cli("speak", "scripts", "--engine", "tone")
    assert spoken.exit_code == 0, spoken.stdout + spoken.stderr
    cache = SpeechCache(prune_project / "cache")
    assert cache.info().entries == 8
    kept = _cli("cache", "prune", "--engine", "tone")
    assert kept.exit_code == 0, kept.stdout + kept.stderr
    assert kept.stdout.startswith("removed 2 entries") and "kept 6 entries" in kept.stdout
    dropped = _cli("cache", "prune")
    assert dropped.stdout.startswith("removed 3 entries") and "kept 3 entries" in dropped.stdout


def test_prune_refuses_when_a_script_cannot_be_planned(prune_project: Path) -> None:
    (prune_project / "scripts" / "bad.yaml").write_text("title: B\nsteps:\n  - pause: ten\n")
    result = _cli("cache", "prune")
    assert result.exit_code == 1
    assert "scripts/bad.yaml:3:12: error" in result.stderr
    assert SpeechCache(prune_project / "cache").info().entries == 5


def test_cache_info_shows_entries_of_an_older_format_and_prune_deletes_them(
    prune_project: Path,
) -> None:
    """Raw entries of old formats (``.s16``) are not read; info counts them, prune drops them."""
    old = prune_project / "cache" / "ab" / ("ab" + "0" * 62 + ".s16")
    old.parent.mkdir(exist_ok=True)
    old.write_bytes(bytes(2048))
    info = _cli("cache", "info")
    assert "entries: 5, size: " in info.stdout
    assert "older format: 1 entry (2.0 kB), not read" in info.stdout
    pruned = _cli("cache", "prune")
    assert pruned.stdout.startswith("removed 3 entries (") and not old.exists()
    assert "older format" not in _cli("cache", "info").stdout


def test_a_changed_sample_rate_field_is_warned_and_synthesized_again(
    prune_project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two bytes of a clip's sample-rate field changed gave it a wrong length, unwarned."""
    import json

    from pipeline.speech.cache import SUFFIX

    measured = json.loads(_cli("plan", "--format", "json", "scripts/calm.yaml").stdout)
    assert measured["estimated"] == 0
    for entry in (prune_project / "cache").glob(f"*/*{SUFFIX}"):
        data = bytearray(entry.read_bytes())
        data[8] ^= 0x10  # the sample rate's low bytes: 16000 Hz read as 11904 Hz
        data[9] ^= 0x10
        entry.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="pipeline.speech.cache"):
        planned = _cli("plan", "--format", "json", "scripts/calm.yaml")
    assert planned.exit_code == 0, planned.stderr
    assert caplog.text.count("is corrupt (header checksum mismatch)") == 2
    assert json.loads(planned.stdout)["estimated"] == 2  # not a wrong measured length
    spoken = _cli("speak", "scripts/calm.yaml")
    assert "0 already cached, 2 synthesized" in spoken.stdout
    again = json.loads(_cli("plan", "--format", "json", "scripts/calm.yaml").stdout)
    assert again == measured
