"""The consumer role on a two-box network: opening an exam on box-b that box-a published, against a plain
dicomweb-client retrieve and an Orthanc-to-Orthanc DICOMweb retrieve of the same study, and box-b's history page
for a patient with 200 DMP documents.

Run: .venv/bin/python bench/consumer.py [--small] [--images N] [--series N] [--history-documents N] [--workdir DIR]

It generates the national-like study once (1,300 CT 512x512 JPEG-LS lossless, ~230 MB; --small: 130 images),
starts the two-box network of ``drimbox run --two-boxes`` (DMP and PSC simulators, signed whitelist, box-a and
box-b, free loopback ports), stores the study in box-a by C-STORE, sends its report and waits for the KOS in the
DMP; then, in the same run:
- box-b: the appel contextuel, the PSC login and the access reason as a browser would, then "open exam": time to
  the first series stored in B (the exam page offers the viewer), to the first image displayable (the first
  instance's metadata answers through B's vi entry with the viewer session) and to the whole study stored in B
  (the exam page says it is complete); B's Orthanc is then checked to hold every instance;
- baseline 1: a plain ``dicomweb-client`` retrieve of the same study from box-a's db endpoint into files (PSC
  token, KOS UID, box-b's client certificate; stored transfer syntax);
- baseline 2: a bare Orthanc retrieving the study from another bare Orthanc with the DICOMweb plugin's
  ``/dicom-web/servers/{name}/retrieve`` (no box, no TLS);
- the history: box-a's structure registers N KOS documents of one more patient in the DMP (ITI-41), then B's
  history page is timed for the first display (access reason posted: DMP existence test and ITI-18) and reloads.
Targets (issue 8): whole study >= 1.0x the plain client's throughput; first series stored < 2 s; history < 1 s.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import re
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import _common as c
import pydicom
from pydicom.uid import UID
import requests

from drimbox.launcher.box_instance import BoxInstance
from drimbox.samples.reports import DEMO_PATIENT

RADIOLOGIST = "810002000015"
CONTEXT = "/drimbox/consumer/context"
HISTORY_PATIENT = dataclasses.replace(DEMO_PATIENT, ins="279107512300466", ipp="IPP-HIST-1", family="HISTOIRE",
                                      given="ANNE", used_family="HISTOIRE", used_given="ANNE", sex="F",
                                      birth_date="19790101", birthplace="75115")
TARGET_RATIO, TARGET_FIRST_SERIES, TARGET_HISTORY = 1.0, 2.0, 1.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the network and the published study ------------------------------------------------------------------


def start_network(root: Path, cleanup: c.Cleanup):
    from drimbox.launcher.network import LocalNetwork
    from drimbox.launcher.ports import BoxPorts, SimulatorPorts

    network = LocalNetwork(root / f"network-{time.time_ns()}", box_names=("box-a", "box-b"), stable_age=2,
                           box_ports={"box-a": BoxPorts.free(), "box-b": BoxPorts.free()},
                           sim_ports=SimulatorPorts.free())
    cleanup.add(network)
    network.start()
    return network


def publish(source: BoxInstance, folder: Path, count: int, jpegls: bool, cda: bytes, patient) -> dict:
    """C-STORE ``folder`` into box-a, send the report, wait for the KOS Approved in the DMP: its status."""
    from drimbox.samples.reports import make_oru
    from drimbox.testing import BoxClient

    c.storescu(source.aet, source.ports.dicom, folder, count, jpegls=jpegls)
    operator = BoxClient(source)
    operator.post("/drimbox/reports", data=make_oru(cda, patient=patient),
                  headers={"Content-Type": "application/hl7-v2"}).raise_for_status()
    return operator.wait_study(cda_study(cda), lambda s: bool(s["kos"]) and s["kos"].get("dmp_status") == "approved",
                               timeout=600, what="the manifest in the DMP")


def cda_study(cda: bytes) -> str:
    from drimbox.reports.cda import parse_cda

    return parse_cda(cda).study_uids[0]


def psc_token(network) -> str:
    session = requests.Session()
    session.trust_env = False
    answer = session.post(network.psc_issuer + "/sim/tokens", json={"idNat": RADIOLOGIST},
                          verify=network.pki["ca_bundle"], timeout=10)
    answer.raise_for_status()
    return answer.json()["access_token"]


# --- box-b as a browser ---------------------------------------------------------------------------------------


def browser(box: BoxInstance) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = box.ca_bundle
    session.headers["Accept-Language"] = "en"
    return session


def open_history(box: BoxInstance, patient, local_ipp: str) -> tuple[requests.Session, str, float]:
    """Appel contextuel, PSC login, access reason: (session, context URL, seconds of the reason -> history)."""
    from drimbox.samples.appel import appel_for

    session = browser(box)
    answer = session.post(box.vi_url + CONTEXT, data=urlencode(appel_for(patient, PatientID=local_ipp)).encode(),
                          headers={"Content-Type": "application/x-www-form-urlencoded"}, allow_redirects=False,
                          timeout=30)
    if answer.status_code != 303:
        raise RuntimeError(f"appel contextuel: {answer.status_code} {answer.text[:300]}")
    context_url = box.vi_url + answer.headers["Location"]
    login = session.get(context_url, allow_redirects=False, timeout=30).headers["Location"]
    page = session.get(box.vi_url + login + f"&login_hint={RADIOLOGIST}&prompt=none", timeout=60)
    fields = {name: html.unescape(value) for name, value in re.findall(r'name="(csrf)" value="([^"]*)"', page.text)}
    if "csrf" not in fields:
        raise RuntimeError(f"no access reason form after the PSC login: {page.text[:500]}")
    started = time.perf_counter()
    history = session.post(context_url + "/reason", data={**fields, "reason": "consent", "reason_text": ""},
                           timeout=60)
    elapsed = time.perf_counter() - started
    if history.status_code != 200 or 'id="history"' not in history.text:
        raise RuntimeError(f"history: {history.status_code} {history.text[:500]}")
    return session, context_url, elapsed


class Poller(threading.Thread):
    """Calls ``probe`` every ``interval`` s until it returns True (or ``stop``); records when it first did."""

    def __init__(self, probe, interval: float, started: float):
        super().__init__(daemon=True)
        self.probe, self.interval, self.started = probe, interval, started
        self.seconds: float | None = None
        self.error: str = ""
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                if self.probe():
                    self.seconds = time.perf_counter() - self.started
                    return
            except requests.RequestException as error:
                self.error = str(error)
            self.stop.wait(self.interval)


def open_exam(b: BoxInstance, session: requests.Session, context_url: str, kos_uid: str, study_uid: str,
              first: tuple[str, str], timeout: float) -> dict:
    exam_url = f"{context_url}/exams/{kos_uid}"
    series_uid, sop_uid = first
    # the first instance's metadata only: polling the whole series' metadata (1,300 files read each time) would
    # slow down the retrieval it measures
    metadata_url = f"{b.vi_url}/dicom-web/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/metadata"
    pages: list[str] = []
    statuses: list[int] = []

    def viewable() -> bool:
        page = session.get(exam_url, timeout=30)
        pages.append(page.text)
        if page.status_code != 200 or "id=\"exam-problem\"" in page.text:
            raise RuntimeError(f"exam page {page.status_code}: {page.text[:800]}")
        return 'id="open-viewer"' in page.text

    def complete() -> bool:
        return viewable() and "Exam retrieved (" in pages[-1]

    def displayable() -> bool:
        answer = session.get(metadata_url, headers={"Accept": "application/dicom+json"}, timeout=30)
        statuses.append(answer.status_code)
        return answer.status_code == 200 and any(
            item.get("00080018", {}).get("Value") == [sop_uid] for item in answer.json())

    started = time.perf_counter()
    session.get(exam_url, timeout=30).raise_for_status()  # "open exam": the retrieval starts
    pollers = {"first series stored": Poller(viewable, 0.1, started),
               "first image displayable": Poller(displayable, 0.05, started)}
    for poller in pollers.values():
        poller.start()
    c.wait_until(complete, timeout, "the whole study in box-b", interval=0.1)
    whole = time.perf_counter() - started
    for poller in pollers.values():
        poller.join(timeout=5)
        poller.stop.set()
        if poller.seconds is None:
            print(f"  (probe never answered: {poller.error or 'statuses ' + str(sorted(set(statuses)))})")
    return {"whole": whole, **{name: p.seconds for name, p in pollers.items()}}


def orthanc_instances(box: BoxInstance, study_uid: str) -> int:
    from drimbox.testing import BoxClient

    operator = BoxClient(box)
    found = operator.post("/tools/lookup", data=study_uid).json()
    study = next((m for m in found if m.get("Type") == "Study"), None)
    return len(operator.get(f"/studies/{study['ID']}/instances").json()) if study else 0


# --- baselines ------------------------------------------------------------------------------------------------


def plain_client(network, source: BoxInstance, study_uid: str, kos_uid: str, out: Path) -> dict:
    """dicomweb-client, study level, stored syntax, into one file per instance."""
    from dicomweb_client.api import DICOMwebClient

    auth = network.pki["boxes"]["box-b"]["auth"]
    session = requests.Session()
    session.trust_env = False
    session.verify = network.pki["ca_bundle"]
    session.cert = (auth["cert"], auth["key"])
    client = DICOMwebClient(url=source.wado_rs_base, session=session, timeout=600,
                            headers={"Authorization": f"Bearer {psc_token(network)}", "KOS-SOPInstanceUID": kos_uid})
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    first = None
    count = 0
    for dataset in client.iter_study(study_uid, media_types=(("application/dicom", "*"),)):
        pydicom.dcmwrite(out / f"{count:05d}.dcm", dataset)
        count += 1
        first = first if first is not None else time.perf_counter() - started
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "first": first, "instances": count,
            "bytes": sum(p.stat().st_size for p in out.iterdir())}


@dataclasses.dataclass
class RetrievingOrthanc(c.BareOrthanc):
    source_url: str = ""

    def configuration(self) -> dict:
        config = super().configuration()
        config["DicomWeb"] = {**config["DicomWeb"], "Servers": {"source": [self.source_url + "/dicom-web/"]}}
        return config


def orthanc_to_orthanc(root: Path, study, cleanup: c.Cleanup) -> dict:
    source = cleanup.add(c.BareOrthanc(root / f"o2o-source-{time.time_ns()}", aet="SOURCE"))
    source.start()
    c.storescu(source.aet, source.dicom_port, study.path, study.instances, jpegls=study.jpegls)
    target = cleanup.add(RetrievingOrthanc(root / f"o2o-target-{time.time_ns()}", aet="TARGET",
                                           source_url=source.url))
    target.start()
    started = time.perf_counter()
    answer = requests.post(target.url + "/dicom-web/servers/source/retrieve",
                           json={"Resources": [{"Study": study.study_uid}]}, timeout=900)
    seconds = time.perf_counter() - started
    answer.raise_for_status()
    study_id = target.study_id(study.study_uid)
    count = len(requests.get(f"{target.url}/studies/{study_id}/instances", timeout=30).json()) if study_id else 0
    for orthanc in (target, source):
        orthanc.stop()
        cleanup.discard(orthanc)
    return {"seconds": seconds, "instances": count}


# --- the history ----------------------------------------------------------------------------------------------


def register_history(network, root: Path, documents: int) -> str:
    """One exam of HISTORY_PATIENT through box-a's pipeline, then ``documents - 1`` more KOS of that patient
    registered by box-a's structure (copies with new SOP Instance UIDs); the KOS UID of the first."""
    from io import BytesIO

    from drimbox.config.sections import IdentitySettings
    from drimbox.dmp.client import DmpClient
    from drimbox.dmp.settings import DmpSettings
    from drimbox.reports.cda import parse_cda
    from drimbox.samples.reports import make_cda, new_uid
    from drimbox.testing import BoxClient, demo_order, demo_study

    source = network.boxes["box-a"]
    folder = root / f"history-{time.time_ns()}"
    content = demo_study(folder, patient=HISTORY_PATIENT, accession="HIST0001", series=(("CT", 2),), rows=16,
                         cols=16)
    cda = make_cda(patient=HISTORY_PATIENT, studies=[demo_order(content.study_uid, accession="HIST0001")])
    status = publish(source, folder, 2, False, cda, HISTORY_PATIENT)
    kos = BoxClient(source).get(f"/drimbox/studies/{content.study_uid}/kos").content
    report = parse_cda(cda)
    pki, entry = network.pki, network.pki["boxes"]["box-a"]
    client = DmpClient(DmpSettings(base_url=network.dmp_url, client_cert=entry["auth"]["fullchain"],
                                   client_key=entry["auth"]["key"], ca_bundle=pki["ca_bundle"],
                                   signing_cert=entry["signing"]["fullchain"], signing_key=entry["signing"]["key"]),
                       IdentitySettings())
    try:
        for _ in range(documents - 1):
            dataset = pydicom.dcmread(BytesIO(kos))
            dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = UID(new_uid())
            buffer = BytesIO()
            dataset.save_as(buffer)
            client.publish(buffer.getvalue(), report, {})
    finally:
        client.close()
    return status["kos"]["kos_uid"]


