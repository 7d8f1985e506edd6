"""Transcripts of speech clips, cached by clip key and recogniser identity.

One JSON file per clip, ``<cache>/transcripts/<recogniser digest>/<key[:2]>/<key>.json``,
beside the speech cache. An entry names its clip, the digest of the clip's samples and its
recogniser, so a file under the wrong name, from another recogniser or of a clip whose audio
has changed since (synthesized again, or replaced) is never believed; an unreadable or corrupt
one is ignored (and replaced when the clip is transcribed again). Entries are written
atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.fileio import atomic_writer
from pipeline.qa.asr import Transcript, Word

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

FOLDER = "transcripts"
"""The folder of transcripts inside the project's cache folder."""
FORMAT = 1
"""Bump when an entry's layout changes."""
_KEY = re.compile(r"[0-9a-f]{64}")


def audio_digest(samples: npt.NDArray[np.float32]) -> str:
    """A short digest of a clip's samples: a transcript holds for this very audio only."""
    import numpy as np

    data = np.ascontiguousarray(samples, dtype=np.float32)
    return hashlib.sha256(data.data).hexdigest()[:32]


class TranscriptCache:
    """What one recogniser heard in each clip, by the clip's speech-cache key."""

    def __init__(self, cache_dir: Path, recognizer: str) -> None:
        self.recognizer = recognizer
        """The recogniser's identity (backend, versions, model hash, options)."""
        digest = hashlib.sha256(recognizer.encode("utf-8")).hexdigest()[:16]
        self.root = Path(cache_dir) / FOLDER / digest
        """This recogniser's folder."""

    def path(self, clip: str) -> Path:
        """The file of a clip's transcript (whether or not it exists)."""
        if not _KEY.fullmatch(clip):
            raise ValueError(f"not a speech cache key: {clip!r}")
        return self.root / clip[:2] / f"{clip}.json"

    def __contains__(self, clip: object) -> bool:
        """Whether a clip has an entry (not read, not verified: for progress estimates)."""
        return (
            isinstance(clip, str) and _KEY.fullmatch(clip) is not None and self.path(clip).is_file()
        )

    def get(self, clip: str, audio: str) -> Transcript | None:
        """The cached transcript of a clip whose samples have the digest ``audio`` (see
        :func:`audio_digest`), or None (absent, of other audio, unreadable or corrupt)."""
        path = self.path(clip)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError) as error:
            log.warning("transcript cache: %s is unreadable (%s); transcribed again", path, error)
            return None
        try:
            if (
                data["format"] != FORMAT
                or data["clip"] != clip
                or data["recognizer"] != self.recognizer
            ):
                raise ValueError("it belongs to another clip or recogniser")
            if data["audio"] != audio:
                log.debug("transcript cache: %s was heard in other audio", path)
                return None
            words = tuple(
                Word(str(text), float(start), float(end), float(probability))
                for text, start, end, probability in data["words"]
            )
            text = data["text"]
            if not isinstance(text, str):
                raise TypeError(f"text is {type(text).__name__}")
        except (KeyError, TypeError, ValueError) as error:
            log.warning("transcript cache: %s is corrupt (%s); transcribed again", path, error)
            return None
        return Transcript(text, words)

    def put(self, clip: str, audio: str, transcript: Transcript) -> None:
        """Store a clip's transcript atomically; a failure to write is logged, never raised."""
        entry = {
            "format": FORMAT,
            "clip": clip,
            "audio": audio,
            "recognizer": self.recognizer,
            "text": transcript.text,
            "words": [
                [
                    word.text,
                    round(word.start_s, 3),
                    round(word.end_s, 3),
                    round(word.probability, 3),
                ]
                for word in transcript.words
            ],
        }
        path = self.path(clip)
        try:
            with atomic_writer(path, durable=False) as stream:
                stream.write(json.dumps(entry, ensure_ascii=False).encode("utf-8"))
        except OSError as error:
            log.warning("transcript cache: cannot write %s: %s", path, error.strerror or error)


def prune_transcripts(cache_dir: Path, keep: set[str], *, dry_run: bool = False) -> tuple[int, int]:
    """Delete the transcripts (of every recogniser) of clips not in ``keep``: (entries, bytes)
    removed, or that would be with ``dry_run``."""
    removed = removed_bytes = 0
    for path in sorted((Path(cache_dir) / FOLDER).glob("*/??/*.json")):
        if path.stem in keep:
            continue
        try:
            size = path.stat().st_size
            if not dry_run:
                path.unlink()
        except OSError as error:
            log.warning("transcript cache: cannot delete %s: %s", path, error.strerror or error)
            continue
        removed += 1
        removed_bytes += size
    return removed, removed_bytes
