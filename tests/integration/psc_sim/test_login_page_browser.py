"""A real headless chromium clicks a professional on the simulator's login page and lands on the callback.

Chromium is driven through the DevTools protocol (tests/support/chromium.py).
"""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from drimbox.psc import PscClient
from drimbox.psc.settings import PscSettings
from support.chromium import Chromium

from .conftest import GENERAL_PRACTITIONER

pytestmark = [pytest.mark.integration, pytest.mark.browser,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")]


class Callback(BaseHTTPRequestHandler):
    received: dict[str, str] = {}
    arrived = threading.Event()

    def do_GET(self) -> None:
        type(self).received = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        body = b"<html><body id='back'>back at the box</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        type(self).arrived.set()

    def log_message(self, *args) -> None:
        pass


def test_chromium_picks_a_professional(sim, tmp_path):
    callback_server = ThreadingHTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=callback_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    redirect_uri = f"http://127.0.0.1:{callback_server.server_address[1]}/psc/callback"
    client = PscClient(PscSettings(issuer=sim.issuer, client_id="browser-box"), redirect_uri=redirect_uri,
                       client_secret="any")
    browser = Chromium(tmp_path / "profile")
    try:
        browser.navigate(client.authorization_url("browser-state", "browser-nonce"))
        button = f"login-{GENERAL_PRACTITIONER}"
        browser.wait(f"!!document.getElementById('{button}')", timeout=15, what="the professional's button")
        browser.evaluate(f"document.getElementById('{button}').click()")
        assert Callback.arrived.wait(15), "the browser never came back to the redirect URI"
    finally:
        browser.close()
        callback_server.shutdown()
        callback_server.server_close()

    assert Callback.received["state"] == "browser-state"
    tokens = client.exchange_code(Callback.received["code"])
    assert client.validate_id_token(tokens.id_token, "browser-nonce")["SubjectNameID"] == GENERAL_PRACTITIONER
