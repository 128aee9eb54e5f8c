"""MLLP (HL7 minimal lower layer protocol) listener and client.

A frame is ``0x0B <message> 0x1C 0x0D``. The server runs one thread per connection, accepts any number of
messages per connection and answers each one with the bytes returned by ``handle``. It never dies on bad input:
bytes outside a frame are answered with an AR ACK (once per bad run) and skipped; if ``handle`` raises, the
answer is an AE ACK naming the error.

Limits (``MllpLimits``), so that no client can hold the listener or lock the RIS out:
- a frame (or a run of bytes outside any frame) must complete within ``frame_deadline`` seconds of its first
  byte, however slowly it trickles in: past it, AR and close;
- a connection with nothing in progress is closed after ``idle_timeout`` seconds;
- a frame larger than ``max_message_bytes`` gets AR and the connection is closed;
- at most ``max_connections`` open connections, and ``max_connections_per_source`` from one address: a
  connection past either limit gets AR and is closed at once.
Each refusal is reported to ``on_refusal(source, reason, sample)`` (the operator's list of problems).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from drimbox.reports.ack import ERR_INTERNAL, build_ack

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_RECV_SIZE = 65536

log = logging.getLogger(__name__)


class MllpError(ConnectionError):
    """The peer closed, timed out or answered something that is not an MLLP frame."""


def frame(message: bytes) -> bytes:
    """Wrap ``message`` in MLLP framing (framing already present is not doubled)."""
    payload = message
    if payload.startswith(START_BLOCK):
        payload = payload[1:]
    if payload.endswith(END_BLOCK + CARRIAGE_RETURN):
        payload = payload[:-2]
    elif payload.endswith(END_BLOCK):
        payload = payload[:-1]
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


class FrameReader:
    """Incremental de-framer. Feed bytes, get events: ("message", payload) or ("garbage"/"oversize", sample)."""

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self._in_frame = False
        self._skipping = False  # inside an oversize frame, waiting for its end
        self._garbage_reported = False

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        events: list[tuple[str, bytes]] = []
        self._buffer += data
        while self._buffer:
            if self._skipping:
                end = self._buffer.find(END_BLOCK)
                if end < 0:
                    self._buffer.clear()
                    break
                del self._buffer[:end + 1]
                self._skipping = False
                self._in_frame = False
                continue
            if not self._in_frame:
                start = self._buffer.find(START_BLOCK)
                junk = bytes(self._buffer if start < 0 else self._buffer[:start])
                if junk.strip(b"\r\n\t \x1c"):
                    if not self._garbage_reported:
                        events.append(("garbage", junk[:2048]))
                        self._garbage_reported = True
                if start < 0:
                    self._buffer.clear()
                    break
                del self._buffer[:start + 1]
                self._in_frame = True
                self._garbage_reported = False
                continue
            end = self._buffer.find(END_BLOCK)
            restart = self._buffer.find(START_BLOCK)
            if 0 <= restart < (end if end >= 0 else len(self._buffer)):
                # A new frame starts before this one ended: the partial one is unusable.
                events.append(("garbage", bytes(self._buffer[:restart])[:2048]))
                del self._buffer[:restart + 1]
                continue
            if end < 0:
                if len(self._buffer) > self.max_message_bytes:
                    events.append(("oversize", bytes(self._buffer[:2048])))
                    self._buffer.clear()
                    self._skipping = True
                break
            if end > self.max_message_bytes:
                events.append(("oversize", bytes(self._buffer[:2048])))
            else:
                events.append(("message", bytes(self._buffer[:end])))
            del self._buffer[:end + 1]
            if self._buffer[:1] == CARRIAGE_RETURN:
                del self._buffer[:1]
            self._in_frame = False
        return events

    @property
    def pending(self) -> bool:
        return bool(self._buffer) and self._in_frame

    @property
    def busy(self) -> bool:
        """A frame, an oversize frame being skipped or a run of bytes outside any frame is in progress."""
        return self._in_frame or self._skipping or self._garbage_reported

    def sample(self) -> bytes:
        """The first bytes of what is in progress (for a refusal's record)."""
        return bytes(self._buffer[:2048])


@dataclass(frozen=True)
class MllpLimits:
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    frame_deadline: float = 30.0
    idle_timeout: float = 60.0
    max_connections: int = 64
    max_connections_per_source: int = 8


RefusalHook = Callable[[str, str, bytes], None]


class MllpServer:
    """Threaded MLLP listener. ``port=0`` picks a free port (read it from ``.port`` after ``start()``)."""

    def __init__(
        self,
        host: str,
        port: int,
        handle: Callable[[bytes], bytes],
        limits: MllpLimits | None = None,
        *,
        on_refusal: RefusalHook | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.handle = handle
        self.limits = limits or MllpLimits()
        self.on_refusal = on_refusal
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._per_source: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        if self._listener is None:
            return self._requested_port
        return self._listener.getsockname()[1]

    def connections_from(self, source: str) -> int:
        with self._lock:
            return self._per_source.get(source, 0)

    def start(self) -> None:
        if self._listener is not None:
            raise RuntimeError("the MLLP server is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self._requested_port))
        except OSError as exc:
            listener.close()
            raise OSError(exc.errno, f"cannot listen for MLLP on {self.host}:{self._requested_port}: "
                                     f"{exc.strerror}") from exc
        listener.listen(64)
        listener.settimeout(0.5)
        self._listener = listener
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"mllp-accept-{self.port}", daemon=True)
        self._accept_thread.start()
        log.info("MLLP listening on %s:%s", self.host, self.port)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() at once on Linux
            except OSError:
                pass
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accept_thread = None
        self._listener = None

    def __enter__(self) -> MllpServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            source = str(address[0])
            refusal = self._admit(conn, source)
            if refusal:
                self._refuse_connection(conn, source, refusal)
                continue
            threading.Thread(target=self._serve, args=(conn, source), name=f"mllp-{source}:{address[1]}",
                             daemon=True).start()

    def _admit(self, conn: socket.socket, source: str) -> str:
        limits = self.limits
        with self._lock:
            if len(self._connections) >= limits.max_connections:
                return f"too many MLLP connections ({limits.max_connections} open)"
            if self._per_source.get(source, 0) >= limits.max_connections_per_source:
                return f"too many MLLP connections from {source} ({limits.max_connections_per_source} open)"
            self._connections.add(conn)
            self._per_source[source] = self._per_source.get(source, 0) + 1
        return ""

    def _release(self, conn: socket.socket, source: str) -> None:
        with self._lock:
            if conn in self._connections:
                self._connections.discard(conn)
                left = self._per_source.get(source, 1) - 1
                if left > 0:
                    self._per_source[source] = left
                else:
                    self._per_source.pop(source, None)

    def _refuse_connection(self, conn: socket.socket, source: str, reason: str) -> None:
        log.warning("MLLP: refusing a connection from %s: %s", source, reason)
        self._report(source, reason, b"")
        try:
            conn.settimeout(1.0)
            conn.sendall(frame(build_ack(b"", "AR", reason, error_code=ERR_INTERNAL)))
        except OSError:
            pass
        finally:
            conn.close()

    def _report(self, source: str, reason: str, sample: bytes) -> None:
        if self.on_refusal is None:
            return
        try:
            self.on_refusal(source, reason, sample)
        except Exception:  # the listener must survive a failing hook
            log.exception("MLLP: recording a refusal failed")

    def _serve(self, conn: socket.socket, source: str) -> None:
        limits = self.limits
        reader = FrameReader(limits.max_message_bytes)
        started: float | None = None  # first byte of the frame (or bad run) in progress
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                if started is None:
                    conn.settimeout(limits.idle_timeout)
                else:
                    left = started + limits.frame_deadline - now
                    if left <= 0:
                        self._close_late_frame(conn, source, reader)
                        return
                    conn.settimeout(left)
                try:
                    data = conn.recv(_RECV_SIZE)
                except TimeoutError:
                    if started is None:
                        return  # idle: the client reconnects when it has something to send
                    continue  # the deadline check above closes it
                except OSError:
                    return
                if not data:
                    return
                for kind, payload in reader.feed(data):
                    answer = self._answer(kind, payload, source)
                    try:
                        conn.sendall(frame(answer))
                    except OSError:
                        return
                    if kind == "oversize":
                        _close_gently(conn)
                        return
                if not reader.busy:
                    started = None
                elif started is None:
                    started = time.monotonic()
        finally:
            self._release(conn, source)
            conn.close()

    def _close_late_frame(self, conn: socket.socket, source: str, reader: FrameReader) -> None:
        reason = f"MLLP frame not completed within {self.limits.frame_deadline:g} s: connection closed"
        sample = reader.sample()
        log.warning("MLLP: %s from %s", reason, source)
        self._report(source, reason, sample)
        try:
            conn.settimeout(1.0)
            conn.sendall(frame(build_ack(sample, "AR", reason, error_code=ERR_INTERNAL)))
        except OSError:
            return
        _close_gently(conn)

    def _answer(self, kind: str, payload: bytes, source: str) -> bytes:
        if kind == "garbage":
            log.warning("MLLP: %d bytes outside a frame from %s", len(payload), source)
            reason = "data outside MLLP framing (expected 0x0B ... 0x1C 0x0D)"
            self._report(source, reason, payload)
            return build_ack(payload, "AR", reason, error_code="100")
        if kind == "oversize":
            reason = (f"message larger than {self.limits.max_message_bytes} bytes (DRIMbox.Hl7.MaxMessageBytes): "
                      "refused, connection closed")
            log.warning("MLLP: %s from %s", reason, source)
            self._report(source, reason, payload)
            return build_ack(payload, "AR", reason, error_code=ERR_INTERNAL)
        try:
            answer = self.handle(payload)
            if not isinstance(answer, (bytes, bytearray)):
                raise TypeError(f"the handler returned {type(answer).__name__}, not bytes")
            return bytes(answer)
        except Exception as exc:  # the listener must survive any handler failure
            log.exception("MLLP handler failed")
            return build_ack(payload, "AE", f"internal error: {type(exc).__name__}: {exc}", error_code=ERR_INTERNAL)


def _close_gently(conn: socket.socket, seconds: float = 1.0, max_bytes: int = 4 * 1024 * 1024) -> None:
    """Send FIN after a refusal and drain what the client is still sending for a moment, so that closing does not
    reset the connection before the client has read the AR."""
    try:
        conn.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + seconds
        drained = 0
        while drained < max_bytes:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            conn.settimeout(left)
            data = conn.recv(_RECV_SIZE)
            if not data:
                return
            drained += len(data)
    except OSError:
        return


class MllpConnection:
    """A client connection that can carry several messages in sequence."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.timeout = timeout
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise MllpError(f"cannot connect to MLLP {host}:{port}: {exc}") from exc
        self._reader = FrameReader()

    def send(self, message: bytes) -> bytes:
        """Send one message and return the payload of the answer frame (the ACK)."""
        try:
            self._sock.sendall(frame(message))
            while True:
                data = self._sock.recv(_RECV_SIZE)
                if not data:
                    raise MllpError("the peer closed the connection before answering")
                for kind, payload in self._reader.feed(data):
                    if kind == "message":
                        return payload
        except TimeoutError as exc:
            raise MllpError(f"no answer within {self.timeout} s") from exc
        except OSError as exc:
            if isinstance(exc, MllpError):
                raise
            raise MllpError(f"MLLP exchange failed: {exc}") from exc

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> MllpConnection:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def send_message(host: str, port: int, message: bytes, timeout: float = 10.0) -> bytes:
    """Send one HL7 message over MLLP and return the answer (ACK) without framing."""
    with MllpConnection(host, port, timeout) as connection:
        return connection.send(message)
