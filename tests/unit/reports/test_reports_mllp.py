"""MLLP over real loopback sockets."""

import socket
import threading
import time

import pytest

from drimbox.reports.ack import build_ack, read_ack
from drimbox.reports.hl7 import parse_message
from drimbox.reports.mllp import (
    FrameReader,
    MllpConnection,
    MllpError,
    MllpLimits,
    MllpServer,
    frame,
    send_message,
)
from drimbox.samples.reports import make_oru

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


def accept_all(message: bytes) -> bytes:
    parsed = parse_message(message)
    if parsed.usable:
        return build_ack(message, "AA")
    return build_ack(message, "AE", "; ".join(parsed.errors))


@pytest.fixture
def server():
    srv = MllpServer("127.0.0.1", 0, accept_all, MllpLimits(max_message_bytes=200_000, idle_timeout=5))
    srv.start()
    yield srv
    srv.stop()


def read_frames(sock: socket.socket, count: int) -> list[bytes]:
    data = b""
    while data.count(EB + CR) < count:
        chunk = sock.recv(65536)
        assert chunk, "server closed the connection"
        data += chunk
    frames = data.split(EB + CR)
    assert frames[-1] == b"" and all(f.startswith(SB) for f in frames[:-1])
    return [f[1:] for f in frames[:-1]]


def read_frame(sock: socket.socket) -> bytes:
    (only,) = read_frames(sock, 1)
    return only


def test_port_zero_picks_a_free_port(server):
    assert server.port > 0


def test_one_message_gets_aa(server):
    code, control_id, _ = read_ack(send_message("127.0.0.1", server.port, make_oru(control_id="ONE")))
    assert (code, control_id) == ("AA", "ONE")


