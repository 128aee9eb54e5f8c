"""A hostile DMP that answers without end: the DMP client reads at most ``Dmp.MaxAnswerMb`` and, for the body, at
most ``Dmp.TimeoutSeconds``, then gives up with ``DmpUnavailable`` (the publication queue retries later)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sec_limits import StreamingServer, measured
from test_fuzz_dmp import ACTOR, PATIENT, QUERY_ANSWER

from drimbox.config import load_settings
from drimbox.config.fields import SettingsError
from drimbox.config.sections import IdentitySettings
from drimbox.crypto.pki import issue_certificate, make_name, make_root_ca
from drimbox.dmp.client import DmpClient
from drimbox.dmp.errors import DmpUnavailable
from drimbox.dmp.settings import DmpSettings
from drimbox.dmp.signing import SigningMaterial

MB = 1 << 20


@pytest.fixture(scope="module")
def dmp() -> Iterator[StreamingServer]:
    server = StreamingServer()
    yield server
    server.close()


def client_for(dmp: StreamingServer, **settings: Any) -> DmpClient:
    issued = issue_certificate(make_root_ca(), make_name("SIGN box-a", ou="3123456789012345"), profile="signing")
    signing = SigningMaterial(key=issued.key, cert=issued.cert, chain=tuple(issued.chain))
    return DmpClient(DmpSettings(base_url=dmp.base + "/dmp", **settings), IdentitySettings(), signing=signing)


def find(client: DmpClient, seconds: float = 20.0):
    return measured(lambda: client.find_documents(PATIENT, actor=ACTOR), seconds=seconds)


def test_an_answer_within_the_limit_is_read(dmp):
    # trailing white space after the root element is well-formed XML: the answer is valid at any size
    dmp.answer(QUERY_ANSWER, b" " * 65536, 8)
    client = client_for(dmp, max_answer_mb=1)
    outcome, _, _ = find(client)
    assert [entry.unique_id for entry in outcome] == ["1.2.3.4"]
    client.close()


def test_a_valid_answer_over_the_limit_is_refused(dmp):
    dmp.answer(QUERY_ANSWER, b" " * 65536, 32)  # 2 MB
    client = client_for(dmp, max_answer_mb=1)
    outcome, _, _ = find(client)
    assert isinstance(outcome, DmpUnavailable), outcome
    assert "Dmp.MaxAnswerMb" in str(outcome)
    client.close()


def test_an_endless_answer_stops_at_the_limit_in_bounded_memory(dmp):
    dmp.answer(QUERY_ANSWER, b" " * 65536, 1 << 20)  # 64 GB if read to the end
    client = client_for(dmp, max_answer_mb=2, timeout_seconds=10)
    outcome, elapsed, peak = find(client)
    assert isinstance(outcome, DmpUnavailable), outcome
    assert elapsed < 10 and peak < 16 * MB, (elapsed, peak)
    assert dmp.finished.wait(10)  # the client hung up: the server could not send everything
    assert dmp.sent < 64 * MB
    client.close()


def test_a_declared_length_over_the_limit_is_refused_before_the_body(dmp):
    dmp.answer(QUERY_ANSWER, b" " * 65536, 64, declared=len(QUERY_ANSWER) + 64 * 65536)
    client = client_for(dmp, max_answer_mb=1)
    outcome, _, peak = find(client)
    assert isinstance(outcome, DmpUnavailable) and "Dmp.MaxAnswerMb" in str(outcome), outcome
    assert peak < 2 * MB
    client.close()


def test_an_answer_trickling_in_is_cut_after_the_timeout(dmp):
    """A byte every 0.1 s never trips the per-read timeout: the whole body has a deadline of its own."""
    dmp.answer(QUERY_ANSWER, b" ", 150, pause=0.1)  # 15 s to the end
    client = client_for(dmp, timeout_seconds=1.5)
    outcome, elapsed, _ = find(client)
    assert isinstance(outcome, DmpUnavailable) and "still arriving" in str(outcome), outcome
    assert elapsed < 6, elapsed
    client.close()


@pytest.mark.parametrize("value", [0, -5])
def test_the_limit_must_be_positive(value):
    with pytest.raises(SettingsError, match="MaxAnswerMb"):
        load_settings({"DRIMbox": {"Dmp": {"MaxAnswerMb": value}}})
    assert load_settings({"DRIMbox": {"Dmp": {"MaxAnswerMb": 3}}}).dmp.max_answer_mb == 3
