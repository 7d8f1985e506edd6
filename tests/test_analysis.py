"""``inspect``: measured on files ffmpeg builds from tones and silence, with chapters."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio.analysis import (
    Inspection,
    _Scanner,
    format_inspection,
    inspect_audio,
    inspection_as_dict,
    parse_ffmetadata_chapters,
)
from pipeline.audio.master import measure_file
from pipeline.core.errors import AudioError, PipelineError
from pipeline.core.ffmpeg import ffmpeg_exe, run_ffmpeg

SR = 44100
CHAPTERS = (("Arriving", 0.0), ("Quiet; still = calm", 3.0), ("Return", 5.0))
METADATA = ";FFMETADATA1\ntitle=Test track\n" + "".join(
    f"[CHAPTER]\nTIMEBASE=1/1000\nSTART={round(start * 1000)}\nEND={round(end * 1000)}\n"
    f"title={title.replace(';', chr(92) + ';').replace('=', chr(92) + '=')}\n"
    for (title, start), end in zip(CHAPTERS, (3.0, 5.0, 8.0), strict=True)
)
TONE = f"aevalsrc=0.5*sin(2*PI*997*t)|0.5*sin(2*PI*997*t):s={SR}:d=3"
"""A 997 Hz sine at -6.02 dBFS peak: about -6.0 LUFS in both channels of a stereo file."""


def _tone_gap_tone(target: Path, metadata: Path | None = None) -> Path:
    """3 s tone, 2 s digital silence, 3 s tone (stereo), optionally with chapters."""
    args = ["-f", "lavfi", "-i", TONE, "-f", "lavfi", "-i", f"anullsrc=r={SR}:cl=stereo:d=2"]
    args += ["-f", "lavfi", "-i", TONE]
    if metadata is not None:
        args += ["-i", str(metadata), "-map_metadata", "3", "-map_chapters", "3"]
    args += ["-filter_complex", "[0][1][2]concat=n=3:v=0:a=1[a]", "-map", "[a]"]
    run_ffmpeg([*args, "-y", str(target)])
    return target


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inspect")
    metadata = folder / "meta.txt"
    metadata.write_text(METADATA, encoding="utf-8")
    clipped = folder / "clipped.wav"
    square = f"aevalsrc=1.3*sgn(sin(2*PI*100*t+0.1)):s={SR}:d=2"
    run_ffmpeg(["-f", "lavfi", "-i", square, "-c:a", "pcm_s16le", "-y", str(clipped)])
    return {
        "wav": _tone_gap_tone(folder / "tone.wav"),
        "mp3": _tone_gap_tone(folder / "tone.mp3", metadata),
        "m4a": _tone_gap_tone(folder / "tone.m4a", metadata),
        "opus": _tone_gap_tone(folder / "tone.opus", metadata),
        "clipped": clipped,
    }


@pytest.fixture(scope="module")
def inspected(files: dict[str, Path]) -> dict[str, Inspection]:
    return {name: inspect_audio(path) for name, path in files.items()}


@pytest.mark.parametrize("name", ["wav", "mp3", "m4a", "opus"])
def test_duration_format_and_silence(inspected: dict[str, Inspection], name: str) -> None:
    info = inspected[name]
    assert info.duration_s == pytest.approx(8.0, abs=0.03)
    assert (info.sample_rate, info.channels) == (48000 if name == "opus" else SR, 2)
    assert info.longest_silence_s == pytest.approx(2.0, abs=0.06)
    assert info.longest_silence_start_s == pytest.approx(3.0, abs=0.06)
    assert info.clipped_samples == 0


def test_codec_names(inspected: dict[str, Inspection]) -> None:
    assert inspected["wav"].codec == "pcm_s16le"
    assert inspected["mp3"].codec == "mp3"
    assert inspected["m4a"].codec == "aac"
    assert inspected["opus"].codec == "opus"


def test_tone_at_its_known_level(inspected: dict[str, Inspection]) -> None:
    info = inspected["wav"]
    assert info.integrated_lufs == pytest.approx(-6.0, abs=0.3)
    assert info.true_peak_dbtp == pytest.approx(-6.0, abs=0.3)
    assert info.sample_peak_dbfs == pytest.approx(-6.02, abs=0.05)


@pytest.mark.parametrize("name", ["wav", "mp3"])
def test_loudness_agrees_with_master_measure_file(
    files: dict[str, Path], inspected: dict[str, Inspection], name: str
) -> None:
    reference = measure_file(files[name])
    info = inspected[name]
    assert info.integrated_lufs == pytest.approx(reference.integrated_lufs, abs=0.1)
    assert info.loudness_range_lu == pytest.approx(reference.loudness_range_lu, abs=0.1)
    assert info.true_peak_dbtp == pytest.approx(reference.true_peak_dbtp, abs=0.1)
    assert info.duration_s == pytest.approx(reference.duration_s, abs=0.03)


def test_clipped_square_wave_is_counted(inspected: dict[str, Inspection]) -> None:
    info = inspected["clipped"]
    total = round(2.0 * SR) * info.channels
    # every sample of a square wave driven to 1.3 sits at full scale, except its zero crossings
    assert 0.98 * total <= info.clipped_samples <= total
    assert info.sample_peak_dbfs > -0.01
    assert info.longest_silence_s == 0.0


@pytest.mark.parametrize("name", ["mp3", "m4a", "opus"])
def test_chapters_read_back_in_order(inspected: dict[str, Inspection], name: str) -> None:
    chapters = inspected[name].chapters
    assert [chapter.title for chapter in chapters] == [title for title, _ in CHAPTERS]
    for chapter, (_, start_s) in zip(chapters, CHAPTERS, strict=True):
        assert chapter.start_s == pytest.approx(start_s, abs=0.01)
    assert inspected["wav"].chapters == ()


def test_ffmetadata_parsing_unescapes_and_sorts() -> None:
    text = (
        ";FFMETADATA1\ntitle=ignored\n"
        "[CHAPTER]\nTIMEBASE=1/44100\nSTART=88200\nEND=99999\ntitle=Two \\= b\\;c\\\\d\n"
        "[STREAM]\ntitle=not a chapter\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=500\ntitle=first\\\nline two\n"
    )
    chapters = parse_ffmetadata_chapters(text)
    assert [(chapter.title, chapter.start_s) for chapter in chapters] == [
        ("first\nline two", 0.5),
        ("Two = b;c\\d", 2.0),
    ]


def test_readable_text(inspected: dict[str, Inspection]) -> None:
    text = format_inspection(inspected["mp3"])
    assert "duration:        00:08.0" in text
    assert "clipped samples: 0" in text
    assert "longest silence: 2.0" in text and "at 00:03.0" in text
    assert text.index("Arriving") < text.index("Quiet; still = calm") < text.index("Return")
    assert "LUFS integrated" in text and " LU" in text and "dBTP" in text
    clipped = format_inspection(inspected["clipped"])
    assert "longest silence: none" in clipped and "%" in clipped


def test_json_form(inspected: dict[str, Inspection]) -> None:
    data = inspection_as_dict(inspected["mp3"])
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["duration_s"] == pytest.approx(8.0, abs=0.03)
    assert [chapter["title"] for chapter in data["chapters"]] == [t for t, _ in CHAPTERS]  # type: ignore[attr-defined]


def test_digital_silence(tmp_path: Path) -> None:
    target = tmp_path / "silence.flac"
    run_ffmpeg(["-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono:d=1.5", "-y", str(target)])
    info = inspect_audio(target)
    assert (info.sample_rate, info.channels) == (22050, 1)
    assert info.longest_silence_s == pytest.approx(1.5, abs=0.001)
    assert info.longest_silence_start_s == 0.0
    assert info.true_peak_dbtp == -math.inf and info.sample_peak_dbfs == -math.inf
    data = inspection_as_dict(info)
    assert data["true_peak_dbtp"] is None
    json.dumps(data, allow_nan=False)
    assert "silent" in format_inspection(info)


def test_block_boundaries_do_not_change_the_figures() -> None:
    rng = np.random.default_rng(7)
    rate = 8000
    audio = (rng.standard_normal((rate * 9, 2)) * 0.1).astype(np.float32)
    audio[1234:17000] = 0.0  # silent run from 0.154 s, 1.97 s long
    audio[40000:60111] = 0.0  # the longest: from 5.0 s, 2.514 s
    audio[-900:] = 0.0  # a short silence at the very end
    audio[100, 0] = 1.0
    whole = _Scanner(rate, 2, want_envelope=True)
    whole.feed(audio)
    whole.finish()
    pieces = _Scanner(rate, 2, want_envelope=True)
    position = 0
    while position < len(audio):
        size = int(rng.integers(1, 5000))
        pieces.feed(audio[position : position + size])
        position += size
    pieces.finish()
    for scanner in (whole, pieces):
        assert scanner.clipped == 1
        assert scanner.best_start_frame == 40000
        assert scanner.best_frames == pytest.approx(20111, abs=400)  # 50 ms windows
    assert (pieces.best_start_frame, pieces.best_frames) == (
        whole.best_start_frame,
        whole.best_frames,
    )
    assert whole.envelope is not None and pieces.envelope is not None
    assert whole.envelope.finish(rate) == pieces.envelope.finish(rate)


def test_corrupt_file_is_an_audio_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp3"
    text.write_bytes(b"These are not the sounds you are looking for.\n" * 40)
    with pytest.raises(AudioError, match=r"notes\.mp3: cannot read audio: .*not an audio file"):
        inspect_audio(text)


def test_truncated_file_is_an_audio_error(files: dict[str, Path], tmp_path: Path) -> None:
    truncated = tmp_path / "cut.wav"
    truncated.write_bytes(files["wav"].read_bytes()[:40])
    with pytest.raises(AudioError, match=r"cut\.wav: "):
        inspect_audio(truncated)


def test_missing_empty_and_folder(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"nothing\.wav: no such file"):
        inspect_audio(tmp_path / "nothing.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav: the file is empty"):
        inspect_audio(empty)
    with pytest.raises(AudioError, match="is a folder"):
        inspect_audio(tmp_path)


def test_plot_png(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "plots" / "tone.png"
    target.parent.mkdir()
    info = inspect_audio(files["mp3"], plot=target)
    assert info.plot == target
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
    assert [path.name for path in target.parent.iterdir()] == ["tone.png"]
    assert "plot:" in format_inspection(info)


@pytest.mark.parametrize(
    ("name", "magic"), [("x.JPG", b"\xff\xd8\xff"), ("x.svg", b"<?xml"), ("x.pdf", b"%PDF")]
)
def test_plot_is_written_in_the_format_its_extension_names(
    files: dict[str, Path], tmp_path: Path, name: str, magic: bytes
) -> None:
    pytest.importorskip("matplotlib")
    inspect_audio(files["wav"], plot=tmp_path / name)
    assert (tmp_path / name).read_bytes().startswith(magic)
    assert [path.name for path in tmp_path.iterdir()] == [name]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x.xyz", "extension '.xyz'; name the image format with one of: .png, .svg"),
        ("plot", "no extension; name the image format"),
        ("gone/x.png", "the folder 'gone' does not exist; create it first"),
    ],
)
def test_a_plot_of_unknown_format_or_into_a_missing_folder_is_refused(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
    message: str,
) -> None:  # fmt: skip
    from click.testing import CliRunner

    from pipeline.cli import cli

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["inspect", str(files["wav"]), "--plot", name])
    assert result.exit_code == 2
    assert result.output.startswith(f"{name}: error: --plot: {message}")
    assert list(tmp_path.iterdir()) == []


def test_plot_without_matplotlib(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PipelineError, match=r"pip install 'meditation-pipeline\[plot\]'"):
        inspect_audio(files["wav"], plot=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_progress_reports_decoded_seconds(files: dict[str, Path]) -> None:
    reports: list[tuple[float, float]] = []
    inspect_audio(files["wav"], progress=lambda done_s, total_s: reports.append((done_s, total_s)))
    assert reports[0][0] < reports[-1][0]
    assert reports[-1][0] == pytest.approx(8.0, abs=0.001)
    assert reports[-1][1] == pytest.approx(8.0, abs=0.05)


def test_an_ffmpeg_that_cannot_start_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF")
    broken = tmp_path / "ffmpeg"
    broken.write_text("not a program\n", encoding="utf-8")
    monkeypatch.setenv("MEDITATE_FFMPEG", str(broken))
    ffmpeg_exe.cache_clear()
    try:
        calls = [lambda: inspect_audio(audio), lambda: measure_file(audio), lambda: run_ffmpeg([])]
        for call in calls:
            with pytest.raises(AudioError, match=rf"^cannot run ffmpeg \({broken}\): "):
                call()
    finally:
        ffmpeg_exe.cache_clear()
