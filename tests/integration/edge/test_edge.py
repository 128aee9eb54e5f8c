"""The box's edges, end to end on a running box: who may talk to Orthanc's HTTP and DICOM ports, the TLS nginx
offers, the headers of every entry's answers, method overrides, body limits and the public health check."""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import requests

from drimbox.launcher.edge import content_security_policies
from drimbox.launcher.network import default_ohif_dir
from drimbox.testing import demo_study, start_box

pytestmark = pytest.mark.integration

ALLOWED_TLS12 = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                 "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}
HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture(scope="module")
def box(tmp_path_factory, pki):
    instance = start_box(tmp_path_factory.mktemp("edge") / "box", pki=pki, ohif_dir=default_ohif_dir() or None)
    yield instance
    instance.stop()


@dataclass
class OneFileStudy:
    study_uid: str
    file: Path


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> OneFileStudy:
    out = tmp_path_factory.mktemp("edge-study")
    content = demo_study(out, series=(("CT", 1),))
    return OneFileStudy(content.study_uid, next(p for p in sorted(out.rglob("*")) if p.is_file()))


def entries(box) -> dict[str, str]:
    return {"admin": box.admin_url, "db": box.db_url, "vi": box.vi_url}


def anonymous(box) -> requests.Session:
    session = requests.Session()
    session.verify = box.ca_bundle
    session.trust_env = False
    return session


def raw_request(box, port: int, head: str) -> tuple[int, dict[str, str]]:
    """Send only a request head over TLS (no body) and read the status line and headers of the answer."""
    context = ssl.create_default_context(cafile=box.ca_bundle)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(head.encode())
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                answer += chunk
    lines = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    return int(lines[0].split()[1]), headers


# --- 1. loopback trust: Orthanc's own port believes nothing without nginx's secret -------------------------


FORGED = [
    ("/system", {"X-Drimbox-Entry": "admin", "X-Drimbox-Operator": "operator"}),
    ("/app/explorer.html", {"X-Drimbox-Entry": "admin", "X-Drimbox-Operator": "operator"}),
    ("/drimbox/status", {"X-Drimbox-Entry": "admin", "X-Drimbox-Operator": "operator"}),
    ("/drimbox/health", {"X-Drimbox-Entry": "db"}),
    ("/drimbox/psc/login", {"X-Drimbox-Entry": "vi"}),
]


@pytest.mark.parametrize("path,headers", FORGED)
def test_forged_entry_headers_on_orthancs_port_get_403(box, path, headers):
    for proxy in (None, "", "not-the-secret", box.data_dir.joinpath("proxy-secret").read_text().strip() + "x"):
        sent = dict(headers) if proxy is None else {**headers, "X-Drimbox-Proxy": proxy}
        response = requests.get(box.orthanc_url + path, headers=sent, timeout=10)
        assert response.status_code == 403, (path, proxy)


def test_the_same_requests_through_nginx_work(box):
    operator = box.operator_session()
    assert operator.get(box.admin_url + "/system", timeout=10).json()["DicomAet"] == box.aet
    assert operator.get(box.admin_url + "/drimbox/status", timeout=10).status_code == 200
    assert anonymous(box).get(box.wado_rs_base, timeout=10).json()["status"] in ("ok", "degraded")


def test_orthanc_refuses_remote_http_clients(box):
    address = non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    response = requests.get(f"http://{address}:{box.ports.orthanc_http}/app/explorer.html", timeout=10,
                            headers={"X-Drimbox-Entry": "admin", "X-Drimbox-Operator": "operator"})
    assert response.status_code in (401, 403)


def non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only the route's source address is chosen
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


# --- 2. DICOM: only declared modalities, only to the box's AE title ---------------------------------------


def echoscu(box, calling: str, called: str, host: str = "127.0.0.1") -> subprocess.CompletedProcess:
    return subprocess.run(["echoscu", "-aet", calling, "-aec", called, host, str(box.ports.dicom)],
                          capture_output=True, text=True, timeout=60)


