"""The built-in offline engine: libespeak-ng from the ``espeakng-loader`` wheel, via ctypes.

libespeak-ng keeps synthesis state in globals (pitch flutter phase, echo buffer...) that
survive ``espeak_Terminate`` and change the samples of the next utterance. For
deterministic output every synthesis therefore runs on a freshly loaded instance of a
private copy of the library (dlopen, initialize, speak, terminate, dlclose: about 1 ms
besides the speaking). Each thread borrows its own copy from a small pool, so sentences are
synthesized in parallel (ctypes releases the GIL); a forked child makes its own copies, so
it never touches its parent's instances.

A fresh instance looks for its voice's file under the lower-cased name; on a case-sensitive
file system ``gmw/en-US`` is then missed and the library reads all 140 voice files to find
it, 4 ms per sentence. Such voices are therefore read through a mirror of the data folder,
made of links, where every voice file is also found under its lower-case name.

Breath noise is random: libespeak-ng seeds its own generator from the clock (we seed it
with NOISE_SEED before every sentence), and its Klatt voices (``+Reed``, ``+caleb``...) draw
from the C library's ``rand()``, whose one state the whole process shares: voices with
breath noise speak one at a time, right after seeding that too.
"""

from __future__ import annotations

import atexit
import ctypes
import difflib
import functools
import hashlib
import io
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
import threading
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pipeline.core.errors import EngineError
from pipeline.engines.base import Availability, EncodedAudio, Engine, VoiceInfo
from pipeline.engines.ipa import espeak_text
from pipeline.project.settings import VoiceSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_PHONEMES = 0x100
"""espeakPHONEMES: ``[[...]]`` in the text is espeak phoneme input."""
_POS_CHARACTER = 1
_RATE = 1
SPEAKING_RATE_WPM = 115
"""espeak's native speed: calmer than its default 175, near the planner's 150-word estimate."""
_BUFFER_MS = 1000
_SAMPLE_BYTES = 2

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)


class _VoiceStruct(ctypes.Structure):
    """``espeak_VOICE`` from speak_lib.h."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


@dataclass(frozen=True)
class EspeakVoice:
    """One voice of the installed espeak-ng data."""

    identifier: str
    """File identifier under ``espeak-ng-data/voices``, e.g. ``gmw/en-US``; what we select by."""
    name: str
    """Descriptive name, e.g. ``English (America)``."""
    languages: tuple[tuple[str, int], ...]
    """Language codes it speaks, each with its priority (lower is preferred)."""

    @property
    def short_name(self) -> str:
        """The identifier without its family folder, lower case: ``en-us``."""
        return self.identifier.rsplit("/", 1)[-1].lower()


@dataclass(frozen=True)
class _Private:
    """One private copy of the library, used by one thread at a time."""

    pid: int
    folder: str
    """Temporary folder holding the copy; empty for an in-memory copy."""
    library: str
    """Path to dlopen."""


MAX_COPIES = max(1, min(4, os.cpu_count() or 1))
"""Copies of the library per process: how many sentences are synthesized at once."""

_pool = threading.Condition()
_copies: list[_Private] = []
"""This process's copies, in use or free."""
_free: list[_Private] = []
_local = threading.local()
"""Per thread: the samples the synth callback collects (synthesis runs in the caller's thread)."""


_noise_lock = threading.Lock()
"""Held while a voice with breath noise speaks: the noise comes from the C library's rand()."""

NOISE_SEED = 1
"""Seed of libespeak-ng's noise generator, and of the C library's rand() before a voice with
breath noise speaks."""


def _reset_after_fork() -> None:
    """In a forked child: an empty pool of its own (the parent's copies may be in use by
    threads that do not exist here), and a free noise lock.
    """
    global _pool, _copies, _free, _noise_lock
    _pool, _copies, _free = threading.Condition(), [], []
    _noise_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _collect(samples: int | None, count: int, events: int | None) -> int:
    """The synth callback: keep each buffer of 16-bit mono samples; 0 means continue."""
    if samples and count > 0:
        _local.chunks.append(ctypes.string_at(samples, count * _SAMPLE_BYTES))
    return 0


_callback = _SynthCallback(_collect)


