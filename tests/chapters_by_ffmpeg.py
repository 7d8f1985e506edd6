"""Chapters as ffmpeg itself lists them, to check what the encoder wrote."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.core.ffmpeg import run_ffmpeg


def read_chapters(path: Path) -> list[tuple[str, float]]:
    """Chapters as ffmpeg reads them: (title, start_s) in the order ffmpeg lists them."""
    metadata = run_ffmpeg(["-i", str(path), "-f", "ffmetadata", "-"])
    chapters: list[tuple[str, float]] = []
    for section in metadata.decode("utf-8", "replace").split("[CHAPTER]")[1:]:
        fields: dict[str, str] = {}
        for line in re.split(r"(?<!\\)\n", section.split("\n[", 1)[0]):
            key, sep, value = line.partition("=")
            if sep:
                fields[key.strip()] = re.sub(r"\\(.)", r"\1", value, flags=re.DOTALL)
        numerator, _, denominator = fields.get("TIMEBASE", "1/1000").partition("/")
        start = int(fields.get("START", "0")) * int(numerator) / int(denominator or 1)
        chapters.append((fields.get("title", ""), start))
    return chapters
