"""The operator's dashboard (admin entry, ``/drimbox/ui``): the box at a glance, in plain words, French or English.

Studies are named as people name them (patient, birth date, exam date, accession, modality, description), read
from the report the box received; the queue, recent errors and refused HL7 messages (with a replay button), the
whitelist in force, what the box can reach, the peers' accesses and a search in the audit trail.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import unquote_plus

from drimbox.indicators import daily_indicators, to_csv
from drimbox.metrics import PUBLICATION_STATES, Metrics
from drimbox.reachability import Reachability
from drimbox.reports.cda import parse_cda
from drimbox.store import Store
from drimbox.store.records import PublicationState, StudyRecord
from drimbox.web.explorer_panel import TEMPLATES
from drimbox.web.http import Request, Response, Router
from drimbox.web.plain_words import explain, label, language, translator



@dataclass(frozen=True)
class Identity:
    """What people call a study, from its report."""

    patient: str = ""
    birth_date: str = ""
    exam_date: str = ""
    accession: str = ""
    modality: str = ""
    description: str = ""


@dataclass(frozen=True)
class StudyLine:
    study_uid: str
    patient: str
    birth_date: str
    exam_date: str
    accession: str
    modality: str
    description: str
    state: str
    problem: str
    updated_at: float

    def matches(self, text: str) -> bool:
        wanted = text.casefold()
        return any(wanted in value.casefold() for value in (
            self.patient, self.birth_date, self.exam_date, self.accession, self.modality, self.description,
            self.study_uid))


class Dashboard:
    def __init__(self, store: Store, *, status: Callable[[], dict], metrics: Metrics, reachability: Reachability,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.status = status
        self.metrics = metrics
        self.reachability = reachability
        self.clock = clock
        self._identities: dict[str, Identity] = {}  # report id -> what people call the study
        self._lock = threading.Lock()

    def register(self, router: Router) -> None:
        router.add("GET", "/drimbox/ui", self.page)
        router.add("GET", "/drimbox/ui/indicators.csv", self.indicators)

    def indicators(self, request: Request) -> Response:
        """The national activity indicators of one UTC day (``?day=YYYY-MM-DD``, today by default)."""
        text = unquote_plus(request.query.get("day", ""))
        today = dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc).date()
        try:
            day = dt.date.fromisoformat(text) if text else today
        except ValueError:
            return Response.error(400, f"day must be YYYY-MM-DD, got {text[:40]!r}")
        body = to_csv(daily_indicators(self.store, day)).encode()
        return Response(200, body, "text/csv; charset=utf-8",
                        {"Content-Disposition": f'attachment; filename="indicateurs-{day.isoformat()}.csv"'})

    def page(self, request: Request) -> Response:
        lang = language(request.query, request.headers)
        query = {k: unquote_plus(v) for k, v in request.query.items()}
        search = query.get("q", "").strip()
        studies = [self._line(s, lang) for s in self.store.list_studies(limit=500)]
        if search:
            studies = [s for s in studies if s.matches(search)]
        audit_text, audit_entry = query.get("audit", "").strip(), query.get("entry", "").strip()
        status = self.status()
        context = {
            "t": translator(lang), "lang": lang, "search": search, "studies": studies[:200],
            "status": status, "queue": self._queue(lang), "errors": self._errors(lang),
            "messages": [m.to_json() for m in self.store.list_messages(limit=30, problems_only=True)],
            "whitelist": self._whitelist(status), "reachability": [r.to_json() for r in self.reachability.results()],
            "figures": self.metrics.snapshot(),
            "peer_accesses": self.store.search_audit(entry_point="wado-rs", limit=15),
            "audit_text": audit_text, "audit_entry": audit_entry,
            "audit": self.store.search_audit(text=audit_text or None, entry_point=audit_entry or None, limit=50)
            if (audit_text or audit_entry) else None,
        }
        html = TEMPLATES.get_template("dashboard.html.j2").render(**context)
        return Response(200, html.encode(), "text/html; charset=utf-8", {"Cache-Control": "no-store"})

    # --- studies ------------------------------------------------------------------------------------
    def _line(self, study: StudyRecord, lang: str) -> StudyLine:
        who = self._identity(study.report_id) if study.report_id else Identity()
        return StudyLine(study.study_uid, who.patient, who.birth_date, who.exam_date, who.accession, who.modality,
                         who.description, label("study", study.state, lang), explain(study.problem, lang),
                         study.updated_at)

    def _identity(self, report_id: str) -> Identity:
        with self._lock:
            known = self._identities.get(report_id)
        if known is not None:
            return known
        record = self.store.get_report(report_id)
        found = Identity()
        if record is not None and record.cda:
            try:
                report = parse_cda(record.cda)
                patient = report.patient
                name = " ".join(p for p in ((patient.used_family or patient.family).upper(),
                                            patient.used_given or patient.given) if p)
                description = (report.act.display if report.act else "") or report.title
                found = Identity(name, _date(patient.birth_date),
                                 _date(report.service_start or report.effective_time),
                                 ", ".join(dict.fromkeys(o.accession for o in report.studies if o.accession)),
                                 ", ".join(report.modalities), description)
            except Exception:  # a report the box could not read is shown by its UID only
                found = Identity()
        with self._lock:
            if len(self._identities) > 5000:
                self._identities.clear()
            self._identities[report_id] = found
        return found

    # --- queue and errors ---------------------------------------------------------------------------
    def _queue(self, lang: str) -> dict:
        counts = self.store.publication_counts()
        oldest = self.store.oldest_waiting_publication()
        return {
            "states": [(label("publication", s, lang), counts.get(s, 0), s) for s in PUBLICATION_STATES],
            "oldest": oldest, "oldest_age": round(self.clock() - oldest.ready_at) if oldest else None,
        }

    def _errors(self, lang: str) -> list[dict]:
        items: list[dict] = []
        for job in self.store.list_publications(limit=300):
            if job.last_error and job.state in (PublicationState.QUEUED, PublicationState.FAILED):
                items.append({"at": job.updated_at, "study_uid": job.study_uid,
                              "what": label("action", job.action, lang),
                              "error": explain(job.last_error, lang), "detail": job.last_error})
        for study in self.store.list_studies(limit=300):
            if study.problem:
                items.append({"at": study.updated_at, "study_uid": study.study_uid,
                              "what": label("study", study.state, lang), "error": explain(study.problem, lang),
                              "detail": study.problem})
        return sorted(items, key=lambda i: float(i["at"]), reverse=True)[:30]

    def _whitelist(self, box_status: dict) -> dict | None:
        status = box_status.get("whitelist")
        if not status:
            return None
        generated = status.get("generated_at")
        age = None
        if generated:
            try:
                moment = dt.datetime.fromisoformat(generated.replace("Z", "+00:00"))
                moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
                age = round((self.clock() - moment.timestamp()) / 3600, 1)
            except ValueError:
                age = None
        return {**status, "age_hours": age}


def _date(text: str) -> str:
    digits = "".join(c for c in (text or "")[:8] if c.isdigit())
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}" if len(digits) == 8 else text or ""
