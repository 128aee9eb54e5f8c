"""The operator's actions on a real publishing box (nginx, Orthanc, the DMP simulator): cross-site requests refused,
withdraw and republish, cancel, replay, every outcome audited with the operator's name; the Prometheus figures."""

from __future__ import annotations

import pytest

from drimbox.samples.reports import make_cda, make_oru
from support.dmp import APPROVED, DELETED, kos_summaries, start_dmp_simulator
from drimbox.testing import BoxClient, demo_order, demo_study, start_box, store_scu, wait_for
from operator_helpers import browser_login, same_origin

pytestmark = pytest.mark.integration

HL7 = {"Content-Type": "application/hl7-v2"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory, pki):
    simulator = start_dmp_simulator(tmp_path_factory.mktemp("dmp-sim-actions"), pki)
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def box(tmp_path_factory, pki, sim):
    instance = start_box(tmp_path_factory.mktemp("actions-box"), pki=pki, dmp_url=sim.url,
                         settings={"Dmp": {"RetryInitialSeconds": 600, "RetryMaxSeconds": 600, "TimeoutSeconds": 3}})
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def operator(box) -> BoxClient:
    return BoxClient(box)


@pytest.fixture(autouse=True)
def no_faults(sim):
    sim.faults.configure("none")
    yield
    sim.faults.configure("none")


def kos_documents(sim, study_uid: str) -> list[dict]:
    return kos_summaries(sim, study_uid)


def send_study(box, operator, tmp_path, name: str) -> str:
    study = demo_study(tmp_path / name, series=(("CT", 1),))
    store_scu(box, tmp_path / name)
    assert operator.post("/drimbox/reports", data=make_oru(make_cda(studies=[demo_order(study.study_uid)])),
                         headers=HL7).json()["ack"] == "AA"
    return study.study_uid


def action(session, box, study_uid: str, verb: str, body: dict | None = None, headers: dict | None = None):
    return session.post(f"{box.admin_url}/drimbox/ui/studies/{study_uid}/actions/{verb}", json=body or {},
                        headers=headers if headers is not None else same_origin(box), timeout=30)


def audited(operator, study_uid: str, verb: str) -> list[dict]:
    return [e for e in operator.get(f"/drimbox/audit?study={study_uid}").json() if e["action"] == f"operator-{verb}"]


def test_an_action_from_another_origin_is_refused_and_changes_nothing(box, operator, sim, tmp_path):
    sim.faults.configure("http500")
    study_uid = send_study(box, operator, tmp_path, "cross")
    job = wait_for(lambda: next((j for j in operator.get(f"/drimbox/publications?study={study_uid}").json()
                                 if j["last_error"]), None), timeout=60, what="a failed attempt")
    browser, _ = browser_login(box)
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
    refused = action(browser, box, study_uid, "cancel", {"publication": job["id"]}, headers=evil)
    assert refused.status_code == 403
    no_origin = action(browser, box, study_uid, "cancel", {"publication": job["id"]}, headers={})
    assert no_origin.status_code == 403  # the session cookie without an Origin
    form = browser.post(f"{box.admin_url}/drimbox/ui/studies/{study_uid}/actions/cancel",
                        data="publication=1", headers={**same_origin(box), "Content-Type": "text/plain"}, timeout=30)
    assert form.status_code == 415  # only JSON, which a cross-site form cannot send
    assert operator.get(f"/drimbox/publications/{job['id']}").json()["state"] == "queued"
    # the 403s were refused by the admin decision before the route; the 415 reached it and was audited
    assert [e["outcome_status"] for e in audited(operator, study_uid, "cancel")] == [415]
    log = operator.get("/drimbox/audit?entry=operator&q=evil.example").json()
    assert any(e["action"] == "operator-request-refused" and e["outcome_status"] == 403 for e in log)

    cancelled = action(browser, box, study_uid, "cancel", {"publication": job["id"]})
    assert cancelled.status_code == 200, cancelled.text
    assert operator.get(f"/drimbox/publications/{job['id']}").json()["state"] == "cancelled"
    entries = audited(operator, study_uid, "cancel")
    assert [(e["outcome_status"], e["operator"]) for e in entries] == [(200, "operator"), (415, "operator")]


def test_withdraw_then_republish(box, operator, sim, tmp_path):
    study_uid = send_study(box, operator, tmp_path, "withdraw")
    first = wait_for(lambda: next((d for d in kos_documents(sim, study_uid) if d["status"] == APPROVED), None),
                     timeout=60, what="the KOS Approved")
    operator.wait_study(study_uid, lambda s: s["kos"] and s["kos"]["dmp_status"] == "approved", what="Approved")
    session, _ = browser_login(box)
    assert action(session, box, study_uid, "republish").status_code == 409  # already Approved
    withdrawn = action(session, box, study_uid, "withdraw")
    assert withdrawn.status_code == 202, withdrawn.text
    wait_for(lambda: [d["status"] for d in kos_documents(sim, study_uid)] == [DELETED], timeout=30,
             what="the entry deleted in the DMP")
    status = operator.study(study_uid)
    assert status["state"] == "withdrawn" and status["kos"] is None
    assert action(session, box, study_uid, "withdraw").status_code == 409  # nothing Approved any more

    assert action(session, box, study_uid, "republish").status_code == 202
    second = wait_for(lambda: next((d for d in kos_documents(sim, study_uid) if d["status"] == APPROVED), None),
                      timeout=60, what="a new KOS Approved")
    assert second["uniqueId"] != first["uniqueId"]
    assert [e["operator"] for e in audited(operator, study_uid, "withdraw")] == ["operator", "operator"]

    panel = operator.get(f"/drimbox/ui/panel/{study_uid}?lang=fr").text
    assert "Publié (Approved)" in panel and second["entryUUID"] in panel and "manifest_ready" not in panel


