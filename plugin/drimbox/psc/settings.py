"""Settings of the Pro Santé Connect OpenID Connect client. Owned by the psc package."""

from __future__ import annotations

from dataclasses import dataclass

PSC_ISSUERS = {
    "production": "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet",
    "sandbox": "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet",
}


@dataclass(frozen=True)
class PscSettings:
    # Issuer URL, or a preset name: "production", "sandbox". Empty = the local PSC simulator.
    issuer: str = "https://localhost:8446/auth/realms/esante-wallet"
    client_id: str = "drimbox-demo"
    client_secret_file: str = ""
    ca_bundle: str = ""
    scope: str = "openid scope_all"
    acr_values: str = "eidas1"
    introspection_cache_seconds: float = 30.0

    @property
    def issuer_url(self) -> str:
        return PSC_ISSUERS.get(self.issuer, self.issuer)
