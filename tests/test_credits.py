"""A voice whose licence asks for a credit line carries it into the sidecar and the catalog;
other tracks have no ``credits`` at all."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_project
from test_kokoro import neural

from pipeline.build.render import render_script
from pipeline.build.run import build
from pipeline.plan.validate import validate_paths
from pipeline.project.config import load_project

SCRIPT = "title: T\nvoice: {{engine: {engine}, name: {name}}}\nsteps:\n  - say: Rest.\n"


@neural
def test_a_credited_voice_is_credited_in_the_sidecar_and_the_catalog(tmp_path: Path) -> None:
    root = write_project(
        tmp_path,
        "",
        {
            "credited.yaml": SCRIPT.format(engine="kokoro", name="jf_gongitsune"),
            "free.yaml": SCRIPT.format(engine="kokoro", name="jf_alpha"),
        },
    )
    report = build([root / "scripts"], load_project(start=root), jobs=1)
    assert report.ok
    catalog = json.loads((root / "dist" / "catalog.json").read_text(encoding="utf-8"))
    tracks = {track["id"]: track for track in catalog["tracks"]}
    (credit,) = tracks["credited"]["credits"]
    assert "jf_gongitsune" in credit and "CC BY 3.0" in credit and "TV Nishinippon" in credit
    assert "credits" not in tracks["free"]


def test_an_espeak_track_has_no_credits(tmp_path: Path) -> None:
    root = write_project(tmp_path, "", {"t.yaml": SCRIPT.format(engine="espeak", name="en")})
    render_script(root / "scripts" / "t.yaml", load_project(start=root), output_dir=root / "out")
    assert "credits" not in json.loads((root / "out" / "t.json").read_text(encoding="utf-8"))


@neural
def test_the_project_names_the_kokoro_files(tmp_path: Path) -> None:
    from importlib.resources import files

    from pipeline.engines import get_engine
    from pipeline.engines.kokoro import VOICES_PACKAGE, VOICES_RESOURCE, KokoroEngine
    from pipeline.project.config import resolve

    (tmp_path / "models").mkdir()
    packaged = files(VOICES_PACKAGE).joinpath(VOICES_RESOURCE).read_bytes()
    (tmp_path / "models" / "voices.npz").write_bytes(packaged)
    root = write_project(tmp_path, "engines:\n  kokoro: {voices: models/voices.npz}\n")
    settings = resolve(load_project(start=root), environ={})
    assert settings.retry.kokoro_voices == root / "models" / "voices.npz"
    engine = get_engine("kokoro", settings.retry)
    assert isinstance(engine, KokoroEngine)
    found = engine.files().voices
    assert found.path == root / "models" / "voices.npz"
    assert found.origin == "meditate.yaml engines.kokoro.voices"
    gone = write_project(tmp_path / "other", "engines:\n  kokoro: {voices: missing.npz}\n")
    report = validate_paths([write_script(gone)], load_project(start=gone))
    assert any("missing.npz" in problem.message for problem in report.errors)


def write_script(root: Path) -> Path:
    path = root / "scripts" / "k.yaml"
    path.write_text(SCRIPT.format(engine="kokoro", name="jf_alpha"), encoding="utf-8")
    return path
