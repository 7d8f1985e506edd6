"""Atomic writes: durable by default, fsync skipped on request, the umask read unchanged."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from pipeline.core import fileio
from pipeline.core.fileio import atomic_writer


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counted(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counted)
    return calls


def test_a_write_is_fsynced_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_fsyncs(monkeypatch)
    with atomic_writer(tmp_path / "a" / "x.bin") as stream:
        stream.write(b"abc")
    assert (tmp_path / "a" / "x.bin").read_bytes() == b"abc"
    assert len(calls) == 1


def test_a_write_that_need_not_last_is_not_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_fsyncs(monkeypatch)
    with atomic_writer(tmp_path / "x.bin", durable=False) as stream:
        stream.write(b"abc")
    assert (tmp_path / "x.bin").read_bytes() == b"abc"
    assert calls == []


def test_a_failed_block_leaves_neither_file_nor_temporary(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), atomic_writer(tmp_path / "x.bin") as stream:
        stream.write(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="no /proc")
def test_the_umask_is_read_without_being_set(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = os.umask(0o027)
    try:

        def forbidden(mask: int) -> int:
            raise AssertionError("os.umask called: other threads would see the change")

        monkeypatch.setattr(os, "umask", forbidden)
        assert fileio._umask() == 0o027
    finally:
        monkeypatch.undo()
        os.umask(previous)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_files_get_the_mode_open_would_give(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        with atomic_writer(tmp_path / "x.bin", durable=False) as stream:
            stream.write(b"abc")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "x.bin").stat().st_mode) == 0o640


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_a_private_file_gets_the_mode_asked_for(tmp_path: Path) -> None:
    with atomic_writer(tmp_path / "x.bin", durable=False, mode=0o600) as stream:
        stream.write(b"abc")
    assert stat.S_IMODE((tmp_path / "x.bin").stat().st_mode) == 0o600


def test_a_file_set_left_without_commit_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("old")
    with pytest.raises(RuntimeError), fileio.FileSet() as files:
        files.write(tmp_path / "x.wav", b"new audio")
        files.write(tmp_path / "x.json", b"new sidecar")
        raise RuntimeError("interrupted")
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"x.json": "old"}


def test_a_file_set_puts_the_marker_last_and_replaces_the_old_set(tmp_path: Path) -> None:
    for name in ("x.wav", "x.json"):
        (tmp_path / name).write_text("old")
    with fileio.FileSet() as files:
        files.write(tmp_path / "x.wav", b"new")
        files.write(tmp_path / "x.json", b"new")
        assert files.commit() == [tmp_path / "x.wav", tmp_path / "x.json"]
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"x.wav": "new", "x.json": "new"}
