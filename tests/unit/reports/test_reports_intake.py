"""Report intake on a real SQLite store: message/disk quota, a changed CDA under a known report id, warnings."""

from __future__ import annotations

import shutil

import pytest

from drimbox.config.sections import PublicationSettings
from drimbox.pipeline.intake import MessageQuota, ReportIntake
from drimbox.reports.ack import read_ack
from drimbox.reports.v2 import parse_er7
from drimbox.samples.reports import make_cda, make_oru, new_uid
from drimbox.store import Store
from drimbox.store.records import ReportState
from drimbox.testing import demo_order


@pytest.fixture
def store(tmp_path) -> Store:
    return Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")


class Scheduled(list):
    def __call__(self, study_uid: str) -> None:
        self.append(study_uid)


def intake_for(store: Store, quota: MessageQuota | None = None) -> tuple[ReportIntake, Scheduled]:
    scheduled = Scheduled()
    return ReportIntake(store, lambda study_uid: None, scheduled, PublicationSettings(), quota=quota), scheduled


def oru(report_id: str, study_uid: str, control_id: str, **cda_kwargs) -> bytes:
    # a fixed effective time: the same report sent twice is the same CDA even across a second boundary
    cda_kwargs.setdefault("effective_time", "20261201100000")
    return make_oru(make_cda(report_id=report_id, studies=[demo_order(study_uid)], **cda_kwargs),
                    control_id=control_id)


def err(ack: bytes) -> tuple[str, str]:
    segment = parse_er7(ack.decode()).first("ERR")
    assert segment is not None, ack
    return segment.component(3, 1), segment.field(4)


# --- quota ---------------------------------------------------------------------------------------------


def test_the_message_store_quota_refuses_with_ar_and_keeps_only_the_header(store):
    study_uid = new_uid()
    first = oru(new_uid(), study_uid, "Q1")
    refused_id = new_uid()
    second = oru(refused_id, study_uid, "Q2")
    intake, scheduled = intake_for(store, MessageQuota(max_total_bytes=len(first) + len(second) - 1))
    assert intake.receive_hl7(first)[1].code == "AA"
    assert scheduled == [study_uid]

    ack, outcome = intake.receive_hl7(second)
    assert outcome.code == "AR" and "DRIMbox.Hl7.MessageStoreQuotaBytes" in outcome.text
    assert f"{len(first)} of {len(first) + len(second) - 1} bytes used" in outcome.text
    assert read_ack(ack)[:2] == ("AR", "Q2")
    kept = store.get_message(outcome.message_id)
    assert kept is not None and kept.ack_code == "AR" and kept.raw == second.split(b"\r", 1)[0]
    assert kept.control_id == "Q2" and kept.errors == (outcome.text,)
    assert store.get_report(refused_id) is None
    assert scheduled == [study_uid]
    assert [(m.control_id, m.ack_code) for m in store.list_messages(problems_only=True)][0] == ("Q2", "AR")


def test_the_message_store_quota_counts_what_is_kept_and_zero_means_no_limit(store):
    study_uid = new_uid()
    sent = [oru(new_uid(), study_uid, f"Z{n}") for n in range(3)]
    intake, _ = intake_for(store, MessageQuota(max_total_bytes=0))
    assert [intake.receive_hl7(message)[1].code for message in sent] == ["AA"] * 3
    used = sum(len(message) for message in sent)
    assert store.stored_message_bytes() == used
    exact = MessageQuota(max_total_bytes=used + 1000)
    assert exact.refusal(store, 1000) == ""
    assert "MessageStoreQuotaBytes" in exact.refusal(store, 1001)


def test_the_disk_quota_refuses_when_too_little_would_stay_free(store, tmp_path):
    free = shutil.disk_usage(tmp_path).free
    roomy = MessageQuota(min_free_disk_bytes=1, disk_path=str(tmp_path))
    assert roomy.refusal(store, 1000) == ""
    full = MessageQuota(min_free_disk_bytes=free * 4, disk_path=str(tmp_path))
    reason = full.refusal(store, 1000)
    assert "disk quota reached" in reason and "DRIMbox.Hl7.MinFreeDiskBytes" in reason
    # the message's own size counts: free - size must stay at or above the minimum
    edge = MessageQuota(min_free_disk_bytes=500, disk_path=str(tmp_path), free_bytes=lambda path: 1500)
    assert edge.refusal(store, 1000) == ""
    assert "1500 bytes free" in edge.refusal(store, 1001)
    assert MessageQuota(min_free_disk_bytes=0, disk_path=str(tmp_path), free_bytes=lambda path: 0).refusal(
        store, 10) == ""

    intake, scheduled = intake_for(store, full)
    ack, outcome = intake.receive_hl7(oru(new_uid(), new_uid(), "D1"))
    assert outcome.code == "AR" and read_ack(ack)[0] == "AR" and "MinFreeDiskBytes" in read_ack(ack)[2]
    assert scheduled == [] and store.list_reports() == []


# --- conflicts -----------------------------------------------------------------------------------------


