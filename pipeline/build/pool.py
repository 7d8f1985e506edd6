"""Worker processes rendering tracks in parallel; a track whose worker dies is retried once."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.build.lock import held_lock_fd
from pipeline.build.state import BUILT, FAILED, NOT_STARTED
from pipeline.core.errors import PipelineError
from pipeline.core.processes import worker_context
from pipeline.plan.validate import Checked

log = logging.getLogger(__name__)

SENTENCE_JOBS = 2
"""Sentences synthesized at once inside one track's render (online engines overlap requests)."""
_STAGE_STEP = 0.02
"""Worker progress is forwarded when a track advances by this fraction (or changes stage)."""


@dataclass(frozen=True)
class TrackOutcome:
    """What a build did with one track."""

    track_id: str
    """The script's id."""
    source: Path
    """The script file."""
    status: str
    """``built``, ``up to date``, ``failed`` or ``not started`` (a failure stopped the build)."""
    reason: str = ""
    """Why it was rendered: ``missing``, ``forced``, or why it was stale."""
    error: str = ""
    """The failure's message."""
    seconds: float = 0.0
    """Wall time of its render."""
    synthesized: int = 0
    """Sentences synthesized for it."""
    engine_calls: int = 0
    """Calls to an engine's ``synthesize`` for it."""
    retries: int = 0
    """Times it was rendered again because the process rendering it died (killed, out of memory)."""


@dataclass(frozen=True)
class BuildEvent:
    """Progress of a build, for the CLI to draw.

    ``kind``: ``plan`` (what will be rendered is known), ``stage`` (a track's render moved on),
    ``retry`` (the process rendering a track died; ``message`` says how; it starts again)
    or ``finished`` (a track is done, ``outcome`` tells how).
    """

    kind: str
    """``plan``, ``stage``, ``retry`` or ``finished``."""
    done: int
    """Tracks finished so far (rendered or failed)."""
    total: int
    """Tracks to render."""
    track_id: str = ""
    """The track concerned (``stage``, ``finished``)."""
    stage: str = ""
    """Render stage: speech, measure, encode, finish, done."""
    fraction: float = 0.0
    """How far this track's render is, 0..1."""
    outcome: TrackOutcome | None = None
    """How the track finished (``finished``)."""
    message: str = ""
    """Why the track starts again (``retry``)."""


BuildProgress = Callable[[BuildEvent], None]
"""Receives every :class:`BuildEvent`; called from the building thread only."""


_worker_send: Callable[[tuple[Any, ...]], None] | None = None
"""In a worker process: sends a message to the build (from any thread)."""

RENDER_TRIES = 2
"""Tries of a track whose worker process dies (killed, out of memory): the first and one more."""
STOP_GRACE_S = 5.0
"""How long stopped workers have to clean up (stop their ffmpeg, remove temporaries)."""


@dataclass(frozen=True)
class _Rendered:
    """A worker's answer: plain data, so it crosses process boundaries."""

    track_id: str
    error: str
    seconds: float
    synthesized: int = 0
    engine_calls: int = 0
    retries: int = 0


def render_all(
    todo: list[Checked],
    keys: dict[str, str],
    out: Path,
    workers: int,
    keep_going: bool,
    emit: BuildProgress,
    reasons: dict[str, str],
) -> list[TrackOutcome]:
    """Render ``todo`` on ``workers`` processes (in this process for one); stop on failure."""
    by_id = {item.script.id: item for item in todo}
    outcomes: list[TrackOutcome] = []

    def finish(rendered: _Rendered) -> bool:
        item = by_id[rendered.track_id]
        outcome = TrackOutcome(
            rendered.track_id,
            item.script.path,
            FAILED if rendered.error else BUILT,
            reasons.get(rendered.track_id, ""),
            rendered.error,
            rendered.seconds,
            rendered.synthesized,
            rendered.engine_calls,
            rendered.retries,
        )
        outcomes.append(outcome)
        emit(BuildEvent("finished", len(outcomes), len(todo), outcome.track_id, outcome=outcome))
        return bool(rendered.error) and not keep_going

    pending = list(todo)
    if workers <= 1:
        while pending:
            item = pending.pop(0)
            track_id = item.script.id

            def stage(name: str, fraction: float, track_id: str = track_id) -> None:
                emit(BuildEvent("stage", len(outcomes), len(todo), track_id, name, fraction))

            if finish(_render_one(item, keys[track_id], out, stage)):
                break
    else:
        pending = _render_in_pool(pending, keys, out, workers, finish, emit, len(todo), outcomes)
    outcomes += [
        TrackOutcome(item.script.id, item.script.path, NOT_STARTED, reasons.get(item.script.id, ""))
        for item in pending
    ]
    return outcomes


