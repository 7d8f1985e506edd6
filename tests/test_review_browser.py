"""The review page in a real browser: Debian's Chromium driven by Playwright, the page opened
from file:// (as users open it), playing a real espeak build checked by Whisper tiny.en."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from review_project import CHROMIUM

if not CHROMIUM.exists():
    pytest.skip(
        "no browser: these tests drive Debian's Chromium; `apt-get install chromium` to run them",
        allow_module_level=True,
    )
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

from review_project import add_qa, build_project, launch_chromium  # noqa: E402

from pipeline.project.config import load_project  # noqa: E402
from pipeline.review.site import ReviewReport, review  # noqa: E402

TRACK = "review-check"
MISHEARD = 1
STEP_MS = 10_000
"""Longest wait of any single browser step."""
TEST_S = 60
"""Longest run of any test once the build it reviews is made."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> ReviewReport:
    root = build_project(tmp_path_factory.mktemp("browser") / "project")
    add_qa(root, TRACK, {MISHEARD: "Tags like script and alert stay as text today."})
    return review([root / "scripts"], load_project(start=root))


@pytest.fixture(autouse=True)
def time_bound() -> Iterator[None]:
    """Fail a test (rather than hang the suite) after ``TEST_S`` seconds."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"a browser test ran over {TEST_S} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, started once for the module and stopped after it."""
    with playwright_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, site: ReviewReport) -> Iterator[Any]:
    """The track's page, loaded from file:// with its waveform drawn; fails on a page error."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(STEP_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("dialog", lambda dialog: errors.append(f"dialog: {dialog.message}"))
    tab.goto(site.page(TRACK).as_uri())
    tab.wait_for_selector("body[data-waveform=ready]")
    yield tab
    context.close()
    assert errors == []


def sentence_starts(page: Any) -> list[float]:
    starts = page.eval_on_selector_all(".sentence", "s => s.map(e => e.dataset.start)")
    return [float(start) for start in starts]


def test_clicking_a_sentence_seeks_the_audio_there(page: Any) -> None:
    starts = sentence_starts(page)
    page.click("#s-3")
    assert page.evaluate("document.getElementById('audio').currentTime") == pytest.approx(
        starts[3], abs=0.01
    )
    assert page.get_attribute("#s-3", "class") is not None
    assert "current" in page.get_attribute("#s-3", "class")
    page.click("#s-0")
    assert page.evaluate("document.getElementById('audio').currentTime") == pytest.approx(
        starts[0], abs=0.01
    )
    assert "current" not in page.get_attribute("#s-3", "class")


def test_playing_moves_the_highlight_from_sentence_to_sentence(page: Any) -> None:
    starts = sentence_starts(page)
    page.click("#s-1")
    page.evaluate("const a = document.getElementById('audio'); a.muted = true; a.play()")
    page.wait_for_function(
        f"document.getElementById('audio').currentTime > {starts[2] + 0.2}", timeout=STEP_MS
    )
    assert page.get_attribute("body", "data-current") == "2"
    assert "current" in page.get_attribute("#s-2", "class")
    assert "current" not in page.get_attribute("#s-1", "class")
    page.evaluate("document.getElementById('audio').pause()")


def test_chapters_and_sentences_are_regions_of_the_waveform(page: Any) -> None:
    regions = page.evaluate("window.__review.regions.getRegions().map(r => [r.id, r.start, r.end])")
    chapters = [region for region in regions if region[0].startswith("chapter-")]
    sentences = [region for region in regions if region[0].startswith("sentence-")]
    assert len(chapters) == 2 and all(start == end for _, start, end in chapters)
    assert len(sentences) == len(sentence_starts(page))
    labels = page.evaluate(
        "window.__review.regions.getRegions().filter(r => r.content)"
        ".map(r => r.content.textContent)"
    )
    assert labels == ["Arriving", "Shalom שלום"]
    assert page.locator("#chapters .chapter").all_inner_texts()[1].endswith("Shalom שלום")
    page.click("#chapters .chapter >> nth=1")
    assert page.evaluate("document.getElementById('audio').currentTime") == pytest.approx(
        chapters[1][1], abs=0.01
    )
    assert page.evaluate("window.__review.surfer.getDuration()") > 20


def test_qa_flags_show_inline(page: Any) -> None:
    flagged = page.locator(f"#s-{MISHEARD}")
    assert "qa-fail" in flagged.get_attribute("class")
    assert "WER" in flagged.locator(".flag").inner_text()
    assert "missing" in flagged.locator(".heard").inner_text()
    assert page.locator("#qa-status").inner_text().startswith("fail")
    assert page.locator(".sentence.qa-ok").count() >= 2


def test_next_and_previous_flag_jump_between_flagged_sentences(page: Any) -> None:
    flagged = page.eval_on_selector_all(
        ".sentence.qa-warn, .sentence.qa-fail", "s => s.map(e => parseFloat(e.dataset.start))"
    )
    assert flagged and page.locator(".flags").inner_text().startswith(f"{len(flagged)} flagged")
    time = "document.getElementById('audio').currentTime"
    page.click("#s-0")
    page.click("#next-flag")
    assert page.evaluate(time) == pytest.approx(flagged[0], abs=0.01)
    page.keyboard.press("n")
    assert page.evaluate(time) == pytest.approx(flagged[1 % len(flagged)], abs=0.01)
    page.keyboard.press("p")
    assert page.evaluate(time) == pytest.approx(flagged[0], abs=0.01)
    page.click("#previous-flag")  # before the first: round to the last
    assert page.evaluate(time) == pytest.approx(flagged[-1], abs=0.01)


def test_script_text_shows_as_text_never_as_markup(page: Any) -> None:
    assert page.locator("h1").inner_text() == "Review <b>check</b>"
    assert page.locator("h1 b").count() == 0
    line = page.locator(f"#s-{MISHEARD} .line").inner_text()
    assert "<script>alert(1)</script>" in line
    own = "[...document.scripts].filter(s => !s.src.includes('?t=')).length"  # not the polls
    assert page.evaluate(own) == 5


def test_right_to_left_and_long_sentences_wrap_inside_the_page(page: Any) -> None:
    hebrew = page.locator("#s-3 .text")
    assert hebrew.get_attribute("dir") == "auto" and "שלום" in hebrew.inner_text()
    long_one = page.locator("#s-4")
    box = long_one.bounding_box()
    assert box is not None and box["height"] > 40  # wrapped over lines
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_loudness_plot_is_drawn(page: Any) -> None:
    painted = page.evaluate(
        """(() => { const c = document.getElementById('loudness');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()"""
    )
    assert painted > 1000


def test_the_page_reloads_itself_when_its_track_changes(
    page: Any, site: ReviewReport, tmp_path: Path
) -> None:
    page.evaluate("window.__marker = 1; document.getElementById('audio').currentTime = 4")
    version = site.site_dir / f"{TRACK}.version.js"
    saved = version.read_text()
    page.wait_for_timeout(1500)
    assert page.evaluate("window.__marker") == 1  # unchanged: no reload
    try:
        version.write_text('window.__reviewVersion = "changed";\n')
        page.wait_for_function("window.__marker === undefined", timeout=STEP_MS)
        page.wait_for_selector("body[data-waveform=ready]")
        assert "t=4" in page.evaluate("location.hash")
        page.wait_for_function("document.getElementById('audio').currentTime > 3.9")
    finally:
        version.write_text(saved)


def test_a_screenshot_of_the_page(page: Any, tmp_path: Path) -> None:
    target = tmp_path / "review.png"
    page.click(f"#s-{MISHEARD}")
    page.screenshot(path=str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 20_000


def test_the_index_links_every_page(browser: Any, site: ReviewReport) -> None:
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(STEP_MS)
    tab.goto(site.index.as_uri())
    assert tab.locator("#tracks tbody tr").count() == 1
    assert tab.locator("#tracks .badge").inner_text() == "fail"
    tab.click("text=Review <b>check</b>")
    tab.wait_for_selector("body[data-waveform=ready]")
    assert tab.url.endswith(f"{TRACK}.html")
    context.close()


def test_no_file_outside_the_site_and_the_audio_is_loaded(browser: Any, site: ReviewReport) -> None:
    """Offline by construction: every request is a file:// one inside the site, or the audio."""
    context = browser.new_context()
    tab = context.new_page()
    requested: list[str] = []
    tab.on("request", lambda request: requested.append(request.url))
    tab.goto(site.page(TRACK).as_uri())
    tab.wait_for_selector("body[data-waveform=ready]", timeout=STEP_MS)
    context.close()
    audio = (site.site_dir.parent / f"{TRACK}.mp3").as_uri()
    outside = [
        url
        for url in requested
        if not url.startswith(site.site_dir.as_uri()) and url.split("?")[0] != audio
    ]
    assert outside == []
