"""``meditate review``: the site of a real espeak build, its cached levels, what changed since
the build, tracks that cannot be shown, escaping. The browser tests are in
test_review_browser.py."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from review_project import add_qa, build_project

from pipeline.build.outputs import SEAL, json_text, sidecar_digest
from pipeline.cli import cli
from pipeline.review.levels import LEVELS_VERSION, cache_path
from pipeline.review.pages import inline_json, qa_counts, qa_status
from pipeline.review.tracks import script_lines

TRACK = "review-check"
MISHEARD = 1
"""The sentence whose clip is compared with other words (a voice that said something else)."""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real espeak build of the review script, checked by Whisper tiny.en."""
    root = build_project(tmp_path_factory.mktemp("review") / "project")
    add_qa(root, TRACK, {MISHEARD: "Tags like script and alert stay as text today."})
    return root


@pytest.fixture
def project(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the built project to change, as the current folder."""
    root = tmp_path / "project"
    shutil.copytree(built, root)
    monkeypatch.chdir(root)
    yield root


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["review", *args])


def sidecar(root: Path, track_id: str = TRACK) -> dict[str, Any]:
    path = root / "dist" / f"{track_id}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def reseal(root: Path, data: dict[str, Any]) -> None:
    data[SEAL] = sidecar_digest(data)
    (root / "dist" / f"{data['id']}.json").write_text(json_text(data), encoding="utf-8")


class Elements(HTMLParser):
    """Every element of a page, as (tag, attributes), and the text inside each tag name."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, str] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        for tag in self._open:
            self.text[tag] = self.text.get(tag, "") + data


def parsed(path: Path) -> Elements:
    parser = Elements()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_review_writes_an_index_and_a_page_per_track(project: Path) -> None:
    result = run()
    assert result.exit_code == 0, result.output
    site = project / "dist" / "review"
    assert "1 track(s) reviewed, 0 skipped" in result.output
    index = (site / "index.html").read_text(encoding="utf-8")
    assert f'href="{TRACK}.html"' in index
    loudness = sidecar(project)["loudness"]
    for shown in (f"{loudness['integrated_lufs']:.1f} LUFS", "dBTP", ">fail<", "up to date"):
        assert shown in index
    page = parsed(site / f"{TRACK}.html")
    audio = [attrs for tag, attrs in page.elements if tag == "audio"]
    assert audio[0]["src"] == f"../{TRACK}.mp3"  # linked where it lies, never copied
    assert not list(site.rglob("*.mp3"))
    scripts = [attrs.get("src") for tag, attrs in page.elements if tag == "script"]
    assert scripts == [
        None,
        "static/wavesurfer/wavesurfer.min.js",
        "static/wavesurfer/regions.min.js",
        f"{TRACK}.version.js",
        "static/review.js",
    ]
    for name in ("wavesurfer.min.js", "regions.min.js", "LICENSE", "VERSION"):
        assert (site / "static" / "wavesurfer" / name).is_file()
    data = sidecar(project)
    items = [attrs for tag, attrs in page.elements if tag == "li" and attrs.get("data-index")]
    assert len(items) == len(data["sentences"])
    assert [float(item["data-start"] or 0) for item in items] == [
        s["start_s"] for s in data["sentences"]
    ]
    flagged = items[MISHEARD]
    assert flagged["class"] == "sentence qa-fail"


def test_the_inlined_data_holds_peaks_loudness_chapters_and_sentences(project: Path) -> None:
    assert run().exit_code == 0
    text = (project / "dist" / "review" / f"{TRACK}.html").read_text(encoding="utf-8")
    start = text.index('id="track-data">') + len('id="track-data">')
    payload = json.loads(text[start : text.index("</script>", start)])
    data = sidecar(project)
    assert payload["duration_s"] == pytest.approx(data["duration_s"], abs=0.1)
    levels = payload["levels"]
    assert 1000 <= len(levels["peaks"]) == len(levels["troughs"]) <= 4000
    assert max(levels["peaks"]) > 0.3 and min(levels["peaks"]) >= 0.0
    assert len(levels["short_term_lufs"]) * levels["loudness_step_s"] == pytest.approx(
        data["duration_s"], abs=0.5
    )
    assert max(levels["short_term_lufs"]) > -30 > min(levels["short_term_lufs"])  # speech, gaps
    assert [c["title"] for c in payload["chapters"]] == ["Arriving", "Shalom שלום"]
    assert [s["status"] for s in payload["sentences"]][MISHEARD] == "fail"


def test_html_in_script_text_is_escaped(project: Path) -> None:
    assert run().exit_code == 0
    site = project / "dist" / "review"
    page_text = (site / f"{TRACK}.html").read_text(encoding="utf-8")
    page = parsed(site / f"{TRACK}.html")
    assert "<b>check</b>" not in page_text and "&lt;b&gt;check&lt;/b&gt;" in page_text
    assert "<script>alert(1)</script>" not in page_text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_text  # the script line, as text
    assert [tag for tag, _ in page.elements].count("script") == 5
    assert "b" not in [tag for tag, _ in page.elements]
    index = parsed(site / "index.html")
    assert "Review <b>check</b>" in index.text["a"] and "b" not in [t for t, _ in index.elements]


def test_each_sentence_names_its_script_line(project: Path) -> None:
    assert run().exit_code == 0
    page = (project / "dist" / "review" / f"{TRACK}.html").read_text(encoding="utf-8")
    assert "scripts/review-check.yaml:5:7</code>" in page  # below `say: |`, not at it
    assert "scripts/review-check.yaml:5:28</code>" in page  # the second sentence of that line
    assert "scripts/review-check.yaml:10:7</code>" in page


@pytest.mark.parametrize(
    ("sentences", "expected"),
    [
        ([("One. Two words here.", "s.yaml:2:10")], ["s.yaml:3:7"]),
        ([("Breathe in", "s.yaml:6:5")], ["s.yaml:6:5"]),  # a breathing cue: its step
        (
            [("Two words", "s.yaml:2:10"), ("here now.", "s.yaml:2:10")],
            ["s.yaml:3:12", "s.yaml:4:7"],
        ),
        ([("Gone", "missing.yaml:1:1")], ["missing.yaml:1:1"]),
    ],
)
def test_script_lines_find_the_line_a_sentence_starts_on(
    tmp_path: Path, sentences: list[tuple[str, str]], expected: list[str]
) -> None:
    (tmp_path / "s.yaml").write_text(
        "steps:\n  - say: |\n      One. Two words\n      here now.\n  - pause: 1s\n"
        "  - breathe: {pattern: box}\n",
        encoding="utf-8",
    )
    entries = [{"text": text, "place": place} for text, place in sentences]
    assert [line.place for line in script_lines(entries, tmp_path)] == expected


def test_a_second_review_decodes_and_writes_nothing(project: Path) -> None:
    first = run("--format", "json")
    assert first.exit_code == 0
    report = json.loads(first.output)
    audio_sha = sidecar(project)["files"][0]["sha256"]
    cached = cache_path(project / ".meditate-cache", audio_sha)
    assert json.loads(cached.read_text())["version"] == LEVELS_VERSION
    again = json.loads(run("--format", "json").output)
    assert again["decoded"] == 0 and again["written"] == []
    assert again["tracks"] == report["tracks"]


def test_levels_come_from_the_cache_keyed_by_the_audio_sha256(project: Path) -> None:
    audio_sha = sidecar(project)["files"][0]["sha256"]
    cached = cache_path(project / ".meditate-cache", audio_sha)
    run()
    entry = json.loads(cached.read_text())
    entry["peaks"] = [0.5] * len(entry["peaks"])  # proof that the page is drawn from the cache
    cached.write_text(json.dumps(entry))
    assert json.loads(run("--format", "json").output)["decoded"] == 0
    page = (project / "dist" / "review" / f"{TRACK}.html").read_text(encoding="utf-8")
    assert '"peaks":[0.5,0.5,' in page
    cached.write_text("{not json")  # an unreadable entry is measured again, not an error
    assert json.loads(run("--format", "json").output)["decoded"] == 1


def test_the_version_file_changes_only_when_the_track_changes(project: Path) -> None:
    version = project / "dist" / "review" / f"{TRACK}.version.js"
    run()
    first = version.read_text()
    assert first.startswith("window.__reviewVersion = ")
    stamp = version.stat().st_mtime_ns
    run()
    assert version.read_text() == first and version.stat().st_mtime_ns == stamp
    data = sidecar(project)
    data["qa"]["sentences"][0]["heard"] = "Welcome to the best."
    reseal(project, data)
    run()
    assert version.read_text() != first


def test_what_changed_since_the_build(project: Path) -> None:
    script = project / "scripts" / "review-check.yaml"
    original = script.read_text(encoding="utf-8")
    script.write_text(original + "  - pause: 2s\n", encoding="utf-8")
    found = json.loads(run("--format", "json").output)["tracks"][0]
    assert found["change"] == "script edited since the build"
    script.write_text(original, encoding="utf-8")
    config = project / "meditate.yaml"
    config.write_text(config.read_text().replace("bitrate: 96k", "bitrate: 128k"))
    found = json.loads(run("--format", "json").output)["tracks"][0]
    assert found["change"] == "settings changed since the build"
    config.write_text(config.read_text().replace("bitrate: 128k", "bitrate: 96k"))
    found = json.loads(run("--format", "json").output)["tracks"][0]
    assert found["change"] == "up to date"
    script.write_text(original.replace("title:", "titel:"), encoding="utf-8")
    result = run("--format", "json")
    found = json.loads(result.output)["tracks"][0]
    assert found["change"] == "script has errors now"
    assert "review-check.yaml:1:1: error: titel: unknown key" in found["detail"]
    (project / "scripts" / "_bits.yaml").write_text("steps:\n  - pause: ten\n", encoding="utf-8")
    script.write_text(original + "  - include: _bits.yaml\n", encoding="utf-8")
    found = json.loads(run("--format", "json").output)["tracks"][0]
    assert found["change"] == "script has errors now"
    assert "_bits.yaml:2:12: error: steps[0].pause: expected a duration" in found["detail"]


def test_a_track_without_qa_is_not_checked(project: Path) -> None:
    data = sidecar(project)
    del data["qa"]
    reseal(project, data)
    assert run().exit_code == 0
    index = (project / "dist" / "review" / "index.html").read_text(encoding="utf-8")
    assert ">not checked<" in index


def test_a_track_never_built_is_named_and_skipped(project: Path) -> None:
    (project / "scripts" / "new-one.yaml").write_text(
        "title: New\nsteps:\n  - say: Hello.\n", encoding="utf-8"
    )
    result = run()
    assert result.exit_code == 1
    assert (
        "skipped  scripts/new-one.yaml: never built: run `meditate build scripts/new-one.yaml`"
        in result.output
    )
    assert "1 track(s) reviewed, 1 skipped" in result.output
    index = (project / "dist" / "review" / "index.html").read_text(encoding="utf-8")
    assert "scripts/new-one.yaml" in index and f'href="{TRACK}.html"' in index


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda text: text[: len(text) // 2], "corrupt sidecar (not JSON, or not this track's)"),
        (lambda text: text.replace('"chapters"', '"chapterz"'), "corrupt sidecar: no chapters"),
    ],
)
def test_a_corrupt_sidecar_is_named_and_skipped(
    project: Path, damage: Any, message: str
) -> None:
    build_project(project, {"second.yaml": "title: Second\nsteps:\n  - say: Hello there.\n"})
    path = project / "dist" / f"{TRACK}.json"
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    result = run()
    assert result.exit_code == 1
    assert f"skipped  scripts/review-check.yaml: dist/review-check.json: {message}" in result.output
    assert (project / "dist" / "review" / "second.html").is_file()


