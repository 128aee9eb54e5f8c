"""Settings of the trusted space: the signed whitelist and peer access. Owned by the trust package."""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.util.setting import setting

CLIENT_CERTIFICATE_REQUIRED = "required"
CLIENT_CERTIFICATE_OFF = "off"
CLIENT_CERTIFICATE_MODES = (CLIENT_CERTIFICATE_REQUIRED, CLIENT_CERTIFICATE_OFF)


@dataclass(frozen=True)
class WhitelistSettings:
    source: str = setting("", "URL or file of the signed national whitelist; empty: no peer is trusted")
    trust_anchor: str = setting("", "PEM of the IGC-Santé root the list's signer must chain to")
    crl_urls: tuple[str, ...] = setting((), "CRLs checked for the signer's chain")
    refresh_hours: float = setting(24.0, "how often the list is fetched again")
    signer_cn: str = setting("Liste Blanche DRIM-M", "CN the signer's certificate must have")
    signer_ou: str = setting("318751275100020", "OU the signer's certificate must have")
    require_revocation_check: bool = setting(True, "refuse a new list when no current CRL can be fetched (the "
                                                   "list in force stays)")


@dataclass(frozen=True)
class PeerAccessSettings:
    # "off" is only for a network that does not use mutual TLS; logged at every start, shown in the health check.
    client_certificate: str = setting(CLIENT_CERTIFICATE_REQUIRED, '"required": peer image requests need a '
                                      "TLS client certificate nginx verified whose subject DN is an operator DN of "
                                      'the whitelist in force; "off": none asked')
    client_ca_file: str = setting("", "PEM bundle of the IGC-Santé CAs nginx verifies peers' certificates "
                                      "against; empty: the launcher's test PKI")
    client_crl_file: str = setting("", "their CRLs (PEM), for nginx")
    accepted_token_clients: tuple[str, ...] = setting((), "PSC client ids whose access tokens peers may present "
                                                          "(client_id, else azp); empty: any client of Psc.Issuer")
    hsts_max_age: int = setting(31536000, "max-age of the Strict-Transport-Security header, in seconds")

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
