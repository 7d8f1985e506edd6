"""The offline espeak engine: real synthesis, determinism, threads, processes, voices."""

from __future__ import annotations

import io
import multiprocessing
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pipeline.core.errors import EngineError
from pipeline.engines.espeak import EspeakEngine, resolve_voice
from pipeline.project.settings import VoiceSettings

TEXTS = (
    "Hello world.",
    "Let your shoulders soften, and notice the breath.",
    "Breathe in.",
    "When you are ready, slowly open your eyes.",
)


def _pcm(data: bytes) -> tuple[np.ndarray, int, int]:
    """Samples, sample rate and channels of WAV bytes."""
    with wave.open(io.BytesIO(data)) as reader:
        frames = reader.readframes(reader.getnframes())
        return np.frombuffer(frames, "<i2"), reader.getframerate(), reader.getnchannels()


def _speak_all(voice_name: str = "en-us") -> list[bytes]:
    """Every text of TEXTS, in order (module level so spawned processes can run it)."""
    engine = EspeakEngine()
    return [engine.synthesize(text, VoiceSettings(name=voice_name)).data for text in TEXTS]


def test_hello_world_is_real_speech_of_plausible_length() -> None:
    audio = EspeakEngine().synthesize("Hello world", VoiceSettings())
    assert audio.format == "wav"
    samples, sample_rate, channels = _pcm(audio.data)
    assert (sample_rate, channels) == (22050, 1)
    assert 0.5 <= samples.size / sample_rate <= 2.5
    rms_dbfs = 20 * np.log10(np.sqrt(np.mean((samples / 32768.0) ** 2)))
    assert rms_dbfs > -35


def test_same_text_and_voice_give_identical_bytes_whatever_came_before() -> None:
    engine = EspeakEngine()
    first = engine.synthesize(TEXTS[1], VoiceSettings(name="en-us")).data
    engine.synthesize("Something else entirely, much longer than the rest.", VoiceSettings())
    engine.synthesize("Guten Tag.", VoiceSettings(name="de"))
    again = engine.synthesize(TEXTS[1], VoiceSettings(name="en-us")).data
    assert again == first


def test_voices_sound_different() -> None:
    engine = EspeakEngine()
    british = engine.synthesize(TEXTS[0], VoiceSettings(name="en")).data
    american = engine.synthesize(TEXTS[0], VoiceSettings(name="en-us")).data
    assert british != american


def test_four_threads_give_the_sequential_results() -> None:
    sequential = _speak_all()
    engine = EspeakEngine()
    jobs = [TEXTS[i % len(TEXTS)] for i in range(16)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda text: engine.synthesize(text, VoiceSettings(name="en-us")).data, jobs)
        )
    assert results == [sequential[i % len(TEXTS)] for i in range(16)]


def test_a_thread_synthesizes_while_another_holds_a_library_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.engines import espeak

    monkeypatch.setattr(espeak, "MAX_COPIES", 2)
    expected = _speak_all()[0]
    spoken: list[bytes] = []
    with espeak._session():  # one instance busy in this thread
        worker = threading.Thread(
            target=lambda: spoken.append(
                EspeakEngine().synthesize(TEXTS[0], VoiceSettings(name="en-us")).data
            )
        )
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "synthesis waited for the other thread's instance"
    assert spoken == [expected]


@pytest.mark.parametrize("voice", ["en-us+Reed", "en-us+caleb"])
def test_voices_with_breath_noise_give_the_same_samples_in_any_thread(voice: str) -> None:
    # their noise comes from the C library's rand(): one state for the whole process
    engine = EspeakEngine()
    expected = engine.synthesize(TEXTS[1], VoiceSettings(name=voice)).data
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda _: engine.synthesize(TEXTS[1], VoiceSettings(name=voice)).data, range(8)
            )
        )
    assert results == [expected] * 8
    assert engine.cache_settings(VoiceSettings(name=voice))["noise_seed"] == "1"
    assert "noise_seed" not in engine.cache_settings(VoiceSettings(name="en-us"))


@pytest.mark.parametrize("voice", ["en-us+f3", "en-us+f5"])
def test_breath_noise_does_not_follow_the_clock(voice: str) -> None:
    # libespeak-ng seeds its noise from time(): a second later it used to sound different
    engine = EspeakEngine()
    first = engine.synthesize(TEXTS[1], VoiceSettings(name=voice)).data
    time.sleep(1.05)
    assert engine.synthesize(TEXTS[1], VoiceSettings(name=voice)).data == first


