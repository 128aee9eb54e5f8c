"""The gate lets the consumer's context pages through on the vi entry, and only those."""

from __future__ import annotations

from drimbox.trust.gate import Gate, GateRequest


def test_vi_reaches_the_context_routes_but_not_the_statistics():
    gate = Gate(b"s" * 32, "internal", "proxy")
    vi = {"x-drimbox-entry": "vi", "x-drimbox-proxy": "proxy"}
    for method, uri in (("POST", "/drimbox/consumer/context"), ("GET", "/drimbox/consumer/context/" + "a" * 43),
                        ("POST", "/drimbox/consumer/context/" + "a" * 43 + "/reason")):
        assert gate.allows(GateRequest(uri, method, vi)), uri
    assert not gate.allows(GateRequest("/drimbox/consumer/statistics.csv", "GET", vi))
    db = {"x-drimbox-entry": "db", "x-drimbox-proxy": "proxy"}
    assert not gate.allows(GateRequest("/drimbox/consumer/context", "POST", db))
    assert gate.allows(GateRequest("/drimbox/consumer/statistics.csv", "GET",
                                   {"x-drimbox-entry": "admin", "x-drimbox-operator": "operator",
                                    "x-drimbox-proxy": "proxy"}))
