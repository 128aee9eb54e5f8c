"""Settings of the trusted space: the signed whitelist and peer access. Owned by the trust package."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WhitelistSettings:
    source: str = ""  # URL or file path of the signed list
    trust_anchor: str = ""  # PEM of the IGC-Santé root the signer must chain to
    crl_urls: tuple[str, ...] = ()
    refresh_hours: float = 24.0
    signer_cn: str = "Liste Blanche DRIM-M"
    signer_ou: str = "318751275100020"
    # Refuse a new list when no current CRL can be fetched (the list in force stays).
    require_revocation_check: bool = True


@dataclass(frozen=True)
class PeerAccessSettings:
    # When true the caller's TLS certificate DN must be an operator DN of the whitelist.
    require_client_certificate: bool = False
    hsts_max_age: int = 31536000