@pytest.fixture
def mirror_temp(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A temporary folder of our own for the data mirror, and no mirror remembered."""
    from pipeline.engines import espeak

    espeak._catalog()  # known before: its stored voice list is not the mirror tests' business
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(espeak.tempfile, "tempdir", str(temp))
    espeak._data_mirror.cache_clear()
    yield temp
    espeak._data_mirror.cache_clear()


@pytest.fixture
def voices_temp(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A temporary folder of our own for the stored voice list, and no catalog remembered."""
    from pipeline.engines import espeak

    monkeypatch.setattr(espeak.tempfile, "tempdir", str(tmp_path))
    espeak._catalog.cache_clear()
    yield tmp_path
    espeak._catalog.cache_clear()


def _library_listings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the catalog's readings of the voices from the library."""
    from pipeline.engines import espeak

    calls: list[int] = []
    real = espeak._list_voices

    def counted(lib: object) -> object:
        calls.append(1)
        return real(lib)  # type: ignore[arg-type]

    monkeypatch.setattr(espeak, "_list_voices", counted)
    return calls


def test_the_voice_list_is_read_from_the_library_once(
    voices_temp: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.engines import espeak

    listings = _library_listings(monkeypatch)
    first = espeak._catalog()
    [stored] = voices_temp.iterdir()
    assert stored.stat().st_mode & 0o777 == 0o600
    espeak._catalog.cache_clear()  # as in the next process
    assert espeak._catalog() == first
    assert len(listings) == 1
    assert resolve_voice("en-gb") == "gmw/en"


@pytest.mark.parametrize("damage", ["garbage", "wrong shape", "writable by others"])
def test_a_damaged_or_foreign_voice_list_is_read_again(
    voices_temp: pathlib.Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    from pipeline.engines import espeak

    first = espeak._catalog()
    [stored] = voices_temp.iterdir()
    if damage == "garbage":
        stored.write_bytes(b"\x00{not json")
    elif damage == "wrong shape":
        stored.write_text('{"library_version": "1", "voices": [["x"]]}')
    else:
        stored.write_text('{"library_version": "planted", "voices": []}')
        stored.chmod(0o666)
    listings = _library_listings(monkeypatch)
    espeak._catalog.cache_clear()
    assert espeak._catalog() == first
    assert len(listings) == 1
    assert stored.stat().st_mode & 0o777 == 0o600  # replaced by a good one
    espeak._catalog.cache_clear()
    assert espeak._catalog() == first and len(listings) == 1


def test_another_installation_has_its_own_voice_list(
    voices_temp: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.engines import espeak

    library, data = espeak._paths()
    copy = voices_temp / "copy" / pathlib.Path(library).name
    copy.parent.mkdir()
    shutil.copyfile(library, copy)
    here = espeak._stored_voices_file()
    monkeypatch.setattr(espeak, "_paths", lambda: (str(copy), data))
    there = espeak._stored_voices_file()
    assert here and there and here != there
    os.utime(copy, ns=(0, 0))  # reinstalled in place
    assert espeak._stored_voices_file() not in (here, there)


def test_an_unwritable_temporary_folder_only_costs_time(
    voices_temp: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.engines import espeak

    blocker = voices_temp / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(espeak.tempfile, "tempdir", str(blocker / "temp"))
    listings = _library_listings(monkeypatch)
    assert resolve_voice("en-us") == "gmw/en-US"
    espeak._catalog.cache_clear()
    assert resolve_voice("en-us") == "gmw/en-US"
    assert len(listings) == 2


@pytest.mark.parametrize("voice", ["en-us", "en-us+m3", "pt-br"])
def test_the_data_mirror_gives_the_samples_of_the_real_folder(
    voice: str, mirror_temp: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.engines import espeak

    identifier = resolve_voice(voice)
    folder, name = espeak._voice_in_mirror(identifier)
    assert pathlib.Path(folder).parent == mirror_temp
    assert name == name.lower() != identifier
    mirrored = EspeakEngine().synthesize(TEXTS[1], VoiceSettings(name=voice)).data
    monkeypatch.setattr(espeak, "_voice_in_mirror", lambda chosen: (espeak._paths()[1], chosen))
    real = EspeakEngine().synthesize(TEXTS[1], VoiceSettings(name=voice)).data
    assert mirrored == real


def test_a_lower_case_voice_needs_no_mirror(mirror_temp: pathlib.Path) -> None:
    from pipeline.engines import espeak

    assert espeak._voice_in_mirror("gmw/en") == (espeak._paths()[1], "gmw/en")
    assert list(mirror_temp.iterdir()) == []


def test_without_links_the_real_folder_is_read(
    mirror_temp: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.engines import espeak

    expected = _speak_all()[0]
    for made in mirror_temp.iterdir():
        shutil.rmtree(made)
    espeak._data_mirror.cache_clear()

    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError("symbolic links are not permitted here")

    monkeypatch.setattr(espeak.os, "symlink", no_links)
    assert espeak._voice_in_mirror("gmw/en-US") == (espeak._paths()[1], "gmw/en-US")
    assert EspeakEngine().synthesize(TEXTS[0], VoiceSettings(name="en-us")).data == expected
    assert list(mirror_temp.iterdir()) == []  # the half-made mirror is gone


def test_an_incomplete_or_foreign_looking_mirror_is_replaced(mirror_temp: pathlib.Path) -> None:
    from pipeline.engines import espeak

    folder = pathlib.Path(espeak._voice_in_mirror("gmw/en-US")[0])
    (folder / "phondata").unlink()  # e.g. a temp cleaner at work
    espeak._data_mirror.cache_clear()
    assert espeak._voice_in_mirror("gmw/en-US")[0] == str(folder)
    assert (folder / "phondata").exists()
    folder.chmod(0o777)  # anyone could plant a voice in it
    espeak._data_mirror.cache_clear()
    assert espeak._voice_in_mirror("gmw/en-US")[0] == str(folder)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in mirror_temp.iterdir()] == [folder.name]


def test_a_mirror_removed_while_in_use_falls_back_to_the_real_folder(
    mirror_temp: pathlib.Path,
) -> None:
    expected = _speak_all()[0]  # makes the mirror and remembers it
    for made in mirror_temp.iterdir():
        shutil.rmtree(made)
    assert _speak_all()[0] == expected


SHARED_MIRROR = """
import multiprocessing, sys
from tests.test_espeak import _speak_all
if __name__ == "__main__":
    _speak_all()
    with multiprocessing.get_context(sys.argv[1]).Pool(2) as pool:
        pool.map(_speak_all, ["en-us", "en-us"])
"""


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_processes_and_their_workers_share_one_mirror_and_voice_list(
    method: str, tmp_path: pathlib.Path
) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")
    script = tmp_path / "shared_mirror.py"
    script.write_text(SHARED_MIRROR, encoding="utf-8")
    temp = tmp_path / "temp"
    temp.mkdir()
    root = pathlib.Path(__file__).resolve().parents[1]
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(root)}
    for _ in range(2):
        subprocess.run([sys.executable, str(script), method], env=env, check=True, timeout=120)
    made = sorted(p.name.rsplit("-", 1)[0] for p in temp.iterdir())
    uid = os.getuid()
    assert made == [f"meditate-espeak-{uid}", f"meditate-espeak-voices-{uid}"]  # mirror, list


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_processes_give_the_parent_results(method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")
    expected = _speak_all()
    stop = threading.Event()

    def busy() -> None:
        engine = EspeakEngine()
        while not stop.is_set():
            engine.synthesize(TEXTS[0], VoiceSettings())

    # A thread synthesizing while we fork: children must not inherit a held lock or a
    # half-used library instance.
    worker = threading.Thread(target=busy)
    worker.start()
    try:
        context = multiprocessing.get_context(method)
        with context.Pool(2) as pool:
            results = pool.map(_speak_all, ["en-us", "en-us"])
    finally:
        stop.set()
        worker.join()
    assert results == [expected, expected]


def test_unknown_voice_lists_close_matches() -> None:
    with pytest.raises(EngineError) as caught:
        EspeakEngine().synthesize("Hello.", VoiceSettings(name="en-uss"))
    message = str(caught.value)
    assert "en-uss" in message
    assert "en-us" in message.split("did you mean", 1)[1]


def test_unknown_language_is_an_error() -> None:
    with pytest.raises(EngineError, match="unknown voice or language 'qq'"):
        EspeakEngine().cache_settings(VoiceSettings(name="", language="qq"))


def test_unknown_variant_is_an_error() -> None:
    with pytest.raises(EngineError, match=r"variant '\+nosuch'"):
        resolve_voice("en+nosuch")


@pytest.mark.parametrize(
    ("requested", "resolved"),
    [
        ("en", "gmw/en"),
        ("en-us", "gmw/en-US"),
        ("EN-US", "gmw/en-US"),
        ("English (America)", "gmw/en-US"),
        ("gmw/en-US", "gmw/en-US"),
        ("en-gb", "gmw/en"),
        ("en-us+f3", "gmw/en-US+f3"),
    ],
)
def test_voice_names_resolve_to_one_identifier(requested: str, resolved: str) -> None:
    assert resolve_voice(requested) == resolved


def test_language_is_used_when_no_name_is_set() -> None:
    engine = EspeakEngine()
    settings = engine.cache_settings(VoiceSettings(name="", language="en-us"))
    assert settings == {"voice": "gmw/en-US", "wpm": "115"}


def test_rate_does_not_enter_cache_settings() -> None:
    engine = EspeakEngine()
    slow = engine.cache_settings(VoiceSettings(name="en-us", rate=0.5))
    assert slow == engine.cache_settings(VoiceSettings(name="en-us", rate=1.0))


def test_voices_languages_version_availability() -> None:
    engine = EspeakEngine()
    assert {"en", "en-us", "de"} <= set(engine.voices())
    assert {"en", "en-us", "en-gb", "fr"} <= set(engine.languages())
    assert engine.version().startswith("espeak-ng 1.")
    assert "espeakng-loader" in engine.version()
    availability = engine.availability()
    assert availability.usable, availability.reason
    assert any(v.description == "English (America)" for v in engine.voice_list())


@pytest.mark.parametrize(
    "text",
    ["-v xx --stdout hello", "<speak>Hi <break time='3s'/> there</speak>", "Tab\tand \x00 nul."],
)
def test_hostile_text_is_spoken_as_text(text: str) -> None:
    samples, sample_rate, _ = _pcm(EspeakEngine().synthesize(text, VoiceSettings()).data)
    assert 0.2 < samples.size / sample_rate < 10