def time_history(b: BoxInstance, documents: int, reloads: int) -> dict:
    session, context_url, first = open_history(b, HISTORY_PATIENT, "IPP-B-HIST")
    times, rows = [], 0
    for _ in range(reloads):
        started = time.perf_counter()
        page = session.get(context_url, timeout=60)
        times.append(time.perf_counter() - started)
        rows = page.text.count('class="exam"')
    return {"first": first, "reload_median": c.median(times), "reload_max": max(times), "rows": rows,
            "documents": documents}


# --- main -----------------------------------------------------------------------------------------------------


def first_instance(source: BoxInstance, study_uid: str) -> tuple[str, str]:
    from drimbox.kos.reader import read_manifest
    from drimbox.testing import BoxClient

    manifest = read_manifest(BoxClient(source).get(f"/drimbox/studies/{study_uid}/kos").content)
    return manifest.series[0].series_uid, manifest.series[0].instances[0][1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[2:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1300, help="default: %(default)s")
    parser.add_argument("--series", type=int, default=1, help="series of the study (default: %(default)s)")
    parser.add_argument("--small", action="store_true", help="130 images instead of 1,300 (a quick run)")
    parser.add_argument("--history-documents", type=int, default=200, help="default: %(default)s")
    parser.add_argument("--reloads", type=int, default=5, help="history page reloads timed (default: %(default)s)")
    parser.add_argument("--workdir", help="scratch directory, kept (the generated study is reused from it)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary scratch directory")
    parser.add_argument("--timeout", type=float, default=2400, help="overall limit, s (default: %(default)s)")
    c.add_nagle_option(parser)
    args = parser.parse_args()
    nagle = c.apply_nagle_option(args)
    images = 130 if args.small else args.images

    from drimbox.samples.reports import make_cda
    from drimbox.testing import demo_order

    print(c.machine_line())
    with c.Cleanup(args.timeout) as cleanup, c.work_dir(args.workdir, args.keep) as root:
        study = c.generated_study(root, images, args.series, rows=512, cols=512, jpegls=True, accession="ACCBENCH")
        print(f"study: {study.label}, {args.series} series; {nagle}", flush=True)
        log("starting the two-box network (simulators, box-a, box-b)")
        network = start_network(root, cleanup)
        a, b = network.boxes["box-a"], network.boxes["box-b"]
        log("box-a: C-STORE, report, manifest in the DMP")
        cda = make_cda(studies=[demo_order(study.study_uid, accession=study.accession)])
        kos_uid = publish(a, study.path, study.instances, True, cda, DEMO_PATIENT)["kos"]["kos_uid"]
        first = first_instance(a, study.study_uid)

        log("box-b: appel contextuel, PSC login, access reason, open the exam")
        session, context_url, _ = open_history(b, DEMO_PATIENT, "IPP-B-BENCH")
        opened = open_exam(b, session, context_url, kos_uid, study.study_uid, first, timeout=900)
        stored = orthanc_instances(b, study.study_uid)
        if stored != study.instances:
            raise RuntimeError(f"box-b holds {stored} of the study's {study.instances} instances")

        log("baseline 1: dicomweb-client from box-a's db endpoint into files")
        plain = plain_client(network, a, study.study_uid, kos_uid, root / f"plain-{time.time_ns()}")
        log(f"history: {args.history_documents} KOS documents of one patient in the DMP")
        register_history(network, root, args.history_documents)
        history = time_history(b, args.history_documents, args.reloads)
        network.stop()
        cleanup.discard(network)
        log("baseline 2: Orthanc-to-Orthanc DICOMweb retrieve, no box")
        o2o = orthanc_to_orthanc(root, study, cleanup)

    megabytes = study.megabytes
    plain_rate, box_rate, o2o_rate = (megabytes / plain["seconds"], megabytes / opened["whole"],
                                      megabytes / o2o["seconds"])
    c.print_table(
        f"Opening an exam on box-b: {study.label}, {args.series} series, retrieved from box-a",
        ["measure", "seconds", "MB/s", "x plain client", "target", "ok"],
        [["box-b: open exam -> first series stored", c.fmt(opened["first series stored"], 2), "-", "-",
          f"< {TARGET_FIRST_SERIES:.0f} s",
          "yes" if (opened["first series stored"] or 1e9) < TARGET_FIRST_SERIES else "NO"],
         ["box-b: open exam -> first image displayable (vi metadata)", c.fmt(opened["first image displayable"], 2),
          "-", "-", "-", "-"],
         ["box-b: open exam -> whole study stored", c.fmt(opened["whole"], 2), c.fmt(box_rate, 1),
          c.ratio(box_rate, plain_rate), f">= {TARGET_RATIO:.1f}x", "yes" if box_rate >= plain_rate else "NO"],
         ["baseline: dicomweb-client from box-a into files", c.fmt(plain["seconds"], 2), c.fmt(plain_rate, 1),
          "1.00", "-", "-"],
         ["baseline: bare Orthanc -> bare Orthanc (DICOMweb retrieve)", c.fmt(o2o["seconds"], 2),
          c.fmt(o2o_rate, 1), c.ratio(o2o_rate, plain_rate), "-", "-"]],
        [f"MB/s: the study's {megabytes:.0f} MB of files over the time; instances: box-b {stored}, plain client "
         f"{plain['instances']} (first after {c.fmt(plain['first'], 2)} s), Orthanc-to-Orthanc {o2o['instances']}",
         "first series stored: the exam page offers the viewer (a series retrieved into B's Orthanc); with one "
         "series it is the whole study",
         "first image displayable: the first instance's metadata answers 200 through B's vi entry with the viewer "
         "session (which the exam page sets once a series is there)"])
    c.print_table(
        f"box-b's history page, {history['documents']} KOS documents of one patient in the DMP",
        ["measure", "seconds", "rows shown", "target", "ok"],
        [["access reason posted -> history (DMP test + ITI-18)", c.fmt(history["first"], 2), history["rows"],
          f"< {TARGET_HISTORY:.0f} s", "yes" if history["first"] < TARGET_HISTORY else "NO"],
         [f"reload, median of {args.reloads} (max)", f"{c.fmt(history['reload_median'], 2)} "
          f"({c.fmt(history['reload_max'], 2)})", history["rows"], f"< {TARGET_HISTORY:.0f} s",
          "yes" if history["reload_max"] < TARGET_HISTORY else "NO"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
