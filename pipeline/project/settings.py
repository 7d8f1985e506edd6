"""Resolved settings: every value decided, after config precedence is applied.

Their defaults are the declarations' (:mod:`pipeline.script.declared`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.script.declared import default
from pipeline.script.model import Voice


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
class RetrySettings:
    """Throttling and retries for online engines."""

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
    retry: RetrySettings = field(default_factory=RetrySettings)
    """Online engine throttling and retries."""
