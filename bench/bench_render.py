"""A whole render against its physical floor and against the naive pydub pipeline, side by side.

    python bench/bench_render.py [--minutes 10] [--naive-minutes M] [--no-naive] [--memory]
                                 [--rounds 2]

Builds a temporary project with a long script (sentences, pauses, breathing, a rain bed,
bowls), warms its speech cache with ``meditate speak``, then times, each as its own process
tree with its peak memory (the sum of VmRSS over the tree, polled every 50 ms):

(a) the floor: ffmpeg alone encoding the render's own PCM (and, for reference, pink noise
    of the same length) to mp3 128k; (a'') the same encode with its packets measured by a
    second ffmpeg (``ebur128``, true peak) as they are written, which the quality bar asks
    of every render ("loudness figures are measured on the encoded file");
(b) ``meditate render`` of the script to mp3 128k (the whole command);
(c) the naive pipeline: pydub clips joined with ``+`` in a loop, the bed and bowls overlaid,
    exported to wav, then ffmpeg ``loudnorm`` to mp3. It holds everything in memory, so it
    runs at ``--naive-minutes`` (default min(minutes, 10)) and its time is scaled linearly
    (its memory is not: it is printed as measured, and as scaled).

(a) and (b) run ``--rounds`` times, interleaved, and the best of each is compared: the
machine is shared, so single timings swing by 20%.
``--memory`` also renders 10 and 180 minutes and prints their peak memory difference.
Targets: render/floor <= 1.3, naive/render >= 3, render peak <= 250 MB, 180 vs 10 min <= 50 MB.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.core.ffmpeg import ffmpeg_exe

RATE = 44100
SENTENCES = [
    "Let your body settle into the surface beneath you.",
    "Notice the weight of your hands.",
    "Breathe in slowly, and let the breath go.",
    "There is nothing you need to do right now.",
    "Let the sounds around you come and go.",
    "Feel the gentle rise and fall of your chest.",
    "If your mind wanders, simply come back to the breath.",
    "Soften your shoulders, and let your jaw relax.",
    "Each breath out carries a little tension away.",
    "Rest here, easy and unhurried.",
    "Notice the air, cool as it enters, warm as it leaves.",
    "You are safe, and you are supported.",
]


def script_text(minutes: int) -> str:
    """About four sentences, a breathing cycle and long pauses per minute; a bowl every 5."""
    steps = []
    for minute in range(minutes):
        if minute % 10 == 0:
            steps.append(f"  - section: Part {minute // 10 + 1}")
        if minute % 5 == 0:
            steps.append("  - sound: {asset: bowl, wait: 3s}")
        picked = [SENTENCES[(minute * 4 + k) % len(SENTENCES)] for k in range(4)]
        steps.append(f"  - say: {' '.join(picked[:2])}")
        steps.append("  - pause: 12s+")
        steps.append(f"  - say: {' '.join(picked[2:])}")
        steps.append("  - breathe: {pattern: 4-2-6, cycles: 1}")
        steps.append("  - pause: 15s+")
    return (
        textwrap.dedent(
            f"""\
        title: Bench {minutes} minutes
        duration: {minutes}m
        background: {{asset: rain}}
        steps:
        """
        )
        + "\n".join(steps)
        + "\n"
    )


def make_project(root: Path, minutes: int) -> Path:
    (root / "meditate.yaml").write_text(
        f"sample_rate: {RATE}\nchannels: 2\nformats: [mp3]\nbitrate: 128k\ncache: cache\n"
    )
    (root / "scripts").mkdir(exist_ok=True)
    path = root / "scripts" / f"bench{minutes}.yaml"
    path.write_text(script_text(minutes))
    return path


# --- process tree measurement ---------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(command: list[str], **kwargs: object) -> tuple[float, float]:
    """Run ``command``; (seconds, peak MB of the summed RSS of its process tree)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, **kwargs)  # type: ignore[call-overload]
    peak_kb = 0
    while process.poll() is None:
        peak_kb = max(peak_kb, sum(_rss_kb(pid) for pid in _tree(process.pid)))
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}")
    return elapsed, peak_kb / 1024


# --- the three contenders -------------------------------------------------------------------