def storescu(box, calling: str, called: str, path) -> subprocess.CompletedProcess:
    return subprocess.run(["storescu", "-aet", calling, "-aec", called, "127.0.0.1", str(box.ports.dicom), str(path)],
                          capture_output=True, text=True, timeout=60)


def test_echo_only_from_a_declared_modality_to_the_box_ae(box):
    unknown = echoscu(box, "NOBODY", box.aet)
    assert unknown.returncode != 0 and "Calling AE Title Not Recognized" in unknown.stderr
    wrong_called = echoscu(box, box.sender_aet, "NOT-THE-BOX")
    assert wrong_called.returncode != 0 and "Called AE Title Not Recognized" in wrong_called.stderr
    declared = echoscu(box, box.sender_aet, box.aet)
    assert declared.returncode == 0, declared.stderr


def test_declared_ae_from_another_host_is_refused(box):
    address = non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    other_host = echoscu(box, box.sender_aet, box.aet, host=address)  # the declared modality's host is 127.0.0.1
    assert other_host.returncode != 0 and "Not Recognized" in other_host.stderr


def test_store_only_from_a_declared_modality_to_the_box_ae(box, study):
    operator = box.operator_session()
    file = study.file
    instance_uid = str(pydicom.dcmread(file, stop_before_pixels=True).SOPInstanceUID)

    def stored() -> bool:
        found = operator.post(box.admin_url + "/tools/lookup", data=instance_uid, timeout=10).json()
        return bool(found)

    for calling, called in (("NOBODY", box.aet), (box.sender_aet, "NOT-THE-BOX")):
        refused = storescu(box, calling, called, file)
        assert refused.returncode != 0 and "Not Recognized" in refused.stderr, refused.stderr
        assert not stored()
    accepted = storescu(box, box.sender_aet, box.aet, file)
    assert accepted.returncode == 0, accepted.stderr
    assert stored()


# --- 3. TLS: 1.2 and 1.3 only; in 1.2 ECDHE with AEAD only -------------------------------------------------