def test_a_missing_audio_file_is_named(project: Path) -> None:
    (project / "dist" / f"{TRACK}.mp3").unlink()
    result = run()
    assert result.exit_code == 1
    assert "dist/review-check.mp3: missing; rebuild the track" in result.output


def test_no_folder_of_built_tracks_is_a_clear_error(project: Path) -> None:
    result = run("--tracks", "nowhere")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "nowhere: error: no such folder of built tracks; run `meditate build` first"
    )


def test_the_site_goes_where_asked(project: Path, tmp_path: Path) -> None:
    result = run("-o", str(tmp_path / "site"))
    assert result.exit_code == 0, result.output
    page = parsed(tmp_path / "site" / f"{TRACK}.html")
    audio = next(attrs for tag, attrs in page.elements if tag == "audio")
    assert (tmp_path / "site" / str(audio["src"])).resolve() == project / "dist" / f"{TRACK}.mp3"


def test_inline_json_cannot_close_its_script_element() -> None:
    text = inline_json({"text": "</script><script>alert(1)</script> & \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text)["text"] == "</script><script>alert(1)</script> & \u2028"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("nothing.yaml", "no such file or folder"),
        ("scripts/_part.yaml", "a partial has no track; review a script that includes it"),
    ],
)
def test_what_is_not_a_track_is_named(project: Path, path: str, reason: str) -> None:
    (project / "scripts" / "_part.yaml").write_text("steps:\n  - say: Hi.\n", encoding="utf-8")
    result = run(path)
    assert result.exit_code == 1
    assert f"skipped  {path}: {reason}" in result.output


