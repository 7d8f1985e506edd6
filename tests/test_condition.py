"""Clip conditioning measured on generated tones: trim, tempo, rate, mono, fades, errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import sine, wav_audio

from pipeline.core.errors import AudioError
from pipeline.engines.base import EncodedAudio
from pipeline.speech.condition import atempo_chain, condition_clip, resample
from pipeline.speech.level import loudness_lufs

SOURCE_RATE = 22050
TONE_S = 1.0


def _wav(samples: np.ndarray, sample_rate: int = SOURCE_RATE) -> EncodedAudio:
    """16-bit WAV bytes of float samples, by default at the source rate of these tests."""
    return wav_audio(samples, sample_rate)


def _tone(seconds: float = TONE_S, lead_s: float = 1.0, tail_s: float = 0.5) -> np.ndarray:
    """A 440 Hz tone at -6 dBFS between stretches of digital silence."""
    tone = sine(seconds, 440, 0.5, SOURCE_RATE)
    return np.concatenate(
        [np.zeros(round(lead_s * SOURCE_RATE)), tone, np.zeros(round(tail_s * SOURCE_RATE))]
    )


def test_silence_is_trimmed_to_the_tone() -> None:
    clip = condition_clip(_wav(_tone()), 1.0, 44100)
    assert len(clip) / 44100 == pytest.approx(TONE_S, abs=0.010)


def test_output_is_mono_float32_at_the_requested_rate() -> None:
    stereo = np.stack([_tone(), _tone()], axis=1)
    for sample_rate in (16000, 48000):
        clip = condition_clip(_wav(stereo), 1.0, sample_rate)
        assert clip.dtype == np.float32
        assert clip.ndim == 1
        assert clip.size == pytest.approx(TONE_S * sample_rate, abs=0.010 * sample_rate)
        mono = condition_clip(_wav(_tone()), 1.0, sample_rate)
        np.testing.assert_allclose(clip, mono, atol=1e-4)  # averaged, not summed


@pytest.mark.parametrize("amplitude", [0.02, 0.3, 0.9])
def test_every_clip_is_leveled_to_the_speech_loudness(amplitude: float) -> None:
    clip = condition_clip(_wav(_tone() * amplitude / 0.5), 1.0, 44100)
    assert loudness_lufs(clip, 44100) == pytest.approx(-20.0, abs=0.05)
    assert float(np.max(np.abs(clip))) <= 10 ** (-1 / 20) + 1e-6


@pytest.mark.parametrize("rate", [0.5, 2.0, 0.8, 1.25])
def test_rate_scales_the_length(rate: float) -> None:
    audio = _wav(_tone(seconds=4.0))
    normal = len(condition_clip(audio, 1.0, 44100)) / 44100
    changed = len(condition_clip(audio, rate, 44100)) / 44100
    assert changed == pytest.approx(normal / rate, rel=0.02)


@pytest.mark.parametrize("rate", [0.5, 2.0])
def test_atempo_adds_at_most_one_window_at_an_abrupt_onset(rate: float) -> None:
    # WSOLA smears a hard onset earlier by up to a window: measured 53 ms at 0.5x, 22 ms at 2x.
    audio = _wav(_tone(seconds=1.0))
    normal = len(condition_clip(audio, 1.0, 44100)) / 44100
    changed = len(condition_clip(audio, rate, 44100)) / 44100
    assert 0.0 <= changed - normal / rate < 0.070


@pytest.mark.parametrize("rate", [0.5, 0.8, 1.25, 2.0])
def test_rate_scales_real_speech_without_cutting_its_ends(rate: float) -> None:
    from pipeline.engines.espeak import EspeakEngine
    from pipeline.project.settings import VoiceSettings

    text = "Let your shoulders soften, and notice the gentle rhythm of the breath."
    audio = EspeakEngine().synthesize(text, VoiceSettings())
    normal = len(condition_clip(audio, 1.0, 44100)) / 44100
    changed = len(condition_clip(audio, rate, 44100)) / 44100
    assert changed == pytest.approx(normal / rate, rel=0.02)


def test_rate_keeps_the_pitch() -> None:
    clip = condition_clip(_wav(_tone()), 0.5, 44100)
    spectrum = np.abs(np.fft.rfft(clip))
    peak_hz = np.argmax(spectrum) * 44100 / clip.size
    assert peak_hz == pytest.approx(440, abs=5)


def test_ends_are_faded_so_joins_never_click() -> None:
    clip = condition_clip(_wav(_tone(lead_s=0.0, tail_s=0.0)), 1.0, 44100)
    assert clip[0] == 0.0
    assert clip[-1] == 0.0
    assert np.max(np.abs(np.diff(clip[:200]))) < 0.05
    assert np.max(np.abs(np.diff(clip[-200:]))) < 0.05
    assert len(clip) / 44100 == pytest.approx(TONE_S, abs=0.010)


def test_a_stray_speck_in_the_silence_is_not_sound() -> None:
    samples = _tone()
    samples[SOURCE_RATE // 2] = 0.01  # one sample at -40 dBFS, half a second before the tone
    clip = condition_clip(_wav(samples), 1.0, 44100)
    assert len(clip) / 44100 == pytest.approx(TONE_S, abs=0.010)


def test_a_quiet_onset_is_kept() -> None:
    quiet = 0.01 * np.sin(2 * np.pi * 300 * np.arange(round(0.05 * SOURCE_RATE)) / SOURCE_RATE)
    samples = np.concatenate([np.zeros(SOURCE_RATE), quiet, _tone(lead_s=0.0)])
    clip = condition_clip(_wav(samples), 1.0, 44100)
    assert len(clip) / 44100 == pytest.approx(TONE_S + 0.05, abs=0.010)


def test_silent_engine_output_is_an_error() -> None:
    with pytest.raises(AudioError, match=r"engine returned silence for 'Hello\.'"):
        condition_clip(_wav(np.zeros(SOURCE_RATE)), 1.0, 44100, label="'Hello.'")


@pytest.mark.parametrize("data", [b"not audio at all" * 50, b""])
def test_garbage_is_an_audio_error(data: bytes) -> None:
    with pytest.raises(AudioError, match="cannot decode the engine output"):
        condition_clip(EncodedAudio(data, "wav"), 1.0, 44100)


def test_mp3_engine_output_is_decoded() -> None:
    from pipeline.core.ffmpeg import run_ffmpeg

    mp3 = run_ffmpeg(["-f", "wav", "-i", "pipe:0", "-f", "mp3", "pipe:1"], _wav(_tone()).data)
    clip = condition_clip(EncodedAudio(mp3, "mp3"), 1.0, 44100)
    assert len(clip) / 44100 == pytest.approx(TONE_S, abs=0.030)


def test_conditioning_is_deterministic() -> None:
    audio = _wav(_tone())
    assert np.array_equal(condition_clip(audio, 0.9, 44100), condition_clip(audio, 0.9, 44100))


@pytest.mark.parametrize(
    ("rate", "chain"),
    [
        (1.0, []),
        (0.9, ["atempo=0.9"]),
        (0.25, ["atempo=0.5", "atempo=0.5"]),
        (3.0, ["atempo=2.0", "atempo=1.5"]),
    ],
)
def test_atempo_chain(rate: float, chain: list[str]) -> None:
    assert atempo_chain(rate) == chain


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_bad_rate_is_an_error(rate: float) -> None:
    with pytest.raises(AudioError, match="rate"):
        condition_clip(_wav(_tone()), rate, 44100)


@pytest.mark.parametrize(
    ("source", "target"),
    [(22050, 44100), (22050, 48000), (24000, 44100), (48000, 44100), (44100, 16000)],
)
@pytest.mark.parametrize("frequency", [440.0, 3000.0])
def test_resampling_is_clean(source: int, target: int, frequency: float) -> None:
    t = np.arange(2 * source) / source
    resampled = resample(
        (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32), source, target
    )
    assert len(resampled) == 2 * target
    ideal = 0.5 * np.sin(2 * np.pi * frequency * np.arange(len(resampled)) / target)
    middle = slice(target // 10, 19 * target // 10)
    error = resampled[middle] - ideal[middle]
    assert 10 * np.log10(np.mean(ideal[middle] ** 2) / np.mean(error**2)) > 80.0


def test_resampling_removes_what_the_lower_rate_cannot_hold() -> None:
    t = np.arange(44100) / 44100
    folded = resample(np.sin(2 * np.pi * 12000 * t).astype(np.float32), 44100, 16000)
    assert 20 * np.log10(float(np.sqrt(np.mean(folded[2000:-2000] ** 2)))) < -80.0


def test_an_espeak_wav_needs_no_ffmpeg(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.speech.condition

    def no_ffmpeg(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("ffmpeg was called")

    monkeypatch.setattr(pipeline.speech.condition, "run_ffmpeg", no_ffmpeg)
    clip = condition_clip(_wav(_tone()), 1.0, 44100)
    assert clip.size == pytest.approx(TONE_S * 44100, abs=0.010 * 44100)


def test_garbage_wav_is_named() -> None:
    with pytest.raises(AudioError, match="for 'second'"):
        condition_clip(EncodedAudio(b"garbage" * 100, "wav"), 1.0, 44100, label="'second'")


@pytest.mark.parametrize(("source", "target"), [(22050, 44100), (24000, 48000), (16000, 44100)])
def test_only_the_audible_span_is_resampled_with_its_real_edges(source: int, target: int) -> None:
    from pipeline.speech.condition import _resample_span

    rng = np.random.default_rng(7)
    samples = (rng.standard_normal(source) * 0.1).astype(np.float32)
    start, end = source // 4, source // 2
    span = _resample_span(samples, (start, end), source, target)
    whole = resample(samples, source, target)
    scale = target / source
    assert span.size == round((end - start) * scale)
    if target % source == 0:  # the same output samples, bit for bit
        offset = start * target // source
        np.testing.assert_array_equal(span, whole[offset : offset + span.size])
    else:
        offset = round(start * scale)
        error = span - whole[offset : offset + span.size]
        assert np.sqrt(np.mean(error**2)) < 0.1 * np.sqrt(np.mean(span**2))
