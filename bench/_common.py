"""Shared pieces of the end-to-end benches: bare Orthanc, storescu timing, memory, tables, clean-up.

Everything runs on loopback. Every process a bench starts is registered with :class:`Cleanup` and stopped on
exit, on Ctrl-C, on SIGTERM and when the bench's overall time limit (SIGALRM) expires.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "plugin") not in sys.path:  # the project is installed editable; this is only a fallback
    sys.path.insert(0, str(REPO / "plugin"))

from drimbox.launcher.box_instance import (  # noqa: E402
    ORTHANC, PLUGINS_DIR, POSTGRESQL_INDEX_PLUGIN, orthanc_postgresql_index)
from drimbox.launcher.ports import free_port  # noqa: E402
from drimbox.launcher.processes import ManagedProcess, wait_for_port  # noqa: E402

DICOMWEB_PLUGIN = "libOrthancDicomWeb.so"


# --- time limit and clean-up -----------------------------------------------------------------------
class BenchTimeout(Exception):
    pass


class Cleanup:
    """Stops what was registered (last first), whatever ends the bench."""

    def __init__(self, timeout: float):
        self.items: list = []
        self.timeout = timeout

    def add(self, item):
        self.items.append(item)
        return item

    def discard(self, item) -> None:
        if item in self.items:
            self.items.remove(item)

    def __enter__(self) -> "Cleanup":
        def on_alarm(*_):
            raise BenchTimeout(f"the bench exceeded its time limit of {self.timeout:.0f} s (--timeout)")

        def on_term(signum, _frame):
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGALRM, on_alarm)
        signal.signal(signal.SIGTERM, on_term)
        signal.alarm(max(1, int(self.timeout)))
        return self

    def __exit__(self, *exc) -> None:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish cleaning up even if asked twice
        while self.items:
            item = self.items.pop()
            with contextlib.suppress(Exception):
                item.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def work_dir(path: str | None, keep: bool):
    """The bench's scratch directory: given (kept) or temporary (removed unless ``keep``)."""
    if path:
        directory = Path(path).resolve()
        directory.mkdir(parents=True, exist_ok=True)
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="drimbox-bench-"))
    try:
        yield directory
    finally:
        if keep:
            print(f"(scratch directory kept: {directory})")
        else:
            shutil.rmtree(directory, ignore_errors=True)


