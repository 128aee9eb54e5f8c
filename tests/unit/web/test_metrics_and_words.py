"""The figures pushed to Prometheus and the operator's plain words, on a real store."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from drimbox.audit.event import AuditEvent
from drimbox.metrics import Metrics, MetricsPusher, PeerAccessLog, TimedDmp
from drimbox.store import Store
from drimbox.web.plain_words import explain, label, language


@pytest.fixture
def store(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", clock=lambda: 1000.0)
    yield store
    store.db.close()


def audit(store: Store, entry: str, status: int, **fields) -> None:
    store.add_audit(AuditEvent(when=datetime.now(timezone.utc), entry_point=entry, action="x",
                               outcome_status=status, **fields).to_row())


def test_publications_queue_and_oldest_waiting(store):
    first = store.enqueue_publication(study_uid="1.2", kos_uid="1.2.9", action="register")
    store.enqueue_publication(study_uid="1.3", kos_uid="1.3.9", action="register")
    store.finish_publication(first, "failed", error="refused by the DMP: x")
    store.clock = lambda: 1030.0
    store.enqueue_publication(study_uid="1.4", kos_uid="1.4.9", action="register")
    values = Metrics(store, dmp=None, peer_log=None, whitelist_status=lambda: None, clock=lambda: 1100.0).snapshot()
    assert values["drimbox_publications_failed"] == 1
    assert values["drimbox_publications_queued"] == 2 == values["drimbox_publication_queue_depth"]
    assert values["drimbox_publication_oldest_waiting_seconds"] == 100.0  # the one queued at 1000
    assert values["drimbox_whitelist_in_force"] == 0 and values["drimbox_whitelist_age_seconds"] == -1


def test_audit_counters_read_incrementally(store):
    metrics = Metrics(store, dmp=None, peer_log=None, whitelist_status=lambda: None)
    audit(store, "wado-rs", 200)
    audit(store, "wado-rs", 401)
    audit(store, "operator", 202, operator="alice")
    audit(store, "operator", 403)  # a refused request is not an operator's action
    first = metrics.snapshot()
    assert (first["drimbox_audit_peer_allowed_total"], first["drimbox_audit_peer_refused_total"]) == (1, 1)
    assert first["drimbox_audit_operator_actions_total"] == 1
    audit(store, "wado-rs", 200)
    assert metrics.snapshot()["drimbox_audit_peer_allowed_total"] == 2  # counted once each


def test_peer_log_counts_outcomes_and_bytes_and_survives_rotation(tmp_path):
    path = tmp_path / "peer-access.log"
    path.write_text("1.0 200 1000\n2.0 401 50\n3.0 404 40\n4.0 200 5")  # the last line is still being written
    log = PeerAccessLog(path)
    log.read()
    assert log.requests == {"ok": 1, "bad_token": 1, "not_found": 1} and log.bytes_served == 1090
    with path.open("a") as handle:
        handle.write("00\n")
    log.read()
    assert log.requests["ok"] == 2 and log.bytes_served == 1590
    path.write_text("5.0 403 10\n")  # rotated: a new, shorter file
    log.read()
    assert log.requests["refused"] == 1 and log.bytes_served == 1600


def test_timed_dmp_counts_calls_and_failures():
    class Client:
        def publish(self, *args, **kwargs):
            return "entry"

        def delete(self, *args, **kwargs):
            raise ConnectionError("down")

    timed = TimedDmp(Client())
    assert timed.publish(b"", None, {}) == "entry"
    with pytest.raises(ConnectionError):
        timed.delete("x", None)
    figures = timed.figures()
    assert figures["drimbox_dmp_calls_total"] == 2 and figures["drimbox_dmp_call_failures_total"] == 1


def test_pusher_hands_every_value_as_float(store):
    pushed: dict[str, float] = {}
    metrics = Metrics(store, dmp=None, peer_log=None, whitelist_status=lambda: {
        "in_force": True, "generated_at": "1970-01-01T00:10:00+00:00", "in_force_since": None}, clock=lambda: 1200.0)
    MetricsPusher(metrics, pushed.__setitem__).push_once()
    assert pushed["drimbox_whitelist_age_seconds"] == 600.0 and pushed["drimbox_whitelist_in_force"] == 1.0
    assert all(isinstance(v, float) for v in pushed.values())


def test_plain_words():
    assert label("study", "manifest_ready", "fr") == "Manifeste prêt"
    assert label("publication", "queued", "en") == "Waiting to be sent"
    assert "en panne" in explain("DMP unavailable: HTTP 500 from https://dmp/repository", "fr")
    assert explain("something new", "en") == "something new"  # unknown errors are shown as they are
    assert language({"lang": "en"}, {"accept-language": "fr"}) == "en"
    assert language({}, {"accept-language": "en-GB,en;q=0.8"}) == "en"
    assert language({"lang": "<x>"}, {}) == "fr"


def test_daily_indicators_count_by_outcome_within_the_utc_day(tmp_path):
    import datetime as dt

    from drimbox.indicators import DailyExport, daily_indicators, day_bounds, to_csv

    day = dt.date(2026, 12, 5)
    start, end = day_bounds(day)
    clock = {"now": start + 3600}
    store = Store.open(f"sqlite:///{tmp_path / 'state.db'}", clock=lambda: clock["now"])
    try:
        done = store.enqueue_publication(study_uid="1.2", kos_uid="1.2.9", action="register")
        store.finish_publication(done, "done")
        refused = store.enqueue_publication(study_uid="1.3", kos_uid="1.3.9", action="register")
        store.finish_publication(refused, "failed", error="refused by the DMP: x")
        withdrawn = store.enqueue_publication(study_uid="1.2", kos_uid="1.2.9", action="delete")
        clock["now"] = end + 10  # the next day: not counted for this one
        store.finish_publication(withdrawn, "done")
        for status, when in ((200, start + 5), (400, start + 6), (200, end + 1)):
            store.add_audit(AuditEvent(when=datetime.fromtimestamp(when, timezone.utc), entry_point="consumer",
                                       action="appel-contextuel", outcome_status=status).to_row())
        rows = {(name, outcome): n for _, name, outcome, n in daily_indicators(store, day)}
        assert rows[("publications_dmp", "succes")] == 1 and rows[("publications_dmp", "erreur")] == 1
        assert rows[("retraits_dmp", "succes")] == 0
        assert rows[("appels_contextuels", "succes")] == 1 and rows[("appels_contextuels", "erreur")] == 1
        text = to_csv(daily_indicators(store, day))
        assert text.splitlines()[0] == "date;indicateur;statut;nombre"
        assert "2026-12-05;appels_contextuels;succes;1" in text.splitlines()

        clock["now"] = end + 100
        written = DailyExport(store, tmp_path / "indicators", clock=lambda: clock["now"]).write_yesterday()
        assert written.name == "indicateurs-2026-12-05.csv" and written.read_text() == text
    finally:
        store.db.close()


def test_reachability_probe_of_a_live_and_a_dead_service():
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from drimbox.reachability import Probe, Reachability

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ok" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    dead = HTTPServer(("127.0.0.1", 0), Handler)
    dead_url = f"http://127.0.0.1:{dead.server_address[1]}/ok"
    dead.server_close()
    try:
        checks = Reachability(lambda: [Probe("up", base + "/ok"), Probe("no page", base + "/x"),
                                       Probe("any answer", base + "/x", any_answer=True), Probe("down", dead_url)],
                              timeout=2)
        checks.check_all()
        found = {r.name: r for r in checks.results()}
        assert found["up"].reachable and found["up"].status == 200
        assert not found["no page"].reachable and found["no page"].detail == "HTTP 404"
        assert found["any answer"].reachable
        assert not found["down"].reachable and found["down"].status is None and "Connection" in found["down"].detail
    finally:
        server.shutdown()
        server.server_close()


def test_the_panel_escapes_what_came_from_outside_and_speaks_plainly(store):
    from drimbox.web.explorer_panel import ExplorerPanel
    from drimbox.web.http import Request

    markup = '<img src=x onerror="alert(1)">'
    store.save_report(report_id="1.2.3^" + markup, message_id=None, state="rejected", study_uids=["1.2.840.9"],
                      flags={}, cda=None, problem=markup)
    store.update_study("1.2.840.9", state="conflict", problem="report 1.2.3 and the images disagree: " + markup)
    job = store.enqueue_publication(study_uid="1.2.840.9", kos_uid="1.2.840.9.1", action="register")
    store.finish_publication(job, "failed", error="refused by the DMP: " + markup)
    page = ExplorerPanel(store, dmp_enabled=True).panel(Request("GET", "/drimbox/ui/panel/1.2.840.9", {"lang": "en"},
                                                                params={"study_uid": "1.2.840.9"})).body.decode()
    assert markup not in page and "&lt;img src=x onerror=" in page
    assert "Report and images disagree" in page and "The DMP refused the document" in page
    assert 'data-drimbox-action="retry"' in page and 'data-publication="%d"' % job in page


def test_probes_name_the_dmp_psc_and_every_other_peer_of_the_whitelist():
    from types import SimpleNamespace

    from drimbox.reachability import probes_from_settings

    settings = SimpleNamespace(
        dmp=SimpleNamespace(enabled=True, base_url="https://dmp.example/dmp", client_cert="/c.pem", client_key="/k.pem",
                            ca_bundle="/ca.pem"),
        psc=SimpleNamespace(issuer_url="https://psc.example/auth/realms/esante-wallet", ca_bundle=""),
        identity=SimpleNamespace(wado_rs_base="https://db.box-a.example/wado-rs"))
    domains = [SimpleNamespace(db="db.box-a.example", name="box-a"), SimpleNamespace(db="db.box-b.example:8443",
                                                                                     name="Centre B")]
    probes = {p.name: p for p in probes_from_settings(settings, lambda: domains)()}
    assert probes["DMP"].url == "https://dmp.example/dmp" and probes["DMP"].cert == ("/c.pem", "/k.pem")
    assert probes["Pro Santé Connect"].url.endswith("/esante-wallet/.well-known/wallet-openid-configuration")
    assert probes["Centre B"].url == "https://db.box-b.example:8443/wado-rs"
    assert "box-a" not in probes  # not itself
