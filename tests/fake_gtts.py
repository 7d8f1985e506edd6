"""A local stand-in for Google Translate TTS that speaks gTTS's protocol, for offline tests.

It answers ``POST /_/TranslateWebserverUi/data/batchexecute`` like Google (``)]}'`` prefix, a
``jQ1olc`` line holding a base64 MP3 made by ffmpeg) and can be scripted, request by request, to
fail: ``FakeGtts(modes=["429", "429", "ok"])``. Modes:

- ``ok``: real MP3 audio (``clip_s`` of a tone, after ``delay_s``).
- ``hang``: wait ``hang_s`` (past the client's timeout), then drop the connection.
- ``trickle``: a real answer whose body comes one byte every ``trickle_s`` (each read is quick,
  the whole answer is not); ``slowheaders``: the status line and headers come that way.
- ``huge``: 200 with a body one byte over the engine's size bound (``Content-Length`` set);
  ``hugestream``: the same without ``Content-Length`` (the end is the closed connection).
- ``reset``: drop the connection at once with a TCP reset, no answer.
- ``empty``: 200 with an empty body.
- ``garbage``: 200 with an HTML page (what a captcha redirect looks like).
- ``noaudio``: 200 with a ``jQ1olc`` line but no audio (Google's answer to a bad language).
- ``badaudio``: 200 with a ``jQ1olc`` line whose base64 is not MP3.
- ``429``, ``500``, ``403`` or any other status code: that status with an HTML body (a 429
  carries ``Retry-After: retry_after_s`` when that is set).

When the list is used up, ``default_mode`` answers. Every request is recorded. With
``tls=(certificate, key)`` it serves HTTPS.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from pipeline.core.ffmpeg import run_ffmpeg
from pipeline.engines.gtts import MAX_RESPONSE_BYTES

RPC_PATH = "/_/TranslateWebserverUi/data/batchexecute"
SAMPLE_RATE = 24000
"""Google's TTS MP3 is 24 kHz mono."""


@cache
def tone_mp3(duration_s: float = 0.5, frequency_hz: float = 440.0) -> bytes:
    """A mono MP3 tone like Google's (24 kHz, 32 kb/s, no ID3 tag, no Xing frame), made once."""
    source = f"sine=frequency={frequency_hz}:duration={duration_s}:sample_rate={SAMPLE_RATE}"
    args = ["-f", "lavfi", "-i", source, "-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k"]
    args += ["-write_xing", "0", "-id3v2_version", "0", "-f", "mp3", "pipe:1"]
    return run_ffmpeg(args)


def batchexecute_answer(payload: str | None) -> bytes:
    """A batchexecute answer as Google writes it, with ``payload`` as the RPC result."""
    inner = json.dumps([payload]) if payload is not None else None
    line = json.dumps(
        [
            ["wrb.fr", "jQ1olc", inner, None, None, None, "generic"],
            ["di", 42],
            ["af.httprm", 41, "-1234567890", 7],
        ],
        separators=(",", ":"),
    )
    tail = json.dumps([["e", 4, None, None, len(line) + 60]], separators=(",", ":"))
    return f")]}}'\n\n{len(line)}\n{line}\n{len(tail)}\n{tail}\n".encode()


@dataclass
class Recorded:
    """One request the fake received."""

    text: str
    """The text to speak, decoded from ``f.req``."""
    language: str
    """The language code sent."""
    tld: str
    """The accent, from the Referer ``https://translate.google.<tld>/``."""
    host: str
    """The Host header."""
    mode: str
    """How it was answered."""
    start_s: float
    """``time.monotonic()`` when it arrived."""
    end_s: float = 0.0
    """``time.monotonic()`` when the answer was sent (or dropped)."""


