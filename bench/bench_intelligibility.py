"""Intelligibility by proxy: Whisper tiny.en's word recall on the clonazepam article, spoken by
each voice named, side by side in one run (issue 13: at least 0.92 for a packaged Kokoro voice).

    python bench/bench_intelligibility.py [--voice espeak] [--voice kokoro:jf_alpha] ...

Each voice's clips are synthesized into an empty cache (its time is printed, with the audio's
length), then transcribed packed into 30 s windows. Needs the ``neural`` and ``qa`` extras.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_asr import ARTICLE, heard, script_clips

from pipeline.qa.asr import WhisperTranscriber
from pipeline.speech.cache import SpeechCache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", action="append", help="ENGINE[:NAME]; repeat (default: "
                        "espeak and kokoro:jf_alpha)")  # fmt: skip
    options = parser.parse_args()
    voices = options.voice or ["espeak", "kokoro:jf_alpha"]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    transcriber = WhisperTranscriber()
    for spec in voices:
        engine, _, name = spec.partition(":")
        flags: dict[str, object] = {"voice.engine": engine, "voice.name": name or None}
        with tempfile.TemporaryDirectory(prefix="bench-intelligibility-") as folder:
            start = time.perf_counter()
            clips = script_clips(ARTICLE, SpeechCache(Path(folder)), flags)
            synthesis_s = time.perf_counter() - start
        _, recall, flagged, wall_s = heard(transcriber, clips)
        print(
            f"{spec:<20} word recall {recall:.3f}; {flagged} of {len(clips.texts)} sentences "
            f"above 0.15 WER; {clips.audio_s:.0f} s of speech synthesized in {synthesis_s:.0f} s "
            f"({clips.audio_s / synthesis_s:.2f}x real time), transcribed in {wall_s:.0f} s"
        )


if __name__ == "__main__":
    main()
