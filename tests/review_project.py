"""A real build to review, and a ``qa`` section made the way ``meditate listen`` makes it
(Whisper tiny.en on the clean clips, per sentence), re-sealed.

``python tests/review_project.py`` draws the README's screenshot (docs/images/review.png)
from a real build of the shipped panic-sos script.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.build.outputs import SEAL, json_text, sidecar_digest  # noqa: E402
from pipeline.project.config import load_project  # noqa: E402

CONFIG = (
    "formats: [mp3]\nbitrate: 96k\nchannels: 1\ndefaults: {pauses: {lead_in: 0.5s, tail: 1s}}\n"
)
LONG = (
    "This is a very long sentence that goes on and on, with commas, clauses and words, "
    "so that the transcript must wrap it over several lines instead of running off the "
    "edge of the page, as a careless page would, and then it ends at last."
)
SCRIPT = f"""\
title: Review <b>check</b>
steps:
  - section: Arriving
  - say: |
      Welcome to the test. Tags like <script>alert(1)</script> stay text.
      Breathe in slowly.
  - section: Shalom שלום
  - say: |
      Peace be with you, שלום.
      {LONG}
"""
CHROMIUM = Path(os.environ.get("MEDITATE_TEST_CHROMIUM", "/usr/bin/chromium"))
"""Debian's Chromium (another path for a test of what happens without it)."""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
]
"""Debian's Chromium, headless, offline, allowed to play without a click."""


def build_project(root: Path, scripts: Mapping[str, str] | None = None) -> Path:
    """A project in ``root`` with ``scripts`` (default: the review test script as
    ``scripts/review-check.yaml``), built with espeak into ``root/dist``."""
    from pipeline.build.run import build

    (root / "scripts").mkdir(parents=True, exist_ok=True)
    (root / "meditate.yaml").write_text(CONFIG, encoding="utf-8")
    for name, text in (scripts or {"review-check.yaml": SCRIPT}).items():
        (root / "scripts" / name).write_text(text, encoding="utf-8")
    report = build([root / "scripts"], load_project(start=root), jobs=1)
    assert report.ok, report
    return root


def add_qa(
    root: Path, track_id: str, script_says: Mapping[int, str] | None = None
) -> dict[str, Any]:
    """Transcribe a built track's clean clips with Whisper tiny.en, check each sentence as
    ``meditate listen`` does, write the ``qa`` section into its sidecar and re-seal it.

    ``script_says``: by sentence index, a text to compare that clip with instead of its own
    (what a voice that skipped or swapped words would have said), so a flag is certain.
    """
    from pipeline.project.config import resolve
    from pipeline.qa.asr import load_transcriber
    from pipeline.qa.check import check_sentences
    from pipeline.speech.cache import SpeechCache

    project = load_project(start=root)
    settings = resolve(project)
    path = settings.output_dir / f"{track_id}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    cache = SpeechCache(settings.cache_dir)
    sentences = data["sentences"]
    clips = []
    for sentence in sentences:
        clip = cache.get(sentence["clip"])
        assert clip is not None, sentence
        clips.append(clip)
    texts = [(script_says or {}).get(i, s["text"]) for i, s in enumerate(sentences)]
    transcriber = load_transcriber()
    checks = check_sentences(
        texts, clips, settings.sample_rate, transcriber, lexicon=settings.lexicon
    )
    entries = []
    for index, check in enumerate(checks):
        found = check.as_dict()
        found.pop("text")
        entries.append({"index": index, **found})
    counts = {key: sum(e["status"] == key for e in entries) for key in ("ok", "warn", "fail")}
    status = "fail" if counts["fail"] else "warn" if counts["warn"] else "ok"
    data["qa"] = {"status": status, "recognizer": transcriber.identity(), "counts": counts,
                  "sentences": entries}  # fmt: skip
    data[SEAL] = sidecar_digest(data)
    path.write_text(json_text(data), encoding="utf-8")
    return data


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium through Playwright (never a downloaded browser)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def screenshot(target: Path) -> None:
    """The README's picture: panic-sos built from the shipped script, checked, reviewed."""
    from playwright.sync_api import sync_playwright

    from pipeline.review.site import review

    with tempfile.TemporaryDirectory(prefix="review-shot-") as folder:
        root = Path(folder)
        shutil.copytree(ROOT / "audio_assets", root / "audio_assets")
        shutil.copy(ROOT / "meditate.yaml", root / "meditate.yaml")
        (root / "scripts" / "anxiety").mkdir(parents=True)
        shutil.copy(ROOT / "scripts/anxiety/panic-sos.yaml", root / "scripts/anxiety")
        from pipeline.build.run import build

        project = load_project(start=root)
        assert build([root / "scripts"], project, jobs=2).ok
        add_qa(root, "panic-sos")
        report = review([root / "scripts"], project)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1000, "height": 1080})
            page.goto(report.page("panic-sos").as_uri())
            page.wait_for_selector("body[data-waveform=ready]")
            flagged = page.locator(".sentence.qa-warn, .sentence.qa-fail").first
            if flagged.count():
                flagged.click()
            else:
                page.click("#s-4")
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(300)
            page.screenshot(path=str(target))
            browser.close()


if __name__ == "__main__":
    screenshot(ROOT / "docs" / "images" / "review.png")
