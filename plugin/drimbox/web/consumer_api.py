"""The consumer's routes: the appel contextuel and the pages of a working context.

vi entry (let through by drimbox.trust.gate's ``/drimbox/consumer/context`` prefix):

- ``POST /drimbox/consumer/context``: the appel contextuel (form-urlencoded, UTF-8); 400 with a page naming the
  unknown, repeated or empty parameter, otherwise a new context bound to this browser and 303 to its page.
- ``GET /drimbox/consumer/context/{id}``: PSC login first when needed (the viewer's login flow, which returns
  here), then the activity choice, the access reason, the DMP existence test and the imaging history.
- ``POST /drimbox/consumer/context/{id}/activity`` and ``.../reason``: the two choices.

- ``GET /drimbox/consumer/context/{id}/exams/{kos}``: opens an exam of the history (KOS by ITI-43, whitelist
  check, series moved by Orthanc's DICOMweb client), shows progress, then sets the viewer session for the study.

admin entry: ``GET /drimbox/consumer/statistics.csv?day=YYYY-MM-DD`` (or ``from``/``to``): the national lines;
``GET /drimbox/consumer/cache``: the foreign studies held.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_plus, urlencode

from drimbox.consumer import dmp_access
from drimbox.consumer import report as report_of
from drimbox.consumer.audit import ConsumerAudit
from drimbox.consumer.appel import MANDATORY, OPTIONAL, AppelContextuel, AppelRefused, parse_appel
from drimbox.consumer.fetch import OrthancFetcher
from drimbox.consumer.local_studies import LocalStudy, local_studies
from drimbox.consumer.importing import ImportRequest, StudyImporter
from drimbox.consumer.purge import CachePurger
from drimbox.consumer.opening import ExamOpener, OpenRequest
from drimbox.consumer.context import BINDING_COOKIE, CONTEXT_ID_RE, ConsumerContext, binding_digest, new_binding
from drimbox.consumer.context import new_context_id
from drimbox.consumer.history import ExamRow, HistoryFilter, choices, history, manual_row, with_manual_rows
from drimbox.consumer.reasons import ConsumerReason, parse_reason
from drimbox.consumer.settings import ConsumerSettings
from drimbox.consumer.source_tls import SourceCheck, check_source
from drimbox.consumer.statistics import ERROR, SUCCESS, day_bounds, to_csv
from drimbox.dmp.client import tls_context
from drimbox.dmp.errors import DmpRejected, DmpUnavailable
from drimbox.psc.model import ActivityChoice
from drimbox.psc.session import UserSession
from drimbox.store.consumer import ConsumerStore, RetrievalStore
from drimbox.web import consumer_pages as pages
from drimbox.kos.reader import read_manifest
from drimbox.pacs.rest import OrthancRestError
from drimbox.web.http import Request, Response, Router
from drimbox.web.multipart_form import parse_form_data
from drimbox.web.viewer_session import ViewerSession, cookie_name, parse_cookies, seal_session, set_cookie

if TYPE_CHECKING:
    from drimbox.config import Settings
    from drimbox.pacs.rest import OrthancRest
    from drimbox.store import Store
    from drimbox.trust.whitelist import WhitelistKeeper
    from drimbox.web.viewer_api import ViewerApi

log = logging.getLogger("drimbox.consumer")

PREFIX = "/drimbox/consumer/context"
STATISTICS_MAX_DAYS = 366
MAX_KOS_FORM = 16 * 1024 * 1024  # a manifest of tens of thousands of instances stays far below


class ConsumerApi:
    def __init__(self, *, store, contexts: ConsumerStore, session_secret: bytes, settings: ConsumerSettings,
                 audit: ConsumerAudit, dmp=None, retrievals: RetrievalStore | None = None,
                 opener: ExamOpener | None = None, importer: StudyImporter | None = None,
                 purger: CachePurger | None = None,
                 find_local: Callable[[AppelContextuel], list[LocalStudy]] | None = None,
                 current_user: Callable[[Request], UserSession | None] = lambda request: None,
                 tokens=None, viewer_minutes: int = 30, clock: Callable[[], float] = time.time):
        """``dmp`` (drimbox.dmp.client.DmpClient) and ``opener`` None: the box is not connected to the DMP;
        ``purger``: the background purge of the cache, run by the box; ``find_local``: the local PACS's own studies
        of the appel's patient (PatientID + PatientIDIssuer), for comparison."""
        self.store = store
        self.contexts = contexts
        self.secret = session_secret  # the viewer's: the PSC session and viewer cookies are sealed with it
        self.settings = settings
        self.audit = audit
        self.dmp = dmp
        self.retrievals = retrievals
        self.opener = opener
        self.importer = importer
        self.purger = purger
        self.find_local = find_local
        self.current_user = current_user  # the viewer's PSC session (drimbox.web.viewer_api.ViewerApi.user)
        self.tokens = tokens  # the viewer's server-side PSC tokens (drimbox.psc.token_store), by session id
        self.viewer_minutes = viewer_minutes
        self.clock = clock

    def register(self, router: Router) -> None:
        router.add("POST", PREFIX, self.post_context)
        router.add("GET", PREFIX, self.launch_page)
        router.add("GET", PREFIX + "/{context_id}", self.context_page)
        router.add("POST", PREFIX + "/{context_id}/activity", self.post_activity)
        router.add("POST", PREFIX + "/{context_id}/reason", self.post_reason)
        router.add("GET", PREFIX + "/{context_id}/exams/{kos_uid}", self.exam_page)
        router.add("POST", PREFIX + "/{context_id}/exams/{kos_uid}/import", self.post_import)
        router.add("GET", PREFIX + "/{context_id}/kos", self.kos_page)
        router.add("GET", PREFIX + "/{context_id}/exams/{kos_uid}/report", self.report_pdf)
        router.add("POST", PREFIX + "/{context_id}/kos", self.post_kos)
        router.add("GET", "/drimbox/consumer/statistics.csv", self.statistics_csv)
        router.add("GET", "/drimbox/consumer/cache", self.cache)

    # --- the appel contextuel -----------------------------------------------------------------------------
    def post_context(self, request: Request) -> Response:
        lang = pages.lang_of({}, request.headers.get("accept-language", ""))
        try:
            appel = parse_appel(request.body, request.headers.get("content-type", ""))
        except AppelRefused as refused:
            self.contexts.add_statistic(ERROR, str(refused))
            self._audit(request, "appel-contextuel", 400, reason=f"refused: {refused}")
            return pages.message("appel", refused.problem, 400, lang=lang, page_url=PREFIX,
                                 parameter=refused.parameter)
        binding = parse_cookies(request.headers.get("cookie", "")).get(BINDING_COOKIE, "")
        if not CONTEXT_ID_RE.match(binding):
            binding = new_binding()
        now = self.clock()
        lifetime = self.settings.context_minutes * 60
        context = ConsumerContext(new_context_id(), binding_digest(binding), now, now + lifetime, appel)
        self.contexts.add_context(context)
        self.contexts.add_statistic(SUCCESS)
        self._audit(request, "appel-contextuel", 303, patient_id=appel.ins, reason="context opened")
        response = Response.redirect(f"{PREFIX}/{context.context_id}")
        response.headers.update(pages.NO_STORE)
        # Lax: the RIS's POST comes from another site and the 303 that follows must still carry the binding
        response.cookies.append(set_cookie(BINDING_COOKIE, binding, max_age=int(lifetime),
                                           path="/drimbox/consumer/", same_site="Lax"))
        return response

    def launch_page(self, request: Request) -> Response:
        """The demo's test launch page: a plain form, like a RIS's, posting the appel contextuel to this box.

        Query parameters named like the appel's prefill the fields (a demo prints such links per patient).
        """
        lang = self._lang(request)
        if not self.settings.launch_page:
            return Response.error(404, "no launch page on this box (DRIMbox.Consumer.LaunchPage)")
        query = _decoded(request.query)
        fields = [(name, query.get(name, ""), True) for name in MANDATORY] + [
            (name, query.get(name, ""), False) for name in OPTIONAL]
        return pages.render("consumer_launch.html.j2", title_key="launch_title", page_url=PREFIX, lang=lang,
                            action=PREFIX, fields=fields)

    # --- the context's page ----------------------------------------------------------------------------------
    def _context(self, request: Request) -> tuple[ConsumerContext | None, Response | None]:
        lang = self._lang(request)
        page_url = request.path
        context_id = request.params.get("context_id", "")
        context = self.contexts.get_context(context_id) if CONTEXT_ID_RE.match(context_id) else None
        binding = parse_cookies(request.headers.get("cookie", "")).get(BINDING_COOKIE, "")
        if context is None or not hmac.compare_digest(context.binding_digest, binding_digest(binding)):
            return None, pages.message("context", "unknown", 404, lang=lang, page_url=page_url)
        if not context.is_bound_to(binding, self.clock()):
            return None, pages.message("context", "expired", 410, lang=lang, page_url=page_url)
        return context, None

    def context_page(self, request: Request) -> Response:
        context, refusal = self._context(request)
        if context is None:
            return refusal  # type: ignore[return-value]
        lang = self._lang(request)
        page_url = f"{PREFIX}/{context.context_id}"
        user = self.current_user(request)
        if user is None:  # the viewer's PSC login, which comes back to this page
            return Response.redirect("/drimbox/psc/login?return=" + quote(page_url, safe=""))
        common: dict[str, Any] = {"lang": lang, "page_url": page_url, "appel": context.appel,
                                  "show_ins": self.settings.show_ins_on_demand}
        if context.professional_id and context.professional_id != user.professional.id_nat:
            return pages.message("context", "other_professional", 403, **common)
        choice = self._activity(context, user)
        if choice is None:
            options = user.professional.activity_choices()
            if not options:
                return pages.message("context", "no_activity", 403, **common)
            preselected = self._preselected(context, options)
            session_choice = user.activity
            if len(options) == 1:
                choice = options[0]
            elif session_choice is not None and preselected in ("", session_choice.key):
                choice = session_choice  # picked at login, and Situation does not say otherwise
            else:
                return pages.render("consumer_activity.html.j2", title_key="activity",
                                    action=page_url + "/activity", csrf=self._csrf(context, user),
                                    choices=[(c.key, c.label) for c in options], preselected=preselected,
                                    **common)
            context = self._take(context, user, choice)
        reason = context.access_reason
        if reason is None:
            texts = pages.TEXTS[lang]["reasons"]
            return pages.render("consumer_reason.html.j2", title_key="reason", action=page_url + "/reason",
                                csrf=self._csrf(context, user), reasons=[(r.value, texts[r.value]) for r in
                                                                          ConsumerReason], problem="", **common)
        return self._history(request, context, user, choice, reason, common)

    def _activity(self, context: ConsumerContext, user: UserSession) -> ActivityChoice | None:
        if not context.activity_key:
            return None
        try:
            return user.professional.activity_choice(context.activity_key)
        except KeyError:
            return None

    def _preselected(self, context: ConsumerContext, options: list[ActivityChoice]) -> str:
        """The activity whose structure is the appel's ``Situation`` ('' when none or several match)."""
        situation = context.appel.situation
        matching = [c.key for c in options if situation and c.activity.structure_id == situation]
        return matching[0] if len(matching) == 1 else ""

    def _take(self, context: ConsumerContext, user: UserSession, choice: ActivityChoice) -> ConsumerContext:
        taken = context.with_activity(user.professional.id_nat, choice.key, choice.activity.structure_id)
        self.contexts.save_choices(taken)
        return taken

    def _csrf(self, context: ConsumerContext, user: UserSession) -> str:
        message = f"consumer|{context.context_id}|{user.session_id}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]

    def _posted(self, request: Request) -> tuple[ConsumerContext | None, UserSession | None, dict, Response | None]:
        context, refusal = self._context(request)
        if context is None:
            return None, None, {}, refusal
        page_url = f"{PREFIX}/{context.context_id}"
        user = self.current_user(request)
        if user is None:
            return None, None, {}, Response.redirect("/drimbox/psc/login?return=" + quote(page_url, safe=""))
        form = request.form()
        lang = self._lang(request)
        if not hmac.compare_digest(form.get("csrf", ""), self._csrf(context, user)) or (
                context.professional_id and context.professional_id != user.professional.id_nat):
            return None, None, {}, pages.message("context", "bad_form", 403, lang=lang, page_url=page_url)
        return context, user, form, None

    def post_activity(self, request: Request) -> Response:
        context, user, form, refusal = self._posted(request)
        if context is None or user is None:
            return refusal  # type: ignore[return-value]
        try:
            choice = user.professional.activity_choice(form.get("activity", ""))
        except KeyError:
            return pages.message("context", "bad_form", 400, lang=self._lang(request), page_url=request.path)
        self._take(context, user, choice)
        return self._back(context)

    def post_reason(self, request: Request) -> Response:
        context, user, form, refusal = self._posted(request)
        if context is None or user is None:
            return refusal  # type: ignore[return-value]
        lang = self._lang(request)
        page_url = f"{PREFIX}/{context.context_id}"
        try:
            reason, text = parse_reason(form.get("reason", ""), form.get("reason_text", ""))
        except ValueError:
            texts = pages.TEXTS[lang]
            return pages.render("consumer_reason.html.j2", title_key="reason", page_url=page_url, lang=lang,
                                status=400, action=page_url + "/reason", csrf=self._csrf(context, user),
                                reasons=[(r.value, texts["reasons"][r.value]) for r in ConsumerReason],
                                problem=texts["reason_text"], appel=context.appel,
                                show_ins=self.settings.show_ins_on_demand)
        chosen = context.with_reason(reason, text)
        self.contexts.save_choices(chosen)
        self._audit(request, "consumer-access-reason", 200, professional_id=user.professional.id_nat,
                    structure_id=context.structure_id, patient_id=context.appel.ins,
                    purpose=reason.purpose_of_use + (f": {text}" if text else ""), reason=reason.value)
        return self._back(context)

    def _back(self, context: ConsumerContext) -> Response:
        response = Response.redirect(f"{PREFIX}/{context.context_id}")
        response.headers.update(pages.NO_STORE)
        return response

    # --- the DMP and the history --------------------------------------------------------------------------
    def _history(self, request: Request, context: ConsumerContext, user: UserSession, choice: ActivityChoice,
                 reason: ConsumerReason, common: dict[str, Any]) -> Response:
        query = _decoded(request.query)
        rows = None if query.get("refresh") else self.contexts.history(context.context_id)
        who = {"professional_id": user.professional.id_nat, "structure_id": choice.activity.structure_id,
               "patient_id": context.appel.ins,
               "purpose": reason.purpose_of_use + (f": {context.reason_text}" if context.reason_text else "")}
        if rows is None:
            if self.dmp is None:
                return pages.message("dmp", "disabled", 503, title_key="dmp_title", **common)
            actor = dmp_access.actor(user.professional, choice, reason)
            patient = dmp_access.patient_of(context.appel)
            try:
                access = dmp_access.explain(self.dmp.check_patient(context.appel.ins, context.appel.ins_oid,
                                                                   actor=actor))
                if not access.allowed:
                    self._audit(request, "consumer-dmp-history", 403, reason=f"TEST_EXST: {access.reason}", **who)
                    return pages.message("dmp", access.reason, 403, title_key="dmp_title", **common)
                rows = with_manual_rows(history(self.dmp.find_documents(patient, actor=actor)),
                                        self.contexts.history(context.context_id))
            except DmpUnavailable as error:
                self._audit(request, "consumer-dmp-history", 502, reason=f"DMP unavailable: {error}", **who)
                return pages.message("dmp", "unavailable", 502, title_key="dmp_title", detail=str(error),
                                     retry_url=common["page_url"] + "?refresh=1",
                                     kos_url=common["page_url"] + "/kos", **common)
            except DmpRejected as error:
                self._audit(request, "consumer-dmp-history", 403, reason=f"DMP refused: {error}", **who)
                return pages.message("dmp", "refused", 403, title_key="dmp_title", detail=str(error), **common)
            self.contexts.save_history(context.context_id, rows)
            self._audit(request, "consumer-dmp-history", 200, reason=f"{len(rows)} exam(s) listed", **who)
        wanted = HistoryFilter.from_query(query)
        modalities, regions = choices(rows)
        reasons = pages.TEXTS[common["lang"]]["reasons"]
        return pages.render("consumer_history.html.j2", title_key="history", rows=wanted.apply(rows), total=len(rows),
                            filter=wanted, modalities=modalities, regions=regions,
                            refresh_url=common["page_url"] + "?refresh=1&lang=" + common["lang"],
                            kos_url=common["page_url"] + "/kos",
                            professional=user.professional.display_name, structure=choice.activity.structure_name,
                            reason_label=reasons[reason.value], **common)

    # --- opening an exam ---------------------------------------------------------------------------------------
    def exam_page(self, request: Request) -> Response:
        context, refusal = self._context(request)
        if context is None:
            return refusal  # type: ignore[return-value]
        lang = self._lang(request)
        context_url = f"{PREFIX}/{context.context_id}"
        page_url = f"{context_url}/exams/{request.params['kos_uid']}"
        user = self.current_user(request)
        if user is None:
            return Response.redirect("/drimbox/psc/login?return=" + quote(page_url, safe=""))
        choice, reason = self._activity(context, user), context.access_reason
        if choice is None or reason is None or context.professional_id != user.professional.id_nat:
            return Response.redirect(context_url)
        common: dict[str, Any] = {"lang": lang, "page_url": page_url, "appel": context.appel,
                                  "show_ins": self.settings.show_ins_on_demand}
        exam = next((row for row in self.contexts.history(context.context_id) or []
                     if row.unique_id == request.params["kos_uid"]), None)
        if exam is None:
            return pages.message("exam", "unknown", 404, **common)
        if self.opener is None or self.retrievals is None:
            return pages.message("dmp", "disabled", 503, title_key="dmp_title", **common)
        retrieval = self.retrievals.get(context.context_id, exam.unique_id)
        retry = _decoded(request.query).get("retry") == "1"
        if retrieval is None or (retry and retrieval["state"] in ("failed", "partial")):
            tokens = self.tokens.get(user.session_id) if self.tokens is not None else None
            if tokens is None:  # the PSC session's tokens are gone (expired, or the box restarted): log in again
                return Response.redirect("/drimbox/psc/login?return=" + quote(page_url, safe=""))
            who = self._who(context, user, choice, reason)
            self.opener.open(OpenRequest(context.context_id, exam, context.appel,
                                         dmp_access.actor(user.professional, choice, reason),
                                         dmp_access.patient_of(context.appel), tokens.access_token, who))
            retrieval = self.retrievals.get(context.context_id, exam.unique_id)
        return self._exam_view(context, user, exam, retrieval or {}, context_url, common)

    def _exam_view(self, context: ConsumerContext, user: UserSession, exam, retrieval: dict, context_url: str,
                   common: dict[str, Any]) -> Response:
        state = retrieval.get("state", "fetching_kos")
        status, message, retry_url = 200, "", ""
        texts = pages.TEXTS[common["lang"]]["exam"]
        if state in ("refused_host", "refused_certificate", "other_patient"):
            status, message = 403, texts[state]
        elif state in ("failed", "partial"):
            status = 502 if state == "failed" else 200
            message, retry_url = texts[state], common["page_url"] + "?retry=1"
        viewable = retrieval.get("study_uid") and (retrieval.get("series_done", 0) > 0 or state == "partial")
        cached = self.retrievals.cached(retrieval["study_uid"]) if viewable and self.retrievals else None
        importing = None
        if cached is not None and cached["state"] in ("cached", "imported") and self.importer is not None:
            importing = {"state": cached["import_state"], "detail": cached["import_detail"],
                         "action": common["page_url"] + "/import", "csrf": self._csrf(context, user),
                         "replace": self.settings.import_replace_patient_id,
                         "target": self.settings.import_aet}
        priors = self._comparable(context, retrieval) if viewable else []
        local = self._local_studies(context) if viewable else []
        words = pages.TEXTS[common["lang"]]
        labels = [(f"{words['compare_with']} {row.date} · {', '.join(row.modalities)} · {row.description}", uid)
                  for row, uid, _ in priors]
        labels += [(f"{words['compare_with_local']} {study.date} · {', '.join(study.modalities)} · "
                    f"{study.description}", study.study_uid) for study in local if study.study_uid != retrieval.get(
                        "study_uid")]
        response = pages.render(
            "consumer_exam.html.j2", title_key="exam_title", status=status, exam=exam, state=state,
            importing=importing,
            compare=[(label, "/viewer?" + urlencode({"StudyInstanceUIDs": f"{retrieval['study_uid']},{uid}",
                                                      "hangingProtocolId": "@ohif/hpCompare"}))
                     for label, uid in labels],
            retrieval=retrieval, message=message, detail=retrieval.get("error", "") if message else "",
            retry_url=retry_url, context_url=context_url,
            viewer_url="/viewer?StudyInstanceUIDs=" + quote(retrieval["study_uid"], safe="") if viewable else "",
            **common)
        if viewable:
            # one viewer session per study (the viewer's rule), for this exam and the ones it can be compared with
            max_age = self.viewer_minutes * 60
            sessions = [(retrieval["study_uid"], exam.unique_id)] + [(u, k) for _, u, k in priors]
            sessions += [(study.study_uid, "") for study in local]  # the local PACS's own: no KOS
            for study_uid, kos_uid in sessions:
                session = ViewerSession(study_uid, kos_uid, "professional", user.professional.id_nat,
                                        context.structure_id, origin="consumer")
                response.cookies.append(set_cookie(cookie_name(study_uid),
                                                   seal_session(session, self.secret, max_age=max_age),
                                                   max_age=max_age))
        return response

    def _local_studies(self, context: ConsumerContext) -> list[LocalStudy]:
        if self.find_local is None:
            return []
        try:
            return self.find_local(context.appel)
        except (OrthancRestError, OSError, ValueError, KeyError):
            log.exception("cannot list the local studies of the context's patient")
            return []

    def _comparable(self, context: ConsumerContext, current: dict) -> list[tuple[ExamRow, str, str]]:
        """Other exams of this context already retrieved (row, study UID, KOS UID): OHIF's comparison layout."""
        if self.retrievals is None:
            return []
        rows = {row.unique_id: row for row in self.contexts.history(context.context_id) or []}
        found = []
        for other in self.retrievals.of_context(context.context_id):
            uid = other["study_uid"]
            if (uid and uid != current["study_uid"] and other["kos_uid"] in rows
                    and other["state"] in ("complete", "partial") and other["series_done"] > 0):
                found.append((rows[other["kos_uid"]], uid, other["kos_uid"]))
        return found

    def post_import(self, request: Request) -> Response:
        """"Import into my PACS" from the exam's page: a study this context retrieved and still holds."""
        context, user, form, refusal = self._posted(request)
        if context is None or user is None:
            return refusal  # type: ignore[return-value]
        lang = self._lang(request)
        exam_url = f"{PREFIX}/{context.context_id}/exams/{request.params['kos_uid']}"
        choice, reason = self._activity(context, user), context.access_reason
        retrieval = self.retrievals.get(context.context_id, request.params["kos_uid"]) if self.retrievals else None
        cached = (self.retrievals.cached(retrieval["study_uid"])
                  if self.retrievals and retrieval and retrieval["study_uid"] else None)
        if (choice is None or reason is None or self.importer is None or cached is None
                or cached["state"] not in ("cached", "imported")):
            return pages.message("exam", "not_importable", 409, lang=lang, page_url=exam_url)
        replace = form.get("replace_patient_id") == "1" and bool(context.appel.local_patient_id)
        who = self._who(context, user, choice, reason)
        started = self.importer.start(ImportRequest(
            cached["study_uid"], context.appel.local_patient_id if replace else "",
            context.appel.local_patient_id_issuer if replace else "", {**who, "kos_uid": cached["kos_uid"]}))
        if not started:
            return pages.message("exam", "not_importable", 409, lang=lang, page_url=exam_url)
        response = Response.redirect(exam_url)
        response.headers.update(pages.NO_STORE)
        return response

    # --- a KOS file given by hand (the DMP unreachable) ---------------------------------------------------------
    def _ready(self, request: Request, back_to: str = "/kos"
               ) -> tuple[ConsumerContext | None, UserSession | None, Response | None]:
        """The context, its professional, activity and reason all set; else where to go first."""
        context, refusal = self._context(request)
        if context is None:
            return None, None, refusal
        context_url = f"{PREFIX}/{context.context_id}"
        user = self.current_user(request)
        if user is None:  # PSC login first, then back to the same place
            return None, None, Response.redirect("/drimbox/psc/login?return=" + quote(context_url + back_to, safe=""))
        if (self._activity(context, user) is None or context.access_reason is None
                or context.professional_id != user.professional.id_nat):
            return None, None, Response.redirect(context_url)
        return context, user, None

    def kos_page(self, request: Request, problem: str = "", status: int = 200) -> Response:
        context, user, refusal = self._ready(request)
        if context is None or user is None:
            return refusal  # type: ignore[return-value]
        lang = self._lang(request)
        context_url = f"{PREFIX}/{context.context_id}"
        return pages.render("consumer_kos.html.j2", title_key="kos_title", page_url=context_url + "/kos", lang=lang,
                            status=status, context_url=context_url, action=context_url + "/kos",
                            csrf=self._csrf(context, user), problem=problem, appel=context.appel,
                            show_ins=self.settings.show_ins_on_demand)

    def post_kos(self, request: Request) -> Response:
        context, user, refusal = self._ready(request)
        if context is None or user is None:
            return refusal  # type: ignore[return-value]
        lang = self._lang(request)
        texts = pages.TEXTS[lang]["kos"]
        try:
            form = parse_form_data(request.body, request.headers.get("content-type", ""), max_bytes=MAX_KOS_FORM)
        except ValueError:
            return self.kos_page(request, texts["unreadable"], 400)
        if not hmac.compare_digest(form.get("csrf", b"").decode("ascii", "replace"), self._csrf(context, user)):
            return pages.message("context", "bad_form", 403, lang=lang, page_url=request.path)
        data = form.get("kos", b"")
        try:
            summary = read_manifest(data)
        except ValueError:
            return self.kos_page(request, texts["unreadable"], 400)
        # the opening checks the patient again; refusing here keeps another patient's exam out of the history
        if summary.patient_id != context.appel.ins:
            self._audit(request, "consumer-kos-file", 403, kos_uid=summary.sop_instance_uid,
                        reason=f"KOS file about PatientID {summary.patient_id}", patient_id=context.appel.ins,
                        professional_id=user.professional.id_nat)
            return self.kos_page(request, texts["other_patient"], 403)
        rows = self.contexts.history(context.context_id) or []
        row = manual_row(data, summary, structure=pages.TEXTS[lang]["kos_title"])
        self.contexts.save_history(context.context_id, [r for r in rows if r.unique_id != row.unique_id] + [row])
        self._audit(request, "consumer-kos-file", 200, kos_uid=row.unique_id, study_uid=summary.study_uid,
                    patient_id=context.appel.ins, professional_id=user.professional.id_nat, reason="KOS file given")
        response = Response.redirect(f"{PREFIX}/{context.context_id}/exams/{quote(row.unique_id, safe='')}")
        response.headers.update(pages.NO_STORE)
        return response

    # --- the exam's report (PDF) ---------------------------------------------------------------------------------
    def report_pdf(self, request: Request) -> Response:
        """The CR-IMG the DMP holds for this exam (same study UIDs as its KOS), as the PDF its CDA carries."""
        kos_uid = request.params["kos_uid"]
        context, user, refusal = self._ready(request, f"/exams/{quote(kos_uid, safe='')}/report")
        if context is None or user is None:
            return refusal  # type: ignore[return-value]
        lang = self._lang(request)
        page_url = f"{PREFIX}/{context.context_id}/exams/{kos_uid}/report"
        common: dict[str, Any] = {"lang": lang, "page_url": page_url, "appel": context.appel,
                                  "show_ins": self.settings.show_ins_on_demand}
        exam = next((r for r in self.contexts.history(context.context_id) or [] if r.unique_id == kos_uid), None)
        if exam is None:
            return pages.message("exam", "unknown", 404, **common)
        if self.dmp is None:
            return pages.message("dmp", "disabled", 503, title_key="dmp_title", **common)
        choice, reason = self._activity(context, user), context.access_reason
        assert choice is not None and reason is not None  # _ready checked both
        actor = dmp_access.actor(user.professional, choice, reason)
        patient = dmp_access.patient_of(context.appel)
        who = {**self._who(context, user, choice, reason), "kos_uid": kos_uid}
        try:
            found = report_of.newest(self.dmp.find_documents(
                patient, actor=actor, type_codes=(report_of.REPORT_TYPE,),
                reference_ids=report_of.reference_ids(exam))) if exam.study_uids else None
            if found is None:
                self._audit(request, "consumer-report", 404, reason="no report shared for this exam", **who)
                return pages.message("report", "none", 404, **common)
            pdf = report_of.pdf_of(self.dmp.retrieve(found.repository_id, found.unique_id, actor=actor,
                                                     patient_cx=patient))
        except DmpUnavailable as error:
            self._audit(request, "consumer-report", 502, reason=f"DMP unavailable: {error}", **who)
            return pages.message("dmp", "unavailable", 502, title_key="dmp_title", detail=str(error),
                                 retry_url=page_url, **common)
        except DmpRejected as error:
            self._audit(request, "consumer-report", 403, reason=f"DMP refused: {error}", **who)
            return pages.message("dmp", "refused", 403, title_key="dmp_title", detail=str(error), **common)
        except ValueError as error:
            self._audit(request, "consumer-report", 502, reason=f"unusable report: {error}", **who)
            return pages.message("report", "unusable", 502, detail=str(error), **common)
        self._audit(request, "consumer-report", 200, reason=f"report {found.unique_id}", bytes_sent=len(pdf), **who)
        return Response(200, pdf, "application/pdf", {**pages.NO_STORE, "X-Frame-Options": "SAMEORIGIN",
                                                      "Content-Disposition": 'inline; filename="compte-rendu.pdf"'})

    def _who(self, context: ConsumerContext, user: UserSession, choice: ActivityChoice,
             reason: ConsumerReason) -> dict[str, str]:
        return {"professional_id": user.professional.id_nat, "structure_id": choice.activity.structure_id,
                "patient_id": context.appel.ins,
                "purpose": reason.purpose_of_use + (f": {context.reason_text}" if context.reason_text else "")}

    # --- national statistics (admin entry) --------------------------------------------------------------------
    def statistics_csv(self, request: Request) -> Response:
        query = _decoded(request.query)
        try:
            first = dt.date.fromisoformat(query.get("from") or query.get("day") or _today(self.clock()))
            last = dt.date.fromisoformat(query.get("to") or query.get("day") or first.isoformat())
        except ValueError:
            return Response.error(400, "day, from and to are dates: YYYY-MM-DD")
        if last < first or (last - first).days >= STATISTICS_MAX_DAYS:
            return Response.error(400, f"from..to must be a range of at most {STATISTICS_MAX_DAYS} days")
        start, _ = day_bounds(first)
        _, end = day_bounds(last)
        body = to_csv(self.contexts.statistics(start, end), delimiter=self.settings.statistics_delimiter)
        name = f"statistiques-drimbox-{first.isoformat()}" + (f"-{last.isoformat()}" if last != first else "")
        return Response(200, body.encode("utf-8"), "text/csv; charset=utf-8",
                        {"Content-Disposition": f'attachment; filename="{name}.csv"', "Cache-Control": "no-store"})

    def cache(self, request: Request) -> Response:
        """The foreign studies this box holds (admin entry): study, KOS, patient INS, source, state, expiry."""
        return Response.json(self.retrievals.list_cache() if self.retrievals is not None else [])

    # --- helpers -----------------------------------------------------------------------------------------------
    def _lang(self, request: Request) -> str:
        return pages.lang_of(_decoded(request.query), request.headers.get("accept-language", ""))

    def _audit(self, request: Request, action: str, status: int, **fields: Any) -> None:
        self.audit.event(action, status, request_id=request.headers.get("x-request-id", ""), **fields)