def test_without_chromium_the_browser_tests_skip_and_say_how_to_get_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "tests/test_review_browser.py"],
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "MEDITATE_TEST_CHROMIUM": "/nonexistent/chromium"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 5, done.stdout + done.stderr  # pytest's "no test ran"
    assert "`apt-get install chromium` to run them" in done.stdout
    assert "1 skipped" in done.stdout


def test_a_sidecar_from_before_sentences_were_recorded_still_has_a_page(project: Path) -> None:
    data = sidecar(project)
    del data["sentences"], data["qa"]
    reseal(project, data)
    assert run().exit_code == 0
    page = (project / "dist" / "review" / f"{TRACK}.html").read_text(encoding="utf-8")
    assert "lists no sentences" in page
    assert "`meditate build --force scripts/review-check.yaml` adds them" in page
    assert '"peaks":[' in page


@pytest.mark.parametrize(
    ("qa", "status", "counts"),
    [
        (None, "not checked", ""),
        ({"status": "ok", "counts": {"ok": 3, "warn": 0, "fail": 0}}, "ok", ""),
        ({"status": "warn", "counts": {"ok": 1, "warn": 2, "fail": 0}, "wer": 0.04}, "warn",
         "2 warn; WER 0.04"),
        ({"status": "fail", "counts": {"warn": 1, "fail": 1}}, "fail", "1 warn, 1 fail"),
        ({"status": "weird"}, "not checked", ""),
    ],
)
def test_qa_status_and_counts(qa: dict[str, Any] | None, status: str, counts: str) -> None:
    sidecar = {} if qa is None else {"qa": qa}
    assert (qa_status(sidecar), qa_counts(sidecar)) == (status, counts)


