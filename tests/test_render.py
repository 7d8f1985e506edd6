"""Real renders, measured on the encoded files: loudness, bed level, timing, captions, clicks.

One small project per module; each script is rendered once and many properties are checked
on the same files. Loudness comes from ffmpeg's ``ebur128`` (``measure_file``), an
independent meter relative to our limiter; timing from the decoded audio itself.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import mutagen.id3
import numpy as np
import numpy.typing as npt
import pytest
from chapters_by_ffmpeg import read_chapters

from pipeline.audio.master import measure_file
from pipeline.audio.mix import LOOP_CROSSFADE_S, mix
from pipeline.build.outputs import sha256_file
from pipeline.build.render import RenderResult, _Sources, render_script
from pipeline.core.ffmpeg import decode
from pipeline.plan.excerpt import CUT_FADE_S, SNAP_S
from pipeline.plan.timeline import BreathPhaseCue, PauseCue, SoundCue, SpeechCue, Timeline
from pipeline.project.config import load_project

RATE = 44100
TARGET_LUFS = -16.0
CEILING_DBTP = -1.0
TARGET_S = 35.0  # 32 s of steps, the default 1 s lead-in and 2 s tail
FORMATS = ("mp3", "ogg", "m4a", "opus", "flac")
pytestmark = pytest.mark.slow  # every test here uses the five-format render of `renders`

CONFIG = f"""\
sample_rate: {RATE}
channels: 2
formats: [mp3]
bitrate: 128k
cache: cache
master: {{loudness: {TARGET_LUFS}, true_peak: {CEILING_DBTP}}}
"""

STEPS = """\
steps:
  - section: Arriving
  - say: |
      Welcome. Find a comfortable position. [pause 1.5s]
      Let your eyes close.
  - pause: 2s
  - say: Notice your breath.
  - pause: 3s+
  - section: Breathing
  - breathe: {pattern: 2-1-3, cycles: 2}
  - say: Good. Rest here for a moment.
  - pause: 2s+
  - section: Closing
  - say: When you are ready, open your eyes.
  - pause: 1s+
"""


def script_text(title: str, background: str) -> str:
    return f"""\
