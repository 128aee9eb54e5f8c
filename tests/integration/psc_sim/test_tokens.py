"""Token validation, introspection and its cache, userinfo, end-session, client authentication."""

import json
import threading

import pytest
import requests

from drimbox.psc import PscError
from drimbox.sim.psc import PscSimulator
from drimbox.sim.psc.keys import SigningKey

from .conftest import GENERAL_PRACTITIONER, NURSE, RADIOLOGIST, REDIRECT_URI, Clock, CountingSession

pytestmark = pytest.mark.integration
INTROSPECT = "/token/introspect"


def forged(sim: PscSimulator, token: str, *, same_kid: bool) -> str:
    """The same claims signed by a key that is not the simulator's."""
    claims = sim.provider.key.verify(token)
    impostor = SigningKey(kid=sim.provider.key.kid if same_kid else None)
    return impostor.sign(claims)


def test_expired_id_token_and_access_token(sim, make_client):
    client = make_client()
    tokens = sim.mint_tokens(RADIOLOGIST, client_id="drimbox-test", lifetime=-120, nonce="n")
    with pytest.raises(PscError) as error:
        client.validate_id_token(tokens["id_token"], "n")
    assert error.value.reason == "expired"
    assert client.introspect(tokens["access_token"]).active is False
    with pytest.raises(PscError) as error:
        client.userinfo(tokens["access_token"])
    assert error.value.reason == "http_401"


def test_clock_skew_is_tolerated(sim, make_client):
    tokens = sim.mint_tokens(RADIOLOGIST, client_id="drimbox-test", lifetime=-10, nonce="n")
    assert make_client(clock_skew_seconds=60).validate_id_token(tokens["id_token"], "n")["nonce"] == "n"


@pytest.mark.parametrize("same_kid", [True, False])
def test_token_signed_by_another_key_is_refused(sim, make_client, same_kid):
    client = make_client()
    tokens = sim.mint_tokens(RADIOLOGIST, client_id="drimbox-test", nonce="n")
    with pytest.raises(PscError) as error:
        client.validate_id_token(forged(sim, tokens["id_token"], same_kid=same_kid), "n")
    assert error.value.reason == "bad_signature"
    assert client.introspect(forged(sim, tokens["access_token"], same_kid=same_kid)).active is False


def test_wrong_audience_and_acr_are_refused(sim, make_client):
    tokens = sim.mint_tokens(RADIOLOGIST, client_id="another-box", nonce="n")
    with pytest.raises(PscError) as error:
        make_client().validate_id_token(tokens["id_token"], "n")
    assert error.value.reason == "bad_claims"
    own = sim.mint_tokens(RADIOLOGIST, client_id="drimbox-test", nonce="n")
    with pytest.raises(PscError) as error:
        make_client(acr_values="eidas2").validate_id_token(own["id_token"], "n")
    assert error.value.reason == "bad_acr"


def test_another_issuer_and_a_missing_nonce_are_refused(sim, make_client):
    client = make_client()
    claims = sim.provider.key.verify(sim.mint_tokens(RADIOLOGIST, client_id="drimbox-test", nonce="n")["id_token"])
    with pytest.raises(PscError) as error:
        client.validate_id_token(sim.provider.key.sign({**claims, "iss": claims["iss"] + "-other"}), "n")
    assert error.value.reason == "bad_claims"
    without_nonce = {k: v for k, v in claims.items() if k != "nonce"}
    with pytest.raises(PscError) as error:
        client.validate_id_token(sim.provider.key.sign(without_nonce), "n")
    assert error.value.reason == "nonce_mismatch"
    unsigned = ".".join(sim.provider.key.sign(claims).split(".")[:2]) + "."
    with pytest.raises(PscError) as error:
        client.validate_id_token(unsigned, "n")
    assert error.value.reason in ("bad_signature", "malformed_token")


def test_at_hash_binds_id_token_to_access_token(sim, make_client):
    client = make_client()
    first = sim.mint_tokens(RADIOLOGIST, client_id="drimbox-test", nonce="n")
    second = sim.mint_tokens(RADIOLOGIST, client_id="drimbox-test", nonce="n")
    assert client.validate_id_token(first["id_token"], "n", access_token=first["access_token"])
    with pytest.raises(PscError) as error:
        client.validate_id_token(first["id_token"], "n", access_token=second["access_token"])
    assert error.value.reason == "bad_claims"


def test_malformed_token(make_client):
    with pytest.raises(PscError) as error:
        make_client().validate_id_token("not-a-jwt", "n")
    assert error.value.reason == "malformed_token"


def test_introspection_cache_ttl(sim, make_client):
    clock, session = Clock(), CountingSession()
    client = make_client(clock=clock, session=session, introspection_cache_seconds=30)
    token = sim.mint_access_token(RADIOLOGIST, client_id="drimbox-test")
    assert client.introspect(token).active
    sim.revoke(token)
    clock.offset = 29
    assert client.introspect(token).active  # still the cached answer
    assert session.count(INTROSPECT) == 1
    clock.offset = 31
    assert client.introspect(token).active is False  # asked again: revoked
    assert session.count(INTROSPECT) == 2


