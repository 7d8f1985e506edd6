"""Even speech: gated loudness against ffmpeg's own meter, sentence loudness spread on real
espeak speech, steady tones found and remove_tonesed, pitch shifted with the length kept."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import sine, wav_audio

from pipeline.audio.master import measure_stream
from pipeline.engines.espeak import EspeakEngine
from pipeline.project.settings import VoiceSettings
from pipeline.speech.condition import condition_clip
from pipeline.speech.level import loudness_lufs, remove_tones, steady_tones

RATE = 44100
SENTENCES = [
    "Welcome.",
    "Find a comfortable position, and let your shoulders soften.",
    "Breathe in slowly through your nose.",
    "Hold it gently at the top, without strain.",
    "And let it go, all the way out, like a long sigh of relief.",
    "Notice the weight of your body resting on the chair beneath you.",
    "Shh.",
    "If your mind wanders, that is fine: simply come back to the breath.",
]


def ffmpeg_loudness(clip: np.ndarray, rate: int) -> float:
    return measure_stream([clip[:, None].astype(np.float32)], rate, 1).integrated_lufs


def espeak_clip(text: str, rate: float = 1.0, pitch: float = 0.0) -> np.ndarray:
    audio = EspeakEngine().synthesize(text, VoiceSettings())
    return condition_clip(audio, rate, RATE, pitch_semitones=pitch)


@pytest.mark.parametrize("seconds", [0.3, 1.5, 6.0])
def test_our_loudness_agrees_with_ffmpegs_meter(seconds: float) -> None:
    generator = np.random.default_rng(7)
    noise = generator.standard_normal(round(seconds * RATE)).astype(np.float32) * 0.05
    voice_like = noise * (1 + np.sin(np.linspace(0, 20, noise.size))).astype(np.float32)
    if seconds >= 0.4:  # ffmpeg's integrated loudness needs one whole block
        assert loudness_lufs(voice_like, RATE) == pytest.approx(
            ffmpeg_loudness(voice_like, RATE), abs=0.15
        )
    assert math.isfinite(loudness_lufs(voice_like, RATE))


def test_silence_has_no_loudness() -> None:
    assert loudness_lufs(np.zeros(RATE, np.float32), RATE) == -math.inf


def test_the_sentences_of_a_track_are_within_one_lu() -> None:
    measured = [ffmpeg_loudness(espeak_clip(text), RATE) for text in SENTENCES if len(text) > 8]
    assert max(measured) - min(measured) < 1.0, measured


def test_a_steady_tone_under_speech_is_found_and_removed() -> None:
    audio = EspeakEngine().synthesize(SENTENCES[1], VoiceSettings())
    speech = condition_clip(audio, 1.0, RATE)
    assert steady_tones(speech, RATE) == []
    tone = sine(speech.size / RATE, 9600, 10 ** (-41 / 20), RATE)
    found = steady_tones(speech + tone, RATE)
    assert len(found) == 1 and found[0] == pytest.approx(9600, abs=2)
    cleaned = remove_tones(speech + tone, RATE, found)
    assert 20 * np.log10(np.abs(cleaned - speech).max()) < -70  # the tone, and only the tone


def test_conditioning_removes_a_voice_tone_and_trims_as_if_it_were_not_there() -> None:
    engine_rate = 24000
    audio = EspeakEngine().synthesize(SENTENCES[2], VoiceSettings())
    plain = condition_clip(audio, 1.0, engine_rate)
    padded = np.concatenate(
        [np.zeros(engine_rate // 2, np.float32), plain, np.zeros(engine_rate // 2, np.float32)]
    )
    humming = padded + sine(padded.size / engine_rate, 9600, 10 ** (-41 / 20), engine_rate)
    clip = condition_clip(wav_audio(humming, engine_rate), 1.0, RATE)
    assert clip.size / RATE == pytest.approx(plain.size / engine_rate, abs=0.05)  # tone trimmed too
    bins = np.fft.rfftfreq(clip.size, 1 / RATE)
    spectrum = np.abs(np.fft.rfft(clip))
    band = (bins > 9550) & (bins < 9650)
    assert spectrum[band].max() < 3 * np.median(spectrum[(bins > 9000) & (bins < 10200)])


@pytest.mark.parametrize("pitch", [-1.0, -12.0, 5.0])
def test_pitch_moves_the_fundamental_and_keeps_the_length(pitch: float) -> None:
    tone = np.concatenate([np.zeros(2205), sine(2.0, 300, 0.3, RATE), np.zeros(2205)])
    plain = condition_clip(wav_audio(tone, RATE), 1.0, RATE)
    shifted = condition_clip(wav_audio(tone, RATE), 1.0, RATE, pitch_semitones=pitch)
    assert shifted.size == pytest.approx(plain.size, abs=0.06 * RATE)  # window smear at the ends
    frequencies = np.fft.rfftfreq(shifted.size, 1 / RATE)
    peak_hz = frequencies[np.argmax(np.abs(np.fft.rfft(shifted)))]
    assert peak_hz == pytest.approx(300 * 2 ** (pitch / 12), rel=0.01)


def test_pitch_and_rate_together_on_speech() -> None:
    plain = espeak_clip(SENTENCES[4])
    calm = espeak_clip(SENTENCES[4], rate=0.85, pitch=-1.0)
    assert calm.size == pytest.approx(plain.size / 0.85, rel=0.03)
    assert loudness_lufs(calm, RATE) == pytest.approx(-20.0, abs=0.05)
    assert np.array_equal(calm, espeak_clip(SENTENCES[4], rate=0.85, pitch=-1.0))  # deterministic