def test_a_changed_cda_under_a_known_report_id_is_a_conflict(store):
    intake, scheduled = intake_for(store)
    report_id, study_uid = new_uid(), new_uid()
    original = oru(report_id, study_uid, "C1")
    assert intake.receive_hl7(original)[1].code == "AA"
    record = store.get_report(report_id)
    assert record is not None and record.state == ReportState.ACTIVE

    changed = oru(report_id, study_uid, "C2", body_text="Un autre compte rendu sous le meme identifiant.")
    ack, outcome = intake.receive_hl7(changed)
    assert outcome.code == "AE" and read_ack(ack)[0] == "AE"
    assert err(ack) == ("205", "E")
    (reason,) = outcome.errors
    assert "conflict" in reason and report_id in reason and f"message #{record.message_id}" in reason
    kept = store.get_message(outcome.message_id)
    assert kept is not None and kept.raw == changed and kept.ack_code == "AE" and kept.errors == (reason,)
    after = store.get_report(report_id)
    assert after is not None and after.cda == record.cda and after.message_id == record.message_id
    assert after.state == ReportState.ACTIVE
    assert scheduled == [study_uid]

    # the same content again is only a repeat
    again = intake.receive_hl7(oru(report_id, study_uid, "C3"))[1]
    assert again.code == "AA" and any("already received" in w for w in again.warnings)


def test_a_changed_cda_conflicts_with_a_withdrawn_report_too(store):
    intake, _ = intake_for(store)
    report_id, study_uid = new_uid(), new_uid()
    assert intake.receive_hl7(oru(report_id, study_uid, "W1"))[1].code == "AA"
    withdrawal = make_oru(None, event="withdraw", report_id=report_id, control_id="W2")
    assert intake.receive_hl7(withdrawal)[1].code == "AA"
    outcome = intake.receive_hl7(oru(report_id, study_uid, "W3", body_text="Autre contenu."))[1]
    assert outcome.code == "AE" and "conflict" in outcome.text
    record = store.get_report(report_id)
    assert record is not None and record.state == ReportState.WITHDRAWN


def test_a_refused_report_may_be_sent_again_corrected(store):
    """A report refused (REJECTED) is not a conflict: the RIS corrects it and sends it again under its id."""
    intake, _ = intake_for(store)
    report_id, study_uid = new_uid(), new_uid()
    store.save_report(report_id=report_id, message_id=None, state=ReportState.REJECTED, study_uids=(study_uid,),
                      flags={}, cda=b"<ClinicalDocument/>", replaces_report_id=None, problem="accession mismatch",
                      viewer_partial_url=None)
    outcome = intake.receive_hl7(oru(report_id, study_uid, "R1"))[1]
    assert outcome.code == "AA", outcome.errors
    record = store.get_report(report_id)
    assert record is not None and record.state == ReportState.ACTIVE


def test_a_replaced_report_sent_again_stays_replaced(store):
    """A retransmission of version 1 after its replacement must not bring it back into force."""
    intake, scheduled = intake_for(store)
    first_id, second_id, study_uid = new_uid(), new_uid(), new_uid()
    original = oru(first_id, study_uid, "V1")
    assert intake.receive_hl7(original)[1].code == "AA"
    replacement = make_oru(make_cda(report_id=second_id, studies=[demo_order(study_uid)], replaces_report_id=first_id,
                                    version=2), control_id="V2")
    assert intake.receive_hl7(replacement)[1].code == "AA"
    assert len(scheduled) == 2
    store.set_fact(f"cancelled:{study_uid}", "1.0")

    outcome = intake.receive_hl7(original)[1]
    assert outcome.code == "AA"
    assert any("replaced by" in w and second_id in w and "nothing changes" in w for w in outcome.warnings)
    first = store.get_report(first_id)
    assert first is not None and first.state == ReportState.REPLACED and first.replaced_by_report_id == second_id
    assert store.get_fact(f"cancelled:{study_uid}") == "1.0"
    assert len(scheduled) == 2


# --- warnings and transport refusals for the operator ----------------------------------------------------------


def test_a_prt8_other_than_the_author_is_accepted_and_its_warning_kept(store):
    intake, scheduled = intake_for(store)
    raw = make_oru(make_cda(report_id=new_uid(), studies=[demo_order(new_uid())]), sending_structure="1999999999",
                   control_id="P1")
    ack, outcome = intake.receive_hl7(raw)
    assert outcome.code == "AA" and err(ack)[1] == "W"
    kept = store.get_message(outcome.message_id)
    assert kept is not None and kept.ack_code == "AA" and kept.errors == ()
    assert any("PRT-8" in w and "1999999999" in w for w in kept.warnings)
    assert [m.id for m in store.list_messages(problems_only=True)] == [kept.id]
    assert len(scheduled) == 1


def test_transport_refusals_are_listed_as_problems(store):
    intake, _ = intake_for(store)
    intake.record_refusal("mllp", "127.0.0.9", "too many MLLP connections from 127.0.0.9 (8 open)", b"")
    (listed,) = store.list_messages(problems_only=True)
    assert (listed.channel, listed.ack_code) == ("mllp", "AR")
    assert listed.ack_text == "127.0.0.9: too many MLLP connections from 127.0.0.9 (8 open)"
