"""The operator's login page, logout, and the admin entry's access decision route (nginx ``auth_request``).

``GET /drimbox/operator/authz`` answers nginx's subrequest for every request of the admin entry: 200 with
``X-Drimbox-Operator`` when allowed, else 403 with ``X-Drimbox-Status`` (nginx's ``auth_request`` only tells
2xx from 401/403); nginx then asks ``GET /drimbox/operator/denied`` for the answer the client gets.
The decision itself is :class:`drimbox.trust.operator_access.OperatorAccess`.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from drimbox.trust.operator_access import (
    CLIENT_ADDR_HEADER,
    LOGIN_PATH,
    LOGOUT_PATH,
    OperatorAccess,
    safe_next,
    session_token,
)
from drimbox.web.http import Request, Response, Router

_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                                autoescape=True)
DENIAL_STATUSES = {303, 400, 401, 403, 429}
NO_STORE = {"Cache-Control": "no-store"}


class OperatorLogin:
    def __init__(self, access: OperatorAccess):
        self.access = access

    def register(self, router: Router) -> None:
        router.add("GET", "/drimbox/operator/authz", self.authz)
        router.add("GET", "/drimbox/operator/denied", self.denied)
        router.add("GET", LOGIN_PATH, self.login_page)
        router.add("POST", LOGIN_PATH, self.login)
        router.add("POST", LOGOUT_PATH, self.logout)
        # a GET must not change state: it only leads to the page, whose button posts
        router.add("GET", LOGOUT_PATH, lambda request: Response(303, b"", "text/plain", {"Location": LOGIN_PATH}))

    # --- nginx's subrequests ------------------------------------------------------------------------
    def authz(self, request: Request) -> Response:
        headers = request.headers
        decision = self.access.decide(headers.get("x-original-method", ""), headers.get("x-original-uri", "/"),
                                      headers)
        if decision.status == 200:
            return Response(200, b"", "text/plain", {"X-Drimbox-Operator": decision.operator})
        answer = {"X-Drimbox-Status": str(decision.status), "X-Drimbox-Reason": _header_text(decision.reason)}
        if decision.location:
            answer["X-Drimbox-Location"] = decision.location
        if decision.retry_after:
            answer["X-Drimbox-Retry-After"] = str(decision.retry_after)
        if decision.www_authenticate:
            answer["X-Drimbox-Www-Authenticate"] = decision.www_authenticate
        return Response(403, b"", "text/plain", answer)

    def denied(self, request: Request) -> Response:
        headers = request.headers
        try:
            status = int(headers.get("x-drimbox-status", "") or 403)
        except ValueError:
            status = 403
        if status not in DENIAL_STATUSES:
            status = 403
        location = headers.get("x-drimbox-location", "")
        if status == 303:
            return Response(303, b"", "text/plain",
                            {"Location": location if location.startswith(LOGIN_PATH + "?") else LOGIN_PATH, **NO_STORE})
        response = Response.json({"status": status, "error": headers.get("x-drimbox-reason", "") or "refused"},
                                 status, dict(NO_STORE))
        if status == 401 and headers.get("x-drimbox-www-authenticate"):
            response.headers["WWW-Authenticate"] = headers["x-drimbox-www-authenticate"]
        if status == 429:
            response.headers["Retry-After"] = headers.get("x-drimbox-retry-after", "") or "60"
        return response

    # --- the page ---------------------------------------------------------------------------------
    def login_page(self, request: Request) -> Response:
        user = self.access.sessions.user_for(session_token(request.headers))
        return _page(200, next_path=safe_next(request.query.get("next", "")), user=user)

    def login(self, request: Request) -> Response:
        form = request.form()
        user, next_path = form.get("user", "").strip(), safe_next(form.get("next", ""))
        if not user or not form.get("password"):
            return _page(400, next_path=next_path, error="missing", user_value=user)
        outcome, token = self.access.login(user, form.get("password", ""),
                                           request.headers.get(CLIENT_ADDR_HEADER, ""))
        if outcome.status == 429:
            # Orthanc cannot answer 429: nginx turns this 503 of the login route into one
            response = _page(503, next_path=next_path, error="locked", retry_after=outcome.retry_after,
                             user_value=user)
            response.headers["Retry-After"] = str(outcome.retry_after)
            return response
        if not outcome.ok:
            return _page(401, next_path=next_path, error="wrong", user_value=user)
        response = Response(303, b"", "text/plain", {"Location": next_path, **NO_STORE})
        response.cookies.append(self.access.sessions.cookie(token))
        return response

    def logout(self, request: Request) -> Response:
        self.access.logout(request.headers, request.headers.get(CLIENT_ADDR_HEADER, ""))
        response = Response(303, b"", "text/plain", {"Location": LOGIN_PATH, **NO_STORE})
        response.cookies.append(self.access.sessions.clearing_cookie())
        return response


def _page(status: int, **context) -> Response:
    body = _TEMPLATES.get_template("operator_login.html.j2").render(login_path=LOGIN_PATH, logout_path=LOGOUT_PATH,
                                                                  **context)
    return Response(status, body.encode(), "text/html; charset=utf-8", dict(NO_STORE))


def _header_text(text: str) -> str:
    return "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in text)[:300]
