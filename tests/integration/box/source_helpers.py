"""Helpers of the source-pipeline end-to-end tests (real Orthanc + nginx + plugin, real clients)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pydicom

from drimbox.launcher.box_instance import BoxInstance
from drimbox.reports.ack import read_ack
from drimbox.reports.mllp import send_message
from drimbox.samples.reports import make_cda, new_uid
from drimbox.testing import BoxClient, demo_order, demo_study, store_scu, wait_for

MANIFEST_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
INS = "279035121518989"
INS_OID = "1.2.250.1.213.1.4.10"


def mllp(box: BoxInstance, message: bytes) -> tuple[str, str]:
    """Send over MLLP; (MSA-1 code, text)."""
    code, _, text = read_ack(send_message("127.0.0.1", box.ports.hl7, message, timeout=30))
    return code, text


def new_study(tmp: Path, name: str, *, accession: str = "ACC0001", series=(("CT", 3), ("CT", 2)), **kwargs):
    """A demo study written under tmp/name (returns its content and directory)."""
    out = tmp / name
    content = demo_study(out, accession=accession, series=series, **kwargs)
    return content, out


def order_for(content, order: str = "ORD0001"):
    return demo_order(content.study_uid, accession=content.accession, order=order)


def report_for(*contents, report_id: str | None = None, **kwargs) -> bytes:
    return make_cda(report_id=report_id or new_uid(), studies=[order_for(c) for c in contents], **kwargs)


def kos_of(operator: BoxClient, study_uid: str) -> pydicom.Dataset:
    response = operator.get(f"/drimbox/studies/{study_uid}/kos")
    assert response.status_code == 200, response.text
    return pydicom.dcmread(io.BytesIO(response.content))


def wait_manifest(operator: BoxClient, study_uid: str, *, after: str | None = None, timeout: float = 60.0) -> dict:
    """Wait until the study has a current manifest (different from ``after``); returns the study status."""
    return operator.wait_study(
        study_uid, lambda s: s.get("state") == "manifest_ready" and s.get("kos")
        and s["kos"]["kos_uid"] != after, timeout=timeout,
        what="a manifest" + (f" other than {after}" if after else ""))


def referenced_sops(ds: pydicom.Dataset) -> set[str]:
    return {str(ref.ReferencedSOPInstanceUID)
            for study in ds.CurrentRequestedProcedureEvidenceSequence
            for series in study.ReferencedSeriesSequence for ref in series.ReferencedSOPSequence}


def study_sops(content) -> set[str]:
    return {i.sop_instance_uid for s in content.series for i in s.instances}


def dciodvfy(data: bytes, tmp: Path) -> str:
    path = tmp / f"kos-{abs(hash(data))}.dcm"
    path.write_bytes(data)
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("Error")]
    assert not errors, f"dciodvfy found errors:\n{output}"
    return output


def check_kos(box, operator: BoxClient, content, tmp, *, orders=("ORD0001",)) -> pydicom.Dataset:
    """Every property issue 2 asks of a manifest, on the KOS the operator API serves."""
    response = operator.get(f"/drimbox/studies/{content.study_uid}/kos")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/dicom")
    dciodvfy(response.content, tmp)
    ds = pydicom.dcmread(io.BytesIO(response.content))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"
    assert ds.ConceptNameCodeSequence[0].CodeValue == "113030"
    assert ds.StudyInstanceUID == content.study_uid
    # INS
    assert ds.PatientID == INS
    assert ds.IssuerOfPatientID == "ASIP-SANTE-INS-NIR"
    assert ds.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID == INS_OID
    assert ds.OtherPatientIDsSequence[0].PatientID == INS
    # orders
    requests_ = ds.ReferencedRequestSequence
    assert [r.AccessionNumber for r in requests_] == [content.accession] * len(orders)
    assert sorted(r.PlacerOrderNumberImagingServiceRequest for r in requests_) == sorted(orders)
    assert all(r.StudyInstanceUID == content.study_uid for r in requests_)
    assert requests_[0].IssuerOfAccessionNumberSequence[0].UniversalEntityID == "1.2.250.1.999.1.2"
    assert ds.get("AccessionNumber", "") == ""
    # every instance (key image notes included, manifests and rejection notes excluded)
    expected = {i.sop_instance_uid for s in content.series for i in s.instances
                if i.kind not in ("manifest", "rejection")}
    assert referenced_sops(ds) == expected
    # Retrieve URLs on the db entry
    for series in ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence:
        assert series.RetrieveURL == f"{box.wado_rs_base}/studies/{content.study_uid}/series/{series.SeriesInstanceUID}"
    # outside the study: not an instance in Orthanc, not in QIDO/WADO of the study
    assert operator.post("/tools/lookup", data=ds.SOPInstanceUID).json() == []
    qido = operator.get(f"/dicom-web/studies/{content.study_uid}/instances")
    assert qido.status_code == 200
    assert ds.SOPInstanceUID not in {i["00080018"]["Value"][0] for i in qido.json()}
    assert ds.SeriesInstanceUID not in {s.series_uid for s in content.series}
    metadata = operator.get(f"/dicom-web/studies/{content.study_uid}/metadata")
    assert ds.SOPInstanceUID not in metadata.text
    assert len(qido.json()) == content.instance_count
    return ds


__all__ = ["check_kos", "mllp", "new_study", "order_for", "report_for", "kos_of", "wait_manifest", "referenced_sops",
           "study_sops", "dciodvfy", "store_scu", "wait_for", "MANIFEST_SOP_CLASS", "INS", "INS_OID"]
