"""The simulator's RS256 signing key: generated at start, published as a JWKS."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey


class SigningKey:
    algorithm = "RS256"

    def __init__(self, private_key: rsa.RSAPrivateKey | None = None, kid: str | None = None) -> None:
        self._private_key = private_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid or secrets.token_hex(8)
        private_pem = self._private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Built once: loading a PEM key checks it, which costs tens of milliseconds per token otherwise.
        self._signer = RSAKey.import_key(private_pem)
        self._verifier = RSAKey.import_key(dict(self.jwk()))

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode({"alg": self.algorithm, "kid": self.kid, "typ": "JWT"}, claims, self._signer,
                          algorithms=[self.algorithm])

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims if ``token`` carries our signature (expiry NOT checked), else None."""
        try:
            return dict(jwt.decode(token, self._verifier, algorithms=[self.algorithm]).claims)
        except (JoseError, ValueError):
            return None

    def jwk(self) -> dict[str, str]:
        numbers = self._private_key.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "alg": self.algorithm, "kid": self.kid,
                "n": _b64_uint(numbers.n), "e": _b64_uint(numbers.e)}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}


def _b64_uint(value: int) -> str:
    data = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
