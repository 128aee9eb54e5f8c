"""The viewer host's routes: the report's link, the PSC login, the viewer session and its DICOMweb decision.

vi entry (nginx lets these through, see drimbox.trust.gate):

- ``GET /drimbox/open?study=&accession=&report=[&token=]``: checks the link against the current manifest,
  authenticates the person (PSC for a professional, a signed access token for a patient), audits, sets the
  viewer session cookie (one study) and redirects to OHIF ``/viewer?StudyInstanceUIDs=<uid>`` (on the first
  key image when the study has a key image note). ``login_hint`` and ``prompt`` are passed on to PSC.
- ``GET /drimbox/psc/login?return=<path>``, ``GET /drimbox/psc/callback``, ``GET|POST /drimbox/psc/activity``.
- ``GET /drimbox/viewer/authz``: nginx's ``auth_request`` for ``/dicom-web/``: 200 + ``X-Drimbox-Grant`` for
  a request about the session's study; otherwise 403 with ``X-Drimbox-Status: 401|403`` (Orthanc plugins
  cannot send a plain 401; nginx turns it back into 401).

admin entry: ``GET /drimbox/studies/{uid}/viewer-link`` and ``POST /drimbox/studies/{uid}/patient-link``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import math
import secrets
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import quote, unquote_plus

from drimbox.audit.event import ENTRY_OPERATOR, ENTRY_VIEWER, AuditEvent
from drimbox.psc.errors import PscError
from drimbox.psc.login_flow import LOGIN_COOKIE_MAX_AGE, finish_login, start_login
from drimbox.psc.session import SessionError, UserSession, is_safe_return_url, open_user_session, seal_user_session
from drimbox.psc.token_store import MemoryTokenStore
from drimbox.trust.policy import CURATED_PREFIX, parse_resource
from drimbox.web import pages
from drimbox.web.http import Request, Response, Router
from drimbox.web.links import (
    ACCESSION_PARAMS,
    REPORT_PARAMS,
    STUDY_PARAMS,
    TOKEN_PARAMS,
    LinkRefused,
    LinkService,
    Published,
    check_link,
)
from drimbox.web.patient_tokens import PatientTokenVerifier, TokenRefused, load_verification_keys
from drimbox.web.settings import ViewerSettings
from drimbox.web.viewer_session import (
    ViewerSession,
    cookie_name,
    decide,
    parse_cookies,
    seal_session,
    set_cookie,
)

log = logging.getLogger("drimbox.viewer")

SECRET_FACT = "viewer_secret"
PSC_COOKIE = "drimbox_psc"
LOGIN_COOKIE = "drimbox_psc_login"
LOGIN_COOKIE_PATH = "/drimbox/psc/"
KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
GRANT_SECONDS = 60.0


class ViewerApi:
    def __init__(self, *, store, gate, psc, viewer_url: str, settings: ViewerSettings, links: LinkService,
                 rest=None, facts=None, foreign_study: Callable[[str], dict | None] | None = None,
                 clock=time.time):
        """``foreign_study``: the consumer cache's record of a study (None: not a foreign study)."""
        self.store = store
        self.foreign_study = foreign_study
        self.facts = facts  # drimbox.trust.peer_facts.BoxPeerFacts: manifests and what Orthanc holds
        self.gate = gate
        self.psc = psc
        self.viewer_url = viewer_url.rstrip("/")
        self.settings = settings
        self.links = links
        self.rest = rest
        self.clock = clock
        self.secret = self._secret()
        self.tokens = MemoryTokenStore(clock=clock)
        keys = load_verification_keys(settings.patient_token_keys) if settings.patient_token_keys else []
        self.verifier = PatientTokenVerifier(
            audience=settings.patient_token_audience or self.viewer_url, issuer=settings.patient_token_issuer,
            keys=keys, local=links.signer, clock_skew_seconds=settings.clock_skew_seconds)
        self._key_images: dict[str, tuple[str, str] | None] = {}
        self._lock = threading.Lock()

    def _secret(self) -> bytes:
        stored = self.store.get_fact(SECRET_FACT)
        if stored is None:
            stored = self.store.first_fact(SECRET_FACT, secrets.token_hex(32))
        return bytes.fromhex(stored)

    def register(self, router: Router) -> None:
        router.add("GET", "/drimbox/open", self.open_link)
        router.add("GET", "/drimbox/psc/login", self.psc_login)
        router.add("GET", "/drimbox/psc/callback", self.psc_callback)
        router.add("GET", "/drimbox/psc/activity", self.activity_page)
        router.add("POST", "/drimbox/psc/activity", self.choose_activity)
        router.add("GET", "/drimbox/viewer/authz", self.authz)
        router.add("GET", "/drimbox/studies/{study_uid}/viewer-link", self.get_viewer_link)
        router.add("POST", "/drimbox/studies/{study_uid}/patient-link", self.post_patient_link)

    # --- the report's link ------------------------------------------------------------------------
    def open_link(self, request: Request) -> Response:
        query = _decoded(request.query)
        study, accession, report = (_first(query, names) for names in (STUDY_PARAMS, ACCESSION_PARAMS, REPORT_PARAMS))
        token = _first(query, TOKEN_PARAMS)
        try:
            item = check_link(self.store, study, accession, report)
        except LinkRefused as refusal:
            self._audit(request, "open-viewer", refusal.status, reason=f"link refused: {refusal}", study_uid=study)
            return pages.refused(refusal.reason, refusal.status)
        if token:
            try:
                grant = self.verifier.verify(token, study_uid=item.study_uid, accession=accession,
                                             report_id=report, now=self.clock())
            except TokenRefused as refusal:
                self._audit(request, "open-viewer", 403, reason=f"patient token refused: {refusal}",
                            study_uid=item.study_uid, kos_uid=item.kos_uid)
                return pages.refused(refusal.reason, 403)
            session = ViewerSession(item.study_uid, item.kos_uid, "patient", grant.subject)
            return self._open_viewer(request, item, session, reason=f"patient {grant.subject} ({grant.issuer})")
        user = self.user(request)
        if user is None:
            return self._login(request, _request_url(request), query.get("login_hint"), query.get("prompt"))
        choice = user.activity
        if choice is None:
            if not user.professional.activity_choices():
                self._audit(request, "open-viewer", 403, reason="professional without activity",
                            professional_id=user.professional.id_nat, study_uid=item.study_uid)
                return pages.refused("no_activity", 403)
            return Response.redirect("/drimbox/psc/activity?return=" + quote(_request_url(request), safe=""))
        session = ViewerSession(item.study_uid, item.kos_uid, "professional", user.professional.id_nat,
                                choice.activity.structure_id)
        return self._open_viewer(request, item, session, reason="professional (PSC)",
                                 professional_id=user.professional.id_nat, structure_id=choice.activity.structure_id)

    def _open_viewer(self, request: Request, item: Published, session: ViewerSession, *, reason: str,
                     professional_id: str = "", structure_id: str = "") -> Response:
        max_age = int(self.settings.session_minutes * 60)
        value = seal_session(session, self.secret, max_age=max_age)
        self._audit(request, "open-viewer", 303, reason=reason, professional_id=professional_id,
                    structure_id=structure_id, study_uid=item.study_uid, kos_uid=item.kos_uid)
        response = Response.redirect(self.ohif_url(item))
        response.headers.update(pages.NO_STORE)
        response.cookies.append(set_cookie(cookie_name(item.study_uid), value, max_age=max_age))
        return response

    def ohif_url(self, item: Published) -> str:
        url = "/viewer?StudyInstanceUIDs=" + quote(item.study_uid, safe="")
        key = self.key_image(item) if self.settings.key_images_first else None
        if key:
            url += "&initialSeriesInstanceUID=" + quote(key[0], safe="") + \
                   "&initialSOPInstanceUID=" + quote(key[1], safe="")
        return url

    def key_image(self, item: Published) -> tuple[str, str] | None:
        """(series, SOP instance) of the first image of the study's first key image note, if any."""
        with self._lock:
            if item.kos_uid in self._key_images:
                return self._key_images[item.kos_uid]
        found = None
        try:
            found = self._find_key_image(item)
        except Exception:  # an unreadable note must not stop the viewer from opening
            log.exception("cannot read the key image note of study %s", item.study_uid)
        with self._lock:
            self._key_images[item.kos_uid] = found
        return found

    def _find_key_image(self, item: Published) -> tuple[str, str] | None:
        if self.rest is None:
            return None
        import pydicom

        from drimbox.kos.classify import classify_key_object

        series_of = {sop: series for series, instances in item.content.items() for sop in instances}
        notes = [sop for series, instances in item.content.items() for sop, sop_class in instances.items()
                 if sop_class == KOS_SOP_CLASS]
        for note in notes:
            matches = [m for m in self.rest.post_json("/tools/lookup", note) if m.get("Type") == "Instance"]
            if not matches:
                continue
            ds = pydicom.dcmread(io.BytesIO(self.rest.get_bytes(f"/instances/{matches[0]['ID']}/file")), force=True)
            if classify_key_object(ds) != "key_images":
                continue
            for content in ds.get("ContentSequence", []):
                for ref in content.get("ReferencedSOPSequence", []):
                    sop = str(ref.get("ReferencedSOPInstanceUID", ""))
                    if sop in series_of and item.content[series_of[sop]].get(sop) != KOS_SOP_CLASS:
                        return series_of[sop], sop
        return None

    # --- PSC login -----------------------------------------------------------------------------------
    def user(self, request: Request) -> UserSession | None:
        """The professional of this browser's PSC session (the consumer's pages share it), or None."""
        value = parse_cookies(request.headers.get("cookie", "")).get(PSC_COOKIE)
        if not value:
            return None
        try:
            return open_user_session(value, self.secret, now=self.clock())
        except SessionError:
            return None

    def _login(self, request: Request, return_url: str, login_hint: str | None = None,
               prompt: str | None = None) -> Response:
        try:
            start = start_login(self.psc, self.secret, return_url, login_hint=login_hint or None,
                                prompt=prompt if prompt in ("none", "login", "consent") else None, now=self.clock())
        except PscError as error:
            log.error("cannot start a PSC login: %s", error)
            self._audit(request, "psc-login", 502, reason=f"PSC unavailable: {error}")
            return pages.refused("login_failed", 502)
        response = Response.redirect(start.redirect_url)
        response.headers.update(pages.NO_STORE)
        response.cookies.append(set_cookie(LOGIN_COOKIE, start.login_cookie, max_age=LOGIN_COOKIE_MAX_AGE,
                                           path=LOGIN_COOKIE_PATH, same_site="Lax"))
        return response

    def psc_login(self, request: Request) -> Response:
        query = _decoded(request.query)
        return_url = query.get("return", "/")
        return self._login(request, return_url if is_safe_return_url(return_url) else "/",
                           query.get("login_hint"), query.get("prompt"))

    def psc_callback(self, request: Request) -> Response:
        query = _decoded(request.query)
        login_cookie = parse_cookies(request.headers.get("cookie", "")).get(LOGIN_COOKIE, "")
        try:
            result = finish_login(self.psc, self.secret, login_cookie, query, now=self.clock())
        except PscError as error:
            reason = "access_denied" if error.reason == "access_denied" else "login_failed"
            self._audit(request, "psc-login", 403, reason=f"{error.reason}: {error}")
            return pages.refused(reason, 403, error.reason)
        session = result.session
        self.tokens.put(session.session_id, result.tokens)
        professional = session.professional
        self._audit(request, "psc-login", 200, reason="logged in", professional_id=professional.id_nat)
        target = result.return_url
        if session.activity is None and professional.activity_choices():
            target = "/drimbox/psc/activity?return=" + quote(target, safe="")
        response = Response.redirect(target)
        response.headers.update(pages.NO_STORE)
        response.cookies.append(self._psc_cookie(session))
        # the login state has served: clear it
        response.cookies.append(set_cookie(LOGIN_COOKIE, "", max_age=0, path=LOGIN_COOKIE_PATH, same_site="Lax"))
        return response

    def _psc_cookie(self, session: UserSession) -> str:
        max_age = max(int(session.expires_at - self.clock()), 1)
        return set_cookie(PSC_COOKIE, seal_user_session(session, self.secret, now=self.clock()), max_age=max_age,
                          path="/drimbox/", same_site="Lax")

    def _csrf(self, session: UserSession) -> str:
        return hmac.new(self.secret, f"activity|{session.session_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def activity_page(self, request: Request) -> Response:
        return_url = _decoded(request.query).get("return", "/")
        if not is_safe_return_url(return_url):
            return_url = "/"
        user = self.user(request)
        if user is None:
            return self._login(request, "/drimbox/psc/activity?return=" + quote(return_url, safe=""))
        choices = [(c.key, c.label) for c in user.professional.activity_choices()]
        if not choices:
            return pages.refused("no_activity", 403)
        return pages.activity_choice(user.professional.display_name, choices, return_url, self._csrf(user))

    def choose_activity(self, request: Request) -> Response:
        form = request.form()
        user = self.user(request)
        if user is None:
            return pages.refused("login_failed", 401, "no PSC session")
        if not hmac.compare_digest(form.get("csrf", ""), self._csrf(user)):
            return pages.refused("login_failed", 403, "bad form token")
        try:
            user = user.with_activity(form.get("activity", ""))
        except KeyError:
            return pages.refused("no_activity", 400, "unknown activity")
        return_url = form.get("return", "/")
        response = Response.redirect(return_url if is_safe_return_url(return_url) else "/")
        response.headers.update(pages.NO_STORE)
        response.cookies.append(self._psc_cookie(user))
        return response

    # --- nginx's question for each DICOMweb request ------------------------------------------------------
    def authz(self, request: Request) -> Response:
        headers = request.headers
        decision = decide(headers.get("x-original-method", "GET"), headers.get("x-original-uri", ""),
                          headers.get("cookie", ""), self.secret, now=self.clock())
        if decision.status == 200 and decision.target is not None and not self._manifest_stands(decision.session):
            reason = "the report of this viewer session was withdrawn"
            self._audit(request, "viewer-dicomweb", 403, reason=reason, study_uid=decision.target.study_uid)
            return Response(403, reason.encode(), "text/plain",
                            {"X-Drimbox-Status": "403", "X-Drimbox-Reason": reason})
        if decision.status == 200 and decision.target is not None:
            rejected, curated = self._leave_out_rejected(decision)
            if rejected:
                reason = "instance rejected (IOCM)"
                self._audit(request, "viewer-dicomweb", 403, reason=reason, study_uid=decision.target.study_uid)
                return Response(403, reason.encode(), "text/plain",
                                {"X-Drimbox-Status": "403", "X-Drimbox-Reason": reason})
            # nginx proxies to X-Drimbox-Target only: the URI rebuilt from what the decision parsed
            grant = self.gate.grant(curated or decision.target.path, scope="viewer", ttl_seconds=GRANT_SECONDS)
            return Response(200, b"", "text/plain", {"X-Drimbox-Grant": grant, "Cache-Control": "no-store",
                                                     "X-Drimbox-Target": curated or decision.target.uri})
        if decision.status == 403:
            self._audit(request, "viewer-dicomweb", 403, reason=decision.reason,
                        study_uid=decision.target.study_uid if decision.target else "")
        return Response(403, decision.reason.encode(), "text/plain",
                        {"X-Drimbox-Status": str(decision.status), "X-Drimbox-Reason": decision.reason})

    def _manifest_stands(self, session: ViewerSession | None) -> bool:
        """A session lives for minutes: its manifest is checked again on every request (peers get 404 at once
        for a withdrawn one, the viewer must not keep showing it)."""
        if session is None:
            return False
        if session.origin == "consumer":
            return self._consumer_study_stands(session)
        if self.facts is None:
            return True
        manifest = self.facts.manifest(session.kos_uid)
        return manifest is not None and not manifest.withdrawn and manifest.study_uid == session.study_uid

    def _consumer_study_stands(self, session: ViewerSession) -> bool:
        """A consumer context's study: the foreign study still cached (or imported) under the session's KOS, or,
        for the local PACS's own study of the patient (no KOS), a study that is not a foreign one."""
        record = self.foreign_study(session.study_uid) if self.foreign_study is not None else None
        if not session.kos_uid:
            return record is None
        return record is not None and record.get("state") != "purged" and record.get("kos_uid") == session.kos_uid

    def _leave_out_rejected(self, decision) -> tuple[bool, str]:
        """IOCM-rejected instances that Orthanc still keeps stay out of the viewer: (refuse this request, or the
        curated retrieve to send it to instead of Orthanc's DICOMweb; '' when Orthanc's answer is fine)."""
        if self.facts is None:
            return False, ""
        try:
            resource = parse_resource(decision.target.path.removeprefix("/dicom-web/"))
        except Exception:  # QIDO, bulk data...: not about instances one by one
            return False, ""
        manifest = self.facts.manifest(decision.session.kos_uid)
        if manifest is None or not manifest.rejected_in_study:
            return False, ""
        if resource.instance:
            return resource.instance in manifest.rejected_in_study, ""
        stored = self.facts.stored_instance_uids(resource.study, resource.series or None)
        if manifest.rejected_in_study.isdisjoint(stored):
            return False, ""
        return False, f"{CURATED_PREFIX}{manifest.kos_uid}/{resource.path}"

    # --- operator (admin entry) -------------------------------------------------------------------------
    def get_viewer_link(self, request: Request) -> Response:
        if request.headers.get("x-drimbox-entry") in ("vi", "db"):
            return Response.error(403, "operator resource")
        study_uid = request.params["study_uid"]
        link = self.links.viewer_link(study_uid)
        if link is None:
            return Response.error(404, f"no current manifest for study {study_uid}: no viewer link")
        return Response.json(link)

    def post_patient_link(self, request: Request) -> Response:
        if request.headers.get("x-drimbox-entry") in ("vi", "db"):
            return Response.error(403, "operator resource")
        study_uid = request.params["study_uid"]
        try:
            body = request.json() if request.body.strip() else {}
            subject = str(body.get("subject") or "patient")
            hours = float(body["hours"]) if body.get("hours") is not None else None
            if hours is not None and not math.isfinite(hours):
                raise ValueError(f"hours must be a finite number, got {hours}")
        except (ValueError, TypeError, AttributeError) as error:
            return Response.error(400, f"body must be JSON {{\"subject\": str, \"hours\": number}}: {error}")
        try:
            link = self.links.patient_link(study_uid, subject=subject, hours=hours, now=self.clock())
        except PermissionError as error:
            return Response.error(403, str(error))
        if link is None:
            return Response.error(404, f"no current manifest for study {study_uid}: no patient link")
        self._audit(request, "issue-patient-link", 200, reason=f"for {subject}", study_uid=study_uid,
                    entry_point=ENTRY_OPERATOR, operator=request.headers.get("x-drimbox-operator", ""))
        return Response.json(link)

    # --- audit ------------------------------------------------------------------------------------------
    def _audit(self, request: Request, action: str, status: int, *, entry_point: str = ENTRY_VIEWER,
               **fields: str | None) -> None:
        texts: dict[str, Any] = {k: v or "" for k, v in fields.items()}
        try:
            event = AuditEvent(when=datetime.fromtimestamp(self.clock(), timezone.utc), entry_point=entry_point,
                               action=action, outcome_status=status,
                               request_id=request.headers.get("x-request-id", ""),
                               **texts)
            self.store.add_audit(event.to_row())
        except Exception:
            log.exception("cannot record the audit event %s", action)


def _decoded(query: dict) -> dict[str, str]:
    """Orthanc hands GET arguments over still URL-encoded."""
    return {unquote_plus(k): unquote_plus(v) for k, v in (query or {}).items()}


def _first(query: dict[str, str], names) -> str:
    for name in names:
        if query.get(name):
            return query[name].strip()
    return ""


def _request_url(request: Request) -> str:
    """The path and (still encoded) query of this request, to come back to after login."""
    dropped = {"login_hint", "prompt"}
    query = "&".join(f"{k}={v}" for k, v in request.query.items() if k not in dropped)
    return request.path + ("?" + query if query else "")
