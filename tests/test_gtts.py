"""The gtts engine against a local server speaking gTTS's protocol: audio, splitting, faults."""

from __future__ import annotations

import base64
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_gtts import FakeGtts, batchexecute_answer, tone_mp3

from pipeline.core.errors import EngineError
from pipeline.core.ffmpeg import decode
from pipeline.engines.base import Engine
from pipeline.engines.gtts import MAX_CHARS, GttsEngine, extract_audio
from pipeline.project.settings import RetrySettings, VoiceSettings
from pipeline.script.text import split_for_limit
from pipeline.speech.key import speech_key

VOICE = VoiceSettings(engine="gtts", language="en", tld="co.uk")
CLIP_S = len(decode(tone_mp3(0.5), 24000, 1, "mp3")) / 24000
"""Decoded length of one fake answer (0.5 s of tone plus the MP3 codec's padding)."""

LONG = (
    "When you are ready, and only when you feel settled and calm, let your attention rest "
    "gently on the breath; notice each inhale as it arrives, each exhale as it leaves, "
    "and the small pause between them, without any effort at all, just as it is."
)


@pytest.fixture
def fake() -> Iterator[FakeGtts]:
    with FakeGtts(hang_s=1.0) as server:
        yield server


def fast(endpoint: str, **changes: object) -> RetrySettings:
    """Retry settings scaled down so that every fault resolves in well under a second."""
    retry = RetrySettings(
        tries=5,
        backoff_min_s=0.01,
        backoff_max_s=0.02,
        timeout_s=0.3,
        concurrency=2,
        min_interval_s=0.0,
        endpoint=endpoint,
    )
    return replace(retry, **changes)  # type: ignore[arg-type]


def engine_for(server: FakeGtts, **changes: object) -> GttsEngine:
    return GttsEngine(fast(server.url, **changes), rng=random.Random(7))


def seconds(data: bytes) -> float:
    return len(decode(data, 24000, 1, "mp3")) / 24000


def test_ok_returns_decodable_mp3(fake: FakeGtts) -> None:
    audio = engine_for(fake).synthesize("Welcome. Find a comfortable position.", VOICE)
    assert audio.format == "mp3"
    samples = decode(audio.data, 24000, 1, "mp3")
    assert len(samples) / 24000 == pytest.approx(0.5, abs=0.1)
    assert float(np.sqrt(np.mean(samples**2))) > 0.05  # the tone (lavfi sine: 1/8 amplitude)
    [request] = fake.requests
    assert (request.text, request.language, request.tld) == (
        "Welcome. Find a comfortable position.",
        "en",
        "co.uk",
    )


def test_long_sentence_split_at_clause_boundaries(fake: FakeGtts) -> None:
    audio = engine_for(fake).synthesize(LONG, VOICE)
    texts = fake.texts
    assert len(texts) == len(split_for_limit(LONG, MAX_CHARS)) == 4
    assert all(len(text) <= MAX_CHARS for text in texts)
    assert all(text[-1] in ",;." for text in texts)
    assert " ".join(texts) == LONG
    assert texts[1].endswith("breath;")  # a semicolon beats a comma
    assert seconds(audio.data) == pytest.approx(4 * CLIP_S, abs=0.1)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("Breathe in.", ["Breathe in."]),
        ("", []),
        ("word " * 30, ["word " * 14 + "word", "word " * 14 + "word"]),
        ("x" * 230, ["x" * 100, "x" * 100, "x" * 30]),
        ("a" * 95 + ", then rest.", ["a" * 95 + ",", "then rest."]),
        ("b" * 60 + ". " + "c " * 25 + "d, e", ["b" * 60 + ".", "c " * 25 + "d, e"]),
        (
            '"' + "q" * 80 + '," she said, ' + "r" * 30,
            ['"' + "q" * 80 + ',"', "she said, " + "r" * 30],
        ),
    ],
)
def test_split_for_limit(text: str, parts: list[str]) -> None:
    assert split_for_limit(text, MAX_CHARS) == parts


def test_429_twice_then_ok(fake: FakeGtts) -> None:
    fake.script("429", "429", "ok")
    audio = engine_for(fake).synthesize("Breathe in.", VOICE)
    assert seconds(audio.data) == pytest.approx(CLIP_S, abs=0.05)
    assert [request.mode for request in fake.requests] == ["429", "429", "ok"]


