import pytest

from drimbox.config import SettingsError, load_settings
from drimbox.psc import PscClient
from drimbox.psc.settings import PscSettings


@pytest.mark.parametrize("preset,discovery", [
    ("production", "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet/.well-known/wallet-openid-configuration"),
    ("sandbox",
     "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet/.well-known/wallet-openid-configuration"),
    ("https://psc.example/auth/realms/esante-wallet/",
     "https://psc.example/auth/realms/esante-wallet/.well-known/wallet-openid-configuration"),
])
def test_discovery_url_of_presets(preset, discovery):
    client = PscClient(PscSettings(issuer=preset), redirect_uri="https://vi.example/psc/callback")
    assert client.discovery_url == discovery


def test_psc_section_is_read_and_validated():
    settings = load_settings({"DRIMbox": {"Psc": {"Issuer": "sandbox", "ClientId": "box",
                                                   "TokenAuthMethod": "client_secret_post"}}})
    assert settings.psc.issuer_url.startswith("https://auth.bas.psc.esante.gouv.fr/")
    assert settings.psc.token_auth_method == "client_secret_post"


@pytest.mark.parametrize("section,message", [
    ({"TokenAuthMethod": "private_key_jwt"}, "TokenAuthMethod must be one of"),
    ({"TokenAuthMethod": "tls_client_auth"}, "needs DRIMbox.Psc.ClientCertFile"),
    ({"ClientCertFile": "/x.pem"}, "must be set together"),
    ({"Issuer": "staging"}, "Issuer must be an http(s) URL"),
    ({"Scope": "scope_all"}, "must contain 'openid'"),
])
def test_bad_psc_settings_name_the_key(section, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings({"DRIMbox": {"Psc": section}})
