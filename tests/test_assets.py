"""Built-in assets: catalog, decoding, seamless loops, spectra, loudness, generator, lookups."""

from __future__ import annotations

import os
import re
import subprocess
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pipeline.audio import assetgen
from pipeline.core.errors import AudioError, ConfigError
from pipeline.core.ffmpeg import ffmpeg_exe
from pipeline.project.assets import (
    Asset,
    AssetLookupError,
    asset_length_s,
    builtin_assets_dir,
    find_asset,
    load_asset_audio,
    load_catalog,
    project_catalog,
)

BUILTIN_BEDS = ("rain", "ocean", "drone")
BUILTIN_ONE_SHOTS = ("bowl", "chime", "gong")
RATE = 48000


@pytest.fixture(scope="module")
def catalog() -> dict[str, Asset]:
    return load_catalog(builtin_assets_dir())


def decoded(asset: Asset, rate: int = RATE) -> np.ndarray:
    return load_asset_audio(asset, rate, 2).astype(np.float64)


def ebur128_integrated(path: Path) -> float:
    """Integrated loudness from the summary of ffmpeg's ebur128 filter (independent of assetgen)."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0"]
    command += ["-af", "ebur128=framelog=quiet", "-f", "null", "-"]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
    )
    summary = result.stderr[result.stderr.rindex("Summary:") :]
    match = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    assert match, summary
    return float(match.group(1))


def test_catalog_has_every_spec_asset(catalog: dict[str, Asset]) -> None:
    for name in BUILTIN_BEDS:
        assert catalog[name].kind == "bed" and catalog[name].loop
    for name in BUILTIN_ONE_SHOTS:
        assert catalog[name].kind == "one-shot" and not catalog[name].loop
    for asset in catalog.values():
        assert asset.file.is_file(), asset.file
        assert asset.licence == "CC0-1.0"
        assert asset.description
        assert asset.level_db == 0.0
        assert asset.name in assetgen.RECIPES
    text = (builtin_assets_dir() / "catalog.yaml").read_text(encoding="utf-8")
    assert "python -m pipeline.audio.assetgen" in text
    total_bytes = sum(asset.file.stat().st_size for asset in catalog.values())
    assert total_bytes < 5_000_000


def test_project_catalog_overrides_and_extends(tmp_path: Path) -> None:
    (tmp_path / "catalog.yaml").write_text(
        "assets:\n  rain: {kind: bed, file: my-rain.ogg, licence: CC-BY-4.0}\n"
        "  bell: {kind: one-shot, file: bell.ogg}\n",
        encoding="utf-8",
    )
    merged = project_catalog(tmp_path)
    assert merged["rain"].file == (tmp_path / "my-rain.ogg").resolve()
    assert merged["bell"].kind == "one-shot"
    assert merged["ocean"].file.parent == builtin_assets_dir()


def _catalog_errors(folder: Path, text: str) -> str:
    (folder / "catalog.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        project_catalog(folder)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "assets:\n  bell: {kind: one-shot, file: bell.ogg, levl_db: 3}\n",
            r"catalog.yaml:2:42: error: assets.bell.levl_db: unknown key 'levl_db'; "
            r"did you mean 'level_db'\?",
        ),
        (
            "assets:\n  bell:\n    kind: gong\n    file: b.ogg\n",
            r":3:11: error: assets.bell.kind: unknown kind 'gong'; expected one of: bed, one-shot",
        ),
        ("assets:\n  bell: {kind: bed}\n", r":2:9: error: assets.bell: needs 'file'"),
        (
            "assets:\n  bell: {kind: bed, file: ../../../../etc/passwd}\n",
            r":2:27: error: assets.bell.file: asset path '../../../../etc/passwd' leads outside "
            r"the catalog's folder",
        ),
        (
            "assets:\n  bell: {kind: bed, file: /etc/passwd}\n",
            r":2:27: error: assets.bell.file: .* is absolute; use a path relative to the catalog",
        ),
        ("assets:\n  bell: {kind: bed, file: b.ogg, loop: often}\n", r":2:40: .*true or false"),
        ("assets:\n  bell: {kind: bed, file: b.ogg, level_db: 99}\n", r":2:44: .*between -60"),
        (
            "assets:\n  bell: {kind: bed, file: [b.ogg]}\n",
            r":2:27: error: assets.bell.file: expected text",
        ),
        ("assets:\n  bell: {kind: bed\n", r"catalog.yaml:3:1: error: invalid YAML"),
        ("beds: {}\n", r":1:1: error: beds: unknown key 'beds'; expected one of: assets$"),
        ("", r":1:1: error: expected a mapping 'assets"),
        ("assets: [rain]\n", r":1:9: error: assets: expected a mapping of asset names"),
    ],
)
def test_a_bad_project_catalog_is_an_error_at_its_place(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert re.search(expected, _catalog_errors(tmp_path, text)), _catalog_errors(tmp_path, text)


def test_every_problem_of_a_catalog_is_reported_at_once(tmp_path: Path) -> None:
    message = _catalog_errors(
        tmp_path,
        "assets:\n  a: {kind: bed, file: a.ogg, loop: 3}\n  b: {kind: drum, file: b.ogg}\n"
        "  a: {kind: bed, file: c.ogg}\n",
    )
    assert [line.split(": error: ")[0].rsplit(":", 2)[1:] for line in message.splitlines()] == [
        ["2", "37"],
        ["3", "13"],
        ["4", "3"],
    ]
    assert "duplicate asset name" in message


@pytest.mark.parametrize("name", BUILTIN_BEDS + BUILTIN_ONE_SHOTS)
def test_each_file_decodes_with_its_length(catalog: dict[str, Asset], name: str) -> None:
    asset = catalog[name]
    samples = load_asset_audio(asset, RATE, 2)
    assert samples.dtype == np.float32 and samples.shape[1] == 2
    length_s = samples.shape[0] / RATE
    assert asset_length_s(asset) == pytest.approx(length_s, abs=0.002)
    if asset.kind == "bed":
        assert 60.0 <= length_s <= 120.0
    else:
        assert 6.0 <= length_s <= 20.0
    peak = float(np.max(np.abs(samples)))
    assert 0.05 < peak < 10 ** (-1.0 / 20)
    assert load_asset_audio(asset, RATE, 2) is samples
    assert not samples.flags.writeable


@pytest.mark.parametrize("rate", [RATE, 44100])
@pytest.mark.parametrize("name", BUILTIN_BEDS)
def test_bed_loop_seam_is_no_bigger_than_a_typical_step(
    catalog: dict[str, Asset], name: str, rate: int
) -> None:
    samples = decoded(catalog[name], rate)
    jumps = np.abs(np.diff(samples, axis=0))
    seam = np.abs(samples[0] - samples[-1])
    limit = 4.0 * np.percentile(jumps, 99, axis=0)
    assert np.all(seam < limit), (seam, limit)


@pytest.mark.parametrize("name", BUILTIN_BEDS + BUILTIN_ONE_SHOTS)
def test_spectrum_has_no_harsh_highs(catalog: dict[str, Asset], name: str) -> None:
    samples = decoded(catalog[name])
    power = np.abs(np.fft.rfft(samples, axis=0)) ** 2
    freqs_hz = np.fft.rfftfreq(samples.shape[0], 1.0 / RATE)
    total = power.sum()
    assert power[freqs_hz > 6000].sum() / total < 0.03
    assert power[freqs_hz > 4000].sum() / total < 0.05
    assert power[freqs_hz < 4000].sum() / total > 0.95


@pytest.mark.parametrize("name", BUILTIN_BEDS)
def test_beds_move_gently(catalog: dict[str, Asset], name: str) -> None:
    samples = decoded(catalog[name])
    hop = RATE // 2
    blocks = samples[: samples.shape[0] // hop * hop].reshape(-1, hop, 2)
    level_db = 10 * np.log10(np.mean(blocks**2, axis=(1, 2)))
    steps_db = np.abs(np.diff(level_db))
    assert level_db.max() - level_db.min() > 1.0, "no movement at all"
    assert steps_db.max() < 4.0, "a sudden jump in level"
    correlation = np.corrcoef(samples[:, 0], samples[:, 1])[0, 1]
    assert 0.1 < correlation < 0.95, "stereo should be gently decorrelated"


@pytest.mark.parametrize("name", BUILTIN_ONE_SHOTS)
def test_one_shots_decay_to_silence(catalog: dict[str, Asset], name: str) -> None:
    samples = decoded(catalog[name])
    first = np.sqrt(np.mean(samples[:RATE] ** 2))
    last = np.sqrt(np.mean(samples[-RATE // 2 :] ** 2))
    assert 20 * np.log10(last / first) < -40.0
    assert np.max(np.abs(samples[-100:])) < 1e-3


@pytest.mark.parametrize("name", BUILTIN_BEDS + BUILTIN_ONE_SHOTS)
def test_loudness_at_target(catalog: dict[str, Asset], name: str) -> None:
    target = assetgen.BED_LUFS if catalog[name].kind == "bed" else assetgen.ONE_SHOT_LUFS
    assert ebur128_integrated(catalog[name].file) == pytest.approx(target, abs=1.0)


@pytest.mark.parametrize("name", BUILTIN_BEDS + BUILTIN_ONE_SHOTS)
def test_generator_is_deterministic_and_beds_periodic(name: str) -> None:
    first = assetgen.synthesize(name, seconds=2.0)
    second = assetgen.synthesize(name, seconds=2.0)
    assert first.shape == (2 * assetgen.RECIPES[name].sample_rate, 2)
    assert np.array_equal(first, second)
    assert np.all(np.isfinite(first)) and np.std(first) > 0
    if assetgen.RECIPES[name].kind == "bed":
        jumps = np.abs(np.diff(first.astype(np.float64), axis=0))
        seam = np.abs(first[0].astype(np.float64) - first[-1])
        assert np.all(seam < 3.0 * np.percentile(jumps, 99, axis=0))


def test_generator_builds_a_file_at_the_target_loudness(tmp_path: Path) -> None:
    path = tmp_path / "chime.ogg"
    measured = assetgen.build("chime", path, seconds=6.0)
    assert measured == pytest.approx(assetgen.ONE_SHOT_LUFS, abs=0.2)
    assert ebur128_integrated(path) == pytest.approx(assetgen.ONE_SHOT_LUFS, abs=0.3)
    assert [p.name for p in tmp_path.iterdir()] == ["chime.ogg"]


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.ogg"
    bad.write_bytes(b"OggS" + bytes(range(256)) * 8)
    asset = Asset("broken", "one-shot", bad, False, "", "", 0.0)
    with pytest.raises(AudioError, match=r"broken\.ogg.*corrupt"):
        load_asset_audio(asset, RATE, 2)
    with pytest.raises(AudioError, match=r"broken\.ogg.*corrupt"):
        asset_length_s(asset)


def test_truncated_real_asset_is_a_clear_error(tmp_path: Path, catalog: dict[str, Asset]) -> None:
    cut = tmp_path / "cut.ogg"
    cut.write_bytes(catalog["chime"].file.read_bytes()[:50])
    asset = Asset("cut", "one-shot", cut, False, "", "", 0.0)
    with pytest.raises(AudioError, match=r"cut\.ogg"):
        load_asset_audio(asset, RATE, 2)


def test_missing_empty_and_unreadable_files(tmp_path: Path) -> None:
    missing = Asset("gone", "bed", tmp_path / "gone.ogg", True, "", "", 0.0)
    with pytest.raises(AudioError, match=r"gone\.ogg.*not found"):
        load_asset_audio(missing, RATE, 2)
    empty_path = tmp_path / "empty.ogg"
    empty_path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.ogg.*empty"):
        load_asset_audio(Asset("empty", "bed", empty_path, True, "", "", 0.0), RATE, 2)
    if os.geteuid() != 0:
        locked = tmp_path / "locked.ogg"
        locked.write_bytes(b"x")
        locked.chmod(0)
        with pytest.raises(AudioError, match=r"locked\.ogg.*permission"):
            load_asset_audio(Asset("locked", "bed", locked, True, "", "", 0.0), RATE, 2)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def test_other_rate_and_mono_are_converted(tmp_path: Path, catalog: dict[str, Asset]) -> None:
    rate = 22050
    t = np.arange(2 * rate) / rate
    path = tmp_path / "tone.wav"
    write_wav(path, 0.5 * np.sin(2 * np.pi * 440 * t), rate)
    asset = Asset("tone.wav", "one-shot", path, False, "", "", 0.0)
    stereo = load_asset_audio(asset, 44100, 2)
    assert stereo.shape == (88200, 2)
    assert np.array_equal(stereo[:, 0], stereo[:, 1])
    spectrum = np.abs(np.fft.rfft(stereo[:, 0]))
    assert np.fft.rfftfreq(88200, 1 / 44100)[np.argmax(spectrum)] == pytest.approx(440, abs=1)
    assert asset_length_s(asset) == pytest.approx(2.0, abs=0.001)
    mono = load_asset_audio(catalog["rain"], 16000, 1)
    assert mono.shape[1] == 1
    assert mono.shape[0] == pytest.approx(asset_length_s(catalog["rain"]) * 16000, abs=2)


def test_find_asset_by_name_and_path(tmp_path: Path, catalog: dict[str, Asset]) -> None:
    scripts = tmp_path / "scripts"
    (tmp_path / "sounds").mkdir()
    scripts.mkdir()
    bell = tmp_path / "sounds" / "bell.ogg"
    bell.write_bytes(b"x")
    assert find_asset("rain", catalog, scripts, tmp_path) is catalog["rain"]
    found = find_asset("../sounds/bell.ogg", catalog, scripts, tmp_path, kind="bed")
    assert found.file == bell.resolve() and found.kind == "bed" and found.loop


def test_find_asset_unknown_name_suggests(tmp_path: Path, catalog: dict[str, Asset]) -> None:
    with pytest.raises(ConfigError, match=r"unknown asset 'rian'; did you mean 'rain'") as info:
        find_asset("rian", catalog, tmp_path, tmp_path)
    assert isinstance(info.value, AssetLookupError) and info.value.suggestions == ["rain"]
    assert "bowl, chime, drone, gong, ocean, rain" in str(info.value)
    with pytest.raises(ConfigError, match=r"unknown asset 'thunder' \(catalog: "):
        find_asset("thunder", catalog, tmp_path, tmp_path)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("../../etc/passwd", "outside the project"),
        ("/etc/passwd", "absolute"),
        ("C:/Windows/win.ini", "absolute"),
        ("sounds/none.ogg", "not found"),
        ("./sounds", "not a file"),
    ],
)
def test_find_asset_refuses_bad_paths(
    tmp_path: Path, catalog: dict[str, Asset], given: str, message: str
) -> None:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "sounds").mkdir()
    with pytest.raises(ConfigError, match=message):
        find_asset(given, catalog, project / "scripts", project)


def test_find_asset_refuses_a_symlink_out_of_the_project(
    tmp_path: Path, catalog: dict[str, Asset]
) -> None:
    outside = tmp_path / "secret.ogg"
    outside.write_bytes(b"x")
    project = tmp_path / "project"
    project.mkdir()
    (project / "link.ogg").symlink_to(outside)
    with pytest.raises(ConfigError, match="outside the project"):
        find_asset("link.ogg", catalog, project, project)


def test_validate_probes_the_codec_of_project_files_only(
    catalog: dict[str, Asset], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped files are decoded by the tests above; a project's own file is probed."""
    import pipeline.project.assets as assets

    probed: list[str] = []
    monkeypatch.setattr(assets, "_decodes", lambda path, *rest: probed.append(path))
    assert all(assets.asset_file_problem(asset) is None for asset in catalog.values())
    assert probed == []
    own = tmp_path / "own.ogg"
    own.write_bytes(catalog["bowl"].file.read_bytes())
    assert assets.asset_file_problem(replace(catalog["bowl"], file=own)) is None
    assert probed == [str(own)]