def handshake(port: int, *, ciphers: str | None = None, version: ssl.TLSVersion | None = None) -> str | None:
    """The negotiated suite, or None when the server refused with an alert (a client-side failure raises)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if version is not None:
        context.minimum_version = context.maximum_version = version
    else:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers((ciphers or "ALL") + ":@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.cipher()[0]
        except ssl.SSLError as error:
            if "ALERT" in error.reason:  # the server said no
                return None
            raise


def tls12_suites_a_client_can_offer() -> list[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_ciphers("ALL:@SECLEVEL=0")
    return [c["name"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"]


@pytest.mark.parametrize("entry", ["admin", "db", "vi"])
def test_tls12_accepts_only_ecdhe_aead_suites(box, entry):
    port = getattr(box.ports, entry)
    tried, accepted = set(), set()
    for suite in tls12_suites_a_client_can_offer():
        try:
            if handshake(port, ciphers=suite) is not None:
                accepted.add(suite)
        except ssl.SSLError as error:
            if error.reason != "NO_CIPHERS_AVAILABLE":  # PSK and SRP suites need client credentials
                raise
            continue
        tried.add(suite)
    assert len(tried - ALLOWED_TLS12) > 20 and {"AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES256-GCM-SHA384"} <= tried
    assert accepted and accepted <= ALLOWED_TLS12, sorted(accepted - ALLOWED_TLS12)


@pytest.mark.parametrize("entry", ["admin", "db", "vi"])
def test_tls10_and_tls11_are_refused_and_tls13_works(box, entry):
    port = getattr(box.ports, entry)
    for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        assert handshake(port, version=version) is None, version
    assert handshake(port, version=ssl.TLSVersion.TLSv1_3) in {"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
                                                               "TLS_CHACHA20_POLY1305_SHA256"}


# --- 3. the headers of every answer of every entry ----------------------------------------------------------


def answers(box, study_uid: str) -> list[tuple[str, requests.Response]]:
    operator, nobody = box.operator_session(), anonymous(box)
    big = {"Content-Type": "application/octet-stream"}
    samples = [
        ("admin", operator.get(box.admin_url + "/", allow_redirects=False, timeout=10)),  # nginx 302
        ("admin", operator.get(box.admin_url + "/app/explorer.html", timeout=10)),  # Orthanc 200
        ("admin", operator.get(box.admin_url + "/system", timeout=10)),  # Orthanc REST 200
        ("admin", operator.get(box.admin_url + "/studies/not-a-study", timeout=10)),  # Orthanc 404
        ("admin", operator.get(box.admin_url + "/drimbox/studies/1.2.3/kos", timeout=10)),  # plugin 404
        ("admin", nobody.get(box.admin_url + "/system", timeout=10)),  # nginx 401
        ("admin", operator.get(box.admin_url + "/system?_method=DELETE", timeout=10)),  # nginx 400
        ("db", nobody.get(box.wado_rs_base, timeout=10)),  # plugin 200
        ("db", nobody.get(box.db_url + "/elsewhere", timeout=10)),  # nginx 404
        ("db", nobody.post(box.wado_rs_base + f"/studies/{study_uid}", timeout=10)),  # nginx 405
        ("db", nobody.get(box.wado_rs_base + f"/studies/{study_uid}", timeout=10)),  # plugin refusal (4xx)
        ("db", nobody.post(box.wado_rs_base + "/studies", data=b"x" * 8192, headers=big, timeout=10)),  # 413
        ("vi", nobody.get(box.vi_url + "/", timeout=10)),  # static (OHIF) or nginx 404
        ("vi", nobody.get(box.vi_url + "/app-config.js", timeout=10)),  # static 200
        ("vi", nobody.get(box.vi_url + "/drimbox/open", timeout=10)),  # plugin refusal
        ("vi", nobody.get(box.vi_url + f"/dicom-web/studies/{study_uid}/metadata", timeout=10)),  # nginx 401
        ("vi", nobody.get(box.vi_url + "/?_METHOD=delete", timeout=10)),  # nginx 400
        ("vi", nobody.post(box.vi_url + "/drimbox/psc/activity", data=b"x" * 32768, headers=big, timeout=10)),
    ]
    return samples


def test_every_answer_of_every_entry_carries_the_edge_headers(box, study):
    policies = content_security_policies(Path(box.ohif_dir or box.data_dir / "no-viewer"))
    statuses = set()
    for entry, response in answers(box, study.study_uid):
        where = f"{entry} {response.request.method} {response.request.path_url} -> {response.status_code}"
        statuses.add(response.status_code)
        headers = response.headers
        assert headers.get("Strict-Transport-Security") == HSTS, where
        assert headers.get("Content-Security-Policy") == policies[entry], where
        assert headers.get("X-Content-Type-Options") == "nosniff", where
        assert headers.get("Referrer-Policy") == "same-origin", where
        assert headers.get("X-Frame-Options") == ("SAMEORIGIN" if entry == "admin" else "DENY"), where
        assert "frame-ancestors" in headers["Content-Security-Policy"], where
    assert {200, 302, 400, 401, 404, 405, 413} <= statuses


# --- 4. method overrides ---------------------------------------------------------------------------------


OVERRIDES = [
    ("?_method=DELETE", {}),
    ("?_METHOD=delete", {}),
    ("?a=1&_Method=DELETE", {}),
    ("?%5Fmethod=DELETE", {}),
    ("?_%6Dethod=DELETE", {}),
    ("", {"X-HTTP-Method-Override": "DELETE"}),
    ("", {"X-HTTP-Method": "DELETE"}),
    ("", {"X-Method-Override": "DELETE"}),
]


@pytest.mark.parametrize("query,headers", OVERRIDES)
def test_method_overrides_are_refused_on_every_entry(box, study, query, headers):
    operator, nobody = box.operator_session(), anonymous(box)
    targets = [(operator, box.admin_url + "/patients"), (nobody, box.wado_rs_base),
               (nobody, box.wado_rs_base + f"/studies/{study.study_uid}"), (nobody, box.vi_url + "/drimbox/open"),
               (nobody, box.vi_url + f"/dicom-web/studies/{study.study_uid}")]
    for session, url in targets:
        response = session.get(url + query, headers=headers, timeout=10)
        assert response.status_code == 400, (url, query, headers, response.status_code)
    assert operator.get(box.admin_url + "/patients", timeout=10).status_code == 200


def test_an_override_cannot_delete_through_the_admin_entry(box, study):
    operator = box.operator_session()
    assert operator.post(box.admin_url + "/instances", data=study.file.read_bytes(), timeout=30).status_code == 200
    patients = operator.get(box.admin_url + "/patients", timeout=10).json()
    assert patients
    for patient in patients:
        assert operator.get(box.admin_url + f"/patients/{patient}?_method=DELETE", timeout=10).status_code == 400
        assert operator.get(box.admin_url + f"/patients/{patient}", headers={"X-HTTP-Method-Override": "DELETE"},
                            timeout=10).status_code == 400
    assert operator.get(box.admin_url + "/patients", timeout=10).json() == patients


# --- 5. body limits ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry,path,length", [
    ("vi", "/drimbox/psc/activity", 200 * 1024 * 1024),  # an unauthenticated viewer route
    ("vi", "/drimbox/open", 64 * 1024),
    ("db", "/wado-rs/studies", 200 * 1024 * 1024),
    ("db", "/wado-rs", 16 * 1024),
    ("admin", "/instances", 600 * 1024 * 1024),
])
def test_an_oversized_body_gets_413_before_it_is_sent(box, entry, path, length):
    port = getattr(box.ports, entry)
    auth = ""
    if entry == "admin":
        auth = "Authorization: Basic " + base64.b64encode(":".join(box.operator_auth).encode()).decode() + "\r\n"
    head = (f"POST {path} HTTP/1.1\r\nHost: localhost:{port}\r\n{auth}Content-Type: application/octet-stream\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n")
    started = time.monotonic()
    status, headers = raw_request(box, port, head)  # no body byte sent: nginx answers from the head alone
    assert status == 413 and time.monotonic() - started < 5
    assert headers.get("strict-transport-security") == HSTS


def test_the_admin_entry_takes_a_study_sized_upload(box):
    body = b"\0" * (8 * 1024 * 1024)  # not DICOM: Orthanc reads it all and refuses it itself
    response = box.operator_session().post(box.admin_url + "/instances", data=body, timeout=60)
    assert response.status_code != 413 and response.json()["OrthancStatus"]  # Orthanc's own error


# --- 6. the public health check ------------------------------------------------------------------------------


def test_health_check_is_small_and_its_query_string_cannot_bypass_the_cache(box):
    nobody = anonymous(box)
    for _ in range(20):
        started = time.monotonic()
        bodies = [nobody.get(box.wado_rs_base + suffix, timeout=10).json()
                  for suffix in ("", "?x=1", "/?window=0.5", "?window=1&nocache=2", "/")]
        if time.monotonic() - started < 0.8:  # all inside one cache period
            break
    else:
        raise AssertionError("five health requests never fitted in one cache period (0.8 s) in 20 tries")
    assert all(body == bodies[0] for body in bodies), bodies
    body = bodies[0]
    assert set(body) == {"status", "service", "time", "client_certificate", "checks"}
    assert body["checks"]["pacs"] == {"ok": True} and body["checks"]["store"] == {"ok": True}
    text = nobody.get(box.wado_rs_base, timeout=10).text
    for internal in ("version", "access_decision", "ms", "error", "generated_at", box.orthanc_url, "127.0.0.1"):
        assert internal not in text, internal


def test_health_details_are_for_the_operator_only(box):
    details = box.operator_session().get(box.admin_url + "/drimbox/status/health?window=60", timeout=10)
    assert details.status_code == 200 and "access_decision_ms" in details.json() and "version" in details.json()
    nobody = anonymous(box)
    assert nobody.get(box.db_url + "/drimbox/status/health", timeout=10).status_code == 404
    assert nobody.get(box.vi_url + "/drimbox/status/health", timeout=10).status_code == 403
