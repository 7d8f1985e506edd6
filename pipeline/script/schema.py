"""JSON Schema (2020-12) of the script format, for editors' YAML language servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.script.declared import DURATION_PATTERN, GAIN_PATTERN, SETTING, keys_under
from pipeline.script.parse import PRESETS

SCHEMA_ID = "https://smart-meditation.app/schema/meditate-script.schema.json"
"""The schema's ``$id``: a name for it, not an address it is served at."""
PROJECT_SCHEMA = Path("schema") / "meditate-script.schema.json"
"""Where a project keeps its copy, relative to its root (``meditate new`` points scripts at it)."""


def _duration(description: str, flexible: bool = False) -> dict[str, Any]:
    pattern = DURATION_PATTERN[:-4] + r"\+?\s*$" if flexible else DURATION_PATTERN
    return {
        "description": description,
        "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": pattern}],
    }


def _gain(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "anyOf": [{"type": "number"}, {"type": "string", "pattern": GAIN_PATTERN}],
    }


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _block(name: str) -> dict[str, Any]:
    """The properties of a block of script settings, from their declarations."""
    return {key: SETTING[f"{name}.{key}"].schema() for key in keys_under(name)}


def _step(kind: str, value: dict[str, Any]) -> dict[str, Any]:
    return _object({kind: value}, [kind])


def script_schema() -> dict[str, Any]:
    """The schema: structure and value forms; semantic checks stay with ``meditate validate``."""
    voice = _object(_block("voice"))
    background = {
        "anyOf": [
            {"type": "null"},
            {"type": "string", "description": "Catalog name or path of a bed."},
            _object(_block("background"), ["asset"]),
        ]
    }
    cues = {
        "anyOf": [
            {"type": "boolean"},
            _object({key: {"type": "string"} for key in ("in", "hold", "out")}),
        ]
    }
    pattern = {
        "anyOf": [
            {"enum": list(PRESETS)},
            {"type": "string", "pattern": r"^\d+(\.\d+)?(-\d+(\.\d+)?){2,3}$"},
            {
                "type": "array",
                "items": {"type": "number", "minimum": 0},
                "minItems": 3,
                "maxItems": 4,
            },
        ]
    }
    steps = {
        "type": "array",
        "minItems": 1,
        "items": {
            "oneOf": [
                _step(
                    "say",
                    {
                        "anyOf": [
                            {"type": "string", "minLength": 1},
                            _object({"text": {"type": "string"}, "voice": voice}, ["text"]),
                        ]
                    },
                ),
                _step(
                    "sound",
                    {
                        "anyOf": [
                            {"type": "string"},
                            _object(
                                {
                                    "asset": {"type": "string"},
                                    "gain": _gain("Gain relative to the catalog level."),
                                    "wait": _duration("How far the timeline advances."),
                                },
                                ["asset"],
                            ),
                        ]
                    },
                ),
                _step("pause", _duration("Silence; '30s+' is flexible.", flexible=True)),
                _step(
                    "breathe",
                    _object(
                        {
                            "pattern": pattern,
                            "cycles": {"type": "integer", "minimum": 1},
                            "cues": cues,
                        },
                        ["pattern"],
                    ),
                ),
                _step("section", {"type": "string", "minLength": 1}),
                _step("include", {"type": "string", "minLength": 1}),
            ]
        },
    }
    properties: dict[str, Any] = {
        "id": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9-]*$"},
        "title": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "author": {"type": "string"},
        "language": {"type": "string"},
        "category": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "duration": _duration("Target length; flexible pauses are scaled to meet it."),
        "voice": voice,
        "background": background,
        "pauses": _object(_block("pauses")),
        "steps": steps,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Meditation script",
        "description": "A session for `meditate`: metadata, voice, background and steps.",
        "anyOf": [
            _object(properties, ["title", "steps"]),
            _object({"steps": steps}, ["steps"]),
        ],
    }
