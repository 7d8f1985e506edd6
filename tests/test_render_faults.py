"""Bad assets, a missing ffmpeg, a full disk, a killed render: clear errors, no truncated file.

Each fault is checked for its message (naming the file or cause), for the absence of any
file under a final name, and some through the command line (exit 1, no traceback).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.config import load_project
from pipeline.encode import remove_stale_temporaries
from pipeline.errors import AudioError, PipelineError
from pipeline.ffmpeg import decode, run_ffmpeg
from pipeline.outputs import sha256_file
from pipeline.render import render_script

RATE = 44100
GOOD_ASSET = "level_db: 0, licence: CC0-1.0, description: test"
CATALOG = f"""\
assets:
  junk: {{kind: bed, file: junk.ogg, {GOOD_ASSET}}}
  empty: {{kind: bed, file: empty.flac, {GOOD_ASSET}}}
  folder: {{kind: bed, file: folder.ogg, {GOOD_ASSET}}}
  badshot: {{kind: one-shot, file: badshot.wav, {GOOD_ASSET}}}
  tone22k: {{kind: bed, file: tone22k.wav, {GOOD_ASSET}}}
  ding48k: {{kind: one-shot, file: ding48k.flac, {GOOD_ASSET}}}
"""


def script(title: str, background: str, steps: str, duration: str = "") -> str:
    return (
        f"title: {title}\nbackground: {background}\n"
        + (f"duration: {duration}\n" if duration else "")
        + f"steps:\n{steps}"
    )


SPEECH = "  - say: Breathe gently.\n  - pause: 2s\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    (root / "meditate.yaml").write_text(
        f"sample_rate: {RATE}\nchannels: 2\nformats: [mp3]\ncache: cache\nassets: sounds\n"
    )
    sounds = root / "sounds"
    sounds.mkdir()
    (sounds / "catalog.yaml").write_text(CATALOG)
    (sounds / "junk.ogg").write_bytes(bytes(range(256)) * 64)
    (sounds / "empty.flac").write_bytes(b"")
    (sounds / "folder.ogg").mkdir()
    (sounds / "badshot.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 50)
    run_ffmpeg(
        ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050:duration=6",
         "-ac", "1", "-c:a", "pcm_s16le", "-y", str(sounds / "tone22k.wav")]
    )  # fmt: skip
    run_ffmpeg(
        ["-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000:duration=1.5",
         "-ac", "2", "-af", "afade=t=out:st=0.5:d=1", "-c:a", "flac", "-y",
         str(sounds / "ding48k.flac")]
    )  # fmt: skip
    scripts = root / "scripts"
    scripts.mkdir()
    for name in ("junk", "empty", "folder"):
        (scripts / f"bed-{name}.yaml").write_text(script(name, f"{{asset: {name}}}", SPEECH))
    (scripts / "shot-bad.yaml").write_text(script("bad", "null", "  - sound: badshot\n" + SPEECH))
    (scripts / "converted.yaml").write_text(
        script(
            "converted",
            "{asset: tone22k, gain: 0dB, duck: 0dB, fade_in: 0.5s, fade_out: 0.5s}",
            "  - sound: ding48k\n  - pause: 8s\n",
        )
    )
    (scripts / "short.yaml").write_text(
        script("short", "{asset: rain}", SPEECH + "  - pause: 5s+\n", "20s")
    )
    (scripts / "long.yaml").write_text(
        script("long", "{asset: rain}", SPEECH + "  - pause: 10s+\n", "4m")
    )
    return root


def finals(folder: Path) -> list[str]:
    """Every file in ``folder`` under a final (not hidden, not temporary) name."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def render(root: Path, name: str, out: Path, **flags: object) -> None:
    project = load_project(root / "meditate.yaml")
    render_script(root / "scripts" / f"{name}.yaml", project, dict(flags), output_dir=out)


def run_cli(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- assets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("junk", "cannot decode it (probable cause: the file is corrupt"),
        ("empty", "the file is empty"),
        ("folder", "cannot read it: Is a directory"),
    ],
)
def test_a_bad_bed_file_is_a_clear_error_and_nothing_is_written(
    root: Path, tmp_path: Path, name: str, cause: str
) -> None:
    with pytest.raises(PipelineError) as caught:
        render(root, f"bed-{name}", tmp_path / "out")
    message = str(caught.value)
    assert f"sounds/{name}." in message and cause in message
    assert finals(tmp_path / "out") == []
    assert not [p for p in (tmp_path / "out").glob(".*")] if (tmp_path / "out").exists() else True


