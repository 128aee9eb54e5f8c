"""The four XDS operations of the simulated DMP (ITI-41, ITI-18, ITI-43, ITI-57) on top of the store."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time
import uuid

from lxml import etree

from . import constants as c
from . import rules
from .dsg import DsgRefused, verify_dsg
from .errors import ErrorCollector, RegistryErrorItem, XdsRefusal
from .metadata import DocumentEntryView, Submission, SubmissionSetView, assign_uuids, read_submission
from .mtom import cid_from_href
from .queries import leaf_class, object_ref, read_query, run_query
from .responses import adhoc_query_response, registry_response, retrieve_response
from .signers import SignerTrust
from .store import DmpStore, StoredDocument
from .vihf import VihfContext, normalize_structure_id

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"


def _code_string(doc: DocumentEntryView, scheme: str) -> str:
    code, coding = doc.code_of(scheme)
    return f"{code}^^{coding}" if code else ""


class DmpRegistry:
    def __init__(self, store: DmpStore, repository_unique_id: str = c.REPOSITORY_UNIQUE_ID,
                 signers: SignerTrust | None = None):
        self.store = store
        self.repository_unique_id = repository_unique_id
        self.signers = signers or SignerTrust(())  # no anchor: every DSG signature is refused
        # Registry-state checks and the write must not interleave between two submissions.
        self._submit_lock = threading.Lock()

    # ------------------------------------------------------------------ ITI-41
    def provide_and_register(self, payload: etree._Element, attachments: dict[str, bytes],
                             vihf: VihfContext) -> etree._Element:
        if payload.tag != f"{{{c.XDSB}}}ProvideAndRegisterDocumentSetRequest":
            raise XdsRefusal.one("XDSRepositoryMetadataError",
                                 f"expected xdsb:ProvideAndRegisterDocumentSetRequest, got {payload.tag}")
        object_list = payload.find(f"{{{c.LCM}}}SubmitObjectsRequest/{{{c.RIM}}}RegistryObjectList")
        if object_list is None:
            raise XdsRefusal.one(rules.META, "lcm:SubmitObjectsRequest/rim:RegistryObjectList missing")
        contents = self._document_contents(payload, attachments)
        sub = read_submission(object_list)
        errors = ErrorCollector()
        ss = rules.check_structure(errors, sub, require_documents=True)
        if ss is None:
            errors.refuse()
        rules.check_submission_set(errors, ss)
        kinds = {doc.id: rules.check_document(errors, doc, ss) for doc in sub.documents}
        self._check_vihf_consistency(errors, ss, vihf)
        self._check_contents(errors, sub, contents, kinds)
        self._check_associations(errors, sub, ss, kinds)
        errors.raise_if_any()
        with self._submit_lock:
            self._check_registry_state(errors, sub, ss, vihf)
            errors.raise_if_any()
            self._commit(sub, ss, contents, kinds, vihf)
        return registry_response()

    @staticmethod
    def _document_contents(payload: etree._Element, attachments: dict[str, bytes]) -> dict[str, bytes]:
        contents: dict[str, bytes] = {}
        errors = ErrorCollector()
        for doc in payload.iterfind(f"{{{c.XDSB}}}Document"):
            doc_id = doc.get("id", "")
            if doc_id in contents:
                errors.add("XDSRepositoryDuplicateUniqueIdInMessage", f"two xdsb:Document with id {doc_id}", doc_id)
                continue
            include = doc.find(f"{{{c.XOP}}}Include")
            if include is not None:
                cid = cid_from_href(include.get("href", ""))
                if cid not in attachments:
                    errors.add("XDSMissingDocument", f"xdsb:Document {doc_id}: MIME part <{cid}> not found", doc_id)
                    continue
                contents[doc_id] = attachments[cid]
            else:
                try:
                    contents[doc_id] = base64.b64decode("".join((doc.text or "").split()), validate=True)
                except ValueError:
                    errors.add("XDSRepositoryMetadataError", f"xdsb:Document {doc_id}: content is neither an "
                               "xop:Include nor base64", doc_id)
        errors.raise_if_any()
        return contents

    @staticmethod
    def _check_vihf_consistency(errors: ErrorCollector, ss: SubmissionSetView, vihf: VihfContext) -> None:
        if ss.patient_id and vihf.patient_cx != ss.patient_id:
            errors.add("XDSPatientIdDoesNotMatch", f"VIHF resource-id {vihf.patient_cx!r} differs from SubmissionSet "
                                                   f"patientId {ss.patient_id!r}", ss.id)
        structures = {normalize_structure_id(s) for s in rules.structure_ids(ss, c.SS_AUTHOR)}
        if structures and vihf.structure_id not in structures:
            errors.add(rules.META, f"no SubmissionSet authorInstitution matches the VIHF Identifiant_Structure "
                                   f"{vihf.structure_id!r} (found {sorted(structures)})", ss.id)
        elif not structures:
            errors.add(rules.META, "SubmissionSet author has no authorInstitution with a structure id", ss.id)

    def _check_contents(self, errors: ErrorCollector, sub: Submission, contents: dict[str, bytes],
                        kinds: dict[str, str]) -> None:
        entries = {doc.id for doc in sub.documents}
        for doc_id in contents:
            if doc_id not in entries:
                errors.add("XDSMissingDocumentMetadata", f"xdsb:Document {doc_id} has no ExtrinsicObject", doc_id)
        for doc in sub.documents:
            data = contents.get(doc.id)
            if data is None:
                errors.add("XDSMissingDocument", f"ExtrinsicObject {doc.id} has no attached xdsb:Document", doc.id)
                continue
            declared_hash = doc.slot("hash")
            if declared_hash and declared_hash.lower() != hashlib.sha1(data).hexdigest():
                errors.add("XDSNonIdenticalHash", f"DocumentEntry {doc.id} (uniqueId {doc.unique_id}): hash "
                                                  f"{declared_hash} is not the SHA-1 of the attached document", doc.id)
            declared_size = doc.slot("size")
            if declared_size and declared_size.isdigit() and int(declared_size) != len(data):
                errors.add("XDSNonIdenticalSize", f"DocumentEntry {doc.id} (uniqueId {doc.unique_id}): size "
                                                  f"{declared_size} but {len(data)} bytes attached", doc.id)
            if kinds.get(doc.id) == rules.KIND_KOS:
                self._check_kos_content(errors, doc, data)
            elif kinds.get(doc.id) == rules.KIND_SIGNATURE:
                self._check_signature_content(errors, doc, data, sub, contents)

    @staticmethod
    def _check_kos_content(errors: ErrorCollector, doc: DocumentEntryView, data: bytes) -> None:
        import pydicom  # imported lazily: only KOS submissions need it
        from pydicom.errors import InvalidDicomError

        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        except (InvalidDicomError, Exception) as exc:
            errors.add("InvalidDocumentContent", f"KOS {doc.id}: attached bytes are not a DICOM file ({exc})", doc.id)
            return
        if str(ds.get("SOPClassUID", "")) != KOS_SOP_CLASS:
            errors.add("InvalidDocumentContent", f"KOS {doc.id}: SOP Class {ds.get('SOPClassUID')} is not Key Object "
                                                 f"Selection ({KOS_SOP_CLASS})", doc.id)
        if doc.unique_id and str(ds.get("SOPInstanceUID", "")) != doc.unique_id:
            errors.add("InvalidDocumentContent", f"KOS {doc.id}: uniqueId {doc.unique_id} is not the SOP Instance UID "
                                                 f"{ds.get('SOPInstanceUID')}", doc.id)
        ins = doc.patient_id.split("^", 1)[0]
        if ins and str(ds.get("PatientID", "")) != ins:
            errors.add("XDSPatientIdDoesNotMatch", f"KOS {doc.id}: DICOM PatientID {ds.get('PatientID')!r} is not "
                                                   f"the INS {ins!r} of the DocumentEntry", doc.id)

    def _check_signature_content(self, errors: ErrorCollector, doc: DocumentEntryView, data: bytes,
                                 sub: Submission, contents: dict[str, bytes]) -> None:
        """IHE DSG: a valid XAdES signature whose signed manifest lists every other document with its digest."""
        try:
            verified = verify_dsg(data, self.signers)
        except DsgRefused as exc:
            errors.add("InvalidDocumentContent", f"signature {doc.id}: {exc}", doc.id)
            return
        if verified.purpose != c.SIG_EVENT_CODE:
            errors.add("InvalidDocumentContent", f"signature {doc.id}: purposeOfSignature {verified.purpose!r} is "
                                                 f"not {c.SIG_EVENT_CODE}", doc.id)
        lot = {other.unique_id: contents[other.id] for other in sub.documents
               if other.id != doc.id and other.id in contents}
        for unique_id in sorted(set(verified.digests) - set(lot)):
            errors.add("InvalidDocumentContent", f"signature {doc.id}: manifest lists {unique_id}, which is not a "
                                                 "document of this submission", doc.id)
        for unique_id, document in lot.items():
            listed = verified.digests.get(unique_id)
            if listed is None:
                errors.add("InvalidDocumentContent", f"signature {doc.id}: manifest does not list document "
                                                     f"{unique_id}", doc.id)
            elif hashlib.new(listed[0], document).digest() != listed[1]:
                errors.add("InvalidDocumentContent", f"signature {doc.id}: manifest digest of {unique_id} "
                                                     "does not match the submitted bytes", doc.id)

    @staticmethod
    def _check_associations(errors: ErrorCollector, sub: Submission, ss: SubmissionSetView,
                            kinds: dict[str, str]) -> None:
        docs = {d.id: d for d in sub.documents}
        members: dict[str, int] = {}
        signed = set()
        for a in sub.associations:
            where = a.id or "(association without id)"
            if not a.id:
                errors.add(rules.META, "Association without id", "")
            if a.type == c.ASSOC_HAS_MEMBER:
                if a.source != ss.id:
                    errors.add(rules.META, f"HasMember {where}: sourceObject {a.source!r} is not the SubmissionSet",
                               where)
                status = a.slots.get("SubmissionSetStatus", [])
                if a.target in docs:
                    members[a.target] = members.get(a.target, 0) + 1
                    if status != ["Original"]:
                        errors.add(rules.META, f"HasMember {where}: slot SubmissionSetStatus must be Original for a "
                                               f"submitted document (got {status})", where)
                elif not a.target.startswith("urn:uuid:"):
                    errors.add("UnresolvedReferenceException", f"HasMember {where}: targetObject {a.target!r} is "
                                                               "neither in the submission nor a registry entryUUID",
                               where)
            elif a.type == c.ASSOC_SIGNS:
                if kinds.get(a.source) != rules.KIND_SIGNATURE:
                    errors.add(rules.META, f"signs {where}: sourceObject {a.source!r} is not a signature document of "
                                           "the submission", where)
                if a.target != ss.id:
                    errors.add(rules.META, f"signs {where}: targetObject {a.target!r} must be the SubmissionSet "
                                           f"{ss.id}", where)
                signed.add(a.source)
            elif a.type in c.ASSOC_RELATIONSHIPS:
                if a.source not in docs:
                    errors.add("UnresolvedReferenceException", f"{a.type} {where}: sourceObject {a.source!r} is not a "
                                                               "DocumentEntry of the submission", where)
                if a.type != c.ASSOC_RPLC:
                    errors.add(rules.META, f"{a.type} {where}: only RPLC relationships are accepted by the DMP",
                               where)
                elif not a.target.startswith("urn:uuid:"):
                    errors.add("UnresolvedReferenceException", f"RPLC {where}: targetObject {a.target!r} must be the "
                                                               "entryUUID of a registry document", where)
            else:
                errors.add(rules.META, f"Association {where}: associationType {a.type!r} not allowed in ITI-41",
                           where)
        for doc_id in docs:
            if members.get(doc_id, 0) != 1:
                errors.add(rules.META, f"DocumentEntry {doc_id} needs exactly one HasMember association from the "
                                       f"SubmissionSet (found {members.get(doc_id, 0)})", doc_id)
            if kinds.get(doc_id) == rules.KIND_SIGNATURE and doc_id not in signed:
                errors.add(rules.META, f"signature document {doc_id} has no signs association to the SubmissionSet",
                           doc_id)

    def _check_registry_state(self, errors: ErrorCollector, sub: Submission, ss: SubmissionSetView,
                              vihf: VihfContext) -> None:
        unique_ids = [d.unique_id for d in sub.documents if d.unique_id] + ([ss.unique_id] if ss.unique_id else [])
        seen = set()
        for uid in unique_ids:
            if uid in seen:
                errors.add("XDSRegistryDuplicateUniqueIdInMessage", f"uniqueId {uid} used twice in the submission",
                           uid)
            seen.add(uid)
        for uid in sorted(self.store.existing_unique_ids(unique_ids)):
            errors.add("XDSDuplicateUniqueIdInRegistry", f"uniqueId {uid} already registered", uid)
        uuids = [i for i in sub.ids if i.startswith("urn:uuid:")]
        for ident in sorted(self.store.existing_entry_uuids(uuids)):
            errors.add(rules.META, f"entryUUID {ident} of a submitted object already exists in the registry", ident)
        docs = {d.id: d for d in sub.documents}
        for a in sub.associations:
            if a.type == c.ASSOC_HAS_MEMBER and a.target not in docs and a.target.startswith("urn:uuid:"):
                if self.store.document_by_uuid(a.target) is None:
                    errors.add("UnresolvedReferenceException", f"HasMember {a.id}: target {a.target} is not in the "
                                                               "registry", a.id)
            if a.type != c.ASSOC_RPLC or a.source not in docs or not a.target.startswith("urn:uuid:"):
                continue
            old = self.store.document_by_uuid(a.target)
            if old is None:
                errors.add("UnresolvedReferenceException", f"RPLC {a.id}: replaced document {a.target} is not in the "
                                                           "registry", a.id)
            elif old.status != c.STATUS_APPROVED:
                errors.add("XDSRegistryDeprecatedDocumentError", f"RPLC {a.id}: replaced document {a.target} has "
                                                                 f"status {old.status}, not Approved", a.id)
            elif old.patient_id != docs[a.source].patient_id:
                errors.add("XDSPatientIdDoesNotMatch", f"RPLC {a.id}: replaced document {a.target} belongs to "
                                                       f"patient {old.patient_id}", a.id)
            elif old.author_structure != vihf.structure_id:
                errors.add("XDSRegistryError", f"RPLC {a.id}: only the author structure {old.author_structure} may "
                                               f"replace {a.target} (VIHF structure {vihf.structure_id})", a.id)

    def _commit(self, sub: Submission, ss: SubmissionSetView, contents: dict[str, bytes], kinds: dict[str, str],
                vihf: VihfContext) -> None:
        mapping = assign_uuids(sub.object_list)

        def new_id(ident: str) -> str:
            return mapping.get(ident, ident)

        now = time.time()
        ss_uuid = new_id(ss.id)
        submission_time = ss.slot("submissionTime") or ""
        ops = [DmpStore.insert_submission_set_op(ss_uuid, ss.unique_id, ss.patient_id, submission_time,
                                                 vihf.structure_id, etree.tostring(ss.element))]
        replaced = {a.source: a.target for a in sub.associations if a.type == c.ASSOC_RPLC}
        for doc in sub.documents:
            data = contents[doc.id]
            stored = StoredDocument(
                entry_uuid=new_id(doc.id), unique_id=doc.unique_id, patient_id=doc.patient_id,
                status=c.STATUS_APPROVED, kind=kinds[doc.id], mime_type=doc.mime_type,
                class_code=_code_string(doc, c.DE_CLASS_CODE), type_code=_code_string(doc, c.DE_TYPE_CODE),
                format_code=_code_string(doc, c.DE_FORMAT_CODE),
                practice_setting=_code_string(doc, c.DE_PRACTICE_SETTING),
                facility_type=_code_string(doc, c.DE_FACILITY_TYPE),
                event_codes=[[e.code, e.coding_scheme[0] if e.coding_scheme else ""]
                             for e in doc.coded(c.DE_EVENT_CODE)],
                confidentiality=[[e.code, e.coding_scheme[0] if e.coding_scheme else ""]
                                 for e in doc.coded(c.DE_CONFIDENTIALITY)],
                reference_ids=doc.slots.get(c.SLOT_REFERENCE_ID_LIST, []),
                creation_time=doc.slot("creationTime") or "", service_start=doc.slot("serviceStartTime") or "",
                service_stop=doc.slot("serviceStopTime") or "", submission_time=submission_time,
                hash=hashlib.sha1(data).hexdigest(), size=len(data), author_structure=vihf.structure_id,
                submission_set=ss_uuid, replaces=replaced.get(doc.id), xml=etree.tostring(doc.element),
                content=data, received_at=now,
            )
            ops.append(DmpStore.insert_document_op(stored))
        for a in sub.associations:
            ops.append(DmpStore.insert_association_op(new_id(a.id) or f"urn:uuid:{uuid.uuid4()}", a.type,
                                                      new_id(a.source), new_id(a.target), etree.tostring(a.element)))
            if a.type == c.ASSOC_RPLC:
                ops.append(DmpStore.set_status_op(a.target, c.STATUS_DEPRECATED))
        self.store.write(ops)

    # ------------------------------------------------------------------ ITI-18
    def stored_query(self, payload: etree._Element, vihf: VihfContext) -> etree._Element:
        query = read_query(payload)
        docs = run_query(self.store, query)
        if query.return_type == "ObjectRef":
            objects = [object_ref(d) for d in docs]
        else:
            objects = [leaf_class(d, self.repository_unique_id) for d in docs]
        return adhoc_query_response(objects)

    # ------------------------------------------------------------------ ITI-43
    def retrieve(self, payload: etree._Element, vihf: VihfContext
                 ) -> tuple[etree._Element, list[tuple[str, str, bytes]]]:
        if payload.tag != f"{{{c.XDSB}}}RetrieveDocumentSetRequest":
            raise XdsRefusal.one("XDSRepositoryError", f"expected xdsb:RetrieveDocumentSetRequest, got {payload.tag}")
        requests = payload.findall(f"{{{c.XDSB}}}DocumentRequest")
        if not requests:
            raise XdsRefusal.one("XDSRepositoryError", "RetrieveDocumentSetRequest without DocumentRequest")
        found: list[tuple[str, str, str, str]] = []
        attachments: list[tuple[str, str, bytes]] = []
        errors: list[RegistryErrorItem] = []
        for req in requests:
            repo = req.findtext(f"{{{c.XDSB}}}RepositoryUniqueId", default="").strip()
            unique_id = req.findtext(f"{{{c.XDSB}}}DocumentUniqueId", default="").strip()
            if repo != self.repository_unique_id:
                errors.append(RegistryErrorItem("XDSUnknownRepositoryId", f"repository {repo!r} is not "
                                                f"{self.repository_unique_id}", unique_id))
                continue
            doc = self.store.document_by_unique_id(unique_id)
            if doc is None or doc.status == c.STATUS_DELETED:
                errors.append(RegistryErrorItem("XDSDocumentUniqueIdError", f"document {unique_id} is not available",
                                                unique_id))
                continue
            content_id = f"doc{len(found) + 1}.{uuid.uuid4().hex}@drimbox-dmp-sim"
            found.append((repo, unique_id, doc.mime_type, content_id))
            attachments.append((content_id, doc.mime_type, doc.content))
        return retrieve_response(found, errors), attachments

    # ------------------------------------------------------------------ ITI-57
    def update_status(self, payload: etree._Element, vihf: VihfContext) -> etree._Element:
        if payload.tag != f"{{{c.LCM}}}SubmitObjectsRequest":
            raise XdsRefusal.one(rules.META, f"expected lcm:SubmitObjectsRequest, got {payload.tag}")
        object_list = payload.find(f"{{{c.RIM}}}RegistryObjectList")
        if object_list is None:
            raise XdsRefusal.one(rules.META, "rim:RegistryObjectList missing")
        sub = read_submission(object_list)
        errors = ErrorCollector()
        ss = rules.check_structure(errors, sub, require_documents=False)
        if ss is None:
            errors.refuse()
        rules.check_submission_set(errors, ss)
        self._check_vihf_consistency(errors, ss, vihf)
        if sub.documents:
            errors.add("XDSMetadataUpdateError", "this DMP accepts only availability status updates in ITI-57",
                       sub.documents[0].id)
        updates = [a for a in sub.associations if a.type == c.ASSOC_UPDATE_AVAILABILITY]
        for a in sub.associations:
            if a.type != c.ASSOC_UPDATE_AVAILABILITY and a.type != c.ASSOC_HAS_MEMBER:
                errors.add(rules.META, f"Association {a.id}: type {a.type} not allowed here", a.id)
        if not updates:
            errors.add(rules.META, "no UpdateAvailabilityStatus association", ss.id)
        errors.raise_if_any()
        with self._submit_lock:
            ops = []
            for a in updates:
                original = a.slots.get("OriginalStatus", [])
                new = a.slots.get("NewStatus", [])
                if a.source != ss.id:
                    errors.add(rules.META, f"{a.id}: sourceObject must be the SubmissionSet", a.id)
                if len(original) != 1 or len(new) != 1:
                    errors.add(rules.META, f"{a.id}: slots OriginalStatus and NewStatus need one value each", a.id)
                    continue
                doc = self.store.document_by_uuid(a.target)
                if doc is None:
                    errors.add("UnresolvedReferenceException", f"{a.id}: target {a.target} is not a registry "
                                                               "document", a.id)
                    continue
                if doc.status != original[0]:
                    errors.add("XDSMetadataUpdateError", f"{a.id}: document {a.target} has status {doc.status}, not "
                                                         f"OriginalStatus {original[0]}", a.id)
                elif (original[0], new[0]) not in ((c.STATUS_APPROVED, c.STATUS_DELETED),
                                                   (c.STATUS_APPROVED, c.STATUS_DEPRECATED),
                                                   (c.STATUS_DEPRECATED, c.STATUS_APPROVED)):
                    errors.add("XDSMetadataUpdateError", f"{a.id}: status change {original[0]} -> {new[0]} not "
                                                         "allowed", a.id)
                elif doc.patient_id != ss.patient_id:
                    errors.add("XDSPatientIdDoesNotMatch", f"{a.id}: document {a.target} belongs to patient "
                                                           f"{doc.patient_id}, SubmissionSet to {ss.patient_id}", a.id)
                elif doc.author_structure != vihf.structure_id:
                    errors.add("XDSMetadataUpdateError", f"{a.id}: only the author structure {doc.author_structure} "
                                                         f"may change document {a.target} (VIHF structure "
                                                         f"{vihf.structure_id})", a.id)
                else:
                    ops.append(DmpStore.set_status_op(a.target, new[0]))
            if not errors and self.store.existing_unique_ids([ss.unique_id]):
                errors.add("XDSDuplicateUniqueIdInRegistry", f"uniqueId {ss.unique_id} already registered",
                           ss.unique_id)
            errors.raise_if_any()
            mapping = assign_uuids(sub.object_list)
            ops.insert(0, DmpStore.insert_submission_set_op(mapping.get(ss.id, ss.id), ss.unique_id, ss.patient_id,
                                                            ss.slot("submissionTime") or "", vihf.structure_id,
                                                            etree.tostring(ss.element)))
            for a in sub.associations:
                ops.append(DmpStore.insert_association_op(mapping.get(a.id, a.id), a.type,
                                                          mapping.get(a.source, a.source), a.target,
                                                          etree.tostring(a.element)))
            self.store.write(ops)
        return registry_response()
