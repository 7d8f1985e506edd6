"""Kokoro speed and memory beside espeak: a ~10-minute script, cold cache, in fresh processes.

The sentences of the shipped scripts (the clonazepam article first) up to ``--minutes`` of
speech at 150 words a minute go through the speech path (``synthesize_missing``: synthesis,
conditioning, cache) into an empty cache, once per engine, each in its own ``python``. Printed
per engine: audio seconds, wall seconds, real-time factor (audio / wall; target for Kokoro >= 1.5),
peak memory of the process (target < 1 GB). Then Kokoro's model load alone (target < 1.5 s),
in a fresh process, best of ``--loads``.

With ``--builds``, instead, the whole job as a producer runs it: ``meditate build`` of a project
whose one script holds those sentences (synthesis, mix, mastering, mp3, sidecars; cold cache),
with espeak and with Kokoro (``-j 1``: one process, whose two synthesis threads share one
model); then the same sentences as two scripts built with ``-j 2`` (two worker processes, each
holding a model of its own). Peak memory there is the whole process tree's, sampled every 0.2 s.

    python bench/bench_kokoro.py [--minutes 10] [--voice jf_alpha] [--jobs 2] [--threads N]
                                 [--builds]

``--threads``: onnxruntime's intra-op threads per run (``MEDITATE_KOKORO_THREADS``; 0 is its
own choice, one per core); without it, the engine's default (one). The machine is shared: figures
vary by the minute.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEAK = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from pipeline.speech.cache import SpeechCache
from pipeline.project.settings import VoiceSettings
from pipeline.speech.synthesis import synthesize_missing
sentences = json.loads(sys.argv[1])
engine, name, jobs, folder = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
voice = VoiceSettings(engine=engine, name=name, language="en")
cache = SpeechCache(folder)
requests = [(text, voice, f"bench: sentence {n}") for n, text in enumerate(sentences)]
t1 = time.perf_counter()
report = synthesize_missing(requests, cache, lexicon=(), sample_rate=44100, jobs=jobs)
t2 = time.perf_counter()
audio_s = sum(cache.length_s(key) or 0.0 for key in cache.keys())
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"sentences": report.synthesized, "audio_s": audio_s, "import_s": t1 - t0,
                  "speech_s": t2 - t1, "peak_mb": peak_mb}))
"""

LOAD = r"""
import json, resource, time
t0 = time.perf_counter()
from pipeline.engines.kokoro import KokoroEngine, load_model
files = KokoroEngine().files()
t1 = time.perf_counter()
load_model(files.model)
t2 = time.perf_counter()
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "peak_mb": peak_mb}))
"""


def child_env(threads: int | None) -> dict[str, str]:
    """This checkout first on the path; onnxruntime's thread count (None: the engine's)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MEDITATE_KOKORO_THREADS", None)
    if threads is not None:
        env["MEDITATE_KOKORO_THREADS"] = str(threads)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def script_sentences(minutes: float) -> list[str]:
    """Sentences of the shipped scripts, the article first, up to ``minutes`` at 150 wpm."""
    import yaml

    from pipeline.script.text import split_sentences

    def says(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["say"]] if isinstance(node.get("say"), str) else []
            return found + [text for value in node.values() for text in says(value)]
        if isinstance(node, list):
            return [text for item in node for text in says(item)]
        return []

    paths = sorted((ROOT / "scripts").rglob("*.yaml"), key=lambda p: "articles" not in str(p))
    sentences: list[str] = []
    words = 0
    for path in paths:
        for text in says(yaml.safe_load(path.read_text(encoding="utf-8"))):
            for sentence in split_sentences(text):
                if "{" in sentence or sentence in sentences:
                    continue  # template fields, repeats (the cache would not speak them twice)
                sentences.append(sentence)
                words += len(sentence.split())
                if words >= minutes * 150:
                    return sentences
    return sentences


def speak(
    sentences: list[str], engine: str, voice: str, jobs: int, threads: int | None
) -> dict[str, Any]:
    """The speech path of one engine in a fresh process, into an empty cache."""
    with tempfile.TemporaryDirectory(prefix="bench-kokoro-") as folder:
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", SPEAK, json.dumps(sentences), engine, voice, str(jobs), folder],
            capture_output=True,
            text=True,
            env=child_env(threads),
            check=False,
        )
        wall_s = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{result.stderr}")
    figures: dict[str, Any] = json.loads(result.stdout)
    figures["wall_s"] = wall_s
    return figures


def model_load(threads: int | None) -> dict[str, float]:
    """Kokoro's model load in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", LOAD],
        capture_output=True,
        text=True,
        env=child_env(threads),
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"kokoro load failed:\n{result.stderr}")
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def write_project(
    folder: Path, sentences: list[str], engine: str, voice: str, scripts: int
) -> None:
    """A project speaking ``sentences`` in one voice, split evenly into ``scripts`` scripts."""
    (folder / "scripts").mkdir(parents=True)
    (folder / "meditate.yaml").write_text(
        "scripts: scripts\noutput: dist\ncache: cache\nformats: [mp3]\n"
        f"defaults:\n  language: en\n  voice: {{engine: {engine}, name: {voice}}}\n",
        encoding="utf-8",
    )
    size = -(-len(sentences) // scripts)
    for number in range(scripts):
        part = sentences[number * size : (number + 1) * size]
        steps = "".join(f"  - say: {json.dumps(text)}\n" for text in part)
        (folder / "scripts" / f"part-{number + 1}.yaml").write_text(
            f"title: Part {number + 1}\nsteps:\n{steps}", encoding="utf-8"
        )


def tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants, MB (from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    family = {root}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return sum(rss.get(pid, 0) for pid in family) / 2**20


def build(
    sentences: list[str], engine: str, voice: str, scripts: int, jobs: int, threads: int | None
) -> dict[str, Any]:
    """``meditate build -j jobs`` of a fresh project; wall time, audio length, peak tree RSS."""
    with tempfile.TemporaryDirectory(prefix="bench-kokoro-build-") as name:
        folder = Path(name)
        write_project(folder, sentences, engine, voice, scripts)
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "build", "-j", str(jobs)],
            cwd=folder,
            env=child_env(threads),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak_mb = 0.0
        while process.poll() is None:
            peak_mb = max(peak_mb, tree_rss_mb(process.pid))
            time.sleep(0.2)
        wall_s = time.perf_counter() - start
        _, errors = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"build -j {jobs} failed:\n{errors}")
        sidecars = sorted((folder / "dist").glob("part-*.json"))
        audio_s = sum(
            json.loads(path.read_text(encoding="utf-8"))["duration_s"] for path in sidecars
        )
    return {"wall_s": wall_s, "audio_s": audio_s, "peak_mb": peak_mb}


