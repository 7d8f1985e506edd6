"""Batch builds: incremental by build key, parallel, resumable, locked; check, prune, catalog."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import signal_when, start_meditate, tmpfs, write_project

from pipeline.build.keys import build_key
from pipeline.build.lock import build_lock
from pipeline.build.run import (
    BuildReport,
    build,
    check,
    parse_shard,
    rebuild_catalog,
    shard_scripts,
)
from pipeline.build.state import BUILT, FAILED, NOT_STARTED, UP_TO_DATE
from pipeline.cli import cli
from pipeline.core.errors import BuildError, ScriptError, UsageError
from pipeline.core.fileio import display_path
from pipeline.plan.checked import check_scripts
from pipeline.project.config import Project, load_project
from pipeline.speech.cache import SUFFIX, SpeechCache

CONFIG = "sample_rate: 16000\nchannels: 1\nformats: [wav]\ncache: cache\n"
BROKEN_CATALOG = """\
assets:
  broken:
    kind: bed
    file: broken.ogg
    licence: CC0-1.0
"""


def tiny(title: str, text: str = "Hello there.", pause_s: float = 1.0) -> str:
    """A script of one or two short sentences and a pause: a render of well under a second."""
    return f"title: {title}\nsteps:\n  - say: {text}\n  - pause: {pause_s}s\n"


def make_project(root: Path, scripts: dict[str, str], config: str = CONFIG) -> Project:
    return load_project(write_project(root, config, scripts) / "meditate.yaml")


def run_build(root: Path, **options: object) -> BuildReport:
    project = load_project(root / "meditate.yaml")
    return build([root / "scripts"], project, {}, **options)  # type: ignore[arg-type]


def statuses(report: BuildReport) -> dict[str, str]:
    return {track.track_id: track.status for track in report.tracks}


def sidecars(out: Path) -> list[dict[str, object]]:
    return [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(out.glob("*.json"))
        if path.name != "catalog.json"
    ]


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and mtime: to prove nothing was written."""
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def assert_complete_wav(path: Path) -> None:
    """The file holds exactly the frames its header declares (not truncated)."""
    with wave.open(str(path), "rb") as reader:
        frames = reader.getnframes()
        data = reader.readframes(frames)
        assert frames > 0
        assert len(data) == frames * reader.getsampwidth() * reader.getnchannels()


@pytest.fixture
def three(tmp_path: Path) -> Path:
    make_project(
        tmp_path,
        {
            "one.yaml": tiny("One", "Breathe in slowly."),
            "two.yaml": tiny("Two", "Let your shoulders drop. Rest here."),
            "sub/three.yaml": tiny("Three", "Notice the quiet."),
            "_parts/partial.yaml": "steps:\n  - say: Never built alone.\n",
        },
    )
    return tmp_path


def test_the_sidecar_lists_each_sentence_with_its_place_span_and_clip(three: Path) -> None:
    run_build(three)
    data = json.loads((three / "dist" / "two.json").read_text(encoding="utf-8"))
    sentences = data["sentences"]
    assert [entry["text"] for entry in sentences] == ["Let your shoulders drop.", "Rest here."]
    first, second = sentences
    assert first["place"] == second["place"] == "scripts/two.yaml:3:10"  # the say text
    assert 0 < first["start_s"] < first["end_s"] < second["start_s"] < second["end_s"]
    assert second["end_s"] <= data["duration_s"]
    cache = SpeechCache(three / "cache")
    for entry in sentences:
        clip = cache.get(entry["clip"])
        assert clip is not None
        assert entry["end_s"] - entry["start_s"] == pytest.approx(clip.size / 16000, abs=0.002)
    vtt = (three / "dist" / "two.vtt").read_text(encoding="utf-8")
    assert "00:00:0" in vtt and all(entry["text"] in vtt for entry in sentences)


