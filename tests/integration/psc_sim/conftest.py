"""Fixtures: a real PSC simulator on loopback (HTTP, and HTTPS with a throw-away certificate)."""

from __future__ import annotations

import datetime
import ipaddress
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from drimbox.psc import PscClient
from drimbox.psc.settings import PscSettings
from drimbox.sim.psc import PscSimulator

REDIRECT_URI = "http://127.0.0.1:1/psc/callback"
RADIOLOGIST = "810002000015"
GENERAL_PRACTITIONER = "810002000023"
NURSE = "810002000031"


class Clock:
    """A settable clock for the client (the simulator keeps real time)."""

    def __init__(self) -> None:
        import time

        self.offset = 0.0
        self._time = time.time

    def __call__(self) -> float:
        return self._time() + self.offset


class CountingSession(requests.Session):
    """A real requests session that counts the requests it sends, per URL path suffix."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        self.urls.append(url)
        return super().request(method, url, *args, **kwargs)

    def count(self, suffix: str) -> int:
        return sum(1 for url in self.urls if url.endswith(suffix))


@pytest.fixture(scope="module")
def sim():
    with PscSimulator() as simulator:
        yield simulator


@pytest.fixture
def make_client(sim):
    def make(simulator: PscSimulator | None = None, **settings) -> PscClient:
        simulator = simulator or sim
        clock = settings.pop("clock", None) or Clock()
        session = settings.pop("session", None)
        secret = settings.pop("client_secret", "any-secret")
        values = {"issuer": simulator.issuer, "client_id": "drimbox-test"}
        values.update(settings)
        return PscClient(PscSettings(**values), redirect_uri=REDIRECT_URI, session=session, clock=clock,
                         client_secret=secret)

    return make


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> tuple[str, str]:
    directory: Path = tmp_path_factory.mktemp("psc-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class LoginForm(HTMLParser):
    """Reads the simulator's login page the way a browser would: form action, hidden fields, buttons."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action = ""
        self.hidden: dict[str, str] = {}
        self.buttons: dict[str, tuple[str, str]] = {}  # element id -> (name, value)
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == "psc-login-form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("type") == "submit":
            self.buttons[a["id"]] = (a.get("name", ""), a.get("value", ""))
