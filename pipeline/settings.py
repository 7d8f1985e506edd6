"""Resolved settings: every value decided, after config precedence is applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.script.model import Voice


@dataclass(frozen=True)
class VoiceSettings:
    """A complete voice, ready for an engine."""

    engine: str = "espeak"
    """Registered engine name."""
    name: str = ""
    """Engine-specific voice name; empty means the engine's default for the language."""
    language: str = "en"
    """Language code."""
    tld: str = "com"
    """gTTS accent domain."""
    rate: float = 1.0
    """Tempo factor applied after synthesis, pitch kept."""


@dataclass(frozen=True)
class BackgroundSettings:
    """A complete bed description."""

    asset: str
    """Catalog name or a path relative to the script."""
    gain_db: float = -18.0
    """Level relative to the asset's catalog level."""
    fade_in_s: float = 5.0
    """Fade-in length."""
    fade_out_s: float = 10.0
    """Fade-out length, ending at the end of the track."""
    duck_db: float = 10.0
    """Extra attenuation under speech; 0 is off."""


@dataclass(frozen=True)
class RetrySettings:
    """Throttling and retries for online engines."""

    tries: int = 5
    """Attempts per sentence, the first included."""
    backoff_min_s: float = 2.0
    """First back-off delay; doubles each retry, with jitter."""
    backoff_max_s: float = 60.0
    """Upper bound of one back-off delay."""
    timeout_s: float = 20.0
    """Timeout of one request."""
    concurrency: int = 2
    """Requests in flight at once."""
    min_interval_s: float = 0.5
    """Minimum time between the starts of two requests."""
    endpoint: str = ""
    """Base URL instead of ``https://translate.google.{tld}`` (tests, proxies); empty: Google."""


@dataclass(frozen=True)
class Settings:
    """Everything that shapes a run, resolved from flags, environment, script, config, defaults."""

    root: Path = Path(".")
    """Project root: the folder of ``meditate.yaml``, else the current directory."""
    config_path: Path | None = None
    """The config file used, if any."""
    scripts_dir: Path = Path("scripts")
    """What ``build`` and ``check`` read by default (relative to root)."""
    output_dir: Path = Path("dist")
    """Where tracks and sidecars go (relative to root)."""
    cache_dir: Path = Path(".meditate-cache")
    """Speech cache (relative to root)."""
    assets_dir: Path = Path("audio_assets")
    """The project's own assets folder (relative to root); may not exist."""
    language: str = "en"
    """Default language."""
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    """The script's voice: script over project defaults (before per-step overrides)."""
    forced_voice: Voice = field(default_factory=Voice)
    """Voice fields set by a CLI flag or ``MEDITATE_*`` variable; they win even over steps."""
    background: BackgroundSettings | None = None
    """Default bed, or none."""
    sentence_pause_s: float = 0.8
    """Default gap between sentences."""
    paragraph_pause_s: float = 2.0
    """Default gap between paragraphs and spoken steps."""
    lead_in_s: float = 1.0
    """Silence before the first step (some players clip a track's first moments)."""
    tail_s: float = 2.0
    """Silence after the last step; a sound still ringing then rings out first."""
    target_lufs: float = -16.0
    """Integrated loudness target."""
    true_peak_dbtp: float = -1.0
    """True-peak ceiling."""
    formats: tuple[str, ...] = ("mp3",)
    """Encoded formats."""
    bitrate: str = "128k"
    """Bitrate of lossy formats."""
    sample_rate: int = 44100
    """Output sample rate."""
    channels: int = 2
    """Output channels."""
    lexicon: tuple[tuple[str, str], ...] = ()
    """Whole-word respellings applied before synthesis."""
    words_per_minute: float = 150.0
    """Speaking speed used to estimate speech lengths before synthesis."""
    retry: RetrySettings = field(default_factory=RetrySettings)
    """Online engine throttling and retries."""
