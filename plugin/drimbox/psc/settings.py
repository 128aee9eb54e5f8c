"""Settings of the Pro Santé Connect OpenID Connect client. Owned by the psc package."""

from __future__ import annotations

from dataclasses import dataclass

from drimbox.util.setting import setting

PSC_ISSUERS = {
    "production": "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet",
    "sandbox": "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet",
}

TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "tls_client_auth")


@dataclass(frozen=True)
class PscSettings:
    issuer: str = setting("https://localhost:8446/auth/realms/esante-wallet",
                          'issuer URL, or "production" or "sandbox" (the national ones); default: the simulator')
    client_id: str = setting("drimbox-demo", "the box's PSC client id")
    client_secret_file: str = setting("", "file holding the client secret (client_secret_basic / _post)")
    ca_bundle: str = setting("", "CA bundle verifying PSC's server certificates; empty: the system's")
    scope: str = setting("openid scope_all", "scopes asked at login (must contain openid)")
    acr_values: str = setting("eidas1", "acr_values asked at login, checked in the ID token")
    introspection_cache_seconds: float = setting(30.0, "how long a token's introspection answer is reused (never "
                                                       "beyond its expiry)")
    token_auth_method: str = setting("client_secret_basic", "how the box authenticates to the token and "
                                                            "introspection endpoints: "
                                                            + " | ".join(TOKEN_AUTH_METHODS)
                                                            + "; tls_client_auth is RFC 8705 mutual TLS (no secret)")
    client_cert_file: str = setting("", "client certificate (PEM) for tls_client_auth")
    client_key_file: str = setting("", "its key (PEM)")
    http_timeout_seconds: float = setting(10.0, "bound of every call to PSC")
    discovery_cache_seconds: float = setting(3600.0, "how long the discovery document and keys are reused")
    clock_skew_seconds: float = setting(60.0, "tolerated clock difference with PSC when checking exp/iat of ID "
                                              "tokens")

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