def print_build(label: str, figures: dict[str, Any]) -> None:
    factor = figures["audio_s"] / figures["wall_s"]
    print(
        f"  {label:<44} audio {figures['audio_s']:7.1f} s, wall {figures['wall_s']:7.1f} s, "
        f"real-time factor {factor:5.2f}x, peak memory {figures['peak_mb']:6.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--voice", default="jf_alpha", help="Kokoro voice (default jf_alpha)")
    parser.add_argument("--jobs", type=int, default=2, help="as `meditate speak -j` (default 2)")
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime threads per run (default: engine's)"
    )
    parser.add_argument("--loads", type=int, default=3, help="model loads to time")
    parser.add_argument("--skip-espeak", action="store_true")
    parser.add_argument("--builds", action="store_true", help="time whole builds instead")
    options = parser.parse_args()
    sentences = script_sentences(options.minutes)
    words = sum(len(sentence.split()) for sentence in sentences)
    thread_note = {None: "engine default", 0: "its own choice"}.get(
        options.threads, options.threads
    )
    print(
        f"script: {len(sentences)} sentences, {words} words (~{words / 150:.1f} min at 150 wpm); "
        f"-j {options.jobs}; onnxruntime threads {thread_note}; cold cache"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    engines = [("kokoro", options.voice)]
    if not options.skip_espeak:
        engines.insert(0, ("espeak", "en-us"))
    if options.builds:
        print("whole builds (meditate build, cold cache, mp3):")
        for engine, voice in engines:
            figures = build(sentences, engine, voice, 1, 1, options.threads)
            print_build(f"{engine} {voice}, one script, build -j 1", figures)
        figures = build(sentences, "kokoro", options.voice, 2, 2, options.threads)
        print_build(f"kokoro {options.voice}, two scripts, build -j 2", figures)
    else:
        for engine, voice in engines:
            figures = speak(sentences, engine, voice, options.jobs, options.threads)
            factor = figures["audio_s"] / figures["wall_s"]
            print(
                f"  {engine:<6} {voice:<9} audio {figures['audio_s']:7.1f} s, wall "
                f"{figures['wall_s']:7.1f} s, real-time factor {factor:6.2f}x, "
                f"peak memory {figures['peak_mb']:6.0f} MB (imports {figures['import_s']:.2f} s)"
            )
    loads = [model_load(options.threads) for _ in range(options.loads)]
    best = min(loads, key=lambda figures: figures["load_s"])
    every = ", ".join(f"{figures['load_s']:.2f}" for figures in loads)
    print(
        f"  kokoro model load: best {best['load_s']:.2f} s of {options.loads} fresh processes "
        f"(all: {every} s), peak memory after load {best['peak_mb']:.0f} MB"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