def build_consumer_api(settings: Settings, store: Store, rest: OrthancRest, whitelist: WhitelistKeeper | None,
                       viewer: ViewerApi) -> ConsumerApi:
    """The consumer role's parts, each given what it needs: DMP client, caches, retrieval and import threads."""
    dmp = None
    if settings.dmp.enabled:
        from drimbox.dmp.client import DmpClient

        dmp = DmpClient(settings.dmp, settings.identity)
    audit = ConsumerAudit(store, time.time)
    retrievals = RetrievalStore(store.db, store.clock)
    contexts = ConsumerStore(store.db, store.clock)
    executor = ThreadPoolExecutor(max_workers=settings.consumer.retrieval_threads,
                                  thread_name_prefix="drimbox-consumer")
    opener = None
    if dmp is not None:
        opener = ExamOpener(
            dmp=dmp, retrievals=retrievals,
            fetcher=OrthancFetcher(rest, client_cert=settings.dmp.client_cert, client_key=settings.dmp.client_key),
            is_trusted_db_host=whitelist.is_trusted_db_host if whitelist else _nobody,
            cache_seconds=settings.consumer.cache_hours * 3600,
            executor=executor, clock=time.time, on_done=audit.opening_done,
            check_source=_source_checker(settings, whitelist))

    def find_local(appel: AppelContextuel) -> list[LocalStudy]:
        return local_studies(rest, appel.local_patient_id, appel.local_patient_id_issuer,
                             is_foreign=lambda uid: retrievals.cached(uid) is not None)

    return ConsumerApi(
        store=store, contexts=contexts, session_secret=viewer.secret, settings=settings.consumer, audit=audit,
        dmp=dmp, retrievals=retrievals, opener=opener,
        importer=StudyImporter(rest=rest, retrievals=retrievals, settings=settings.consumer, executor=executor,
                               on_done=audit.import_done),
        purger=CachePurger(retrievals, contexts, rest, time.time), find_local=find_local,
        current_user=viewer.user, tokens=viewer.tokens, viewer_minutes=settings.viewer.session_minutes)


def _source_checker(settings: Settings, whitelist: WhitelistKeeper | None) -> Callable[[str], SourceCheck]:
    """The pre-flight TLS check of a source host: the box's client certificate, the source CA bundle."""
    dmp_settings = settings.dmp
    ca_bundle = settings.consumer.source_ca_bundle or dmp_settings.ca_bundle
    context = tls_context(dataclasses.replace(dmp_settings, ca_bundle=ca_bundle))

    def check(host: str) -> SourceCheck:
        return check_source(host, whitelist.domains if whitelist else [], context)

    return check


def _nobody(host: str) -> bool:
    """No whitelist configured: no source is trusted."""
    return False


def _decoded(query: dict) -> dict[str, str]:
    """Orthanc hands GET arguments over still URL-encoded."""
    return {unquote_plus(k): unquote_plus(v) for k, v in (query or {}).items()}


def _today(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.timezone.utc).date().isoformat()