@functools.cache
def _paths() -> tuple[str, str]:
    """The wheel's library and data folder (found once per process)."""
    try:
        import espeakng_loader
    except ImportError:
        raise EngineError(
            "espeak: the 'espeakng-loader' package is not installed (pip install espeakng-loader)"
        ) from None
    try:
        return str(espeakng_loader.get_library_path()), str(espeakng_loader.get_data_path())
    except RuntimeError as error:
        raise EngineError(f"espeak: espeakng-loader is incomplete: {error}") from None


def _remove_private(private: _Private) -> None:
    """At exit of the process that made it, delete the private copy."""
    if private.folder and private.pid == os.getpid():
        shutil.rmtree(private.folder, ignore_errors=True)


@contextmanager
def _borrowed_copy(source: str) -> Iterator[_Private]:
    """A copy of the library no other thread is using; made on demand, up to MAX_COPIES."""
    with _pool:
        while not _free and len(_copies) >= MAX_COPIES:
            _pool.wait()
        if _free:
            private = _free.pop()
        else:
            private = _private_copy(source)
            _copies.append(private)
    try:
        yield private
    finally:
        with _pool:
            if private in _copies:  # not a copy from before a fork
                _free.append(private)
                _pool.notify()


def _private_copy(source: str) -> _Private:
    """A copy of the library only its borrower loads, so dlclose really unloads it.

    On Linux an anonymous memory file (nothing to clean up, even after a crash); elsewhere
    a temporary file removed at exit.
    """
    if not Path(source).is_file():
        raise EngineError(f"espeak: library not found at {source}; reinstall espeakng-loader")
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and Path("/proc/self/fd").is_dir():
        try:
            descriptor = memfd_create("libespeak-ng", 0)
            with open(source, "rb") as original:
                os.write(descriptor, original.read())
        except OSError as error:
            raise EngineError(f"espeak: cannot copy the library into memory: {error}") from None
        return _Private(os.getpid(), "", f"/proc/self/fd/{descriptor}")
    folder = tempfile.mkdtemp(prefix="meditate-espeak-")
    library = str(Path(folder) / Path(source).name)
    try:
        shutil.copyfile(source, library)
    except OSError as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise EngineError(f"espeak: cannot copy the library to {folder}: {error}") from None
    private = _Private(os.getpid(), folder, library)
    atexit.register(_remove_private, private)
    return private


def unload_library(lib: ctypes.CDLL) -> None:
    """dlclose (FreeLibrary on Windows) a library ctypes loaded: the one place ctypes internals
    are used.

    ctypes has no public unload: this takes the CDLL's private ``_handle`` to CPython's private
    ``_ctypes.dlclose`` (``_ctypes.FreeLibrary``). Without them every synthesis would reuse
    the library's globals, so their absence is an EngineError naming them.
    """
    import _ctypes

    name = "FreeLibrary" if sys.platform == "win32" else "dlclose"
    close = getattr(_ctypes, name, None)
    handle = getattr(lib, "_handle", None)
    if close is None or not isinstance(handle, int):
        missing = f"_ctypes.{name}" if close is None else "ctypes.CDLL._handle"
        raise EngineError(
            f"espeak: this Python ({sys.implementation.name} {sys.version.split()[0]}) has no "
            f"{missing}, which meditate uses to unload libespeak-ng after each sentence"
        )
    close(handle)


def _declare(lib: ctypes.CDLL) -> None:
    """Argument and result types of the functions we call."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_VoiceStruct))
    if hasattr(lib, "espeak_ng_SetRandSeed"):
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None


def _voice_in_mirror(identifier: str) -> tuple[str, str]:
    """The data folder and voice name with which a fresh instance finds ``identifier`` fast.

    ``identifier`` is a resolved voice (``gmw/en-US``, optionally ``+variant``). A voice whose
    file name is lower case already is found in the real folder. Without a mirror (no links,
    no POSIX user ids) the real folder and the identifier: slower, same samples.
    """
    real = _paths()[1]
    base, plus, variant = identifier.partition("+")
    if base == base.lower():
        return real, identifier
    mirror = _data_mirror(real)
    if mirror is None:
        return real, identifier
    return mirror, base.lower() + plus + variant


MIRROR_VERSION = "1"
"""Part of the mirror's folder name: change it when the layout of the mirror changes."""


