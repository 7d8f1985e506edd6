"""Recorded takes against espeak: a whole render of the same script, cold speech cache.

Three renders of one script (about 30 sentences in 5 ``say`` steps), each a fresh
``python -m pipeline render`` process timed from outside, into an emptied speech cache:

- ``espeak``: the script as it is, synthesized by espeak;
- ``takes``: a ``recorded`` voice with one take file per sentence (WAV);
- ``long takes``: a ``recorded`` voice with one long take per step (FLAC), split at its
  silences (pydub) into sentences.

The takes are made once, untimed, by espeak itself (a stand-in for a human reader), so the
three renders speak the same audio. They alternate round by round, since the machine drifts;
each prints its median wall time and the track's real-time factor. Target: the takes no
slower than espeak.

    python bench/bench_takes.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = [
    "Welcome to this short practice of rest and attention. Find a position that lets your "
    "body feel supported. You may close your eyes. Let your hands rest where they are. "
    "There is nothing you need to do right now. This time is yours.",
    "Begin by noticing the places where your body touches the chair. Feel the weight of your "
    "legs. Feel your back against the support behind you. Let the ground hold you. "
    "Nothing needs to change.",
    "Now bring your attention to the breath. Notice the air moving in through the nose. "
    "Notice it moving out again. You do not need to control it. Simply follow it. "
    "When the mind wanders, come back gently.",
    "Let your shoulders soften. Let your jaw release. Notice the space between your eyebrows. "
    "Let it widen a little. Let your face be easy.",
    "In a moment we will finish. Take one deeper breath. Let it go slowly. Open your eyes "
    "when you are ready. Thank you for practising today.",
]
CONFIG = "sample_rate: 44100\nchannels: 2\nformats: [mp3]\ncache: cache\n"
GAP_S = 1.0
"""Silence before each sentence of a long take."""


def script(voice: str) -> str:
    steps = "".join(f"  - say: {text}\n  - pause: 2s\n" for text in STEPS)
    return f"title: Bench\n{voice}steps:\n{steps}"


def make_project(root: Path) -> None:
    """The project: the three scripts and their takes (made by espeak, untimed)."""
    import numpy as np
    import soundfile

    from pipeline.engines import get_engine
    from pipeline.project.settings import VoiceSettings
    from pipeline.script.text import split_say
    from pipeline.speech.condition import read_wav
    from pipeline.speech.takes import sentence_take_key, step_take_key

    (root / "scripts").mkdir(parents=True)
    (root / "meditate.yaml").write_text(CONFIG, encoding="utf-8")
    scripts = {
        "espeak": "",
        "takes": "voice: {engine: recorded, takes: ../takes/one}\n",
        "long": "voice: {engine: recorded, takes: ../takes/long}\n",
    }
    for name, voice in scripts.items():
        (root / "scripts" / f"{name}.yaml").write_text(script(voice), encoding="utf-8")
    engine = get_engine("espeak")
    (root / "takes" / "one").mkdir(parents=True)
    (root / "takes" / "long").mkdir(parents=True)
    for step in STEPS:
        parts = []
        rate = 22050
        for sentence in split_say(step):
            decoded = read_wav(engine.synthesize(sentence.text, VoiceSettings()).data)
            assert decoded is not None
            samples, rate = decoded
            key = sentence_take_key(sentence.text)
            soundfile.write(root / "takes" / "one" / f"{key}.wav", samples, rate)
            parts += [np.zeros(round(GAP_S * rate), np.float32), samples]
        parts.append(np.zeros(rate // 2, np.float32))
        path = root / "takes" / "long" / f"{step_take_key(step)}.flac"
        soundfile.write(path, np.concatenate(parts), rate)


def render(root: Path, name: str) -> tuple[float, float, float]:
    """Wall and CPU seconds (the process and its ffmpeg) of a cold render of ``name`` in a
    fresh process, and the track's length."""
    import soundfile

    shutil.rmtree(root / "cache", ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDITATE_")}
    command = [sys.executable, "-m", "pipeline", "-q", "render", f"scripts/{name}.yaml"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=root, env=env, check=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, float(soundfile.info(str(root / "dist" / f"{name}.mp3")).duration)


def main() -> None:
    from pipeline.script.text import split_say

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed rounds (default 3)")
    args = parser.parse_args()
    names = {"espeak": "espeak", "takes": "takes (a file per sentence)",
             "long": "long takes (split)"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-takes-") as folder:
        root = Path(folder)
        make_project(root)
        sentences = sum(len(split_say(step)) for step in STEPS)
        for name in names:  # untimed: bytecode, the espeak voice list, the page cache
            render(root, name)
        times: dict[str, list[float]] = {name: [] for name in names}
        cpus: dict[str, list[float]] = {name: [] for name in names}
        lengths: dict[str, float] = {}
        for _ in range(args.runs):
            for name in names:
                seconds, cpu, lengths[name] = render(root, name)
                times[name].append(seconds)
                cpus[name].append(cpu)
    print(f"a cold render of one script, {sentences} sentences, {args.runs} run(s), median:")
    base = statistics.median(times["espeak"])
    base_cpu = statistics.median(cpus["espeak"])
    for name, label in names.items():
        median, cpu = statistics.median(times[name]), statistics.median(cpus[name])
        print(
            f"  {label:<28} {median:6.2f} s wall, {cpu:5.2f} s CPU  (track {lengths[name]:5.1f} s, "
            f"x{lengths[name] / median:5.1f} real time; {median / base:4.2f} of espeak's wall "
            f"time, {cpu / base_cpu:4.2f} of its CPU)"
        )


if __name__ == "__main__":
    main()