class FakeGtts:
    """A threaded HTTP server on 127.0.0.1 (free port) that behaves like Google Translate TTS."""

    def __init__(
        self,
        modes: Iterable[str] = (),
        *,
        default_mode: str = "ok",
        delay_s: float = 0.0,
        hang_s: float = 2.0,
        trickle_s: float = 0.5,
        clip_s: float = 0.5,
        retry_after_s: float | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.default_mode = default_mode
        self.retry_after_s = retry_after_s
        self.delay_s = delay_s
        self.hang_s = min(hang_s, 10.0)
        self.trickle_s = trickle_s
        self.clip_s = clip_s
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._modes: deque[str] = deque(modes)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._scheme = "http"
        if tls is not None:  # (certificate, key): serve HTTPS
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to give the engine as its endpoint."""
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    @property
    def texts(self) -> list[str]:
        """Texts of the requests received, in order of arrival."""
        with self._lock:
            return [request.text for request in self.requests]

    def script(self, *modes: str) -> None:
        """Answer the next requests with ``modes``, in order (replacing what was left)."""
        with self._lock:
            self._modes = deque(modes)

    def start(self) -> FakeGtts:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake hung handlers, stop serving and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> FakeGtts:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _begin(self, record: Recorded) -> str:
        """Record a request and pick its mode."""
        with self._lock:
            record.mode = self._modes.popleft() if self._modes else self.default_mode
            self.requests.append(record)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return record.mode

    def _end(self, record: Recorded) -> None:
        with self._lock:
            self.in_flight -= 1
            record.end_s = time.monotonic()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeGtts

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that time out and leave are expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """No access log on stderr."""

    def do_POST(self) -> None:
        fake = self.server.fake
        start_s = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1_000_000)).decode("utf-8", "replace")
        if self.path.split("?")[0] != RPC_PATH:
            self._send(404, b"<html>Not Found</html>", "text/html")
            return
        try:
            text, language = _decode_rpc(body)
        except (KeyError, IndexError, TypeError, ValueError):
            self._send(400, b"<html>Bad Request</html>", "text/html")
            return
        referer = self.headers.get("Referer", "")
        tld = referer.split("translate.google.", 1)[-1].strip("/") if referer else ""
        record = Recorded(text, language, tld, self.headers.get("Host", ""), "", start_s)
        mode = fake._begin(record)
        try:
            self._answer(mode, fake)
        finally:
            fake._end(record)

    def _answer(self, mode: str, fake: FakeGtts) -> None:
        if mode == "ok":
            if fake.delay_s:
                fake._stop.wait(fake.delay_s)
            audio = base64.b64encode(tone_mp3(fake.clip_s)).decode("ascii")
            self._send(200, batchexecute_answer(audio))
        elif mode == "hang":
            fake._stop.wait(fake.hang_s)
            self.close_connection = True
        elif mode in ("trickle", "slowheaders"):
            audio = base64.b64encode(tone_mp3(fake.clip_s)).decode("ascii")
            self._trickle(batchexecute_answer(audio), fake, headers_too=mode == "slowheaders")
        elif mode in ("huge", "hugestream"):
            self._send_huge(MAX_RESPONSE_BYTES + 1, with_length=mode == "huge")
        elif mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif mode == "empty":
            self._send(200, b"")
        elif mode == "garbage":
            self._send(200, b"<html><body>Our systems have detected unusual traffic</body></html>")
        elif mode == "noaudio":
            self._send(200, batchexecute_answer(None))
        elif mode == "badaudio":
            self._send(200, batchexecute_answer(base64.b64encode(b"not an mp3 at all").decode()))
        elif mode.isdigit():
            extra = {}
            if mode == "429" and fake.retry_after_s is not None:
                extra["Retry-After"] = f"{fake.retry_after_s:g}"
            self._send(int(mode), f"<html>{mode}</html>".encode(), "text/html", extra)
        else:
            raise ValueError(f"fake gtts: unknown mode {mode!r}")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _trickle(self, body: bytes, fake: FakeGtts, headers_too: bool) -> None:
        """Send a 200 answer one byte every ``trickle_s`` (the headers too, or at once)."""
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        self.close_connection = True
        slow = head + body if headers_too else body
        try:
            if not headers_too:
                self.wfile.write(head)
            for index in range(len(slow)):
                if fake._stop.wait(fake.trickle_s):
                    return
                self.wfile.write(slow[index : index + 1])
        except OSError:
            return  # the client gave up

    def _send_huge(self, size: int, with_length: bool) -> None:
        """A 200 answer of ``size`` bytes of JSON-looking filler."""
        length = f"Content-Length: {size}\r\n" if with_length else ""
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"{length}Connection: close\r\n\r\n"
        ).encode("ascii")
        self.close_connection = True
        block = b"[" * 65536
        try:
            self.wfile.write(head)
            for start in range(0, size, len(block)):
                self.wfile.write(block[: min(len(block), size - start)])
        except OSError:
            return  # the client gave up


def _decode_rpc(body: str) -> tuple[str, str]:
    """Text and language of a gTTS ``f.req`` form body."""
    freq = urllib.parse.parse_qs(body)["f.req"][0]
    rpc = json.loads(freq)
    rpc_id, parameter = rpc[0][0][0], rpc[0][0][1]
    if rpc_id != "jQ1olc":
        raise ValueError(f"unexpected rpc {rpc_id}")
    text, language = json.loads(parameter)[:2]
    return str(text), str(language)