def test_429_forever_fails_within_budget_naming_the_cause(fake: FakeGtts) -> None:
    fake.default_mode = "429"
    sentence = "Let your shoulders drop, and let the weight of your body sink into the chair."
    start_s = time.monotonic()
    with pytest.raises(EngineError) as caught:
        engine_for(fake).synthesize(sentence, VOICE)
    elapsed_s = time.monotonic() - start_s
    message = str(caught.value)
    assert len(fake.requests) == 5
    assert elapsed_s < 5 * 0.3 + 4 * 0.02 + 1.0
    assert f'"{sentence[:60].rstrip()}…"' in message
    assert "429 (Too Many Requests) from Google Translate TTS after 5 tries" in message
    assert "probable cause: rate limit" in message
    assert "lower gtts concurrency in meditate.yaml" in message


def test_500_is_retried(fake: FakeGtts) -> None:
    fake.script("500", "503", "ok")
    engine_for(fake).synthesize("Breathe out.", VOICE)
    assert len(fake.requests) == 3


def test_500_forever_names_google(fake: FakeGtts) -> None:
    fake.default_mode = "502"
    with pytest.raises(EngineError, match=r"502 \(Bad Gateway\).*after 3 tries.*upstream"):
        engine_for(fake, tries=3).synthesize("Breathe out.", VOICE)
    assert len(fake.requests) == 3


def test_hang_times_out_and_is_retried(fake: FakeGtts) -> None:
    fake.script("hang", "ok")
    engine_for(fake).synthesize("Rest here.", VOICE)
    assert [request.mode for request in fake.requests] == ["hang", "ok"]


def test_hang_forever_is_an_error_after_the_timeouts(fake: FakeGtts) -> None:
    fake.default_mode = "hang"
    start_s = time.monotonic()
    with pytest.raises(EngineError, match=r"no complete answer .* within 0\.3 s after 2 tries"):
        engine_for(fake, tries=2).synthesize("Rest here.", VOICE)
    assert time.monotonic() - start_s < 2 * 0.3 + 0.5
    assert len(fake.requests) == 2


@pytest.mark.parametrize("mode", ["trickle", "slowheaders"])
def test_trickled_answer_fails_within_one_deadline_per_try(mode: str) -> None:
    # one byte every 50 ms: every read is quicker than the timeout, the whole answer is not
    with FakeGtts(default_mode=mode, trickle_s=0.05) as server:
        start_s = time.monotonic()
        with pytest.raises(EngineError) as caught:
            engine_for(server, tries=2).synthesize("Rest here.", VOICE)
        elapsed_s = time.monotonic() - start_s
        assert len(server.requests) == 2
    assert elapsed_s < 2 * 0.3 + 2.0  # the old client hung for minutes
    assert re.search(r"no complete answer from .* within 0\.3 s after 2 tries", str(caught.value))
    assert "raise the gtts timeout" in str(caught.value)


def test_trickle_then_ok_is_retried() -> None:
    with FakeGtts(["trickle", "ok"], trickle_s=0.05) as server:
        audio = engine_for(server, timeout_s=1.0).synthesize("Rest here.", VOICE)
        assert [request.mode for request in server.requests] == ["trickle", "ok"]
    assert seconds(audio.data) == pytest.approx(CLIP_S, abs=0.05)


@pytest.mark.skipif(sys.platform != "linux", reason="Linux drops SYNs to a full queue")
def test_stalled_connect_fails_within_the_deadline() -> None:
    # a listening socket whose accept queue is full: the kernel drops further SYNs
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            time.sleep(0.05)
            engine = GttsEngine(fast(f"http://127.0.0.1:{port}", tries=2), rng=random.Random(1))
            start_s = time.monotonic()
            with pytest.raises(EngineError, match=r"within 0\.3 s after 2 tries"):
                engine.synthesize("Rest here.", VOICE)
            elapsed_s = time.monotonic() - start_s
        finally:
            for filler in fillers:
                filler.close()
    assert elapsed_s < 2 * 0.3 + 2.0  # connect time counts against the try's deadline


