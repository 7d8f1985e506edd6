"""Golden files: each broken script beside the exact output ``meditate validate`` must give.

Run with ``MEDITATE_REGEN_GOLDEN=1`` to rewrite the ``.out`` files, then review the diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(
    [p.name for p in (GOLDEN / "scripts").glob("*.yaml")] + ["dupes"],
)
REGENERATE = os.environ.get("MEDITATE_REGEN_GOLDEN") == "1"


MEASURED = """
import atexit, sys
peak_file = sys.argv.pop(1)
def report():
    # VmHWM belongs to this process image; ru_maxrss would inherit the parent's at fork.
    status = open("/proc/self/status").read()
    peak = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
    with open(peak_file, "w") as out:
        out.write(peak)
atexit.register(report)
from pipeline.cli import main
sys.argv[0] = "meditate"
main()
"""


def run_validate(target: str, *extra: str) -> tuple[int, str, float, int]:
    """Run the real command in a child process; return code, output, seconds, its peak KiB."""
    peak_file = Path(tempfile.gettempdir()) / f"meditate-peak-{os.getpid()}"
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                MEASURED,
                str(peak_file),
                "validate",
                *extra,
                f"scripts/{target}",
            ],
            cwd=GOLDEN,
            capture_output=True,
            text=True,
            timeout=30,
        )
        seconds = time.perf_counter() - started
        peak_kib = int(peak_file.read_text())
    finally:
        peak_file.unlink(missing_ok=True)
    return result.returncode, result.stdout + result.stderr, seconds, peak_kib


def snapshot(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES)
def test_golden_output(case: str) -> None:
    before = snapshot(GOLDEN)
    code, output, seconds, peak_kib = run_validate(case)
    expected_file = GOLDEN / "scripts" / (Path(case).stem + ".out")
    if REGENERATE:
        expected_file.write_text(output, encoding="utf-8")
    assert output == expected_file.read_text(encoding="utf-8")
    assert "Traceback" not in output
    expected_code = 0 if case == "warnings.yaml" else 1
    assert code == expected_code
    assert seconds < 2.0
    assert peak_kib < 200 * 1024
    if not REGENERATE:
        assert snapshot(GOLDEN) == before, "validate must write nothing"


def test_warnings_fail_under_strict() -> None:
    code, output, _, _ = run_validate("warnings.yaml", "--strict")
    assert code == 1
    assert "warning: background.fade_out" in output


def test_random_bytes(tmp_path: Path) -> None:
    import random

    path = tmp_path / "noise.yaml"
    path.write_bytes(bytes(random.Random(7).randrange(256) for _ in range(4096)))
    code, output = _validate_file(path)
    assert code == 1
    assert output.startswith(f"{path.name}:1:1: error: not UTF-8 text")


def test_non_utf8_text_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: Café\nsteps:\n  - say: Olé\n".encode("latin-1"))
    code, output = _validate_file(path)
    assert code == 1
    assert output.startswith(f"{path.name}:1:11: error: not UTF-8 text")


def test_twenty_megabytes(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"title: x\n" + b"# padding padding padding\n" * 800_000)
    started = time.perf_counter()
    code, output = _validate_file(path)
    assert time.perf_counter() - started < 2.0
    assert code == 1
    assert output.startswith(f"{path.name}:1:1: error: file is 20.8 MB; the limit is 1 MB")


def test_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("title: x\nsteps: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    code, output = _validate_file(path)
    assert code == 1
    assert "nesting is deeper than 40 levels" in output
    assert "Traceback" not in output


def _validate_file(path: Path) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "validate", str(path)],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Traceback" not in result.stderr
    return result.returncode, result.stderr + result.stdout
