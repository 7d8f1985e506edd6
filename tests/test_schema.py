"""The JSON Schema accepts every shipped script and rejects structurally wrong ones."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipeline.script.parse import BREATHE_KEYS, SCRIPT_KEYS, STEP_KINDS, VOICE_KEYS
from pipeline.script.schema import script_schema

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "scripts").rglob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = script_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_current() -> None:
    committed = json.loads((ROOT / "schema" / "meditate-script.schema.json").read_text())
    assert committed == script_schema(), (
        "run: meditate schema -o schema/meditate-script.schema.json"
    )


def test_schema_covers_every_key() -> None:
    schema = script_schema()
    full = schema["anyOf"][0]
    assert set(full["properties"]) == set(SCRIPT_KEYS)
    assert set(full["properties"]["voice"]["properties"]) == set(VOICE_KEYS)
    kinds = {next(iter(s["properties"])) for s in full["properties"]["steps"]["items"]["oneOf"]}
    assert kinds == set(STEP_KINDS)
    breathe = next(
        s for s in full["properties"]["steps"]["items"]["oneOf"] if "breathe" in s["properties"]
    )
    assert set(breathe["properties"]["breathe"]["properties"]) == set(BREATHE_KEYS)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_accepts_shipped_scripts(validator: jsonschema.protocols.Validator, path: Path) -> None:
    errors = list(validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8"))))
    assert errors == []


@pytest.mark.parametrize(
    "document",
    [
        {"steps": [{"say": "Hi"}], "titel": "x"},
        {"title": "x"},
        {"title": "x", "steps": "say hello"},
        {"title": "x", "steps": [{"say": "Hi", "pause": "3s"}]},
        {"title": "x", "steps": [{"sya": "Hi"}]},
        {"title": "x", "steps": [{"pause": "ten"}]},
        {"title": "x", "steps": [{"breathe": {"pattern": "4-4"}}]},
        {"title": "x", "steps": [{"breathe": {"pattern": "box", "cycles": 0}}]},
        {"title": "x", "voice": {"rate": 3}, "steps": [{"say": "Hi"}]},
        {"title": "x", "background": {"gain": "-3dB"}, "steps": [{"say": "Hi"}]},
        {"title": "x", "steps": []},
        {"title": "x", "id": "Bad Id", "steps": [{"say": "Hi"}]},
    ],
)
def test_rejects_wrong_structure(
    validator: jsonschema.protocols.Validator, document: dict[str, object]
) -> None:
    assert list(validator.iter_errors(document))