# --- bare Orthanc (baseline) -------------------------------------------------------------------------
@dataclass
class BareOrthanc:
    """The same Orthanc binary and storage options as a box, with only the DICOMweb plugin (no Python)."""

    data_dir: Path
    stable_age: int = 2
    aet: str = "BARE"
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    index_url: str | None = None  # postgresql://...: Orthanc's index on PostgreSQL, as a box node has it

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pid(self) -> int:
        return self.process.process.pid

    def configuration(self) -> dict:
        # Mirrors BoxInstance.orthanc_configuration(), minus the Python plugin.
        config = {
            "Name": "bare-orthanc-bench",
            "StorageDirectory": str(self.data_dir / "orthanc" / "storage"),
            "IndexDirectory": str(self.data_dir / "orthanc" / "index"),
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpCompressionEnabled": False,
            "KeepAlive": True,
            "TcpNoDelay": True,
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False,
            "StableAge": self.stable_age,
            "Plugins": [str(PLUGINS_DIR / DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Ssl": True},
            "SaveJobs": False,
        }
        if self.index_url:
            config["Plugins"].append(str(PLUGINS_DIR / POSTGRESQL_INDEX_PLUGIN))
            config["PostgreSQL"] = orthanc_postgresql_index(self.index_url)
        return config

    def start(self, timeout: float = 60.0) -> "BareOrthanc":
        conf = self.data_dir / "orthanc.d"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "orthanc.json").write_text(json.dumps(self.configuration(), indent=2))
        self.process = ManagedProcess("bare Orthanc", [ORTHANC, str(conf)], log_path=self.data_dir / "orthanc.log")
        self.process.start()
        self.process.wait_until(self._ready, timeout, "answering /system")
        return self

    def _ready(self) -> bool:
        return wait_for_port("127.0.0.1", self.http_port) and \
            requests.get(self.url + "/system", timeout=2).status_code == 200

    def stop(self) -> None:
        if self.process:
            self.process.stop(timeout=30)

    def study_id(self, study_uid: str) -> str | None:
        matches = requests.post(self.url + "/tools/lookup", data=study_uid, timeout=10).json()
        return next((m["ID"] for m in matches if m.get("Type") == "Study"), None)

    def is_stable(self, study_uid: str) -> bool:
        orthanc_id = self.study_id(study_uid)
        if orthanc_id is None:
            return False
        return bool(requests.get(f"{self.url}/studies/{orthanc_id}", timeout=10).json().get("IsStable"))


# --- DICOM C-STORE --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StoreRun:
    started: float  # time.time()
    ended: float  # time.time() when storescu exited: every C-STORE-RSP received, so every instance stored
    count: int

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")


def storescu(aet: str, port: int, path: Path, count: int, timeout: float = 1800.0, jpegls: bool = False) -> StoreRun:
    """dcmtk storescu, one association, every file under ``path`` (drimbox.testing.store_scu's options; JPEG-LS
    files need -xt: with -xs storescu tries to decompress them and fails)."""
    from drimbox.launcher.box_instance import SENDER_AET  # the calling AE every launched box declares

    argv = ["storescu", "-aet", SENDER_AET, "-aec", aet, "+sd", "+r", "-xt" if jpegls else "-xs", "127.0.0.1",
            str(port), str(path)]
    started = time.time()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    ended = time.time()
    if result.returncode != 0:
        raise RuntimeError(f"storescu failed ({result.returncode}): {result.stderr[-2000:]}")
    return StoreRun(started, ended, count)


# --- generated studies ------------------------------------------------------------------------------
@dataclass(frozen=True)
class GeneratedStudy:
    path: Path
    study_uid: str
    accession: str
    instances: int
    series: int
    rows: int
    cols: int
    jpegls: bool
    megabytes: float

    @property
    def label(self) -> str:
        kind = "JPEG-LS" if self.jpegls else "uncompressed"
        return f"{self.instances} x {self.rows}x{self.cols} {kind} ({self.megabytes:.0f} MB)"


def generated_study(root: Path, instances: int, series: int, *, rows: int, cols: int, jpegls: bool = False,
                    accession: str = "ACC0001", tag: str = "") -> GeneratedStudy:
    """A demo-patient study on disk; reused when ``root`` already holds the same one (--workdir)."""
    from drimbox.testing import demo_study

    name = f"study{tag}-{instances}x{series}-{rows}x{cols}-{'jls' if jpegls else 'raw'}-{accession}"
    directory = root / name
    marker = directory / "study.json"
    if marker.exists():
        facts = json.loads(marker.read_text())
        return GeneratedStudy(path=directory / "files", **facts)
    shutil.rmtree(directory, ignore_errors=True)
    per_series = [instances // series + (1 if n < instances % series else 0) for n in range(series)]
    started = time.monotonic()
    content = demo_study(directory / "files", accession=accession, series=[("CT", n) for n in per_series],
                         rows=rows, cols=cols, jpegls=jpegls)
    size = sum(p.stat().st_size for p in (directory / "files").iterdir()) / 1e6
    facts = {"study_uid": content.study_uid, "accession": accession, "instances": instances, "series": series,
             "rows": rows, "cols": cols, "jpegls": jpegls, "megabytes": size}
    marker.write_text(json.dumps(facts))
    print(f"  generated {instances} instances in {time.monotonic() - started:.1f} s ({size:.0f} MB)", flush=True)
    return GeneratedStudy(path=directory / "files", **facts)


# --- measurements ------------------------------------------------------------------------------------
def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process, in MB (10^6 bytes)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024 / 1e6
    return values


def percentile(values, q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def ratio(value: float, reference: float) -> str:
    if reference is None or value is None or reference != reference or value != value or reference == 0:
        return "-"
    return f"{value / reference:.2f}"


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_table(title: str, headers: list[str], rows: list[list], notes: list[str] = ()) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "  ".join
    print()
    print(title)
    print(line(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(cells[0], widths, strict=True))))
    print(line("-" * w for w in widths))
    for row in cells[1:]:
        print(line(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    for note in notes:
        print(f"  {note}")
    sys.stdout.flush()


def machine_line() -> str:
    from drimbox.launcher.box_instance import ORTHANC as binary

    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.splitlines()
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    load = os.getloadavg()[0]
    orthanc = version[0].split()[-1] if version else "?"
    return (f"machine: {os.cpu_count()} cores (load {load:.2f} at start), Orthanc {orthanc}, "
            f"Python {sys.version.split()[0]}, code {commit or '?'}")


# --- DCMTK and Nagle ---------------------------------------------------------------------------------
NAGLE_NOTE = ("Debian's DCMTK (3.6.7, in storescu and in Orthanc) keeps Nagle's algorithm on unless the environment "
              "sets TCP_NODELAY=1; with it on, every C-STORE waits for delayed ACKs (~90 ms per image on loopback, "
              "~50 ms when only one side disables it).")


def add_nagle_option(parser) -> None:
    parser.add_argument("--nagle", action="store_true",
                        help="leave Nagle's algorithm on in storescu and Orthanc (DCMTK's default here: ~90 ms per "
                             "C-STORE on loopback); by default the bench sets TCP_NODELAY=1 for both")


def apply_nagle_option(args) -> str:
    """Set or clear TCP_NODELAY for every process started afterwards (Orthanc, nginx, storescu)."""
    if args.nagle:
        os.environ.pop("TCP_NODELAY", None)
        return "Nagle ON (DCMTK default: TCP_NODELAY unset)"
    os.environ["TCP_NODELAY"] = "1"
    return "Nagle off (TCP_NODELAY=1 for storescu and Orthanc)"
