"""The thin adapter, against a hand-written fake of Orthanc's ``orthanc`` module (real Orthanc: integration)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from drimbox import orthanc_adapter
from drimbox.web.http import Response


class FakeOutput:
    def __init__(self):
        self.headers, self.answer, self.status = {}, None, None

    def SetHttpHeader(self, name, value):
        self.headers[name] = value

    def AnswerBuffer(self, body, content_type):
        self.status, self.answer, self.headers["Content-Type"] = 200, body, content_type

    def SendHttpStatus(self, status, body, length):
        # Orthanc: "Please use the dedicated methods to this HTTP status code in HttpOutput"
        assert status != 405, "Orthanc refuses SendHttpStatus(405) (seen with Orthanc 1.10)"
        assert length == len(body.encode())
        self.status, self.answer = status, body

    def SendMethodNotAllowed(self, allowed):
        self.status, self.answer, self.headers = 405, None, {"Allow": allowed}

    def SetCookie(self, name, value):
        self.cookies = getattr(self, "cookies", []) + [(name, value)]

    def StartMultipartAnswer(self, sub_type, content_type):
        # Orthanc: "The only headers that can be set in multipart answers are Set-Cookie"
        assert all(name.lower() == "set-cookie" for name in self.headers), self.headers
        self.status, self.answer, self.multipart = 200, [], (sub_type, content_type)

    def SendMultipartItem(self, part):
        self.answer.append(part)


class FakeOrthanc:
    ChangeType = SimpleNamespace(ORTHANC_STARTED=0, ORTHANC_STOPPED=1, STABLE_STUDY=2, NEW_STUDY=3, NEW_INSTANCE=4)

    def __init__(self, configuration):
        self.configuration = configuration
        self.change_callbacks, self.filters, self.stored_callbacks, self.routes, self.explorer = [], [], [], {}, []
        self.logs = []

    def GetConfiguration(self):
        return json.dumps(self.configuration)

    def RegisterOnChangeCallback(self, callback):
        self.change_callbacks.append(callback)

    def RegisterIncomingHttpRequestFilter(self, callback):
        self.filters.append(callback)

    def RegisterOnStoredInstanceCallback(self, callback):
        self.stored_callbacks.append(callback)

    def RegisterRestCallback(self, pattern, callback):
        self.routes[pattern] = callback

    def ExtendOrthancExplorer(self, javascript):
        self.explorer.append(javascript)

    def LogInfo(self, message):
        self.logs.append(("info", message))

    LogWarning = LogError = LogInfo


PROXY_SECRET = "p" * 40
# What the launcher writes: only declared modalities may send DICOM.
DICOM_KEYS = {"DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False, "DicomCheckCalledAet": True,
              "DicomCheckModalityHost": True}


def configuration(tmp_path, **orthanc_keys) -> dict:
    secret = tmp_path / "proxy-secret"
    secret.write_text(PROXY_SECRET + "\n")
    return {"HttpPort": 18999, **DICOM_KEYS, **orthanc_keys,
            "DRIMbox": {"DataDir": str(tmp_path), "Dmp": {"Enabled": False}, "Hl7": {"Enabled": False},
                        "Edge": {"ProxySecretFile": str(secret)}}}


@pytest.fixture
def installed(tmp_path):
    fake = FakeOrthanc(configuration(tmp_path))
    box = orthanc_adapter.install(fake)
    yield fake, box
    box.stop()
    box.store.db.close()


def test_registers_one_of_each_callback(installed):
    fake, box = installed
    assert len(fake.filters) == 1
    # nothing runs as Orthanc stores an instance: orthanc-python 4.0 would call a change callback once per stored
    # instance, and even an empty stored-instance callback costs ~3% of ingest: the box follows /changes instead
    assert fake.change_callbacks == [] and fake.stored_callbacks == []
    assert set(fake.routes) == {"/drimbox/(.*)", "/drimbox"}
    assert "drimbox/ui" in fake.explorer[0]
    assert box.rest.base_url == "http://127.0.0.1:18999"  # derived from Orthanc's own HttpPort


def test_filter_denies_by_default_and_lets_the_operator_entry_in(installed):
    fake, _ = installed
    allow = fake.filters[0]
    nginx = {"x-drimbox-proxy": PROXY_SECRET}
    assert allow("/system", method=1, ip="127.0.0.1", headers={}, get={}) is False
    assert allow("/system", method=1, ip="127.0.0.1", headers={**nginx, "x-drimbox-entry": "admin"}, get={}) is False
    assert allow("/system", method=1, ip="127.0.0.1",
                 headers={**nginx, "x-drimbox-entry": "admin", "x-drimbox-operator": "operator"}, get={}) is True
    assert allow("/dicom-web/studies", method=1, ip="127.0.0.1", headers={**nginx, "x-drimbox-entry": "db"},
                 get={}) is False


@pytest.mark.parametrize("proxy", [None, "", "p" * 39, "p" * 41, "q" * 40, "pé" * 20])
def test_filter_believes_no_entry_header_without_nginx_secret(installed, proxy):
    fake, _ = installed
    allow = fake.filters[0]
    operator = {"x-drimbox-entry": "admin", "x-drimbox-operator": "operator"}
    if proxy is not None:
        operator["x-drimbox-proxy"] = proxy
    assert allow("/system", method=1, ip="127.0.0.1", headers=operator, get={}) is False
    assert allow("/drimbox/health", method=1, ip="127.0.0.1", headers={**operator, "x-drimbox-entry": "db"},
                 get={}) is False


def test_without_a_proxy_secret_file_every_entry_is_refused(tmp_path):
    config = configuration(tmp_path)
    del config["DRIMbox"]["Edge"]
    fake = FakeOrthanc(config)
    box = orthanc_adapter.install(fake)
    try:
        headers = {"x-drimbox-proxy": "", "x-drimbox-entry": "admin", "x-drimbox-operator": "operator"}
        assert fake.filters[0]("/system", method=1, ip="127.0.0.1", headers=headers, get={}) is False
    finally:
        box.store.db.close()


@pytest.mark.parametrize("key", sorted(DICOM_KEYS))
def test_orthanc_accepting_dicom_from_anyone_stops_the_plugin(tmp_path, key):
    config = configuration(tmp_path)
    del config[key]  # Orthanc's defaults: C-ECHO and C-STORE from any calling AE, any called AE, any host
    with pytest.raises(orthanc_adapter.SettingsError, match=key):
        orthanc_adapter.install(FakeOrthanc(config))
    config[key] = not DICOM_KEYS[key]
    with pytest.raises(orthanc_adapter.SettingsError, match=key):
        orthanc_adapter.install(FakeOrthanc(config))


def test_open_mode_is_an_explicit_setting(tmp_path):
    config = configuration(tmp_path, DicomAlwaysAllowStore=True, DicomAlwaysAllowEcho=True)
    config["DRIMbox"]["Dicom"] = {"AcceptAnyModality": True}
    box = orthanc_adapter.install(FakeOrthanc(config))
    box.store.db.close()


def test_rest_route_answers_json_and_error_statuses(installed):
    fake, _ = installed
    route = fake.routes["/drimbox/(.*)"]
    ok = FakeOutput()
    route(ok, "/drimbox/status", method="GET", headers={}, get={}, groups=["status"])
    assert ok.status == 200 and json.loads(ok.answer)["version"]
    missing = FakeOutput()
    route(missing, "/drimbox/studies/1.2.3/kos", method="GET", headers={}, get={}, groups=["studies/1.2.3/kos"])
    assert missing.status == 404 and "no current manifest" in missing.answer
    assert missing.headers["Content-Type"] == "application/json"


def test_streamed_answer_becomes_a_multipart_answer():
    output = FakeOutput()
    orthanc_adapter.send(output, Response(200, b"", "application/dicom", {"X-Other": "dropped", "Set-Cookie": "a=b"},
                                          parts=iter([b"one", b"two"])))
    assert (output.multipart, output.answer) == (("related", "application/dicom"), [b"one", b"two"])
    assert output.headers == {"Set-Cookie": "a=b"}


def test_each_cookie_is_its_own_set_cookie():
    output = FakeOutput()
    response = Response.redirect("/x")
    response.cookies += ["a=1; Path=/; Secure", "b=; Max-Age=0; Path=/drimbox/psc/"]
    orthanc_adapter.send(output, response)
    assert output.cookies == [("a", "1; Path=/; Secure"), ("b", "; Max-Age=0; Path=/drimbox/psc/")]
    assert output.status == 303 and output.headers["Location"] == "/x"


def test_filter_lets_a_peer_in_only_with_a_grant_for_exactly_that_path(installed):
    fake, box = installed
    allow = fake.filters[0]
    curated = "/drimbox/peer-retrieve/1.2.3/studies/1.2.4/series/1.2.5"
    grant = box.gate.grant(curated, scope="peer")
    db = {"x-drimbox-entry": "db", "x-drimbox-proxy": PROXY_SECRET}
    assert allow(curated, method=1, ip="127.0.0.1", headers=db, get={}) is False
    assert allow(curated, method=1, ip="127.0.0.1", headers={**db, "x-drimbox-grant": grant}, get={}) is True
    assert allow(curated + "/metadata", method=1, ip="127.0.0.1", headers={**db, "x-drimbox-grant": grant},
                 get={}) is False
    viewer_grant = box.gate.grant(curated, scope="viewer")
    assert allow(curated, method=1, ip="127.0.0.1", headers={**db, "x-drimbox-grant": viewer_grant},
                 get={}) is False


def test_a_wrong_method_is_a_405_with_allow_through_orthancs_dedicated_call():
    from drimbox.web.http import Request, Router

    router = Router()
    router.add("GET", "/drimbox/x", lambda request: Response.json({}))
    router.add("POST", "/drimbox/x", lambda request: Response.json({}))
    response = router.dispatch(Request("DELETE", "/drimbox/x"))
    assert response.status == 405 and response.headers["Allow"] == "GET, POST"
    assert json.loads(response.body)["allowed"] == ["GET", "POST"]
    output = FakeOutput()
    orthanc_adapter.send(output, response)
    assert (output.status, output.headers) == (405, {"Allow": "GET, POST"})


def test_each_plugin_log_event_is_one_line_even_with_a_traceback(installed):
    import logging

    fake, _ = installed
    try:
        raise ValueError("first line\nsecond line")
    except ValueError:
        logging.getLogger("drimbox.sample").exception("the reconciliation of %s failed", "1.2.3")
    level, message = fake.logs[-1]
    assert "\n" not in message and "\r" not in message
    assert message.startswith("drimbox.sample: the reconciliation of 1.2.3 failed | Traceback")
    assert "ValueError: first line | second line" in message


def test_a_configuration_error_with_several_problems_is_logged_on_one_line(tmp_path):
    config = configuration(tmp_path)
    config["DRIMbox"]["Deployment"] = "production"  # still the simulators and the test PKI: several problems
    fake = FakeOrthanc(config)
    with pytest.raises(orthanc_adapter.SettingsError, match="not ready for production"):
        orthanc_adapter.install(fake)
    errors = [message for _, message in fake.logs if "configuration error" in message]
    assert len(errors) == 1 and "\n" not in errors[0] and errors[0].count(" | - ") >= 2