def test_a_long_track_keeps_a_bounded_loudness_curve(tmp_path: Path) -> None:
    from pipeline.core.ffmpeg import run_ffmpeg
    from pipeline.review.levels import LOUDNESS_POINTS, measure_levels

    audio = tmp_path / "long.flac"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=600:sample_rate=8000",
                "-af", "volume=0.5", str(audio)])  # fmt: skip
    levels = measure_levels(audio)
    assert levels.duration_s == pytest.approx(600.0, abs=0.01)
    assert len(levels.short_term_lufs) <= LOUDNESS_POINTS
    assert len(levels.short_term_lufs) * levels.loudness_step_s == pytest.approx(600, abs=1)
    assert levels.loudness_step_s == pytest.approx(0.5)
    peak = 0.125 * 0.5  # lavfi's sine is at 1/8 of full scale
    sine_lufs = -0.691 + 10 * math.log10(peak**2 / 2)  # BS.1770 of a mid-band sine
    assert max(levels.short_term_lufs) == pytest.approx(sine_lufs, abs=0.3)
    assert max(levels.peaks) == pytest.approx(peak, abs=0.002)


def test_progress_is_reported_per_track(project: Path) -> None:
    from pipeline.project.config import load_project
    from pipeline.review.site import review

    build_project(project, {"second.yaml": "title: Second\nsteps:\n  - say: Hello there.\n"})
    calls: list[tuple[int, int, str]] = []
    report = review(
        [project / "scripts"],
        load_project(start=project),
        progress=lambda done, total, text: calls.append((done, total, text)),
    )
    assert report.ok and report.decoded == 2
    assert calls == [(1, 2, TRACK), (2, 2, "second")]


def test_the_vendored_wavesurfer_is_the_one_its_note_names() -> None:
    import hashlib

    from pipeline.review.site import STATIC_SOURCE

    folder = STATIC_SOURCE / "wavesurfer"
    note = (folder / "VERSION").read_text(encoding="utf-8")
    assert note.startswith("wavesurfer.js 8.0.1 (BSD-3-Clause")
    for name in ("wavesurfer.min.js", "regions.min.js"):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert f"{name} {digest}" in " ".join(note.split())
    assert (folder / "LICENSE").read_text(encoding="utf-8").startswith("BSD 3-Clause License")