class _Worker:
    """One render process and the pipe to it; it renders one track at a time."""

    def __init__(self, context: Any) -> None:
        self.conn, theirs = context.Pipe()
        self.process = context.Process(
            target=_worker_main,
            args=(theirs, os.getpid(), held_lock_fd()),
            name="meditate-render",
            daemon=True,
        )
        self.process.start()
        theirs.close()
        self.track: Checked | None = None
        """The track it is rendering, None when idle."""
        self.started = 0.0
        """When it was given its track (monotonic)."""

    @property
    def pid(self) -> int:
        """The worker's process id (it names the worker's encoder temporaries)."""
        return int(self.process.pid or 0)

    def give(self, item: Checked, key: str, out: Path) -> None:
        """Start rendering ``item``."""
        self.track, self.started = item, time.monotonic()
        self.conn.send((item, key, out))

    def collect(self, stage: Callable[[str, str, float], None]) -> _Rendered | None:
        """Forward the stages it sent; its answer once it has one (None: still working or dead)."""
        with contextlib.suppress(EOFError, OSError):
            while self.conn.poll():
                message = self.conn.recv()
                if message[0] == "stage":
                    stage(*message[1:])
                else:
                    self.track = None
                    answer: _Rendered = message[1]
                    return answer
        return None

    def died(self) -> bool:
        """Whether the process has ended (it is reaped then)."""
        return not self.process.is_alive()

    def cause(self) -> str:
        """How the process ended, e.g. ``killed by SIGKILL``."""
        import signal

        code = self.process.exitcode
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
            return f"killed by signal {-code}"
        return f"exit status {code}"


def _render_in_pool(
    pending: list[Checked],
    keys: dict[str, str],
    out: Path,
    workers: int,
    finish: Callable[[_Rendered], bool],
    emit: BuildProgress,
    total: int,
    outcomes: list[TrackOutcome],
) -> list[Checked]:
    """Keep ``workers`` renders running, one per worker process; returns the tracks never started.

    A worker that dies (killed, out of memory) costs its own track only: what it was writing
    is removed and the track is tried once more in a new worker; the others go on. On any
    exception (Ctrl-C, SIGTERM, a closed stderr) every worker is stopped and cleaned up first.
    """
    from multiprocessing.connection import wait

    context = worker_context()
    pool: list[_Worker] = []
    tries: dict[str, int] = {}
    stop = False

    def stage(track_id: str, name: str, fraction: float) -> None:
        emit(BuildEvent("stage", len(outcomes), total, track_id, name, fraction))

    try:
        while (not stop and pending) or any(worker.track for worker in pool):
            while not stop and pending:
                for worker in [w for w in pool if w.track is None and w.died()]:
                    pool.remove(worker)  # it died between two tracks: nothing was lost
                    with contextlib.suppress(OSError):
                        worker.conn.close()
                idle = [worker for worker in pool if worker.track is None]
                if not idle and len(pool) >= workers:
                    break
                worker = idle[0] if idle else _Worker(context)
                if not idle:
                    pool.append(worker)
                item = pending.pop(0)
                tries[item.script.id] = tries.get(item.script.id, 0) + 1
                with contextlib.suppress(OSError):  # it died just now: handled below
                    worker.give(item, keys[item.script.id], out)
            busy = [worker for worker in pool if worker.track is not None]
            wait([worker.conn for worker in busy] + [w.process.sentinel for w in busy], 0.5)
            for worker in sorted(busy, key=lambda worker: _track_id(worker.track)):
                track = worker.track
                assert track is not None
                track_id = track.script.id
                rendered = worker.collect(stage)
                if rendered is None and worker.died():
                    rendered = worker.collect(stage)  # it may have answered before it died
                    if rendered is None:
                        pool.remove(worker)
                        rendered = _lost(worker, track, out, tries[track_id], stop)
                        if rendered is None:
                            emit(_retry_event(worker, track_id, len(outcomes), total))
                            pending.insert(0, track)
                            continue
                if rendered is not None:
                    retries = tries[track_id] - 1
                    stop = finish(dataclasses.replace(rendered, retries=retries)) or stop
    finally:
        _stop_workers(pool, out)
    return pending


def _track_id(track: Checked | None) -> str:
    return track.script.id if track is not None else ""


def _lost(worker: _Worker, track: Checked, out: Path, tries: int, stop: bool) -> _Rendered | None:
    """A worker died while rendering ``track``: remove what it was writing; None to try again."""
    _remove_temporaries_of(out, worker.pid, track.script.id)
    with contextlib.suppress(OSError):
        worker.conn.close()
    cause = worker.cause()
    log.info("the process rendering %s died (%s)", track.script.id, cause)
    if tries < RENDER_TRIES and not stop:
        return None
    times = " twice" if tries > 1 else ""
    if cause == "killed by SIGKILL":
        cause += "; probable cause: the machine ran out of memory, or it was killed by hand"
    return _Rendered(
        track.script.id,
        f"{track.script.path}: error: the process rendering it died{times} ({cause})",
        time.monotonic() - worker.started,
        retries=tries - 1,
    )


