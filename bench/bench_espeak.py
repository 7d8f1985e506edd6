"""espeak speed: a 200-word paragraph, sentence by sentence, synthesized and conditioned.

Every run is a fresh ``python`` process, timed from outside, into an empty speech cache
(removed by the parent afterwards):

- ``meditate speak`` on the paragraph as a one-step script: the whole command (CLI, config,
  validation, planning, then synthesis, conditioning and storage on ``-j`` threads);
- the speech path alone, as ``speak`` runs it for the paragraph (``synthesize_missing``),
  with its own breakdown;
- ``python -c pass``: the machine's own share;
- a fixed pure-Python loop, once alone and twice at once: how free the second core is
  (1.0 free, up to 2.0 when the host gives it to someone else; it varies by the minute).

They alternate, since the machine drifts. Each prints its real-time factor (audio
seconds per wall second; target >= 200). An untimed first round lets Python cache the
package's bytecode, as a user's first ``meditate`` run does (even where
PYTHONDONTWRITEBYTECODE is set).

    python bench/bench_espeak.py [--runs 5] [--rate 1.0] [--sample-rate 44100] [--jobs 2]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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
from pipeline.project.settings import VoiceSettings
from pipeline.script.text import split_sentences
from pipeline.speech.cache import SpeechCache
from pipeline.speech.synthesis import synthesize_missing
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
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def speech_path(rate: float, sample_rate: int, jobs: int) -> dict[str, float]:
    """The speech path in a fresh process: its figures plus the wall time seen from outside."""
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


def speak_command(rate: float, sample_rate: int, jobs: int) -> dict[str, float]:
    """``meditate speak`` on the paragraph as a script, in a fresh project; wall and audio."""
    from pipeline.speech.cache import SpeechCache

    with tempfile.TemporaryDirectory(prefix="bench-espeak-cli-") as folder:
        project = Path(folder)
        (project / "meditate.yaml").write_text(f"sample_rate: {sample_rate}\n", encoding="utf-8")
        script = {"title": "Paragraph", "voice": {"rate": rate}, "steps": [{"say": PARAGRAPH}]}
        (project / "paragraph.yaml").write_text(json.dumps(script), encoding="utf-8")
        command = [sys.executable, "-m", "pipeline", "speak", "paragraph.yaml", "-j", str(jobs)]
        start = time.perf_counter()
        result = subprocess.run(
            command, capture_output=True, text=True, env=child_env(), cwd=project, check=False
        )
        wall_s = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"meditate speak failed:\n{result.stderr}")
        cache = SpeechCache(project / ".meditate-cache")
        keys = list(cache.keys())
        audio_s = sum(cache.length_s(key) or 0.0 for key in keys)
    return {"sentences": float(len(keys)), "audio_s": audio_s, "wall_s": wall_s}


def bare_interpreter_s() -> float:
    """Wall seconds of ``python -c pass`` with the same environment: the machine's floor."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=child_env(), check=True)
    return time.perf_counter() - start


SPIN = (
    "import time\nstart = time.perf_counter()\ntotal = 0\n"
    "for number in range(2_000_000):\n    total += number\nprint(time.perf_counter() - start)"
)


def spin_s(count: int) -> float:
    """The slowest of ``count`` fixed loops started at once, each in its own process."""
    processes = [
        subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    return max(float(process.communicate()[0]) for process in processes)


def second_core_factor() -> float:
    """How much slower two fixed loops run side by side than one alone."""
    return spin_s(2) / spin_s(1)


def factors(runs: list[dict[str, float]]) -> str:
    """Best and median real-time factors of some runs."""
    walls = sorted(run["wall_s"] for run in runs)
    audio_s = runs[0]["audio_s"]
    return (
        f"best {audio_s / walls[0]:.0f}x ({walls[0]:.3f} s), "
        f"median {audio_s / walls[len(walls) // 2]:.0f}x ({walls[len(walls) // 2]:.3f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--jobs", type=int, default=2, help="as `meditate speak -j` (default 2)")
    options = parser.parse_args()
    setting = (options.rate, options.sample_rate, options.jobs)
    print(
        f"paragraph: {len(PARAGRAPH.split())} words; rate {options.rate}; "
        f"{options.sample_rate} Hz; -j {options.jobs}; fresh processes"
    )
    speak_command(*setting)  # untimed: writes the bytecode
    speech_path(*setting)
    commands, paths, bare, second_core = [], [], [], []
    for _ in range(options.runs):
        second_core.append(second_core_factor())
        commands.append(speak_command(*setting))
        paths.append(speech_path(*setting))
        bare.append(bare_interpreter_s())
    for index, figures in enumerate(paths, 1):
        print(
            f"  run {index}: second core x{second_core[index - 1]:.2f} | "
            f"speak {commands[index - 1]['wall_s']:.3f} s | speech path: "
            f"{figures['sentences']:.0f} sentences, audio {figures['audio_s']:.1f} s, wall "
            f"{figures['wall_s']:.3f} s (imports {figures['import_s']:.3f} s, synthesis, "
            f"conditioning and cache {figures['speech_s']:.3f} s, interpreter start and exit "
            f"{figures['wall_s'] - figures['inside_s']:.3f} s)"
        )
    audio_s = paths[0]["audio_s"]
    print(
        f"`meditate speak` ({commands[0]['sentences']:.0f} clips, "
        f"{commands[0]['audio_s']:.1f} s of audio): {factors(commands)}  (target >= 200x)"
    )
    print(f"speech path alone ({audio_s:.1f} s of audio): {factors(paths)}")
    print(
        f"the machine, in the same runs: `python -c pass` takes {min(bare):.3f} s at best "
        f"(median {sorted(bare)[len(bare) // 2]:.3f} s) of the {audio_s / 200:.3f} s "
        f"that 200x allows; two loops side by side run x{sorted(second_core)[0]:.2f} to "
        f"x{sorted(second_core)[-1]:.2f} slower than one"
    )


if __name__ == "__main__":
    main()
