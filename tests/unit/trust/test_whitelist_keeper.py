from __future__ import annotations

import datetime as dt

import pytest

from drimbox.crypto.dn import normalize_dn, same_dn
from drimbox.crypto.pki import create_test_pki, issue_certificate, load_issued, make_name, now_utc, revoke
from drimbox.samples.whitelist import make_whitelist
from drimbox.trust.settings import WhitelistSettings
from drimbox.trust.whitelist import Domain, WhitelistKeeper, host_matches, keeper_from_settings

DN_A = "CN=AUTH_CLI box-a,OU=310000000001001,O=DRIMBOX TEST BOX-A,C=FR"
DOMAINS = [
    Domain("A", "db.box-a.test:8443", "vi.box-a.test", "Box A", DN_A),
    Domain("B", "db.box-b.test", "vi.box-b.test", "Box B", "CN=AUTH_CLI box-b,OU=3100,O=Box\\, B,C=FR"),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return create_test_pki(tmp_path_factory.mktemp("pki"), boxes=())


class Source:
    """A whitelist server and CRL server in memory, counting fetches."""

    def __init__(self, pki):
        self.pki = pki
        self.signer = load_issued(pki["whitelist_signer"])
        self.root = load_issued(pki["root"]).cert
        self.document: bytes | Exception = b""
        self.crl_fetches: list[str] = []
        self.crl_available = True

    def publish(self, domains=DOMAINS, *, signer=None, generated_at=None) -> bytes:
        signer = signer or self.signer
        self.document = make_whitelist(domains, signer_key=signer.key, signer_cert=signer.cert,
                                       chain=[*signer.chain, self.root], generated_at=generated_at)
        return self.document

    def fetch(self, url: str) -> bytes:
        if isinstance(self.document, Exception):
            raise self.document
        return self.document

    def crl_fetch(self, url: str) -> bytes:
        self.crl_fetches.append(url)
        if not self.crl_available:
            raise ConnectionError("CRL server down")
        return open(self.pki["crl"], "rb").read()


def _keeper(source: Source, **options) -> WhitelistKeeper:
    return WhitelistKeeper("https://liste.test/liste.xml", [source.root], fetch=source.fetch,
                           crl_fetch=source.crl_fetch, **options)


def test_accepts_then_keeps_the_last_valid_list(pki):
    source = Source(pki)
    accepted = []
    keeper = _keeper(source, on_accept=lambda xml, verdict: accepted.append(xml))
    first = source.publish()
    assert keeper.refresh().valid
    assert accepted == [first]
    assert keeper.current.revocation_checked
    # the CRL came from the signer certificate's distribution point
    assert source.crl_fetches == [pki["crl_url"]]
    since = keeper.status()["in_force_since"]

    bad_lists = {
        "unsigned": b"<ListeBlancheDRIM-M><ListeDomaines/></ListeBlancheDRIM-M>",
        "tampered": first.replace(b"db.box-b.test", b"db.evil.test"),
        "unreadable": b"\x00garbage",
    }
    for name, document in bad_lists.items():
        source.document = document
        verdict = keeper.refresh()
        assert not verdict.valid, name
        assert [d.id for d in keeper.domains] == ["A", "B"]
        assert keeper.is_trusted_db_host("db.box-b.test")
        assert not keeper.is_trusted_db_host("db.evil.test")
    source.document = ConnectionError("server down")
    assert "cannot fetch" in keeper.refresh().reason
    status = keeper.status()
    assert status["in_force"] and status["in_force_since"] == since
    assert status["last_result"] == "refused" and "cannot fetch" in status["last_refusal_reason"]
    assert status["domain_count"] == 2 and status["revocation_checked"]
    assert accepted == [first]
    # the CRL was cached: one fetch for all these attempts
    assert len(source.crl_fetches) == 1


def test_expired_or_revoked_signer_keeps_the_list(tmp_path):
    pki = create_test_pki(tmp_path, boxes=())  # revoked below: not the shared PKI
    source = Source(pki)
    keeper = _keeper(source)
    source.publish()
    assert keeper.refresh().valid
    intermediate = load_issued(pki["intermediate"])
    expired = issue_certificate(intermediate, make_name("Liste Blanche DRIM-M", ou="318751275100020"),
                                profile="signing", not_before=now_utc() - dt.timedelta(days=30),
                                not_after=now_utc() - dt.timedelta(days=1))
    source.publish([DOMAINS[0]], signer=expired)
    assert "expired" in keeper.refresh().reason
    assert len(keeper.domains) == 2
    revoke(pki, source.signer.cert)
    later = _keeper(source)  # fresh CRL cache
    source.publish([DOMAINS[0]])
    assert "revoked" in later.refresh().reason
    assert later.current is None and not later.is_trusted_db_host("db.box-a.test:8443")


def test_no_crl_means_refusal_unless_allowed(pki):
    source = Source(pki)
    source.crl_available = False
    source.publish()
    strict = _keeper(source)
    verdict = strict.refresh()
    assert not verdict.valid and "no CRL available" in verdict.reason and "CRL server down" in verdict.reason
    lenient = _keeper(source, require_revocation_check=False)
    verdict = lenient.refresh()
    assert verdict.valid and not verdict.revocation_checked


def test_configured_crl_urls_and_older_list(pki):
    source = Source(pki)
    keeper = _keeper(source, crl_urls=["http://crl.test/ac.crl"])
    source.publish(generated_at=now_utc())
    assert keeper.refresh().valid
    assert source.crl_fetches == ["http://crl.test/ac.crl"]
    source.publish([DOMAINS[0]], generated_at=now_utc() - dt.timedelta(days=2))
    assert "older than the list in force" in keeper.refresh().reason
    assert len(keeper.domains) == 2


def test_restores_the_stored_list_but_not_a_tampered_one(pki):
    source = Source(pki)
    stored = source.publish()
    keeper = _keeper(source, last_valid=stored)
    assert keeper.is_trusted_db_host("db.box-a.test:8443")
    assert not keeper.current.revocation_checked
    broken = _keeper(source, last_valid=stored.replace(b"db.box-a.test", b"db.evil.test"))
    assert broken.current is None and "stored list" in broken.status()["last_refusal_reason"]


@pytest.mark.parametrize("crl_from", ["configured path", "distribution point file URL"])
def test_keeper_from_settings_persists_accepted_lists(pki, tmp_path, crl_from):
    source = Source(pki)
    list_file = tmp_path / "published.xml"
    list_file.write_bytes(source.publish())
    crl_urls = (pki["crl"],) if crl_from == "configured path" else ()
    settings = WhitelistSettings(source=str(list_file), trust_anchor=pki["root"]["cert"], crl_urls=crl_urls)
    state = tmp_path / "state" / "whitelist.xml"
    keeper = keeper_from_settings(settings, state)
    verdict = keeper.refresh()
    assert verdict.valid and verdict.revocation_checked, verdict.reason
    assert state.read_bytes() == list_file.read_bytes()
    list_file.write_bytes(b"<broken")
    restarted = keeper_from_settings(settings, state)
    assert restarted.is_trusted_db_host("db.box-b.test")
    assert not restarted.refresh().valid
    assert restarted.is_trusted_db_host("db.box-b.test")


@pytest.mark.parametrize(
    "candidate, entry, expected",
    [
        ("db.box-a.test:8443", "db.box-a.test:8443", True),
        ("https://db.box-a.test:8443/wado/studies/1.2/series/3.4", "db.box-a.test:8443", True),
        ("DB.Box-A.test.:8443", "db.box-a.test:8443", True),
        ("db.box-a.test:9443", "db.box-a.test:8443", False),
        ("db.box-a.test", "db.box-a.test:8443", False),
        ("https://db.box-b.test/wado", "db.box-b.test", True),
        ("db.box-b.test:443", "db.box-b.test", True),
        ("db.box-b.test:8443", "db.box-b.test", False),
        ("db.box-b.test.evil.test", "db.box-b.test", False),
        ("[::1]:8443", "[::1]:8443", True),
        ("", "db.box-b.test", False),
    ],
)
def test_host_matching(candidate, entry, expected):
    assert host_matches(candidate, entry) is expected


@pytest.mark.parametrize(
    "given",
    [
        DN_A,
        "C=FR, O=DRIMBOX TEST BOX-A, OU=310000000001001, CN=AUTH_CLI box-a",
        "/C=FR/O=DRIMBOX TEST BOX-A/OU=310000000001001/CN=AUTH_CLI box-a",
        "cn=AUTH_CLI  box-a, ou=310000000001001, o=drimbox test box-a, c=FR",
        "2.5.4.3=AUTH_CLI box-a,2.5.4.11=310000000001001,O=DRIMBOX TEST BOX-A,C=FR",
    ],
)
def test_operator_dn_forms(pki, given):
    source = Source(pki)
    source.publish()
    keeper = _keeper(source)
    keeper.refresh()
    assert keeper.is_trusted_operator_dn(given)


def test_dn_escapes_and_mismatches():
    assert same_dn("CN=AUTH_CLI box-b,OU=3100,O=Box\\, B,C=FR", "C=FR,O=Box\\2C B,OU=3100,CN=AUTH_CLI box-b")
    assert not same_dn(DN_A, DN_A.replace("OU=310000000001001", "OU=310000000009999"))
    assert not same_dn(DN_A, DN_A + ",L=Paris")
    assert not same_dn("", DN_A)
    assert normalize_dn("CN=a+OU=b") == normalize_dn("OU=b,CN=a")
