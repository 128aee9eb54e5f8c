"""The HTTP filter's trust in nginx: the proxy secret, the internal secret, hostile header text."""

from __future__ import annotations

import pytest

from drimbox.trust.gate import Gate, GateRequest

PROXY = "proxy-secret"


def _gate() -> Gate:
    return Gate(b"k" * 32, "internal-secret", PROXY)


@pytest.mark.parametrize("presented", ["", "proxy-secreT", "proxy-secret\u00e9", "\udcff", "\u2028" * 10])
def test_an_entry_header_without_nginx_s_exact_secret_is_refused_without_raising(presented: str) -> None:
    request = GateRequest("/drimbox/health", "GET", {"x-drimbox-entry": "db", "x-drimbox-proxy": presented})
    assert _gate().allows(request) is False


@pytest.mark.parametrize("presented", ["internal-secre", "intern\u00e9l-secret", "\udcff"])
def test_a_wrong_internal_secret_is_refused_without_raising(presented: str) -> None:
    request = GateRequest("/tools/find", "POST", {"x-drimbox-internal": presented})
    assert _gate().allows(request) is False


def test_nginx_s_secret_lets_the_entry_routes_through_and_nothing_else() -> None:
    def allowed(uri: str, entry: str) -> bool:
        return _gate().allows(GateRequest(uri, "GET", {"x-drimbox-entry": entry, "x-drimbox-proxy": PROXY}))

    assert allowed("/drimbox/health", "db") and allowed("/drimbox/open", "vi")
    assert not allowed("/tools/find", "db") and not allowed("/patients", "vi") and not allowed("/x", "other")
    assert _gate().allows(GateRequest("/tools/find", "POST", {"x-drimbox-internal": "internal-secret"}))
