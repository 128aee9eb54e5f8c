"""The viewer session: a signed, expiring cookie scoped to ONE study, and the DICOMweb requests it allows.

Each opened study gets its own cookie (``drimbox_viewer_<digest of the UID>``), so two report links opened
in two tabs both work, and a UID typed into OHIF's URL finds no cookie for it. OHIF (3.13, ``dicomweb``
data source, lazy study loading) sends, for one study:

- ``/dicom-web/studies?StudyInstanceUID=<uid>&includefield=...`` (QIDO, also with ``limit``/``offset``/
  ``fuzzymatching``),
- ``/dicom-web/studies/<uid>/series...``, ``.../series/<s>/metadata``, ``.../instances/<i>/frames/<n>``,
  bulk data below ``/dicom-web/studies/<uid>/``.

Anything else (a QIDO without a single plain StudyInstanceUID, series- or instance-level QIDO at the root,
another method than GET) is refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, unquote, urlsplit

from drimbox.psc.session import SessionError, seal, unseal

VIEWER_PURPOSE = "viewer-session"
COOKIE_PREFIX = "drimbox_viewer_"
DICOMWEB_ROOT = "/dicom-web"
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
STUDY_QUERY_KEYS = {"studyinstanceuid", "0020000d"}
ALLOWED_STUDY_QUERY_KEYS = STUDY_QUERY_KEYS | {"includefield", "limit", "offset", "fuzzymatching"}


@dataclass(frozen=True)
class ViewerSession:
    study_uid: str
    kos_uid: str
    who: str  # "professional" | "patient"
    subject: str  # idNat, or the patient token's sub
    structure_id: str = ""


def cookie_name(study_uid: str) -> str:
    return COOKIE_PREFIX + hashlib.sha256(study_uid.encode()).hexdigest()[:16]


def seal_session(session: ViewerSession, secret: bytes, *, max_age: float) -> str:
    return seal({"study": session.study_uid, "kos": session.kos_uid, "who": session.who, "sub": session.subject,
                 "structure": session.structure_id}, secret, purpose=VIEWER_PURPOSE, max_age=max_age)


def open_session(value: str, secret: bytes, *, now: float | None = None) -> ViewerSession:
    payload = unseal(value, secret, purpose=VIEWER_PURPOSE, now=now)
    return ViewerSession(str(payload.get("study", "")), str(payload.get("kos", "")), str(payload.get("who", "")),
                         str(payload.get("sub", "")), str(payload.get("structure", "")))


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
class Target:
    """What a DICOMweb request designates: the study, and the Orthanc path a grant must cover."""

    study_uid: str
    orthanc_path: str


def dicomweb_target(original_uri: str) -> Target | None:
    """The study a viewer's DICOMweb request is about, or None when it is not a one-study request."""
    parts = urlsplit(original_uri)
    raw_path = parts.path
    if "%2f" in raw_path.lower() or "%5c" in raw_path.lower():
        return None
    path = unquote(raw_path)
    if not path.startswith(DICOMWEB_ROOT + "/"):
        return None
    segments = path[len(DICOMWEB_ROOT) + 1:].split("/")
    if any(s in ("", ".", "..") for s in segments[:-1]) or segments[-1] in (".", ".."):
        return None
    if segments[0] != "studies":
        return None
    if len(segments) == 1 or (len(segments) == 2 and segments[1] == ""):
        study = _study_of_query(parts.query)
        return Target(study, path) if study else None
    study = segments[1]
    if not UID_RE.match(study):
        return None
    return Target(study, path)


def _study_of_query(query: str) -> str | None:
    pairs = parse_qsl(query, keep_blank_values=True)
    studies = [value for key, value in pairs if key.lower() in STUDY_QUERY_KEYS]
    if len(studies) != 1 or not UID_RE.match(studies[0]):
        return None
    if any(key.lower() not in ALLOWED_STUDY_QUERY_KEYS for key, _ in pairs):
        return None
    return studies[0]


@dataclass(frozen=True)
class Decision:
    status: int  # 200, 401 or 403
    reason: str
    target: Target | None = None
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
    target = dicomweb_target(original_uri)
    if target is None:
        return Decision(403 if sessions else 401, "not a request about one study")
    session = sessions.get(cookie_name(target.study_uid))
    if session is not None and session.study_uid == target.study_uid:
        return Decision(200, "ok", target, session)
    if sessions:
        return Decision(403, "the viewer session is for another study", target)
    return Decision(401, "no valid viewer session" if not cookies else "viewer session expired", target)
