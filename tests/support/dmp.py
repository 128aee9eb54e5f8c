"""The DMP simulator as the box's tests run it: mutual TLS with the test PKI, signatures checked against it."""

from __future__ import annotations

from pathlib import Path

from drimbox.sim.dmp.server import DmpSimulator

APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"


def start_dmp_simulator(folder: Path, pki: dict) -> DmpSimulator:
    """Started; the caller stops it."""
    server = pki["servers"]["dmp-sim"]
    simulator = DmpSimulator(str(folder), tls_cert=server["fullchain"], tls_key=server["key"],
                             client_ca=pki["ca_bundle"], signing_ca=pki["ca_bundle"])
    simulator.start()
    return simulator


def kos_summaries(simulator: DmpSimulator, study_uid: str) -> list[dict]:
    """The simulator's KOS documents of one study (their referenceIds carry the study UID), oldest first."""
    return [d for d in (x.summary() for x in simulator.store.all_documents())
            if d["kind"] == "KOS" and any(study_uid in r for r in d["referenceIds"])]