title: {title}
description: A short calm test track.
author: Test Author
category: testing
tags: [test, short]
duration: {TARGET_S:g}s
background: {background}
{STEPS}"""


@dataclass
class Renders:
    root: Path
    full: RenderResult
    """The script with the default bed, every lossy format and flac."""
    nobed: RenderResult
    """The same script without a bed, flac: speech alone for onset detection."""
    wav: tuple[RenderResult, RenderResult]
    """The bed script rendered twice to wav, into two folders."""
    nobed_pcm: npt.NDArray[np.float32]
    wav_pcm: npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Renders:
    root = tmp_path_factory.mktemp("project")
    (root / "meditate.yaml").write_text(CONFIG)
    (root / "scripts").mkdir()
    (root / "scripts" / "calm.yaml").write_text(script_text("Calm Test", "{asset: rain}"))
    (root / "scripts" / "nobed.yaml").write_text(script_text("Calm Test", "null"))
    project = load_project(root / "meditate.yaml")
    calm, nobed = root / "scripts" / "calm.yaml", root / "scripts" / "nobed.yaml"
    full = render_script(calm, project, {"formats": ",".join(FORMATS)}, output_dir=root / "full")
    quiet = render_script(nobed, project, {"formats": "flac"}, output_dir=root / "nobed")
    wav = (
        render_script(calm, project, {"formats": "wav"}, output_dir=root / "wav1"),
        render_script(calm, project, {"formats": "wav"}, output_dir=root / "wav2"),
    )
    return Renders(
        root,
        full,
        quiet,
        wav,
        decode(root / "nobed" / "nobed.flac", RATE, 2),
        decode(root / "wav1" / "calm.wav", RATE, 2),
    )


def output(renders: Renders, fmt: str) -> Path:
    return renders.root / "full" / f"calm.{fmt}"


def speech_cues(timeline: Timeline) -> list[SpeechCue]:
    return sorted((c for c in timeline.cues if isinstance(c, SpeechCue)), key=lambda c: c.start_s)


def heard_s(
    pcm: npt.NDArray[np.float32], cues: list[SpeechCue], threshold_dbfs: float = -45.0
) -> list[tuple[float, float]]:
    """(first, last) time over the threshold near each cue; nothing is heard between cues."""
    level = np.abs(pcm).max(axis=1)
    loud = level > 10.0 ** (threshold_dbfs / 20.0)
    slack = round(0.1 * RATE)
    spans = []
    covered = np.zeros(len(loud), bool)
    for cue in cues:
        first = max(0, round(cue.start_s * RATE) - slack)
        stop = round((cue.start_s + cue.length_s) * RATE) + slack
        hits = np.flatnonzero(loud[first:stop]) + first
        assert hits.size, cue.text
        spans.append((int(hits[0]) / RATE, (int(hits[-1]) + 1) / RATE))
        covered[first:stop] = True
    assert not (loud & ~covered).any(), "sound outside every speech cue"
    return spans


def onsets_s(pcm: npt.NDArray[np.float32], cues: list[SpeechCue]) -> list[float]:
    return [first for first, _last in heard_s(pcm, cues)]


def vtt_starts_s(path: Path) -> list[float]:
    times = re.findall(r"^(\d\d):(\d\d):(\d\d\.\d{3}) -->", path.read_text(), re.MULTILINE)
    return [int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in times]


# --- loudness -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_encoded_file_meets_loudness_target_and_true_peak_ceiling(
    renders: Renders, fmt: str
) -> None:
    loudness = measure_file(output(renders, fmt))
    assert abs(loudness.integrated_lufs - TARGET_LUFS) <= 0.5, loudness
    assert loudness.true_peak_dbtp is not None
    assert loudness.true_peak_dbtp <= CEILING_DBTP, loudness


def test_no_clipped_samples(renders: Renders) -> None:
    assert np.abs(renders.wav_pcm).max() < 10.0 ** (CEILING_DBTP / 20.0)
    assert np.abs(renders.nobed_pcm).max() < 10.0 ** (CEILING_DBTP / 20.0)


def test_default_bed_sits_at_least_18_db_under_the_voice_during_speech(renders: Renders) -> None:
    from pipeline.plan.checked import check_scripts, plan_checked

    project = load_project(renders.root / "meditate.yaml")
    checked = check_scripts([renders.root / "scripts" / "calm.yaml"], project)[0]
    background = checked.settings.background
    assert background is not None and (background.gain_db, background.duck_db) == (-18.0, 10.0)
    planned = plan_checked(checked)
    timeline = renders.full.timeline
    assert planned.timeline == timeline
    sources = _Sources(planned, planned.lengths.cache)  # type: ignore[attr-defined]

    def stem(*, voice: bool, bed: bool) -> npt.NDArray[np.float32]:
        blocks = mix(
            timeline,
            speech_clip=(lambda cue: sources.speech(cue) * (1.0 if voice else 0.0)),
            sound=sources.sound,
            bed=sources.bed if bed else None,
            sample_rate=RATE,
            channels=2,
        )
        return np.concatenate(list(blocks))

    voice, bed = stem(voice=True, bed=False), stem(voice=False, bed=True)
    margins = []
    for cue in speech_cues(timeline):
        first, stop = round(cue.start_s * RATE), round((cue.start_s + cue.length_s) * RATE)
        voice_rms = np.sqrt(np.mean(voice[first:stop].astype(np.float64) ** 2))
        bed_rms = np.sqrt(np.mean(bed[first:stop].astype(np.float64) ** 2))
        margins.append(20.0 * np.log10(voice_rms / bed_rms))
    assert min(margins) >= 18.0, margins


# --- timing ---------------------------------------------------------------------------------


def test_speech_starts_where_the_timeline_says_within_10_ms(renders: Renders) -> None:
    cues = speech_cues(renders.nobed.timeline)
    found = onsets_s(renders.nobed_pcm, cues)
    for cue, onset in zip(cues, found, strict=True):
        assert abs(onset - cue.start_s) <= 0.010, (cue.text, onset, cue.start_s)
    planned_gaps = np.diff([cue.start_s for cue in cues])
    assert np.abs(np.diff(found) - planned_gaps).max() <= 0.010


def test_pauses_last_their_planned_length_within_10_ms(renders: Renders) -> None:
    timeline = renders.nobed.timeline
    cues = speech_cues(timeline)
    spans = heard_s(renders.nobed_pcm, cues)
    starts, stops = [first for first, _ in spans], [last for _, last in spans]
    pauses = [c for c in timeline.cues if isinstance(c, PauseCue)]
    checked = 0
    for pause in pauses:
        after = [
            i
            for i, c in enumerate(cues)
            if abs(c.start_s - (pause.start_s + pause.length_s)) < 1e-6
        ]
        before = [
            i for i, c in enumerate(cues) if abs(c.start_s + c.length_s - pause.start_s) < 1e-6
        ]
        if after and before:
            silence_s = starts[after[0]] - stops[before[0]]
            assert abs(silence_s - pause.length_s) <= 0.010, (pause, silence_s)
            checked += 1
    assert checked >= 2
    fixed = [p for p in pauses if not p.flexible]
    assert [round(p.length_s, 3) for p in fixed] == [2.0]


def test_breathing_phases_last_their_pattern_within_10_ms(renders: Renders) -> None:
    timeline = renders.nobed.timeline
    phases = sorted(
        (c for c in timeline.cues if isinstance(c, BreathPhaseCue)), key=lambda c: c.start_s
    )
    assert [round(p.length_s, 3) for p in phases] == [2.0, 1.0, 3.0] * 2
    found = onsets_s(renders.nobed_pcm, speech_cues(timeline))
    heard = [min(found, key=lambda t, p=p: abs(t - p.start_s)) for p in phases]
    for phase, onset in zip(phases, heard, strict=True):
        assert abs(onset - phase.start_s) <= 0.010
    measured = np.diff(heard)
    assert np.abs(measured - [2.0, 1.0, 3.0, 2.0, 1.0]).max() <= 0.010


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "m4a", "opus", "flac"])
def test_track_lasts_the_target_duration_within_50_ms(renders: Renders, fmt: str) -> None:
    assert renders.full.timeline.length_s == pytest.approx(TARGET_S, abs=1e-6)
    frames = decode(output(renders, fmt), RATE, 2).shape[0]
    assert abs(frames / RATE - TARGET_S) <= 0.050, frames / RATE


def test_caption_cues_start_within_100_ms_of_their_speech(renders: Renders) -> None:
    captions = vtt_starts_s(renders.root / "full" / "calm.vtt")
    found = onsets_s(renders.nobed_pcm, speech_cues(renders.full.timeline))
    assert len(captions) == len(found)
    for caption_s, onset_s in zip(captions, found, strict=True):
        assert abs(caption_s - onset_s) <= 0.100
    assert vtt_starts_s(renders.root / "nobed" / "nobed.vtt") == captions


# --- determinism and clicks -----------------------------------------------------------------


def test_same_inputs_give_identical_pcm(renders: Renders) -> None:
    again = decode(renders.root / "wav2" / "calm.wav", RATE, 2)
    assert again.shape == renders.wav_pcm.shape
    assert np.array_equal(again, renders.wav_pcm)
    assert renders.wav[0].timeline == renders.wav[1].timeline


def jumps(pcm: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    return np.abs(np.diff(pcm.astype(np.float64), axis=0)).max(axis=1)


def test_no_clicks_at_clip_joins_or_track_edges(renders: Renders) -> None:
    pcm = renders.wav_pcm
    step = jumps(pcm)
    typical = float(np.percentile(step, 99.9))
    window = round(0.003 * RATE)
    edges = [0, len(step) - 1]
    for cue in speech_cues(renders.full.timeline):
        edges += [round(cue.start_s * RATE), round((cue.start_s + cue.length_s) * RATE)]
    for frame in edges:
        near = step[max(0, frame - window) : frame + window]
        assert near.max() <= 0.5 * typical, (frame / RATE, near.max(), typical)
    assert np.abs(pcm[:2]).max() < 1e-3 and np.abs(pcm[-2:]).max() < 1e-3


def test_bed_loops_without_a_click(renders: Renders) -> None:
    """A bed-only mix longer than two loops: the jumps at each wrap are like the rest."""
    from pipeline.project.assets import builtin_assets_dir, load_asset_audio, load_catalog

    asset = load_catalog(builtin_assets_dir())["rain"]
    audio = load_asset_audio(asset, RATE, 2)
    background = renders.full.timeline.background
    assert background is not None
    timeline = replace(
        renders.full.timeline,
        cues=(),
        length_s=2.2 * audio.shape[0] / RATE,
        background=replace(background, fade_in_s=0.0, fade_out_s=0.0),
    )
    pcm = np.concatenate(
        list(
            mix(
                timeline,
                speech_clip=lambda cue: np.zeros(1, np.float32),
                sound=lambda name: (audio, 0.0),
                bed=lambda name: (audio, asset.level_db),
                sample_rate=RATE,
                channels=2,
            )
        )
    )
    step = jumps(pcm)
    fade = round(LOOP_CROSSFADE_S * RATE)
    period = audio.shape[0] - fade
    typical = float(np.percentile(step, 99.9))
    window = round(0.005 * RATE)
    for seam in (fade, period, period + fade, 2 * period, 2 * period + fade):
        near = step[seam - window : seam + window]
        assert near.max() <= 1.5 * typical, (seam / RATE, near.max(), typical)
        before = np.sqrt(np.mean(pcm[seam - RATE : seam].astype(np.float64) ** 2))
        after = np.sqrt(np.mean(pcm[seam : seam + RATE].astype(np.float64) ** 2))
        assert abs(20.0 * np.log10(after / before)) < 1.5


# --- tags, chapters, sidecar ----------------------------------------------------------------


def test_chapters_read_back_in_order_by_mutagen(renders: Renders) -> None:
    wanted = [(c.title, round(c.start_s * 1000)) for c in renders.full.timeline.chapters]
    assert [title for title, _ in wanted] == ["Arriving", "Breathing", "Closing"]
    tags = mutagen.id3.ID3(output(renders, "mp3"))
    chapters = tags.getall("CHAP")
    found = [(str(frame.sub_frames["TIT2"]), frame.start_time) for frame in chapters]
    assert sorted(found, key=lambda item: item[1]) == wanted
    (toc,) = tags.getall("CTOC")
    by_id = {frame.element_id: frame for frame in chapters}
    assert [str(by_id[i].sub_frames["TIT2"]) for i in toc.child_element_ids] == [
        title for title, _ in wanted
    ]
    assert str(tags["TIT2"]) == "Calm Test" and str(tags["TPE1"]) == "Test Author"
    assert str(tags["TALB"]) == "testing" and str(tags["TCON"]) == "Meditation"


@pytest.mark.parametrize("fmt", FORMATS)
def test_chapters_read_back_in_order_by_ffmpeg(renders: Renders, fmt: str) -> None:
    wanted = [(c.title, c.start_s) for c in renders.full.timeline.chapters]
    found = read_chapters(output(renders, fmt))
    assert [title for title, _ in found] == [title for title, _ in wanted]
    # ffmpeg's mp3 demuxer moves ID3 chapter times back by the encoder delay (1105 samples,
    # 25 ms); the frames hold the exact times (mutagen test above), as players read them.
    tolerance_s = 0.026 if fmt == "mp3" else 0.001
    for (_, start_s), (_, expected_s) in zip(found, wanted, strict=True):
        assert abs(start_s - expected_s) <= tolerance_s


def test_sidecar_has_every_field_and_the_file_s_measured_loudness(renders: Renders) -> None:
    sidecar_path = renders.root / "full" / "calm.json"
    data = json.loads(sidecar_path.read_text())
    assert data == renders.full.sidecar
    for key in (
        "id", "title", "description", "author", "language", "category", "tags", "duration_s",
        "loudness", "chapters", "captions", "files", "voice", "source", "build_key", "generator",
    ):  # fmt: skip
        assert key in data, key
    assert data["id"] == "calm" and data["title"] == "Calm Test"
    assert data["author"] == "Test Author" and data["category"] == "testing"
    assert data["tags"] == ["test", "short"] and data["language"] == "en"
    assert data["duration_s"] == pytest.approx(TARGET_S, abs=0.001)
    assert data["chapters"] == [
        {"title": c.title, "start_s": pytest.approx(c.start_s, abs=0.001)}
        for c in renders.full.timeline.chapters
    ]
    assert data["captions"] == "calm.vtt" and (renders.root / "full" / "calm.vtt").is_file()
    assert [f["format"] for f in data["files"]] == list(FORMATS)
    for info in data["files"]:
        path = renders.root / "full" / info["path"]
        assert set(info) >= {"format", "path", "bytes", "sha256", "sample_rate", "channels"}
        assert "bitrate" in info
        assert info["path"] == f"calm.{info['format']}"
        assert info["bytes"] == path.stat().st_size and info["sha256"] == sha256_file(path)
        assert (info["sample_rate"], info["channels"]) == (RATE, 2)
    assert set(data["voice"]) >= {"engine", "engine_version", "name", "rate"}
    assert data["voice"]["engine"] == "espeak" and data["voice"]["engine_version"]
    assert data["source"]["path"] == "scripts/calm.yaml"
    assert data["source"]["sha256"] == sha256_file(renders.root / "scripts" / "calm.yaml")
    assert data["build_key"] and data["generator"].startswith("meditation-pipeline ")
    measured = measure_file(output(renders, FORMATS[0]))
    assert data["loudness"]["integrated_lufs"] == pytest.approx(measured.integrated_lufs, abs=0.1)
    assert data["loudness"]["true_peak_dbtp"] == pytest.approx(measured.true_peak_dbtp, abs=0.1)
    assert data["loudness"]["true_peak_dbtp"] <= CEILING_DBTP
    assert not [p.name for p in (renders.root / "full").iterdir() if ".tmp" in p.name]


# --- excerpts -------------------------------------------------------------------------------


def test_speech_ready_gets_the_excerpt_once_its_clips_are_cached_before_the_mix(
    renders: Renders,
) -> None:
    from pipeline.build.keys import build_key
    from pipeline.build.render import RenderOptions, render_checked
    from pipeline.plan.checked import check_script
    from pipeline.speech.cache import SpeechCache

    project = load_project(renders.root / "meditate.yaml")
    checked = check_script(renders.root / "scripts" / "calm.yaml", project)
    out = renders.root / "ready"
    seen = []

    def ready(planned: object, timeline: object) -> None:
        cache = SpeechCache(checked.settings.cache_dir)
        keys = [planned.lengths.key(c.text, c.voice) for c in timeline.speech]  # type: ignore[attr-defined]
        seen.append((timeline, all(key in cache for key in keys), list(out.glob("*.mp3"))))

    options = RenderOptions(output_dir=out, formats=("mp3",), preview_s=8.0,
                            build_key=build_key(checked))  # fmt: skip
    result = render_checked(checked, options, speech_ready=ready)
    assert [(timeline, cached, files) for timeline, cached, files in seen] == [
        (result.timeline, True, [])
    ]


def test_section_and_preview_are_short_fast_and_write_no_sidecar(renders: Renders) -> None:
    project = load_project(renders.root / "meditate.yaml")
    calm = renders.root / "scripts" / "calm.yaml"
    chapters = renders.full.timeline.chapters
    span_s = chapters[2].start_s - chapters[1].start_s
    started = time.perf_counter()
    section = render_script(calm, project, output_dir=renders.root / "ex", section="Breathing")
    preview = render_script(calm, project, output_dir=renders.root / "ex", preview_s=8.0)
    elapsed_s = time.perf_counter() - started
    assert elapsed_s < 60.0  # seconds normally; only a 10x regression fails here
    assert [entry["path"] for entry in preview.sidecar["files"]] == ["calm.preview.mp3"]
    assert preview.sidecar["duration_s"] == pytest.approx(preview.timeline.length_s, abs=0.001)
    assert section.sidecar["chapters"][0]["title"] == "Breathing"
    names = sorted(path.name for path in (renders.root / "ex").iterdir())
    assert names == [
        "calm.preview.mp3",
        "calm.preview.vtt",
        "calm.section-breathing.mp3",
        "calm.section-breathing.vtt",
    ]
    assert abs(preview.timeline.length_s - 8.0) <= SNAP_S + CUT_FADE_S  # ends at a gap
    for path, length_s in (
        (renders.root / "ex" / "calm.section-breathing.mp3", span_s),
        (renders.root / "ex" / "calm.preview.mp3", preview.timeline.length_s),
    ):
        frames = decode(path, RATE, 2).shape[0]
        assert abs(frames / RATE - length_s) <= 0.050, (path.name, frames / RATE, length_s)
    assert [c.title for c in section.timeline.chapters] == ["Breathing"]
    assert section.timeline.chapters[0].start_s == 0.0


def test_prefetch_decodes_assets_and_measures_codecs_before_the_mix(
    renders: Renders, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.audio import encode
    from pipeline.core import ffmpeg
    from pipeline.plan.checked import check_scripts, plan_checked
    from pipeline.project import assets

    project = load_project(renders.root / "meditate.yaml")
    checked = check_scripts([renders.root / "scripts" / "calm.yaml"], project)[0]
    planned = plan_checked(checked)
    sources = _Sources(planned, planned.lengths.cache)  # type: ignore[attr-defined]
    assets._decode_cached.cache_clear()
    encode.codec_gain_db.cache_clear()
    sources.prefetch(planned.timeline, ("mp3", "ogg"))

    def no_ffmpeg(*args: object, **kwargs: object) -> None:
        raise AssertionError("ffmpeg ran after the prefetch")

    monkeypatch.setattr(ffmpeg, "decode", no_ffmpeg)
    monkeypatch.setattr(ffmpeg, "run_ffmpeg", no_ffmpeg)
    assert sources.bed("rain")[0].shape[1] == 2
    assert encode.codec_gain_db("mp3", "128k", RATE, 2) > 0.0
    assert encode.codec_gain_db.cache_info().currsize == 2


# --- warnings -------------------------------------------------------------------------------


def test_a_quiet_track_s_warning_gives_the_loudness_measured_on_the_encoded_file(
    renders: Renders, caplog: pytest.LogCaptureFixture
) -> None:
    # issue 11 D10: the warning predicted 6.6 LU under the target; the file measured 10.4 LU
    (renders.root / "scripts" / "sparse.yaml").write_text(
        "title: Sparse\nbackground: {asset: rain, fade_out: 2s}\n"
        "steps:\n  - say: Rest.\n  - pause: 40s\n",
        encoding="utf-8",
    )
    project = load_project(renders.root / "meditate.yaml")
    with caplog.at_level("WARNING", logger="pipeline"):
        result = render_script(
            renders.root / "scripts" / "sparse.yaml", project, output_dir=renders.root / "sparse"
        )
    assert result.sidecar is not None
    measured = measure_file(renders.root / "sparse" / "sparse.mp3").integrated_lufs
    assert measured < TARGET_LUFS - 0.5
    assert result.sidecar["loudness"]["integrated_lufs"] == pytest.approx(measured, abs=0.05)
    (warning,) = [r.getMessage() for r in caplog.records if "LUFS" in r.getMessage()]
    assert warning == (
        f"sparse: integrated loudness {measured:.1f} LUFS measured on the encoded file, "
        f"{TARGET_LUFS - measured:.1f} LU quieter than the target {TARGET_LUFS:.1f} LUFS: more "
        "gain would crush its peaks (little speech over a long bed or silence?)"
    )


def test_the_last_bell_rings_out_before_the_track_ends(renders: Renders) -> None:
    # issue 11 D9: 'say: Goodbye.' then a 9 s chime with 'wait: 1s' ended 0.8 s into the chime
    (renders.root / "scripts" / "bye.yaml").write_text(
        "title: Bye\nbackground: null\nsteps:\n  - say: Goodbye.\n"
        "  - sound: {asset: chime, wait: 1s}\n",
        encoding="utf-8",
    )
    project = load_project(renders.root / "meditate.yaml")
    flags = {"formats": "flac"}
    result = render_script(
        renders.root / "scripts" / "bye.yaml", project, flags, output_dir=renders.root / "bye"
    )
    (goodbye,) = speech_cues(result.timeline)
    (bell,) = [c for c in result.timeline.cues if isinstance(c, SoundCue)]
    assert bell.start_s == pytest.approx(goodbye.start_s + goodbye.length_s)
    assert result.timeline.length_s == pytest.approx(bell.start_s + 9.0)
    pcm = decode(renders.root / "bye" / "bye.flac", RATE, 2)
    assert abs(pcm.shape[0] / RATE - result.timeline.length_s) <= 0.050
    # the chime is still heard 6 s in, and has died away by the end
    assert np.abs(pcm[round((bell.start_s + 6.0) * RATE) :][:RATE]).max() > 10 ** (-60 / 20)
    assert np.abs(pcm[-round(0.1 * RATE) :]).max() < 10 ** (-40 / 20)


def test_text_not_in_its_voice_s_language_is_a_warning_in_render_and_plan(
    renders: Renders, caplog: pytest.LogCaptureFixture
) -> None:
    # issue 11 F-language: Hebrew read by an Arabic voice lasts many times its estimate
    from pipeline.plan.checked import plan_script

    path = renders.root / "scripts" / "hebrew.yaml"
    path.write_text(
        "title: Hebrew\nlanguage: ar\nbackground: null\nsteps:\n"
        "  - say: Welcome.\n  - say: שלום, מה שלומך היום?\n",
        encoding="utf-8",
    )
    project = load_project(renders.root / "meditate.yaml")
    with caplog.at_level("WARNING", logger="pipeline"):
        render_script(path, project, {"formats": "flac"}, output_dir=renders.root / "hebrew")
        rendered = [r.getMessage() for r in caplog.records if "synthesized" in r.getMessage()]
        caplog.clear()
        plan_script(path, project)
        planned = [r.getMessage() for r in caplog.records if "synthesized" in r.getMessage()]
    assert rendered == planned
    (message,) = planned
    assert message.startswith(f"{path}:6:10: steps[1].say: 'שלום, מה שלומך היום?' lasts ")
    assert message.endswith("is the text in the language of its voice (espeak 'ar')?")
