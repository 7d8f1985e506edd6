"""Encoding every format in one ffmpeg run, tags and chapters, and failures that leave nothing."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import mutagen
import numpy as np
import pytest
from chapters_by_ffmpeg import read_chapters
from conftest import sine

from pipeline.audio.encode import FORMATS, Encoder, TrackTags, remove_stale_temporaries, tag_file
from pipeline.core.errors import AudioError
from pipeline.core.ffmpeg import ffmpeg_exe

RATE = 44100
TAGS = TrackTags(
    title="Calm = Breathing",
    artist="Smart Meditation team",
    album="anxiety",
    comment="A short practice; #1 for mornings",
    chapters=[("Arriving", 0.0), ("Body scan — slow", 1.25), ("Ending", 2.5)],
    duration_s=4.0,
)


def tone(seconds: float = 4.0) -> Iterator[np.ndarray]:
    signal = sine(seconds, 330, 0.2, RATE, channels=2)
    for start in range(0, len(signal), 4096):
        yield signal[start : start + 4096]


def encode(out_dir: Path, formats: list[str], tags: TrackTags | None = TAGS) -> dict[str, Path]:
    with Encoder(out_dir, "calm", formats, sample_rate=RATE, channels=2, tags=tags) as encoder:
        for block in tone():
            encoder.write(block)
        encoder.close()
        if tags is not None:
            for fmt, path in encoder.temp_paths.items():
                tag_file(path, fmt, tags)
        return encoder.commit()


def mutagen_fields(path: Path, fmt: str) -> tuple[list[str], list[tuple[str, float]]]:
    """(title, artist, album, genre, comment) and chapters as mutagen reads them."""
    audio = mutagen.File(path)
    tags = audio.tags
    if fmt in ("mp3", "wav"):
        values = [str(tags[key]) for key in ("TIT2", "TPE1", "TALB", "TCON")]
        values.append(str(tags.getall("COMM")[0]))
        toc = tags.getall("CTOC")[0]
        chapters = []
        for element_id in toc.child_element_ids:
            chap = tags[f"CHAP:{element_id}"]
            chapters.append((str(chap.sub_frames["TIT2"]), chap.start_time / 1000))
        return values, chapters
    if fmt == "m4a":
        values = [tags[key][0] for key in ("\xa9nam", "\xa9ART", "\xa9alb", "\xa9gen", "\xa9cmt")]
        return values, [(chapter.title, chapter.start) for chapter in audio.chapters]
    values = [tags[key][0] for key in ("title", "artist", "album", "genre", "comment")]
    chapters = []
    for index in range(1, 100):
        if f"chapter{index:03d}" not in tags:
            break
        clock = tags[f"chapter{index:03d}"][0]
        hours, minutes, seconds = clock.split(":")
        chapters.append(
            (
                tags[f"chapter{index:03d}name"][0],
                int(hours) * 3600 + int(minutes) * 60 + float(seconds),
            )
        )
    return values, chapters


def test_every_format_in_one_run_with_tags_and_chapters_in_order(tmp_path: Path) -> None:
    paths = encode(tmp_path, list(FORMATS))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"calm.{fmt}" for fmt in FORMATS)
    expected = [TAGS.title, TAGS.artist, TAGS.album, "Meditation", TAGS.comment]
    for fmt, path in paths.items():
        audio = mutagen.File(path)
        assert audio.info.length == pytest.approx(4.0, abs=0.06), fmt
        values, chapters = mutagen_fields(path, fmt)
        assert values == expected, fmt
        assert [title for title, _ in chapters] == [title for title, _ in TAGS.chapters], fmt
        assert [start for _, start in chapters] == pytest.approx([0.0, 1.25, 2.5], abs=0.001), fmt
        by_ffmpeg = read_chapters(path)
        assert [title for title, _ in by_ffmpeg] == [title for title, _ in TAGS.chapters], fmt
        # ffmpeg shifts mp3 chapters by the decoder delay it skips (about 25 ms)
        assert [start for _, start in by_ffmpeg] == pytest.approx([0.0, 1.25, 2.5], abs=0.03), fmt
    probe = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(paths["opus"])], capture_output=True
    )
    assert b"48000 Hz" in probe.stderr


@pytest.mark.parametrize("formats", [["m4a"], ["m4a", "mp3"], ["mp3", "m4a"]])
def test_a_measured_encode_keeps_m4a_chapters_whatever_the_order(
    tmp_path: Path, formats: list[str]
) -> None:
    """m4a chapters are written at encode time; ffmpeg's tee (the meter) drops them."""
    with Encoder(tmp_path, "calm", formats, sample_rate=RATE, tags=TAGS, measure=True) as encoder:
        for block in tone():
            encoder.write(block)
        encoder.close()
        for fmt, path in encoder.temp_paths.items():
            tag_file(path, fmt, TAGS)
        paths = encoder.commit()
    _values, chapters = mutagen_fields(paths["m4a"], "m4a")
    assert [title for title, _ in chapters] == [title for title, _ in TAGS.chapters]
    assert (encoder.loudness is None) == (formats[0] == "m4a")  # measured from its file instead


def test_many_chapters_keep_their_order_for_ffmpeg(tmp_path: Path) -> None:
    titles = ["A much longer first chapter title", "B", "Third", "4", "The fifth and last"]
    tags = TrackTags("T", chapters=[(title, i * 0.5) for i, title in enumerate(titles)])
    paths = encode(tmp_path, ["mp3", "wav", "flac"], tags)
    for path in paths.values():
        assert [title for title, _ in read_chapters(path)] == titles


def test_disk_full_while_encoding_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "calm.mp3"
    (tmp_path / f".calm.mp3.tmp-{os.getpid()}").symlink_to("/dev/full")
    with pytest.raises(AudioError, match=r"disk full while encoding .*calm\.mp3"):
        encode(tmp_path, ["mp3", "ogg"])
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_keeps_previous_output_and_removes_temporaries(tmp_path: Path) -> None:
    (tmp_path / "calm.ogg").write_bytes(b"previous")
    with (
        pytest.raises(AudioError, match=r"encoding calm .* failed: ffmpeg: .*encoder"),
        Encoder(tmp_path, "calm", ["mp3", "ogg", "wav"], bitrate="1k") as encoder,
    ):  # libvorbis refuses 1 kbit/s
        for block in tone():
            encoder.write(block)
        encoder.close()
    assert (tmp_path / "calm.ogg").read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["calm.ogg"]


def test_invalid_settings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="invalid bitrate"):
        Encoder(tmp_path, "calm", ["mp3"], bitrate="loud")
    with pytest.raises(AudioError, match="unknown output format aiff"):
        Encoder(tmp_path, "calm", ["mp3", "aiff"])


def test_exception_while_rendering_aborts(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), Encoder(tmp_path, "calm", ["mp3", "flac"]) as encoder:
        encoder.write(np.zeros((4096, 2), np.float32))
        raise RuntimeError("mixer failed")
    assert list(tmp_path.iterdir()) == []


def test_missing_ffmpeg_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDITATE_FFMPEG", "/nonexistent/ffmpeg")
    ffmpeg_exe.cache_clear()
    try:
        with pytest.raises(AudioError, match="MEDITATE_FFMPEG=/nonexistent/ffmpeg"):
            encode(tmp_path, ["mp3"])
    finally:
        ffmpeg_exe.cache_clear()
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".calm.mp3.tmp-{dead.pid}"
    mine = tmp_path / f".calm.mp3.tmp-{os.getpid()}"
    stale.write_bytes(b"x")
    mine.write_bytes(b"x")
    (tmp_path / "calm.mp3").write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["calm.mp3", mine.name])
