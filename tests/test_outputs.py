"""Captions, sidecar and catalog: formats checked field by field."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

import pipeline
from pipeline.build.outputs import (
    GENERATOR,
    MAX_CUE_CHARS,
    caption_pieces,
    captions_vtt,
    catalog,
    file_info,
    sha256_file,
    sidecar,
    sidecar_digest,
    vtt_timestamp,
    write_json_atomic,
)
from pipeline.core.errors import Place
from pipeline.plan.timeline import BreathPhaseCue, Chapter, PauseCue, SoundCue, SpeechCue, Timeline
from pipeline.project.settings import BackgroundSettings, VoiceSettings
from pipeline.script.model import Script

PLACE = Place(Path("scripts/calm.yaml"))
VOICE = VoiceSettings(engine="espeak", name="en-us", language="en", rate=0.9)
CUE_RE = re.compile(
    r"^(\d+)\n(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+)$", re.M
)
SIDECAR_KEYS = {
    "id", "title", "description", "author", "language", "category", "tags", "duration_s",
    "loudness", "chapters", "captions", "files", "voice", "source", "build_key", "generator",
}  # fmt: skip


def speech(start_s: float, length_s: float, text: str, breathing: bool = False) -> SpeechCue:
    return SpeechCue(start_s, length_s, text, VOICE, "", PLACE, False, breathing)


def sample_timeline() -> Timeline:
    cues = (
        SoundCue(0.0, "bowl", 0.0, 4.0, "Arriving", PLACE),
        speech(4.0, 2.3456, "Welcome. <You> & me -> here."),
        PauseCue(6.3456, 3.0, False, "Arriving", PLACE),
        speech(9.3456, 1.0004, "Notice\nyour breath."),
        BreathPhaseCue(12.0, 4.0, "in", 1, "Breathing", PLACE),
        speech(12.0, 0.9, "Breathe in", breathing=True),
        speech(3725.5, 1.25, "Goodbye."),
    )
    chapters = (Chapter("Arriving", 0.0), Chapter("Breathing --> deep", 12.0))
    background = BackgroundSettings("rain")
    return Timeline(cues, chapters, 3730.0, 3730.0, None, background)


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def test_vtt_has_one_timed_cue_per_sentence() -> None:
    line = sample_timeline()
    text = captions_vtt(line, title="Calm Breathing")
    assert text.startswith("WEBVTT\n\n")
    found = CUE_RE.findall(text)
    spoken = [cue for cue in line.cues if isinstance(cue, SpeechCue)]
    assert len(found) == len(spoken) == 4
    for match, cue in zip(found, spoken, strict=True):
        start_s = seconds(*match[1:5])
        end_s = seconds(*match[5:9])
        assert abs(start_s - cue.start_s) <= 0.0005
        assert abs(end_s - (cue.start_s + cue.length_s)) <= 0.0005
    assert found[0][9] == "Welcome. &lt;You&gt; &amp; me -&gt; here."
    assert found[1][9] == "Notice your breath."
    assert found[2][9] == "Breathe in"
    assert "01:02:05.500 --> 01:02:06.750" in text
    assert text.count("-->") == 4
    assert "Chapter 00:00:12.000 Breathing -> deep" in text
    assert "\n\n\n" not in text


def test_vtt_of_a_timeline_without_speech_is_just_the_header() -> None:
    line = Timeline((), (), 10.0, 10.0, None, None)
    assert captions_vtt(line) == "WEBVTT\n"


@pytest.mark.parametrize(
    ("time_s", "expected"),
    [(0.0, "00:00:00.000"), (1.0005, "00:00:01.000"), (59.9996, "00:01:00.000"),
     (3599.999, "00:59:59.999"), (36000.0, "10:00:00.000")],
)  # fmt: skip
def test_vtt_timestamps(time_s: float, expected: str) -> None:
    assert vtt_timestamp(time_s) == expected


def test_file_info_hashes_in_chunks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 9000
    path = tmp_path / "out" / "calm.mp3"
    path.parent.mkdir()
    path.write_bytes(data)
    info = file_info(path, "mp3", 44100, 2, "128k")
    assert info == {
        "format": "mp3",
        "path": "calm.mp3",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "sample_rate": 44100,
        "channels": 2,
        "bitrate": "128k",
    }
    assert file_info(path, "mp3", 44100, 2, None, output_dir=tmp_path)["path"] == "out/calm.mp3"


def make_sidecar(
    tmp_path: Path, track_id: str = "calm", voice: VoiceSettings = VOICE
) -> dict[str, object]:
    root = tmp_path
    source = root / "scripts" / "anxiety" / f"{track_id}.yaml"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text("title: Calm\n", encoding="utf-8")
    script = Script(
        path=source,
        id=track_id,
        title="Calm Breathing",
        description="A short practice.",
        author="Team",
        category="anxiety",
        tags=("breathing", "beginner"),
    )
    audio = root / "dist" / f"{track_id}.mp3"
    audio.parent.mkdir(exist_ok=True)
    audio.write_bytes(b"ID3" + bytes(1000))
    return sidecar(
        script,
        sample_timeline(),
        files=[file_info(audio, "mp3", 44100, 2, "128k")],
        integrated_lufs=-16.04,
        true_peak_dbtp=-1.432,
        loudness_range_lu=3.21,
        voice=voice,
        engine_version="1.52.0",
        source_sha256=sha256_file(source),
        build_key="k" * 64,
        root=root,
    )


def test_sidecar_has_every_spec_field(tmp_path: Path) -> None:
    data = make_sidecar(tmp_path)
    assert set(data) == SIDECAR_KEYS | {"sentences", "sidecar_sha256"}  # extensions; seal last
    assert list(data)[-1] == "sidecar_sha256"
    assert data["id"] == "calm"
    assert data["language"] == "en"
    assert data["tags"] == ["breathing", "beginner"]
    assert data["duration_s"] == 3730.0
    assert data["loudness"] == {
        "integrated_lufs": -16.04,
        "true_peak_dbtp": -1.43,
        "loudness_range_lu": 3.21,
    }
    assert data["chapters"] == [
        {"title": "Arriving", "start_s": 0.0},
        {"title": "Breathing --> deep", "start_s": 12.0},
    ]
    assert data["captions"] == "calm.vtt"
    files = data["files"]
    assert isinstance(files, list) and files[0]["path"] == "calm.mp3"
    assert set(files[0]) == {"format", "path", "bytes", "sha256", "sample_rate", "channels",
                             "bitrate"}  # fmt: skip
    assert data["voice"] == {
        "engine": "espeak",
        "engine_version": "1.52.0",
        "name": "en-us",
        "rate": 0.9,
    }
    source = data["source"]
    assert isinstance(source, dict)
    assert source["path"] == "scripts/anxiety/calm.yaml"
    assert source["sha256"] == hashlib.sha256(b"title: Calm\n").hexdigest()
    assert data["generator"] == f"meditation-pipeline {pipeline.__version__}"
    assert json.loads(json.dumps(data)) == data


def test_catalog_sorts_tracks_and_json_is_written_atomically(tmp_path: Path) -> None:
    tracks = [make_sidecar(tmp_path, name) for name in ("zen", "alpha", "mid")]
    data = catalog(tracks)
    assert data["generator"] == GENERATOR
    assert [track["id"] for track in data["tracks"]] == ["alpha", "mid", "zen"]
    target = tmp_path / "dist" / "catalog.json"
    write_json_atomic(target, data)
    assert json.loads(target.read_text(encoding="utf-8")) == data
    assert [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_sidecar_voice_name_falls_back_to_the_language(tmp_path: Path) -> None:
    unnamed = VoiceSettings(engine="espeak", name="", language="de", rate=1.0)
    voice = make_sidecar(tmp_path, voice=unnamed)["voice"]
    assert isinstance(voice, dict) and voice["name"] == "de"


def test_the_seal_covers_every_field_and_survives_a_round_trip(tmp_path: Path) -> None:
    data = make_sidecar(tmp_path)
    target = tmp_path / "calm.json"
    write_json_atomic(target, data)
    read = json.loads(target.read_text(encoding="utf-8"))
    assert read["sidecar_sha256"] == sidecar_digest(read) == sidecar_digest(data)
    for change in ({"title": "Calmer"}, {"duration_s": 3731.0}, {"chapters": []}):
        assert sidecar_digest({**read, **change}) != read["sidecar_sha256"]


def test_a_long_sentence_is_split_into_cues_at_clause_boundaries() -> None:
    text = (
        "Let your shoulders drop, let your jaw soften; and as the breath slows down - "
        "little by little - notice how the whole body begins to rest."
    )
    assert caption_pieces(text) == [
        "Let your shoulders drop, let your jaw soften; and as the breath slows down -",
        "little by little - notice how the whole body begins to rest.",
    ]
    assert caption_pieces("Short and sweet, this one.") == ["Short and sweet, this one."]
    # no clause boundary: at words; one absurdly long word: in pieces
    words = " ".join(f"word{n}" for n in range(40))
    assert all(len(piece) <= MAX_CUE_CHARS for piece in caption_pieces(words))
    assert " ".join(caption_pieces(words)) == words
    assert caption_pieces("x" * 200) == ["x" * 84, "x" * 84, "x" * 32]


def test_a_3000_character_sentence_becomes_short_cues_timed_within_its_span() -> None:
    # issue 11 F-cues: one 3:42 cue for a 3,000-character sentence
    clause = "and the breath goes on, slow and easy"
    sentence = ", ".join([clause] * 80) + "."
    assert len(sentence) > 3000
    line = Timeline((speech(10.0, 222.0, sentence),), (), 240.0, 240.0, None, None)
    found = CUE_RE.findall(captions_vtt(line))
    assert len(found) > 30
    texts = [match[9] for match in found]
    assert all(len(text) <= MAX_CUE_CHARS for text in texts)
    assert " ".join(texts) == sentence
    assert all(text.endswith((",", ".")) for text in texts)  # cut after commas only
    starts = [seconds(*match[1:5]) for match in found]
    ends = [seconds(*match[5:9]) for match in found]
    assert starts[0] == 10.0 and ends[-1] == 232.0
    assert starts[1:] == ends[:-1]  # back to back, no gap, no overlap
    for text, start_s, end_s in zip(texts, starts, ends, strict=True):
        share_s = 222.0 * len(text) / sum(len(t) for t in texts)
        assert abs((end_s - start_s) - share_s) <= 0.002
    assert [int(match[0]) for match in found] == list(range(1, len(found) + 1))
