"""Settings of the Pro Santé Connect OpenID Connect client. Owned by the psc package."""

from __future__ import annotations

from dataclasses import dataclass

PSC_ISSUERS = {
    "production": "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet",
    "sandbox": "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet",
}

TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "tls_client_auth")


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
    # How the box authenticates to the token and introspection endpoints. "tls_client_auth" is RFC 8705
    # mutual TLS: the client certificate below identifies the box and no secret is sent.
    token_auth_method: str = "client_secret_basic"
    client_cert_file: str = ""
    client_key_file: str = ""
    http_timeout_seconds: float = 10.0
    discovery_cache_seconds: float = 3600.0
    # Tolerated clock difference with PSC when checking exp/iat of ID tokens.
    clock_skew_seconds: float = 60.0

    @property
    def issuer_url(self) -> str:
        return PSC_ISSUERS.get(self.issuer, self.issuer)

    def validate(self, path: str) -> None:
        # Imported here: drimbox.config imports this module while it initialises.
        from drimbox.config.fields import SettingsError

        if not self.issuer_url.startswith(("https://", "http://")):
            raise SettingsError(
                f"{path}.Issuer must be an http(s) URL or one of {', '.join(PSC_ISSUERS)}, got {self.issuer!r}"
            )
        if self.token_auth_method not in TOKEN_AUTH_METHODS:
            raise SettingsError(
                f"{path}.TokenAuthMethod must be one of {', '.join(TOKEN_AUTH_METHODS)}, got {self.token_auth_method!r}"
            )
        if self.token_auth_method == "tls_client_auth" and not (self.client_cert_file and self.client_key_file):
            raise SettingsError(f"{path}.TokenAuthMethod tls_client_auth needs {path}.ClientCertFile "
                                f"and {path}.ClientKeyFile")
        if bool(self.client_cert_file) != bool(self.client_key_file):
            raise SettingsError(f"{path}.ClientCertFile and {path}.ClientKeyFile must be set together")
        if self.introspection_cache_seconds < 0:
            raise SettingsError(f"{path}.IntrospectionCacheSeconds must be >= 0")
        if "openid" not in self.scope.split():
            raise SettingsError(f"{path}.Scope must contain 'openid', got {self.scope!r}")