def forbid_synthesis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any engine call fail loudly (worker processes are forked: they inherit it)."""
    from pipeline.engines.espeak import EspeakEngine

    def synthesize(*args: object) -> None:
        raise AssertionError("an engine was asked to synthesize")

    monkeypatch.setattr(EspeakEngine, "synthesize", synthesize)


def test_second_build_renders_nothing_and_catalog_matches_sidecars(
    three: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_build(three, jobs=2)
    assert statuses(first) == {"one": BUILT, "two": BUILT, "three": BUILT}
    assert first.ok and first.synthesized == 4 and first.jobs == 2
    forbid_synthesis(monkeypatch)
    second = run_build(three, jobs=2)
    assert statuses(second) == {"one": UP_TO_DATE, "two": UP_TO_DATE, "three": UP_TO_DATE}
    assert second.built == 0 and second.engine_calls == 0 and second.synthesized == 0
    out = three / "dist"
    catalog = json.loads((out / "catalog.json").read_text(encoding="utf-8"))
    assert [track["id"] for track in catalog["tracks"]] == ["one", "three", "two"]
    assert catalog["tracks"] == sidecars(out)
    assert catalog["generator"].startswith("meditation-pipeline ")
    for track in catalog["tracks"]:
        for entry in track["files"]:
            path = out / entry["path"]
            assert path.stat().st_size == entry["bytes"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
            assert_complete_wav(path)


def test_editing_one_sentence_rerenders_one_track_and_synthesizes_one_sentence(
    three: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_build(three, jobs=1)
    script = three / "scripts" / "two.yaml"
    script.write_text(tiny("Two", "Let your shoulders drop. Stay here."), encoding="utf-8")
    report = run_build(three, jobs=1)
    assert statuses(report) == {"one": UP_TO_DATE, "two": BUILT, "three": UP_TO_DATE}
    assert report.synthesized == 1 and report.engine_calls == 1
    assert report.with_status(BUILT)[0].reason == "inputs changed"
    forbid_synthesis(monkeypatch)
    forced = run_build(three, jobs=2, force=True)
    assert forced.built == 3 and forced.synthesized == 0
    assert {track.reason for track in forced.tracks} == {"forced"}


def test_a_changed_output_file_is_stale_and_verify_catches_same_size_damage(three: Path) -> None:
    run_build(three)
    project = load_project(three / "meditate.yaml")
    wav = three / "dist" / "one.wav"
    data = bytearray(wav.read_bytes())
    data[-10] ^= 0xFF  # same size, different bytes
    wav.write_bytes(bytes(data))
    assert check([three / "scripts"], project).ok  # sizes only: cheap
    deep = check([three / "scripts"], project, verify=True)
    assert [(t.track_id, t.reason) for t in deep.stale] == [
        ("one", "one.wav: content differs from the sidecar's sha256")
    ]
    wav.write_bytes(bytes(data[:-100]))
    report = check([three / "scripts"], project)
    assert [t.track_id for t in report.stale] == ["one"]
    assert "bytes, sidecar says" in report.stale[0].reason
    rebuilt = run_build(three)
    assert statuses(rebuilt)["one"] == BUILT and rebuilt.synthesized == 0
    assert check([three / "scripts"], project, verify=True).ok


def test_engine_flag_changes_the_key(three: Path) -> None:
    run_build(three)
    project = load_project(three / "meditate.yaml")
    assert check([three / "scripts"], project, {"voice.engine": "espeak"}).ok
    assert not check([three / "scripts"], project, {"sample_rate": 22050}).ok


def keys_of(root: Path) -> dict[str, str]:
    project = load_project(root / "meditate.yaml")
    return {item.script.id: build_key(item) for item in check_scripts([root / "scripts"], project)}


def test_build_keys_follow_content_not_time_or_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "a"
    make_project(
        root,
        {
            "bed.yaml": tiny("Bed") + "background: {asset: soft, fade_out: 1s}\n",
            "inc.yaml": tiny("Inc") + "  - include: _parts/end.yaml\n",
            "_parts/end.yaml": "steps:\n  - say: The end.\n",
        },
    )
    assets = root / "audio_assets"
    assets.mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "audio_assets" / "rain.ogg", assets / "s.ogg")
    catalog = "assets:\n  soft: {kind: bed, file: s.ogg, level_db: 0}\n"
    (assets / "catalog.yaml").write_text(catalog, encoding="utf-8")
    base = keys_of(root)
    moved = tmp_path / "elsewhere" / "b"
    shutil.copytree(root, moved)
    assert keys_of(moved) == base  # another checkout folder: same keys
    for path in root.rglob("*.yaml"):
        os.utime(path, (1, 1))  # timestamps alone change nothing
    assert keys_of(root) == base

    def changed(edit: object) -> set[str]:
        keys = keys_of(root)
        return {track_id for track_id in keys if keys[track_id] != base[track_id]}

    (root / "scripts" / "_parts" / "end.yaml").write_text(
        "steps:\n  - say: The very end.\n", encoding="utf-8"
    )
    assert changed("include") == {"inc"}
    (root / "scripts" / "_parts" / "end.yaml").write_text(
        "steps:\n  - say: The end.\n", encoding="utf-8"
    )
    (assets / "catalog.yaml").write_text(catalog.replace("0}", "-3}"), encoding="utf-8")
    assert changed("asset level") == {"bed"}
    (assets / "catalog.yaml").write_text(catalog, encoding="utf-8")
    (assets / "s.ogg").write_bytes((assets / "s.ogg").read_bytes()[:-1000])
    assert changed("asset bytes") == {"bed"}
    shutil.copy(Path(__file__).resolve().parents[1] / "audio_assets" / "rain.ogg", assets / "s.ogg")
    assert keys_of(root) == base
    monkeypatch.setenv("MEDITATE_RATE", "0.9")
    assert changed("environment") == {"bed", "inc"}


def broken_bed_project(root: Path) -> Path:
    """Three scripts; the longest is valid but fails to render: its gtts voice is served by an
    endpoint that refuses connections (a bad asset file is caught by validation now).
    """
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    make_project(
        root,
        {
            "a.yaml": tiny("A"),
            "b.yaml": tiny("B"),
            "c-broken.yaml": tiny("C", "This one has a broken voice.", 3.0)
            + "voice: {engine: gtts}\n",
        },
        CONFIG + f"gtts: {{endpoint: 'http://127.0.0.1:{port}', tries: 1}}\n",
    )
    return root


def test_a_failure_stops_the_build_without_keep_going(tmp_path: Path) -> None:
    root = broken_bed_project(tmp_path)
    report = run_build(root, jobs=1)
    assert statuses(report) == {"a": NOT_STARTED, "b": NOT_STARTED, "c-broken": FAILED}
    assert not report.ok
    error = report.with_status(FAILED)[0].error
    assert "broken" in error and "Traceback" not in error
    assert sorted(p.name for p in (root / "dist").iterdir()) == ["catalog.json"]
    result = CliRunner().invoke(cli, ["build", str(root / "scripts"), "-j", "1"])
    assert result.exit_code == 1
    assert "not started  2" in result.output and "FAILED c-broken" in result.output


def test_keep_going_renders_the_rest(tmp_path: Path) -> None:
    root = broken_bed_project(tmp_path)
    report = run_build(root, jobs=2, keep_going=True)
    assert statuses(report) == {"a": BUILT, "b": BUILT, "c-broken": FAILED}
    assert report.catalog_tracks == 2
    result = CliRunner().invoke(cli, ["build", str(root / "scripts"), "--keep-going"])
    assert result.exit_code == 1
    assert "up to date   2" in result.output and "failed       1" in result.output


def test_invalid_or_duplicate_scripts_render_nothing_and_name_both_files(tmp_path: Path) -> None:
    root = tmp_path
    project = make_project(
        root,
        {
            "a.yaml": tiny("A"),
            "calm/same.yaml": "id: same\n" + tiny("First"),
            "sleep/same.yaml": "id: same\n" + tiny("Second"),
            "z.yaml": "title: Z\nsteps:\n  - pause: ten\n",
        },
    )
    with pytest.raises(ScriptError) as caught:
        build([root / "scripts"], project, {})
    message = str(caught.value)
    assert "duplicate id 'same'" in message
    assert "calm/same.yaml" in message and "sleep/same.yaml" in message
    assert "z.yaml:3:" in message and "steps[0].pause" in message
    assert not (root / "dist").exists() and not (root / "cache").exists()
    result = CliRunner().invoke(cli, ["check", str(root / "scripts")])
    assert result.exit_code == 1 and "duplicate id 'same'" in result.output


def test_shards_are_disjoint_complete_deterministic_and_balanced(tmp_path: Path) -> None:
    lengths = [3, 40, 5, 12, 25, 8, 30, 2, 17]
    project = make_project(
        tmp_path, {f"s{n}.yaml": tiny(f"S{n}", "Hi.", float(n)) for n in lengths}
    )
    checked = check_scripts([tmp_path / "scripts"], project)
    for count in (1, 2, 3, 4):
        shards = [
            [item.script.id for item in shard_scripts(checked, index, count)]
            for index in range(1, count + 1)
        ]
        again = [
            [item.script.id for item in shard_scripts(list(reversed(checked)), index, count)]
            for index in range(1, count + 1)
        ]
        assert shards == again
        flat = [track_id for shard in shards for track_id in shard]
        assert sorted(flat) == sorted(f"s{n}" for n in lengths)
        assert len(flat) == len(set(flat))
        loads = [sum(int(track_id[1:]) for track_id in shard) for shard in shards]
        assert max(loads) - min(loads) <= max(lengths)
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "3", "a/b", "1/0"):
        with pytest.raises(UsageError, match="--shard"):
            parse_shard(bad)


def test_shard_outputs_merge_into_one_catalog(three: Path) -> None:
    first = run_build(three, shard=(1, 2), output_dir=three / "out1")
    second = run_build(three, shard=(2, 2), output_dir=three / "out2")
    ids1, ids2 = statuses(first), statuses(second)
    assert not set(ids1) & set(ids2) and len(ids1) + len(ids2) == 3
    merged = three / "merged"
    merged.mkdir()
    for folder in ("out1", "out2"):
        for path in (three / folder).iterdir():
            if not path.name.startswith("."):
                shutil.copy2(path, merged / path.name)
    config = str(three / "meditate.yaml")
    result = CliRunner().invoke(
        cli, ["--config", config, "build", "--catalog-only", "-o", str(merged)]
    )
    assert result.exit_code == 0, result.output
    assert "(3 track(s))" in result.output
    catalog = json.loads((merged / "catalog.json").read_text(encoding="utf-8"))
    assert [track["id"] for track in catalog["tracks"]] == ["one", "three", "two"]
    assert catalog["tracks"] == sidecars(merged)
    project = load_project(three / "meditate.yaml")
    assert check([three / "scripts"], project, output_dir=merged).ok
    with pytest.raises(BuildError, match="no such output folder"):
        rebuild_catalog(project, output_dir=three / "nowhere")


def test_check_lists_missing_stale_orphaned_and_writes_nothing(
    three: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = load_project(three / "meditate.yaml")
    before = tree(three)
    report = check([three / "scripts"], project)
    assert [t.track_id for t in report.missing] == ["one", "three", "two"]
    assert tree(three) == before  # no output folder, no cache, no stats
    run_build(three)
    (three / "scripts" / "one.yaml").write_text(tiny("One", "Breathe out."), encoding="utf-8")
    (three / "scripts" / "sub" / "three.yaml").unlink()
    (three / "scripts" / "four.yaml").write_text(tiny("Four"), encoding="utf-8")
    forbid_synthesis(monkeypatch)
    before = tree(three)
    report = check([three / "scripts"], project)
    assert tree(three) == before
    assert [(t.track_id, t.reason) for t in report.stale] == [("one", "inputs changed")]
    assert [t.track_id for t in report.missing] == ["four"]
    assert [(o.track_id, o.source) for o in report.orphans] == [("three", "scripts/sub/three.yaml")]
    assert not report.ok
    result = CliRunner().invoke(cli, ["check", str(three / "scripts")])
    assert result.exit_code == 1
    assert "stale     one" in result.output and "missing   four" in result.output
    assert "orphaned  three" in result.output
    assert "3 track(s): 1 up to date, 1 missing, 1 stale; 1 orphaned" in result.output
    as_json = CliRunner().invoke(cli, ["check", "--format", "json", str(three / "scripts")])
    payload = json.loads(as_json.output)
    assert payload["ok"] is False and payload["orphans"][0]["id"] == "three"
    # a check of one folder or file does not call the others' outputs orphans, only the gone
    for part in (three / "scripts" / "sub", three / "scripts" / "one.yaml"):
        assert [o.track_id for o in check([part], project).orphans] == ["three"]


def test_prune_removes_orphaned_outputs_only(three: Path) -> None:
    run_build(three)
    out = three / "dist"
    (three / "scripts" / "sub" / "three.yaml").rename(three / "scripts" / "sub" / "tres.yaml")
    kept = run_build(three)
    assert [o.track_id for o in kept.orphans] == ["three"] and not kept.pruned
    assert (out / "three.wav").exists()
    pruned = run_build(three, prune=True)
    assert sorted(p.name for p in pruned.pruned) == ["three.json", "three.vtt", "three.wav"]
    assert not list(out.glob("three.*"))
    assert {p.name for p in out.glob("*.wav")} == {"one.wav", "two.wav", "tres.wav"}
    assert pruned.catalog_tracks == 3
    assert check([three / "scripts"], load_project(three / "meditate.yaml")).ok


def test_a_second_build_on_the_same_folder_stops_or_waits(three: Path) -> None:
    out = three / "dist"
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with build_lock(out):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(5)
        with pytest.raises(BuildError) as caught:
            run_build(three)
        shown = display_path(out)
        assert str(caught.value) == (
            f"{shown}: error: another build is running on {shown} (pid {os.getpid()}); "
            "let it finish, or pass --wait to wait for it"
        )
        assert not list(out.glob("*.wav"))
        threading.Timer(0.5, release.set).start()
        started = time.monotonic()
        report = run_build(three, wait_s=20.0)
        assert report.built == 3 and time.monotonic() - started >= 0.4
    finally:
        release.set()
        holder.join()


def test_a_corrupt_cache_entry_is_detected_and_redone(three: Path) -> None:
    first = run_build(three)
    assert first.synthesized == 4
    out = three / "dist"
    before = (out / "one.wav").read_bytes()
    cache = SpeechCache(three / "cache")
    entries = sorted(cache.root.glob(f"*/*{SUFFIX}"))
    assert len(entries) == 4
    for entry in entries:  # truncate every entry: whichever belongs to 'one' is hit
        entry.write_bytes(entry.read_bytes()[:-200])
    report = run_build(three, force=True, jobs=2)
    assert report.built == 3 and report.synthesized == 4
    assert (out / "one.wav").read_bytes() == before  # deterministic: same PCM, same file
    keys = list(cache.keys())
    assert len(keys) == 4 and all(cache.verify(key) for key in keys)


def test_build_and_check_commands(three: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(three)
    runner = CliRunner()
    result = runner.invoke(cli, ["build", "-j", "2"])
    assert result.exit_code == 0, result.output
    assert "built        3" in result.output and "catalog" in result.output
    assert "built one" in result.output  # one line per track when stderr is not a terminal
    assert runner.invoke(cli, ["check"]).exit_code == 0
    again = runner.invoke(cli, ["build"])
    assert "up to date   3" in again.output and "built one" not in again.output
    assert runner.invoke(cli, ["build", "--shard", "3/2"]).exit_code == 2
    assert runner.invoke(cli, ["build", "--wait", "soon"]).exit_code == 2
    for command in ("build", "check"):
        assert runner.invoke(cli, [command, "--help"]).exit_code == 0


@pytest.mark.slow
def test_sigkill_mid_build_leaves_no_truncated_file_and_resumes(tmp_path: Path) -> None:
    root = tmp_path
    make_project(root, {f"k{n}.yaml": tiny(f"K{n}", "Rest now.", 25.0) for n in range(6)})
    out = root / "dist"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "build", "-j", "2"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            names = [p.name for p in out.glob("*")] if out.is_dir() else []
            if any(n.endswith(".json") and n != "catalog.json" for n in names) and any(
                ".tmp-" in n for n in names
            ):
                break
            assert process.poll() is None, "the build finished before it could be killed"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(10)
    assert process.returncode == -signal.SIGKILL
    time.sleep(0.3)  # orphaned ffmpeg processes see the end of their input and exit
    for sidecar in sidecars(out):
        for entry in sidecar["files"]:  # type: ignore[union-attr]
            assert (out / entry["path"]).stat().st_size == entry["bytes"]
    for wav in out.glob("*.wav"):  # final names only: complete or absent
        assert_complete_wav(wav)
    assert not (out / "catalog.json").exists()
    done_before = len(sidecars(out))
    assert 1 <= done_before < 6
    report = run_build(root, jobs=2)  # the lock died with the build
    assert report.ok and report.up_to_date == done_before and report.built == 6 - done_before
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]  # encoder temporaries
    writes = [p for p in out.iterdir() if p.name.endswith(".tmp")]  # a killed sidecar write
    assert all(p.name.startswith(".") for p in writes)
    for path in writes:  # removed once surely abandoned (a concurrent render may own a new one)
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    assert run_build(root).built == 0
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]
    for sidecar in sidecars(out):
        for entry in sidecar["files"]:  # type: ignore[union-attr]
            path = out / entry["path"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
            assert_complete_wav(path)
    assert check([root / "scripts"], load_project(root / "meditate.yaml")).ok


@pytest.fixture
def tiny_disk(tmp_path: Path) -> object:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with tmpfs(tmp_path / "disk", "size=200k") as mount:
        yield mount


def test_a_full_disk_fails_clearly_leaves_nothing_partial_and_keeps_the_cache(
    tmp_path: Path, tiny_disk: Path
) -> None:
    root = tmp_path / "project"
    make_project(root, {"long.yaml": tiny("Long", "This track is too big.", 12.0)})
    report = run_build(root, output_dir=tiny_disk)
    assert statuses(report) == {"long": FAILED}
    error = report.with_status(FAILED)[0].error
    assert error.startswith("disk full while encoding") and "long.wav" in error
    names = sorted(p.name for p in tiny_disk.iterdir())
    assert names == ["catalog.json"]
    cache = SpeechCache(root / "cache")
    keys = list(cache.keys())
    assert len(keys) == 1 and all(cache.verify(key) for key in keys)
    result = CliRunner().invoke(cli, ["build", str(root / "scripts"), "-o", str(tiny_disk)])
    assert result.exit_code == 1 and "disk full" in result.output


def test_ids_that_collide_with_the_projects_own_files_are_refused_at_their_place(
    tmp_path: Path,
) -> None:
    project = make_project(
        tmp_path,
        {
            "a.yaml": "title: A\nid: catalog\nsteps:\n  - say: Hi.\n",
            "catalog.yml": tiny("From the file name"),
            "nul.yaml": tiny("A Windows device name"),
            "one.yaml": tiny("One"),
            "sleep/b.yaml": "title: B\nid: one\nsteps:\n  - say: Hi.\n",
        },
    )
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "scripts")])
    assert result.exit_code == 1
    shown = display_path(tmp_path / "scripts")
    assert (
        f"{shown}/a.yaml:2:5: error: id: 'catalog' is reserved: the build writes its own "
        "catalog.json into the output folder; choose another id"
    ) in result.output
    assert (
        f"{shown}/catalog.yml:1:1: error: id: the file name gives the id 'catalog', which is "
        "reserved: the build writes its own catalog.json into the output folder; "
        "rename the file or set 'id:'"
    ) in result.output
    assert f"{shown}/nul.yaml:1:1: error: id: the file name gives the id 'nul'" in result.output
    assert "Windows" in result.output
    # the same id twice: the second is reported at its own id, naming the first file
    assert (
        f"{shown}/sleep/b.yaml:2:5: error: id: duplicate id 'one', also used by {shown}/one.yaml"
    ) in result.output
    with pytest.raises(ScriptError, match="reserved"):
        from pipeline.build.render import render_script

        render_script(tmp_path / "scripts" / "a.yaml", project, output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_ids_cannot_differ_only_by_case(tmp_path: Path) -> None:
    """Stores that ignore case would give both the same files: ids are lowercase only."""
    make_project(
        tmp_path,
        {
            "calm.yaml": tiny("Calm"),
            "x.yaml": "title: X\nid: Calm\nsteps:\n  - say: Hi.\n",
            "Calm.yaml": tiny("Calm again"),
        },
    )
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "scripts")])
    assert result.exit_code == 1
    assert "x.yaml:2:5: error: id: ids use lowercase letters" in result.output
    assert "Calm.yaml:1:1: error: id: the file name 'Calm' is not a valid id" in result.output


def test_the_catalog_lists_only_tracks_whose_script_still_exists(three: Path) -> None:
    run_build(three)
    out = three / "dist"
    (three / "scripts" / "sub" / "three.yaml").rename(three / "scripts" / "sub" / "tres.yaml")
    result = CliRunner().invoke(cli, ["build", str(three / "scripts")])
    assert result.exit_code == 0, result.output
    assert "orphaned     three (script gone; --prune removes them)" in result.output
    catalog = json.loads((out / "catalog.json").read_text(encoding="utf-8"))
    assert [track["id"] for track in catalog["tracks"]] == ["one", "tres", "two"]
    assert (out / "three.wav").exists()  # reported, kept until --prune
    # a build of one folder keeps the tracks of the others (their scripts exist)
    assert run_build(three, jobs=1).catalog_tracks == 3
    project = load_project(three / "meditate.yaml")
    build([three / "scripts" / "sub"], project, {})
    catalog = json.loads((out / "catalog.json").read_text(encoding="utf-8"))
    assert [track["id"] for track in catalog["tracks"]] == ["one", "tres", "two"]
    # rebuilding the catalog from the sidecars alone leaves out those whose script is gone
    rebuilt = rebuild_catalog(project)
    assert rebuilt.tracks == 3 and any("three.json" in text for text in rebuilt.skipped)
    catalog = json.loads((out / "catalog.json").read_text(encoding="utf-8"))
    assert [track["id"] for track in catalog["tracks"]] == ["one", "tres", "two"]
    pruned = CliRunner().invoke(cli, ["build", "--prune", str(three / "scripts")])
    assert pruned.exit_code == 0 and "pruned       3 file(s) of 1 orphan(s)" in pruned.output
    assert check([three / "scripts"], project).ok


def test_a_hand_edited_sidecar_is_stale_with_its_reason(tmp_path: Path) -> None:
    text = "title: Calm\nsteps:\n  - section: Arriving\n  - say: Hello.\n  - section: Rest\n"
    project = make_project(tmp_path, {"calm.yaml": text + "  - say: Rest now.\n"})
    run_build(tmp_path)
    sidecar_path = tmp_path / "dist" / "calm.json"
    original = sidecar_path.read_text(encoding="utf-8")

    def edited(change: object) -> list[tuple[str, str]]:
        data = json.loads(original)
        change(data)  # type: ignore[operator]
        sidecar_path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        deep = check([tmp_path / "scripts"], project, verify=True)
        assert [t.track_id for t in check([tmp_path / "scripts"], project).stale] == ["calm"]
        return [(t.track_id, t.reason) for t in deep.stale]

    assert edited(lambda data: data.update(title="Calmer")) == [
        ("calm", "calm.json: title is 'Calmer', the script says 'Calm' (edited by hand?)")
    ]
    edited_by_hand = "calm.json: its content does not match its sidecar_sha256 (edited by hand?)"
    assert edited(lambda data: data["chapters"][1].update(start_s=99.0)) == [
        ("calm", edited_by_hand)
    ]
    assert edited(lambda data: data.update(duration_s=600.0)) == [("calm", edited_by_hand)]
    result = CliRunner().invoke(cli, ["check", "--verify", str(tmp_path / "scripts")])
    assert result.exit_code == 1 and "stale     calm  " in result.output
    assert edited_by_hand in result.output
    # a sidecar from before the seal is still up to date (its script's fields are checked)
    sidecar_path.write_text(original, encoding="utf-8")
    assert check([tmp_path / "scripts"], project, verify=True).ok
    unsealed = json.loads(original)
    del unsealed["sidecar_sha256"]
    sidecar_path.write_text(json.dumps(unsealed, indent=2), encoding="utf-8")
    assert check([tmp_path / "scripts"], project, verify=True).ok
    unsealed["title"] = "Calmer"
    sidecar_path.write_text(json.dumps(unsealed, indent=2), encoding="utf-8")
    assert not check([tmp_path / "scripts"], project, verify=True).ok
    # the catalog never lists a sidecar whose content broke its seal; a build redoes it
    sidecar_path.write_text(original.replace('"start_s": 0.0', '"start_s": 1.0'), "utf-8")
    assert write_catalog_tracks(tmp_path / "dist") == []
    report = run_build(tmp_path)
    assert statuses(report) == {"calm": BUILT} and report.catalog_tracks == 1
    assert sidecar_path.read_text(encoding="utf-8") == original


def write_catalog_tracks(out: Path) -> list[str]:
    from pipeline.build.state import write_catalog

    write_catalog(out)
    catalog = json.loads((out / "catalog.json").read_text(encoding="utf-8"))
    return [track["id"] for track in catalog["tracks"]]


# --- lost workers, interruptions ---------------------------------------------------------------


def encoding(process: subprocess.Popen[str], out: Path, track_id: str, other_than: int = 0) -> int:
    """The pid of the process encoding ``track_id`` (once its temporary has grown)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, "the build ended before it was caught encoding"
        for path in out.glob(f".{track_id}.wav.tmp-*") if out.is_dir() else []:
            pid = int(path.name.rsplit("-", 1)[1])
            with contextlib.suppress(FileNotFoundError):
                if pid != other_than and path.stat().st_size > 10_000:
                    return pid
        time.sleep(0.005)
    raise AssertionError(f"{track_id} was never seen encoding")


