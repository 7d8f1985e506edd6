"""Content-addressed cache of conditioned speech clips, safe to share between processes.

One file per key, ``<root>/<key[:2]>/<key>.clip``: a 32-byte header (magic, format version,
channels, sample rate, frame count, payload size, CRC-32 of the payload, CRC-32 of the key and
the header's other fields) and then the payload: the mono 16-bit samples as a FLAC stream
(lossless, a third of their raw size for speech). The header gives a clip's length without
reading the payload, and its own CRC means no field of it is trusted unchecked (a sample rate
changed on disk would move every later cue); the payload's CRC catches a corrupt clip, and the
decoded stream must agree with the header. A corrupt entry is deleted with a warning and
treated as a miss; one of another format version is a quiet miss, replaced when synthesized
again. Entries of formats 1 and 2 (raw PCM, ``.s16``) are not read: they are synthesized
again, and ``prune`` deletes them. Entries are written to a temporary file in the same folder
and renamed into place, so a reader never sees a partial entry. They are not fsynced: one that
a power cut leaves incomplete fails its size or checksum test and is synthesized again.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pipeline.core.fileio import atomic_writer

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


log = logging.getLogger(__name__)

SUFFIX = ".clip"
OLD_SUFFIXES = (".s16",)
"""Entries of older formats: never read, deleted by prune."""
STATS_FILE = "stats.json"
HEADER = struct.Struct("<4sHHIQIII")
"""magic, format version, channels, sample rate, frames, payload bytes, payload CRC, header CRC."""
MAGIC = b"MSPC"
FORMAT_VERSION = 3
"""3: FLAC payload. 2: raw PCM under a header CRC. 1: raw PCM, header fields unchecked."""
PCM_SCALE = 32768.0
STALE_TEMP_S = 3600.0
"""Temporary files older than this are left over by killed processes; prune removes them."""
OTHER_FORMAT = "another format version"
"""The problem of an entry written by another version of the format: a miss, not a corruption."""
_KEY_PATTERN = re.compile(r"[0-9a-f]{64}")
_T = TypeVar("_T")




@dataclass(frozen=True)
class CacheStats:
    """Look-ups of one run, each key counted once: a hit if found at its first look-up."""

    hits: int
    """Distinct keys found in the cache."""
    misses: int
    """Distinct keys absent (or corrupt) at their first look-up."""


@dataclass(frozen=True)
class CacheInfo:
    """What ``meditate cache info`` shows."""

    root: Path
    """The cache folder."""
    entries: int
    """Number of clips."""
    bytes: int
    """Total size of the clips."""
    last_run: CacheStats | None
    """Hits and misses of the last run that recorded them, if any."""
    last_run_at: str
    """When that run ended (ISO 8601, UTC), or ''."""
    old_entries: int = 0
    """Entries of older formats (never read; prune deletes them)."""
    old_bytes: int = 0
    """Their size."""


class SpeechCache:
    """Conditioned mono clips by key; every method is safe with other processes on the same root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root = str(self.root)
        self._first_lookup: dict[str, bool] = {}

    def path(self, key: str) -> Path:
        """The file of an entry (whether or not it exists)."""
        return Path(self._file(key))

    def _file(self, key: str) -> str:
        """Like :meth:`path`, as a string: pathlib costs a third of a look-up."""
        if not _KEY_PATTERN.fullmatch(key):
            raise ValueError(f"not a speech cache key: {key!r}")
        return os.path.join(self._root, key[:2], key + SUFFIX)

    def get(self, key: str) -> npt.NDArray[np.float32] | None:
        """The clip as float32 mono samples in [-1, 1), or None if absent or corrupt."""
        import numpy as np

        path = self._file(key)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return self._count(key, None)
        except OSError as error:
            log.warning("speech cache: cannot read %s: %s", path, error)
            return self._count(key, None)
        problem = _check(data, key, full=True)
        if not problem:
            pcm, problem = _decode(data)
        if problem:
            self._discard(path, problem)
            return self._count(key, None)
        samples: npt.NDArray[np.float32] = np.multiply(
            pcm, np.float32(1.0 / PCM_SCALE), dtype=np.float32
        )
        return self._count(key, samples)

    def length_s(self, key: str) -> float | None:
        """The clip's length from its header (samples are not read), or None if absent."""
        path = self._file(key)
        try:
            with open(path, "rb") as handle:
                header = handle.read(HEADER.size)
                size = os.fstat(handle.fileno()).st_size
        except FileNotFoundError:
            return self._count(key, None)
        except OSError as error:
            log.warning("speech cache: cannot read %s: %s", path, error)
            return self._count(key, None)
        problem = _check(header, key, full=False, file_size=size)
        if problem:
            self._discard(path, problem)
            return self._count(key, None)
        _, _, _, sample_rate, frames, _, _, _ = HEADER.unpack(header)
        return self._count(key, float(frames) / float(sample_rate))

    def verify(self, key: str) -> bool:
        """Whether a complete entry with a matching checksum exists (a corrupt one is deleted)."""
        path = self._file(key)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            return self._count(key, False)
        problem = _check(data, key, full=True)
        if problem:
            self._discard(path, problem)
            return self._count(key, False)
        return self._count(key, True)

    def put(self, key: str, samples: npt.ArrayLike, sample_rate: int) -> None:
        """Store a mono clip (float samples, 16-bit FLAC in the file), atomically."""
        import numpy as np
        import soundfile

        mono = np.asarray(samples, dtype=np.float32)
        if mono.ndim != 1:
            raise ValueError(f"speech cache stores mono clips, got shape {mono.shape}")
        if sample_rate <= 0:
            raise ValueError(f"bad sample rate {sample_rate}")
        scaled = mono * np.float32(PCM_SCALE)
        np.nan_to_num(scaled, copy=False)
        np.rint(scaled, out=scaled)
        pcm = np.clip(scaled, -32768, 32767, out=scaled).astype(np.int16)
        encoded = io.BytesIO()
        if len(pcm):  # libsndfile cannot read back the FLAC stream of no samples
            soundfile.write(encoded, pcm, sample_rate, format="FLAC", subtype="PCM_16")
        payload = encoded.getvalue()
        crc = zlib.crc32(payload)
        fields = (MAGIC, FORMAT_VERSION, 1, sample_rate, len(pcm), len(payload), crc)
        unchecked = HEADER.pack(*fields, 0)
        header = HEADER.pack(*fields, _header_crc(key, unchecked))
        with atomic_writer(self.path(key), durable=False) as stream:
            stream.write(header)
            stream.write(payload)

    def __contains__(self, key: object) -> bool:
        """Whether an entry file exists (not verified, not counted)."""
        return isinstance(key, str) and self.path(key).is_file()

    def stats(self) -> CacheStats:
        """Hits and misses of this run so far."""
        hits = sum(self._first_lookup.values())
        return CacheStats(hits, len(self._first_lookup) - hits)

    def record_run(self, stats: CacheStats | None = None) -> None:
        """Persist this run's stats (or the given ones, e.g. summed over workers) for ``info``."""
        stats = stats or self.stats()
        record = {
            "last_run": {"hits": stats.hits, "misses": stats.misses},
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with atomic_writer(self.root / STATS_FILE, durable=False) as stream:
            stream.write(json.dumps(record, indent=2).encode("utf-8") + b"\n")

    def keys(self) -> Iterator[str]:
        """Keys of every entry present."""
        for key, _, _, old in self._entries():
            if not old:
                yield key

    def info(self) -> CacheInfo:
        """Entries, size, and the last recorded run's hits and misses."""
        entries = total = old_entries = old_bytes = 0
        for _, _, size, old in self._entries():
            if old:
                old_entries += 1
                old_bytes += size
            else:
                entries += 1
                total += size
        last_run, finished_at = None, ""
        try:
            record = json.loads((self.root / STATS_FILE).read_text(encoding="utf-8"))
            last_run = CacheStats(
                int(record["last_run"]["hits"]), int(record["last_run"]["misses"])
            )
            finished_at = str(record.get("finished_at", ""))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("speech cache: unreadable %s: %s", self.root / STATS_FILE, error)
        return CacheInfo(self.root, entries, total, last_run, finished_at, old_entries, old_bytes)

    def prune(self, keep: set[str], *, dry_run: bool = False) -> tuple[int, int, int, int]:
        """Delete every entry whose key is not in ``keep``, those of older formats, and stale
        temporary files.

        (entries kept, their bytes, entries removed, their bytes and the temporaries'); with
        ``dry_run``, what would be removed, and nothing is.
        """
        kept = kept_bytes = removed = removed_bytes = 0
        for key, path, size, old in self._entries():
            if key in keep and not old:
                kept += 1
                kept_bytes += size
            elif dry_run or _unlink(path):
                removed += 1
                removed_bytes += size
        now = time.time()
        for folder in self._folders():
            for temp in folder.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    status = temp.stat()
                    if now - status.st_mtime > STALE_TEMP_S and (dry_run or _unlink(temp)):
                        removed_bytes += status.st_size
        return kept, kept_bytes, removed, removed_bytes

    def _folders(self) -> Iterator[Path]:
        try:
            children = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for child in children:
            if len(child.name) == 2 and child.is_dir():
                yield Path(child.path)

    def _entries(self) -> Iterator[tuple[str, Path, int, bool]]:
        """(key, file, size, whether of an older format) of every entry."""
        for folder in self._folders():
            with os.scandir(folder) as found:
                for entry in found:
                    key, suffix = os.path.splitext(entry.name)
                    if (suffix == SUFFIX or suffix in OLD_SUFFIXES) and _KEY_PATTERN.fullmatch(key):
                        with contextlib.suppress(FileNotFoundError):
                            yield key, Path(entry.path), entry.stat().st_size, suffix != SUFFIX

    def _count(self, key: str, result: _T) -> _T:
        self._first_lookup.setdefault(key, result is not None and result is not False)
        return result

    def _discard(self, path: str, problem: str) -> None:
        if problem == OTHER_FORMAT:  # put() replaces it; never a warning after an upgrade
            log.debug("speech cache: %s is in another format version; a miss", path)
            return
        log.warning(
            "speech cache: %s is corrupt (%s); deleted, it will be synthesized again", path, problem
        )
        _unlink(Path(path))


def _header_crc(key: str, header: bytes) -> int:
    """CRC-32 of the key and every header field but the CRC itself (an entry under another
    key's name is caught too)."""
    return zlib.crc32(memoryview(header)[: HEADER.size - 4], zlib.crc32(key.encode("ascii")))


def _as_ours(data: bytes) -> bytes:
    """An entry's header with the version field set to ours (telling a corrupted version field
    from an entry of another format version)."""
    header = bytearray(data[: HEADER.size])
    struct.pack_into("<H", header, 4, FORMAT_VERSION)
    return bytes(header)


def _check(data: bytes, key: str, *, full: bool, file_size: int | None = None) -> str:
    """What is wrong with an entry's bytes (its header only unless ``full``), or ''."""
    if len(data) < HEADER.size:
        return "shorter than its header"
    magic, version, channels, sample_rate, _, payload_size, crc, header_crc = HEADER.unpack_from(
        data
    )
    if magic != MAGIC:
        return "not a speech cache entry"
    if header_crc != _header_crc(key, data):
        if version != FORMAT_VERSION and header_crc != _header_crc(key, _as_ours(data)):
            return OTHER_FORMAT
        return "header checksum mismatch"
    if channels != 1 or sample_rate <= 0:
        return f"{channels} channel(s) at {sample_rate} Hz, not a mono clip"
    expected = HEADER.size + payload_size
    actual = len(data) if full else file_size
    if actual != expected:
        return f"{actual} bytes instead of {expected}"
    if full and zlib.crc32(memoryview(data)[HEADER.size :]) != crc:
        return "checksum mismatch"
    return ""


def _decode(data: bytes) -> tuple[npt.NDArray[np.int16], str]:
    """The samples of an entry whose header and checksums are right, and '' (or what is wrong:
    the decoded stream must agree with the header)."""
    import numpy as np
    import soundfile

    _, _, channels, sample_rate, frames, payload_size, _, _ = HEADER.unpack_from(data)
    if frames == payload_size == 0:
        return np.zeros(0, np.int16), ""
    try:
        with soundfile.SoundFile(io.BytesIO(memoryview(data)[HEADER.size :])) as stream:
            found = (stream.format, stream.subtype, stream.channels, stream.samplerate)
            pcm = stream.read(frames + 1, dtype="int16")
    except (RuntimeError, ValueError) as error:  # soundfile's errors are RuntimeErrors
        return np.zeros(0, np.int16), f"undecodable payload: {error}"
    if found != ("FLAC", "PCM_16", channels, sample_rate) or len(pcm) != frames:
        return pcm, f"payload {found} of {len(pcm)} frames disagrees with its header"
    return pcm, ""


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as error:
        log.warning("speech cache: cannot delete %s: %s", path, error)
        return False
    return True
