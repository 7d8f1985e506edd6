"""Start-up and validation speed: `meditate --help` and `validate` of 500 scripts.

Run: python bench/bench_cli.py [--scripts 500]
Prints the figures; targets: --help under 0.3 s (and no audio library imported),
validate of 500 scripts under 3 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "numpy", "pydub", "gtts", "mutagen", "imageio_ffmpeg", "espeakng_loader", "soundfile", "ctypes"
)


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=False, capture_output=True)
    return time.perf_counter() - started


def help_figures(runs: int) -> None:
    python = [sys.executable, "-c", "import sys; from pipeline.cli import main; main()", "--help"]
    bare = [sys.executable, "-c", "pass"]
    help_s = statistics.median(timed(python, ROOT) for _ in range(runs))
    bare_s = statistics.median(timed(bare, ROOT) for _ in range(runs))
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, pipeline.cli; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    loaded = set(probe.stdout.split())
    heavy = [name for name in HEAVY if name in loaded]
    print(f"meditate --help: {help_s:.3f} s median of {runs} (bare python: {bare_s:.3f} s)")
    print(f"audio libraries imported at start-up: {heavy or 'none'}")


def validate_figures(count: int) -> None:
    sources = sorted(p for p in (ROOT / "scripts").rglob("*.yaml") if "_" not in p.name[:1])
    sources = [p for p in sources if not any(part.startswith("_") for part in p.parts)]
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        shutil.copy(ROOT / "meditate.yaml", project / "meditate.yaml")
        shutil.copytree(ROOT / "scripts" / "_snippets", project / "scripts" / "_snippets")
        target = project / "scripts" / "many"
        target.mkdir(parents=True)
        for index in range(count):
            source = sources[index % len(sources)]
            text = source.read_text(encoding="utf-8").replace("../_snippets", "../_snippets")
            lines = [line for line in text.splitlines() if not line.startswith("id:")]
            (target / f"s{index:04d}-{source.stem}.yaml").write_text(
                "\n".join(lines) + "\n", encoding="utf-8"
            )
        seconds = timed([sys.executable, "-m", "pipeline", "validate", "scripts"], project)
        result = subprocess.run(
            [sys.executable, "-m", "pipeline", "validate", "scripts"],
            cwd=project, capture_output=True, text=True,
        )  # fmt: skip
        summary = (result.stdout + result.stderr).strip().splitlines()[-1]
        print(f"validate {count} scripts: {seconds:.2f} s ({summary})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scripts", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    help_figures(args.runs)
    validate_figures(args.scripts)


if __name__ == "__main__":
    main()
