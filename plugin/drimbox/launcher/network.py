"""A DRIM-M network on one machine: the DMP and PSC simulators, a signed demo whitelist, and one or more boxes."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path


from drimbox.crypto.pki import create_test_pki
from drimbox.launcher.box_instance import REPO, BoxInstance
from drimbox.launcher.log_rotation import LogRotation
from drimbox.launcher.ports import BoxPorts, SimulatorPorts, free_port
from drimbox.launcher.postgres import PostgresServer
from drimbox.launcher.processes import ManagedProcess, wait_for_port
from drimbox.samples.whitelist import make_demo_whitelist

DRIMBOX = str(Path(sys.executable).with_name("drimbox"))
PSC_REALM = "/auth/realms/esante-wallet"


def default_ohif_dir() -> str:
    dist = REPO / "viewer" / "dist"
    return str(dist) if (dist / "index.html").exists() else ""


@dataclass
class LocalNetwork:
    data_dir: Path
    box_names: tuple[str, ...] = ("box-a",)
    simulators: bool = True
    sim_ports: SimulatorPorts = field(default_factory=SimulatorPorts)
    box_ports: dict[str, BoxPorts] = field(default_factory=dict)
    stable_age: int = 10
    host: str = "localhost"
    # scale-out: every box keeps its store and Orthanc's index in one private PostgreSQL, with ``nodes`` nodes
    postgresql: bool = False
    nodes: int = 1
    postgres_port: int = 5433
    log_max_mb: int = 50  # each log of the network is rotated past this size
    log_keep: int = 5  # rotated copies kept per log

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.processes: list[ManagedProcess] = []
        self.boxes: dict[str, BoxInstance] = {}
        self.pki: dict | None = None
        self.postgres: PostgresServer | None = None
        if self.nodes > 1 and not self.postgresql:
            raise ValueError("several nodes share their state through PostgreSQL: add --postgresql")
        self.log_rotation: LogRotation | None = None

    @property
    def dmp_url(self) -> str:
        return f"https://{self.host}:{self.sim_ports.dmp}/dmp"

    @property
    def psc_issuer(self) -> str:
        return f"https://{self.host}:{self.sim_ports.psc}{PSC_REALM}"

    def ports_of(self, name: str, index: int) -> BoxPorts:
        return self.box_ports.get(name) or BoxPorts.shifted(index * 100)

    def start(self) -> "LocalNetwork":
        names = tuple(dict.fromkeys((*self.box_names, "box-a", "box-b")))
        self.pki = create_test_pki(self.data_dir / "pki", hosts=(self.host, "127.0.0.1"), boxes=names)
        if self.simulators:
            self._start_simulators(self.pki)
        planned = {name: self.ports_of(name, i) for i, name in enumerate(self.box_names)}
        whitelist = self.data_dir / "whitelist.xml"
        members = {name: {"db": f"{self.host}:{ports.db}", "vi": f"{self.host}:{ports.vi}"}
                   for name, ports in planned.items()}
        whitelist.write_bytes(make_demo_whitelist(self.pki, members))
        try:
            if self.postgresql:
                self._start_postgres()
            for name, ports in planned.items():
                box = BoxInstance(self.data_dir / name, ports=ports, name=name, pki=self.pki,
                                  dmp_url=self.dmp_url if self.simulators else None,
                                  psc_issuer=self.psc_issuer if self.simulators else None,
                                  whitelist=str(whitelist), ohif_dir=default_ohif_dir() or None,
                                  stable_age=self.stable_age, aet=name.upper().replace("-", ""), host=self.host,
                                  # with the simulators this is a test network: RIS-like launch pages for testers
                                  settings={"Consumer": {"LaunchPage": self.simulators}},
                                  **self._scale_out(name))
                self.boxes[name] = box
                box.start()
        except BaseException:
            self.stop()
            raise
        self.log_rotation = LogRotation([self.data_dir / "logs", *(b.log_dir for b in self.boxes.values())],
                                        max_bytes=self.log_max_mb * 1024 * 1024, keep=self.log_keep).start()
        return self

    def _postgres_dir(self) -> Path:
        if os.geteuid() != 0:
            return self.data_dir / "postgres"
        # as root the server runs as Debian's postgres account, which cannot enter root's home
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/var/tmp") / f"drimbox-postgres-{digest}"

    def _start_postgres(self) -> None:
        port = self.postgres_port if not wait_for_port("127.0.0.1", self.postgres_port) else free_port()
        self.postgres = PostgresServer(self._postgres_dir(), port=port).start()

    def _scale_out(self, name: str) -> dict:
        if self.postgres is None:
            return {}
        base = name.replace("-", "_")
        return {"store_url": self.postgres.create_database(f"{base}_store"),
                "orthanc_index_url": self.postgres.create_database(f"{base}_orthanc"), "nodes": self.nodes}

    def _start_simulators(self, pki: dict) -> None:
        dmp_server, psc_server = pki["servers"]["dmp-sim"], pki["servers"]["psc-sim"]
        dmp = ManagedProcess("DMP simulator", [
            DRIMBOX, "dmp-sim", "--port", str(self.sim_ports.dmp), "--data-dir", str(self.data_dir / "dmp-sim"),
            "--tls-cert", dmp_server["fullchain"], "--tls-key", dmp_server["key"],
            "--client-ca", pki["ca_bundle"], "--signing-ca", pki["ca_bundle"]],
            log_path=self.data_dir / "logs" / "dmp-sim.log")
        psc = ManagedProcess("PSC simulator", [
            DRIMBOX, "psc-sim", "--port", str(self.sim_ports.psc),
            "--tls-cert", psc_server["fullchain"], "--tls-key", psc_server["key"],
            "--public-url", f"https://{self.host}:{self.sim_ports.psc}"],
            log_path=self.data_dir / "logs" / "psc-sim.log")
        for process, port in ((dmp, self.sim_ports.dmp), (psc, self.sim_ports.psc)):
            process.start()
            self.processes.append(process)
            process.wait_until(partial(wait_for_port, "127.0.0.1", port), 30, "listening")

    def stop(self) -> None:
        if self.log_rotation is not None:
            self.log_rotation.stop()
        for box in reversed(list(self.boxes.values())):
            box.stop()
        for process in reversed(self.processes):
            process.stop()
        if self.postgres is not None:
            self.postgres.stop()

    def describe(self) -> str:
        lines = []
        for name, box in self.boxes.items():
            user, password = box.operator_auth
            lines += [
                f"DRIMbox {name}",
                f"  Orthanc Explorer (operator) : {box.admin_url}/app/explorer.html   "
                f"user {user!r}, password {password!r}",
                f"  Operator API                : {box.admin_url}/drimbox/status",
                f"  DICOM (C-ECHO, C-STORE)     : AE title {box.aet}, port {box.ports.dicom}, "
                f"from calling AE {box.sender_aet} (DRIMbox.Dicom.Modalities)",
                f"  HL7 v2 over MLLP (RIS)      : {box.bind}:{box.ports.hl7}",
                f"  WADO-RS for peers (db host) : {box.wado_rs_base}",
                f"  Viewer (vi host)            : {box.vi_url}/",
                *([f"  Appel contextuel test page  : {box.vi_url}/drimbox/consumer/context"]
                  if self.simulators else []),
                f"  Data and logs               : {box.data_dir}",
            ]
            for node in range(1, box.nodes):
                ports = box.node(node)
                lines.append(f"  Node {node}                      : DICOM port {ports.dicom}, HL7 port {ports.hl7}, "
                             f"Orthanc HTTP 127.0.0.1:{ports.orthanc_http} (same nginx entries)")
            if box.store_url:
                lines.append(f"  PostgreSQL                  : store {box.store_url}, Orthanc index "
                             f"{box.orthanc_index_url}")
        if self.simulators:
            lines += [
                "Simulators",
                f"  DMP (XDS.b)                 : {self.dmp_url}   documents: {self.dmp_url}/_sim/documents",
                f"  Pro Santé Connect           : {self.psc_issuer}",
            ]
        if self.pki is not None:
            lines.append(f"TLS: test CA at {self.pki['ca_bundle']} (add it to your browser to avoid warnings)")
        return "\n".join(lines)