def test_a_corrupt_asset_through_the_cli_exits_1_without_traceback(
    root: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli,
        ["--config", str(root / "meditate.yaml"), "render", str(root / "scripts" / "bed-junk.yaml"),
         "-o", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "junk.ogg" in result.output and "corrupt" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert finals(tmp_path / "out") == []


def test_a_corrupt_one_shot_is_a_clear_error(root: Path, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"badshot\.wav.*badshot"):
        render(root, "shot-bad", tmp_path / "out")
    assert finals(tmp_path / "out") == []


def test_an_unreadable_asset_is_a_clear_error(root: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    sounds = tmp_path / "sounds"
    shutil.copytree(root / "sounds", sounds)
    (sounds / "tone22k.wav").chmod(0)
    project_root = tmp_path
    (project_root / "meditate.yaml").write_text((root / "meditate.yaml").read_text())
    shutil.copytree(root / "scripts", project_root / "scripts")
    with pytest.raises(AudioError, match=r"tone22k\.wav.*cannot read it"):
        render(project_root, "converted", tmp_path / "out")
    assert finals(tmp_path / "out") == []


def test_assets_of_other_rates_and_channel_counts_are_converted(root: Path, tmp_path: Path) -> None:
    """A 22.05 kHz mono bed and a 48 kHz stereo one-shot play at pitch in a 44.1 kHz track."""
    render(root, "converted", tmp_path / "out", formats="flac")
    pcm = decode(tmp_path / "out" / "converted.flac", RATE, 2)
    assert abs(pcm.shape[0] / RATE - 9.5) <= 0.001  # the one-shot (1.5 s), then 8 s
    assert np.array_equal(pcm[:, 0], pcm[:, 1])

    def peak_hz(first_s: float, stop_s: float) -> list[float]:
        part = pcm[round(first_s * RATE) : round(stop_s * RATE), 0].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part))))
        hz = np.fft.rfftfreq(len(part), 1.0 / RATE)
        top = np.argsort(spectrum)[::-1]
        found: list[float] = []
        for index in top:
            if all(abs(hz[index] - f) > 20 for f in found):
                found.append(float(hz[index]))
            if len(found) == 2:
                break
        return found

    assert sorted(round(f) for f in peak_hz(0.1, 0.5)) == pytest.approx([440, 660], abs=3)
    (alone,) = peak_hz(3.0, 5.0)[:1]
    assert alone == pytest.approx(440, abs=1)


# --- ffmpeg, disk, kill ---------------------------------------------------------------------


