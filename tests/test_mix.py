"""The streaming mixer, measured on its output: placement, lengths, bed, ducking, one-shots."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from conftest import sine

from pipeline.audio.mix import DuckSpan, Ramp, duck_spans, mix, track_frames
from pipeline.core.errors import AudioError, Place
from pipeline.plan.excerpt import excerpt
from pipeline.plan.timeline import Chapter, Cue, PauseCue, SoundCue, SpeechCue, Timeline
from pipeline.project.settings import BackgroundSettings, VoiceSettings

SR = 8000
PLACE = Place(Path("test.yaml"))
VOICE = VoiceSettings()
Audio = npt.NDArray[np.float32]


def speech(start_s: float, length_s: float, text: str = "Hello.") -> SpeechCue:
    return SpeechCue(start_s, length_s, text, VOICE, "", PLACE, estimated=False)


def sound(start_s: float, wait_s: float, asset: str = "bowl", gain_db: float = 0.0) -> SoundCue:
    return SoundCue(start_s, asset, gain_db, wait_s, "", PLACE)


def timeline(
    cues: Iterable[Cue],
    length_s: float,
    background: BackgroundSettings | None = None,
    chapters: tuple[Chapter, ...] = (),
) -> Timeline:
    ordered = tuple(sorted(cues, key=lambda cue: cue.start_s))
    return Timeline(ordered, chapters, length_s, length_s, None, background)


def tone(length_s: float, freq_hz: float, amp: float, sr: int = SR, channels: int = 0) -> Audio:
    """A sine at the mix rate of these tests; ``channels`` 0 gives a mono 1-D array."""
    return sine(length_s, freq_hz, amp, sr, channels)


def constant_clip(cue: SpeechCue, sr: int = SR, value: float = 0.5) -> Audio:
    return np.full(round(cue.length_s * sr), value, dtype=np.float32)


def silent_clip(cue: SpeechCue) -> Audio:
    return np.zeros(round(cue.length_s * SR), dtype=np.float32)


def no_sound(asset: str) -> tuple[Audio, float]:
    raise AssertionError(f"unexpected sound {asset}")


def render(
    line: Timeline,
    *,
    speech_clip: Callable[[SpeechCue], Audio] = constant_clip,
    sound_asset: Callable[[str], tuple[Audio, float]] = no_sound,
    bed_audio: Audio | None = None,
    bed_level_db: float = 0.0,
    channels: int = 2,
    block_frames: int = 4096,
    gain_db: float = 0.0,
    sr: int = SR,
) -> Audio:
    bed = None if bed_audio is None else (lambda asset: (bed_audio, bed_level_db))
    blocks = list(
        mix(
            line,
            speech_clip=speech_clip,
            sound=sound_asset,
            bed=bed,
            sample_rate=sr,
            channels=channels,
            block_frames=block_frames,
            gain_db=gain_db,
        )
    )
    for block in blocks[:-1]:
        assert block.shape == (block_frames, channels)
        assert block.dtype == np.float32
    return np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)


def rms_db(audio: Audio) -> float:
    return float(10 * np.log10(np.mean(np.square(audio.astype(np.float64))) + 1e-30))


def window(audio: Audio, start_s: float, end_s: float, sr: int = SR) -> Audio:
    return audio[round(start_s * sr) : round(end_s * sr)]


def bed_settings(
    gain_db: float = 0.0, fade_in_s: float = 0.0, fade_out_s: float = 0.0, duck_db: float = 0.0
) -> BackgroundSettings:
    return BackgroundSettings("rain", gain_db, fade_in_s, fade_out_s, duck_db)


@pytest.mark.parametrize("length_s", [0.0, 0.0001, 1.0, 2.34567, 7.9999])
def test_total_length_is_exact(length_s: float) -> None:
    out = render(timeline([speech(0.5, 0.3)], length_s), bed_audio=tone(1.0, 200, 0.1, channels=2))
    assert out.shape == (round(length_s * SR), 2)
    assert track_frames(timeline([], length_s), SR) == round(length_s * SR)


def test_speech_onsets_and_pauses_are_exact() -> None:
    starts_s = [0.5, 1.23456, 2.0001, 3.7]
    lengths_s = [0.4, 0.3, 0.77, 0.2]
    cues: list[Cue] = [speech(s, n) for s, n in zip(starts_s, lengths_s, strict=True)]
    cues.append(PauseCue(2.7701, 0.9299, False, "", PLACE))
    out = render(timeline(cues, 4.5), channels=1)[:, 0]
    loud = np.flatnonzero(out > 0.25)
    onsets = [int(loud[0])] + [int(b) for a, b in itertools.pairwise(loud) if b > a + 1]
    assert onsets == [round(s * SR) for s in starts_s]
    ends = [int(a) + 1 for a, b in itertools.pairwise(loud) if b > a + 1]
    pause_frames = onsets[3] - ends[2]
    assert abs(pause_frames - round(0.9299 * SR)) <= 1
    assert np.all(out[loud] == np.float32(0.5))


def test_mono_speech_goes_to_every_channel_and_master_gain_applies() -> None:
    out = render(timeline([speech(1.0, 0.5)], 2.0), channels=3, gain_db=-6.0206)
    segment = window(out, 1.1, 1.4)
    assert np.allclose(segment, 0.25, atol=1e-4)
    assert np.array_equal(segment[:, 0], segment[:, 2])


def test_speech_cut_by_the_track_end_and_edges_fade() -> None:
    out = render(timeline([speech(0.0, 3.0)], 1.0), channels=1)[:, 0]
    assert out.shape[0] == SR
    assert out[0] == 0.0 and out[-1] == 0.0
    assert np.max(np.abs(np.diff(out))) < 0.5 * 0.2
    assert out[SR // 2] == np.float32(0.5)


def test_bed_fades_in_from_zero_and_out_to_zero_at_the_last_frame() -> None:
    bed = tone(4.0, 330, 0.5, channels=2)
    line = timeline([], 10.0, bed_settings(fade_in_s=2.0, fade_out_s=3.0))
    out = render(line, bed_audio=bed, speech_clip=silent_clip)[:, 0]
    assert out[0] == 0.0
    assert out[-1] == 0.0
    levels = [rms_db(window(out, s, s + 0.25)) for s in np.arange(7.0, 10.0, 0.25)]
    assert all(b < a for a, b in itertools.pairwise(levels))
    assert levels[-1] < levels[0] - 20
    assert rms_db(window(out, 3.0, 6.0)) == pytest.approx(rms_db(bed[:, 0]), abs=0.5)
    start_levels = [rms_db(window(out, s, s + 0.25)) for s in np.arange(0.0, 2.0, 0.25)]
    assert all(b > a for a, b in itertools.pairwise(start_levels))


def test_bed_gain_is_catalog_level_plus_background_gain() -> None:
    bed = tone(6.0, 250, 0.5, channels=2)
    out = render(
        timeline([], 3.0, bed_settings(gain_db=-12.0)),
        bed_audio=bed,
        bed_level_db=-6.0,
        speech_clip=silent_clip,
    )
    assert rms_db(window(out, 0.5, 2.5)) - rms_db(bed) == pytest.approx(-18.0, abs=0.1)


def test_loop_seam_has_no_click() -> None:
    sr = 22050
    freq_hz = 440.7
    bed = tone(2.3456, freq_hz, 0.5, sr=sr, channels=2)
    own_jump = float(np.max(np.abs(np.diff(bed[:, 0]))))
    naive = np.tile(bed[:, 0], 3)
    assert np.max(np.abs(np.diff(naive))) > 3 * own_jump
    out = render(timeline([], 12.0, bed_settings()), bed_audio=bed, sr=sr, speech_clip=silent_clip)
    jumps = np.abs(np.diff(out[:, 0]))
    assert float(np.max(jumps)) <= 1.5 * own_jump
    first_pass = bed.shape[0] - min(round(2.0 * sr), bed.shape[0] // 2)
    edge = round(0.01 * sr)
    assert np.array_equal(out[edge:first_pass, 0], bed[edge:first_pass, 0])


def test_loop_of_noise_keeps_its_level_across_the_seam() -> None:
    rng = np.random.default_rng(7)
    bed = (0.1 * rng.standard_normal((5 * SR, 2))).astype(np.float32)
    out = render(timeline([], 30.0, bed_settings()), bed_audio=bed, speech_clip=silent_clip)
    levels = [rms_db(window(out, s, s + 0.5)) for s in np.arange(0.0, 29.5, 0.5)]
    assert max(levels) - min(levels) < 1.5


def test_bed_ducks_under_speech_starting_before_it() -> None:
    bed = tone(20.0, 500, 0.5, channels=1)
    line = timeline([speech(5.0, 2.0)], 12.0, bed_settings(duck_db=10.0))
    out = render(line, bed_audio=bed, speech_clip=silent_clip, channels=1)[:, 0]
    full = rms_db(window(out, 2.0, 4.5))
    assert rms_db(window(out, 5.0, 7.0)) - full == pytest.approx(-10.0, abs=0.1)
    assert rms_db(window(out, 4.60, 4.68)) - full == pytest.approx(0.0, abs=0.1)
    falling = rms_db(window(out, 4.80, 4.88)) - full
    assert -9.0 < falling < -1.0
    rising = rms_db(window(out, 7.4, 7.5)) - full
    assert -9.5 < rising < -0.5
    assert rms_db(window(out, 8.1, 11.0)) - full == pytest.approx(0.0, abs=0.1)
    assert np.max(np.abs(np.diff(out))) <= 1.05 * np.max(np.abs(np.diff(bed[:, 0])))


def test_short_gaps_stay_ducked_and_long_gaps_come_back_up() -> None:
    bed = tone(30.0, 500, 0.5, channels=1)
    cues = [speech(2.0, 1.0), speech(3.8, 1.0), speech(9.0, 1.0)]
    line = timeline(cues, 12.0, bed_settings(duck_db=12.0))
    out = render(line, bed_audio=bed, speech_clip=silent_clip, channels=1)[:, 0]
    full = rms_db(window(out, 0.5, 1.5))
    assert rms_db(window(out, 3.0, 3.8)) - full == pytest.approx(-12.0, abs=0.1)
    assert rms_db(window(out, 6.0, 8.5)) - full == pytest.approx(0.0, abs=0.1)
    spans = duck_spans(line, SR)
    assert spans == (
        DuckSpan(Ramp(round(1.7 * SR), 2 * SR), Ramp(round(4.8 * SR), round(5.8 * SR))),
        DuckSpan(Ramp(round(8.7 * SR), 9 * SR), Ramp(10 * SR, 11 * SR)),
    )


def test_zero_duck_leaves_the_bed_alone() -> None:
    bed = tone(10.0, 500, 0.5, channels=1)
    line = timeline([speech(2.0, 2.0)], 6.0, bed_settings(duck_db=0.0))
    out = render(line, bed_audio=bed, speech_clip=silent_clip, channels=1)[:, 0]
    assert rms_db(window(out, 2.0, 4.0)) == pytest.approx(rms_db(window(out, 4.5, 5.5)), abs=0.1)


def test_one_shot_rings_on_past_its_wait_with_its_gain() -> None:
    bell = tone(3.0, 600, 0.5, channels=2)

    def assets(asset: str) -> tuple[Audio, float]:
        assert asset == "bowl"
        return bell, -6.0

    line = timeline([sound(1.0, 1.0, gain_db=-4.0), speech(2.0, 0.5)], 5.0)
    out = render(line, sound_asset=assets, speech_clip=silent_clip)
    ringing = window(out, 2.5, 3.9)
    assert rms_db(ringing) - rms_db(bell) == pytest.approx(-10.0, abs=0.1)
    assert rms_db(window(out, 4.1, 5.0)) < -200
    onset = int(np.flatnonzero(np.abs(out[:, 0]) > 0)[0])
    assert onset == SR + 1


def test_one_shot_cut_by_the_end_fades_out_over_a_second() -> None:
    # issue 11 D9: a bell cut by the end stopped with a 50 ms fade
    bell = np.full((6 * SR, 1), 0.5, dtype=np.float32)
    line = timeline([sound(1.0, 0.5)], 3.0)
    out = render(line, sound_asset=lambda asset: (bell, 0.0), channels=1, block_frames=333)[:, 0]
    assert out[-1] == 0.0
    assert window(out, 1.5, 1.99).min() == np.float32(0.5)
    assert np.max(np.abs(np.diff(window(out, 1.5, 3.0)))) < 0.5 * 0.01
    assert abs(out[-round(0.5 * SR)] - 0.25) < 0.01
    assert out[-round(0.9 * SR)] > 0.45


def full_timeline() -> tuple[Timeline, Callable[[str], tuple[Audio, float]], Audio]:
    rng = np.random.default_rng(3)
    bed = (0.2 * rng.standard_normal((3 * SR, 2))).astype(np.float32)
    bell = tone(2.5, 700, 0.3, channels=2)
    cues: list[Cue] = [speech(0.2 + 1.7 * i, 0.9 + 0.1 * (i % 4), f"s{i}") for i in range(10)]
    cues += [sound(0.0, 1.0), sound(7.3, 0.5, gain_db=-3.0), sound(17.0, 0.1)]
    background = bed_settings(gain_db=-6.0, fade_in_s=1.5, fade_out_s=2.5, duck_db=10.0)
    return timeline(cues, 18.123, background), (lambda asset: (bell, -2.0)), bed


def varied_clip(cue: SpeechCue) -> Audio:
    return tone(cue.length_s, 200 + len(cue.text) * 37, 0.4)


def test_block_size_does_not_change_a_single_bit() -> None:
    line, assets, bed = full_timeline()
    outputs = [
        render(
            line,
            speech_clip=varied_clip,
            sound_asset=assets,
            bed_audio=bed,
            block_frames=size,
            gain_db=-1.5,
        )
        for size in (4096, 65536, 1000)
    ]
    reference = outputs[0]
    assert reference.shape == (round(18.123 * SR), 2)
    for other in outputs[1:]:
        assert np.array_equal(reference, other)
    again = render(line, speech_clip=varied_clip, sound_asset=assets, bed_audio=bed, gain_db=-1.5)
    assert np.array_equal(reference, again)


def test_clips_are_fetched_lazily_and_sounds_once() -> None:
    line, assets, _bed = full_timeline()
    fetched: list[str] = []
    sounds: list[str] = []

    def clip(cue: SpeechCue) -> Audio:
        fetched.append(cue.text)
        return varied_clip(cue)

    def sound_asset(asset: str) -> tuple[Audio, float]:
        sounds.append(asset)
        return assets(asset)

    blocks = mix(
        line,
        speech_clip=clip,
        sound=sound_asset,
        bed=None,
        sample_rate=SR,
        channels=2,
        block_frames=SR,
    )
    next(blocks)
    assert fetched == ["s0"]
    for _ in blocks:
        pass
    assert fetched == [f"s{i}" for i in range(10)]
    assert sounds == ["bowl"]


def test_an_asset_of_other_channels_is_an_audio_error() -> None:
    line = timeline([], 1.0, bed_settings())
    bad = np.zeros((SR, 3), np.float32)
    with pytest.raises(AudioError, match=r"bed 'rain'.*2 channel"):
        mix(line, speech_clip=silent_clip, sound=no_sound, bed=lambda asset: (bad, 0.0),
            sample_rate=SR, channels=2)  # fmt: skip


def test_excerpt_shifts_cues_and_keeps_the_running_chapter() -> None:
    chapters = (Chapter("One", 0.0), Chapter("Two", 4.0))
    line = timeline([speech(1.0, 1.0), speech(5.0, 1.0), sound(7.0, 1.0)], 10.0, None, chapters)
    part = excerpt(line, 4.5, 8.0)
    assert part.length_s == pytest.approx(3.5)
    assert [cue.start_s for cue in part.cues] == pytest.approx([0.5, 2.5])
    assert part.chapters == (Chapter("Two", 0.0),)


@pytest.mark.slow
def test_an_hour_mixes_in_bounded_memory() -> None:
    sr = 44100
    rng = np.random.default_rng(1)
    bed = (0.1 * rng.standard_normal((10 * sr, 2))).astype(np.float32)
    bell = (0.1 * rng.standard_normal((8 * sr, 2))).astype(np.float32)
    clip = (0.3 * np.sin(np.arange(3 * sr) * 0.05)).astype(np.float32)
    cues: list[Cue] = [speech(1.0 + 6.0 * i, 3.0, f"s{i}") for i in range(600)]
    cues += [sound(180.0 * i, 4.0) for i in range(20)]
    line = timeline(cues, 3600.0, bed_settings(-18.0, 5.0, 10.0, 10.0))
    tracemalloc.start()
    try:
        frames = 0
        for block in mix(
            line,
            speech_clip=lambda cue: clip.copy(),
            sound=lambda asset: (bell, 0.0),
            bed=lambda asset: (bed, 0.0),
            sample_rate=sr,
            channels=2,
        ):
            frames += block.shape[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frames == 3600 * sr
    assert peak < 50 * 2**20


def test_a_periodic_bed_keeps_its_level_through_the_crossfade() -> None:
    bed = tone(5.0, 400, 0.5, channels=2)
    out = render(timeline([], 20.0, bed_settings()), bed_audio=bed, speech_clip=silent_clip)
    levels = [rms_db(window(out, s, s + 0.25)) for s in np.arange(0.25, 19.5, 0.25)]
    assert max(levels) - min(levels) < 0.2
