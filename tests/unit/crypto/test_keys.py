from __future__ import annotations

from pathlib import Path

import pytest

from drimbox.crypto.keys import KeyLoadError, load_certificate_chain, load_key_and_cert, load_private_key
from drimbox.crypto.pki import cert_pem, key_pem, load_issued, write_pkcs12


def test_separate_pem_files(pki):
    entry = pki["boxes"]["box-a"]["auth"]
    key, cert, chain = load_key_and_cert(entry["fullchain"], entry["key"])
    assert cert.subject.rfc4514_string() == entry["subject"]
    assert [c.subject for c in chain] == [load_certificate_chain(pki["intermediate"]["cert"])[0].subject]
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_key_and_chain_in_one_pem_file_key_first_order_irrelevant(pki, tmp_path):
    issued = load_issued(pki["boxes"]["box-a"]["signing"])
    combined = tmp_path / "all.pem"
    # chain first, then leaf, then key: the leaf is found by matching the key.
    combined.write_bytes(cert_pem(*issued.chain) + cert_pem(issued.cert) + key_pem(issued.key))
    key, cert, chain = load_key_and_cert(combined)
    assert cert == issued.cert
    assert chain == issued.chain


@pytest.mark.parametrize("suffix", [".p12", ".pfx"])
def test_pkcs12_with_password_file(pki, tmp_path, suffix):
    issued = load_issued(pki["boxes"]["box-b"]["auth"])
    p12 = write_pkcs12(tmp_path / f"org{suffix}", issued, b"s3cret")
    password = tmp_path / "password.txt"
    password.write_text("s3cret\n")
    key, cert, chain = load_key_and_cert(p12, password_file=password)
    assert cert == issued.cert
    assert chain == issued.chain
    with pytest.raises(KeyLoadError, match="org"):
        load_key_and_cert(p12)


def test_pkcs12_without_password(pki, tmp_path):
    issued = load_issued(pki["boxes"]["box-b"]["auth"])
    key, cert, _ = load_key_and_cert(write_pkcs12(tmp_path / "plain.p12", issued))
    assert cert == issued.cert


def test_errors_name_the_file(pki, tmp_path):
    missing = tmp_path / "missing.pem"
    with pytest.raises(KeyLoadError, match="missing.pem"):
        load_certificate_chain(missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(KeyLoadError, match="garbage.pem"):
        load_certificate_chain(garbage)
    with pytest.raises(KeyLoadError, match="no PEM private key"):
        load_private_key(pki["root"]["cert"])
    other_key = pki["boxes"]["box-b"]["auth"]["key"]
    with pytest.raises(KeyLoadError, match="no certificate matches"):
        load_key_and_cert(pki["boxes"]["box-a"]["auth"]["cert"], other_key)


def test_der_certificate(pki, tmp_path):
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = load_certificate_chain(pki["root"]["cert"])[0]
    der = Path(tmp_path / "root.cer")
    der.write_bytes(cert.public_bytes(Encoding.DER))
    assert load_certificate_chain(der) == [cert]
