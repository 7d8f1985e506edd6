"""Batch builds: no-op build and check of 200 scripts (< 2 s each), -j 2 vs -j 1, one edit.

Run: ``python bench/bench_build.py``. Every figure is measured in this run, side by side,
including the machine's own ceiling for -j 2: ffmpeg alone encoding the same tracks two at
once against one after another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline.build.run import BuildReport, build, check
from pipeline.core.ffmpeg import ffmpeg_exe
from pipeline.project.config import load_project

NOOP_SCRIPTS = 200
RENDER_SCRIPTS = 8
RENDER_LENGTH = "60s"
ROUNDS = 2
TINY_CONFIG = "sample_rate: 16000\nchannels: 1\nformats: [wav]\ncache: cache\n"
RENDER_CONFIG = "sample_rate: 44100\nchannels: 2\nformats: [mp3]\ncache: cache\n"


def tiny_script(number: int) -> str:
    return (
        f"title: Tiny {number}\nsteps:\n  - section: Start\n"
        f"  - say: Breathe in. Breathe out.\n  - pause: 1s\n  - say: Rest, number {number % 7}.\n"
    )


def long_script(number: int) -> str:
    return (
        f"title: Long {number}\nduration: {RENDER_LENGTH}\n"
        "background: {asset: rain, fade_in: 2s, fade_out: 4s}\nsteps:\n"
        f"  - sound: bowl\n  - say: Welcome to session {number}. Settle in.\n"
        "  - pause: 20s+\n  - say: Notice your breath.\n  - pause: 20s+\n  - say: Goodbye.\n"
    )


def make_project(root: Path, config: str, scripts: dict[str, str]) -> None:
    (root / "scripts").mkdir(parents=True)
    (root / "meditate.yaml").write_text(config, encoding="utf-8")
    for name, text in scripts.items():
        (root / "scripts" / name).write_text(text, encoding="utf-8")


def run_build(root: Path, **options: object) -> tuple[BuildReport, float]:
    report, seconds, _ = run_build_cpu(root, **options)
    return report, seconds


def run_build_cpu(root: Path, **options: object) -> tuple[BuildReport, float, float]:
    """A build; its report, wall seconds and CPU seconds (this process and its children)."""
    project = load_project(root / "meditate.yaml")
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    report = build([root / "scripts"], project, {}, **options)  # type: ignore[arg-type]
    return report, time.perf_counter() - started, cpu_seconds() - cpu_before


def cpu_seconds() -> float:
    """User + system CPU of this process and every child it has waited for."""
    import resource

    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def cli_seconds(root: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=root, check=False, capture_output=True
    )
    return time.perf_counter() - started


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def bench_noop(root: Path) -> None:
    make_project(root, TINY_CONFIG, {f"t{n:03d}.yaml": tiny_script(n) for n in range(NOOP_SCRIPTS)})
    first, first_s = run_build(root)
    print(f"{NOOP_SCRIPTS} tiny scripts, first build: {first.built} built in {first_s:.1f} s")
    noop, noop_s = run_build(root)
    assert noop.built == 0 and noop.up_to_date == NOOP_SCRIPTS
    project = load_project(root / "meditate.yaml")
    started = time.perf_counter()
    report = check([root / "scripts"], project)
    check_s = time.perf_counter() - started
    assert report.ok
    build_cli_s = cli_seconds(root, "build")
    check_cli_s = cli_seconds(root, "check")
    for label, seconds in (
        ("no-op build (library)", noop_s),
        ("no-op `meditate build` (CLI)", build_cli_s),
        ("check (library)", check_s),
        ("`meditate check` (CLI)", check_cli_s),
    ):
        print(f"  {label:30s} {seconds:6.2f} s  (< 2 s: {verdict(seconds < 2)})")
    script = root / "scripts" / "t123.yaml"
    script.write_text(tiny_script(123).replace("Breathe out.", "Let go."), encoding="utf-8")
    edited, edited_s = run_build(root)
    for failed in edited.with_status("failed"):
        print(f"  FAILED {failed.track_id}: {failed.error}")
    print(
        f"  one sentence edited: {edited.built} track re-rendered, {edited.up_to_date} up to "
        f"date, {edited.synthesized} sentence synthesized ({edited.engine_calls} engine call), "
        f"{edited_s:.2f} s  (1 and 1: {verdict(edited.built == 1 and edited.synthesized == 1)})"
    )


def bench_parallel(root: Path) -> None:
    make_project(root, RENDER_CONFIG, {f"l{n}.yaml": long_script(n) for n in range(RENDER_SCRIPTS)})
    warm, warm_s = run_build(root, output_dir=root / "warm")  # fills the speech cache
    print(
        f"{RENDER_SCRIPTS} scripts of {RENDER_LENGTH} (44.1 kHz stereo mp3, bed, bowl); "
        f"speech synthesized first ({warm.synthesized} sentences, {warm_s:.1f} s)"
    )
    pcm = root / "track.f32"
    decode_to_pcm(root / "warm" / "l0.mp3", pcm)
    timings: dict[int, float] = {1: float("inf"), 2: float("inf")}
    bare: dict[int, float] = {1: float("inf"), 2: float("inf")}
    busy_cores = 0.0
    for _ in range(ROUNDS):  # interleaved, best of each: the machine is shared
        for jobs in (1, 2):
            out = root / f"j{jobs}"
            report, seconds, cpu = run_build_cpu(root, output_dir=out, jobs=jobs, force=True)
            assert report.built == RENDER_SCRIPTS and report.synthesized == 0, report
            if jobs == 1 and seconds < timings[1]:
                busy_cores = cpu / seconds
            timings[jobs] = min(timings[jobs], seconds)
            bare[jobs] = min(bare[jobs], encode_batch(pcm, root / f"bare{jobs}", jobs))
    audio_s = RENDER_SCRIPTS * 60
    for jobs, seconds in timings.items():
        print(f"  -j {jobs}: {seconds:6.1f} s ({audio_s / seconds:5.1f} s of audio per second)")
    ratio = timings[1] / timings[2]
    print(f"  -j 2 throughput / -j 1 throughput: {ratio:.2f}x  (>= 1.7x: {verdict(ratio >= 1.7)})")
    print(
        f"  at -j 1 a render already keeps {busy_cores:.2f} cores busy on average (encoder, "
        f"encoded-file meter and mixer run at once), so on {os.cpu_count()} cores -j 2 can "
        f"give at most {(os.cpu_count() or 1) / busy_cores:.2f}x"
    )
    print(
        f"  the machine's ceiling, in the same rounds: ffmpeg alone encoding the same "
        f"{RENDER_SCRIPTS} tracks' PCM to mp3, 2 at once vs one after another: "
        f"{bare[1]:.1f} s / {bare[2]:.1f} s = {bare[1] / bare[2]:.2f}x"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  (best of {ROUNDS} interleaved runs; load average {load:.1f}, {os.cpu_count()} cores)")


def decode_to_pcm(source: Path, target: Path) -> None:
    """A rendered track as raw float32 stereo PCM, as the render feeds its encoder."""
    command = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-f", "f32le", "-ac", "2"]
    subprocess.run([*command, "-ar", "44100", str(target)], check=True)


def encode_batch(pcm: Path, out: Path, jobs: int) -> float:
    """Seconds for ffmpeg alone to encode RENDER_SCRIPTS copies of ``pcm`` to mp3 128k."""
    out.mkdir(exist_ok=True)
    encode = [ffmpeg_exe(), "-v", "error", "-y", "-f", "f32le", "-ar", "44100", "-ac", "2"]
    encode += ["-i", str(pcm), "-c:a", "libmp3lame", "-b:a", "128k"]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = [
            pool.submit(subprocess.run, [*encode, str(out / f"{n}.mp3")], check=True)
            for n in range(RENDER_SCRIPTS)
        ]
        for run in runs:
            run.result()
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-build-") as folder:
        bench_noop(Path(folder) / "noop")
        bench_parallel(Path(folder) / "parallel")


if __name__ == "__main__":
    main()
