"""espeak speed: a 200-word paragraph, sentence by sentence, synthesized and conditioned.

Each run is a fresh ``python`` process doing what ``meditate speak`` does for the
paragraph, from import to done: split it into sentences, then synthesize, condition and
store each one in an empty speech cache (``synthesize_missing``, ``--jobs`` threads as
``speak -j``). The parent times it and prints the real-time factor (audio seconds per wall
second, target >= 200), plus the child's own breakdown, and, interleaved with the runs,
how long the bare interpreter takes to start and exit: the machine's own share. An untimed
first run lets Python cache the package's bytecode, as a user's first ``meditate`` run does
(even where PYTHONDONTWRITEBYTECODE is set).

    python bench/bench_espeak.py [--runs 3] [--rate 1.0] [--sample-rate 44100] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARAGRAPH = (
    "Welcome to this short practice of rest and attention. "
    "Find a position that lets your body feel supported and at ease. "
    "You may close your eyes, or let your gaze rest softly on the floor in front of you. "
    "Begin by noticing the places where your body touches the chair or the ground. "
    "Feel the weight of your hands, your arms and your shoulders. "
    "Now bring your attention to the breath, without trying to change it. "
    "Notice the air as it enters through the nose, cool and light. "
    "Notice it leaving again, a little warmer, a little slower. "
    "If your mind wanders, and it will, simply notice where it went. "
    "Then gently guide your attention back to the next breath. "
    "There is nothing to achieve here and nowhere else to be. "
    "Let each breath arrive and leave in its own time. "
    "Feel the small pause at the top of the in breath, and the longer pause at the bottom. "
    "With every breath out, allow the muscles of your face and jaw to soften. "
    "Let your shoulders drop away from your ears. "
    "Let your belly be soft, moving freely with the breath. "
    "Stay with this rhythm for a few more moments, resting in the simple sensation of "
    "breathing. "
    "When you are ready, take one deeper breath, and slowly open your eyes."
)

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from pipeline.cache import SpeechCache
from pipeline.settings import VoiceSettings
from pipeline.speech import synthesize_missing
from pipeline.text import split_sentences
t1 = time.perf_counter()
text, rate, sample_rate, jobs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sentences = split_sentences(text)
voice = VoiceSettings(rate=rate)
cache = SpeechCache(sys.argv[5])  # an empty folder; the parent removes it, as speak keeps its cache
requests = [(text, voice, f"paragraph: sentence {n}") for n, text in enumerate(sentences)]
report = synthesize_missing(requests, cache, lexicon=(), sample_rate=sample_rate, jobs=jobs)
t2 = time.perf_counter()
audio_s = sum(cache.length_s(key) or 0.0 for key in cache.keys())
print(json.dumps({"sentences": report.synthesized, "audio_s": audio_s, "import_s": t1 - t0,
                  "speech_s": t2 - t1, "inside_s": time.perf_counter() - t0}))
import gc
gc.freeze()  # as meditate's main() does when its command is done
"""


def child_env() -> dict[str, str]:
    """The environment of every child: this checkout first on the path, bytecode cached."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(rate: float, sample_rate: int, jobs: int) -> dict[str, float]:
    """One fresh process; its figures plus the wall time seen from outside."""
    with tempfile.TemporaryDirectory(prefix="bench-espeak-") as folder:
        start = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                PARAGRAPH,
                str(rate),
                str(sample_rate),
                str(jobs),
                folder,
            ],
            capture_output=True,
            text=True,
            env=child_env(),
            check=True,
        )
        wall_s = time.perf_counter() - start
    figures: dict[str, float] = json.loads(result.stdout)
    figures["wall_s"] = wall_s
    return figures


def bare_interpreter_s() -> float:
    """Wall seconds of ``python -c pass`` with the same environment: the machine's floor."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=child_env(), check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--jobs", type=int, default=2, help="as `meditate speak -j` (default 2)")
    options = parser.parse_args()
    words = len(PARAGRAPH.split())
    print(
        f"paragraph: {words} words; rate {options.rate}; {options.sample_rate} Hz; "
        f"-j {options.jobs}; fresh process"
    )
    run_once(options.rate, options.sample_rate, options.jobs)  # untimed: writes the bytecode
    runs, bare = [], []
    for _ in range(options.runs):  # interleaved with the bare interpreter: the machine drifts
        runs.append(run_once(options.rate, options.sample_rate, options.jobs))
        bare.append(bare_interpreter_s())
    for index, figures in enumerate(runs, 1):
        print(
            f"  run {index}: {figures['sentences']:.0f} sentences, audio "
            f"{figures['audio_s']:.1f} s, wall {figures['wall_s']:.3f} s -> "
            f"{figures['audio_s'] / figures['wall_s']:.0f}x real time | imports "
            f"{figures['import_s']:.3f} s, speech (synthesis, conditioning, cache) "
            f"{figures['speech_s']:.3f} s, interpreter start+exit "
            f"{figures['wall_s'] - figures['inside_s']:.3f} s"
        )
    by_wall = sorted(runs, key=lambda f: f["wall_s"])
    best, median = by_wall[0], by_wall[len(by_wall) // 2]
    print(
        f"best: {best['audio_s'] / best['wall_s']:.0f}x real time, median "
        f"{median['audio_s'] / median['wall_s']:.0f}x (target >= 200x); "
        f"speech alone {best['audio_s'] / best['speech_s']:.0f}x at best"
    )
    print(
        f"the machine, in the same runs: `python -c pass` takes {min(bare):.3f} s at best "
        f"(median {sorted(bare)[len(bare) // 2]:.3f} s) of the {best['audio_s'] / 200:.3f} s "
        "that 200x allows"
    )


if __name__ == "__main__":
    main()
