"""Bad assets, a missing ffmpeg, a full disk, a killed render: clear errors, no truncated file.

Each fault is checked for its message (naming the file or cause), for the absence of any
file under a final name, and some through the command line (exit 1, no traceback).
"""

from __future__ import annotations

import os
import re
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
from conftest import mounted, signal_when, start_meditate, tmpfs, write_project

from pipeline.audio.encode import remove_stale_temporaries
from pipeline.build.outputs import sha256_file
from pipeline.build.render import render_script
from pipeline.cli import cli
from pipeline.core.errors import AudioError, PipelineError
from pipeline.core.ffmpeg import decode, run_ffmpeg
from pipeline.project.config import load_project

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
    # the 1 s lead-in, the one-shot (1.5 s), then 8 s, and the 2 s tail
    assert abs(pcm.shape[0] / RATE - 12.5) <= 0.001
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

    assert sorted(round(f) for f in peak_hz(1.1, 1.5)) == pytest.approx([440, 660], abs=3)
    (alone,) = peak_hz(4.0, 6.0)[:1]
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
    with tmpfs(tmp_path / "small", "size=300k") as folder:
        yield folder


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


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write to: a read-only tmpfs for root, else a folder without 'w'."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        with tmpfs(tmp_path / "read-only", "ro,size=64k") as folder:
            yield folder
        return
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


def test_a_read_only_output_folder_is_named_as_not_writable(root: Path, read_only: Path) -> None:
    result = run_cli(root, "render", "scripts/short.yaml", "-o", str(read_only))
    assert result.returncode == 1, result.stderr
    assert any(
        line.startswith(f"{read_only}: error: the output folder is not writable")
        for line in result.stderr.splitlines()
    ), result.stderr
    assert "cannot remove" not in result.stderr and "internal error" not in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert list(read_only.iterdir()) == []