def test_inactive_answers_are_cached_but_not_beyond_token_expiry(sim, make_client):
    clock, session = Clock(), CountingSession()
    client = make_client(clock=clock, session=session, introspection_cache_seconds=30)
    revoked = sim.mint_access_token(RADIOLOGIST, client_id="drimbox-test", lifetime=10)
    sim.revoke(revoked)
    assert client.introspect(revoked).active is False
    assert client.introspect(revoked).active is False
    assert session.count(INTROSPECT) == 1
    clock.offset = 11  # past the token's exp: the cache entry is gone, the exp alone answers
    assert client.introspect(revoked).active is False
    assert session.count(INTROSPECT) == 1
    assert len(client._introspections) == 0


def test_active_answer_is_not_cached_beyond_token_expiry(sim, make_client):
    clock, session = Clock(), CountingSession()
    client = make_client(clock=clock, session=session, introspection_cache_seconds=30)
    token = sim.mint_access_token(RADIOLOGIST, client_id="drimbox-test", lifetime=5)
    assert client.introspect(token).active
    clock.offset = 6
    assert client.introspect(token).active is False
    assert session.count(INTROSPECT) == 1


def test_expired_token_is_refused_without_asking_psc(sim, make_client):
    session = CountingSession()
    client = make_client(session=session)
    expired = sim.mint_access_token(RADIOLOGIST, client_id="drimbox-test", lifetime=-1)
    for _ in range(3):
        assert client.introspect(expired).active is False
    assert session.count(INTROSPECT) == 0


