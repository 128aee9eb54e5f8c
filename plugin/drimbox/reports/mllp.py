"""MLLP (HL7 minimal lower layer protocol) listener and client.

A frame is ``0x0B <message> 0x1C 0x0D``. The server runs one thread per connection, accepts any number of
messages per connection and answers each one with the bytes returned by ``handle``. It never dies on bad input:
bytes outside a frame and oversize frames are answered with an AR ACK (once per bad run) and skipped; if
``handle`` raises, the answer is an AE ACK naming the error.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

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


class MllpServer:
    """Threaded MLLP listener. ``port=0`` picks a free port (read it from ``.port`` after ``start()``)."""

    def __init__(
        self,
        host: str,
        port: int,
        handle: Callable[[bytes], bytes],
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        *,
        idle_timeout: float = 600.0,
        max_connections: int = 64,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.handle = handle
        self.max_message_bytes = max_message_bytes
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        if self._listener is None:
            return self._requested_port
        return self._listener.getsockname()[1]

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
        listener.listen(16)
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

    def __exit__(self, *exc_info) -> None:
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
            with self._lock:
                too_many = len(self._connections) >= self.max_connections
                if not too_many:
                    self._connections.add(conn)
            if too_many:
                log.warning("MLLP: refusing %s, %d connections already open", address, self.max_connections)
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn, address), name=f"mllp-{address[0]}:{address[1]}",
                             daemon=True).start()

    def _serve(self, conn: socket.socket, address) -> None:
        reader = FrameReader(self.max_message_bytes)
        conn.settimeout(self.idle_timeout)
        try:
            while not self._stopping.is_set():
                try:
                    data = conn.recv(_RECV_SIZE)
                except (TimeoutError, OSError):
                    break
                if not data:
                    break
                for kind, payload in reader.feed(data):
                    answer = self._answer(kind, payload)
                    try:
                        conn.sendall(frame(answer))
                    except OSError:
                        return
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def _answer(self, kind: str, payload: bytes) -> bytes:
        if kind == "garbage":
            log.warning("MLLP: %d bytes outside a frame", len(payload))
            return build_ack(payload, "AR", "data outside MLLP framing (expected 0x0B ... 0x1C 0x0D)",
                             error_code="100")
        if kind == "oversize":
            log.warning("MLLP: message larger than %d bytes refused", self.max_message_bytes)
            return build_ack(payload, "AR", f"message larger than {self.max_message_bytes} bytes", error_code="207")
        try:
            answer = self.handle(payload)
            if not isinstance(answer, (bytes, bytearray)):
                raise TypeError(f"the handler returned {type(answer).__name__}, not bytes")
            return bytes(answer)
        except Exception as exc:  # the listener must survive any handler failure
            log.exception("MLLP handler failed")
            return build_ack(payload, "AE", f"internal error: {type(exc).__name__}: {exc}", error_code=ERR_INTERNAL)


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
