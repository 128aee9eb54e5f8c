"""Bounds shared by the fuzz tests: hypothesis settings sized for 2 busy cores, a wall-clock limit that turns
a hang into a failure, and a peak-memory probe."""

from __future__ import annotations

import signal
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

T = TypeVar("T")

# The deadline is generous on purpose: the machine is shared, and a real hang is caught by ``time_limit``.
FUZZ = settings(max_examples=60, deadline=2000, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
FUZZ_SMALL = settings(FUZZ, max_examples=25)


class Hang(AssertionError):
    """A parser did not return within its time limit."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail with :class:`Hang` when the block runs longer than ``seconds`` (main thread only)."""
    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def measured(call: Callable[[], T], *, seconds: float = 5.0) -> tuple[T | BaseException, float, int]:
    """Run ``call`` under a time limit; return (result or the exception it raised, elapsed s, peak Python bytes)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with time_limit(seconds):
            outcome: T | BaseException = call()
    except Hang:
        raise
    except Exception as error:  # returned for the caller to judge against the documented error type
        outcome = error
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return outcome, time.perf_counter() - started, peak


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """Apply (position, length to delete, bytes to insert) edits, positions taken modulo the length."""
    out = bytearray(data)
    for position, delete, insert in edits:
        at = position % (len(out) + 1)
        out[at:at + delete] = insert
    return bytes(out)


def billion_laughs(root: bytes, levels: int = 10) -> bytes:
    """The classic entity-expansion bomb (10**levels times "lol") with ``root`` as document element."""
    entities = b"".join(b'<!ENTITY l%d "%s">' % (i, (b"&l%d;" % (i - 1)) * 10 if i else b"lol" * 10)
                        for i in range(levels))
    return b'<?xml version="1.0"?><!DOCTYPE %s [%s]><%s>&l%d;</%s>' % (root, entities, root, levels - 1, root)


class ScriptedServer:
    """A hostile peer on loopback (DMP, PSC): answers every GET and POST with what the test last scripted,
    per path prefix (longest first), with an optionally lying Content-Length."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.answers: dict[str, tuple[int, str, bytes, int | None]] = {}
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                status, content_type, body, declared = scripted.lookup(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body) if declared is None else declared))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, prefix: str, content_type: str, body: bytes, *, status: int = 200,
               declared_length: int | None = None) -> None:
        self.answers[prefix] = (status, content_type, body, declared_length)

    def lookup(self, path: str) -> tuple[int, str, bytes, int | None]:
        for prefix in sorted(self.answers, key=len, reverse=True):
            if path.startswith(prefix):
                return self.answers[prefix]
        return 404, "text/plain", b"not scripted", None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class StreamingServer:
    """A hostile server (DMP, whitelist or CRL distribution point): answers every GET and POST with ``head``
    then ``filler`` repeated ``count`` times (every ``pause`` seconds), with
    no Content-Length (the end is the connection's close) unless ``declared`` is set. Counts what it sent."""

    def __init__(self) -> None:
        self.script: dict[str, Any] = {}
        self.sent = 0
        self.finished = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
                script = server.script
                self.send_response(200)
                self.send_header("Content-Type", "application/soap+xml; charset=UTF-8")
                if script.get("declared") is not None:
                    self.send_header("Content-Length", str(script["declared"]))
                self.end_headers()
                server.sent = 0
                try:
                    self.wfile.write(script["head"])
                    for _ in range(script["count"]):
                        self.wfile.write(script["filler"])
                        self.wfile.flush()
                        server.sent += len(script["filler"])
                        if script["pause"]:
                            time.sleep(script["pause"])
                except OSError:
                    pass  # the client hung up: what the limit is for
                finally:
                    server.finished.set()

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, head: bytes, filler: bytes = b"", count: int = 0, *, pause: float = 0.0,
               declared: int | None = None) -> None:
        self.script = {"head": head, "filler": filler, "count": count, "pause": pause, "declared": declared}
        self.finished.clear()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