def test_concurrent_introspection(sim, make_client):
    client = make_client()
    token = sim.mint_access_token(RADIOLOGIST, client_id="drimbox-test")
    results: list[bool] = []

    def check() -> None:
        for _ in range(50):
            results.append(client.introspect(token).active)

    threads = [threading.Thread(target=check) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 400


def test_userinfo_with_several_activities(sim, make_client):
    client = make_client()
    professional = client.userinfo(sim.mint_access_token(GENERAL_PRACTITIONER, client_id="drimbox-test"))
    assert (professional.id_nat, professional.given_name, professional.family_name) == (
        GENERAL_PRACTITIONER, "Paul", "DURAND")
    choices = professional.activity_choices()
    assert [(c.activity.sector_code, c.activity.structure_id) for c in choices] == [
        ("SA07", "410002000023001"), ("SA01", "1690000001")]
    assert {c.exercice.specialty_code for c in choices} == {"SM54"}
    assert professional.raw["SubjectRole"] == ["10^1.2.250.1.213.1.1.5.5"]
    nurse = client.userinfo(sim.mint_access_token(NURSE, client_id="drimbox-test"))
    assert nurse.exercices[0].profession_code == "60" and nurse.exercices[0].specialty_code == ""


def test_custom_professionals_with_two_exercices(make_client):
    custom = [{"idNat": "810009999991", "given_name": "Ana", "family_name": "LOPEZ", "exercices": [
        {"codeProfession": "10", "codeSavoirFaire": "SM74", "activities": [
            {"raisonSocialeSite": "IMAGERIE NORD", "codeSecteurDactivite": "SA08",
             "ancienIdentifiantDeLaStructure": "312345678900012"}]},
        {"codeProfession": "21", "activities": [
            {"raisonSocialeSite": "PHARMACIE SUD", "codeSecteurDactivite": "SA33",
             "ancienIdentifiantDeLaStructure": "3999"}]}]}]
    with PscSimulator(professionals=custom) as custom_sim:
        professional = make_client(custom_sim).userinfo(
            custom_sim.mint_access_token("810009999991", client_id="drimbox-test"))
    assert [c.key for c in professional.activity_choices()] == ["0.0", "1.0"]
    assert professional.activity_choice("1.0").activity.structure_name == "PHARMACIE SUD"
    assert professional.exercices[0].family_name == "LOPEZ"  # nomDexercice filled from the person


def test_end_session_revokes_the_session_tokens(sim, make_client):
    client = make_client(introspection_cache_seconds=0)
    tokens = sim.mint_tokens(RADIOLOGIST, client_id="drimbox-test", nonce="n")
    other = sim.mint_tokens(RADIOLOGIST, client_id="drimbox-test", nonce="n")  # another session
    url = client.end_session_url(tokens["id_token"], "http://127.0.0.1:1/bye", state="s1")
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302 and answer.headers["Location"] == "http://127.0.0.1:1/bye?state=s1"
    assert client.introspect(tokens["access_token"]).active is False
    with pytest.raises(PscError):
        client.userinfo(tokens["access_token"])
    with pytest.raises(PscError, match="invalid_grant"):
        client.refresh(tokens["refresh_token"])
    assert client.introspect(other["access_token"]).active


def test_end_session_refuses_foreign_post_logout_uri(sim, make_client):
    client = make_client()
    tokens = sim.mint_tokens(RADIOLOGIST, client_id="drimbox-test")
    answer = requests.get(client.end_session_url(tokens["id_token"], "https://evil.example/"),
                          allow_redirects=False, timeout=5)
    assert answer.status_code == 400


def test_registered_clients_need_their_secret(tmp_path):
    clients = {"box-a": {"secret": "s3cret", "redirect_uris": [REDIRECT_URI]}}
    with PscSimulator(clients=clients) as strict:
        from drimbox.psc import PscClient
        from drimbox.psc.settings import PscSettings

        secret_file = tmp_path / "secret"
        secret_file.write_text("s3cret\n")
        token = strict.mint_access_token(RADIOLOGIST, client_id="box-a")
        for method in ("client_secret_basic", "client_secret_post"):
            good = PscClient(PscSettings(issuer=strict.issuer, client_id="box-a", client_secret_file=str(secret_file),
                                         token_auth_method=method), redirect_uri=REDIRECT_URI)
            assert good.introspect(token).active
        bad = PscClient(PscSettings(issuer=strict.issuer, client_id="box-a"), redirect_uri=REDIRECT_URI,
                        client_secret="wrong")
        with pytest.raises(PscError) as error:
            bad.introspect(token)
        assert error.value.reason == "http_401"
        unknown_redirect = requests.get(strict.authorization_endpoint, params={
            "response_type": "code", "client_id": "box-a", "redirect_uri": "http://127.0.0.1:1/other",
            "scope": "openid"}, allow_redirects=False, timeout=5)
        assert unknown_redirect.status_code == 400
        anonymous = requests.post(strict.issuer + "/protocol/openid-connect" + INTROSPECT, data={"token": token},
                                  timeout=5)
        assert anonymous.status_code == 401


def test_missing_secret_file_is_a_clear_error(sim):
    from drimbox.psc import PscClient
    from drimbox.psc.settings import PscSettings

    client = PscClient(PscSettings(issuer=sim.issuer, client_secret_file="/nonexistent/psc-secret"),
                       redirect_uri=REDIRECT_URI)
    with pytest.raises(PscError, match="cannot read the PSC client secret file /nonexistent/psc-secret"):
        client.introspect("x.y.z")


def test_admin_mint_endpoint_and_professional_list(sim, make_client):
    answer = requests.post(sim.issuer + "/sim/tokens", json={"idNat": NURSE, "client_id": "drimbox-test"},
                           timeout=5)
    assert answer.status_code == 200
    assert make_client().introspect(answer.json()["access_token"]).subject_name_id == NURSE
    unknown = requests.post(sim.issuer + "/sim/tokens", data={"idNat": "800000000000"}, timeout=5)
    assert unknown.status_code == 404
    listed = requests.get(sim.issuer + "/sim/professionals", timeout=5).json()
    assert [p["idNat"] for p in listed][:2] == [RADIOLOGIST, GENERAL_PRACTITIONER]


def test_discovery_documents(sim, make_client):
    wallet = requests.get(sim.issuer + "/.well-known/wallet-openid-configuration", timeout=5).json()
    standard = requests.get(sim.issuer + "/.well-known/openid-configuration", timeout=5).json()
    assert wallet == standard and wallet["issuer"] == sim.issuer
    assert wallet["introspection_endpoint"].endswith("/protocol/openid-connect/token/introspect")
    session = CountingSession()
    client = make_client(session=session)
    assert client.discovery() == wallet
    client.discovery()
    assert session.count("/.well-known/wallet-openid-configuration") == 1  # cached


def test_discovery_issuer_mismatch_is_refused(sim, make_client):
    client = make_client(issuer=sim.issuer.replace("127.0.0.1", "localhost"))
    with pytest.raises(PscError) as error:
        client.discovery()
    assert error.value.reason == "bad_discovery" and "DRIMbox.Psc.Issuer" in str(error.value)


def test_unreachable_psc(make_client):
    client = make_client(issuer="http://127.0.0.1:9/auth/realms/esante-wallet", http_timeout_seconds=2)
    with pytest.raises(PscError) as error:
        client.authorization_url("s", "n")
    assert error.value.reason == "unreachable"


def test_userinfo_json_shape(sim):
    token = sim.mint_access_token(RADIOLOGIST, client_id="drimbox-test")
    answer = requests.get(sim.issuer + "/protocol/openid-connect/userinfo",
                          headers={"Authorization": f"Bearer {token}"}, timeout=5)
    document = answer.json()
    assert document["SubjectNameID"] == RADIOLOGIST
    activity = document["SubjectRefPro"]["exercices"][0]["activities"][0]
    assert activity["raisonSocialeSite"] and activity["codeSecteurDactivite"] == "SA08"
    assert json.loads(json.dumps(document)) == document


def test_signed_userinfo_is_verified(make_client):
    with PscSimulator(signed_userinfo=True) as signing_sim:
        client = make_client(signing_sim)
        token = signing_sim.mint_access_token(GENERAL_PRACTITIONER, client_id="drimbox-test")
        answer = requests.get(signing_sim.issuer + "/protocol/openid-connect/userinfo",
                              headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert answer.headers["Content-Type"] == "application/jwt"
        professional = client.userinfo(token)
        assert professional.id_nat == GENERAL_PRACTITIONER and len(professional.activity_choices()) == 2