@functools.lru_cache(maxsize=4)
def _data_mirror(real: str) -> str | None:
    """``<temp>/meditate-espeak-<uid>-<digest>``: the data of ``real`` through links, with
    every voice file also under ``voices/`` by its lower-case name.

    Made once (in a private folder, then renamed into place) and shared by every process of
    this user; a folder of that name that is not ours, not private or not complete is not
    trusted. None where links or user ids do not exist.
    """
    folder = _user_temp_path("", MIRROR_VERSION, real)
    if folder is None:
        return None
    entries = _mirror_entries(real)
    if not _trusted_mirror(folder, entries):
        try:
            _build_mirror(folder, entries)
        except OSError as error:
            log.debug(
                "espeak: no data mirror in %s (%s); voices are looked up slowly", folder, error
            )
            return None
    return folder if _trusted_mirror(folder, entries) else None


def _user_temp_path(kind: str, *identity: str) -> str | None:
    """``<temp>/meditate-espeak<kind>-<uid>-<digest of identity>``: the name this user's
    processes share for ``identity``; None where there are no POSIX user ids.
    """
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return None
    digest = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"meditate-espeak{kind}-{getuid()}-{digest}")


def _ours_and_private(status: os.stat_result) -> bool:
    """Whether a file or folder in the shared temporary folder is ours and only we can change it."""
    return status.st_uid == os.getuid() and not status.st_mode & 0o022


def _mirror_entries(real: str) -> dict[str, str]:
    """Every link of the mirror: its path inside the mirror -> its target."""
    entries = {entry.name: entry.path for entry in os.scandir(real) if entry.name != "voices"}
    variants = os.path.join(real, "voices", "!v")
    if os.path.isdir(variants):
        entries[os.path.join("voices", "!v")] = variants
    lang = os.path.join(real, "lang")
    for parent, _, files in os.walk(lang):
        for name in files:
            relative = os.path.relpath(os.path.join(parent, name), lang)
            if relative != relative.lower():
                entries[os.path.join("voices", relative.lower())] = os.path.join(parent, name)
    return entries


def _trusted_mirror(folder: str, entries: dict[str, str]) -> bool:
    """Whether ``folder`` is a complete mirror only this user can change."""
    try:
        status = os.lstat(folder)
    except OSError:
        return False
    if not stat.S_ISDIR(status.st_mode) or not _ours_and_private(status):
        return False
    return all(os.path.lexists(os.path.join(folder, path)) for path in entries)


def _build_mirror(folder: str, entries: dict[str, str]) -> None:
    """Make the mirror in a private temporary folder and rename it to ``folder``.

    An incomplete or foreign folder of that name is first renamed away (if we may) and
    removed; if another process renames its mirror into place first, ours is dropped.
    """
    parent = os.path.dirname(folder)
    if os.path.lexists(folder):
        stale = tempfile.mkdtemp(prefix="meditate-espeak-stale-", dir=parent)
        os.rename(folder, os.path.join(stale, "mirror"))
        shutil.rmtree(stale, ignore_errors=True)
    building = tempfile.mkdtemp(prefix="meditate-espeak-new-", dir=parent)
    try:
        for path, target in entries.items():
            link = os.path.join(building, path)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(target, link)
        try:
            os.rename(building, folder)
        except OSError:
            if not os.path.isdir(folder):
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)


@contextmanager
def _session(data: str | None = None) -> Iterator[tuple[ctypes.CDLL, int]]:
    """A freshly loaded and initialized private library and its sample rate, for this thread.

    ``data``: the data folder to read (default the wheel's own).
    """
    source, real = _paths()
    data = data or real
    with _borrowed_copy(source) as private:
        try:
            lib = ctypes.CDLL(private.library, mode=getattr(os, "RTLD_LOCAL", 0))
        except OSError as error:
            raise EngineError(f"espeak: cannot load {source}: {error}") from None
        try:
            _declare(lib)
            sample_rate = int(
                lib.espeak_Initialize(
                    _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data.encode(), _INITIALIZE_DONT_EXIT
                )
            )
            if sample_rate <= 0:
                raise EngineError(f"espeak: cannot initialize libespeak-ng with the data in {data}")
            try:
                lib.espeak_SetSynthCallback(_callback)
                yield lib, sample_rate
            finally:
                lib.espeak_Terminate()
        finally:
            unload_library(lib)


