"""``PeerAccess.AcceptedTokenClients``: a PSC access token must have been issued to a client the source accepts
(introspection's ``client_id``, else ``azp``); another client's token is a bad token (401)."""

from __future__ import annotations

import pytest

from peer_helpers import start_world

pytestmark = pytest.mark.integration

PEER_CLIENT = "drimbox-box-b"


@pytest.fixture(scope="module")
def clients_world(tmp_path_factory, pki):
    world = start_world(tmp_path_factory.mktemp("peer-clients"), pki, series=(("CT", 1),), jpegls=False,
                        peer_access={"AcceptedTokenClients": [PEER_CLIENT, "drimbox-box-c"]})
    yield world
    world.stop()


def test_a_token_issued_to_an_accepted_client_is_served(clients_world):
    w = clients_world
    response = w.session().get(w.wado + w.series_path(), headers=w.headers(token=w.token(client_id=PEER_CLIENT)),
                               timeout=60)
    assert response.status_code == 200, response.text


def test_a_token_issued_to_another_client_is_401(clients_world):
    w = clients_world
    for client in ("drimbox-sim", "drimbox-box-b-other", "DRIMBOX-BOX-B"):
        response = w.session().get(w.wado + w.series_path(), headers=w.headers(token=w.token(client_id=client)),
                                   timeout=60)
        assert response.status_code == 401, (client, response.text)
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert "does not accept" in response.json()["error"]


def test_the_status_names_the_accepted_clients(clients_world):
    access = clients_world.operator.get("/drimbox/status").json()["peer_access"]
    assert access["accepted_token_clients"] == ["drimbox-box-b", "drimbox-box-c"]
    assert access["token_issuer"] == clients_world.psc.issuer


def test_the_psc_simulator_introspection_names_the_client_the_issuer_and_the_audience(clients_world):
    w = clients_world
    answer = w.psc.provider.introspect(w.token(client_id=PEER_CLIENT))
    assert answer["active"] is True
    assert (answer["client_id"], answer["azp"], answer["aud"], answer["iss"]) == (
        PEER_CLIENT, PEER_CLIENT, PEER_CLIENT, w.psc.issuer)
