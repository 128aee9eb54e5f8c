"""Settings of the trusted space: the signed whitelist and peer access. Owned by the trust package."""

from __future__ import annotations

from dataclasses import dataclass

CLIENT_CERTIFICATE_REQUIRED = "required"
CLIENT_CERTIFICATE_OFF = "off"
CLIENT_CERTIFICATE_MODES = (CLIENT_CERTIFICATE_REQUIRED, CLIENT_CERTIFICATE_OFF)


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
    # "required": every peer image request needs a TLS client certificate verified by nginx whose subject DN
    # is an operator DN (DNCertificatOperateur) of the whitelist in force. "off": only for a network that
    # does not use mutual TLS; logged as a warning at start and shown in the health check.
    client_certificate: str = CLIENT_CERTIFICATE_REQUIRED
    # PEM bundle of the IGC-Santé CAs nginx verifies peers' certificates against, and their CRLs (PEM), for the
    # generated nginx configuration; empty: the launcher's test PKI.
    client_ca_file: str = ""
    client_crl_file: str = ""
    # PSC client ids whose access tokens this box accepts from peers (introspection's client_id, else azp).
    # Empty: any client of the configured PSC issuer.
    accepted_token_clients: tuple[str, ...] = ()
    hsts_max_age: int = 31536000

    @property
    def client_certificate_required(self) -> bool:
        return self.client_certificate == CLIENT_CERTIFICATE_REQUIRED

    def validate(self, path: str) -> None:
        # Imported here: drimbox.config imports this module while it initialises.
        from drimbox.config.fields import SettingsError

        if self.client_certificate not in CLIENT_CERTIFICATE_MODES:
            raise SettingsError(f"{path}.ClientCertificate must be one of {', '.join(CLIENT_CERTIFICATE_MODES)},"
                                f" got {self.client_certificate!r}")
        if any(not isinstance(c, str) or not c.strip() for c in self.accepted_token_clients):
            raise SettingsError(f"{path}.AcceptedTokenClients must be a list of non-empty PSC client ids")
        if self.hsts_max_age < 0:
            raise SettingsError(f"{path}.HstsMaxAge must be >= 0")
