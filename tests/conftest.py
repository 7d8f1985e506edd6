"""Helpers shared by the test modules."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.engines.base import Availability, EncodedAudio, Engine
from pipeline.project.settings import VoiceSettings

Samples = np.ndarray[Any, np.dtype[np.float32]]


@contextlib.contextmanager
def mounted(target: Path, *mount_args: str) -> Iterator[Path]:
    """``mount MOUNT_ARGS target`` for the block (skips the test where that is not allowed)."""
    done = subprocess.run(["mount", *mount_args, str(target)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount {' '.join(mount_args)}: {done.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def tmpfs(folder: Path, options: str) -> contextlib.AbstractContextManager[Path]:
    """A tmpfs with ``options`` (``size=300k``, ``ro,size=64k``) mounted on a new ``folder``."""
    folder.mkdir()
    return mounted(folder, "-t", "tmpfs", "-o", options, "tmpfs")


def sine(
    length_s: float, freq_hz: float, amp: float, rate: int, channels: int = 0
) -> Samples:
    """A float32 sine of ``length_s``; ``channels`` 0 gives a mono 1-D array."""
    t = np.arange(round(length_s * rate)) / rate
    wave_ = (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return wave_ if channels == 0 else np.repeat(wave_[:, None], channels, axis=1)


def wav_audio(samples: np.ndarray[Any, Any], rate: int) -> EncodedAudio:
    """16-bit WAV bytes of float samples, shape (frames,) or (frames, channels), as an engine
    returns them.
    """
    frames = samples if samples.ndim == 2 else samples[:, None]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(frames.shape[1])
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes((np.clip(frames, -1, 1) * 32767).astype("<i2").tobytes())
    return EncodedAudio(buffer.getvalue(), "wav")


def write_project(root: Path, config: str, scripts: Mapping[str, str] | None = None) -> Path:
    """A project in ``root``: ``meditate.yaml`` holding ``config`` and each script of
    ``scripts`` (name relative to ``root / "scripts"``); returns ``root``.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "meditate.yaml").write_text(config, encoding="utf-8")
    (root / "scripts").mkdir(exist_ok=True)
    for name, text in (scripts or {}).items():
        path = root / "scripts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


class StubEngine(Engine):
    """A fake engine, always available, whose answers are the class attributes a test sets;
    it keys clips by voice name and cannot speak unless a subclass says how.
    """

    VERSION = "1.0"
    VOICES: tuple[str, ...] = ()
    LANGUAGES: tuple[str, ...] = ("en",)

    def version(self) -> str:
        return self.VERSION

    def availability(self) -> Availability:
        return Availability(True)

    def voices(self) -> list[str]:
        return list(self.VOICES)

    def languages(self) -> list[str]:
        return list(self.LANGUAGES)

    def cache_settings(self, voice: VoiceSettings) -> dict[str, str]:
        return {"name": voice.name}

    def synthesize(self, text: str, voice: VoiceSettings) -> EncodedAudio:
        raise NotImplementedError


def start_meditate(root: Path, *args: str) -> subprocess.Popen[str]:
    """``meditate ARGS`` in a process group of its own, like a terminal's foreground job."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def signal_when(
    process: subprocess.Popen[str],
    ready: Callable[[], object],
    what: str,
    sent: signal.Signals = signal.SIGINT,
    *,
    to_group: bool = True,
) -> str:
    """Wait (90 s at most) until ``ready()``, send ``sent`` to the process (its group, as a
    terminal does), and return its stderr once it has ended; it is killed if it hangs.
    """
    try:
        deadline = time.monotonic() + 90
        while not ready():
            assert process.poll() is None, f"it ended before it was caught {what}"
            assert time.monotonic() < deadline, f"it was never caught {what}"
            time.sleep(0.005)
        if to_group:
            os.killpg(process.pid, sent)
        else:
            process.send_signal(sent)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    return stderr
