"""A real headless chromium clicks a professional on the simulator's login page and lands on the callback.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (fds 3 and 4,
NUL-separated JSON), which needs no extra Python package.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from drimbox.psc import PscClient
from drimbox.psc.settings import PscSettings

from .conftest import GENERAL_PRACTITIONER

pytestmark = [pytest.mark.integration, pytest.mark.browser,
              pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")]


class Chromium:
    def __init__(self) -> None:
        self._profile = tempfile.TemporaryDirectory()
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes() -> None:
            # dup2 onto a different fd clears close-on-exec; going through 100/101 avoids clobbering.
            os.dup2(to_browser_r, 100)
            os.dup2(from_browser_w, 101)
            os.dup2(100, 3)
            os.dup2(101, 4)

        self._process = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={self._profile.name}", "about:blank"],
            preexec_fn=wire_pipes, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 15):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(raw)
                if answer.get("id") == self._next_id:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer["result"]
            self._buffer += os.read(self._from_browser, 65536)
        raise TimeoutError(method)

    def close(self) -> None:
        self._process.kill()
        self._process.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()


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


def test_chromium_picks_a_professional(sim):
    callback_server = ThreadingHTTPServer(("127.0.0.1", 0), Callback)
    threading.Thread(target=callback_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    redirect_uri = f"http://127.0.0.1:{callback_server.server_address[1]}/psc/callback"
    client = PscClient(PscSettings(issuer=sim.issuer, client_id="browser-box"), redirect_uri=redirect_uri,
                       client_secret="any")
    browser = Chromium()
    try:
        page = next(t for t in browser.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        session = browser.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        browser.call("Page.navigate", {"url": client.authorization_url("browser-state", "browser-nonce")}, session)
        button = f"login-{GENERAL_PRACTITIONER}"
        deadline = time.monotonic() + 15
        while True:  # wait until the login page is there
            found = browser.call("Runtime.evaluate",
                                 {"expression": f"!!document.getElementById('{button}')", "returnByValue": True},
                                 session)["result"]["value"]
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert found, "the login page never showed the professional's button"
        browser.call("Runtime.evaluate", {"expression": f"document.getElementById('{button}').click()"}, session)
        assert Callback.arrived.wait(15), "the browser never came back to the redirect URI"
    finally:
        browser.close()
        callback_server.shutdown()
        callback_server.server_close()

    assert Callback.received["state"] == "browser-state"
    tokens = client.exchange_code(Callback.received["code"])
    assert client.validate_id_token(tokens.id_token, "browser-nonce")["SubjectNameID"] == GENERAL_PRACTITIONER
