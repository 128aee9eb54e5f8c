"""The DMP client: ITI-41 publication, ITI-18 queries, ITI-43 retrieval, ITI-57 deletion, patient existence test.

Keys, certificates and the TLS context are loaded once; each worker thread gets its own requests.Session
(connection pool) so the client can be shared between threads.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import requests
import urllib3
from cryptography.hazmat.primitives import serialization
from lxml import etree
from requests.adapters import HTTPAdapter

from drimbox.config.sections import IdentitySettings
from drimbox.crypto.keys import load_key_and_cert
from drimbox.dmp import hl7dt, metadata, patients, queries, retrieve as retrieve_msgs, soap, transactions, xds_ids
from drimbox.dmp.errors import DmpRejected, DmpUnavailable, RegistryError
from drimbox.dmp.lot import build_lot
from drimbox.dmp.settings import DmpSettings
from drimbox.dmp.signing import SigningMaterial
from drimbox.dmp.uids import new_urn_uuid, uid_under
from drimbox.dmp.vihf import Software, build_vihf
from drimbox.reports.model import Code, Organization, Person, Report
from drimbox.util.bounded_read import AnswerTooLarge, AnswerTooSlow, read_bounded

KOS_TYPE_CODE = metadata.KOS_TYPE


@dataclass(frozen=True)
class PublishResult:
    entry_uuid: str
    unique_id: str
    submission_set_unique_id: str
    signature_entry_uuid: str = ""
    signature_unique_id: str = ""
    warnings: tuple[RegistryError, ...] = ()


@dataclass(frozen=True)
class Actor:
    """Who the VIHF says is acting: a professional of a structure, for a purpose."""

    professional: Person
    organization: Organization
    purpose: str = "normal"
    roles: tuple[Code, ...] = ()  # empty = the configured profession and specialty

    @classmethod
    def for_report(cls, report: Report) -> "Actor":
        """Automatic publication: the report's legal authenticator within the report's author organisation."""
        return cls(professional=report.legal_authenticator, organization=report.organization)


class _TlsAdapter(HTTPAdapter):
    def __init__(self, context: ssl.SSLContext, **kwargs):
        self._context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, *args, **kwargs):
        kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(*args, **kwargs)


def tls_context(settings: DmpSettings) -> ssl.SSLContext:
    """Client TLS context: the DMP's CA bundle and the organisation's AUTH_CLI certificate."""
    context = ssl.create_default_context(cafile=settings.ca_bundle or None)
    if not settings.client_cert:
        return context
    password = None
    if settings.client_key_password_file:
        with open(settings.client_key_password_file, "rb") as handle:
            password = handle.readline().rstrip(b"\r\n")
    if settings.client_cert.lower().endswith((".p12", ".pfx")):
        key, cert, chain = load_key_and_cert(settings.client_cert, "", settings.client_key_password_file)
        # ssl only loads certificates from files: write a private PEM, load it, remove it at once.
        with tempfile.TemporaryDirectory(prefix="drimbox-tls-") as directory:
            path = os.path.join(directory, "client.pem")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
                for certificate in (cert, *chain):
                    handle.write(certificate.public_bytes(serialization.Encoding.PEM))
            context.load_cert_chain(path)
        return context
    context.load_cert_chain(settings.client_cert, settings.client_key or None, password)
    return context


class DmpClient:
    def __init__(
        self,
        settings: DmpSettings,
        identity: IdentitySettings,
        *,
        session: requests.Session | None = None,
        signing: SigningMaterial | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ):
        self.settings = settings
        self.identity = identity
        self.signing = signing or SigningMaterial.load(
            settings.signing_cert, settings.signing_key, settings.signing_key_password_file
        )
        self.software = Software(settings.lps_id, settings.lps_name, settings.lps_version,
                                 settings.lps_homologation_id)
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self._shared_session = session
        self._shared_lock = threading.Lock()
        self._context = tls_context(settings) if session is None and settings.base_url.startswith("https") else None
        self._local = threading.local()

    # --- transport ---------------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            if self._context is not None:
                adapter = _TlsAdapter(self._context, pool_connections=2, pool_maxsize=4)
                session.mount("https://", adapter)
                session.verify = self.settings.ca_bundle or True
            self._local.session = session
        return session

    def _send(self, message: transactions.OutgoingMessage) -> transactions.Answer:
        headers = {"Content-Type": message.content_type, "Accept": "application/soap+xml, multipart/related",
                   "Accept-Encoding": "identity"}
        try:
            if self._shared_session is not None:
                with self._shared_lock:
                    status, content_type, body = self._post(self._shared_session, message, headers)
            else:
                status, content_type, body = self._post(self._session(), message, headers)
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            raise DmpUnavailable(f"timeout after {self.settings.timeout_seconds:g} s on {message.url}") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            # the body is read from urllib3 directly (see _post): its errors are not wrapped by requests
            raise DmpUnavailable(f"{type(error).__name__} on {message.url}: {error}") from None
        if status >= 500:
            try:  # a SOAP fault travels with HTTP 500: report its text
                transactions.read_answer(content_type, body)
            except DmpUnavailable as error:
                raise DmpUnavailable(f"HTTP {status} from {message.url}: {error.reason}") from None
            raise DmpUnavailable(f"HTTP {status} from {message.url}")
        if status >= 400:
            try:
                answer = transactions.read_answer(content_type, body)
            except DmpUnavailable as error:
                raise DmpUnavailable(f"HTTP {status} from {message.url}: {error.reason}") from None
            soap.check_registry_status(answer.payload)
            raise DmpUnavailable(f"HTTP {status} from {message.url}")
        return transactions.read_answer(content_type, body)

    def _post(self, session: requests.Session, message: transactions.OutgoingMessage,
              headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        """(status, Content-Type, body) of the answer: at most ``Dmp.MaxAnswerMb``, its body within
        ``Dmp.TimeoutSeconds``."""
        with session.post(message.url, data=message.body, headers=dict(headers),
                          timeout=self.settings.timeout_seconds, stream=True) as response:
            try:
                body = read_bounded(response, limit=self.settings.max_answer_mb << 20,
                                    seconds=self.settings.timeout_seconds)
            except AnswerTooLarge as error:
                raise DmpUnavailable(f"{error} from {message.url} (Dmp.MaxAnswerMb is "
                                     f"{self.settings.max_answer_mb} MB)") from None
            except AnswerTooSlow as error:
                raise DmpUnavailable(f"{error} from {message.url}") from None
            return response.status_code, response.headers.get("Content-Type", ""), body

    def _vihf(self, actor: Actor, patient_cx: str, now: dt.datetime) -> etree._Element:
        roles = actor.roles or (
            Code(self.settings.profession_code, xds_ids.SYSTEM_PROFESSION, self.settings.profession_display),
            Code(self.settings.specialty_code, xds_ids.SYSTEM_SPECIALTY, self.settings.specialty_display),
        )
        return build_vihf(
            professional=actor.professional, organization=actor.organization, patient_cx=patient_cx,
            software=self.software, signing_key=self.signing.key, signing_cert=self.signing.cert,
            chain=self.signing.chain, now=now, purpose=actor.purpose, auth_mode=self.settings.auth_mode,
            roles=roles,
        )

    # --- transactions ------------------------------------------------------------------------------------

    def prepare_publication(self, kos: bytes, report: Report, flags: Mapping[str, bool], *,
                            replaces_entry_uuid: str | None = None, now: dt.datetime | None = None):
        """The lot and its outgoing ITI-41 message, without sending (see ``drimbox.dmp.render``)."""
        now = now or self._clock()
        lot = build_lot(kos, report, flags, self.settings, self.identity, signing=self.signing, now=now,
                        replaces_entry_uuid=replaces_entry_uuid)
        security = self._vihf(Actor.for_report(report), hl7dt.patient_cx_of(report.patient), now)
        return lot, transactions.provide_and_register(self.settings.base_url, lot, security)

    def publish(self, kos: bytes, report: Report, flags: Mapping[str, bool], *,
                replaces_entry_uuid: str | None = None) -> PublishResult:
        lot, message = self.prepare_publication(kos, report, flags, replaces_entry_uuid=replaces_entry_uuid)
        answer = self._send(message)
        warnings = soap.check_registry_status(answer.payload)
        ids = lot.ids
        return PublishResult(
            entry_uuid=ids.kos_entry_id, unique_id=ids.kos_unique_id,
            submission_set_unique_id=ids.submission_set_unique_id,
            signature_entry_uuid=ids.signature_entry_id, signature_unique_id=ids.signature_unique_id,
            warnings=tuple(warnings),
        )

    def _query(self, request: etree._Element, actor: Actor, patient_cx: str) -> etree._Element:
        security = self._vihf(actor, patient_cx, self._clock())
        answer = self._send(transactions.plain(self.settings.base_url, xds_ids.ACTION_ITI18, request, security))
        soap.check_registry_status(answer.payload)
        return answer.payload

    def find_entry_uuid(self, unique_id: str, *, actor: Actor, patient_cx: str) -> str | None:
        """entryUUID of the DocumentEntry with this uniqueId (ITI-18 GetDocuments), preferring Approved."""
        entries = queries.document_entries(self._query(queries.get_documents([unique_id]), actor, patient_cx))
        entries = [entry for entry in entries if entry.unique_id in ("", unique_id)]
        if not entries:
            return None
        approved = [entry for entry in entries if entry.status == xds_ids.STATUS_APPROVED]
        return (approved or entries)[0].entry_uuid

    def find_documents(
        self,
        patient_cx: str,
        *,
        actor: Actor,
        statuses: Iterable[str] = (xds_ids.STATUS_APPROVED,),
        type_codes: Iterable[Code] = (KOS_TYPE_CODE,),
        event_codes: Iterable[Code] = (),
        creation_from: str = "",
        creation_to: str = "",
        reference_ids: Iterable[str] = (),
    ) -> list[queries.DocumentEntrySummary]:
        """ITI-18 FindDocuments, or FindDocumentsByReferenceId when ``reference_ids`` are given.

        With reference ids, other filters apply locally on the answer (the stored query has fewer parameters).
        """
        reference_ids = list(reference_ids)
        type_codes = list(type_codes)
        if reference_ids:
            request = queries.find_documents_by_reference_id(patient_cx, reference_ids, statuses=statuses)
            entries = queries.document_entries(self._query(request, actor, patient_cx))
            wanted = {(c.code, c.system) for c in type_codes}
            return [e for e in entries
                    if not wanted or (e.type_code and (e.type_code.code, e.type_code.system) in wanted)]
        request = queries.find_documents(patient_cx, statuses=statuses, type_codes=type_codes,
                                         event_codes=event_codes, creation_from=creation_from,
                                         creation_to=creation_to)
        return queries.document_entries(self._query(request, actor, patient_cx))

    def retrieve(self, repository_id: str, unique_id: str, *, actor: Actor, patient_cx: str) -> bytes:
        """The document's bytes (ITI-43)."""
        security = self._vihf(actor, patient_cx, self._clock())
        request = retrieve_msgs.retrieve_request(repository_id, [unique_id])
        message = transactions.packaged(self.settings.base_url, xds_ids.ACTION_ITI43, request, security, [])
        answer = self._send(message)
        registry_response = answer.payload.find(f"{{{xds_ids.RS}}}RegistryResponse")
        if registry_response is not None:
            soap.check_registry_status(registry_response)
        for document in retrieve_msgs.retrieved_documents(answer.payload, answer.parts):
            if document.unique_id in ("", unique_id):
                return document.data
        raise DmpRejected([RegistryError("XDSDocumentUniqueIdError", f"document {unique_id} not returned")])

    def delete(self, entry_uuid: str, report: Report, *, actor: Actor | None = None) -> None:
        """Mark a DocumentEntry deleted (ITI-57, Approved -> urn:asip:ci-sis:2010:StatusType:Deleted)."""
        now = self._clock()
        request = metadata.availability_update_request(
            entry_uuid=entry_uuid, report=report, settings=self.settings, identity=self.identity,
            submission_set_id=new_urn_uuid(), submission_set_unique_id=uid_under(self.identity.oid_root, "5"),
            now=now, new_uuid=new_urn_uuid,
        )
        patient_cx = hl7dt.patient_cx_of(report.patient)
        security = self._vihf(actor or Actor.for_report(report), patient_cx, now)
        answer = self._send(transactions.plain(self.settings.base_url, xds_ids.ACTION_ITI57, request, security))
        soap.check_registry_status(answer.payload)

    def check_patient(self, ins: str, ins_oid: str, *, actor: Actor) -> patients.PatientCheck:
        """Does this patient have a DMP (HL7v3 PRPA_IN201307UV02, reasonCode TEST_EXST)?"""
        now = self._clock()
        request = patients.existence_query(ins, ins_oid, sender_root=self.identity.oid_root,
                                           sender_name=self.settings.lps_name, now=now)
        security = self._vihf(actor, hl7dt.patient_cx(ins, ins_oid), now)
        answer = self._send(transactions.plain(self.settings.base_url, xds_ids.ACTION_PATIENT_QUERY, request,
                                               security))
        return patients.read_existence_answer(answer.payload)

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None