def _isolated(function: Callable[[ctypes.CDLL, int], T], data: str | None = None) -> T:
    """Run ``function(lib, sample_rate)`` on a fresh library instance no other thread uses."""
    with _session(data) as (lib, sample_rate):
        return function(lib, sample_rate)


def _read_languages(address: int | None) -> tuple[tuple[str, int], ...]:
    """Decode ``espeak_VOICE.languages``: (priority byte, NUL-terminated code)*, then a 0 byte."""
    found: list[tuple[str, int]] = []
    while address:
        priority = ctypes.string_at(address, 1)[0]
        if priority == 0:
            break
        code = ctypes.string_at(address + 1)
        found.append((code.decode("utf-8", "replace"), priority))
        address += len(code) + 2
    return tuple(found)


def _list_voices(lib: ctypes.CDLL) -> tuple[EspeakVoice, ...]:
    """Every voice espeak_ListVoices knows."""
    table = lib.espeak_ListVoices(None)
    voices: list[EspeakVoice] = []
    index = 0
    while table and table[index]:
        entry = table[index].contents
        voices.append(
            EspeakVoice(
                identifier=(entry.identifier or b"").decode("utf-8", "replace"),
                name=(entry.name or b"").decode("utf-8", "replace"),
                languages=_read_languages(entry.languages),
            )
        )
        index += 1
    return tuple(voices)


@dataclass(frozen=True)
class _Catalog:
    """What the installed library and data offer, read once per process."""

    library_version: str
    voices: tuple[EspeakVoice, ...]
    variants: tuple[str, ...]


@functools.lru_cache(maxsize=1)
def _catalog() -> _Catalog:
    """Library version, voices and voice variants (``+f3``).

    The voices are read from the library once per user and installation (listing them makes
    it read all 140 voice files) and kept in a file of the temporary folder.
    """
    stored = _stored_voices_file()
    found = _read_stored_voices(stored) if stored else None
    if found is None:

        def read(lib: ctypes.CDLL, sample_rate: int) -> tuple[str, tuple[EspeakVoice, ...]]:
            return (lib.espeak_Info(None) or b"?").decode("utf-8", "replace"), _list_voices(lib)

        found = _isolated(read)
        if stored:
            _store_voices(stored, *found)
    version, voices = found
    variants_dir = Path(_paths()[1]) / "voices" / "!v"
    variants = sorted(p.name for p in variants_dir.iterdir()) if variants_dir.is_dir() else []
    return _Catalog(version, voices, tuple(variants))


STORED_VOICES_VERSION = "1"
"""Part of the stored voice list's file name: change it when its content changes."""


def _stored_voices_file() -> str | None:
    """``<temp>/meditate-espeak-voices-<uid>-<digest>.json``, the digest naming the library and
    data installed (paths, sizes, modification times); None without POSIX user ids.
    """
    library, data = _paths()
    identity = [STORED_VOICES_VERSION, library, data]
    for path in (library, os.path.join(data, "lang"), os.path.join(data, "voices")):
        try:
            status = os.stat(path)
        except OSError:
            return None
        identity += [str(status.st_size), str(status.st_mtime_ns)]
    stored = _user_temp_path("-voices", *identity)
    return None if stored is None else stored + ".json"


def _read_stored_voices(path: str) -> tuple[str, tuple[EspeakVoice, ...]] | None:
    """The library version and voices stored in ``path``, if it is ours, private and valid."""
    try:
        with open(path, "rb") as handle:
            if not _ours_and_private(os.fstat(handle.fileno())):
                return None
            stored = json.loads(handle.read())
        voices = tuple(
            EspeakVoice(
                str(identifier),
                str(name),
                tuple((str(code), int(priority)) for code, priority in languages),
            )
            for identifier, name, languages in stored["voices"]
        )
        return str(stored["library_version"]), voices
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _store_voices(path: str, library_version: str, voices: tuple[EspeakVoice, ...]) -> None:
    """Keep the voice list for the next process (atomically; a failure only costs time)."""
    from pipeline.core.fileio import atomic_writer

    record = {
        "library_version": library_version,
        "voices": [[voice.identifier, voice.name, voice.languages] for voice in voices],
    }
    try:
        with atomic_writer(Path(path), durable=False, mode=0o600) as stream:
            stream.write(json.dumps(record).encode())
    except OSError as error:
        log.debug("espeak: cannot store the voice list in %s: %s", path, error)