@pytest.mark.parametrize("mode", ["empty", "garbage", "noaudio", "badaudio"])
def test_bad_bodies_are_retried(fake: FakeGtts, mode: str) -> None:
    fake.script(mode, "ok")
    audio = engine_for(fake).synthesize("Rest here.", VOICE)
    assert seconds(audio.data) == pytest.approx(CLIP_S, abs=0.05)
    assert len(fake.requests) == 2


@pytest.mark.parametrize("mode", ["empty", "garbage", "noaudio", "badaudio"])
def test_bad_bodies_forever_are_an_error(fake: FakeGtts, mode: str) -> None:
    fake.default_mode = mode
    with pytest.raises(EngineError, match=r"from Google Translate TTS after 3 tries.*captcha"):
        engine_for(fake, tries=3).synthesize("Rest here.", VOICE)
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("status", "cause"),
    [("403", "bad token"), ("404", "unsupported tld 'co.uk'"), ("400", "the request was refused")],
)
def test_other_4xx_is_not_retried(fake: FakeGtts, status: str, cause: str) -> None:
    fake.default_mode = status
    with pytest.raises(EngineError) as caught:
        engine_for(fake).synthesize("Rest here.", VOICE)
    assert len(fake.requests) == 1
    message = str(caught.value)
    assert message.startswith(f'gtts could not speak "Rest here.": {status} (')
    assert "tries" not in message
    assert f"probable cause: {cause}" in message


def test_connection_refused_is_retried_then_an_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = GttsEngine(fast(f"http://127.0.0.1:{port}", tries=3), rng=random.Random(1))
    with pytest.raises(EngineError, match=r"cannot connect to .*after 3 tries.*not reachable"):
        engine.synthesize("Rest here.", VOICE)


