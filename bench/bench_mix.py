"""Mixing alone: the streaming mixer vs a naive pydub pipeline, side by side, at 44.1 kHz stereo.

A synthetic timeline (a speech clip of ~3 s every 6 s, a looping bed with ducking, a one-shot
every 3 minutes) is mixed and the output discarded. Each run happens in its own child process,
so its peak RSS is its own.
Usage: ``python bench/bench_mix.py [--minutes 60] [--pydub-minutes 10]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.audio.mix import mix
from pipeline.core.errors import Place
from pipeline.plan.timeline import Cue, SoundCue, SpeechCue, Timeline
from pipeline.project.settings import BackgroundSettings, VoiceSettings

SAMPLE_RATE = 44100
CHANNELS = 2
SPEECH_EVERY_S = 6.0
ONE_SHOT_EVERY_S = 180.0
BED_S = 60.0
POOL = 16
BACKGROUND = BackgroundSettings("rain", gain_db=-18.0, fade_in_s=5.0, fade_out_s=10.0, duck_db=10.0)
Audio = npt.NDArray[np.float32]


def synthetic(minutes: float) -> tuple[Timeline, list[Audio], Audio, Audio]:
    """The timeline, a pool of speech clips, the bed and the one-shot."""
    rng = np.random.default_rng(42)
    place = Place(Path("bench.yaml"))
    voice = VoiceSettings()
    length_s = minutes * 60.0
    pool = []
    for index in range(POOL):
        frames = int((2.5 + index / POOL) * SAMPLE_RATE)
        t = np.arange(frames) / SAMPLE_RATE
        envelope = np.abs(np.sin(np.pi * t / t[-1])) ** 0.3
        pool.append((0.3 * envelope * np.sin(2 * np.pi * (120 + 7 * index) * t)).astype(np.float32))
    cues: list[Cue] = []
    start_s = 1.0
    index = 0
    while start_s + 4.0 < length_s:
        clip_s = pool[index % POOL].shape[0] / SAMPLE_RATE
        cues.append(SpeechCue(start_s, clip_s, f"s{index % POOL}", voice, "", place, False))
        start_s += SPEECH_EVERY_S
        index += 1
    shot_s = 0.5
    while shot_s < length_s:
        cues.append(SoundCue(shot_s, "bowl", 0.0, 4.0, "", place))
        shot_s += ONE_SHOT_EVERY_S
    cues.sort(key=lambda cue: cue.start_s)
    bed = (0.1 * rng.standard_normal((int(BED_S * SAMPLE_RATE), CHANNELS))).astype(np.float32)
    t = np.arange(int(10 * SAMPLE_RATE)) / SAMPLE_RATE
    bell = 0.3 * np.exp(-t / 3) * np.sin(2 * np.pi * 220 * t)
    bowl = np.repeat(bell.astype(np.float32)[:, None], CHANNELS, axis=1)
    timeline = Timeline(tuple(cues), (), length_s, length_s, None, BACKGROUND)
    return timeline, pool, bed, bowl


def run_streaming(minutes: float) -> dict[str, Any]:
    """Mix with ``pipeline.mix`` and discard the blocks."""
    timeline, pool, bed, bowl = synthetic(minutes)
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    frames = 0
    for block in mix(
        timeline,
        speech_clip=lambda cue: pool[int(cue.text[1:])],
        sound=lambda asset: (bowl, 0.0),
        bed=lambda asset: (bed, 0.0),
        sample_rate=SAMPLE_RATE,
        channels=CHANNELS,
        gain_db=-3.0,
    ):
        frames += block.shape[0]
    seconds = time.perf_counter() - started
    assert frames == round(timeline.length_s * SAMPLE_RATE)
    return _figures(timeline, seconds, before_kb)


def run_pydub(minutes: float) -> dict[str, Any]:
    """The naive way: loop the bed by appending, duck by slicing, overlay clip after clip."""
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    from pydub import AudioSegment

    timeline, pool, bed, bowl = synthetic(minutes)

    def segment(audio: Audio) -> Any:
        data = np.clip(audio * 32767, -32768, 32767).astype("<i2")
        channels = 1 if data.ndim == 1 else data.shape[1]
        return AudioSegment(
            data.tobytes(), sample_width=2, frame_rate=SAMPLE_RATE, channels=channels
        )

    clips = [segment(clip).set_channels(CHANNELS) for clip in pool]
    bowl_seg = segment(bowl)
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    length_ms = int(timeline.length_s * 1000)
    loop = segment(bed)
    track = AudioSegment.empty()
    while len(track) < length_ms:
        track += loop
    track = track[:length_ms] + BACKGROUND.gain_db
    track = track.fade_in(int(BACKGROUND.fade_in_s * 1000)).fade_out(
        int(BACKGROUND.fade_out_s * 1000)
    )
    for cue in timeline.cues:
        if isinstance(cue, SpeechCue):
            a, b = int(cue.start_s * 1000), int((cue.start_s + cue.length_s) * 1000)
            track = track[:a] + (track[a:b] - BACKGROUND.duck_db) + track[b:]
    for cue in timeline.cues:
        if isinstance(cue, SpeechCue):
            track = track.overlay(clips[int(cue.text[1:])], position=int(cue.start_s * 1000))
        elif isinstance(cue, SoundCue):
            track = track.overlay(bowl_seg, position=int(cue.start_s * 1000))
    track = track - 3.0
    _ = track.raw_data
    seconds = time.perf_counter() - started
    return _figures(timeline, seconds, before_kb)


def _figures(timeline: Timeline, seconds: float, before_kb: int) -> dict[str, Any]:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "minutes": timeline.length_s / 60.0,
        "speech": len(timeline.speech),
        "one_shots": sum(isinstance(cue, SoundCue) for cue in timeline.cues),
        "seconds": seconds,
        "realtime": timeline.length_s / seconds,
        "peak_rss_mb": peak_kb / 1024,
        "inputs_rss_mb": before_kb / 1024,
    }


def _child(kind: str, minutes: float) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--minutes", str(minutes)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def _line(label: str, figures: dict[str, Any]) -> str:
    return (
        f"{label:28s} {figures['minutes']:5.0f} min {figures['speech']:5d} clips "
        f"{figures['one_shots']:3d} shots  {figures['seconds']:8.2f} s  "
        f"{figures['realtime']:8.1f}x real time  peak RSS {figures['peak_rss_mb']:7.1f} MB "
        f"(inputs {figures['inputs_rss_mb']:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--pydub-minutes", type=float, default=10.0)
    parser.add_argument("--child", choices=("stream", "pydub"))
    args = parser.parse_args()
    if args.child == "stream":
        print(json.dumps(run_streaming(args.minutes)))
        return
    if args.child == "pydub":
        print(json.dumps(run_pydub(args.minutes)))
        return
    if importlib.util.find_spec("pydub") is None:
        parser.error("the naive pipeline needs pydub: pip install -e '.[bench]'")
    print(f"mixing only, {SAMPLE_RATE} Hz, {CHANNELS} channels, output discarded")
    long = _child("stream", args.minutes)
    print(_line("streaming mixer", long), flush=True)
    short = _child("stream", args.pydub_minutes)
    print(_line("streaming mixer", short), flush=True)
    naive = _child("pydub", args.pydub_minutes)
    print(_line("naive pydub", naive), flush=True)
    verdict = "ok" if long["realtime"] > 100 else "SLOW"
    speed = f"{long['realtime']:.0f}x real time"
    print(f"streaming, {args.minutes:g} min: {speed} (target > 100x: {verdict})")
    print(
        f"same {args.pydub_minutes:g} min: streaming is {naive['seconds'] / short['seconds']:.1f}x "
        f"faster than pydub and peaks {naive['peak_rss_mb'] - short['peak_rss_mb']:.0f} MB lower"
    )


if __name__ == "__main__":
    main()
