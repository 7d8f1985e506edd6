"""The build recipe of a fixed project is pinned: a change to the settings' shape, their
defaults or the recipe changes every build key, and must be deliberate (bump KEY_VERSION)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from conftest import write_project

from pipeline.build.keys import build_recipe
from pipeline.plan.checked import check_script
from pipeline.project.config import load_project

GOLDEN = Path(__file__).parent / "golden" / "build_recipe.json"

CONFIG = """\
defaults:
  voice: {engine: espeak, rate: 0.9}
  background: {asset: rain, gain: -20dB, duck: 8dB}
  pauses: {sentence: 1s}
master: {loudness: -18}
formats: [mp3, ogg]
gtts: {tries: 3}
"""
SCRIPT = """\
title: Pinned
pauses: {paragraph: 3s, tail: 4s}
steps:
  - say: Breathe in.
  - say: {text: And out., voice: {rate: 1.1, name: en-gb}}
  - sound: {asset: chime, gain: -3dB}
"""


def normalised(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe without what differs between machines and releases."""
    recipe = dict(recipe, generator="<version>")
    recipe["engines"] = [dict(engine, engine_version="<engine>") for engine in recipe["engines"]]
    return json.loads(json.dumps(recipe, sort_keys=True, default=str))  # type: ignore[no-any-return]


def test_the_build_recipe_of_unchanged_inputs_is_unchanged(
    tmp_path: Path, monkeypatch: Any
) -> None:
    regenerate = bool(os.environ.get("MEDITATE_REGEN_GOLDEN"))
    for variable in [name for name in os.environ if name.startswith("MEDITATE_")]:
        monkeypatch.delenv(variable)
    root = write_project(tmp_path / "project", CONFIG, {"pinned.yaml": SCRIPT})
    checked = check_script(root / "scripts" / "pinned.yaml", load_project(start=root))
    recipe = normalised(build_recipe(checked))
    if regenerate:
        GOLDEN.write_text(json.dumps(recipe, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert recipe == json.loads(GOLDEN.read_text(encoding="utf-8")), (
        "every build key changes: bump KEY_VERSION if meant, then MEDITATE_REGEN_GOLDEN=1"
    )
