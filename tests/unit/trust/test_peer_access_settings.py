"""``DRIMbox.PeerAccess``: the client certificate is required unless switched off explicitly."""

from __future__ import annotations

import pytest

from drimbox.config import SettingsError, load_settings


def peer_access(section: dict):
    return load_settings({"DRIMbox": {"DataDir": "/tmp/x", "PeerAccess": section}}).peer_access


def test_defaults_require_a_client_certificate_and_accept_any_psc_client():
    settings = peer_access({})
    assert settings.client_certificate == "required" and settings.client_certificate_required
    assert settings.accepted_token_clients == ()


def test_off_and_accepted_clients():
    settings = peer_access({"ClientCertificate": "off", "AcceptedTokenClients": ["drimbox-b", "drimbox-c"]})
    assert not settings.client_certificate_required
    assert settings.accepted_token_clients == ("drimbox-b", "drimbox-c")


@pytest.mark.parametrize("section, words", [
    ({"ClientCertificate": "optional"}, "DRIMbox.PeerAccess.ClientCertificate must be one of required, off"),
    ({"ClientCertificate": False}, "DRIMbox.PeerAccess.ClientCertificate must be a string"),
    ({"AcceptedTokenClients": ["ok", " "]}, "DRIMbox.PeerAccess.AcceptedTokenClients"),
    ({"AcceptedTokenClients": "drimbox-b"}, "DRIMbox.PeerAccess.AcceptedTokenClients must be a list"),
    ({"RequireClientCertificate": False}, "unknown key(s) RequireClientCertificate"),
])
def test_bad_values_name_the_key(section, words):
    with pytest.raises(SettingsError) as error:
        peer_access(section)
    assert words in str(error.value)


def test_generated_nginx_verifies_peers_against_the_configured_cas(tmp_path):
    from drimbox.launcher.box_instance import BoxInstance
    from drimbox.launcher.ports import BoxPorts

    ca, crl = tmp_path / "igc-sante-cas.pem", tmp_path / "igc-sante-crls.pem"
    box = BoxInstance(tmp_path / "box", BoxPorts(), settings={
        "PeerAccess": {"ClientCaFile": str(ca), "ClientCrlFile": str(crl)}})
    db_server = box.render_nginx().split("# --- db entry")[1].split("# --- vi entry")[0]
    for line in (f"ssl_client_certificate {ca};", "ssl_verify_client optional;", "ssl_verify_depth 4;",
                 f"ssl_crl {crl};", "error_page 495 = @drimbox_peer_bad_certificate;"):
        assert line in db_server
    default = BoxInstance(tmp_path / "default", BoxPorts()).render_nginx()
    assert f"ssl_client_certificate {ca};" not in default and "ssl_verify_client optional;" in default
