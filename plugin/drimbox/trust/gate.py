"""The HTTP filter's decision: which requests may reach Orthanc at all. Deny by default.

nginx is the only way in from outside; it always overwrites ``X-Drimbox-Entry`` (``admin``, ``db`` or ``vi``:
which of its servers received the request) and, on the admin entry, ``X-Drimbox-Operator`` (the user it
authenticated). Orthanc 1.10 cannot bind its HTTP port to loopback (it refuses remote clients with
RemoteAccessAllowed false, but any local process can connect), so nginx proves itself first: it sets
``X-Drimbox-Proxy`` to a per-box secret on every request it proxies, and no entry header is believed without it.

- admin entry with an operator (set by nginx from the admin access decision, drimbox.trust.operator_access):
  Orthanc Explorer, Orthanc's REST API, the operator API; without one, only the login page and the decision;
- db entry: the peer decision route and the health check; DICOMweb (or the curated retrieve, for a study or
  series where Orthanc holds more than the KOS lists) only with a grant that the peer decision route issued
  for exactly that path (nginx copies it from the decision's answer);
- vi entry: the viewer routes; DICOMweb (or the curated retrieve, for metadata of a series holding IOCM-rejected
  instances) only with a grant issued for that viewer session's study;
- the box's own worker threads: a per-process secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from drimbox.trust.policy import CURATED_PREFIX

ENTRY_HEADER = "x-drimbox-entry"
OPERATOR_HEADER = "x-drimbox-operator"
GRANT_HEADER = "x-drimbox-grant"
INTERNAL_HEADER = "x-drimbox-internal"
PROXY_HEADER = "x-drimbox-proxy"

DB_ROUTES = ("/drimbox/peer/", "/drimbox/health")
VI_ROUTES = ("/drimbox/viewer/", "/drimbox/psc/", "/drimbox/open", "/drimbox/static/",
             "/drimbox/consumer/context")
ADMIN_PUBLIC_ROUTES = ("/drimbox/operator/login", "/drimbox/operator/logout", "/drimbox/operator/authz",
                       "/drimbox/operator/denied")
DICOMWEB_PREFIX = "/dicom-web/"
GRANTED_PREFIXES = (DICOMWEB_PREFIX, CURATED_PREFIX)


@dataclass(frozen=True)
class GateRequest:
    uri: str
    method: str  # GET, POST, PUT, DELETE
    headers: dict  # lower-case names


class Gate:
    def __init__(self, secret: bytes, internal_secret: str, proxy_secret: str = ""):
        self._secret = secret
        self._internal = internal_secret
        self._proxy = proxy_secret.encode()

    # --- grants ---------------------------------------------------------------------------------
    def grant(self, path: str, *, scope: str, ttl_seconds: float = 60.0, now: float | None = None) -> str:
        """A short-lived token allowing GET on ``path`` (an Orthanc URI) or, with a trailing ``*``, below it."""
        expires = int((now or time.time()) + ttl_seconds)
        return f"{scope}.{expires}.{self._sign(scope, expires, path)}.{path}"

    def _sign(self, scope: str, expires: int, path: str) -> str:
        message = f"{scope}|{expires}|{path}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:40]

    def grant_allows(self, grant: str, uri: str, *, scope: str, now: float | None = None) -> bool:
        try:
            grant_scope, expires_text, signature, path = grant.split(".", 3)
            expires = int(expires_text)
        except ValueError:
            return False
        if grant_scope != scope or expires < (now or time.time()):
            return False
        if not hmac.compare_digest(signature, self._sign(scope, expires, path)):
            return False
        if path.endswith("*"):
            return uri.startswith(path[:-1])
        return uri == path

    # --- the filter ----------------------------------------------------------------------------
    def from_nginx(self, headers: dict) -> bool:
        """The request carries nginx's secret: only then are its entry, operator and grant headers believed."""
        presented = headers.get(PROXY_HEADER, "")
        return bool(self._proxy and presented) and hmac.compare_digest(_bytes(presented), self._proxy)

    def allows(self, request: GateRequest) -> bool:
        headers = request.headers
        internal = headers.get(INTERNAL_HEADER, "")
        if internal and self._internal and hmac.compare_digest(_bytes(internal), _bytes(self._internal)):
            return True
        if not self.from_nginx(headers):
            return False
        entry = headers.get(ENTRY_HEADER, "")
        if entry == "admin":
            # nginx sets the operator only after drimbox.trust.operator_access allowed the request; without
            # one, only the login page and nginx's own decision subrequests
            return bool(headers.get(OPERATOR_HEADER)) or request.uri in ADMIN_PUBLIC_ROUTES
        if entry == "db":
            if request.uri.startswith(DB_ROUTES):
                return True
            return (request.method == "GET" and request.uri.startswith(GRANTED_PREFIXES)
                    and self.grant_allows(headers.get(GRANT_HEADER, ""), request.uri, scope="peer"))
        if entry == "vi":
            if request.uri.startswith(VI_ROUTES):
                return True
            return (request.method == "GET" and request.uri.startswith(GRANTED_PREFIXES)
                    and self.grant_allows(headers.get(GRANT_HEADER, ""), request.uri, scope="viewer"))
        return False


def _bytes(text: str) -> bytes:
    """Header text as bytes for a constant-time comparison (str comparison refuses non-ASCII text)."""
    return text.encode("utf-8", "surrogatepass")