def floor(minutes: int, out: Path) -> tuple[float, float]:
    """ffmpeg alone: N minutes of PCM (a pre-made 1-minute file fed N times) to mp3 128k."""
    minute = out.parent / "minute.f32"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
         f"anoisesrc=color=pink:amplitude=0.1:sample_rate={RATE}:duration=60",
         "-ac", "2", "-f", "f32le", "-y", str(minute)],
        check=True,
    )  # fmt: skip
    feeder = (
        f"import sys; data = open({str(minute)!r}, 'rb').read()\n"
        f"for _ in range({minutes}): sys.stdout.buffer.write(data)\n"
    )
    shell = (
        f'{sys.executable} -c "{feeder}" | {ffmpeg_exe()} -hide_banner -nostdin -v error '
        f"-f f32le -ar {RATE} -ac 2 -i pipe:0 -c:a libmp3lame -b:a 128k -f mp3 -y {out}"
    )
    return run_measured(["bash", "-c", shell])


def decode_to_raw(rendered: Path, raw: Path) -> None:
    """The render's own PCM as a raw f32 file, for the same-PCM floor."""
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(rendered), "-f", "f32le", "-ar", str(RATE),
         "-ac", "2", "-y", str(raw)],
        check=True,
    )  # fmt: skip


def same_pcm_floor(raw: Path, root: Path) -> tuple[float, float]:
    """ffmpeg alone encoding the render's own PCM (a raw f32 file) to mp3 128k.

    LAME's speed depends on the content, so this is the floor for exactly this track.
    """
    return run_measured(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-f", "f32le",
         "-ar", str(RATE), "-ac", "2", "-i", str(raw), "-c:a", "libmp3lame", "-b:a", "128k",
         "-f", "mp3", "-y", str(root / "same.mp3")]
    )  # fmt: skip


def measured_pcm_floor(raw: Path, root: Path) -> tuple[float, float]:
    """(a') plus what the quality bar asks on top: the encoded stream measured as written.

    The encoder tees its packets to a second ffmpeg running ``ebur128`` with true peak, as
    the render's own encoder does; no Python, no mixing.
    """
    encode = (
        f"{ffmpeg_exe()} -hide_banner -nostdin -v error -f f32le -ar {RATE} -ac 2 -i {raw} "
        f"-map 0:a -c:a libmp3lame -b:a 128k -f tee '[f=mp3]{root / 'measured.mp3'}|[f=nut]pipe:1'"
    )
    meter = (
        f"{ffmpeg_exe()} -hide_banner -nostdin -nostats -f nut -i pipe:0 "
        "-af ebur128=framelog=verbose:peak=true -f null - 2>/dev/null"
    )
    return run_measured(["bash", "-c", f"{encode} | {meter}"])