def test_a_missing_ffmpeg_is_a_clear_error(root: Path, tmp_path: Path) -> None:
    result = run_cli(
        root,
        "render", "scripts/short.yaml", "-o", str(tmp_path / "out"),
        env={"MEDITATE_FFMPEG": "/nonexistent/ffmpeg"},
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "MEDITATE_FFMPEG=/nonexistent/ffmpeg: no such file" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert finals(tmp_path / "out") == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 300 kB tmpfs (root only): a 20 s mp3 at 128k does not fit."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_disk_that_fills_during_encoding_is_a_clear_error(root: Path, small_disk: Path) -> None:
    out = small_disk / "out"
    with pytest.raises(AudioError, match=r"disk full while encoding .*short\.mp3"):
        render(root, "short", out)
    assert finals(out) == []
    assert list(out.iterdir()) == []  # temporaries removed too
    result = run_cli(root, "render", "scripts/short.yaml", "-o", str(out))
    assert result.returncode == 1 and "disk full" in result.stderr
    assert "Traceback" not in result.stderr
    assert finals(out) == []


def start_render(root: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "-q", "render", "scripts/long.yaml", "-o", str(out)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_while_encoding(process: subprocess.Popen[bytes], out: Path) -> Path:
    """SIGKILL the render's whole process group once its mp3 temporary has grown."""
    deadline = time.monotonic() + 90
    temporary: Path | None = None
    while time.monotonic() < deadline and process.poll() is None:
        found = list(out.glob(".long.mp3.tmp-*")) if out.exists() else []
        if found and found[0].stat().st_size > 50_000:
            temporary = found[0]
            break
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert temporary is not None, "the render ended before it was caught encoding"
    return temporary


def test_a_render_killed_while_encoding_leaves_no_final_file_and_reruns(
    root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    render(root, "short", tmp_path / "warm")  # speech cached: the kill lands in encoding
    temporary = kill_while_encoding(start_render(root, out), out)
    assert temporary.exists()  # left behind, under a hidden temporary name only
    assert finals(out) == []

    render(root, "long", out)
    assert finals(out) == ["long.json", "long.mp3", "long.vtt"]
    assert not temporary.exists()  # the rerun removed the dead process's temporary
    digest = sha256_file(out / "long.mp3")

    second = kill_while_encoding(start_render(root, out), out)
    assert sha256_file(out / "long.mp3") == digest  # the finished file is untouched
    leftovers = sorted(path.name for path in remove_stale_temporaries(out))
    assert leftovers == sorted(
        [second.name, f".long.ffmetadata.tmp-{second.name.rsplit('-', 1)[1]}"]
    )
    assert finals(out) == ["long.json", "long.mp3", "long.vtt"]


def test_sparse_speech_is_not_crushed_to_reach_the_target(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pipeline.master import measure_file

    sparse = script("Sparse", "{asset: rain, fade_out: 2s}", "  - say: Rest.\n  - pause: 40s\n")
    (root / "scripts" / "sparse.yaml").write_text(sparse, encoding="utf-8")
    out = tmp_path / "out"
    with caplog.at_level("WARNING"):
        render(root, "sparse", out)
    assert "quieter than the target" in caplog.text
    loudness = measure_file(out / "sparse.mp3")
    assert loudness.integrated_lufs < -16.5, "the bed was not pushed up to the target"
    assert loudness.true_peak_dbtp is not None and loudness.true_peak_dbtp <= -1.0


def test_a_short_peaky_track_is_encoded_again_to_reach_the_target(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pipeline.master import measure_file

    # five seconds of speech, 16 kHz mono: limiting its peaks costs 0.6 LU at the first try
    (tmp_path / "meditate.yaml").write_text(
        "sample_rate: 16000\nchannels: 1\nformats: [wav]\ncache: cache\n", encoding="utf-8"
    )
    (tmp_path / "scripts").mkdir()
    steps = "  - say: Breathe in. Let go.\n  - pause: 1s\n  - say: Rest, number 4.\n"
    (tmp_path / "scripts" / "peaky.yaml").write_text(script("Peaky", "null", steps))
    out = tmp_path / "out"
    with caplog.at_level("INFO", logger="pipeline"):
        render(tmp_path, "peaky", out)
    assert "peaky: -16.6 LUFS after limiting; encoding again" in caplog.text
    assert "target" not in caplog.text  # no warning: the second try is within 0.5 LU
    loudness = measure_file(out / "peaky.wav")
    assert abs(loudness.integrated_lufs - -16.0) <= 0.5
    assert loudness.true_peak_dbtp is not None and loudness.true_peak_dbtp <= -1.0
    assert finals(out) == ["peaky.json", "peaky.vtt", "peaky.wav"]


def test_ctrl_c_during_a_render_says_interrupted_and_leaves_nothing(
    root: Path, tmp_path: Path
) -> None:
    """The terminal's SIGINT reaches the whole group: ffmpeg's death is not a failure of its own."""
    out = tmp_path / "out"
    render(root, "short", tmp_path / "warm")  # speech cached: the signal lands in encoding
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "render", "scripts/long.yaml", "-o", str(out)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not [p for p in out.glob(".long.mp3.tmp-*") if p.stat().st_size > 50_000]:
            assert process.poll() is None and time.monotonic() < deadline, "never caught encoding"
            time.sleep(0.005)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "interrupted", stderr
    assert "ffmpeg" not in stderr and "Traceback" not in stderr
    assert list(out.iterdir()) == []  # no temporary either
