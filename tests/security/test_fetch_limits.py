"""Found with the DMP client's limit: the whitelist and its CRLs were fetched over HTTP with no size limit and
no deadline for the body. A hostile or broken distribution point now gets at most ``MAX_FETCH_BYTES`` and
``timeout`` seconds; the keeper reports the list unreadable and keeps the one in force."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sec_limits import StreamingServer, measured

from drimbox.trust.crl import fetch_bytes
from drimbox.util.bounded_read import AnswerTooLarge, AnswerTooSlow

MB = 1 << 20


@pytest.fixture(scope="module")
def server() -> Iterator[StreamingServer]:
    hostile = StreamingServer()
    yield hostile
    hostile.close()


def test_a_list_within_the_limit_is_read(server):
    server.answer(b"<ListeBlancheDRIM-M/>", b" " * 1024, 4)
    assert fetch_bytes(server.base + "/liste-blanche.xml", limit=MB) == b"<ListeBlancheDRIM-M/>" + b" " * 4096


def test_an_endless_answer_stops_at_the_limit(server):
    server.answer(b"<ListeBlancheDRIM-M>", b"x" * 65536, 1 << 20)  # 64 GB if read to the end
    outcome, elapsed, peak = measured(lambda: fetch_bytes(server.base + "/crl", limit=2 * MB), seconds=20)
    assert isinstance(outcome, AnswerTooLarge), outcome
    assert elapsed < 10 and peak < 16 * MB, (elapsed, peak)
    assert server.finished.wait(10) and server.sent < 64 * MB


def test_a_declared_length_over_the_limit_is_refused_before_the_body(server):
    server.answer(b"x", b"y" * 65536, 64, declared=1 + 64 * 65536)
    outcome, _, peak = measured(lambda: fetch_bytes(server.base + "/crl", limit=MB), seconds=20)
    assert isinstance(outcome, AnswerTooLarge) and peak < 2 * MB, (outcome, peak)


def test_a_trickling_answer_is_cut_after_the_timeout(server):
    server.answer(b"<ListeBlancheDRIM-M>", b" ", 150, pause=0.1)  # 15 s to the end
    outcome, elapsed, _ = measured(lambda: fetch_bytes(server.base + "/liste", timeout=1.5), seconds=20)
    assert isinstance(outcome, AnswerTooSlow) and elapsed < 6, (outcome, elapsed)


def test_a_hostile_psc_answer_is_cut_at_its_limit(server):
    """The PSC client (discovery, JWKS, tokens, userinfo, introspection) reads at most 1 MB per answer."""
    from drimbox.psc.client import PscClient
    from drimbox.psc.errors import PscError
    from drimbox.psc.settings import PscSettings

    client = PscClient(PscSettings(issuer=server.base, client_id="c", http_timeout_seconds=5),
                       redirect_uri="http://127.0.0.1/cb")
    server.answer(b'{"issuer": "', b"x" * 65536, 1 << 20)
    outcome, elapsed, peak = measured(client.discovery, seconds=20)
    assert isinstance(outcome, PscError) and outcome.reason == "bad_response", outcome
    assert elapsed < 10 and peak < 8 * MB, (elapsed, peak)
    server.answer(b'{"issuer": "', b" ", 150, pause=0.1)
    outcome, elapsed, _ = measured(client.discovery, seconds=20)
    assert isinstance(outcome, PscError) and elapsed < 8, (outcome, elapsed)
