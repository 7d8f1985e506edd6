"""`meditate watch`: a round at start and one per save of the script, what it includes or the
config; errors name their place and watching goes on."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from click.testing import CliRunner
from conftest import start_meditate, write_project

from pipeline.cli import cli
from pipeline.project.config import load_project
from pipeline.review.watch import Round, Watcher, WatchOptions, watch

CONFIG = "sample_rate: 16000\nchannels: 1\nformats: [wav]\ncache: cache\n"
SCRIPT = "title: Calm\nsteps:\n  - say: Breathe in slowly.\n  - pause: 1s\n  - say: {text}\n"
ROUND_TIMEOUT_S = 60.0


class Running:
    """A watcher on a thread; its rounds arrive on a queue."""

    def __init__(self, root: Path, options: WatchOptions) -> None:
        self.script = root / "scripts" / "calm.yaml"
        config = root / "meditate.yaml"
        self.watcher = Watcher(
            self.script, config, options, load_project=lambda: load_project(config)
        )
        self.rounds: queue.Queue[Round] = queue.Queue()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(
            target=watch,
            args=(self.watcher, self.rounds.put),
            kwargs={"stop": self.stop, "ready": self.ready.set},
            daemon=True,
        )

    def next_round(self) -> Round:
        return self.rounds.get(timeout=ROUND_TIMEOUT_S)

    def save(self, path: Path, text: str) -> Round:
        path.write_text(text, encoding="utf-8")
        return self.next_round()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    write_project(tmp_path, CONFIG, {"calm.yaml": SCRIPT.format(text="Rest here.")})
    runner = Running(tmp_path, WatchOptions(preview_s=10.0, listen=False))
    runner.thread.start()
    yield runner
    runner.stop.set()
    runner.thread.join(timeout=10)
    assert not runner.thread.is_alive(), "watch did not stop"


def test_a_round_at_start_then_one_per_save(running: Running, tmp_path: Path) -> None:
    first = running.next_round()
    assert first.ok and first.number == 1 and first.changed == ()
    assert first.synthesized == 2
    assert [path.name for path in first.files] == ["calm.preview.wav", "calm.preview.vtt"]
    assert running.ready.wait(10)
    second = running.save(running.script, SCRIPT.format(text="Let your shoulders drop."))
    assert second.ok and second.number == 2
    assert second.changed == (running.script.resolve(),)
    assert second.synthesized == 1  # only the edited sentence
    captions = (tmp_path / "dist" / "calm.preview.vtt").read_text(encoding="utf-8")
    assert "Let your shoulders drop." in captions


def test_each_round_checks_new_clips_and_rewrites_the_review_page(tmp_path: Path) -> None:
    write_project(tmp_path, CONFIG, {"calm.yaml": SCRIPT.format(text="Rest here.")})
    runner = Running(tmp_path, WatchOptions(preview_s=10.0))
    first = runner.watcher.run_round()
    assert first.ok, first.error
    assert first.transcribed == 2 and first.qa_status in ("ok", "warn")
    site = tmp_path / "dist" / "review"
    assert first.page == site / "calm.preview.html"
    page = first.page.read_text(encoding="utf-8")
    assert "Rest here." in page and "calm.preview.wav" in page
    version = (site / "calm.preview.version.js").read_text(encoding="utf-8")
    runner.script.write_text(SCRIPT.format(text="Let your shoulders drop."), encoding="utf-8")
    second = runner.watcher.run_round((runner.script,))
    assert second.ok, second.error
    assert second.transcribed == 1  # only the edited sentence's clip
    assert "Let your shoulders drop." in second.page.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert (site / "calm.preview.version.js").read_text(encoding="utf-8") != version
    mumbled = SCRIPT.format(text="Rest here.").replace("Breathe in slowly.", "Zzzz.")
    runner.script.write_text(mumbled, encoding="utf-8")
    third = runner.watcher.run_round((runner.script,))
    assert third.qa_status in ("warn", "fail")
    assert any("scripts/calm.yaml:3:10: " in line for line in third.flagged), third.flagged


def test_an_error_names_its_place_and_watching_goes_on(running: Running) -> None:
    assert running.next_round().ok
    assert running.ready.wait(10)
    broken = running.save(running.script, SCRIPT.format(text="Rest.") + "  - pause: soon\n")
    assert not broken.ok
    assert "calm.yaml:6:" in broken.error and "pause" in broken.error
    fixed = running.save(running.script, SCRIPT.format(text="Rest."))
    assert fixed.ok and fixed.number == 3


def test_a_change_to_the_config_starts_a_round(running: Running, tmp_path: Path) -> None:
    assert running.next_round().ok
    assert running.ready.wait(10)
    config = tmp_path / "meditate.yaml"
    bad = running.save(config, CONFIG + "sample_rate: fast\n")
    assert not bad.ok and "meditate.yaml:" in bad.error
    assert running.save(config, CONFIG).ok


def test_other_files_in_the_folder_start_no_round(running: Running) -> None:
    assert running.next_round().ok
    assert running.ready.wait(10)
    (running.script.parent / "other.yaml").write_text("title: Other\n", encoding="utf-8")
    with pytest.raises(queue.Empty):
        running.rounds.get(timeout=1.0)


def test_a_new_include_is_watched_too(running: Running, tmp_path: Path) -> None:
    assert running.next_round().ok
    assert running.ready.wait(10)
    part = tmp_path / "scripts" / "_parts" / "close.yaml"
    part.parent.mkdir()
    part.write_text("steps:\n  - say: Come back slowly.\n", encoding="utf-8")
    included = SCRIPT.format(text="Rest.") + "  - include: _parts/close.yaml\n"
    assert running.save(running.script, included).ok
    changed = running.save(part, "steps:\n  - say: Open your eyes.\n")
    assert changed.ok and changed.changed == (part.resolve(),)


def read_lines(stream: IO[str]) -> queue.Queue[str]:
    """Lines of a process's stream as they come."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def line_with(lines: queue.Queue[str], marker: str, timeout_s: float) -> str:
    """The next line holding ``marker`` (others are skipped)."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        with contextlib.suppress(queue.Empty):
            line = lines.get(timeout=left)
            if marker in line:
                return line
    raise queue.Empty(f"no line with {marker!r} within {timeout_s} s")


def saved_until(path: Path, texts: tuple[str, str], lines: queue.Queue[str], marker: str) -> str:
    """Save ``path`` (alternating ``texts``) until a line holding ``marker`` comes: the watcher
    may not be armed at the first save."""
    for attempt in range(20):
        path.write_text(texts[attempt % 2], encoding="utf-8")
        with contextlib.suppress(queue.Empty):
            return line_with(lines, marker, 3)
    raise AssertionError(f"no {marker!r} after 20 saves")


def test_the_command_prints_rounds_and_errors_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    write_project(tmp_path, CONFIG, {"calm.yaml": SCRIPT.format(text="Rest here.")})
    process = start_meditate(tmp_path, "watch", "scripts/calm.yaml", "--preview", "10s")
    try:
        out, err = read_lines(process.stdout), read_lines(process.stderr)  # type: ignore[arg-type]
        line_with(err, "watching scripts/calm.yaml", ROUND_TIMEOUT_S)
        first = line_with(out, "start: wrote dist/calm.preview.wav", ROUND_TIMEOUT_S)
        assert "2 sentence(s) synthesized" in first
        script = tmp_path / "scripts" / "calm.yaml"
        broken = SCRIPT.format(text="Rest.") + "  - pause: soon\n"
        saved_until(script, (broken, broken + "\n"), err, "calm.yaml: not rendered")
        line_with(err, "scripts/calm.yaml:6:", 5)
        fixed = SCRIPT.format(text="Rest.")
        saved_until(script, (fixed, fixed + "\n"), out, "calm.yaml: wrote dist/calm.preview.wav")
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "stopped watching" in "".join(err.queue)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_ends_watching_with_its_own_exit_status(tmp_path: Path) -> None:
    write_project(tmp_path, CONFIG, {"calm.yaml": SCRIPT.format(text="Rest here.")})
    process = start_meditate(tmp_path, "watch", "scripts/calm.yaml", "--no-listen")
    try:
        out = read_lines(process.stdout)  # type: ignore[arg-type]
        line_with(out, "start: wrote", ROUND_TIMEOUT_S)
        time.sleep(1.0)  # waiting in watchfiles, which turns the handler's exception into Ctrl-C's
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 143
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scripts/none.yaml"], "scripts/none.yaml: error: no such script file"),
        (["scripts"], "a folder"),
        (["scripts/calm.yaml", "--preview", "0s"], "--preview: must be longer than 0 s"),
    ],
)
def test_bad_command_lines_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    write_project(tmp_path, CONFIG, {"calm.yaml": SCRIPT.format(text="Rest here.")})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["watch", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