@functools.cache
def _wheel_version() -> str:
    """The installed espeakng-loader version, from its dist-info folder's name.

    Found beside the package without importing ``importlib.metadata`` (slow to import);
    falls back to it for unusual layouts.
    """
    import espeakng_loader

    package = Path(espeakng_loader.__file__).parent
    for info in package.parent.glob("espeakng_loader-*.dist-info"):
        return info.name[len("espeakng_loader-") : -len(".dist-info")]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("espeakng-loader")
    except PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=64)
def _breathes(identifier: str) -> bool:
    """Whether a resolved voice (``gmw/en-US+Reed``) adds breath noise to its speech.

    libespeak-ng draws that noise from the C library's ``rand()``, one state shared by the
    whole process, so such a voice is only deterministic when seeded and alone.
    """
    base, _, variant = identifier.partition("+")
    data = _paths()[1]
    files = [Path(data, "lang", *base.split("/"))]
    if variant:
        files.append(Path(data, "voices", "!v", variant))
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[:1] == ["breath"] and any(
                field.isdigit() and int(field) > 0 for field in fields[1:]
            ):
                return True
    return False


@functools.cache
def _seed_c_rand() -> Callable[[int], object] | None:
    """The C library's ``srand``, or None where it cannot be reached."""
    try:
        return ctypes.CDLL(None).srand
    except (OSError, TypeError, AttributeError):
        return None


