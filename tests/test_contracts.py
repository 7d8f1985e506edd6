"""Contracts with third-party internals: each failure names the library and what changed in it.

Each private API is used in one adapter only, and its library is capped in pyproject.toml below
the next series; raising a cap starts here.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the test extra installs tomli there
    import tomli as tomllib

from pipeline.core.errors import EngineError

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "dependencies"
]


def _requirement(distribution: str) -> str:
    found = [r for r in REQUIREMENTS if re.match(rf"{distribution}\b", r, re.IGNORECASE)]
    assert len(found) == 1, f"pyproject.toml: no single requirement for {distribution}"
    return found[0]


def test_gtts_is_capped_below_the_series_after_the_one_the_adapter_knows() -> None:
    """gTTS had no upper bound although its private _package_rpc builds every request."""
    import gtts

    from pipeline.engines.gtts import GTTS_SERIES

    major, minor = GTTS_SERIES
    assert f"<{major}.{minor + 1}" in _requirement("gTTS")
    assert tuple(int(n) for n in gtts.__version__.split(".")[:2]) == GTTS_SERIES


def test_gtts_internals_still_build_the_request_the_engine_sends() -> None:
    """If this fails, gTTS changed gTTS._package_rpc or gTTS.GOOGLE_TTS_HEADERS."""
    import gtts

    from pipeline.engines.gtts import RPC_ID, gtts_request

    form, headers = gtts_request("Breathe in, slowly.", "en", "co.uk")
    what = f"gTTS {gtts.__version__}: gTTS._package_rpc"
    fields = urllib.parse.parse_qs(form.decode("ascii"))
    assert list(fields) == ["f.req"], f"{what} no longer makes an f.req form: {form!r}"
    rpc = json.loads(fields["f.req"][0])
    assert rpc[0][0][0] == RPC_ID, f"{what} calls another RPC than {RPC_ID}: {rpc}"
    assert json.loads(rpc[0][0][1])[:2] == ["Breathe in, slowly.", "en"], f"{what}: {rpc}"
    what = f"gTTS {gtts.__version__}: gTTS.GOOGLE_TTS_HEADERS"
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded"), what
    assert headers["User-Agent"], what
    assert headers["Referer"] == "https://translate.google.co.uk/"


def test_a_gtts_without_its_internals_is_an_error_that_names_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gTTS without _package_rpc was an AttributeError from deep inside a synthesis."""
    from gtts import gTTS

    from pipeline.engines.gtts import gtts_request

    monkeypatch.delattr(gTTS, "_package_rpc")
    with pytest.raises(EngineError, match=r"gTTS [\d.]+ changed the internals") as raised:
        gtts_request("Rest.", "en", "com")
    assert "gTTS._package_rpc" in str(raised.value)
    assert "pip install 'gTTS>=2.5,<2.6'" in str(raised.value)



def _gtts_engine(url: str) -> Any:
    from pipeline.engines.gtts import GttsEngine
    from pipeline.project.settings import RetrySettings

    return GttsEngine(RetrySettings(tries=1, timeout_s=5.0, endpoint=url))


def test_http_client_internals_still_open_the_engine_connections() -> None:
    """If this fails, CPython changed http.client.HTTPConnection._create_connection."""
    from fake_gtts import FakeGtts

    from pipeline.project.settings import VoiceSettings

    with FakeGtts() as server:
        audio = _gtts_engine(server.url).synthesize("Rest.", VoiceSettings(engine="gtts"))
    assert audio.data


def test_a_python_whose_http_client_skips_the_hook_is_an_error_that_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Had http.client stopped calling the hook, a look-up could have outlasted every timeout."""
    import http.client
    import socket

    from fake_gtts import FakeGtts

    from pipeline.project.settings import VoiceSettings

    def connect(self: http.client.HTTPConnection) -> None:
        self.sock = socket.create_connection((self.host, self.port), self.timeout)

    monkeypatch.setattr(http.client.HTTPConnection, "connect", connect)
    with FakeGtts() as server, pytest.raises(EngineError) as raised:
        _gtts_engine(server.url).synthesize("Rest.", VoiceSettings(engine="gtts"))
    assert "http.client.HTTPConnection._create_connection" in str(raised.value)


def test_mutagen_is_capped_as_the_adapter_says() -> None:
    """mutagen had no upper bound although its private ID3._write orders every chapter."""
    import mutagen

    from pipeline.audio.encode import MUTAGEN_RANGE

    assert _requirement("mutagen") == f"mutagen{MUTAGEN_RANGE}"
    low, high = (bound.lstrip("<>=") for bound in MUTAGEN_RANGE.split(","))
    version = mutagen.version[:2]
    assert _release(low) <= version < _release(high), f"mutagen {mutagen.version_string}"


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@pytest.mark.parametrize("fmt", ["mp3", "wav"])
def test_mutagen_internals_still_order_the_chapters(tmp_path: Path, fmt: str) -> None:
    """If this fails, mutagen changed ID3._write (the frames' bytes, which meditate reorders)."""
    import subprocess

    import mutagen
    from chapters_by_ffmpeg import read_chapters

    from pipeline.audio.encode import TrackTags, tag_file
    from pipeline.core.ffmpeg import ffmpeg_exe

    path = tmp_path / f"quiet.{fmt}"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono", "-t", "3",
         str(path)],
        check=True,
    )
    # mutagen writes frames shortest first: these chapters would come out backwards
    titles = ["The first chapter, with the longest title", "Then", "End"]
    tag_file(path, fmt, TrackTags("T", chapters=[(t, i * 1.0) for i, t in enumerate(titles)]))
    found = [title for title, _start in read_chapters(path)]
    assert found == titles, f"mutagen {mutagen.version_string}: ID3._write changed: {found}"


def test_a_mutagen_that_does_not_call_its_writer_is_an_error() -> None:
    """Had mutagen stopped calling ID3._write, chapters would silently be in size order."""
    import mutagen.id3

    from pipeline.audio.encode import save_in_chapter_order
    from pipeline.core.errors import AudioError

    with pytest.raises(AudioError, match=r"mutagen [\d.]+ no longer writes ID3 frames through"):
        save_in_chapter_order(mutagen.id3.ID3(), lambda: None)


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="reads /proc/self/maps")
def test_ctypes_internals_still_unload_a_library(tmp_path: Path) -> None:
    """If this fails, CPython changed _ctypes.dlclose or ctypes.CDLL._handle."""
    import ctypes
    import shutil

    import espeakng_loader

    from pipeline.engines.espeak import unload_library

    copy = tmp_path / "libespeak-ng-contract.so"
    shutil.copyfile(espeakng_loader.get_library_path(), copy)

    def mapped() -> bool:
        return str(copy) in Path("/proc/self/maps").read_text(encoding="utf-8")

    lib = ctypes.CDLL(str(copy))
    assert mapped()
    unload_library(lib)
    python = f"{sys.implementation.name} {sys.version.split()[0]}"
    assert not mapped(), f"{python}: _ctypes.dlclose(CDLL._handle) no longer unloads a library"


def test_a_python_without_dlclose_is_an_error_that_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without _ctypes.dlclose every sentence would reuse the library's globals, silently."""
    import _ctypes
    import ctypes

    from pipeline.engines.espeak import unload_library

    name = "FreeLibrary" if sys.platform == "win32" else "dlclose"
    monkeypatch.delattr(_ctypes, name)
    with pytest.raises(EngineError, match=rf"has no _ctypes\.{name}, which meditate uses"):
        unload_library(ctypes.CDLL(None))
