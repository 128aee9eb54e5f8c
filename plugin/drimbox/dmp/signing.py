"""The structure's signing key and certificate, loaded once (VIHF and DSG signatures)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509

from drimbox.crypto.keys import PrivateKey, load_key_and_cert


@dataclass(frozen=True)
class SigningMaterial:
    key: PrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = field(default_factory=tuple)

    @classmethod
    def load(cls, cert_path: str, key_path: str = "", password_file: str = "") -> "SigningMaterial":
        if not cert_path:
            raise ValueError("no signing certificate configured (DRIMbox.Dmp.SigningCert)")
        key, cert, chain = load_key_and_cert(cert_path, key_path, password_file)
        return cls(key=key, cert=cert, chain=tuple(chain))

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()
