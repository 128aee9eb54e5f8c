"""The viewer session: a signed, expiring cookie scoped to ONE study, and the DICOMweb requests it allows.

Each opened study gets its own cookie (``drimbox_viewer_<digest of the UID>``), so two report links opened
in two tabs both work, and a UID typed into OHIF's URL finds no cookie for it. OHIF (3.13, ``dicomweb``
data source, lazy study loading) sends, for one study:

- ``/dicom-web/studies?StudyInstanceUID=<uid>&includefield=...`` (QIDO, also with ``limit``/``offset``/
  ``fuzzymatching``),
- ``/dicom-web/studies/<uid>/series...``, ``.../series/<s>/metadata``, ``.../instances/<i>/frames/<n>``,
  bulk data below ``/dicom-web/studies/<uid>/``.

Anything else (see drimbox.web.viewer_request, which rebuilds the URI Orthanc receives; another method
than GET) is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from drimbox.psc.session import SessionError, seal, unseal
from drimbox.web.viewer_request import NotUnderstood, ViewerRequest, parse_viewer_request

VIEWER_PURPOSE = "viewer-session"
COOKIE_PREFIX = "drimbox_viewer_"


@dataclass(frozen=True)
class ViewerSession:
    study_uid: str
    kos_uid: str
    who: str  # "professional" | "patient"
    subject: str  # idNat, or the patient token's sub
    structure_id: str = ""
    # "source": a study this box published (its manifest must still stand); "consumer": a study a consumer
    # context opened (a foreign study still in the cache, or the local PACS's own study of that patient)
    origin: str = "source"


def cookie_name(study_uid: str) -> str:
    return COOKIE_PREFIX + hashlib.sha256(study_uid.encode()).hexdigest()[:16]


def seal_session(session: ViewerSession, secret: bytes, *, max_age: float) -> str:
    return seal({"study": session.study_uid, "kos": session.kos_uid, "who": session.who, "sub": session.subject,
                 "structure": session.structure_id, "origin": session.origin},
                secret, purpose=VIEWER_PURPOSE, max_age=max_age)


def open_session(value: str, secret: bytes, *, now: float | None = None) -> ViewerSession:
    payload = unseal(value, secret, purpose=VIEWER_PURPOSE, now=now)
    return ViewerSession(str(payload.get("study", "")), str(payload.get("kos", "")), str(payload.get("who", "")),
                         str(payload.get("sub", "")), str(payload.get("structure", "")),
                         str(payload.get("origin", "source")))


def set_cookie(name: str, value: str, *, max_age: int, path: str = "/", same_site: str = "Strict") -> str:
    return f"{name}={value}; Max-Age={max_age}; Path={path}; Secure; HttpOnly; SameSite={same_site}"


def parse_cookies(header: str) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(header or "")
    except CookieError:
        # one malformed cookie from elsewhere must not hide ours: fall back to a plain split
        return {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in (header or "").split(";")) if k.strip()}
    return {key: morsel.value for key, morsel in jar.items()}


@dataclass(frozen=True)
class Decision:
    status: int  # 200, 401 or 403
    reason: str
    target: ViewerRequest | None = None
    session: ViewerSession | None = None


def decide(method: str, original_uri: str, cookie_header: str, secret: bytes, *, now: float | None = None) -> Decision:
    if method.upper() != "GET":
        return Decision(403, "only GET reaches DICOMweb from the viewer")
    cookies = {k: v for k, v in parse_cookies(cookie_header).items() if k.startswith(COOKIE_PREFIX)}
    sessions = {}
    for name, value in cookies.items():
        try:
            sessions[name] = open_session(value, secret, now=now)
        except SessionError:
            continue
    try:
        target = parse_viewer_request(original_uri)
    except NotUnderstood as refusal:
        return Decision(403 if sessions else 401, f"not a request the viewer gate understands: {refusal}")
    session = sessions.get(cookie_name(target.study_uid))
    if session is not None and session.study_uid == target.study_uid:
        return Decision(200, "ok", target, session)
    if sessions:
        return Decision(403, "the viewer session is for another study", target)
    return Decision(401, "no valid viewer session" if not cookies else "viewer session expired", target)
