"""The encoding floor: ffmpeg alone encoding N minutes of PCM to mp3 128k, versus our
gain + true-peak limiter + Encoder doing the same from blocks, side by side in one run.

    python bench/bench_encode.py [--minutes 10] [--measure]

Prints both times, their ratio (the render's budget is 1.3x the floor, mixer included),
the mastering passes' extra costs with --measure, and the peak RSS of this process and of
its largest child (ffmpeg).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.audio.encode import Encoder
from pipeline.audio.master import (
    TruePeakLimiter,
    limiter_ceiling_dbtp,
    measure_file,
    measure_stream,
    static_gain_db,
)
from pipeline.core.ffmpeg import ffmpeg_exe

RATE = 44100
CHANNELS = 2
BLOCK = 4096


def source_minute(seed: int = 0) -> np.ndarray:
    """One minute of pink-ish noise and band-limited bursts: peaks to keep the limiter busy.

    Made 5 s at a time into a float32 buffer, so this process's own peak memory stays small.
    """
    rng = np.random.default_rng(seed)
    chunk = 5 * RATE
    freqs = np.fft.rfftfreq(chunk, 1 / RATE)
    minute = np.empty((12 * chunk, CHANNELS), np.float32)
    for index in range(12):
        spectrum = np.fft.rfft(rng.standard_normal(chunk))
        spectrum[1:] /= np.sqrt(freqs[1:])
        spectrum[0] = 0
        pink = np.fft.irfft(spectrum, chunk)
        pink *= 0.1 / pink.std()
        bursts = np.zeros(chunk)
        for start in rng.integers(0, chunk - 400, size=15):
            bursts[start : start + 400] += rng.standard_normal(400) * np.exp(-np.arange(400) / 60)
        spectrum = np.fft.rfft(bursts)
        spectrum[freqs > 6000] = 0
        mono = pink + 0.3 * np.fft.irfft(spectrum, chunk)
        minute[index * chunk : (index + 1) * chunk, 0] = mono
        minute[index * chunk : (index + 1) * chunk, 1] = np.roll(mono, 441)
    return minute


def blocks(minute: np.ndarray, minutes: int) -> Iterator[np.ndarray]:
    for _ in range(minutes):
        for start in range(0, len(minute), BLOCK):
            yield minute[start : start + BLOCK]


def ffmpeg_alone(minute: np.ndarray, minutes: int, out: Path) -> float:
    """The floor: the same blocks piped into a bare ffmpeg mp3 128k encode."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    command += ["-f", "f32le", "-ar", str(RATE), "-ac", str(CHANNELS), "-i", "pipe:0"]
    command += ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3", "-y", str(out)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.PIPE)
    assert process.stdin is not None
    for block in blocks(minute, minutes):
        process.stdin.write(memoryview(np.ascontiguousarray(block)).cast("B"))
    process.stdin.close()
    if process.wait() != 0:
        raise SystemExit("ffmpeg failed")
    return time.perf_counter() - started


def children_peak_mb() -> float:
    """Largest VmHWM among this process's live children (ffmpeg), read from /proc."""
    peak_kb = 0
    for listing in Path("/proc/self/task").glob("*/children"):
        for pid in listing.read_text().split():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
    return peak_kb / 1024


def ours(minute: np.ndarray, minutes: int, out_dir: Path, gain_db: float) -> tuple[float, float]:
    """Gain + true-peak limiter + Encoder from the same blocks; (seconds, ffmpeg peak MB)."""
    started = time.perf_counter()
    limiter = TruePeakLimiter(RATE, CHANNELS, limiter_ceiling_dbtp(-1.0, ["mp3"]), gain_db=gain_db)
    with Encoder(out_dir, "bench", ["mp3"], sample_rate=RATE, channels=CHANNELS) as encoder:
        for block in limiter.stream(blocks(minute, minutes)):
            encoder.write(block)
        ffmpeg_mb = children_peak_mb()
        encoder.close()
        encoder.commit()
    return time.perf_counter() - started, ffmpeg_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--measure", action="store_true", help="also time the measuring passes")
    args = parser.parse_args()
    minute = source_minute()
    gain_db = static_gain_db(measure_stream([minute], RATE, CHANNELS), -16.0)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        floor_s = ffmpeg_alone(minute, args.minutes, out / "floor.mp3")
        ours_s, ffmpeg_mb = ours(minute, args.minutes, out, gain_db)
        print(f"audio: {args.minutes} min, {RATE} Hz, {CHANNELS} ch, blocks of {BLOCK} frames")
        print(f"ffmpeg alone, mp3 128k:           {floor_s:7.2f} s")
        print(f"gain {gain_db:+.1f} dB + limiter + Encoder: {ours_s:5.2f} s")
        print(
            f"ratio:                            {ours_s / floor_s:7.2f}x"
            "  (render budget 1.3x, mixer included)"
        )
        if args.measure:
            started = time.perf_counter()
            raw = measure_stream(blocks(minute, args.minutes), RATE, CHANNELS)
            pass1_s = time.perf_counter() - started
            started = time.perf_counter()
            final = measure_file(out / "bench.mp3")
            file_s = time.perf_counter() - started
            print(
                f"pass 1 measure_stream (no TP):    {pass1_s:7.2f} s"
                f"  ({raw.integrated_lufs} LUFS raw)"
            )
            print(
                f"measure_file on the mp3 (TP):     {file_s:7.2f} s  "
                f"({final.integrated_lufs} LUFS, {final.true_peak_dbtp} dBTP)"
            )
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"peak RSS (getrusage): python {self_mb:.0f} MB + largest child {child_mb:.0f} MB"
        f" = {self_mb + child_mb:.0f} MB"
    )
    print(
        f"  the child figure includes the parent's size when it forked; ffmpeg's own"
        f" VmHWM while encoding: {ffmpeg_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
