"""The engine registry: built-in engines plus third-party ones from the ``pipeline.engines`` group.

Engines are imported only when requested, and each is instantiated once per process (per retry
settings), so that a backend with global state (espeak) initializes once.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

from pipeline.core.errors import EngineError
from pipeline.engines.base import Engine, VoiceInfo
from pipeline.project.settings import RetrySettings

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "pipeline.engines"
"""Entry-point group through which other distributions register engines."""

BUILTIN_ENGINES: dict[str, str] = {
    "espeak": "pipeline.engines.espeak:EspeakEngine",
    "gtts": "pipeline.engines.gtts:GttsEngine",
}
"""Engines shipped with the package: name -> ``module:Class``. They win over entry points."""

_instances: dict[tuple[str, RetrySettings], Engine] = {}
_instances_lock = threading.Lock()


@dataclass(frozen=True)
class EngineInfo:
    """What ``meditate engines`` shows about one engine."""

    name: str
    """Registry name."""
    usable: bool
    """Whether it can synthesize on this machine."""
    reason: str
    """Why it cannot (or a note); empty when there is nothing to say."""
    version: str
    """Engine version ('' when it cannot be told)."""
    voices: tuple[str, ...]
    """Voice names it accepts (empty if voices are not selectable or it is unusable)."""
    languages: tuple[str, ...]
    """Language codes it accepts (empty if it is unusable)."""
    voice_list: tuple[VoiceInfo, ...] = ()
    """Every voice with its languages (with ``details`` only)."""
    language_names: tuple[tuple[str, str], ...] = ()
    """Every language code with its name, where known (with ``details`` only)."""

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly form for ``meditate engines --format json``."""
        payload: dict[str, object] = {
            "name": self.name,
            "usable": self.usable,
            "reason": self.reason,
            "version": self.version,
            "voices": [
                {"name": v.name, "languages": list(v.languages), "description": v.description}
                for v in self.voice_list
            ]
            or [{"name": name, "languages": [], "description": ""} for name in self.voices],
            "languages": [
                {"code": code, "name": label} for code, label in self.language_names
            ]
            or [{"code": code, "name": ""} for code in self.languages],
        }
        return payload


def _third_party() -> dict[str, Any]:
    """Entry points of the group by name, built-in names excluded; a broken metadata is skipped."""
    import importlib.metadata  # slow to import: only when an engine name is not built in

    try:
        found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as error:  # a broken installed distribution must not break the registry
        log.warning("cannot read the %s entry points: %s", ENTRY_POINT_GROUP, error)
        return {}
    table: dict[str, Any] = {}
    for entry_point in found:
        if entry_point.name in BUILTIN_ENGINES:
            continue
        table.setdefault(entry_point.name, entry_point)
    return table


def engine_names() -> list[str]:
    """Every registered engine name, sorted (nothing is imported)."""
    return sorted({*BUILTIN_ENGINES, *_third_party()})


def _unknown_engine(name: str, known: list[str]) -> EngineError:
    """The error for an engine name nobody registered, with the closest known name."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return EngineError(f"unknown engine '{name}' (known engines: {', '.join(known)}){hint}")


def _load_class(name: str) -> type[Engine]:
    """Import the engine class registered under ``name``."""
    builtin = BUILTIN_ENGINES.get(name)
    if builtin is not None:
        target = builtin
        module_name, _, attribute = builtin.partition(":")

        def load() -> Any:
            return getattr(importlib.import_module(module_name), attribute)

    else:
        entry_point = _third_party().get(name)
        if entry_point is None:
            raise _unknown_engine(name, engine_names())
        target = str(getattr(entry_point, "value", name))
        load = entry_point.load
    try:
        loaded = load()
    except Exception as error:  # ImportError, but also anything a plugin raises at import time
        raise EngineError(
            f"engine '{name}' cannot be loaded ({target}): {type(error).__name__}: {error}"
        ) from None
    if not (isinstance(loaded, type) and issubclass(loaded, Engine)):
        raise EngineError(f"engine '{name}' ({target}) is not a subclass of pipeline Engine")
    return loaded


def get_engine(name: str, retry: RetrySettings | None = None) -> Engine:
    """The process-wide instance of engine ``name``; EngineError if unknown or not loadable."""
    settings = retry or RetrySettings()
    key = (name, settings)
    engine = _instances.get(key)
    if engine is not None:
        return engine
    with _instances_lock:
        engine = _instances.get(key)
        if engine is None:
            engine_class = _load_class(name)
            try:
                engine = engine_class(retry=settings)
            except EngineError:
                raise
            except Exception as error:
                raise EngineError(
                    f"engine '{name}' cannot start: {type(error).__name__}: {error}"
                ) from None
            if not engine.name:
                engine.name = name
            _instances[key] = engine
    return engine


def clear_engine_cache() -> None:
    """Forget the engine instances (tests, or after the registry's entry points changed)."""
    with _instances_lock:
        _instances.clear()


def describe_engines(names: list[str] | None = None, details: bool = False) -> list[EngineInfo]:
    """Every engine (or those named) with its availability, version, voices and languages;
    ``details`` adds each voice's languages and each language's name. Raises EngineError only
    for an unknown name.
    """
    known = engine_names()
    for name in names or ():
        if name not in known:
            raise _unknown_engine(name, known)
    return [_describe(name, details) for name in (names or known)]


def _describe(name: str, details: bool = False) -> EngineInfo:
    try:
        engine = get_engine(name)
        availability = engine.availability()
    except Exception as error:
        reason = (
            str(error) if isinstance(error, EngineError) else f"{type(error).__name__}: {error}"
        )
        return EngineInfo(name, False, reason, "", (), ())
    usable, reason = availability.usable, availability.reason

    def attempt(what: str, call: Any) -> Any:
        nonlocal usable, reason
        try:
            return call()
        except Exception as error:
            if usable:
                usable, reason = False, f"cannot list its {what}: {type(error).__name__}: {error}"
            return None

    version = attempt("version", engine.version) or ""
    voices = attempt("voices", engine.voices) or []
    languages = attempt("languages", engine.languages) or []
    voice_list: list[VoiceInfo] = []
    language_names: dict[str, str] = {}
    if details:
        voice_list = attempt("voices", engine.voice_list) or []
        language_names = attempt("languages", engine.language_names) or {}
    return EngineInfo(
        name,
        usable,
        reason,
        str(version),
        tuple(voices),
        tuple(languages),
        tuple(voice_list),
        tuple(language_names.items()),
    )
