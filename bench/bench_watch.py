"""``meditate watch``: from a save to a re-rendered 60-second preview, with warm speech.

A copy of a shipped script (default: the clonazepam article, espeak) in a temporary project is
watched by the real loop (watchfiles). After the first round (which fills the speech cache and
the transcript cache), a new short sentence is put before its first one and saved, ``--saves``
times;
each save is timed from the write to the end of its round: validation, the excerpt's speech
(one sentence synthesized), mix, mastering, mp3, listen on the new clip (Whisper tiny.en, when
the ``qa`` extra is installed) and the review page. Target: under 3 s.

    python bench/bench_watch.py [--script scripts/articles/clonazepam-anxiety-attacks.yaml]
                                [--saves 5] [--no-listen]
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.project.config import load_project  # noqa: E402
from pipeline.review.watch import Round, Watcher, WatchOptions, watch  # noqa: E402

ARTICLE = ROOT / "scripts" / "articles" / "clonazepam-anxiety-attacks.yaml"


def project_copy(folder: Path, script: Path) -> Path:
    """The repository's config, assets and the script (with what it includes) in ``folder``."""
    shutil.copy(ROOT / "meditate.yaml", folder / "meditate.yaml")
    shutil.copytree(ROOT / "scripts", folder / "scripts")
    if (ROOT / "audio_assets").is_dir():
        shutil.copytree(ROOT / "audio_assets", folder / "audio_assets")
    return folder / script.resolve().relative_to(ROOT)


def edited(text: str, number: int) -> str:
    """The script with a new short sentence before the first sentence of its first ``say``."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith("- say: |"):
            body = lines[index + 1]
            indent = body[: len(body) - len(body.lstrip())]
            lines[index + 1] = f"{indent}Breathe, number {number}. {body.lstrip()}"
            return "".join(lines)
        if stripped.startswith("- say: "):
            lines[index] = line.replace("- say: ", f"- say: Breathe, number {number}. ", 1)
            return "".join(lines)
    raise SystemExit("no say step to edit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", type=Path, default=ARTICLE)
    parser.add_argument("--saves", type=int, default=5)
    parser.add_argument("--no-listen", action="store_true")
    options = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as name:
        script = project_copy(Path(name), options.script)
        config = Path(name) / "meditate.yaml"
        watcher = Watcher(
            script,
            config,
            WatchOptions(preview_s=60.0, listen=not options.no_listen),
            load_project=lambda: load_project(config),
        )
        rounds: queue.Queue[Round] = queue.Queue()
        stop, ready = threading.Event(), threading.Event()
        thread = threading.Thread(
            target=watch,
            args=(watcher, rounds.put),
            kwargs={"stop": stop, "ready": ready.set},
            daemon=True,
        )
        started = time.perf_counter()
        thread.start()
        first = rounds.get(timeout=600)
        if not first.ok:
            raise SystemExit(first.error)
        print(
            f"first round (cold speech): {time.perf_counter() - started:.1f} s, "
            f"{first.synthesized} synthesized, {first.transcribed} transcribed, "
            f"{first.duration_s:.1f} s of audio"
        )
        ready.wait(30)
        original = script.read_text(encoding="utf-8")
        times = []
        for number in range(1, options.saves + 1):
            saved = time.perf_counter()
            script.write_text(edited(original, number), encoding="utf-8")
            found = rounds.get(timeout=120)
            seconds = time.perf_counter() - saved
            if not found.ok:
                raise SystemExit(found.error)
            times.append(seconds)
            print(
                f"  save {number}: {seconds:.2f} s from the save to the page "
                f"({found.synthesized} synthesized, {found.transcribed} transcribed, "
                f"QA {found.qa_status or 'not checked'}; the round itself {found.seconds:.2f} s)"
            )
        stop.set()
        thread.join(timeout=30)
    print(
        f"save to re-rendered 60 s preview: median {statistics.median(times):.2f} s, "
        f"best {min(times):.2f} s of {len(times)} (target < 3 s)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
