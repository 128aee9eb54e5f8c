"""keyUsage, basicConstraints and pathLenConstraint in the signature chain builder, with certificates minted
with the wrong extensions."""

from __future__ import annotations

import pytest
from cryptography import x509

from drimbox.crypto.chain import ChainError, validate_chain
from drimbox.crypto.pki import issue_certificate, make_key_usage, make_name, make_root_ca
from drimbox.samples.whitelist import make_whitelist
from drimbox.trust.whitelist import Domain, verify_whitelist

SIGNER_NAME = make_name("Liste Blanche DRIM-M", ou="318751275100020")
CA_USAGE = make_key_usage(key_cert_sign=True, crl_sign=True)


@pytest.fixture(scope="module")
def root():
    return make_root_ca()


@pytest.fixture(scope="module")
def intermediate(root):
    return issue_certificate(root, make_name("AC TEST"), profile="ca")


def _signer(issuer, **options):
    return issue_certificate(issuer, SIGNER_NAME, profile="signing", **options)


def _validate(leaf, root):
    return validate_chain(leaf.cert, leaf.chain, [root.cert])


def test_a_well_formed_chain(root, intermediate):
    signer = _signer(intermediate)
    assert _validate(signer, root) == [signer.cert, intermediate.cert, root.cert]


@pytest.mark.parametrize("usage", [
    make_key_usage(digital_signature=True),
    make_key_usage(content_commitment=True),
], ids=["digitalSignature", "nonRepudiation"])
def test_signer_usages_accepted(root, intermediate, usage):
    assert _validate(_signer(intermediate, key_usage=usage), root)[0].subject == SIGNER_NAME


@pytest.mark.parametrize("usage, message", [
    (make_key_usage(key_encipherment=True), "neither digitalSignature nor nonRepudiation"),
    (make_key_usage(key_cert_sign=True, crl_sign=True), "neither digitalSignature nor nonRepudiation"),
    (None, "no keyUsage"),
], ids=["keyEncipherment-only", "ca-usages-only", "no-keyUsage"])
def test_signer_usages_refused(root, intermediate, usage, message):
    with pytest.raises(ChainError, match=message):
        _validate(_signer(intermediate, key_usage=usage), root)


@pytest.mark.parametrize("constraints, usage, message", [
    (x509.BasicConstraints(ca=False, path_length=None), CA_USAGE, "cA false"),
    (None, CA_USAGE, "no basicConstraints"),
    (x509.BasicConstraints(ca=True, path_length=0), make_key_usage(crl_sign=True, digital_signature=True),
     "lacks keyCertSign"),
    (x509.BasicConstraints(ca=True, path_length=0), None, "no keyUsage"),
], ids=["not-ca", "no-basicConstraints", "no-keyCertSign", "no-keyUsage"])
def test_intermediate_extensions_refused(root, constraints, usage, message):
    bad = issue_certificate(root, make_name("AC TEST BAD"), profile="ca", basic_constraints=constraints,
                            key_usage=usage)
    with pytest.raises(ChainError, match=message):
        _validate(_signer(bad), root)


def test_a_leaf_cannot_issue(root, intermediate):
    # a signing (end-entity) certificate used as an issuer
    leaf_as_ca = _signer(intermediate)
    with pytest.raises(ChainError, match="cA false"):
        _validate(_signer(leaf_as_ca), root)


@pytest.mark.parametrize("path_length, accepted", [(0, False), (1, True), (None, True)])
def test_intermediate_path_length(root, path_length, accepted):
    upper = issue_certificate(root, make_name("AC TEST HAUTE"), profile="ca", path_length=path_length)
    lower = issue_certificate(upper, make_name("AC TEST BASSE"), profile="ca")
    signer = _signer(lower)
    if accepted:
        assert len(_validate(signer, root)) == 4
    else:
        with pytest.raises(ChainError, match="pathLenConstraint 0"):
            _validate(signer, root)


def test_root_path_length(intermediate):
    strict_root = make_root_ca("RACINE STRICTE", path_length=0)
    middle = issue_certificate(strict_root, make_name("AC TEST"), profile="ca")
    with pytest.raises(ChainError, match="trust anchor pathLenConstraint 0"):
        _validate(_signer(middle), strict_root)
    assert len(_validate(_signer(strict_root), strict_root)) == 2  # no intermediate: allowed


def test_root_without_keycertsign_refused():
    bad_root = make_root_ca("RACINE SANS KEYCERTSIGN", key_usage=make_key_usage(crl_sign=True))
    with pytest.raises(ChainError, match="trust anchor keyUsage lacks keyCertSign"):
        _validate(_signer(bad_root), bad_root)


def test_legacy_root_without_extensions_is_taken_as_configured():
    legacy = make_root_ca("RACINE V1", basic_constraints=None, key_usage=None)
    assert len(_validate(_signer(legacy), legacy)) == 2


def test_whitelist_signed_with_an_encipherment_certificate_is_refused(root, intermediate):
    signer = _signer(intermediate, key_usage=make_key_usage(key_encipherment=True))
    xml = make_whitelist([Domain("D", "db.a.test", "vi.a.test")], signer_key=signer.key, signer_cert=signer.cert,
                         chain=[intermediate.cert, root.cert])
    verdict = verify_whitelist(xml, [root.cert])
    assert not verdict.valid and "digitalSignature" in verdict.reason
