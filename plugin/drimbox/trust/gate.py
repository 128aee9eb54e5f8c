"""The HTTP filter's decision: which requests may reach Orthanc at all. Deny by default.

nginx is the only way in from outside; it always overwrites ``X-Drimbox-Entry`` (``admin``, ``db`` or ``vi``:
which of its servers received the request) and, on the admin entry, ``X-Drimbox-Operator`` (the user it
authenticated). Orthanc listens on loopback only, so those headers cannot be forged from outside.

- admin entry with an authenticated operator: Orthanc Explorer, Orthanc's REST API, the operator API;
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

DB_ROUTES = ("/drimbox/peer/", "/drimbox/health")
VI_ROUTES = ("/drimbox/viewer/", "/drimbox/psc/", "/drimbox/open", "/drimbox/static/", "/drimbox/consumer/context")
DICOMWEB_PREFIX = "/dicom-web/"
GRANTED_PREFIXES = (DICOMWEB_PREFIX, CURATED_PREFIX)


@dataclass(frozen=True)
class GateRequest:
    uri: str
    method: str  # GET, POST, PUT, DELETE
    headers: dict  # lower-case names


class Gate:
    def __init__(self, secret: bytes, internal_secret: str):
        self._secret = secret
        self._internal = internal_secret

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
    def allows(self, request: GateRequest) -> bool:
        headers = request.headers
        internal = headers.get(INTERNAL_HEADER, "")
        if internal and self._internal and hmac.compare_digest(internal, self._internal):
            return True
        entry = headers.get(ENTRY_HEADER, "")
        if entry == "admin":
            return bool(headers.get(OPERATOR_HEADER))
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