def test_two_messages_on_one_connection(server):
    with MllpConnection("127.0.0.1", server.port, timeout=5) as connection:
        first = read_ack(connection.send(make_oru(control_id="FIRST")))
        second = read_ack(connection.send(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|SECOND|P|2.5\rPID|||1"))
    assert first[:2] == ("AA", "FIRST")
    assert second[:2] == ("AE", "SECOND") and "unsupported message type" in second[2]


def test_two_frames_in_one_packet(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(frame(make_oru(control_id="P1")) + frame(make_oru(control_id="P2")))
        acks = [read_ack(answer)[:2] for answer in read_frames(sock, 2)]
    assert acks == [("AA", "P1"), ("AA", "P2")]


def test_byte_by_byte_delivery(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = frame(make_oru(control_id="SLOW"))
        for index in range(0, len(payload), 997):
            sock.sendall(payload[index:index + 997])
        assert read_ack(read_frame(sock))[:2] == ("AA", "SLOW")


def test_garbage_gets_ar_and_connection_survives(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        code, _, text = read_ack(read_frame(sock))
        assert code == "AR" and "outside MLLP framing" in text
        sock.sendall(frame(make_oru(control_id="AFTER")))
        assert read_ack(read_frame(sock))[:2] == ("AA", "AFTER")


def test_framed_garbage_gets_an_error_ack(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(frame(b"\x00\x01 not hl7 \xff"))
        code, control_id, text = read_ack(read_frame(sock))
    assert code == "AE" and control_id == "" and "MSH" in text


def test_oversize_message_gets_ar_naming_the_limit_then_the_connection_closes():
    refusals: list[tuple[str, str, bytes]] = []
    limits = MllpLimits(max_message_bytes=200_000, idle_timeout=5)
    with MllpServer("127.0.0.1", 0, accept_all, limits, on_refusal=lambda *r: refusals.append(r)) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            sock.sendall(SB + b"MSH|^~\\&|X" + b"A" * 300_000)
            code, _, text = read_ack(read_frame(sock))
            assert code == "AR" and "larger than 200000 bytes" in text and "MaxMessageBytes" in text
            assert closed_by_server(sock)
        assert send_message("127.0.0.1", srv.port, make_oru(control_id="NEXT"))[:3]
    assert [(source, "larger than" in reason, sample[:5]) for source, reason, sample in refusals] == [
        ("127.0.0.1", True, b"MSH|^")]


def test_handler_failure_gives_ae_naming_the_error():
    def broken(message: bytes) -> bytes:
        raise RuntimeError("database is down")

    with MllpServer("127.0.0.1", 0, broken) as srv:
        code, control_id, text = read_ack(send_message("127.0.0.1", srv.port, make_oru(control_id="BRK")))
    assert (code, control_id) == ("AE", "BRK")
    assert "RuntimeError" in text and "database is down" in text


def test_concurrent_clients(server):
    results = []

    def client(index: int) -> None:
        results.append(read_ack(send_message("127.0.0.1", server.port, make_oru(control_id=f"C{index}")))[:2])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == sorted(("AA", f"C{i}") for i in range(8))


def test_stopped_server_refuses_and_client_reports_it():
    srv = MllpServer("127.0.0.1", 0, accept_all)
    srv.start()
    port = srv.port
    srv.stop()
    with pytest.raises(MllpError, match="cannot connect"):
        send_message("127.0.0.1", port, make_oru(), timeout=2)


def test_client_times_out_when_no_answer():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with pytest.raises(MllpError, match="no answer"):
            send_message("127.0.0.1", silent.getsockname()[1], make_oru(), timeout=0.5)


def test_frame_reader_restart_and_cr_tolerance():
    reader = FrameReader(max_message_bytes=1000)
    events = reader.feed(SB + b"partial" + SB + b"MSH|full" + EB + CR + b"\r\n" + SB + b"MSH|two" + EB)
    assert events == [("garbage", b"partial"), ("message", b"MSH|full"), ("message", b"MSH|two")]
    assert frame(frame(b"X")) == SB + b"X" + EB + CR


def closed_by_server(sock: socket.socket, within: float = 5.0) -> bool:
    """True when the server closes the connection (EOF) within ``within`` seconds; frames before it are read."""
    sock.settimeout(within)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))


def exchange(sock: socket.socket, control_id: str) -> tuple[str, str]:
    sock.sendall(frame(make_oru(control_id=control_id)))
    code, got, _ = read_ack(read_frame(sock))
    return code, got


def test_a_frame_trickled_past_its_deadline_gets_ar_and_is_closed():
    refusals: list[tuple[str, str, bytes]] = []
    limits = MllpLimits(frame_deadline=1.0, idle_timeout=5)
    with MllpServer("127.0.0.1", 0, accept_all, limits, on_refusal=lambda *r: refusals.append(r)) as srv:
        with connect(srv.port) as sock:
            assert exchange(sock, "BEFORE") == ("AA", "BEFORE")  # a complete frame resets the deadline
            message = frame(make_oru(control_id="SLOWLORIS"))
            started = time.monotonic()
            sent = 0
            try:
                while time.monotonic() - started < 3.0:  # one byte every 0.1 s never lets the socket go idle
                    sock.sendall(message[sent:sent + 1])
                    sent += 1
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass
            code, control_id, text = read_ack(read_frame(sock))
            assert code == "AR" and control_id == "" and "not completed within 1 s" in text
            assert closed_by_server(sock)
            assert time.monotonic() - started < 2.5
    assert len(refusals) == 1 and "not completed within" in refusals[0][1]


def test_an_idle_connection_is_closed_after_the_idle_timeout():
    with MllpServer("127.0.0.1", 0, accept_all, MllpLimits(idle_timeout=0.5)) as srv:
        with connect(srv.port) as sock:
            assert exchange(sock, "ONE") == ("AA", "ONE")
            started = time.monotonic()
            assert closed_by_server(sock, within=3)
            assert 0.4 < time.monotonic() - started < 2.0
        wait_until(lambda: srv.connections_from("127.0.0.1") == 0)


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_many_idle_connections_from_one_source_do_not_lock_out_another():
    """64 idle sockets from one address used to fill the listener; now each source has its own share."""
    with MllpServer("127.0.0.1", 0, accept_all) as srv:  # the defaults
        attacker = [connect(srv.port) for _ in range(64)]
        try:
            wait_until(lambda: srv.connections_from("127.0.0.1") == MllpLimits().max_connections_per_source)
            with connect(srv.port, "127.0.0.2") as ris:
                assert exchange(ris, "RIS") == ("AA", "RIS")
        finally:
            for sock in attacker:
                sock.close()


def test_the_per_source_limit_refuses_with_ar_and_frees_when_connections_close():
    refusals: list[tuple[str, str, bytes]] = []
    limits = MllpLimits(max_connections=10, max_connections_per_source=3, idle_timeout=30)
    with MllpServer("127.0.0.1", 0, accept_all, limits, on_refusal=lambda *r: refusals.append(r)) as srv:
        held = [connect(srv.port) for _ in range(3)]
        wait_until(lambda: srv.connections_from("127.0.0.1") == 3)
        with connect(srv.port) as extra:
            code, _, text = read_ack(read_frame(extra))
            assert code == "AR" and "too many MLLP connections from 127.0.0.1 (3 open)" in text
            assert closed_by_server(extra)
        with connect(srv.port, "127.0.0.2") as other:
            assert exchange(other, "OTHER") == ("AA", "OTHER")
        assert [exchange(sock, f"H{i}") for i, sock in enumerate(held)] == [("AA", "H0"), ("AA", "H1"), ("AA", "H2")]
        held.pop().close()
        wait_until(lambda: srv.connections_from("127.0.0.1") == 2)
        with connect(srv.port) as again:
            assert exchange(again, "AGAIN") == ("AA", "AGAIN")
        for sock in held:
            sock.close()
        wait_until(lambda: srv.connections_from("127.0.0.1") == 0)
    assert [(source, "too many" in reason) for source, reason, _ in refusals] == [("127.0.0.1", True)]


def test_the_global_limit_still_applies():
    limits = MllpLimits(max_connections=2, max_connections_per_source=2, idle_timeout=30)
    with MllpServer("127.0.0.1", 0, accept_all, limits) as srv:
        first, second = connect(srv.port), connect(srv.port, "127.0.0.2")
        try:
            wait_until(lambda: srv.connections_from("127.0.0.1") + srv.connections_from("127.0.0.2") == 2)
            with connect(srv.port, "127.0.0.3") as third:
                code, _, text = read_ack(read_frame(third))
                assert code == "AR" and "too many MLLP connections (2 open)" in text
        finally:
            first.close()
            second.close()


def test_garbage_is_reported_to_the_refusal_hook():
    refusals: list[tuple[str, str, bytes]] = []
    with MllpServer("127.0.0.1", 0, accept_all, on_refusal=lambda *r: refusals.append(r)) as srv:
        with connect(srv.port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert read_ack(read_frame(sock))[0] == "AR"
    assert refusals and refusals[0][0] == "127.0.0.1" and "outside MLLP framing" in refusals[0][1]
    assert refusals[0][2].startswith(b"GET / HTTP/1.1")
