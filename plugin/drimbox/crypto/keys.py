"""Load private keys and certificate chains from PEM or PKCS#12 files, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

PKCS12_SUFFIXES = (".p12", ".pfx")


class KeyLoadError(ValueError):
    """A key or certificate file is missing, unreadable or of an unexpected kind."""


def _read(path: str | Path, what: str) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyLoadError(f"{what} file not found: {path}") from None
    except OSError as error:
        raise KeyLoadError(f"cannot read {what} file {path}: {error.strerror}") from None


def _is_pkcs12(path: str | Path, data: bytes) -> bool:
    return str(path).lower().endswith(PKCS12_SUFFIXES) or not data.lstrip().startswith(b"-----")


def load_certificate_chain(path: str | Path) -> list[x509.Certificate]:
    """Every certificate of a PEM (or DER) file, in file order; the leaf is expected first."""
    data = _read(path, "certificate")
    if b"-----BEGIN" in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as error:
            raise KeyLoadError(f"{path}: not a valid PEM certificate file ({error})") from None
    else:
        try:
            certs = [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise KeyLoadError(f"{path}: neither PEM nor DER certificate data") from None
    if not certs:
        raise KeyLoadError(f"{path}: contains no certificate")
    return certs


def load_private_key(path: str | Path, password: bytes | None = None) -> PrivateKey:
    """A private key from a PEM file (which may also hold certificates) or a DER file."""
    data = _read(path, "private key")
    try:
        if b"-----BEGIN" in data:
            if b"PRIVATE KEY-----" not in data:
                raise KeyLoadError(f"{path}: contains no PEM private key")
            key = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
    except TypeError as error:  # password missing or given for an unencrypted key
        raise KeyLoadError(f"{path}: {error}") from None
    except ValueError as error:
        raise KeyLoadError(f"{path}: cannot load private key (wrong password or corrupt data: {error})") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise KeyLoadError(f"{path}: unsupported key type {type(key).__name__} (RSA or EC expected)")
    return key


def _read_password(password_file: str | Path) -> bytes | None:
    if not password_file:
        return None
    return _read(password_file, "password").rstrip(b"\r\n")


def load_key_and_cert(
    cert_path: str | Path, key_path: str | Path = "", password_file: str | Path = ""
) -> tuple[PrivateKey, x509.Certificate, list[x509.Certificate]]:
    """Key, leaf certificate and the rest of the chain (leaf excluded).

    ``cert_path`` is a PKCS#12 file (.p12/.pfx), or a PEM file holding the certificate (and chain) and, when
    ``key_path`` is empty, the key as well. ``password_file`` holds the PKCS#12 or key password on its first line.
    """
    password = _read_password(password_file)
    data = _read(cert_path, "certificate")
    if _is_pkcs12(cert_path, data) and not key_path:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password)
        except ValueError as error:
            raise KeyLoadError(f"{cert_path}: cannot open PKCS#12 (wrong password or corrupt file: {error})") from None
        if key is None or cert is None:
            raise KeyLoadError(f"{cert_path}: PKCS#12 file lacks the private key or its certificate")
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise KeyLoadError(f"{cert_path}: unsupported key type {type(key).__name__}")
        return key, cert, list(extra or [])
    certs = load_certificate_chain(cert_path)
    key = load_private_key(key_path or cert_path, password)
    leaf_index = _index_of_certificate_for(key, certs)
    if leaf_index is None:
        raise KeyLoadError(f"{cert_path}: no certificate matches the private key in {key_path or cert_path}")
    leaf = certs[leaf_index]
    return key, leaf, certs[:leaf_index] + certs[leaf_index + 1 :]


def _index_of_certificate_for(key: PrivateKey, certs: list[x509.Certificate]) -> int | None:
    wanted = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for index, cert in enumerate(certs):
        got = cert.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        if got == wanted:
            return index
    return None
