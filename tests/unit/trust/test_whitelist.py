from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from drimbox.cli import main as cli_main
from drimbox.crypto.pki import (
    Issued,
    create_test_pki,
    issue_certificate,
    load_issued,
    make_crl,
    make_name,
    make_root_ca,
    now_utc,
    revoke,
)
from drimbox.samples.whitelist import make_demo_whitelist, make_whitelist
from drimbox.trust.whitelist import Domain, parse_whitelist, verify_whitelist

CN, OU = "Liste Blanche DRIM-M", "318751275100020"
DOMAINS = [
    Domain("D-A", "db.box-a.test:8443", "vi.box-a.test", "Box A", "CN=AUTH_CLI box-a,OU=310000000001001,O=A,C=FR"),
    Domain("D-B", "db.box-b.test", "vi.box-b.test", "Box B", "CN=AUTH_CLI box-b,OU=310000000002002,O=B,C=FR"),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    return create_test_pki(tmp_path_factory.mktemp("pki"), boxes=("box-a",))


@pytest.fixture(scope="module")
def root(pki):
    return load_issued(pki["root"]).cert


@pytest.fixture(scope="module")
def intermediate(pki) -> Issued:
    return load_issued(pki["intermediate"])


@pytest.fixture(scope="module")
def crl(pki) -> bytes:
    return open(pki["crl"], "rb").read()


def _signed(issued: Issued, root_cert, domains=DOMAINS, **options) -> bytes:
    return make_whitelist(domains, signer_key=issued.key, signer_cert=issued.cert,
                          chain=[*issued.chain, root_cert] if root_cert not in issued.chain else issued.chain,
                          **options)


@pytest.fixture(scope="module")
def signer(pki) -> Issued:
    return load_issued(pki["whitelist_signer"])


@pytest.fixture(scope="module")
def good(signer, root) -> bytes:
    return _signed(signer, root)


def test_valid_list(good, root, crl):
    verdict = verify_whitelist(good, [root], crl=crl)
    assert verdict.valid, verdict.reason
    assert verdict.revocation_checked
    assert verdict.signer.startswith("CN=Liste Blanche DRIM-M,OU=318751275100020")
    assert [d.id for d in verdict.domains] == ["D-A", "D-B"]
    first = verdict.domains[0]
    assert (first.db, first.vi, first.name, first.operator_dn) == (
        DOMAINS[0].db, DOMAINS[0].vi, DOMAINS[0].name, DOMAINS[0].operator_dn)
    assert verdict.generated_at is not None


def test_without_crl_says_revocation_unchecked(good, root):
    verdict = verify_whitelist(good, [root])
    assert verdict.valid and not verdict.revocation_checked
    assert "revocation not checked" in verdict.reason


def test_unsigned(root):
    from drimbox.samples.whitelist import build_whitelist
    from lxml import etree

    unsigned = etree.tostring(build_whitelist(DOMAINS))
    verdict = verify_whitelist(unsigned, [root])
    assert not verdict.valid and "unsigned" in verdict.reason
    assert parse_whitelist(unsigned).domains[1].db == "db.box-b.test"


def test_domain_altered_after_signing(good, root, crl):
    verdict = verify_whitelist(good.replace(b"db.box-b.test", b"db.evil.test"), [root], crl=crl)
    assert not verdict.valid and "digest mismatch" in verdict.reason
    assert verdict.domains == []


def test_domain_smuggled_inside_a_signature_is_refused(good, root, crl):
    smuggled = good.replace(
        b"</ListeDomaines>",
        b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><Domaine><Identifiant>EVIL</Identifiant>'
        b"<db>db.evil.test</db></Domaine></ds:Signature></ListeDomaines>",
    )
    verdict = verify_whitelist(smuggled, [root], crl=crl)
    # the digest subtracts every ds:Signature, so the list would still verify: a second signature is refused
    assert not verdict.valid and "ds:Signature" in verdict.reason
    assert verdict.domains == []


@pytest.mark.parametrize(
    "cn, ou, expected",
    [("Liste Blanche XYZ", OU, "signer CN"), (CN, "999999999999999", "signer OU"), (CN, None, "signer OU")],
)
def test_wrong_signer_names(intermediate, root, crl, cn, ou, expected):
    impostor = issue_certificate(intermediate, make_name(cn, ou=ou), profile="signing")
    verdict = verify_whitelist(_signed(impostor, root), [root], crl=crl)
    assert not verdict.valid and expected in verdict.reason


def test_expired_signer(intermediate, root, crl):
    old = issue_certificate(intermediate, make_name(CN, ou=OU), profile="signing",
                            not_before=now_utc() - dt.timedelta(days=400), not_after=now_utc() - dt.timedelta(days=1))
    verdict = verify_whitelist(_signed(old, root), [root], crl=crl)
    assert not verdict.valid and "expired" in verdict.reason


def test_revoked_signer(tmp_path):
    index = create_test_pki(tmp_path, boxes=())
    signer, root_cert = load_issued(index["whitelist_signer"]), load_issued(index["root"]).cert
    xml = _signed(signer, root_cert)
    assert verify_whitelist(xml, [root_cert], crl=open(index["crl"], "rb").read()).valid
    updated = revoke(index, signer.cert)
    verdict = verify_whitelist(xml, [root_cert], crl=open(updated["crl"], "rb").read())
    assert not verdict.valid and "revoked" in verdict.reason


def test_stale_or_foreign_crl(good, root, intermediate):
    stale = make_crl(intermediate, this_update=now_utc() - dt.timedelta(days=60),
                     next_update=now_utc() - dt.timedelta(days=1)).public_bytes(serialization.Encoding.DER)
    verdict = verify_whitelist(good, [root], crl=stale)
    assert not verdict.valid and "out of date" in verdict.reason
    other = make_root_ca("OTHER")
    forged = make_crl(Issued(other.key, other.cert)).public_bytes(serialization.Encoding.PEM)
    verdict = verify_whitelist(good, [root], crl=forged)
    assert not verdict.valid and "no valid CRL" in verdict.reason


def test_untrusted_root(root, crl):
    other_root = make_root_ca("TEST AC RACINE IGC-SANTE DRIMBOX")  # same name, other key
    other_signer = issue_certificate(other_root, make_name(CN, ou=OU), profile="signing")
    verdict = verify_whitelist(_signed(other_signer, other_root.cert), [root], crl=crl)
    assert not verdict.valid and "does not chain" in verdict.reason


@pytest.mark.parametrize("namespace", [None, "http://esante.gouv.fr/drim-m/liste-blanche/v2"])
def test_other_namespace(signer, root, crl, namespace):
    xml = _signed(signer, root, namespace=namespace)
    verdict = verify_whitelist(xml, [root], crl=crl)
    assert verdict.valid, verdict.reason
    assert [d.db for d in verdict.domains] == ["db.box-a.test:8443", "db.box-b.test"]


def test_unreadable(root):
    assert "unreadable" in verify_whitelist(b"<oops", [root]).reason
    assert "not a DRIM-M whitelist" in verify_whitelist(b"<Autre/>", [root]).reason


def test_xmlsec1_accepts_our_list(pki, good, tmp_path):
    if shutil.which("xmlsec1") is None:
        pytest.skip("xmlsec1 not installed")
    path = tmp_path / "list.xml"
    path.write_bytes(good)
    result = subprocess.run(["xmlsec1", "--verify", "--trusted-pem", pki["root"]["cert"], str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_demo_whitelist_uses_box_auth_dn(pki, root, crl):
    xml = make_demo_whitelist(pki, {"box-a": {"db": "localhost:8443", "vi": "localhost:9443"}})
    verdict = verify_whitelist(xml, [root], crl=crl)
    assert verdict.valid
    assert verdict.domains[0].operator_dn == pki["boxes"]["box-a"]["auth"]["subject"]


def test_cli_verify_and_sign(pki, tmp_path, capsys):
    domains = tmp_path / "domains.json"
    domains.write_text(json.dumps([{"id": "X", "db": "db.x.test", "vi": "vi.x.test", "name": "X",
                                    "operator_dn": "CN=x,C=FR"}]))
    out = tmp_path / "list.xml"
    signer = pki["whitelist_signer"]
    assert cli_main(["whitelist", "sign", "--domains", str(domains), "--cert", signer["cert"], "--key",
                     signer["key"], "--chain", signer["chain"], "--out", str(out)]) == 0
    capsys.readouterr()
    anchor = ["--trust-anchor", pki["root"]["cert"]]
    assert cli_main(["whitelist", "verify", str(out), *anchor, "--crl", pki["crl"], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] and report["revocation_checked"]
    assert report["domains"][0]["db"] == "db.x.test"
    assert cli_main(["whitelist", "verify", str(out), *anchor]) == 0
    assert "revocation not checked" in capsys.readouterr().out
    out.write_bytes(out.read_bytes().replace(b"db.x.test", b"db.y.test"))
    assert cli_main(["whitelist", "verify", str(out), *anchor, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["valid"] is False
