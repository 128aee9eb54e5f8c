"""Helpers shared by the test suite, the demo and the benchmarks: a whole DRIM-M network on one machine."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from drimbox.launcher.box_instance import BoxInstance
from drimbox.launcher.ports import BoxPorts
from drimbox.reports.model import PatientIdentity, StudyOrder
from drimbox.samples.reports import DEMO_PATIENT
from drimbox.samples.studies import make_study
from drimbox.studies.model import StudyContent


# The national validator's Accept: ten comma-separated items with a trailing comma (docs/conformance.md).
NATIONAL_ACCEPT = ",".join(
    f'multipart/related; type="application/dicom";transfer-syntax={ts};q={q};boundary=**'
    for ts, q in (
        ("1.2.840.10008.1.2.4.70", "1"), ("1.2.840.10008.1.2.4.57", "0.9"), ("1.2.840.10008.1.2.4.80", "0.8"),
        ("1.2.840.10008.1.2.4.81", "0.7"), ("1.2.840.10008.1.2.4.90", "0.6"), ("1.2.840.10008.1.2.4.91", "0.5"),
        ("1.2.840.10008.1.2.5", "0.4"), ("1.2.840.10008.1.2.4.50", "0.3"), ("1.2.840.10008.1.2.1", "0.2"),
        ("1.2.840.10008.1.2", "0.1"),
    )) + ","
ANY_SYNTAX = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.2, what: str = "condition"):
    """Poll until ``predicate()`` returns something truthy; return it, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")


# storescu proposes uncompressed syntaxes unless told otherwise, and cannot decompress JPEG-LS on the fly
_PROPOSE = {"1.2.840.10008.1.2.4.80": "-xt", "1.2.840.10008.1.2.4.81": "-xu", "1.2.840.10008.1.2.4.70": "-xs",
            "1.2.840.10008.1.2.4.57": "-xs", "1.2.840.10008.1.2.4.90": "-xv", "1.2.840.10008.1.2.4.91": "-xw",
            "1.2.840.10008.1.2.5": "-xr"}


def storescu_proposal(path: Path) -> list[str]:
    """The storescu option proposing the stored transfer syntax of the files under ``path``."""
    import pydicom

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        try:
            syntax = pydicom.dcmread(file, stop_before_pixels=True).file_meta.TransferSyntaxUID
        except Exception:
            continue
        return [_PROPOSE[syntax]] if syntax in _PROPOSE else []
    return []


def store_scu(box: BoxInstance, path: Path) -> None:
    """Send files to the box with dcmtk's storescu (a real DICOM client), in their stored transfer syntax."""
    path = Path(path)
    argv = ["storescu", "-aet", box.sender_aet, "-aec", box.aet, "+sd", "+r", *storescu_proposal(path), "127.0.0.1",
            str(box.ports.dicom), str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=dict(os.environ, TCP_NODELAY="1"))
    if result.returncode != 0:
        raise AssertionError(f"storescu failed ({result.returncode}): {result.stderr[-2000:]}")


def demo_study(out_dir: Path, *, patient: PatientIdentity = DEMO_PATIENT, accession: str = "ACC0001",
               series=(("CT", 3), ("CT", 2)), **kwargs) -> StudyContent:
    """A small study whose patient and accession agree with the demo report."""
    patient_id = patient.ipp or patient.ins
    if not patient_id:
        raise ValueError("the patient of a demo study needs an IPP or an INS")
    return make_study(out_dir, patient_id=patient_id, patient_name=f"{patient.family}^{patient.given}",
                      birth_date=patient.birth_date, sex=patient.sex, accession=accession, series=series, **kwargs)


def demo_order(study_uid: str, accession: str = "ACC0001", order: str = "ORD0001") -> StudyOrder:
    return StudyOrder(study_uid, accession=accession, accession_issuer="1.2.250.1.999.1.2", order=order,
                      order_issuer="1.2.250.1.999.1.3")


@dataclass
class BoxClient:
    """The operator's view of a running box, over its admin entry (TLS + password)."""

    box: BoxInstance
    session: requests.Session = field(init=False)

    def __post_init__(self) -> None:
        self.session = self.box.operator_session()

    def get(self, path: str, **kwargs):
        return self.session.get(self.box.admin_url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs):
        return self.session.post(self.box.admin_url + path, timeout=60, **kwargs)

    def study(self, study_uid: str) -> dict:
        response = self.get(f"/drimbox/studies/{study_uid}")
        return response.json() if response.status_code == 200 else {}

    def wait_study(self, study_uid: str, predicate: Callable[[dict], bool], timeout: float = 60.0,
                   what: str = "study state") -> dict:
        return wait_for(lambda: (lambda s: s if s and predicate(s) else None)(self.study(study_uid)),
                        timeout=timeout, what=f"{what} of {study_uid}")


def start_box(data_dir: Path, **kwargs) -> BoxInstance:
    kwargs.setdefault("ports", BoxPorts.free())
    kwargs.setdefault("stable_age", 2)
    return BoxInstance(Path(data_dir), **kwargs).start()