def _wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """16-bit mono PCM as a WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(_SAMPLE_BYTES)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm)
    return buffer.getvalue()


def resolve_voice(requested: str) -> str:
    """The voice identifier (plus ``+variant``) for a voice name, file name or language code.

    Accepts, case-insensitively: ``gmw/en-US``, ``en-us``, ``English (America)``, a language
    code (its preferred voice: ``en-gb`` -> ``gmw/en``), each optionally with ``+variant``.
    """
    catalog = _catalog()
    wanted = requested.strip()
    base, _, variant = wanted.partition("+")
    key = base.strip().lower()
    found = ""
    for voice in catalog.voices:
        if key in (voice.identifier.lower(), voice.short_name, voice.name.lower()):
            found = voice.identifier
            break
    if not found:
        ranked = sorted(
            (priority, index, voice.identifier)
            for index, voice in enumerate(catalog.voices)
            for code, priority in voice.languages
            if code.lower() == key
        )
        if ranked:
            found = ranked[0][2]
    if not found:
        raise EngineError(_unknown_voice_message(requested, catalog))
    if not variant:
        return found
    for known in catalog.variants:
        if known.lower() == variant.strip().lower():
            return f"{found}+{known}"
    close = difflib.get_close_matches(variant.strip(), catalog.variants, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join('+' + c for c in close)}?" if close else ""
    raise EngineError(f"espeak: unknown voice variant '+{variant}' in '{requested}'{hint}")


def _unknown_voice_message(requested: str, catalog: _Catalog) -> str:
    """Unknown voice, with the closest names and languages."""
    candidates = sorted(
        {v.short_name for v in catalog.voices}
        | {code.lower() for v in catalog.voices for code, _ in v.languages}
    )
    close = difflib.get_close_matches(requested.strip().lower(), candidates, n=6, cutoff=0.5)
    if not close:
        prefix = requested.strip().lower()[:2]
        close = [c for c in candidates if c.startswith(prefix)][:6]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (
        f"espeak: unknown voice or language '{requested}'{hint} "
        "(`meditate engines espeak` lists them all)"
    )


class EspeakEngine(Engine):
    """Offline, deterministic speech from libespeak-ng, at its native 22050 Hz."""

    name = "espeak"
    takes_phonemes = True

    def refuses(self, text: str) -> str:
        """Why the text cannot be spoken: an IPA symbol with no espeak name ('' if none)."""
        try:
            espeak_text(text)
        except ValueError as error:
            return str(error)
        return ""

    def version(self) -> str:
        """``espeak-ng 1.52.0 (espeakng-loader 0.2.4)``."""
        return f"espeak-ng {_catalog().library_version} (espeakng-loader {_wheel_version()})"

    def availability(self) -> Availability:
        """Usable when the library loads and initializes."""
        try:
            catalog = _catalog()
        except EngineError as error:
            return Availability(False, str(error))
        except OSError as error:
            return Availability(False, f"espeak: {error}")
        return Availability(True, f"espeak-ng {catalog.library_version}, offline")

    def voices(self) -> list[str]:
        """Short voice names (``en-us``, ``en-gb-x-rp``...), sorted."""
        return sorted(v.short_name for v in _catalog().voices)

    def voice_list(self) -> list[VoiceInfo]:
        """Every voice with its languages (preferred first) and descriptive name."""
        return sorted(
            (
                VoiceInfo(
                    v.short_name,
                    tuple(code.lower() for code, _ in sorted(v.languages, key=lambda c: c[1])),
                    v.name,
                )
                for v in _catalog().voices
            ),
            key=lambda voice: voice.name,
        )

    def languages(self) -> list[str]:
        """Language codes any voice speaks, lower case, sorted."""
        return sorted({code.lower() for v in _catalog().voices for code, _ in v.languages})

    def cache_settings(self, voice: VoiceSettings) -> dict[str, str]:
        """The resolved voice and native speed (the ``rate`` factor is applied by
        conditioning), and the noise seed of a voice with breath noise.
        """
        selected = self._voice_for(voice)
        settings = {"voice": selected, "wpm": str(SPEAKING_RATE_WPM)}
        if _breathes(selected):
            settings["noise_seed"] = str(NOISE_SEED)
        return settings

    def synthesize(self, text: str, voice: VoiceSettings) -> EncodedAudio:
        """Speak one prepared sentence; WAV bytes, 16-bit mono at 22050 Hz."""
        selected = self._voice_for(voice)
        try:
            spoken = espeak_text(text)
        except ValueError as error:
            raise EngineError(f"espeak: {error}") from None
        encoded = spoken.replace("\x00", " ").encode("utf-8")
        flags = _CHARS_UTF8 | (_PHONEMES if spoken != text else 0)

        def speak_as(name: str) -> Callable[[ctypes.CDLL, int], tuple[bytes, int]]:
            def speak(lib: ctypes.CDLL, sample_rate: int) -> tuple[bytes, int]:
                _local.chunks = []
                try:
                    if lib.espeak_SetVoiceByName(name.encode("utf-8")) != 0:
                        raise EngineError(f"espeak: cannot select voice '{selected}'")
                    lib.espeak_SetParameter(_RATE, SPEAKING_RATE_WPM, 0)
                    if hasattr(lib, "espeak_ng_SetRandSeed"):  # else seeded from the clock
                        lib.espeak_ng_SetRandSeed(NOISE_SEED)
                    status = lib.espeak_Synth(
                        encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, flags, None, None
                    )
                    if status != 0:
                        raise EngineError(f"espeak: synthesis failed (status {status})")
                    lib.espeak_Synchronize()
                    return b"".join(_local.chunks), sample_rate
                finally:
                    _local.chunks = []

            return speak

        def speak_once() -> tuple[bytes, int]:
            data, name = _voice_in_mirror(selected)
            try:
                return _isolated(speak_as(name), data)
            except EngineError:
                if data == _paths()[1]:
                    raise
                # the mirror went away under us (a temporary-folder cleaner?): the slow way
                _data_mirror.cache_clear()
                return _isolated(speak_as(selected), _paths()[1])

        if _breathes(selected):
            with _noise_lock:
                seed = _seed_c_rand()
                if seed is not None:
                    seed(NOISE_SEED)
                pcm, sample_rate = speak_once()
        else:
            pcm, sample_rate = speak_once()
        if not pcm:
            raise EngineError(f"espeak: no audio for {_quote(text)} with voice '{selected}'")
        return EncodedAudio(data=_wav_bytes(pcm, sample_rate), format="wav")

    def _voice_for(self, voice: VoiceSettings) -> str:
        """The requested voice: its name if set, else its language."""
        requested = voice.name or voice.language
        if not requested.strip():
            raise EngineError("espeak: no voice name or language given")
        return resolve_voice(requested)


def _quote(text: str, limit: int = 60) -> str:
    """A sentence for an error message, shortened."""
    short = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(short)
