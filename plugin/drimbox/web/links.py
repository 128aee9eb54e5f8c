"""The report's viewer link: building it from the template, and checking one against what the box published.

A link is valid while the study has a *current* manifest (KOS) whose report id is the link's and whose
referenced orders (ReferencedRequestSequence) carry the link's accession number.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from drimbox.kos.reader import read_manifest
from drimbox.store import Store
from drimbox.store.records import ManifestStatus

# Query parameters of /drimbox/open (the default template produces the first name of each).
STUDY_PARAMS = ("study", "StudyInstanceUID", "studyUID")
ACCESSION_PARAMS = ("accession", "AccessionNumber")
REPORT_PARAMS = ("report", "report_id", "reportId")
TOKEN_PARAMS = ("token", "access_token")


@dataclass(frozen=True)
class Published:
    """What the box published for a study: the link must match it."""

    study_uid: str
    kos_uid: str
    report_id: str
    accessions: tuple[str, ...]
    content: dict  # {series_uid: {sop_instance_uid: sop_class_uid}}

    @property
    def accession(self) -> str:
        return self.accessions[0] if self.accessions else ""


class LinkRefused(Exception):
    """The link does not match what the box published. ``reason`` is stable, ``status`` the HTTP answer."""

    def __init__(self, reason: str, status: int, message: str):
        super().__init__(message)
        self.reason = reason
        self.status = status


def published(store: Store, study_uid: str) -> Published | None:
    manifest = store.current_manifest(study_uid)
    if manifest is None:
        return None
    try:
        accessions = tuple(a for a in read_manifest(manifest.data).accessions if a)
    except ValueError:
        accessions = ()
    return Published(study_uid, manifest.kos_uid, manifest.report_id, accessions, manifest.referenced())


def build_link(template: str, viewer_url: str, item: Published, *, token: str | None = None) -> str:
    url = template.format(viewer=viewer_url.rstrip("/"), study_uid=_q(item.study_uid),
                          accession=_q(item.accession), report_id=_q(item.report_id))
    if token:
        url += ("&" if "?" in url else "?") + "token=" + _q(token)
    return url


def check_link(store: Store, study_uid: str, accession: str, report_id: str) -> Published:
    """The published study the link designates, or :class:`LinkRefused`."""
    if not study_uid:
        raise LinkRefused("missing_study", 400, "the link names no study")
    item = published(store, study_uid)
    if item is None:
        if any(m.status == ManifestStatus.WITHDRAWN for m in store.manifests_for_study(study_uid)):
            raise LinkRefused("withdrawn", 410, f"study {study_uid} has been withdrawn")
        raise LinkRefused("unknown_study", 404, f"this box has published no study {study_uid}")
    if report_id != item.report_id:
        report = store.get_report(report_id) if report_id else None
        if report is not None and study_uid in report.study_uids and report.state != "active":
            raise LinkRefused("report_replaced", 410, f"report {report_id} is no longer in force ({report.state})")
        raise LinkRefused("report_mismatch", 404, f"report {report_id!r} is not the published report of this study")
    if (accession or item.accessions) and accession not in item.accessions:
        raise LinkRefused("accession_mismatch", 404,
                          f"accession {accession!r} is not the published accession of study {study_uid}")
    return item


def _q(value: str) -> str:
    return quote(value or "", safe="")


class LinkService:
    """The links the box hands out: to the RIS (viewer link) and, for tests and demos, to a patient."""

    def __init__(self, store: Store, *, viewer_url: str, template: str, local_patient_links: bool = True,
                 patient_link_hours: float = 72.0, audience: str = ""):
        from drimbox.web.patient_tokens import LocalSigner

        self.store = store
        self.viewer_url = viewer_url.rstrip("/")
        self.template = template
        self.audience = audience or self.viewer_url
        self.patient_link_hours = patient_link_hours
        self.signer = LocalSigner(store, self.viewer_url + "/drimbox/patient-links") if local_patient_links else None

    @classmethod
    def from_settings(cls, store: Store, settings) -> "LinkService":
        viewer = settings.viewer
        return cls(store, viewer_url=settings.identity.public_viewer_url, template=viewer.link_template,
                   local_patient_links=viewer.local_patient_links, patient_link_hours=viewer.patient_link_hours,
                   audience=viewer.patient_token_audience)

    def viewer_link(self, study_uid: str) -> dict | None:
        item = published(self.store, study_uid)
        if item is None:
            return None
        return {"url": build_link(self.template, self.viewer_url, item), "study_uid": study_uid,
                "accession": item.accession, "report_id": item.report_id, "kos_uid": item.kos_uid}

    def patient_link(self, study_uid: str, *, subject: str = "patient", hours: float | None = None,
                     now: float | None = None) -> dict | None:
        """A link carrying a signed access token for ``study_uid``; None when nothing is published.
        Raises PermissionError when the box may not sign patient links (Viewer.LocalPatientLinks false)."""
        import time

        if self.signer is None:
            raise PermissionError("this box does not issue patient links (DRIMbox.Viewer.LocalPatientLinks is false)")
        item = published(self.store, study_uid)
        if item is None:
            return None
        now = time.time() if now is None else now
        lifetime = float(hours if hours is not None else self.patient_link_hours) * 3600
        token = self.signer.issue(audience=self.audience, study_uid=study_uid, accession=item.accession,
                                  report_id=item.report_id, subject=subject, lifetime_seconds=lifetime, now=now)
        return {"url": build_link(self.template, self.viewer_url, item, token=token), "token": token,
                "study_uid": study_uid, "subject": subject, "expires_at": int(now + lifetime)}
