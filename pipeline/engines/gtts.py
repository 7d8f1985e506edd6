"""The ``gtts`` engine: Google Translate's text-to-speech, throttled and retried, never replaced.

The request format comes from the gTTS library (its RPC packaging and headers, private: see
:func:`gtts_request`); the HTTP is done here with the standard library, so that timeouts, status
codes and retries are ours.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import http.client
import importlib.util
import io
import ipaddress
import json
import logging
import random
import re
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from pipeline.core.errors import EngineError
from pipeline.engines.base import Availability, EncodedAudio, Engine
from pipeline.project.settings import RetrySettings, VoiceSettings
from pipeline.script.text import split_for_limit

log = logging.getLogger(__name__)

MAX_CHARS = 100
"""Longest text Google Translate TTS takes in one request (gTTS's GOOGLE_TTS_MAX_CHARS)."""
RPC_PATH = "_/TranslateWebserverUi/data/batchexecute"
"""Path of the batchexecute RPC that gTTS calls."""
RPC_ID = "jQ1olc"
"""RPC id of text-to-speech inside a batchexecute answer."""
GOOGLE_HOST = "https://translate.google.{tld}"
"""Default base URL; the tld selects the accent."""
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
"""A larger answer is not audio of one sentence part."""
SERVICE = "Google Translate TTS"

_UNSPEAKABLE = re.compile(r"^[\W_]*$")
_MP3_ENCODED_SPEECH = re.compile(r'jQ1olc","\[\\"(.*)\\"]')


@cache
def _languages() -> dict[str, str]:
    """gTTS's offline table of language codes -> names."""
    from gtts.lang import tts_langs

    return dict(tts_langs())


@cache
def known_tlds() -> frozenset[str]:
    """Google domains gTTS lists as accents (its ``gtts.accents``), plus the usual ones."""
    try:
        from gtts.accents import accents
    except ImportError:  # older gTTS
        accents = []
    found = {str(tld).replace(",", ".").strip().lower() for tld in accents}
    return frozenset(found | {"com", "co.uk", "com.au", "ca", "co.in", "ie", "co.za", "us"})


def _quote(text: str, limit: int = 60) -> str:
    """The sentence as an error quotes it: its first ``limit`` characters."""
    return '"' + (text if len(text) <= limit else text[:limit].rstrip() + "…") + '"'


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Throttle:
    """At most ``concurrency`` requests in flight and ``min_interval_s`` between their starts."""

    def __init__(self, concurrency: int, min_interval_s: float) -> None:
        self.concurrency = max(1, concurrency)
        self.min_interval_s = max(0.0, min_interval_s)
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._lock = threading.Lock()
        self._next_start_s = 0.0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a request slot: wait for a free one, then for the interval since the last start."""
        with self._slots:
            with self._lock:
                now_s = time.monotonic()
                start_s = max(now_s, self._next_start_s)
                self._next_start_s = start_s + self.min_interval_s
            if start_s > now_s:
                time.sleep(start_s - now_s)
            yield


_throttles: dict[tuple[str, int, float], Throttle] = {}
_throttles_lock = threading.Lock()


def shared_throttle(host: str, concurrency: int, min_interval_s: float) -> Throttle:
    """The process-wide throttle for one host and setting, shared by every engine instance."""
    key = (host, concurrency, min_interval_s)
    with _throttles_lock:
        throttle = _throttles.get(key)
        if throttle is None:
            throttle = _throttles[key] = Throttle(concurrency, min_interval_s)
        return throttle


class _Failed(Exception):
    """One failed request: what happened, whether to retry, and its probable cause."""

    def __init__(
        self, kind: str, what: str, cause: str, retryable: bool, retry_after_s: float = 0.0
    ) -> None:
        super().__init__(what)
        self.kind = kind
        self.what = what
        self.cause = cause
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class _Target:
    """Where and how to ask for one voice."""

    language: str
    tld: str
    base_url: str


def extract_audio(body: bytes) -> bytes | None:
    """The MP3 inside a batchexecute answer, or None when there is none (empty, garbled)."""
    text = body.decode("utf-8", "replace")
    for line in text.splitlines():
        if RPC_ID not in line:
            continue
        encoded = _encoded_from_json(line)
        if encoded is None:
            match = _MP3_ENCODED_SPEECH.search(line)  # gTTS's own parsing, as a fallback
            encoded = match.group(1) if match else None
        if not encoded:
            return None
        try:
            audio = base64.b64decode(encoded.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            return None
        return audio if _looks_like_mp3(audio) else None
    return None


def _encoded_from_json(line: str) -> str | None:
    """The base64 string of the ``jQ1olc`` entry of one answer line, parsed as JSON."""
    try:
        entries = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, list) and len(entry) > 2 and entry[1] == RPC_ID:
            if not isinstance(entry[2], str):
                return None
            try:
                payload = json.loads(entry[2])
            except ValueError:
                return None
            if isinstance(payload, list) and payload and isinstance(payload[0], str):
                return payload[0]
            return None
    return None


def _looks_like_mp3(data: bytes) -> bool:
    """An ID3 tag or an MPEG audio frame sync at the start."""
    if len(data) < 4:
        return False
    return data.startswith(b"ID3") or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


def _strip_id3(data: bytes) -> bytes:
    """``data`` without a leading ID3v2 tag, so that parts concatenate into one stream."""
    if len(data) < 10 or not data.startswith(b"ID3"):
        return data
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if data[5] & 0x10 else 0
    return data[10 + size + footer :]


class GttsEngine(Engine):
    """Google Translate TTS through gTTS's protocol: ``language`` and ``tld`` (accent) voices.

    It never falls back to another engine: a failure after the retries is an EngineError.
    """

    name = "gtts"

    def __init__(
        self,
        retry: RetrySettings | None = None,
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(retry)
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._sleep = sleep or time.sleep
        host = self.retry.endpoint.rstrip("/") or "google"
        self._throttle = shared_throttle(host, self.retry.concurrency, self.retry.min_interval_s)

    def version(self) -> str:
        """``gTTS <version>``: a new gTTS may change the protocol, hence the audio."""
        import gtts

        return f"gTTS {gtts.__version__}"

    def availability(self) -> Availability:
        """Usable when gTTS is installed; the network is not probed."""
        if importlib.util.find_spec("gtts") is None:
            return Availability(False, "the gTTS package is not installed (pip install gTTS)")
        where = self.retry.endpoint or "translate.google.<tld>"
        return Availability(True, f"online: needs {where}")

    def voices(self) -> list[str]:
        """Voices are not selectable; the accent is chosen with ``tld``."""
        return []

    def languages(self) -> list[str]:
        """Language codes of gTTS's offline table."""
        return sorted(_languages())

    def language_names(self) -> dict[str, str]:
        """Language codes with gTTS's names for them."""
        return dict(sorted(_languages().items()))

    def cache_settings(self, voice: VoiceSettings) -> dict[str, str]:
        """Language and accent domain (validated and canonical), and the endpoint when it is not
        Google's: a test server's or a proxy's audio must never pass for Google's.
        """
        target = self._target(voice)
        settings = {"language": target.language, "tld": target.tld}
        if target.base_url != GOOGLE_HOST.format(tld=target.tld):
            settings["endpoint"] = target.base_url
        return settings

    def synthesize(self, text: str, voice: VoiceSettings) -> EncodedAudio:
        """Speak one sentence, in parts of at most 100 characters cut at clause ends."""
        target = self._target(voice)
        parts = [part for part in split_for_limit(text, MAX_CHARS) if not _UNSPEAKABLE.match(part)]
        if not parts:
            raise EngineError(f"gtts: nothing to speak in {_quote(text)}")
        audio = [self._fetch(part, target, text) for part in parts]
        data = audio[0] + b"".join(_strip_id3(chunk) for chunk in audio[1:])
        return EncodedAudio(data=data, format="mp3")

    def _target(self, voice: VoiceSettings) -> _Target:
        language = _canonical_language(voice.language)
        tld = voice.tld.strip().lower().lstrip(".")
        if tld not in known_tlds():
            close = difflib.get_close_matches(tld, sorted(known_tlds()), n=5, cutoff=0.5)
            similar = f"; similar: {', '.join(close)}" if close else ""
            raise EngineError(
                f"gtts: unknown tld '{voice.tld}' (the accent's Google domain, e.g. com, co.uk, "
                f"com.au, ca, co.in, ie, co.za){similar}"
            )
        base_url = self.retry.endpoint.rstrip("/") or GOOGLE_HOST.format(tld=tld)
        return _Target(language, tld, base_url)

    def _fetch(self, part: str, target: _Target, sentence: str) -> bytes:
        """One part's MP3, retried with exponential back-off and jitter."""
        tries = max(1, self.retry.tries)
        failures: list[_Failed] = []
        for attempt in range(1, tries + 1):
            try:
                with self._throttle.slot():
                    return self._request(part, target)
            except _Failed as failure:
                failures.append(failure)
                if not failure.retryable or attempt == tries:
                    break
                delay_s = self._backoff_s(attempt, failure.retry_after_s)
                log.info(
                    "gtts: %s for %s; try %d of %d in %.2f s",
                    failure.what,
                    _quote(part),
                    attempt + 1,
                    tries,
                    delay_s,
                )
                self._sleep(delay_s)
        raise _final_error(sentence, failures)

    def _backoff_s(self, attempt: int, retry_after_s: float) -> float:
        """Delay before try ``attempt + 1``: uniform between the floor and a doubling ceiling."""
        floor_s = max(0.0, self.retry.backoff_min_s)
        cap_s = max(floor_s, self.retry.backoff_max_s)
        ceiling_s = min(cap_s, floor_s * 2.0**attempt)
        with self._rng_lock:
            delay_s = self._rng.uniform(floor_s, ceiling_s)
        return min(cap_s, max(delay_s, retry_after_s))

    def _request(self, part: str, target: _Target) -> bytes:
        """Send one RPC and return its MP3; every failure is a :class:`_Failed`."""
        url = f"{target.base_url}/{RPC_PATH}"
        form, headers = gtts_request(part, target.language, target.tld)
        request = urllib.request.Request(url, data=form, headers=headers, method="POST")
        deadline = _Deadline(self.retry.timeout_s)
        handlers: list[urllib.request.BaseHandler] = [
            _DeadlineHTTPHandler(deadline),
            _DeadlineHTTPSHandler(deadline),
        ]
        if _is_loopback(url):
            handlers.append(urllib.request.ProxyHandler({}))
        opener = urllib.request.build_opener(*handlers)
        timeout_s = self.retry.timeout_s
        try:
            with opener.open(request, timeout=timeout_s) as response:
                body = _read_bounded(response, deadline)
        except urllib.error.HTTPError as error:
            retry_after_s = _retry_after_s(error.headers.get("Retry-After"))
            error.close()
            raise _http_failure(error.code, str(error.reason), target, retry_after_s) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise _timeout_failure(target, timeout_s) from None
            if isinstance(error.reason, ssl.SSLCertVerificationError):
                raise _untrusted_failure(error.reason, target) from None
            if isinstance(error.reason, socket.gaierror):
                unresolved = deadline.unresolved
                raise _resolve_failure(error.reason, url, unresolved, self.retry.endpoint) from None
            raise _connection_failure(str(error.reason), target) from None
        except TimeoutError:
            raise _timeout_failure(target, timeout_s) from None
        except (http.client.HTTPException, OSError) as error:
            raise _connection_failure(f"{type(error).__name__}: {error}", target) from None
        audio = extract_audio(body)
        if audio is None:
            what = "an empty answer" if not body.strip() else "an answer without audio"
            raise _Failed(
                "no audio",
                f"{what} from {SERVICE}",
                "a captcha page instead of audio, an upstream API change (try `pip install -U "
                f"gTTS`), or language '{target.language}' not served at the moment",
                retryable=True,
            )
        return audio


def _canonical_language(language: str) -> str:
    """The code as gTTS lists it (case-insensitive); EngineError listing similar codes."""
    table = _languages()
    if language in table:
        return language
    by_lower = {code.lower(): code for code in table}
    wanted = language.strip().lower().replace("_", "-")
    if wanted in by_lower:
        return by_lower[wanted]
    similar: list[str] = []
    base = wanted.split("-")[0]
    similar += [code for code in sorted(table) if code.lower().split("-")[0] == base]
    similar += [code for code, label in sorted(table.items()) if label.lower() == wanted]
    similar += [by_lower[c] for c in difflib.get_close_matches(wanted, sorted(by_lower), n=5)]
    unique = list(dict.fromkeys(similar))[:8]
    hint = f"; similar: {', '.join(unique)}" if unique else ""
    accent = (
        " (accents are chosen with tld, e.g. language: en, tld: co.uk)" if "-" in wanted else ""
    )
    raise EngineError(
        f"gtts: unknown language '{language}'{hint}{accent}; `meditate engines gtts` lists all"
    )


GTTS_SERIES = (2, 5)
"""The gTTS series whose internals :func:`gtts_request` uses; pyproject.toml caps gTTS below the
next one, and tests/test_contracts.py says what broke when a new gTTS changes them."""


def gtts_request(part: str, language: str, tld: str) -> tuple[bytes, dict[str, str]]:
    """The form body and headers gTTS sends for one part: the one place gTTS internals are used.

    gTTS has no public API for its request: the body is ``gTTS._package_rpc(text)`` (an ``f.req``
    batchexecute form) and the headers ``gTTS.GOOGLE_TTS_HEADERS``; a gTTS without them is an
    EngineError naming what changed. The Referer is the accent's domain.
    """
    import gtts
    from gtts import gTTS

    try:
        packer = gTTS(part, tld=tld, lang=language, lang_check=False)
        body = str(packer._package_rpc(part)).encode("ascii")
        headers = {str(key): str(value) for key, value in gTTS.GOOGLE_TTS_HEADERS.items()}
    except (AttributeError, TypeError) as error:
        major, minor = GTTS_SERIES
        raise EngineError(
            f"gtts: gTTS {gtts.__version__} changed the internals meditate uses to build its "
            f"request (gTTS._package_rpc, gTTS.GOOGLE_TTS_HEADERS: {error}); meditate works with "
            f"gTTS {major}.{minor}.x: pip install 'gTTS>={major}.{minor},<{major}.{minor + 1}'"
        ) from None
    headers["Referer"] = f"https://translate.google.{tld}/"
    return body, headers


class _Deadline:
    """The end of one try: connect, request, headers and body all share it."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.end_s = time.monotonic() + timeout_s
        self.unresolved = ""
        """The host name that did not resolve, if one did not (the endpoint's or a proxy's)."""

    def left_s(self) -> float:
        """Seconds left; TimeoutError once there are none."""
        left_s = self.end_s - time.monotonic()
        if left_s <= 0.0:
            raise TimeoutError(f"not complete within {self.timeout_s:g} s")
        return left_s

    def resolve(self, host: str, port: int) -> list[Any]:
        """``getaddrinfo`` within the time left (it has no timeout of its own)."""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        found: list[list[Any]] = []
        failed: list[OSError] = []

        def look_up() -> None:
            try:
                found.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
            except OSError as error:
                failed.append(error)

        thread = threading.Thread(target=look_up, name="gtts-resolve", daemon=True)
        thread.start()
        thread.join(self.left_s())
        if failed:
            if isinstance(failed[0], socket.gaierror):
                self.unresolved = host
            raise failed[0]
        if not found:
            raise TimeoutError(f"host name not resolved within {self.timeout_s:g} s")
        return found[0]

    def create_connection(
        self, address: tuple[str, int], timeout: object = None, source: object = None
    ) -> socket.socket:
        """A TCP connection to ``address`` made within the time left (``socket.create_connection``
        bounds each step, not their sum).
        """
        host, port = address
        last_error: OSError = OSError(f"no address for {host}")
        for family, kind, protocol, _, where in self.resolve(host, port):
            sock = socket.socket(family, kind, protocol)
            try:
                sock.settimeout(self.left_s())
                sock.connect(where)
                sock.settimeout(self.left_s())  # what a TLS handshake may still take
                return sock
            except OSError as error:
                sock.close()
                last_error = error
        raise last_error


class _DeadlineSocket:
    """A connected socket whose every send and receive gets only the time left of a deadline,
    so that an answer trickled a byte at a time cannot outlast it.
    """

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline
        self._users = 1

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._deadline.left_s())
        self._sock.sendall(data)

    def recv_into(self, buffer: Any) -> int:
        self._sock.settimeout(self._deadline.left_s())
        return self._sock.recv_into(buffer)

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
        """A buffered reader, as ``http.client`` reads an answer through."""
        if mode != "rb":
            raise ValueError(f"unsupported mode {mode!r}")
        self._users += 1
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        """Closed when the connection and every reader have let it go."""
        self._users -= 1
        if self._users == 0:
            self._sock.close()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        super().__init__()
        self._source = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._source.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()


def connect_within(
    connection: http.client.HTTPConnection, deadline: _Deadline, connect: Callable[[], None]
) -> None:
    """Run ``connect`` (resolve, TCP, TLS) within the time left of ``deadline``: the one place
    http.client internals are used.

    http.client has no public hook for how it opens its socket: this sets the private
    ``HTTPConnection._create_connection``; a Python whose ``connect`` no longer calls it is an
    EngineError naming it, not a look-up that may outlast every timeout.
    """
    connection.timeout = deadline.left_s()
    used: list[bool] = []

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        used.append(True)
        return deadline.create_connection(address, *args, **kwargs)

    connection._create_connection = create_connection  # type: ignore[attr-defined]
    connect()
    if not used:
        if connection.sock is not None:
            connection.sock.close()
        raise EngineError(
            f"gtts: this Python ({sys.version.split()[0]}) no longer opens connections through "
            "http.client.HTTPConnection._create_connection, which meditate uses to bound a "
            "request's look-up and connect by its timeout"
        )
    connection.sock = _DeadlineSocket(connection.sock, deadline)


class _DeadlineHTTPConnection(http.client.HTTPConnection):
    """A connection that connects and reads within the try's deadline."""

    def __init__(self, host: str, *, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._deadline = deadline

    def connect(self) -> None:
        connect_within(self, self._deadline, super().connect)


class _DeadlineHTTPSConnection(_DeadlineHTTPConnection, http.client.HTTPSConnection):
    """The same over TLS: ``connect`` above wraps HTTPSConnection's, handshake included."""


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            return _DeadlineHTTPConnection(host, deadline=self._deadline, **kwargs)

        return self.do_open(connection, req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(host: str, **kwargs: Any) -> http.client.HTTPConnection:
            return _DeadlineHTTPSConnection(host, deadline=self._deadline, **kwargs)

        return self.do_open(connection, req, context=self._context)  # type: ignore[attr-defined]


def _read_bounded(response: http.client.HTTPResponse, deadline: _Deadline) -> bytes:
    """The whole body, within the try's deadline and the size bound."""
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise _too_large_failure()
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise _too_large_failure()
        chunks.append(chunk)
        deadline.left_s()


def _retry_after_s(value: str | None) -> float:
    """Seconds of a numeric Retry-After header (0 when absent or a date)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def _http_failure(status: int, reason: str, target: _Target, retry_after_s: float) -> _Failed:
    what = f"{status} ({reason}) from {SERVICE}"
    if status == 429:
        cause = (
            "rate limit; wait and run `meditate speak` again, "
            "or lower gtts concurrency in meditate.yaml"
        )
        return _Failed("429", what, cause, retryable=True, retry_after_s=retry_after_s)
    if status >= 500:
        return _Failed(str(status), what, "upstream error at Google; try again later", True)
    if status == 403:
        cause = "bad token or an upstream API change; try `pip install -U gTTS`"
    elif status == 404:
        cause = f"unsupported tld '{target.tld}' or an upstream API change"
    else:
        cause = "the request was refused; an upstream API change (try `pip install -U gTTS`)"
    return _Failed(str(status), what, cause, retryable=False)


def _too_large_failure() -> _Failed:
    return _Failed(
        "too large",
        f"an answer larger than {MAX_RESPONSE_BYTES // 2**20} MiB (the limit for one sentence "
        f"part) from {SERVICE}",
        "not Google's answer: a wrong gtts endpoint, or a proxy or captive portal in the way",
        retryable=False,
    )


def _timeout_failure(target: _Target, timeout_s: float) -> _Failed:
    return _Failed(
        "timeout",
        f"no complete answer from {target.base_url} within {timeout_s:g} s",
        "a slow or broken network, or Google is throttling; "
        "try again later or raise the gtts timeout in meditate.yaml",
        retryable=True,
    )


def _connection_failure(reason: str, target: _Target) -> _Failed:
    return _Failed(
        "connection",
        f"cannot connect to {target.base_url} ({reason})",
        "no network, or the host is not reachable from here",
        retryable=True,
    )


def _untrusted_failure(error: ssl.SSLCertVerificationError, target: _Target) -> _Failed:
    reason = error.verify_message or error.reason or str(error)
    return _Failed(
        "certificate",
        f"the certificate of {target.base_url} is not trusted ({reason})",
        "something between here and the server intercepts HTTPS (a proxy, a captive portal), "
        "or the gtts endpoint is not the server it names",
        retryable=False,
    )


def _resolve_failure(error: socket.gaierror, url: str, unresolved: str, endpoint: str) -> _Failed:
    host = urllib.parse.urlsplit(url).hostname or url
    reason = error.strerror or str(error)
    if unresolved and unresolved != host:
        what = f"cannot resolve host '{unresolved}' (the proxy for {host}: {reason})"
        cause = "a mistyped proxy in http_proxy or https_proxy, or no network"
        return _Failed("dns", what, cause, retryable=False)
    cause = (
        "a mistyped gtts endpoint (meditate.yaml or MEDITATE_GTTS_ENDPOINT), or no network"
        if endpoint
        else "no network, or no DNS server reachable from here"
    )
    return _Failed("dns", f"cannot resolve host '{host}' ({reason})", cause, retryable=False)


def _final_error(sentence: str, failures: list[_Failed]) -> EngineError:
    """The error about the sentence: the last failure, how many tries, its probable cause."""
    last = failures[-1]
    tries = len(failures)
    after = f" after {tries} tries" if tries > 1 else ""
    kinds = Counter(failure.kind for failure in failures)
    mixed = f" ({', '.join(f'{kind} x{count}' for kind, count in kinds.items())})"
    summary = mixed if len(kinds) > 1 else ""
    return EngineError(
        f"gtts could not speak {_quote(sentence)}: {last.what}{after}{summary}: "
        f"probable cause: {last.cause}"
    )
