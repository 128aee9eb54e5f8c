"""Past the message store or disk quota a running box refuses a message with AR naming the quota, and keeps its
header for the operator (Hl7.MessageStoreQuotaBytes, Hl7.MinFreeDiskBytes)."""

from __future__ import annotations

import pytest
from source_helpers import mllp, new_study, report_for

from drimbox.samples.reports import make_oru, new_uid
from drimbox.testing import BoxClient, start_box

pytestmark = pytest.mark.integration


def messages(operator: BoxClient) -> list[dict]:
    return operator.get("/drimbox/messages?limit=50").json()


@pytest.mark.parametrize("quota", ["MessageStoreQuotaBytes", "MinFreeDiskBytes"])
def test_a_message_past_the_quota_gets_ar_naming_it_and_is_listed(tmp_path, pki, quota):
    content, _ = new_study(tmp_path, "q1", series=(("CT", 1),))
    first = make_oru(report_for(content, report_id=new_uid()), control_id="QUOTA-1")
    refused_id = new_uid()
    second = make_oru(report_for(content, report_id=refused_id), control_id="QUOTA-2")
    # room for the first message only / a disk that can never have enough room left
    limit = {"MessageStoreQuotaBytes": len(first) + len(second) // 2, "MinFreeDiskBytes": 2 ** 62}[quota]
    box = start_box(tmp_path / "box", pki=pki, settings={"Hl7": {quota: limit}})
    try:
        operator = BoxClient(box)
        if quota == "MessageStoreQuotaBytes":
            code, text = mllp(box, first)
            assert code == "AA", text
        code, text = mllp(box, second)
        assert code == "AR" and f"DRIMbox.Hl7.{quota}" in text, text
        assert "quota reached" in text

        listed = {m["control_id"]: m for m in messages(operator)}
        refused = listed["QUOTA-2"]
        assert refused["ack_code"] == "AR" and quota in refused["ack_text"]
        assert refused["id"] in {m["id"] for m in operator.get("/drimbox/messages?problems=1").json()}
        kept = operator.get(f"/drimbox/messages/{refused['id']}?format=raw").content
        assert kept.startswith(b"MSH|") and b"QUOTA-2" in kept and b"\r" not in kept  # its header only
        assert operator.get(f"/drimbox/reports/{refused_id}").status_code == 404
        if quota == "MessageStoreQuotaBytes":
            assert listed["QUOTA-1"]["ack_code"] == "AA"
    finally:
        box.stop()
