"""A browser's view of the admin entry over real HTTP: the headers a browser sends, the login form."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from drimbox.launcher.box_instance import BoxInstance

COOKIE_NAME = "__Host-drimbox-operator"
PAGE_LOAD = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none"}


def origin_of(box: BoxInstance) -> str:
    return box.admin_url


def same_origin(box: BoxInstance) -> dict[str, str]:
    """What a browser adds to a state-changing request made by a page of the admin entry itself."""
    return {"Origin": origin_of(box), "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}


def anonymous(box: BoxInstance) -> requests.Session:
    session = requests.Session()
    session.verify = box.ca_bundle
    session.trust_env = False
    return session


def submit_login(box: BoxInstance, session: requests.Session, password: str, *, user: str = "operator",
                 next_path: str = "/app/explorer.html") -> requests.Response:
    return session.post(box.admin_url + "/drimbox/operator/login", allow_redirects=False, timeout=30,
                        data={"user": user, "password": password, "next": next_path},
                        headers={**PAGE_LOAD, "Origin": origin_of(box), "Sec-Fetch-Site": "same-origin"})


def browser_login(box: BoxInstance) -> tuple[requests.Session, str]:
    """Log in through the form; the session holds only the cookie (no Basic credentials). Returns the token too."""
    session = anonymous(box)
    answer = submit_login(box, session, box.operator_password)
    assert answer.status_code == 303, answer.text
    token = session.cookies.get(COOKIE_NAME)
    assert token
    return session, token


class Watcher:
    """A loopback HTTP server on another origin: records every path asked; serves ``document`` at
    ``/control.xml`` and ``page`` at ``/attack.html``."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.document = b""
        self.page = b""
        watcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                watcher.hits.append(self.path)
                body, kind = {"/control.xml": (watcher.document, "application/xml"),
                              "/attack.html": (watcher.page, "text/html")}.get(self.path, (b"ok", "text/plain"))
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def script_hits(self) -> list[str]:
        return [path for path in self.hits if path.startswith("/xss")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