def test_an_encoder_that_cannot_start_reports_why_not_its_clean_up(
    read_only: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Removing temporaries that were never made must not hide (or add to) the first error."""
    from pipeline.audio.encode import Encoder, TrackTags

    encoder = Encoder(read_only, "calm", ["mp3", "ogg"], tags=TrackTags(title="Calm"))
    with pytest.raises(AudioError, match=r"cannot prepare encoding into .*read-only"):
        encoder.start()
    encoder.abort()  # once more, as a caller's clean-up does: still quiet
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []


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


@pytest.mark.slow
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
    from pipeline.audio.master import measure_file

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
    from pipeline.audio.master import measure_file

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
    assert re.search(r"peaky: -1[67]\.\d LUFS after limiting; encoding again", caplog.text)
    assert "target" not in caplog.text  # no warning: the second try is within 0.5 LU
    loudness = measure_file(out / "peaky.wav")
    assert abs(loudness.integrated_lufs - -16.0) <= 0.5
    assert loudness.true_peak_dbtp is not None and loudness.true_peak_dbtp <= -1.0
    assert finals(out) == ["peaky.json", "peaky.vtt", "peaky.wav"]


# --- a track's files become final together ----------------------------------------------------

SET_CONFIG = (
    "sample_rate: 16000\nchannels: 1\nformats: [wav, mp3]\ncache: cache\n"
    "defaults: {pauses: {lead_in: 0s, tail: 0s}}\n"  # the set must fit the small disk
)


def set_project(root: Path, text: str) -> Path:
    """A project of one short track in two formats; returns its script."""
    script = f"title: Calm\nsteps:\n  - say: {text}\n  - pause: 1s\n"
    return write_project(root, SET_CONFIG, {"calm.yaml": script}) / "scripts" / "calm.yaml"


def render_set(path: Path, out: Path) -> None:
    render_script(path, load_project(path.parents[1] / "meditate.yaml"), output_dir=out)


def contents(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder``, hidden ones included, with its bytes."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def assert_complete_set(out: Path) -> None:
    """The sidecar lists every audio file with its size and hash, and the captions exist."""
    import json

    data = json.loads((out / "calm.json").read_text())
    for entry in data["files"]:
        assert sha256_file(out / entry["path"]) == entry["sha256"]
    assert (out / data["captions"]).is_file()


def fill_to(folder: Path, free_bytes: int) -> None:
    """Leave about ``free_bytes`` free on the file system of ``folder`` (a filler file)."""
    stat = os.statvfs(folder)
    spare = stat.f_bavail * stat.f_frsize - free_bytes
    filler = folder.parent / "filler"  # beside the output folder, on the same tmpfs
    with open(filler, "ab") as stream:
        while spare > 0:
            spare -= stream.write(bytes(min(spare, 1 << 16)))


def sweep_free_space(path: Path, out: Path, reference: Path, small_disk: Path) -> list[str]:
    """Render with free space from a little under to a little over the new audio's size:
    each failure must leave ``out`` exactly as it was; the first success puts the whole new
    set in place. Returns the failures' messages.
    """
    before = contents(out)
    page = os.statvfs(small_disk).f_frsize
    audio_pages = sum(-(-(reference / n).stat().st_size // page) for n in ("calm.wav", "calm.mp3"))
    failures: list[str] = []
    for pages in range(audio_pages - 2, audio_pages + 8):
        (small_disk / "filler").unlink(missing_ok=True)
        fill_to(out, pages * page)
        try:
            render_set(path, out)
        except PipelineError as error:
            failures.append(str(error))
            assert contents(out) == before, f"{pages} pages free: {error}"
            continue
        (small_disk / "filler").unlink()
        assert_complete_set(out)
        assert contents(out) == contents(reference)
        return failures
    pytest.fail(f"the new set never fitted: {failures}")


def test_a_disk_that_fills_after_encoding_leaves_no_audio_without_its_sidecar(
    tmp_path: Path, small_disk: Path
) -> None:
    path = set_project(tmp_path / "project", "Hello there.")
    out = small_disk / "out"
    out.mkdir()
    reference = tmp_path / "reference"
    render_set(path, reference)  # the set's sizes; the speech is cached from here on
    # nothing there before: a failure leaves nothing (no final name, no temporary)
    failures = sweep_free_space(path, out, reference, small_disk)
    # the interesting failures happened: after the audio was encoded, before the set was whole
    assert any(".vtt" in message or ".json" in message for message in failures), failures
    # a previous set: a failure leaves it exactly as it was
    old = contents(out)
    path.write_text(path.read_text().replace("Hello there.", "Hello again, my friend."))
    render_set(path, reference)
    assert contents(reference) != old
    failures = sweep_free_space(path, out, reference, small_disk)
    assert any(".vtt" in message or ".json" in message for message in failures), failures


@pytest.fixture
def root_only() -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("bind mounts need root")


def test_a_file_that_cannot_be_replaced_rolls_the_whole_set_back(
    tmp_path: Path, root_only: None
) -> None:
    """The captions' final name is a mount point: renaming onto it fails (EBUSY) after the
    new audio is in place; the old set comes back whole, and nothing new stays behind.
    """
    path = set_project(tmp_path / "project", "Hello there.")
    out = tmp_path / "out"
    render_set(path, out)
    old = contents(out)
    path.write_text(path.read_text().replace("Hello there.", "Hello again, my friend."))
    pinned = tmp_path / "pinned.vtt"
    pinned.write_bytes(old["calm.vtt"])
    with mounted(out / "calm.vtt", "--bind", str(pinned)):
        with pytest.raises(PipelineError, match=r"calm\.vtt: error: "):
            render_set(path, out)
        assert contents(out) == old
    render_set(path, out)
    assert_complete_set(out)
    assert contents(out)["calm.wav"] != old["calm.wav"]
    assert sorted(contents(out)) == ["calm.json", "calm.mp3", "calm.vtt", "calm.wav"]


@pytest.mark.slow
def test_ctrl_c_during_a_render_says_interrupted_and_leaves_nothing(
    root: Path, tmp_path: Path
) -> None:
    """The terminal's SIGINT reaches the whole group: ffmpeg's death is not a failure of its own."""
    out = tmp_path / "out"
    render(root, "short", tmp_path / "warm")  # speech cached: the signal lands in encoding
    process = start_meditate(root, "render", "scripts/long.yaml", "-o", str(out))
    stderr = signal_when(
        process,
        lambda: [p for p in out.glob(".long.mp3.tmp-*") if p.stat().st_size > 50_000],
        "encoding",
    )
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "interrupted", stderr
    assert "ffmpeg" not in stderr and "Traceback" not in stderr
    assert list(out.iterdir()) == []  # no temporary either
