"""Pure pieces of the viewer link: DICOMweb targets, the one-study decision, patient tokens, settings."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws, jwt
from joserfc.jwk import OctKey, RSAKey

from drimbox.config.fields import SettingsError, read_section
from drimbox.store import Store
from drimbox.web.patient_tokens import LocalSigner, PatientTokenVerifier, TokenRefused, load_verification_keys
from drimbox.web.settings import ViewerSettings
from drimbox.web.viewer_session import ViewerSession, cookie_name, decide, seal_session

SECRET = b"s" * 32
UID, OTHER = "1.2.3.4", "1.2.3.5"


def cookie(uid: str, secret: bytes = SECRET, max_age: float = 600) -> str:
    return f"{cookie_name(uid)}={seal_session(ViewerSession(uid, 'kos', 'patient', 'p'), secret, max_age=max_age)}"


def test_decision_is_scoped_to_the_cookie_study():
    assert decide("GET", f"/dicom-web/studies/{UID}/series", cookie(UID), SECRET).status == 200
    assert decide("GET", f"/dicom-web/studies/{OTHER}/series", cookie(UID), SECRET).status == 403
    assert decide("POST", f"/dicom-web/studies/{UID}/series", cookie(UID), SECRET).status == 403
    assert decide("GET", f"/dicom-web/studies/{UID}/series", "", SECRET).status == 401
    assert decide("GET", f"/dicom-web/studies/{UID}/series", cookie(UID, b"x" * 32), SECRET).status == 401
    assert decide("GET", f"/dicom-web/studies/{UID}/series", cookie(UID, max_age=-1), SECRET).status == 401
    both = cookie(UID) + "; other=1; " + cookie(OTHER)
    assert decide("GET", f"/dicom-web/studies/{OTHER}/series", both, SECRET).status == 200
    # a valid cookie of study A renamed to study B's cookie name does not open B
    swapped = cookie(UID).replace(cookie_name(UID), cookie_name(OTHER))
    assert decide("GET", f"/dicom-web/studies/{OTHER}/series", swapped, SECRET).status == 403


def test_decision_names_the_rebuilt_uri_and_refuses_what_it_cannot_rebuild():
    granted = decide("GET", f"/dicom-web/studies?0020000d={UID}&includefield=all", cookie(UID), SECRET)
    assert granted.status == 200 and granted.target.uri == f"/dicom-web/studies?StudyInstanceUID={UID}&includefield=all"
    for uri in (f"/dicom-web/studies?studyinstanceuid={UID}", f"/dicom-web/studies?StudyInstanceUID={UID}&x=1",
                "/dicom-web/studies"):
        refused = decide("GET", uri, cookie(UID), SECRET)
        assert (refused.status, refused.target) == (403, None)
        assert "not a request the viewer gate understands" in refused.reason
        assert decide("GET", uri, "", SECRET).status == 401


def test_local_tokens_verify_and_are_bound_to_study_and_audience(tmp_path):
    signer = LocalSigner(Store.open(f"sqlite:///{tmp_path}/drimbox.db"), "https://vi/drimbox/patient-links")
    verifier = PatientTokenVerifier(audience="https://vi", local=signer)
    token = signer.issue(audience="https://vi", study_uid=UID, accession="A1", report_id="R1", subject="pat")
    assert verifier.verify(token, study_uid=UID, accession="A1", report_id="R1").subject == "pat"
    for kwargs, reason in (({"study_uid": OTHER, "accession": "A1", "report_id": "R1"}, "other_study"),
                           ({"study_uid": UID, "accession": "A2", "report_id": "R1"}, "other_study")):
        with pytest.raises(TokenRefused) as refused:
            verifier.verify(token, **kwargs)
        assert refused.value.reason == reason
    with pytest.raises(TokenRefused) as refused:
        PatientTokenVerifier(audience="https://elsewhere", local=signer).verify(token, study_uid=UID,
                                                                                   accession="A1", report_id="R1")
    assert refused.value.reason == "bad_audience"
    old = signer.issue(audience="https://vi", study_uid=UID, lifetime_seconds=10, now=time.time() - 3600)
    with pytest.raises(TokenRefused) as refused:
        verifier.verify(old, study_uid=UID)
    assert refused.value.reason == "expired"
    with pytest.raises(TokenRefused) as refused:
        verifier.verify(jwt.encode({"alg": "HS256"}, {"study_uid": UID, "aud": "https://vi", "exp": time.time() + 60},
                                   OctKey.import_key("k" * 32)), study_uid=UID)
    assert refused.value.reason == "bad_signature"


def test_national_keys_from_a_pem_file_with_issuer(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "keys.pem").write_bytes(pem)
    verifier = PatientTokenVerifier(audience="https://vi", issuer="https://espace-sante",
                                    keys=load_verification_keys(str(tmp_path / "keys.pem")))
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    claims = {"iss": "https://espace-sante", "aud": "https://vi", "sub": "p", "exp": int(time.time()) + 60,
              "study_uid": UID}
    token = jws.serialize_compact({"alg": "RS256"}, json.dumps(claims).encode(), RSAKey.import_key(private))
    assert verifier.verify(token, study_uid=UID).issuer == "https://espace-sante"
    wrong_issuer = jws.serialize_compact({"alg": "RS256"}, json.dumps({**claims, "iss": "https://other"}).encode(),
                                         RSAKey.import_key(private))
    with pytest.raises(TokenRefused):
        verifier.verify(wrong_issuer, study_uid=UID)


def test_viewer_settings_validate_the_link_template():
    assert read_section(ViewerSettings, {"LinkTemplate": "{viewer}/v?s={study_uid}"}, "V").link_template
    with pytest.raises(SettingsError, match="study_uid"):
        read_section(ViewerSettings, {"LinkTemplate": "{viewer}/v"}, "V")
    with pytest.raises(SettingsError, match="placeholder"):
        read_section(ViewerSettings, {"LinkTemplate": "{viewer}/v?s={study_uid}&x={nope}"}, "V")