NAIVE = r"""
import subprocess, sys, warnings
warnings.filterwarnings("ignore", category=RuntimeWarning)
from pathlib import Path
import numpy as np
from pydub import AudioSegment
from pipeline.build.render import _Sources
from pipeline.core.ffmpeg import ffmpeg_exe
from pipeline.plan.checked import check_scripts, plan_checked
from pipeline.plan.timeline import SoundCue, SpeechCue
from pipeline.project.config import load_project

script, out = Path(sys.argv[1]), Path(sys.argv[2])
checked = check_scripts([script], load_project(script.parent.parent / "meditate.yaml"))[0]
planned = plan_checked(checked)
sources = _Sources(planned, planned.lengths.cache)
rate = 44100

def segment(samples):
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    return AudioSegment(pcm.tobytes(), frame_rate=rate, sample_width=2, channels=channels)

timeline = planned.timeline
voice = AudioSegment.silent(duration=0, frame_rate=rate)
for cue in sorted(timeline.speech, key=lambda c: c.start_s):
    gap_ms = cue.start_s * 1000 - len(voice)
    voice = voice + AudioSegment.silent(duration=max(0, gap_ms), frame_rate=rate)
    voice = voice + segment(sources.speech(cue))
tail_ms = max(0, timeline.length_s * 1000 - len(voice))
voice = voice + AudioSegment.silent(duration=tail_ms, frame_rate=rate)
voice = voice.set_channels(2)
bed_audio, _ = sources.bed(timeline.background.asset)
bed = segment(bed_audio) - 18
mixed = voice.overlay(bed, loop=True)
bowl_audio, _ = sources.sound("bowl")
bowl = segment(bowl_audio)
for cue in timeline.cues:
    if isinstance(cue, SoundCue):
        mixed = mixed.overlay(bowl, position=int(cue.start_s * 1000))
wav = out.with_suffix(".wav")
mixed.export(wav, format="wav")
subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(wav), "-af", "loudnorm=I=-16:TP=-1",
                "-ar", str(rate), "-c:a", "libmp3lame", "-b:a", "128k", "-y", str(out)], check=True)
wav.unlink()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--naive-minutes", type=int, default=None)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive pipeline")
    parser.add_argument("--memory", action="store_true", help="also 10 vs 180 minutes")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds")
    args = parser.parse_args()
    if not args.no_naive and importlib.util.find_spec("pydub") is None:
        parser.error("the naive pipeline needs pydub: pip install -e '.[bench]' (or --no-naive)")
    minutes = args.minutes
    naive_minutes = args.naive_minutes or min(minutes, 10)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    meditate = [sys.executable, "-m", "pipeline", "-q"]

    with tempfile.TemporaryDirectory(prefix="bench-render-") as folder:
        root = Path(folder)
        script = make_project(root, minutes)
        started = time.perf_counter()
        subprocess.run([*meditate, "speak", str(script)], cwd=root, env=env, check=True)
        print(f"speech cache warmed in {time.perf_counter() - started:.1f} s")

        best: dict[str, tuple[float, float]] = {}
        raw = root / "track.f32"
        for round_number in range(1, args.rounds + 1):  # interleaved: the machine is shared
            render = [*meditate, "render", str(script), "-o", str(root / "out"), "--formats", "mp3"]
            times = {"render": run_measured(render, cwd=root, env=env)}
            if not raw.exists():
                decode_to_raw(root / "out" / f"bench{minutes}.mp3", raw)
            times["same"] = same_pcm_floor(raw, root)
            times["measured"] = measured_pcm_floor(raw, root)
            times["pink"] = floor(minutes, root / "floor.mp3")
            print(
                f"  round {round_number}: render {times['render'][0]:.1f} s, ffmpeg alone "
                f"{times['same'][0]:.1f} s (same PCM), {times['pink'][0]:.1f} s (pink noise), "
                f"{times['measured'][0]:.1f} s (same PCM, encoded stream measured)"
            )
            for name, measured in times.items():
                if name not in best or measured[0] < best[name][0]:
                    best[name] = measured
        raw.unlink()
        (floor_s, floor_mb), (same_s, same_mb) = best["pink"], best["same"]
        render_s, render_mb = best["render"]
        print(f"{minutes} min of audio, mp3 128k (best of {args.rounds} interleaved rounds)")
        print(f"  (a) ffmpeg alone, pink noise    {floor_s:7.1f} s   peak {floor_mb:7.0f} MB")
        print(f"  (a') ffmpeg alone, the track's PCM {same_s:5.1f} s   peak {same_mb:7.0f} MB")
        measured_s, measured_mb = best["measured"]
        print(f"  (a'') (a') + its stream metered {measured_s:5.1f} s   peak {measured_mb:7.0f} MB")
        print(f"  (b) meditate render             {render_s:7.1f} s   peak {render_mb:7.0f} MB")
        print(
            f"  render / floor  = {render_s / floor_s:.2f} (pink), {render_s / same_s:.2f} "
            "(same PCM)  (target <= 1.3)"
        )
        print(
            f"  render / (a'')  = {render_s / measured_s:.2f}  (the encoder and the encoded-file "
            f"meter alone take {measured_s / same_s:.2f}x the floor on this machine)"
        )

        if not args.no_naive:
            naive_script = script
            if naive_minutes != minutes:
                naive_script = make_project(root, naive_minutes)
                subprocess.run(
                    [*meditate, "speak", str(naive_script)], cwd=root, env=env, check=True
                )
            naive_s, naive_mb = run_measured(
                [sys.executable, "-c", NAIVE, str(naive_script), str(root / "naive.mp3")],
                cwd=root, env=env,
            )  # fmt: skip
            scale = minutes / naive_minutes
            note = f" (ran {naive_minutes} min, time x{scale:g})" if scale != 1 else ""
            print(
                f"  (c) naive pydub+loudnorm  {naive_s * scale:7.1f} s   peak {naive_mb:7.0f} MB"
                f"{note}" + (f", ~{naive_mb * scale:.0f} MB scaled" if scale != 1 else "")
            )
            print(f"  naive / render  = {naive_s * scale / render_s:.2f}  (target >= 3)")

        if args.memory:
            peaks = {}
            for length in (10, 180):
                long_script = make_project(root, length)
                subprocess.run(
                    [*meditate, "speak", str(long_script)], cwd=root, env=env, check=True
                )
                seconds, peaks[length] = run_measured(
                    [*meditate, "render", str(long_script), "-o", str(root / "mem")],
                    cwd=root, env=env,
                )  # fmt: skip
                print(f"  render {length:3d} min: {seconds:7.1f} s   peak {peaks[length]:7.0f} MB")
            print(f"  peak 180 min - 10 min = {peaks[180] - peaks[10]:+.0f} MB  (target within 50)")


if __name__ == "__main__":
    main()