def _retry_event(worker: _Worker, track_id: str, done: int, total: int) -> BuildEvent:
    message = f"the process rendering it died ({worker.cause()}); rendering it again"
    return BuildEvent("retry", done, total, track_id, message=message)


def _stop_workers(pool: list[_Worker], out: Path) -> None:
    """End every worker: idle ones when told, busy ones by SIGTERM (they clean up), then SIGKILL.

    Runs with SIGINT, SIGTERM and SIGHUP held, so a second Ctrl-C cannot cut the clean-up short.
    """
    import signal

    names = ("SIGINT", "SIGTERM", "SIGHUP")
    held = {getattr(signal, name) for name in names if hasattr(signal, name)}
    in_main = threading.current_thread() is threading.main_thread()
    if in_main and hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        for worker in pool:
            if worker.track is None:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
            else:
                with contextlib.suppress(OSError):
                    worker.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in pool:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            if worker.track is not None:
                _remove_temporaries_of(out, worker.pid, worker.track.script.id)
            with contextlib.suppress(OSError):
                worker.conn.close()
    finally:
        if in_main and hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def _remove_temporaries_of(out: Path, pid: int, track_id: str) -> None:
    """Delete what a dead worker was writing: its encoder temporaries, the track's atomic writes."""
    import re

    pattern = re.compile(rf"\..+\.tmp-{pid}|\.{re.escape(track_id)}\..+\.tmp")
    with contextlib.suppress(FileNotFoundError), os.scandir(out) as entries:
        for entry in entries:
            if pattern.fullmatch(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    log.info("removed %s, left by a stopped worker", entry.path)


def _worker_main(conn: Any, parent_pid: int, lock_fd: int | None) -> None:
    """A worker process: render each track the build sends, answer, until told to stop."""
    global _worker_send
    _init_worker(parent_pid, lock_fd)
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            conn.send(message)

    _worker_send = send
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        item, key, out = task
        send(("done", _render_one(item, key, out)))


def _init_worker(parent_pid: int, lock_fd: int | None) -> None:
    """Set up a worker: die with the build, leave Ctrl-C to it, clean up on SIGTERM, drop its lock.

    The build stops its workers itself (SIGTERM) when interrupted; SIGTERM unwinds the render,
    which stops its ffmpeg and removes its temporaries.
    """
    import signal

    if lock_fd is not None:
        with contextlib.suppress(OSError):
            os.close(lock_fd)
    for name in ("SIGINT", "SIGHUP"):  # a terminal's Ctrl-C or hang-up reaches the build too,
        if hasattr(signal, name):  # which stops its workers itself
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if sys.platform == "linux":
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(1)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _render_one(
    checked: Checked, key: str, out: Path, stage: Callable[[str, float], None] | None = None
) -> _Rendered:
    """Render one track; failures come back as messages (never raised across processes)."""
    from pipeline.build.render import RenderOptions, render_checked

    track_id = checked.script.id
    report = stage or _queue_stage(track_id)
    started = time.monotonic()

    def speech(done: int, total: int, text: str) -> None:
        report("speech", 0.2 * done / max(total, 1))

    options = RenderOptions(out, checked.settings.formats, build_key=key, jobs=SENTENCE_JOBS)
    try:
        result = render_checked(checked, options, progress=speech, stage=report)
    except PipelineError as error:
        return _Rendered(track_id, str(error), time.monotonic() - started)
    except Exception as error:  # a bug in one track must not take the batch down
        log.debug("render of %s failed", track_id, exc_info=True)
        message = f"{checked.script.path}: internal error: {type(error).__name__}: {error}"
        return _Rendered(track_id, message, time.monotonic() - started)
    return _Rendered(
        track_id,
        "",
        time.monotonic() - started,
        result.speech.synthesized,
        result.speech.engine_calls,
    )


def _queue_stage(track_id: str) -> Callable[[str, float], None]:
    """A stage callback that forwards to the build process, thinned to a few events per track."""
    last = ("", -1.0)

    def report(name: str, fraction: float) -> None:
        nonlocal last
        if _worker_send is None:
            return
        if name == last[0] and fraction - last[1] < _STAGE_STEP:
            return
        last = (name, fraction)
        with contextlib.suppress(Exception):
            _worker_send(("stage", track_id, name, fraction))

    return report
