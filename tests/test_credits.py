"""A voice whose licence asks for a credit line carries it into the sidecar and the catalog;
other tracks have no ``credits`` at all."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_project
from test_kokoro import neural

from pipeline.build.render import render_script
from pipeline.build.run import build
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
