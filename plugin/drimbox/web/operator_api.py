"""The operator's REST API (admin entry): reports, studies, manifests, publications, audit."""

from __future__ import annotations

from typing import Callable
from urllib.parse import unquote_plus

from drimbox.pipeline.intake import ReportIntake
from drimbox.store import Store
from drimbox.web.http import Request, Response, Router
from drimbox.web.stored_files import download, report_pdf

HL7_TYPES = {"application/hl7-v2", "x-application/hl7-v2+er7", "application/edi-hl7", "text/plain"}
XML_TYPES = {"application/xml", "text/xml", "application/hl7-cda+xml"}


class OperatorApi:
    def __init__(self, store: Store, intake: ReportIntake, *, schedule: Callable[[str], None],
                 wake_publisher: Callable[[], None], status: Callable[[], dict]):
        self.store = store
        self.intake = intake
        self.schedule = schedule
        self.wake_publisher = wake_publisher
        self.status = status

    def register(self, router: Router) -> None:
        router.add("GET", "/drimbox/status", lambda r: Response.json(self.status()))
        router.add("POST", "/drimbox/reports", self.post_report)
        router.add("GET", "/drimbox/reports", self.list_reports)
        router.add("GET", "/drimbox/reports/{report_id}", self.get_report)
        router.add("GET", "/drimbox/messages", self.list_messages)
        router.add("GET", "/drimbox/messages/{message_id}", self.get_message)
        router.add("GET", "/drimbox/studies", self.list_studies)
        router.add("GET", "/drimbox/studies/{study_uid}", self.get_study)
        router.add("GET", "/drimbox/studies/{study_uid}/kos", self.get_study_kos)
        router.add("POST", "/drimbox/studies/{study_uid}/reconcile", self.reconcile_study)
        router.add("GET", "/drimbox/manifests/{kos_uid}", self.get_manifest)
        router.add("GET", "/drimbox/publications", self.list_publications)
        router.add("GET", "/drimbox/publications/{publication_id}", self.get_publication)
        router.add("POST", "/drimbox/publications/{publication_id}/retry", self.retry_publication)
        router.add("POST", "/drimbox/publications/{publication_id}/cancel", self.cancel_publication)
        router.add("GET", "/drimbox/audit", self.search_audit)

    # --- reports ----------------------------------------------------------------------------------
    def post_report(self, request: Request) -> Response:
        body = request.body
        if not body.strip():
            return Response.error(400, "empty body: POST an HL7 v2 message (MSH...) or a CR-IMG CDA document")
        kind = request.content_type
        looks_like_hl7 = body.lstrip().startswith(b"MSH")
        if kind in XML_TYPES or (not looks_like_hl7 and body.lstrip().startswith(b"<")):
            flags = {k[5:].upper(): v.upper() in ("Y", "1", "TRUE", "O")
                     for k, v in request.query.items() if k.startswith("flag_")}
            outcome = self.intake.receive_cda(body, flags=flags)
        elif kind in HL7_TYPES or looks_like_hl7 or not kind:
            _, outcome = self.intake.receive_hl7(body, channel="rest")
        else:
            return Response.error(415, f"unsupported content type {kind!r}: send application/hl7-v2 or application/xml")
        return Response.json(outcome.to_json(), outcome.http_status)

    def list_reports(self, request: Request) -> Response:
        limit = _int(request.query.get("limit"), 100)
        return Response.json([r.to_json() for r in self.store.list_reports(limit=limit)])

    def get_report(self, request: Request) -> Response:
        record = self.store.get_report(request.params["report_id"])
        if record is None:
            return Response.error(404, f"no report {request.params['report_id']}")
        wanted = request.query.get("format")
        if wanted == "cda":
            if not record.cda:
                return Response.error(404, f"report {record.report_id} has no stored CDA")
            return download(record.cda, "application/xml", f"{record.report_id}.xml")
        if wanted == "pdf":
            pdf = report_pdf(record.cda) if record.cda else None
            if pdf is None:
                return Response.error(404, f"report {record.report_id} carries no PDF")
            return download(pdf, "application/pdf", f"{record.report_id}.pdf")
        return Response.json(record.to_json())

    def list_messages(self, request: Request) -> Response:
        problems = request.query.get("problems") in ("1", "true", "yes")
        messages = self.store.list_messages(limit=_int(request.query.get("limit"), 100), problems_only=problems)
        return Response.json([m.to_json() for m in messages])

    def get_message(self, request: Request) -> Response:
        record = self.store.get_message(_int(request.params["message_id"], -1))
        if record is None:
            return Response.error(404, f"no message {request.params['message_id']}")
        if request.query.get("format") == "raw":
            return download(record.raw, "application/octet-stream", f"message-{record.id}.hl7")
        return Response.json({**record.to_json(), "raw": record.raw.decode("utf-8", errors="replace")[:20000]})

    # --- studies and manifests --------------------------------------------------------------------
    def list_studies(self, request: Request) -> Response:
        studies = self.store.list_studies(limit=_int(request.query.get("limit"), 200),
                                          state=request.query.get("state"))
        return Response.json([s.to_json() for s in studies])

    def get_study(self, request: Request) -> Response:
        study_uid = request.params["study_uid"]
        return Response.json(self.study_status(study_uid)) if self._known(study_uid) else \
            Response.error(404, f"the box knows nothing of study {study_uid}")

    def study_status(self, study_uid: str) -> dict:
        study = self.store.get_study(study_uid)
        reports = self.store.reports_for_study(study_uid)
        manifests = self.store.manifests_for_study(study_uid)
        current = next((m for m in manifests if m.status == "current"), None)
        return {
            "study_uid": study_uid,
            "state": study.state if study else "unknown",
            "problem": study.problem if study else "",
            "orthanc_id": study.orthanc_id if study else None,
            "report_id": study.report_id if study else None,
            "reports": [{k: v for k, v in r.to_json().items() if k != "cda"} for r in reports],
            "kos": current.to_json() if current else None,
            "manifests": [m.to_json() for m in manifests],
            "publications": [p.to_json() for p in self.store.list_publications(study_uid=study_uid)],
        }

    def _known(self, study_uid: str) -> bool:
        return self.store.get_study(study_uid) is not None or bool(self.store.reports_for_study(study_uid))

    def get_study_kos(self, request: Request) -> Response:
        study_uid = request.params["study_uid"]
        current = self.store.current_manifest(study_uid)
        if current is None:
            return Response.error(404, f"no current manifest for study {study_uid}")
        return Response(200, current.data, "application/dicom",
                        {"Content-Disposition": f'attachment; filename="{current.kos_uid}.dcm"'})

    def reconcile_study(self, request: Request) -> Response:
        study_uid = request.params["study_uid"]
        self.store.mark_pending(study_uid)
        self.schedule(study_uid)
        return Response.json({"scheduled": study_uid}, 202)

    def get_manifest(self, request: Request) -> Response:
        record = self.store.get_manifest(request.params["kos_uid"])
        if record is None:
            return Response.error(404, f"no manifest {request.params['kos_uid']}")
        if "json" in request.headers.get("accept", "") or request.query.get("format") == "json":
            return Response.json(record.to_json())
        return download(record.data, "application/dicom", f"{record.kos_uid}.dcm")

    # --- publications -----------------------------------------------------------------------------
    def list_publications(self, request: Request) -> Response:
        jobs = self.store.list_publications(state=request.query.get("state"),
                                            study_uid=request.query.get("study"),
                                            limit=_int(request.query.get("limit"), 200))
        return Response.json([j.to_json() for j in jobs])

    def get_publication(self, request: Request) -> Response:
        job = self.store.get_publication(_int(request.params["publication_id"], -1))
        if job is None:
            return Response.error(404, f"no publication {request.params['publication_id']}")
        return Response.json(job.to_json())

    def retry_publication(self, request: Request) -> Response:
        job_id = _int(request.params["publication_id"], -1)
        if self.store.get_publication(job_id) is None:
            return Response.error(404, f"no publication {job_id}")
        if not self.store.requeue_publication(job_id):
            return Response.error(409, f"publication {job_id} is done or superseded: nothing to retry")
        self.wake_publisher()
        return Response.json(_publication_json(self.store, job_id), 202)

    def cancel_publication(self, request: Request) -> Response:
        job_id = _int(request.params["publication_id"], -1)
        if self.store.get_publication(job_id) is None:
            return Response.error(404, f"no publication {job_id}")
        if not self.store.cancel_publication(job_id):
            return Response.error(409, f"publication {job_id} is no longer waiting: it cannot be cancelled")
        return Response.json(_publication_json(self.store, job_id))

    # --- audit ------------------------------------------------------------------------------------
    def search_audit(self, request: Request) -> Response:
        q = request.query
        return Response.json(self.store.search_audit(
            study_uid=q.get("study"), professional_id=q.get("professional"), since=q.get("since"),
            until=q.get("until"), outcome=q.get("outcome"), text=unquote_plus(q.get("q") or ""),
            entry_point=q.get("entry"), limit=_int(q.get("limit"), 200)))


def _publication_json(store: Store, job_id: int) -> dict:
    job = store.get_publication(job_id)
    return job.to_json() if job else {}


def _int(value, default: int) -> int:
    """A query or path number; ``default`` when it is not one SQLite can hold (a 64-bit signed integer)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if -(1 << 63) <= number < (1 << 63) else default
