"""The ``recorded`` engine: human recordings instead of synthesis.

Planning gives each sentence its take (:mod:`pipeline.speech.takes`): a whole file or a span
of a step's long take. This engine only reads it; conditioning trims, levels and resamples
it like any clip. The take's bytes (SHA-256) and span are its cache settings, so recording a
sentence again renders that sentence again, and nothing else.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path

from pipeline.core.errors import EngineError
from pipeline.engines.base import Availability, EncodedAudio, Engine
from pipeline.project.settings import VoiceSettings

FORMATS = {".wav": "wav", ".flac": "flac", ".ogg": "ogg", ".oga": "ogg", ".opus": "ogg",
           ".mp3": "mp3", ".aif": "aiff", ".aiff": "aiff"}  # fmt: skip
"""ffmpeg demuxer of each take file type."""


class RecordedEngine(Engine):
    """Reads the take planning chose; speaks nothing itself. Takes keep their own tempo and
    pitch (planning gives their voices rate 1 and pitch 0), and ignore the lexicon."""

    name = "recorded"
    applies_rate = True
    takes_phonemes = True  # the text is not spoken: a lexicon's phonemes are no reason to refuse

    def version(self) -> str:
        return "1"

    def availability(self) -> Availability:
        return Availability(True, "human recordings from a takes folder (voice.takes)")

    def voices(self) -> list[str]:
        return []

    def languages(self) -> list[str]:
        return []

    def own_voice(self, voice: VoiceSettings) -> VoiceSettings:
        """A recording is played at its own tempo and pitch."""
        return replace(voice, rate=1.0, pitch=0.0)

    def conditioning_rate(self, voice: VoiceSettings) -> float:
        return 1.0

    def cache_settings(self, voice: VoiceSettings) -> dict[str, str]:
        """The take's content and span; never where it lies."""
        if voice.takes is None:
            raise EngineError("engine 'recorded' needs a folder of takes: 'takes: FOLDER'")
        take = voice.take
        if take is None:
            return {}
        span = "whole" if take.start_s is None else f"{take.start_s:.4f}-{take.end_s:.4f}"
        return {"take": take.sha256, "span": span}

    def synthesize(self, text: str, voice: VoiceSettings) -> EncodedAudio:
        take = voice.take
        if take is None:
            raise EngineError(f"no take for this sentence in {voice.takes}")
        path = Path(take.file)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise EngineError(f"take {path}: {error.strerror or error}") from None
        if hashlib.sha256(data).hexdigest() != take.sha256:  # its key holds the planned bytes
            raise EngineError(f"take {path} changed while rendering; render again")
        if take.start_s is None:
            return EncodedAudio(data, FORMATS.get(path.suffix.lower(), ""))
        return EncodedAudio(_span_wav(data, path, take.start_s, take.end_s or 0.0), "wav")


def _span_wav(data: bytes, path: Path, start_s: float, end_s: float) -> bytes:
    """``start_s`` to ``end_s`` of a long take's bytes as float WAV bytes."""
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as source:
            rate = source.samplerate
            source.seek(round(start_s * rate))
            frames = source.read(round((end_s - start_s) * rate), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile's errors
        raise EngineError(f"take {path}: cannot read it: {error}") from None
    buffer = io.BytesIO()
    soundfile.write(buffer, frames, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()
