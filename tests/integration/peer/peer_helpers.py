"""A small DRIM-M world for the peer-access tests: one source box, a PSC simulator, a signed whitelist naming
a peer (box-b), and a JPEG-LS study published by the box (KOS built from a report).

The box runs with the default peer access (``PeerAccess.ClientCertificate`` "required"): the peer's requests
present box-b's organisation certificate unless a test says otherwise (``cert=None``)."""

from __future__ import annotations

import email.parser
import email.policy
import io
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import requests

from drimbox.launcher.box_instance import BoxInstance
from drimbox.launcher.ports import BoxPorts
from drimbox.samples.reports import make_cda, make_oru
from drimbox.samples.whitelist import make_demo_whitelist
from drimbox.sim.psc import PscSimulator
from drimbox.studies.model import StudyContent
from drimbox.testing import NATIONAL_ACCEPT, BoxClient, demo_order, demo_study, start_box, store_scu, wait_for

RADIOLOGIST = "810002000015"
JPEG_LS = "1.2.840.10008.1.2.4.80"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
PEER = "box-b"  # the test PKI box whose authentication certificate the peer presents


@dataclass
class PeerWorld:
    box: BoxInstance
    psc: PscSimulator
    operator: BoxClient
    study: StudyContent
    kos_uid: str
    pki: dict
    study_dir: Path
    tmp: Path
    extra: dict = field(default_factory=dict)

    @property
    def wado(self) -> str:
        return self.box.wado_rs_base

    def token(self, id_nat: str = RADIOLOGIST, **kwargs) -> str:
        return self.psc.mint_access_token(id_nat, **kwargs)

    def session(self, cert: str | None = PEER) -> requests.Session:
        """A peer's HTTP client: pins the test CA (trust_env off: REQUESTS_CA_BUNDLE would override it) and
        presents the authentication certificate of the test PKI box ``cert`` (None: no certificate)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self.box.ca_bundle
        if cert:
            auth = self.pki["boxes"][cert]["auth"]
            session.cert = (auth["cert"], auth["key"])
        return session

    def tls_context(self, cert: str | None = PEER) -> ssl.SSLContext:
        """The same for raw connections (http.client)."""
        context = ssl.create_default_context(cafile=self.box.ca_bundle)
        if cert:
            auth = self.pki["boxes"][cert]["auth"]
            context.load_cert_chain(auth["cert"], auth["key"])
        return context

    def headers(self, token: str | None = None, kos: str | None = None, accept: str | None = NATIONAL_ACCEPT) -> dict:
        out = {"Authorization": f"Bearer {token or self.token()}", "KOS-SOPInstanceUID": kos or self.kos_uid}
        if accept is not None:
            out["Accept"] = accept
        return out

    def series_path(self, index: int = 0) -> str:
        s = self.study.series[index]
        return f"/studies/{self.study.study_uid}/series/{s.series_uid}"

    def instance_path(self, series: int = 0, instance: int = 0) -> str:
        s = self.study.series[series]
        return f"{self.series_path(series)}/instances/{s.instances[instance].sop_instance_uid}"

    def stop(self) -> None:
        self.box.stop()
        self.psc.stop()


def start_world(tmp: Path, pki: dict, *, peer_access: dict | None = None, whitelist_refresh_hours: float = 24.0,
                series=(("CT", 3), ("CT", 2)), jpegls: bool = True,
                listed_operators: tuple[str, ...] = ("box-a", "box-b"), **study_options) -> PeerWorld:
    """``peer_access``: the box's ``PeerAccess`` section (default: the defaults, client certificate required).
    ``listed_operators``: boxes of the test PKI whose authentication certificate DN the whitelist names
    as operator DN (the others are listed with an unrelated DN). ``study_options`` go to ``demo_study``
    (``rows``, ``cols``...)."""
    psc_server = pki["servers"]["psc-sim"]
    psc = PscSimulator(tls_cert=psc_server["fullchain"], tls_key=psc_server["key"], host="127.0.0.1").start()
    ports = BoxPorts.free()
    secret = tmp / "psc-client-secret"
    secret.write_text("any-secret\n")
    whitelist = tmp / "whitelist.xml"
    domains = {
        "box-a": {"db": f"localhost:{ports.db}", "vi": f"localhost:{ports.vi}"},
        "box-b": {"db": "box-b.example:443", "vi": "box-b-vi.example:443"},
    }
    for name, entry in domains.items():
        if name not in listed_operators:
            entry["operator_dn"] = f"CN=AUTH_CLI elsewhere-{name},O=ELSEWHERE,C=FR"
    whitelist.write_bytes(make_demo_whitelist(pki, domains))
    box = start_box(tmp / "box", pki=pki, ports=ports, psc_issuer=psc.issuer, whitelist=str(whitelist), settings={
        "Psc": {"ClientSecretFile": str(secret), "ClientId": "drimbox-box-a"},
        "PeerAccess": dict(peer_access or {}),
        "Whitelist": {"RefreshHours": whitelist_refresh_hours},
    })
    try:
        operator = BoxClient(box)
        study_dir = tmp / "study"
        study = demo_study(study_dir, series=series, jpegls=jpegls, **study_options)
        store_files(box, study_dir, jpegls=jpegls)
        report = make_oru(make_cda(studies=[demo_order(study.study_uid)]))
        response = operator.post("/drimbox/reports", data=report, headers={"Content-Type": "application/hl7-v2"})
        assert response.status_code < 300, response.text
        status = operator.wait_study(study.study_uid, lambda s: bool(s.get("kos")), timeout=90, what="a manifest")
        kos_uid = status["kos"]["kos_uid"]
        wait_for(lambda: operator.get("/drimbox/status").status_code == 200, what="box status")
        if box.whitelist:
            wait_for(lambda: _whitelist_in_force(box), timeout=30, what="the whitelist in force")
    except BaseException:
        box.stop()
        psc.stop()
        raise
    return PeerWorld(box=box, psc=psc, operator=operator, study=study, kos_uid=kos_uid, pki=pki,
                     study_dir=study_dir, tmp=tmp)


def store_files(box: BoxInstance, path: Path, *, jpegls: bool) -> None:
    """dcmtk storescu; JPEG-LS files need the JPEG-LS lossless presentation context (``-xt``)."""
    if not jpegls:
        store_scu(box, path)
        return
    result = subprocess.run(["storescu", "-aet", box.sender_aet, "-aec", box.aet, "+sd", "+r", "-xt", "127.0.0.1",
                             str(box.ports.dicom), str(path)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"storescu failed ({result.returncode}): {result.stderr[-2000:]}"


def _whitelist_in_force(box: BoxInstance) -> bool:
    answer = box.operator_session().get(box.admin_url + "/drimbox/status/health", timeout=10)
    return answer.json().get("checks", {}).get("whitelist", {}).get("in_force", False)


# --- multipart bodies ------------------------------------------------------------------------------


def multipart_parts(response: requests.Response) -> list[tuple[dict, bytes]]:
    """Split a multipart/related answer into (headers, body) parts with the stdlib MIME parser."""
    content_type = response.headers["Content-Type"]
    raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + response.content
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.is_multipart(), content_type
    return [(dict(part.items()), part.get_payload(decode=True)) for part in message.iter_parts()]


def dicom_parts(response: requests.Response) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(io.BytesIO(body)) for _, body in multipart_parts(response)]


# --- raw requests (repeated headers, header order) ----------------------------------------------------


@dataclass
class RawAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")

    def as_response(self) -> requests.Response:
        """A requests.Response view (for multipart_parts)."""
        response = requests.Response()
        response.status_code = self.status
        response.headers.update(self.headers)
        response._content = self.body
        return response


def raw_get(world: PeerWorld, path: str, headers: list[tuple[str, str]], *, method: str = "GET",
            cert: str | None = PEER) -> RawAnswer:
    """One request with exactly these header lines, in this order (repeats kept), over TLS, presenting the
    certificate of the test PKI box ``cert`` (None: none)."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(world.wado + path)
    context = world.tls_context(cert)
    connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=60)
    try:
        connection.putrequest(method, url.path + (f"?{url.query}" if url.query else ""))
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return RawAnswer(response.status, response.getheaders(), response.read())
    finally:
        connection.close()
