""""Import into my PACS": a cached foreign study becomes permanent, optionally under the local IPP, and is sent
to the local PACS by C-STORE.

Orthanc 1.10 refuses to replace PatientID at study level ("the parent PatientID cannot be manually modified"),
and a patient-level ``/modify`` would also move the patient's other cached studies. So each instance goes
through ``/instances/{id}/modify`` (PatientID and IssuerOfPatientID replaced, every UID kept with ``Keep`` and
``Force``), the modified file is stored back and the original study deleted: these bytes cross Python, on the
loopback only, on a worker thread. The C-STORE to the local PACS is Orthanc's (``/modalities/{name}/store``).
The outcome goes to the cache record, where the exam's page reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from drimbox.consumer.settings import ConsumerSettings
from drimbox.pacs.rest import OrthancRest, OrthancRestError
from drimbox.store.consumer import RetrievalStore

log = logging.getLogger("drimbox.consumer")

MODALITY_NAME = "drimbox-local-pacs"
KEPT_UIDS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"]


@dataclass(frozen=True)
class ImportRequest:
    study_uid: str
    local_patient_id: str  # '' keeps the source's PatientID (the INS)
    local_issuer: str
    who: dict  # audit fields


@dataclass(frozen=True)
class ImportOutcome:
    ok: bool
    sent_to: str = ""  # the local PACS's AE title, '' when none is configured
    detail: str = ""


class StudyImporter:
    def __init__(self, *, rest: OrthancRest, retrievals: RetrievalStore, settings: ConsumerSettings,
                 executor: Executor, on_done: Callable[[ImportRequest, ImportOutcome], None]):
        self.rest = rest
        self.retrievals = retrievals
        self.settings = settings
        self.executor = executor
        self.on_done = on_done

    def start(self, request: ImportRequest) -> bool:
        """Start the import unless the study is no longer cached or an import runs; True when started."""
        if not self.retrievals.claim_import(request.study_uid):
            return False
        self.executor.submit(self._run_and_report, request)
        return True

    def _run_and_report(self, request: ImportRequest) -> None:
        try:
            outcome = self.run(request)
        except (OrthancRestError, OSError, KeyError, ValueError) as error:
            outcome = ImportOutcome(False, detail=f"{type(error).__name__}: {error}")
        except Exception as error:  # a bug must leave an explained state, not an import stuck "importing"
            log.exception("importing study %s failed", request.study_uid)
            outcome = ImportOutcome(False, detail=f"{type(error).__name__}: {error}")
        self.retrievals.end_import(request.study_uid, ok=outcome.ok, detail=outcome.detail)
        self.on_done(request, outcome)

    def run(self, request: ImportRequest) -> ImportOutcome:
        study_id = self._study_id(request.study_uid)
        if study_id is None:
            return ImportOutcome(False, detail="the study is no longer in this box")
        if request.local_patient_id:
            tags = self.rest.get_json(f"/studies/{study_id}/shared-tags", simplify="")
            wanted = {"PatientID": request.local_patient_id, "IssuerOfPatientID": request.local_issuer}
            if any(tags.get(name, "") != value for name, value in wanted.items()):
                study_id = self._reidentify(study_id, wanted,
                                            same_patient_id=tags.get("PatientID", "") == request.local_patient_id)
        if not self.settings.import_aet:
            return ImportOutcome(True, detail="kept in this box (no local PACS configured)")
        self.rest.put_json(f"/modalities/{MODALITY_NAME}", {
            "AET": self.settings.import_aet, "Host": self.settings.import_host, "Port": self.settings.import_port})
        self.rest.post_json(f"/modalities/{MODALITY_NAME}/store", {"Resources": [study_id], "Synchronous": True})
        return ImportOutcome(True, self.settings.import_aet, f"sent to {self.settings.import_aet}")

    def _reidentify(self, study_id: str, wanted: dict[str, str], same_patient_id: bool) -> str:
        """Store every instance again under ``wanted`` patient tags, same UIDs; the original copy goes.

        Orthanc's resource ids hash PatientID and the UIDs: with a new PatientID the copy is a new study and the
        original is deleted after; with the same PatientID (only the issuer changes) each original instance
        must be deleted before its modified copy can be stored under the same id.
        """
        new_study = study_id
        for instance in self.rest.get_json(f"/studies/{study_id}/instances"):
            data = self.rest.post_for_bytes(f"/instances/{instance['ID']}/modify",
                                            {"Replace": wanted, "Keep": KEPT_UIDS, "Force": True})
            if same_patient_id:
                self.rest.delete(f"/instances/{instance['ID']}")
            new_study = self.rest.post_bytes("/instances", data)["ParentStudy"]
        if not same_patient_id:
            if new_study == study_id:
                raise ValueError(f"the modified instances are still in study {study_id}")
            self.rest.delete(f"/studies/{study_id}")
        return new_study

    def _study_id(self, study_uid: str) -> str | None:
        matches = [m for m in self.rest.post_json("/tools/lookup", study_uid) if m.get("Type") == "Study"]
        return matches[0]["ID"] if matches else None