def five_long_tracks(root: Path) -> Path:
    """Five tracks of five minutes (16 kHz mono wav: a few seconds each to render)."""
    make_project(root, {f"k{n}.yaml": tiny(f"K{n}", f"Rest now, {n}.", 300.0) for n in range(5)})
    return root / "dist"


def hidden(out: Path) -> list[str]:
    """Hidden files in the output folder: temporaries and the lock (none once a build ends)."""
    return sorted(path.name for path in out.iterdir() if path.name.startswith("."))


@pytest.mark.slow
def test_a_killed_worker_costs_one_try_of_its_track_and_the_build_goes_on(tmp_path: Path) -> None:
    out = five_long_tracks(tmp_path)
    process = start_meditate(tmp_path, "build", "-j", "2", "--keep-going")
    try:
        victim = encoding(process, out, "k0")
        encoding(process, out, "k1")  # the other worker is busy too: it must not suffer
        os.kill(victim, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "RETRY k0: the process rendering it died (killed by SIGKILL)" in stderr
    assert "RETRY k1" not in stderr and "FAILED" not in stderr
    assert "built        5" in stdout and "failed       0" in stdout, stdout
    assert "retried      1" in stdout and "not started" not in stdout
    assert hidden(out) == []  # the dead worker's temporaries went with it
    assert json.loads((out / "catalog.json").read_text())["tracks"][0]["id"] == "k0"
    assert len(sidecars(out)) == 5
    assert check([tmp_path / "scripts"], load_project(tmp_path / "meditate.yaml")).ok


@pytest.mark.slow
@pytest.mark.parametrize("keep_going", [True, False])
def test_a_track_whose_worker_dies_twice_fails_alone_and_clearly(
    tmp_path: Path, keep_going: bool
) -> None:
    out = five_long_tracks(tmp_path)
    process = start_meditate(tmp_path, "build", "-j", "2", *(["--keep-going"] * keep_going))
    try:
        first = encoding(process, out, "k0")
        os.kill(first, signal.SIGKILL)
        os.kill(encoding(process, out, "k0", other_than=first), signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 1, stderr
    assert "FAILED k0" in stderr and "Traceback" not in stderr
    died = "scripts/k0.yaml: error: the process rendering it died twice (killed by SIGKILL; "
    assert died + "probable cause: the machine ran out of memory, or it was killed by hand)" in (
        stderr
    )
    assert "failed       1" in stdout and "failed: k0" in stderr
    assert hidden(out) == []
    listed = [track["id"] for track in json.loads((out / "catalog.json").read_text())["tracks"]]
    assert "k0" not in listed
    if keep_going:
        assert listed == ["k1", "k2", "k3", "k4"] and "built        4" in stdout
    else:
        assert "not started" in stdout and "k1" in listed  # it was running: it finished


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "sent", "to_group", "status", "said"),
    [
        (["build", "-j", "1"], signal.SIGINT, True, 130, "interrupted"),
        (["build", "-j", "2"], signal.SIGINT, True, 130, "interrupted"),
        (["build", "-j", "2"], signal.SIGTERM, False, 143, "terminated"),
        (["build", "-j", "2"], signal.SIGHUP, True, 129, "terminated"),
    ],
    ids=["ctrl-c-j1", "ctrl-c-j2", "sigterm-j2", "hang-up-j2"],
)
def test_an_interrupted_build_says_so_and_leaves_no_temporary_lock_or_process(
    tmp_path: Path,
    command: list[str],
    sent: signal.Signals,
    to_group: bool,
    status: int,
    said: str,
) -> None:
    """Ctrl-C and a closed terminal reach the whole foreground group; a CI runner may TERM it."""
    out = five_long_tracks(tmp_path)
    process = start_meditate(tmp_path, *command)
    stderr = signal_when(
        process, lambda: encoding(process, out, "k0"), "encoding", sent, to_group=to_group
    )
    assert process.returncode == status, stderr
    assert stderr.splitlines()[-1] == said, stderr
    assert "FAILED" not in stderr and "ffmpeg" not in stderr and "Traceback" not in stderr
    assert hidden(out) == []  # no temporary, no lock file
    assert not (out / "catalog.json").exists()
    time.sleep(0.3)
    with pytest.raises(ProcessLookupError):  # every worker has ended
        os.killpg(process.pid, 0)
    assert running_with(str(out)) == []  # and every ffmpeg


def running_with(text: str) -> list[int]:
    """Pids of the processes whose command line mentions ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_an_interrupted_speak_says_so_and_leaves_no_temporary(tmp_path: Path) -> None:
    sentences = "".join(f"  - say: Sentence {n} is spoken slowly here.\n" for n in range(300))
    make_project(tmp_path, {"many.yaml": f"title: Many\nsteps:\n{sentences}"})
    process = start_meditate(tmp_path, "speak")
    cache = tmp_path / "cache"
    stderr = signal_when(process, lambda: len(list(cache.rglob(f"*{SUFFIX}"))) >= 3, "speaking")
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "interrupted" and "Traceback" not in stderr
    assert [path for path in cache.rglob("*") if ".tmp" in path.name] == []
    assert SpeechCache(cache).info().entries < 300
