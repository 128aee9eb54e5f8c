"""What a crash or a second node leaves behind. A manifest and its DMP registration, a withdrawal and its deletion,
are recorded together: a crash between the two (here: the store failing on the second statement) must leave
neither, so the next pass does the whole. A study stays marked pending while it is looked at (a node dying then
leaves it to another node's sweep), and a mark made meanwhile survives the end of the pass."""

from __future__ import annotations

from typing import Callable

from drimbox.config.sections import IdentitySettings, PublicationSettings
from drimbox.pacs.reader import PacsStudy
from drimbox.pipeline.manifests import ManifestReconciler
from drimbox.samples.reports import DEMO_PATIENT, make_cda
from drimbox.samples.studies import make_study_content
from drimbox.store import Store
from drimbox.store.records import ReportState, StudyState
from drimbox.testing import demo_order


class CrashingStore(Store):
    """The process dies (an exception here) at the first enqueue of a publication while ``crash`` is set."""

    crash = False

    def enqueue_publication(self, **kwargs):
        if self.crash:
            raise RuntimeError("the node died here")
        return super().enqueue_publication(**kwargs)


class OnePacsStudy:
    def __init__(self, content):
        self.content = content
        self.while_reading: Callable[[], object] = lambda: None  # what happens elsewhere meanwhile

    def find_study(self, study_uid):
        return PacsStudy("orthanc-id", study_uid, is_stable=True) if study_uid == self.content.study_uid else None

    def study_content(self, study):
        self.while_reading()
        return self.content


def reconciler_with_a_reported_study(tmp_path):
    store = CrashingStore.open(f"sqlite:///{tmp_path / 'store.db'}")
    content = make_study_content(2, 3, patient_id=DEMO_PATIENT.ipp,
                                 patient_name=f"{DEMO_PATIENT.family}^{DEMO_PATIENT.given}",
                                 birth_date=DEMO_PATIENT.birth_date, sex=DEMO_PATIENT.sex)
    cda = make_cda(report_id="1.2.3.4.5", studies=[demo_order(content.study_uid, accession=content.accession)])
    store.save_report(report_id="1.2.3.4.5", message_id=None, state=ReportState.ACTIVE,
                      study_uids=[content.study_uid], flags={}, cda=cda)
    reconciler = ManifestReconciler(store, OnePacsStudy(content), IdentitySettings(), PublicationSettings())
    return store, reconciler, content.study_uid


def test_a_crash_before_the_registration_is_queued_leaves_no_manifest_and_the_next_pass_sends_it(tmp_path):
    store, reconciler, study_uid = reconciler_with_a_reported_study(tmp_path)
    store.crash = True
    assert reconciler.reconcile(study_uid).state == StudyState.FAILED
    assert store.manifests_for_study(study_uid) == []

    store.crash = False
    result = reconciler.reconcile(study_uid)
    assert result.state == StudyState.MANIFEST_READY and result.new_manifest
    jobs = store.list_publications(study_uid=study_uid)
    assert [(j.action, j.state, j.kos_uid) for j in jobs] == [("register", "queued", result.new_manifest)]


def test_a_crash_before_the_deletion_is_queued_leaves_the_manifest_current_and_the_next_pass_deletes(tmp_path):
    store, reconciler, study_uid = reconciler_with_a_reported_study(tmp_path)
    kos_uid = reconciler.reconcile(study_uid).new_manifest
    registration = store.list_publications(study_uid=study_uid)[0]
    store.finish_publication(registration.id, "done", entry_uuid="urn:uuid:1")  # Approved in the DMP
    store.set_manifest_dmp(kos_uid, dmp_status="approved", entry_uuid="urn:uuid:1")
    store.set_report_state("1.2.3.4.5", ReportState.WITHDRAWN, problem="withdrawn by the RIS")

    store.crash = True
    assert reconciler.reconcile(study_uid).state == StudyState.FAILED
    current = store.current_manifest(study_uid)
    assert current is not None and current.kos_uid == kos_uid

    store.crash = False
    assert reconciler.reconcile(study_uid).state == StudyState.WITHDRAWN
    jobs = store.list_publications(study_uid=study_uid)
    assert sorted((j.action, j.state) for j in jobs) == [("delete", "queued"), ("register", "done")]
    assert store.get_manifest(kos_uid).dmp_status == "deletion_queued"



def test_a_study_stays_pending_while_it_is_looked_at_then_is_settled(tmp_path):
    store, reconciler, study_uid = reconciler_with_a_reported_study(tmp_path)
    store.mark_pending(study_uid)  # the report's arrival
    pending_meanwhile: list[list[str]] = []
    reconciler.pacs.while_reading = lambda: pending_meanwhile.append(store.pending_studies())
    assert reconciler.reconcile(study_uid).state == StudyState.MANIFEST_READY
    assert pending_meanwhile == [[study_uid]]  # a node dying here leaves the study to another node's sweep
    assert store.pending_studies() == []


def test_a_mark_made_while_the_study_is_looked_at_survives_the_pass(tmp_path):
    store, reconciler, study_uid = reconciler_with_a_reported_study(tmp_path)
    store.mark_pending(study_uid)
    reconciler.pacs.while_reading = lambda: store.mark_pending(study_uid)  # e.g. a key image note arrives
    reconciler.reconcile(study_uid)
    assert store.pending_studies() == [study_uid]
    reconciler.pacs.while_reading = lambda: None
    reconciler.reconcile(study_uid)
    assert store.pending_studies() == []


def test_a_study_not_stable_yet_stays_pending(tmp_path):
    store, reconciler, study_uid = reconciler_with_a_reported_study(tmp_path)
    reconciler.pacs.find_study = lambda uid: PacsStudy("orthanc-id", uid, is_stable=False)
    assert reconciler.reconcile(study_uid).state == StudyState.WAITING_STABLE
    assert store.pending_studies() == [study_uid]
