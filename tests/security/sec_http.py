"""Raw HTTP over TLS for the live campaign: malformed request lines and heads that no client library sends."""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


@dataclass
class RawResponse:
    raw: bytes

    @property
    def responses(self) -> list[tuple[int, bytes, bytes]]:
        """(status, head, body) of every answer in the stream, framed by Content-Length or chunked encoding
        (a smuggled request would add one)."""
        out, rest = [], self.raw
        while rest:
            head, sep, rest = rest.partition(b"\r\n\r\n")
            match = _STATUS.match(head)
            if not sep or not match:
                break
            length = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
            if re.search(rb"\r\ntransfer-encoding:\s*chunked", head, re.IGNORECASE):
                body = b""
                while True:
                    size_line, _, rest = rest.partition(b"\r\n")
                    size = int(size_line.split(b";")[0] or b"0", 16)
                    body, rest = body + rest[:size], rest[size + 2:]
                    if size == 0:
                        break
            elif length:
                body, rest = rest[:int(length.group(1))], rest[int(length.group(1)):]
            else:
                body, rest = rest, b""
            out.append((int(match.group(1)), head, body))
        return out

    @property
    def statuses(self) -> list[int]:
        return [status for status, _, _ in self.responses]

    @property
    def status(self) -> int:
        return self.statuses[0] if self.statuses else 0


def tls_socket(port: int, ca_bundle: str, *, host: str = "localhost", timeout: float = 10.0,
               cert: tuple[str, str] | None = None) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=ca_bundle)
    if cert:
        context.load_cert_chain(*cert)
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return context.wrap_socket(sock, server_hostname=host)


def exchange(port: int, ca_bundle: str, data: bytes, *, timeout: float = 10.0, host: str = "localhost",
             cert: tuple[str, str] | None = None) -> RawResponse:
    """Send ``data`` as is, then read until the server closes or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    with tls_socket(port, ca_bundle, host=host, timeout=timeout, cert=cert) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may answer and close before reading everything (a refusal): read that answer
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, socket.timeout):
                break
            except (ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return RawResponse(b"".join(chunks))


def request(method: str, target: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"", *,
            host: str = "localhost", version: str = "HTTP/1.1") -> bytes:
    """A request head written exactly as given (plus Host and Connection: close unless given)."""
    names = {name.lower() for name, _ in headers}
    lines = [f"{method} {target} {version}"]
    if "host" not in names:
        lines.append(f"Host: {host}")
    if "connection" not in names:
        lines.append("Connection: close")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