def test_replay_of_a_refused_message_is_audited(box, operator):
    refused = operator.post("/drimbox/reports", data=b"MSH|^~\\&|garbage", headers=HL7)
    assert refused.status_code == 400
    message = refused.json()["message_id"]
    session, _ = browser_login(box)
    replay = session.post(f"{box.admin_url}/drimbox/ui/messages/{message}/replay", json={},
                          headers=same_origin(box), timeout=30)
    assert replay.status_code == 422 and "ACK A" in replay.json()["message"]  # the cause is not fixed: refused again
    accepted = operator.post("/drimbox/reports", data=make_oru(make_cda(studies=[demo_order("1.2.840.99.1")])),
                             headers=HL7).json()
    assert accepted["ack"] == "AA"
    again = session.post(f"{box.admin_url}/drimbox/ui/messages/{accepted['message_id']}/replay", json={},
                         headers=same_origin(box), timeout=30)
    assert again.status_code == 409  # an accepted message is never replayed
    entries = [e for e in operator.get("/drimbox/audit?entry=operator&q=replay").json()
               if e["action"] == "operator-replay-message"]
    assert [(e["outcome_status"], e["operator"]) for e in entries[:2]] == [(409, "operator"), (422, "operator")]


def test_prometheus_metrics_in_orthanc(box, operator, sim, tmp_path):
    study_uid = send_study(box, operator, tmp_path, "metrics")
    wait_for(lambda: any(d["status"] == APPROVED for d in kos_documents(sim, study_uid)), timeout=60,
             what="the KOS Approved")

    def figures() -> dict[str, float]:
        text = operator.get("/tools/metrics-prometheus").text
        return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                if line.startswith("drimbox_")}

    seen = wait_for(lambda: (lambda f: f if f.get("drimbox_publications_done", 0) >= 1 else None)(figures()),
                    timeout=30, what="the figures pushed to Orthanc")
    assert seen["drimbox_dmp_calls_total"] >= 1 and seen["drimbox_dmp_last_latency_seconds"] > 0
    assert "drimbox_publication_queue_depth" in seen and "drimbox_peer_bytes_served_total" in seen
    assert seen["drimbox_whitelist_in_force"] == 0  # this box has no whitelist
    # nginx writes the peers' answers where the metrics read them (a line as nginx would write it)
    with (box.log_dir / "peer-access.log").open("a") as log:
        log.write("1765000000.123 200 123456\n")
    wait_for(lambda: figures().get("drimbox_peer_bytes_served_total", 0) >= 123456, timeout=30,
             what="the peer log read into the figures")


def test_dashboard_reachability_and_daily_indicators(box, operator, sim, tmp_path):
    study_uid = send_study(box, operator, tmp_path, "indicators")
    wait_for(lambda: operator.study(study_uid).get("kos", {}) and operator.study(study_uid)["kos"]["dmp_status"]
             == "approved", timeout=60, what="the manifest Approved")
    csv_text = operator.get("/drimbox/ui/indicators.csv").text
    rows = {tuple(line.split(";")[1:3]): int(line.split(";")[3]) for line in csv_text.splitlines()[1:]}
    assert rows[("publications_dmp", "succes")] >= 1
    assert operator.get("/drimbox/ui/indicators.csv", params={"day": "yesterday"}).status_code == 400

    page = operator.get("/drimbox/ui", params={"lang": "en"}).text
    card = page[page.index('id="reachability"'):]
    card = card[:card.index("</table>")]
    assert "DMP</td><td class=\"good\">reachable" in card  # the simulator answers
    assert "Pro Santé Connect</td>" in card


def test_operator_pages_and_actions_exist_only_on_the_admin_entry(box, operator, pki, tmp_path):
    study_uid = send_study(box, operator, tmp_path, "entries")
    operator.wait_study(study_uid, lambda s: s["kos"] and s["kos"]["dmp_status"] == "approved", what="Approved")
    job = wait_for(lambda: next((j for j in operator.get(f"/drimbox/publications?study={study_uid}").json()
                                 if j["state"] == "done"), None), what="the publication done")
    for base in (box.vi_url, box.db_url):
        session = operator.session.__class__()
        session.verify = box.ca_bundle
        session.trust_env = False
        session.auth = box.operator_auth  # even with the operator's password
        if base == box.db_url:  # with an organisation certificate the edge verifies
            session.cert = (pki["boxes"]["box-b"]["auth"]["fullchain"], pki["boxes"]["box-b"]["auth"]["key"])
        for method, path in (("GET", "/drimbox/ui"), ("GET", f"/drimbox/ui/panel/{study_uid}"),
                             ("GET", "/drimbox/ui/indicators.csv"),
                             ("POST", f"/drimbox/ui/studies/{study_uid}/actions/cancel"),
                             ("POST", f"/drimbox/ui/messages/{1}/replay")):
            answer = session.request(method, base + path, json={"publication": job["id"]},
                                     headers={"Origin": base}, timeout=30)
            assert answer.status_code in (401, 403, 404, 405), (base, method, path, answer.status_code)
            assert study_uid not in answer.text
    assert operator.get(f"/drimbox/publications/{job['id']}").json()["state"] == job["state"]
