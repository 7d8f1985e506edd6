"""Quality checks of spoken audio: transcription (ASR) and comparison with the script.

``asr`` recognises speech (faster-whisper, optional extra ``[qa]``, imported lazily);
``compare`` normalises and aligns words; ``check`` gives each sentence its verdict.
"""

from __future__ import annotations

from pipeline.qa.asr import AsrUnavailable, Transcriber, Transcript, load_transcriber
from pipeline.qa.check import SentenceCheck, check_sentences
from pipeline.qa.compare import word_recall

__all__ = [
    "AsrUnavailable",
    "SentenceCheck",
    "Transcriber",
    "Transcript",
    "check_sentences",
    "load_transcriber",
    "word_recall",
]
