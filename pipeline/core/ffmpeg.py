"""Locating and running ffmpeg; decoding any audio to float32 PCM with ffmpeg itself.

Every ffmpeg runs in a session of its own (``start_new_session=True``): a terminal's Ctrl-C,
sent to its foreground process group, reaches meditate only, which stops its ffmpeg processes
itself; an interruption is never reported as an ffmpeg failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pipeline.core.errors import AudioError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@cache
def ffmpeg_exe() -> str:
    """The ffmpeg binary: ``MEDITATE_FFMPEG``, else the imageio-ffmpeg wheel's, else PATH's."""
    explicit = os.environ.get("MEDITATE_FFMPEG")
    if explicit:
        if not Path(explicit).is_file():
            raise AudioError(f"MEDITATE_FFMPEG={explicit}: no such file")
        return explicit
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        pass
    found = shutil.which("ffmpeg")
    if found:
        return found
    raise AudioError("ffmpeg not found: install the 'imageio-ffmpeg' package or put ffmpeg on PATH")


def run_ffmpeg(args: list[str], input_bytes: bytes | None = None) -> bytes:
    """Run ffmpeg quietly and return its stdout; a failure raises AudioError with its stderr."""
    result = _run(["-loglevel", "error", *args], input_bytes)
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioError(
            f"ffmpeg failed: {detail[-1] if detail else 'exit ' + str(result.returncode)}"
        )
    return result.stdout


def run_ffmpeg_logged(args: list[str]) -> tuple[int, bytes, str]:
    """Run ffmpeg with its log (stream headers, filter summaries): its exit status, stdout
    and stderr text. AudioError only when it cannot be started.
    """
    result = _run(args)
    return result.returncode, result.stdout, result.stderr.decode("utf-8", "replace")


def last_line(log_text: str) -> str:
    """The last non-blank line of an ffmpeg log: its error, when it failed."""
    lines = [line.strip() for line in log_text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _run(args: list[str], input_bytes: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", *args]
    try:
        return subprocess.run(
            command, input=input_bytes, capture_output=True, check=False, start_new_session=True
        )
    except OSError as error:
        raise AudioError(f"cannot run ffmpeg ({command[0]}): {error}") from None


def decode(
    source: Path | bytes, sample_rate: int, channels: int, input_format: str | None = None
) -> npt.NDArray[np.float32]:
    """Decode a file or in-memory audio to float32 samples of shape (frames, channels)."""
    import numpy as np

    args: list[str] = []
    if input_format:
        args += ["-f", input_format]
    args += ["-i", "pipe:0" if isinstance(source, bytes) else str(source)]
    args += ["-map", "0:a:0", "-f", "f32le", "-acodec", "pcm_f32le"]
    args += ["-ar", str(sample_rate), "-ac", str(channels), "pipe:1"]
    what = "audio data" if isinstance(source, bytes) else str(source)
    try:
        raw = run_ffmpeg(args, source if isinstance(source, bytes) else None)
    except AudioError as error:
        raise AudioError(f"{what}: cannot decode: {error}") from None
    if not raw:
        raise AudioError(f"{what}: cannot decode: no audio in it")
    samples: npt.NDArray[np.float32] = np.frombuffer(raw, dtype="<f4").reshape(-1, channels).copy()
    return samples


def start_ffmpeg(
    command: list[str], *, stdin: int | None, stdout: int | None
) -> subprocess.Popen[bytes]:
    """Start a long-running ffmpeg (streaming in or out); its stderr is a pipe to drain."""
    try:
        return subprocess.Popen(
            command, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as error:
        raise AudioError(f"cannot run ffmpeg ({command[0]}): {error}") from None


@contextmanager
def killed_on_error(process: subprocess.Popen[bytes], reader: threading.Thread) -> Iterator[None]:
    """Around streaming to or from ``process``: on any exception kill and reap it, wait for
    the thread reading its stderr, and let the exception go on.
    """
    try:
        yield
    except BaseException:
        process.kill()
        process.wait()
        reader.join()
        raise


def widen_pipe(pipe: IO[bytes]) -> None:
    """Let the producer run up to 1 MiB ahead of ffmpeg (Linux), so both cores stay busy."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError, ValueError):
        pass


class PipeDrain(threading.Thread):
    """Reads a pipe to its end in the background, so ffmpeg never blocks on a full stderr."""

    def __init__(self, pipe: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self._pipe = pipe
        self._chunks: list[bytes] = []

    def run(self) -> None:
        for chunk in iter(lambda: self._pipe.read(65536), b""):
            self._chunks.append(chunk)

    def text(self) -> str:
        """Everything read, once the pipe has closed."""
        self.join()
        return b"".join(self._chunks).decode("utf-8", "replace")
