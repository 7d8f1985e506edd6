"""Resolved settings: every value decided, after config precedence is applied.

Their defaults are the declarations' (:mod:`pipeline.script.declared`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.script.declared import default
from pipeline.script.model import Voice

RECORDED = "recorded"
"""The engine name of recorded human takes."""


@dataclass(frozen=True)
class Take:
    """The recording of one sentence: a whole file, or a span of a step's long take."""

    file: str
    """Absolute path of the take file."""
    sha256: str
    """SHA-256 of the file's bytes: the take enters cache keys by content."""
    start_s: float | None = None
    """Start of the sentence in a long take; None: the whole file."""
    end_s: float | None = None
    """End of the sentence in a long take."""


@dataclass(frozen=True)
class VoiceSettings:
    """A complete voice, ready for an engine."""

    engine: str = default("voice.engine")
    """Registered engine name."""
    name: str = default("voice.name")
    """Engine-specific voice name; empty means the engine's default for the language."""
    language: str = default("language")
    """Language code."""
    tld: str = default("voice.tld")
    """gTTS accent domain."""
    rate: float = default("voice.rate")
    """Tempo factor, pitch kept (by the engine if it applies it, else after synthesis)."""
    pitch: float = default("voice.pitch")
    """Pitch shift in semitones applied after synthesis, length kept."""
    takes: str | None = default("voice.takes")
    """Folder of recorded takes (absolute); with engine ``recorded``, or on a fallback voice."""
    fallback: str | None = default("voice.fallback")
    """Engine speaking the sentences that have no take; None: a missing take is an error."""
    take: Take | None = None
    """The take of this sentence, chosen by planning (engine ``recorded`` only)."""

    @property
    def fills_in(self) -> bool:
        """True for the fallback engine speaking a sentence that has no take."""
        return self.takes is not None and self.engine != RECORDED

    def as_dict(self) -> dict[str, Any]:
        """Its fields, those of recorded takes only when set (so other voices read as before)."""
        fields = asdict(self)
        for name in ("takes", "fallback", "take"):
            if fields[name] is None:
                del fields[name]
        return fields


@dataclass(frozen=True)
class BackgroundSettings:
    """A complete bed description."""

    asset: str
    """Catalog name or a path relative to the script."""
    gain_db: float = default("background.gain")
    """Level relative to the asset's catalog level."""
    fade_in_s: float = default("background.fade_in")
    """Fade-in length."""
    fade_out_s: float = default("background.fade_out")
    """Fade-out length, ending at the end of the track."""
    duck_db: float = default("background.duck")
    """Extra attenuation under speech; 0 is off."""


@dataclass(frozen=True)
class EngineSettings:
    """What every engine is given: throttling and retries for online engines, and where a
    neural engine's files are."""

    tries: int = default("gtts.tries")
    """Attempts per sentence, the first included."""
    backoff_min_s: float = default("gtts.backoff_min")
    """First back-off delay; doubles each retry, with jitter."""
    backoff_max_s: float = default("gtts.backoff_max")
    """Upper bound of one back-off delay."""
    timeout_s: float = default("gtts.timeout")
    """Timeout of one request."""
    concurrency: int = default("gtts.concurrency")
    """Requests in flight at once."""
    min_interval_s: float = default("gtts.min_interval")
    """Minimum time between the starts of two requests."""
    endpoint: str = default("gtts.endpoint")
    """Base URL instead of ``https://translate.google.{tld}`` (tests, proxies); empty: Google."""
    kokoro_model: Path | None = None
    """The Kokoro graph named by the project (else the engine looks it up)."""
    kokoro_voices: Path | None = None
    """The Kokoro voices file named by the project (else the engine looks it up)."""


