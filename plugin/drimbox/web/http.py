"""Framework-free HTTP request/response records and a small router for the box's own routes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # e.g. /drimbox/studies/1.2.3
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)  # filled by the router

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", errors="replace"), keep_blank_values=True))


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # A multipart/related answer streamed part by part (each of ``content_type``) instead of ``body``.
    parts: Iterable[bytes] | None = None
    # Set-Cookie values (``name=value; attributes``), one header each; ``headers`` can hold only one.
    cookies: list[str] = field(default_factory=list)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict | None = None) -> "Response":
        return cls(status, json.dumps(data, indent=1, default=str).encode(), "application/json", dict(headers or {}))

    @classmethod
    def error(cls, status: int, message: str, **extra: Any) -> "Response":
        return cls.json({"status": status, "error": message, **extra}, status)

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> "Response":
        return cls(status, b"", "text/plain", {"Location": location})


Handler = Callable[[Request], Response]


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self._routes.append((method, regex, handler))

    def dispatch(self, request: Request) -> Response:
        allowed = []
        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if not match:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            routed = Request(request.method, request.path, request.query, request.headers, request.body,
                             match.groupdict())
            return handler(routed)
        if allowed:
            methods = sorted(set(allowed))
            response = Response.error(405, f"{request.method} is not allowed here", allowed=methods)
            response.headers["Allow"] = ", ".join(methods)
            return response
        return Response.error(404, f"no such resource: {request.path}")
