"""Patient access tokens: signed, expiring JWTs carried by a patient's viewer link.

A token grants one study. Claims: ``iss``, ``aud`` (the viewer's public URL unless configured), ``sub`` (the
patient, opaque to the box), ``exp`` (required), ``iat``/``nbf`` (optional), ``study_uid`` (required), and
optionally ``accession`` and ``report_id``, which must then match the link. Only asymmetric signatures
(RS*/PS*/ES*) are accepted, with the keys of ``Viewer.PatientTokenKeys`` (PEM public keys or certificates, or
a JWKS) and, when ``Viewer.LocalPatientLinks`` is on, the box's own key (kept in its store).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey, import_key

from drimbox.util.json_depth import loads_untrusted

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
LOCAL_KEY_FACT = "viewer_patient_token_key"
LOCAL_KID = "drimbox-local"


class TokenRefused(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class PatientGrant:
    subject: str
    study_uid: str
    issuer: str
    expires_at: float
    token_id: str = ""


def load_verification_keys(path: str) -> list[tuple[str | None, Any]]:
    """(kid or None, joserfc key) pairs from a JWKS JSON file or a PEM file of public keys/certificates."""
    text = Path(path).read_text(encoding="utf-8")
    keys: list[tuple[str | None, Any]] = []
    if text.lstrip().startswith("{"):
        document = json.loads(text)
        for entry in document.get("keys", [document] if "kty" in document else []):
            if entry.get("use", "sig") != "sig":
                continue
            keys.append((entry.get("kid"), import_key(entry)))
        return keys
    public: Any
    for match in re.finditer(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", text, re.S):
        block = match.group(0)
        if match.group(1) == "CERTIFICATE":
            public = x509.load_pem_x509_certificate(block.encode()).public_key()
        elif match.group(1) == "PUBLIC KEY":
            public = serialization.load_pem_public_key(block.encode())
        else:
            continue
        keys.append((None, _public_key(public.public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo))))
    return keys


def _public_key(pem: bytes) -> Any:
    """A joserfc key from a PEM public key (RSA or EC, the asymmetric kinds patient tokens may use)."""
    public = serialization.load_pem_public_key(pem)
    return ECKey.import_key(pem) if isinstance(public, ec.EllipticCurvePublicKey) else RSAKey.import_key(pem)


class LocalSigner:
    """The box's own patient-link key (EC P-256), created on first use and kept in the store's facts."""

    def __init__(self, store, issuer: str):
        self.store = store
        self.issuer = issuer

    def _private_pem(self) -> str:
        pem = self.store.get_fact(LOCAL_KEY_FACT)
        if pem is None:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
            pem = self.store.first_fact(LOCAL_KEY_FACT, pem)  # another node may have won the race
        return pem

    def public_pem(self) -> str:
        key = serialization.load_pem_private_key(self._private_pem().encode(), None)
        return key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def issue(self, *, audience: str, study_uid: str, accession: str = "", report_id: str = "",
              subject: str = "patient", lifetime_seconds: float = 72 * 3600, now: float | None = None) -> str:
        now = time.time() if now is None else now
        claims = {"iss": self.issuer, "aud": audience, "sub": subject, "iat": int(now),
                  "exp": int(now + lifetime_seconds), "jti": secrets.token_urlsafe(12), "study_uid": study_uid}
        if accession:
            claims["accession"] = accession
        if report_id:
            claims["report_id"] = report_id
        return jws.serialize_compact({"alg": "ES256", "kid": LOCAL_KID, "typ": "JWT"},
                                     json.dumps(claims, separators=(",", ":")).encode(),
                                     ECKey.import_key(self._private_pem()), algorithms=["ES256"])


class PatientTokenVerifier:
    def __init__(self, *, audience: str, issuer: str = "", keys: list[tuple[str | None, Any]] | None = None,
                 local: LocalSigner | None = None, clock_skew_seconds: float = 60.0):
        self.audience = audience
        self.issuer = issuer
        self.keys = list(keys or [])
        self.local = local
        self.skew = clock_skew_seconds

    def _candidates(self, kid: str | None) -> list[tuple[Any, str]]:
        """(key, issuer it may sign for; "" = the configured issuer rule)."""
        found = [(key, "") for key_kid, key in self.keys if kid is None or key_kid in (None, kid)]
        if self.local is not None and kid in (None, LOCAL_KID):
            found.append((_public_key(self.local.public_pem().encode()), self.local.issuer))
        return found

    def verify(self, token: str, *, study_uid: str, accession: str = "", report_id: str = "",
               now: float | None = None) -> PatientGrant:
        now = time.time() if now is None else now
        try:
            loads_untrusted(_header_segment(token))  # only measured: too deep to hand to the JOSE library
            header = jws.extract_compact(token.encode()).protected
        except (JoseError, ValueError) as error:
            raise TokenRefused("malformed", f"the access token is not a JWT: {error}") from error
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenRefused("bad_signature", f"the access token is signed with {algorithm!r}")
        payload, bound_issuer = None, ""
        for key, issuer in self._candidates(header.get("kid")):
            try:
                payload = jws.deserialize_compact(token, key, algorithms=[algorithm]).payload
                bound_issuer = issuer
                break
            except (JoseError, ValueError):
                continue
        if payload is None:
            raise TokenRefused("bad_signature", "the access token's signature matches no trusted key")
        try:
            claims = json.loads(payload)
        except ValueError as error:
            raise TokenRefused("malformed", "the access token's claims are not JSON") from error
        if not isinstance(claims, dict):
            raise TokenRefused("malformed", "the access token's claims are not an object")
        issuer = str(claims.get("iss", ""))
        expected_issuer = bound_issuer or self.issuer
        if expected_issuer and issuer != expected_issuer:
            raise TokenRefused("bad_issuer", f"the access token's issuer {issuer!r} is not trusted for that key")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise TokenRefused("bad_audience", f"the access token is meant for {audience!r}, not this viewer")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise TokenRefused("malformed", "the access token has no expiry")
        if now > exp + self.skew:
            raise TokenRefused("expired", "the access token has expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and now + self.skew < nbf:
            raise TokenRefused("not_yet_valid", "the access token is not valid yet")
        if claims.get("study_uid") != study_uid:
            raise TokenRefused("other_study", "the access token is for another study")
        for name, value in (("accession", accession), ("report_id", report_id)):
            if name in claims and claims[name] != value:
                raise TokenRefused("other_study", f"the access token's {name} does not match the link")
        return PatientGrant(subject=str(claims.get("sub", "")), study_uid=study_uid, issuer=issuer,
                            expires_at=float(exp), token_id=str(claims.get("jti", "")))


def _header_segment(token: str) -> bytes:
    segment = token.split(".", 1)[0]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