@dataclass(frozen=True)
class QaSettings:
    """What ``meditate listen`` flags, and the speech recognition model it uses."""

    warn_wer: float = default("qa.warn_wer")
    """Warn on a sentence whose word error rate is above this."""
    fail_wer: float = default("qa.fail_wer")
    """Fail a sentence whose word error rate is above this."""
    warn_missing_content: bool = default("qa.missing_content")
    """Warn when a content word is not heard."""
    min_chars_per_s: float = default("qa.min_chars_per_s")
    """Warn on a clip slower than this many characters per second."""
    max_chars_per_s: float = default("qa.max_chars_per_s")
    """Warn on a clip faster than this many characters per second."""
    warn_rate_ratio: float = default("qa.warn_rate_ratio")
    """Warn on a clip this many times faster or slower than its track's median."""
    fail_rate_ratio: float = default("qa.fail_rate_ratio")
    """Fail a clip this many times faster or slower than its track's median."""
    model: Path | None = None
    """A CTranslate2 Whisper model folder; None: the installed one."""

    def contradiction(self) -> tuple[tuple[str, str], str] | None:
        """Two thresholds that contradict each other (the stricter one first) and why; None
        when they agree."""
        if not 0 <= self.warn_wer <= self.fail_wer:
            return ("fail_wer", "warn_wer"), (
                f"WER thresholds must satisfy 0 <= warn ({self.warn_wer}) <= fail ({self.fail_wer})"
            )
        if not 0 < self.min_chars_per_s < self.max_chars_per_s:
            return ("max_chars_per_s", "min_chars_per_s"), (
                "characters per second: need 0 < minimum "
                f"({self.min_chars_per_s}) < maximum ({self.max_chars_per_s})"
            )
        if not 1 < self.warn_rate_ratio <= self.fail_rate_ratio:
            return ("fail_rate_ratio", "warn_rate_ratio"), (
                f"rate ratios must satisfy 1 < warn ({self.warn_rate_ratio}) "
                f"<= fail ({self.fail_rate_ratio})"
            )
        return None


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a run, resolved from flags, environment, script, config, defaults."""

    root: Path = Path(".")
    """Project root: the folder of ``meditate.yaml``, else the current directory."""
    config_path: Path | None = None
    """The config file used, if any."""
    scripts_dir: Path = Path(default("scripts"))
    """What ``build`` and ``check`` read by default (relative to root)."""
    output_dir: Path = Path(default("output"))
    """Where tracks and sidecars go (relative to root)."""
    cache_dir: Path = Path(default("cache"))
    """Speech cache (relative to root)."""
    assets_dir: Path = Path(default("assets"))
    """The project's own assets folder (relative to root); may not exist."""
    language: str = default("language")
    """Default language."""
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    """The script's voice: script over project defaults (before per-step overrides)."""
    forced_voice: Voice = field(default_factory=Voice)
    """Voice fields set by a CLI flag or ``MEDITATE_*`` variable; they win even over steps."""
    background: BackgroundSettings | None = None
    """Default bed, or none."""
    sentence_pause_s: float = default("pauses.sentence")
    """Default gap between sentences."""
    paragraph_pause_s: float = default("pauses.paragraph")
    """Default gap between paragraphs and spoken steps."""
    lead_in_s: float = default("pauses.lead_in")
    """Silence before the first step (some players clip a track's first moments)."""
    tail_s: float = default("pauses.tail")
    """Silence after the last step; a sound still ringing then rings out first."""
    target_lufs: float = default("master.loudness")
    """Integrated loudness target."""
    true_peak_dbtp: float = default("master.true_peak")
    """True-peak ceiling."""
    formats: tuple[str, ...] = default("formats")
    """Encoded formats."""
    bitrate: str = default("bitrate")
    """Bitrate of lossy formats."""
    sample_rate: int = default("sample_rate")
    """Output sample rate."""
    channels: int = default("channels")
    """Output channels."""
    lexicon: tuple[tuple[str, str], ...] = default("lexicon")
    """Whole-word respellings applied before synthesis."""
    words_per_minute: float = default("words_per_minute")
    """Speaking speed used to estimate speech lengths before synthesis."""
    retry: EngineSettings = field(default_factory=EngineSettings)
    """Online engine throttling and retries."""
    qa: QaSettings = field(default_factory=QaSettings)
    """What ``meditate listen`` flags (it never changes the audio)."""
