from __future__ import annotations

import json
import os
import stat
import subprocess

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from drimbox.cli import main as cli_main
from drimbox.crypto.keys import load_certificate_chain
from drimbox.crypto.pki import (
    create_test_pki,
    issue_certificate,
    load_issued,
    make_name,
    make_root_ca,
    now_utc,
    revoke,
)


def _cert(path: str) -> x509.Certificate:
    return load_certificate_chain(path)[0]


def _openssl_verify(pki: dict, cert_path: str, *, crl: bool = False) -> subprocess.CompletedProcess:
    command = ["openssl", "verify", "-CAfile", pki["ca_bundle"]]
    if crl:
        command += ["-crl_check_all", "-CRLfile", pki["crl_bundle"]]
    return subprocess.run([*command, cert_path], capture_output=True, text=True)


def test_every_certificate_chains_to_the_root(pki):
    paths = [pki["whitelist_signer"]["cert"]]
    paths += [s["cert"] for s in pki["servers"].values()]
    paths += [b[kind]["cert"] for b in pki["boxes"].values() for kind in ("auth", "signing")]
    for path in paths:
        result = _openssl_verify(pki, path, crl=True)
        assert result.returncode == 0, result.stderr


def test_profiles_and_names(pki):
    signer = _cert(pki["whitelist_signer"]["cert"])
    assert signer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Liste Blanche DRIM-M"
    assert signer.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "318751275100020"
    server = _cert(pki["servers"]["nginx"]["cert"])
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert ExtendedKeyUsageOID.SERVER_AUTH in server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    box = pki["boxes"]["box-a"]
    auth = _cert(box["auth"]["cert"])
    assert auth.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == box["structure_id"]
    assert ExtendedKeyUsageOID.CLIENT_AUTH in auth.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    chain = load_certificate_chain(pki["whitelist_signer"]["chain"])
    assert [c.subject for c in chain] == [_cert(pki["intermediate"]["cert"]).subject,
                                          _cert(pki["root"]["cert"]).subject]


def test_private_keys_are_private(pki):
    for entry in [pki["root"], pki["whitelist_signer"], *pki["servers"].values()]:
        assert stat.S_IMODE(os.stat(entry["key"]).st_mode) == 0o600


def test_idempotent_unless_forced(tmp_path):
    first = create_test_pki(tmp_path, boxes=("b1",))
    again = create_test_pki(tmp_path, boxes=("b1",))
    assert again["root"]["serial"] == first["root"]["serial"]
    assert again["boxes"]["b1"]["auth"]["serial"] == first["boxes"]["b1"]["auth"]["serial"]
    os.remove(first["boxes"]["b1"]["auth"]["cert"])
    patched = create_test_pki(tmp_path, boxes=("b1",))
    assert patched["root"]["serial"] == first["root"]["serial"]
    assert patched["boxes"]["b1"]["auth"]["serial"] != first["boxes"]["b1"]["auth"]["serial"]
    forced = create_test_pki(tmp_path, boxes=("b1",), force=True)
    assert forced["root"]["serial"] != first["root"]["serial"]
    assert json.loads((tmp_path / "pki.json").read_text())["root"]["serial"] == forced["root"]["serial"]


def test_revoke_reissues_the_crl(tmp_path):
    index = create_test_pki(tmp_path, boxes=("b1",))
    assert _openssl_verify(index, index["whitelist_signer"]["cert"], crl=True).returncode == 0
    updated = revoke(index, index["whitelist_signer"]["cert"])
    result = _openssl_verify(updated, index["whitelist_signer"]["cert"], crl=True)
    assert result.returncode != 0 and "revoked" in result.stderr
    crl = x509.load_der_x509_crl(open(updated["crl"], "rb").read())
    assert crl.get_revoked_certificate_by_serial_number(index["whitelist_signer"]["serial"]) is not None
    # a later idempotent call keeps the revocation
    assert create_test_pki(tmp_path, boxes=("b1",))["revoked_serials"] == [index["whitelist_signer"]["serial"]]


def test_odd_certificate_helpers(pki):
    intermediate = load_issued(pki["intermediate"])
    expired = issue_certificate(
        intermediate, make_name("Liste Blanche DRIM-M", ou="318751275100020"), profile="signing",
        not_before=now_utc().replace(year=2015), not_after=now_utc().replace(year=2016),
    )
    assert expired.cert.not_valid_after_utc < now_utc()
    assert expired.chain[0] == intermediate.cert
    other_root = make_root_ca("OTHER ROOT")
    stranger = issue_certificate(other_root, make_name("x"))
    assert stranger.cert.issuer == other_root.cert.subject


def test_cli_pki_init(tmp_path, capsys):
    assert cli_main(["pki", "init", "--out", str(tmp_path), "--box", "alpha", "--host", "db.example", "--json"]) == 0
    index = json.loads(capsys.readouterr().out)
    assert list(index["boxes"]) == ["alpha"]
    sans = _cert(index["servers"]["nginx"]["cert"]).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "db.example" in sans.value.get_values_for_type(x509.DNSName)
