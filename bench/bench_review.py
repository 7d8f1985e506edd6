"""``meditate review`` of 200 built tracks: cold (every audio file decoded), warm (levels
cached, nothing changed: the target is under 10 s), and warm with one track changed.

Run: ``python bench/bench_review.py [--tracks 200]``. Two shipped scripts are built for real
with espeak; the catalog is then 200 scripts (those two, each with its own id) whose outputs
are copies of the real ones: each audio copy gets its own ID3 tag, so every file has its own
SHA-256 and a cold review really decodes all 200; each sidecar gets its copy's id, paths,
hashes and the build key a build would compute now, re-sealed, so every track is up to date.
Every figure is the whole ``meditate review`` process, timed from outside.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pipeline.build.keys import build_key
from pipeline.build.outputs import SEAL, json_text, sha256_file, sidecar_digest
from pipeline.build.run import build
from pipeline.plan.checked import check_scripts
from pipeline.project.config import load_project

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("anxiety/panic-sos.yaml", "stress/box-breathing.yaml")
"""Shipped scripts built for real (3 and 6 minutes)."""


def built_sources(root: Path) -> list[Path]:
    """A project in ``root`` with the source scripts, built with espeak into ``root/dist``."""
    shutil.copytree(ROOT / "audio_assets", root / "audio_assets")
    shutil.copy(ROOT / "meditate.yaml", root / "meditate.yaml")
    shutil.copytree(ROOT / "scripts" / "_snippets", root / "sources" / "_snippets")
    scripts = []
    for name in SOURCES:
        target = root / "sources" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "scripts" / name, target)
        scripts.append(target)
    report = build([root / "sources"], load_project(start=root), jobs=2)
    assert report.ok, [track for track in report.tracks if track.status != "built"]
    return scripts


def catalog_copies(root: Path, sources: list[Path], count: int) -> None:
    """``count`` scripts under ``root/scripts`` with up-to-date outputs copied from the
    sources' (audio retagged so that each has its own SHA-256)."""
    from mutagen.id3 import ID3, TXXX

    out = root / "dist"
    originals = []
    for source in sources:
        data = json.loads((out / f"{source.stem}.json").read_text(encoding="utf-8"))
        originals.append((source, data))
    folder = root / "scripts" / "catalog"  # beside _snippets, as the sources are
    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "scripts" / "_snippets", root / "scripts" / "_snippets")
    for number in range(count):
        source, _ = originals[number % len(originals)]
        text = source.read_text(encoding="utf-8")
        (folder / f"track-{number:03d}.yaml").write_text(f"id: track-{number:03d}\n{text}")
    project = load_project(start=root)
    for checked in check_scripts([folder], project):
        track_id = checked.script.id
        source, original = originals[int(track_id.split("-")[1]) % len(originals)]
        data: dict[str, Any] = json.loads(json.dumps(original))
        audio = out / f"{track_id}.mp3"
        shutil.copy(out / original["files"][0]["path"], audio)
        tags = ID3(audio)
        tags.add(TXXX(desc="bench copy", text=[track_id]))
        tags.save()
        shutil.copy(out / original["captions"], out / f"{track_id}.vtt")
        relative = checked.script.path.resolve().relative_to(root.resolve()).as_posix()
        old = original["source"]["path"]
        data["id"] = track_id
        data["captions"] = f"{track_id}.vtt"
        data["files"][0] |= {"path": audio.name, "bytes": audio.stat().st_size,
                             "sha256": sha256_file(audio)}  # fmt: skip
        data["source"] = {"path": relative, "sha256": sha256_file(checked.script.path)}
        for sentence in data["sentences"]:
            sentence["place"] = sentence["place"].replace(old, relative)
        data["build_key"] = build_key(checked)
        data[SEAL] = sidecar_digest(data)
        (out / f"{track_id}.json").write_text(json_text(data), encoding="utf-8")


def timed_review(root: Path) -> tuple[float, dict[str, Any]]:
    """One ``meditate review scripts --format json`` process: wall seconds and its report."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "review", "scripts", "--format", "json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"review failed ({done.returncode}): {done.stderr or done.stdout}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=200, help="tracks in the catalog")
    options = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-review-") as folder:
        root = Path(folder)
        started = time.perf_counter()
        sources = built_sources(root)
        built_s = time.perf_counter() - started
        catalog_copies(root, sources, options.tracks)
        hours = sum(
            json.loads(path.read_text())["duration_s"]
            for path in (root / "dist").glob("track-*.json")
        ) / 3600
        print(
            f"catalog: {options.tracks} tracks, {hours:.1f} h of audio "
            f"({len(sources)} scripts built in {built_s:.0f} s, then copied)"
        )
        cold_s, cold = timed_review(root)
        print(
            f"cold review: {cold_s:.1f} s ({cold['decoded']} decoded, "
            f"{len(cold['written'])} files written, {len(cold['tracks'])} pages)"
        )
        warm = []
        for _ in range(3):
            seconds, report = timed_review(root)
            warm.append(seconds)
            assert report["decoded"] == 0 and report["written"] == [], report["written"][:3]
        print(
            f"warm review: {min(warm):.2f} s best of 3 (median {sorted(warm)[1]:.2f} s; "
            f"0 decoded, 0 files written; target < 10 s)"
        )
        sidecar = root / "dist" / "track-007.json"
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        data["qa"] = {"status": "ok", "recognizer": "bench", "counts": {"ok": 0, "warn": 0,
                      "fail": 0}, "sentences": []}  # fmt: skip
        data[SEAL] = sidecar_digest(data)
        sidecar.write_text(json_text(data), encoding="utf-8")
        changed_s, changed = timed_review(root)
        print(
            f"one track changed: {changed_s:.2f} s ({changed['decoded']} decoded, "
            f"{len(changed['written'])} files written: "
            f"{', '.join(Path(p).name for p in changed['written'])})"
        )
        print(f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
