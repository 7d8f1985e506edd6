"""Speech cache look-ups: 10,000 ``length_s``, ``get`` and ``verify`` of small entries, and
``get`` of sentence-sized ones.

``length_s`` reads and checks the header only, ``verify`` checksums the stored bytes: each
10,000 well under 1 s. ``get`` decodes FLAC (about 0.3 ms for a small clip, 1,000x real time
for sentences on an idle machine): its target is its real-time factor on sentences, at least
500x, so that decoding the speech stays a small part of a render (which runs near 50x).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipeline.speech.cache import SpeechCache

SAMPLE_RATE = 44100
ENTRIES = 2000
LOOKUPS = 10_000
SMALL_CLIP_S = 0.1
SENTENCE_CLIP_S = 3.0
SENTENCE_GETS = 500
MIN_REAL_TIME = 500.0


def _fill(cache: SpeechCache, prefix: str, count: int, clip_s: float) -> tuple[list[str], float]:
    """Store ``count`` clips; their keys and the seconds per put."""
    keys = [hashlib.sha256(f"{prefix}{i}".encode()).hexdigest() for i in range(count)]
    clip = (0.3 * np.sin(np.arange(int(clip_s * SAMPLE_RATE)) / 10)).astype(np.float32)
    started = time.perf_counter()
    for key in keys:
        cache.put(key, clip, SAMPLE_RATE)
    return keys, (time.perf_counter() - started) / count


def _time(call: Callable[[str], object], keys: list[str]) -> float:
    started = time.perf_counter()
    for key in keys:
        call(key)
    return time.perf_counter() - started


def main() -> None:
    """Fill a fresh cache, then time look-ups of small entries and gets of sentence-sized ones."""
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as folder:
        cache = SpeechCache(Path(folder))
        keys, put_s = _fill(cache, "small", ENTRIES, SMALL_CLIP_S)
        wanted = [keys[i % ENTRIES] for i in range(LOOKUPS)]
        missing = [hashlib.sha256(f"miss{i}".encode()).hexdigest() for i in range(LOOKUPS)]
        print(f"{ENTRIES} entries of {SMALL_CLIP_S} s at {SAMPLE_RATE} Hz, mono, stored as FLAC")
        print(f"  put                       {put_s * 1e3:7.3f} ms per entry")
        for label, call, batch, target_s in (
            ("length_s (hits)", cache.length_s, wanted, 1.0),
            ("length_s (misses)", cache.length_s, missing, 1.0),
            ("get (hits)", cache.get, wanted, None),
            ("verify (hits)", cache.verify, wanted, 1.0),
        ):
            seconds = _time(call, batch)
            if target_s is None:
                print(f"  {LOOKUPS} x {label:18s} {seconds:7.3f} s  (decodes each clip)")
            else:
                verdict = "ok" if seconds < target_s else "SLOW"
                print(f"  {LOOKUPS} x {label:18s} {seconds:7.3f} s  (target < 1 s: {verdict})")

        big, _ = _fill(cache, "sentence", SENTENCE_GETS, SENTENCE_CLIP_S)
        seconds = _time(cache.get, big)
        audio_s = SENTENCE_GETS * SENTENCE_CLIP_S
        verdict = "ok" if audio_s / seconds >= MIN_REAL_TIME else "SLOW"
        print(
            f"{SENTENCE_GETS} x get of {SENTENCE_CLIP_S} s clips: {seconds:.3f} s "
            f"({seconds / SENTENCE_GETS * 1e3:.2f} ms each, {audio_s / seconds:,.0f}x real time; "
            f"target >= {MIN_REAL_TIME:,.0f}x: {verdict})"
        )


if __name__ == "__main__":
    main()