def test_a_slow_name_lookup_counts_against_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    real_getaddrinfo = socket.getaddrinfo

    def slow_getaddrinfo(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "slow-dns.example.invalid":
            time.sleep(3.0)  # a resolver that does not answer
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    engine = GttsEngine(fast("http://slow-dns.example.invalid", tries=2), rng=random.Random(1))
    start_s = time.monotonic()
    with pytest.raises(EngineError, match=r"no complete answer .* within 0\.3 s after 2 tries"):
        engine.synthesize("Rest here.", VOICE)
    assert time.monotonic() - start_s < 2 * 0.3 + 1.5


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throw-away certificate and key for 127.0.0.1."""
    certificate, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(certificate), "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(command, check=True, capture_output=True)
    return certificate, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_endpoint_speaks_and_keeps_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    with FakeGtts(["ok", "trickle"], trickle_s=0.05, tls=(certificate, key)) as server:
        assert server.url.startswith("https://127.0.0.1:")
        engine = engine_for(server, tries=1, timeout_s=2.0)
        audio = engine.synthesize("Rest here.", VOICE)
        assert seconds(audio.data) == pytest.approx(CLIP_S, abs=0.05)
        start_s = time.monotonic()
        with pytest.raises(EngineError, match=r"no complete answer .* within 2 s"):
            engine.synthesize("Rest again.", VOICE)
        assert time.monotonic() - start_s < 2.0 + 2.0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_an_untrusted_certificate_is_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with FakeGtts(tls=self_signed(tmp_path)) as server:
        with pytest.raises(EngineError) as caught:
            engine_for(server, timeout_s=2.0).synthesize("Rest here.", VOICE)
        assert len(server.requests) == 0
    message = str(caught.value)
    assert f"the certificate of {server.url} is not trusted" in message
    assert "tries" not in message
    assert "probable cause: something between here and the server intercepts HTTPS" in message


def test_connection_reset_is_retried(fake: FakeGtts) -> None:
    fake.script("reset", "ok")
    engine_for(fake).synthesize("Rest here.", VOICE)
    assert [request.mode for request in fake.requests] == ["reset", "ok"]


def test_unresolvable_host_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # the .invalid top-level domain never resolves (RFC 2606): no host is contacted
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    slept: list[float] = []
    retry = fast("http://no-such-host.invalid", tries=5)
    engine = GttsEngine(retry, rng=random.Random(1), sleep=slept.append)
    start_s = time.monotonic()
    with pytest.raises(EngineError) as caught:
        engine.synthesize("Rest here.", VOICE)
    assert time.monotonic() - start_s < 2.0
    assert slept == [], "a name that does not resolve is not retried"
    message = str(caught.value)
    assert re.search(r"cannot resolve host 'no-such-host\.invalid' \(.+\): probable cause", message)
    assert "tries" not in message
    assert "a mistyped gtts endpoint" in message


def test_an_unresolvable_proxy_is_named_as_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://proxy.example.invalid:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    engine = GttsEngine(fast("http://tts.example.invalid", tries=5), sleep=lambda _: None)
    with pytest.raises(EngineError) as caught:
        engine.synthesize("Rest here.", VOICE)
    message = str(caught.value)
    assert "cannot resolve host 'proxy.example.invalid' (the proxy" in message
    assert "probable cause: a mistyped proxy in http_proxy or https_proxy" in message
    assert "tries" not in message


@pytest.mark.parametrize("mode", ["huge", "hugestream"])
def test_oversized_answer_is_named_with_the_limit_and_not_retried(mode: str) -> None:
    with FakeGtts(default_mode=mode) as server:
        with pytest.raises(EngineError) as caught:
            engine_for(server, timeout_s=10.0).synthesize("Rest here.", VOICE)
        assert len(server.requests) == 1
    message = str(caught.value)
    assert "an answer larger than 16 MiB (the limit for one sentence part)" in message
    assert "empty" not in message
    assert "probable cause: not Google's answer" in message


def test_mixed_failures_are_summarized(fake: FakeGtts) -> None:
    fake.script("429", "500", "429")
    with pytest.raises(EngineError, match=r"after 3 tries \(429 x2, 500 x1\)"):
        engine_for(fake, tries=3).synthesize("Rest here.", VOICE)


def test_concurrency_is_never_exceeded_across_threads_and_instances() -> None:
    with FakeGtts(delay_s=0.15) as server:
        errors: list[BaseException] = []

        def speak(index: int) -> None:
            try:
                # a generous timeout: a retry on a loaded machine would be a seventh request
                engine = engine_for(server, timeout_s=5.0)
                engine.synthesize(f"Sentence number {index}.", VOICE)
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=speak, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert not errors
        assert len(server.requests) == 6
        assert server.max_in_flight == 2


def test_min_interval_between_request_starts() -> None:
    # The throttle schedules the k-th start of a burst at least k intervals after the burst
    # began, whatever the load; a request reaches the server at or after its scheduled start.
    # So the k-th arrival is no earlier than k intervals after a time taken before the burst:
    # exact, with no tolerance, where gaps between two arrivals vary with thread scheduling.
    with FakeGtts() as server:
        engine = engine_for(server, concurrency=4, min_interval_s=0.1, timeout_s=5.0)
        threads = [
            threading.Thread(target=engine.synthesize, args=(f"Part {i}.", VOICE)) for i in range(5)
        ]
        burst_s = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        starts = sorted(request.start_s for request in server.requests)
        second_burst_s = time.monotonic()
        threads = [
            threading.Thread(target=engine.synthesize, args=(f"More {i}.", VOICE)) for i in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        later = sorted(request.start_s for request in server.requests[5:])
    assert len(starts) == 5 and len(later) == 3
    assert all(start_s - burst_s >= k * 0.1 for k, start_s in enumerate(starts)), starts
    assert all(start_s - second_burst_s >= k * 0.1 for k, start_s in enumerate(later)), later


def test_backoff_is_exponential_jittered_and_seeded() -> None:
    def delays(seed: int) -> list[float]:
        slept: list[float] = []
        with FakeGtts(default_mode="429") as server:
            retry = replace(fast(server.url), backoff_min_s=2.0, backoff_max_s=60.0)
            engine = GttsEngine(retry, rng=random.Random(seed), sleep=slept.append)
            with pytest.raises(EngineError):
                engine.synthesize("Rest here.", VOICE)
        return slept

    first = delays(3)
    assert first == delays(3)
    assert first != delays(4)
    assert len(first) == 4
    for attempt, delay_s in enumerate(first, start=1):
        assert 2.0 <= delay_s <= min(60.0, 2.0 * 2**attempt)


def test_retry_after_is_honoured() -> None:
    slept: list[float] = []
    with FakeGtts(["429", "ok"], retry_after_s=7) as server:
        retry = replace(fast(server.url), backoff_max_s=60.0)
        engine = GttsEngine(retry, rng=random.Random(0), sleep=slept.append)
        engine.synthesize("Rest here.", VOICE)
    assert slept == [7.0]


@pytest.mark.parametrize(
    ("language", "similar"),
    [("english", "en"), ("en-us", "en"), ("fr-FR", "fr-CA"), ("pt_br", "pt")],
)
def test_unknown_language_lists_similar_codes(fake: FakeGtts, language: str, similar: str) -> None:
    voice = replace(VOICE, language=language)
    with pytest.raises(EngineError) as caught:
        engine_for(fake).synthesize("Hello.", voice)
    message = str(caught.value)
    assert message.startswith(f"gtts: unknown language '{language}'; similar: ")
    assert similar in re.split(r"[ ,;()]+", message)
    assert fake.requests == []


def test_unknown_tld_is_an_error(fake: FakeGtts) -> None:
    with pytest.raises(EngineError, match=r"unknown tld 'co.ukk'.*similar: co.uk"):
        engine_for(fake).synthesize("Hello.", replace(VOICE, tld="co.ukk"))
    assert fake.requests == []


def test_language_case_is_canonical(fake: FakeGtts) -> None:
    engine = engine_for(fake)
    voice = replace(VOICE, language="zh-cn", tld="com.hk")
    assert GttsEngine().cache_settings(voice) == {"language": "zh-CN", "tld": "com.hk"}
    engine.synthesize("你好。", voice)
    assert (fake.requests[0].language, fake.requests[0].tld) == ("zh-CN", "com.hk")


def test_a_custom_endpoint_enters_the_cache_key(fake: FakeGtts) -> None:
    google = GttsEngine()
    custom = engine_for(fake)
    # the default endpoint's settings (hence every key made so far) are unchanged
    assert google.cache_settings(VOICE) == {"language": "en", "tld": "co.uk"}
    assert custom.cache_settings(VOICE) == {"language": "en", "tld": "co.uk", "endpoint": fake.url}

    def key(engine: GttsEngine) -> str:
        return speech_key(engine, VOICE, "Breathe in.", 24000)

    assert key(custom) != key(google)
    assert key(custom) == key(GttsEngine(fast(fake.url + "/")))
    assert key(custom) != key(GttsEngine(fast("http://127.0.0.1:1")))
    # Google's own address for the accent, written out, is the default
    assert key(GttsEngine(RetrySettings(endpoint="https://translate.google.co.uk/"))) == key(google)


@pytest.mark.parametrize(
    "text",
    [
        "-- begins with dashes",
        "bell\x07 and\x00 nulls",
        "Smile 🙂 and breathe",
        '<speak>Tags <break time="1s"/> stay text</speak>',
        'Quotes " and \\ backslashes & ampersands = fine',
    ],
)
def test_hostile_text_travels_verbatim(fake: FakeGtts, text: str) -> None:
    engine_for(fake).synthesize(text, VOICE)
    assert fake.texts == [text]


def test_nothing_to_speak_is_an_error(fake: FakeGtts) -> None:
    with pytest.raises(EngineError, match=r'nothing to speak in "\.\.\. !"'):
        engine_for(fake).synthesize("... !", VOICE)
    assert fake.requests == []


def test_describes_itself() -> None:
    engine: Engine = GttsEngine()
    assert engine.version().startswith("gTTS 2.")
    assert engine.voices() == []
    assert {"en", "fr", "de", "zh-CN"} <= set(engine.languages())
    availability = engine.availability()
    assert availability.usable
    assert "translate.google.<tld>" in availability.reason
    assert engine.cache_settings(VOICE) == {"language": "en", "tld": "co.uk"}


def test_extract_audio_reads_google_answers() -> None:
    mp3 = tone_mp3(0.5)
    assert extract_audio(batchexecute_answer(base64.b64encode(mp3).decode())) == mp3
    assert extract_audio(batchexecute_answer(None)) is None
    assert extract_audio(b")]}'\n\n") is None
    assert extract_audio(b"") is None


@pytest.mark.network
def test_real_google_endpoint() -> None:
    engine = GttsEngine(RetrySettings(tries=2, timeout_s=15.0))
    audio = engine.synthesize("Take a slow breath in.", VoiceSettings(engine="gtts"))
    assert 0.5 < seconds(audio.data) < 5.0
