"""MLLP over real loopback sockets."""

import socket
import threading

import pytest

from drimbox.reports.ack import build_ack, read_ack
from drimbox.reports.hl7 import parse_message
from drimbox.reports.mllp import FrameReader, MllpConnection, MllpError, MllpServer, frame, send_message
from drimbox.samples.reports import make_oru

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


def accept_all(message: bytes) -> bytes:
    parsed = parse_message(message)
    if parsed.usable:
        return build_ack(message, "AA")
    return build_ack(message, "AE", "; ".join(parsed.errors))


@pytest.fixture
def server():
    srv = MllpServer("127.0.0.1", 0, accept_all, max_message_bytes=200_000, idle_timeout=5)
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


def test_oversize_message_gets_ar_and_connection_survives(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(SB + b"MSH|^~\\&|X" + b"A" * 300_000)
        code, _, text = read_ack(read_frame(sock))
        assert code == "AR" and "larger than" in text
        sock.sendall(b"B" * 1000 + EB + CR)  # end of the oversize frame: skipped silently
        sock.sendall(frame(make_oru(control_id="NEXT")))
        assert read_ack(read_frame(sock))[:2] == ("AA", "NEXT")


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
