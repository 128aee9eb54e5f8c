"""Fuzzing the national whitelist reader: XXE, entity expansion, huge and deep documents, and random
mutations of a validly signed list, which must never verify unless the signed content is unchanged."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from sec_limits import FUZZ, billion_laughs, measured, mutate

from drimbox.crypto.dsig import SignatureError
from drimbox.crypto.pki import load_issued
from drimbox.samples.whitelist import make_demo_whitelist
from drimbox.trust.whitelist import Whitelist, WhitelistError, WhitelistVerdict, parse_whitelist, verify_whitelist

DS = "http://www.w3.org/2000/09/xmldsig#"
BOXES = {"box-a": {"db": "db.box-a.test:8443", "vi": "vi.box-a.test"}, "box-b": {"db": "db.box-b.test"}}


@pytest.fixture(scope="module")
def signed(pki) -> bytes:
    return make_demo_whitelist(pki, BOXES)


@pytest.fixture(scope="module")
def anchors(pki) -> list:
    return [load_issued(pki["root"]).cert]


def covered_content(xml: bytes) -> bytes | None:
    """Exclusive c14n of the list without its signature: what an enveloped URI="" reference protects."""
    try:
        root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None
    for signature in root.findall(f".//{{{DS}}}Signature"):
        signature.getparent().remove(signature)
    # without comments, as the signature's c14n: a comment added to the list is outside what it covers
    return etree.tostring(root, method="c14n", exclusive=True, with_comments=False)


def check_verify(xml: bytes, anchors, *, seconds: float = 3.0) -> WhitelistVerdict:
    outcome, elapsed, peak = measured(lambda: verify_whitelist(xml, anchors), seconds=seconds)
    assert isinstance(outcome, WhitelistVerdict), f"verify_whitelist raised {outcome!r}"
    assert elapsed < seconds
    assert peak < 30 * len(xml) + (16 << 20)
    return outcome


def test_the_unmodified_list_verifies(signed, anchors):
    assert check_verify(signed, anchors).valid


PIECES = [b"<", b">", b"/>", b"&amp;", b"=", b'"', b"\n", b" ", b"A", b"0", b"+", b"/", b"db.evil.test",
          b"<Domaine><Identifiant>X</Identifiant><db>db.evil.test</db></Domaine>", b"<!-- c -->", b"\x00", b"\xff"]


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 8),
                          st.one_of(st.binary(max_size=12), st.sampled_from(PIECES))), min_size=1, max_size=3))
def test_mutated_signed_list_verifies_only_if_covered_content_unchanged(signed, anchors, changes):
    mutated = mutate(signed, changes)
    verdict = check_verify(mutated, anchors)
    if verdict.valid:
        assert covered_content(mutated) == covered_content(signed)
        assert [d.db for d in verdict.domains] == [d.db for d in parse_whitelist(signed).domains]


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes(anchors, raw):
    assert not check_verify(raw, anchors).valid
    try:
        parse_whitelist(raw)
    except (SignatureError, WhitelistError):
        pass


def _with_doctype(xml: bytes, doctype: bytes, entity_ref: bytes) -> bytes:
    head, _, body = xml.partition(b"?>")
    return head + b"?>" + doctype + body.replace(b"<Denomination>", b"<Denomination>" + entity_ref, 1)


def test_external_entity_is_not_read(signed, anchors, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    root = etree.fromstring(signed).tag.split("}")[-1].encode()
    doctype = b'<!DOCTYPE %s [<!ENTITY x SYSTEM "file://%s">]>' % (root, str(secret).encode())
    xml = _with_doctype(signed, doctype, b"&x;")
    verdict = check_verify(xml, anchors)
    assert not verdict.valid
    outcome, _, _ = measured(lambda: parse_whitelist(xml))
    assert "TOP-SECRET-MARKER" not in repr(outcome) + repr(verdict)


def test_entity_expansion_refused_at_once(anchors):
    xml = billion_laughs(b"ListeBlancheDRIM-M")
    assert not check_verify(xml, anchors, seconds=1.0).valid


@pytest.mark.parametrize("depth", [300, 100_000])
def test_deep_nesting(signed, anchors, depth):
    xml = signed.replace(b"<Denomination>", b"<a>" * depth + b"</a>" * depth + b"<Denomination>", 1)
    assert not check_verify(xml, anchors).valid


def test_huge_list_bounded(signed, anchors):
    domain = b"<Domaine><Identifiant>X</Identifiant><db>db.x.test</db><vi>vi.x.test</vi></Domaine>"
    xml = signed.replace(b"<Domaine>", domain * 20_000 + b"<Domaine>", 1)
    verdict = check_verify(xml, anchors, seconds=10.0)
    assert not verdict.valid
    outcome, _, _ = measured(lambda: parse_whitelist(xml), seconds=10.0)
    assert isinstance(outcome, (Whitelist, SignatureError, WhitelistError))


def test_expired_now_is_refused(signed, anchors):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=365 * 30)
    assert not verify_whitelist(signed, anchors, now=later).valid
