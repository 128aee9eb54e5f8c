"""One box on this machine: generated configuration, Orthanc with the plugin, nginx in front."""

from __future__ import annotations

import copy
import json
import os
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import requests

from drimbox.config.edge import DicomSettings, EdgeSettings
from drimbox.config.fields import read_section
from drimbox.launcher.edge import METHOD_OVERRIDE_HEADERS, TLS12_CIPHERS, content_security_policies
from drimbox.launcher.ports import BoxPorts, NodePorts
from drimbox.launcher.processes import ManagedProcess, ProcessError, wait_for_port

ORTHANC = "/usr/sbin/Orthanc"
NGINX = "/usr/sbin/nginx"
PLUGINS_DIR = Path("/usr/share/orthanc/plugins")
# Never the GDCM plugin: it crashes Orthanc when transcoding JPEG-LS (docs/operations.md).
PLUGINS = ("libOrthancPython.so", "libOrthancDicomWeb.so")
POSTGRESQL_INDEX_PLUGIN = "libOrthancPostgreSQLIndex.so"
REPO = Path(__file__).resolve().parents[3]
PLUGIN_SCRIPT = REPO / "orthanc" / "drimbox_plugin.py"
OPERATOR_USER = "operator"
# The AE title the demo and the tests send DICOM from (declared as a modality of every launched box).
SENDER_AET = "DRIMBOX-SCU"


def site_packages() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


def _nginx_user() -> str:
    """nginx's master, when root, would hand requests to 'nobody', who cannot read the private data dir."""
    if os.geteuid() != 0:
        return ""
    return "root root"


def orthanc_postgresql_index(url: str) -> dict:
    """Orthanc's ``PostgreSQL`` section for its index at ``url`` (the plugin is POSTGRESQL_INDEX_PLUGIN)."""
    return {"EnableIndex": True, "EnableStorage": False, "ConnectionUri": url, "Lock": False,
            "MaximumConnectionRetries": 10, "ConnectionRetryInterval": 1, "IndexConnectionsCount": 4}


def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class BoxInstance:
    """A box rooted in ``data_dir``; everything it writes lives there."""

    data_dir: Path
    ports: BoxPorts = field(default_factory=BoxPorts)
    name: str = "box-a"
    pki: dict | None = None  # index from drimbox.crypto.pki.create_test_pki
    dmp_url: str | None = None
    psc_issuer: str | None = None
    whitelist: str | None = None
    ohif_dir: str | None = None
    stable_age: int = 10
    aet: str = "DRIMBOX"
    host: str = "localhost"
    bind: str = "127.0.0.1"
    settings: dict = field(default_factory=dict)  # deep-merged over the generated DRIMbox section
    # DICOM senders (DRIMbox.Dicom.Modalities); None: the demo sender, SENDER_AET from this machine
    modalities: dict | None = None
    orthanc_options: dict = field(default_factory=dict)
    # Scale-out: the plugin's store and Orthanc's index on PostgreSQL; ``nodes`` Orthanc processes share them
    # and the DICOM storage folder, behind this box's one nginx. None: SQLite, one node.
    store_url: str | None = None
    orthanc_index_url: str | None = None
    nodes: int = 1
    node_ports: tuple[NodePorts, ...] = ()  # nodes 1..n-1; default: the node 0 ports plus the node's index

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if self.nodes > 1 and not (self.store_url and self.orthanc_index_url):
            raise ValueError("several nodes need the store and Orthanc's index on PostgreSQL (SQLite is not shared)")
        if not self.node_ports:
            self.node_ports = tuple(NodePorts.after(self.ports, i) for i in range(1, self.nodes))
        self.orthancs: list[ManagedProcess] = []
        self.orthanc: ManagedProcess | None = None
        self.nginx: ManagedProcess | None = None
        if self.pki is None:
            from drimbox.crypto.pki import create_test_pki

            self.pki = create_test_pki(self.data_dir / "pki", hosts=(self.host, "127.0.0.1"), boxes=(self.name,))

    # --- paths and addresses --------------------------------------------------------------------
    @property
    def conf_dir(self) -> Path:
        return self.node_conf_dir(0)

    def node_conf_dir(self, node: int) -> Path:
        return self.data_dir / ("orthanc.d" if node == 0 else f"orthanc.d-node{node}")

    def node(self, node: int) -> NodePorts:
        """The ports of one node (node 0 uses the box's own)."""
        if node == 0:
            return NodePorts(self.ports.orthanc_http, self.ports.dicom, self.ports.hl7)
        return self.node_ports[node - 1]

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def admin_url(self) -> str:
        return f"https://{self.host}:{self.ports.admin}"

    @property
    def db_url(self) -> str:
        return f"https://{self.host}:{self.ports.db}"

    @property
    def vi_url(self) -> str:
        return f"https://{self.host}:{self.ports.vi}"

    @property
    def wado_rs_base(self) -> str:
        return self.db_url + "/wado-rs"

    @property
    def orthanc_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.orthanc_http}"

    @property
    def _pki(self) -> dict:
        assert self.pki is not None  # __post_init__ creates one when none is given
        return self.pki

    @property
    def ca_bundle(self) -> str:
        return self._pki["ca_bundle"]

    @property
    def operator_password(self) -> str:
        return self._secret_file("operator-password").read_text().strip()

    @property
    def sender_aet(self) -> str:
        """The calling AE title to send DICOM to this box with (its first declared modality)."""
        return next(iter(self._dicom().modalities.values()))["AET"]

    def _secret_file(self, name: str) -> Path:
        path = self.data_dir / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(24) + "\n")
            path.chmod(0o600)
        return path

    @property
    def operator_users_file(self) -> Path:
        return self.data_dir / "operator-users"

    @property
    def operator_auth(self) -> tuple[str, str]:
        return OPERATOR_USER, self.operator_password

    def operator_session(self) -> requests.Session:
        session = requests.Session()
        session.auth = self.operator_auth
        session.verify = self.ca_bundle
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        return session

    # --- configuration --------------------------------------------------------------------------
    def drimbox_settings(self, node: int = 0) -> dict:
        state = self.data_dir / "state"
        ports = self.node(node)
        section: dict[str, Any] = {
            "DataDir": str(state),
            "OrthancUrl": f"http://127.0.0.1:{ports.orthanc_http}",
            "Identity": {
                "PublicDbUrl": self.db_url,
                "PublicViewerUrl": self.vi_url,
                "InstitutionName": f"DRIMbox {self.name}",
            },
            "Hl7": {"Host": self.bind, "Port": ports.hl7},
            "Publication": {"ChangesPollSeconds": 2.0},
            "Dmp": {"Enabled": bool(self.dmp_url)},
            "Viewer": {"OhifDir": self.ohif_dir or ""},
            "Edge": {"ProxySecretFile": str(self._secret_file("proxy-secret")),
                     "PeerAccessLog": str(self.log_dir / "peer-access.log")},
            "Dicom": {"Modalities": self.modalities if self.modalities is not None else {
                "demo-sender": {"AET": SENDER_AET, "Host": "127.0.0.1", "Port": 11112}}},
            "Operator": {"UsersFile": str(self.operator_users_file)},
        }
        if self.store_url:
            section["Store"] = self.store_url
        if self.nodes > 1:
            section["Publication"].update({"StudyQuietSeconds": self.stable_age, "SweepSeconds": 5.0})
        if self.dmp_url:
            section["Dmp"]["BaseUrl"] = self.dmp_url
        box = self._pki["boxes"][self.name]
        section["Dmp"].update({
            "ClientCert": box["auth"]["cert"], "ClientKey": box["auth"]["key"], "CaBundle": self._pki["ca_bundle"],
            "SigningCert": box["signing"]["cert"], "SigningKey": box["signing"]["key"],
        })
        section["Psc"] = {"CaBundle": self._pki["ca_bundle"],
                          "ClientSecretFile": str(self._secret_file("psc-client-secret"))}
        section["Whitelist"] = {"TrustAnchor": self._pki["root"]["cert"]}
        if self.psc_issuer:
            section.setdefault("Psc", {})["Issuer"] = self.psc_issuer
        if self.whitelist:
            section.setdefault("Whitelist", {})["Source"] = self.whitelist
        return deep_merge(section, self.settings)

    def _dicom(self) -> DicomSettings:
        return read_section(DicomSettings, self.drimbox_settings().get("Dicom"), "DRIMbox.Dicom")

    def _edge(self) -> EdgeSettings:
        return read_section(EdgeSettings, self.drimbox_settings().get("Edge"), "DRIMbox.Edge")

    def orthanc_configuration(self, node: int = 0) -> dict:
        storage = self.data_dir / "orthanc"
        ports = self.node(node)
        # Orthanc 1.10 has no bind address for HTTP or DICOM: both listen on every interface. HTTP refuses
        # remote clients (RemoteAccessAllowed) and the plugin believes only requests carrying nginx's secret;
        # DICOM accepts only the declared modalities (DRIMbox.Dicom).
        config = {
            "Name": f"DRIMbox {self.name}",
            "StorageDirectory": str(storage / "storage"),
            "IndexDirectory": str(storage / "index"),
            "HttpPort": ports.orthanc_http,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpCompressionEnabled": False,
            "KeepAlive": True,
            "TcpNoDelay": True,
            "DicomAet": self.aet,
            "DicomPort": ports.dicom,
            **self._dicom().orthanc_options(),
            "StableAge": self.stable_age,
            "Plugins": [str(PLUGINS_DIR / p) for p in PLUGINS],
            "PythonScript": str(PLUGIN_SCRIPT),
            "PythonVerbose": False,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Ssl": True},
            "SaveJobs": False,
            # the consumer role's retrievals (Orthanc's DICOMweb client) verify source boxes with the test CA
            "HttpsCACertificates": self._pki["ca_bundle"],
        }
        if self.orthanc_index_url:
            config["Plugins"].append(str(PLUGINS_DIR / POSTGRESQL_INDEX_PLUGIN))
            # Lock false: several Orthanc share the index (orthanc-postgresql >= 4.0 with Orthanc >= 1.9.2); the
            # DICOM files stay in the shared StorageDirectory. One index connection would serialise every HTTP
            # thread's lookups.
            config["PostgreSQL"] = orthanc_postgresql_index(self.orthanc_index_url)
        return deep_merge(config, self.orthanc_options)

    def write_configuration(self) -> None:
        # Orthanc's storage and index, the store (with the box's secrets), logs and sockets: the user running
        # the box only (nginx's workers and Orthanc run as that user)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        for sub in ("orthanc", "logs", "run", "tmp", "state"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        for node in range(self.nodes):
            conf_dir = self.node_conf_dir(node)
            conf_dir.mkdir(parents=True, exist_ok=True)
            (conf_dir / "orthanc.json").write_text(json.dumps(self.orthanc_configuration(node), indent=2))
            (conf_dir / "drimbox.json").write_text(json.dumps({"DRIMbox": self.drimbox_settings(node)}, indent=2))
        self._write_operator_users()
        self._write_viewer_config()
        nginx_conf = self.data_dir / "nginx.conf"
        nginx_conf.touch(mode=0o600)
        nginx_conf.chmod(0o600)  # it holds the proxy secret
        nginx_conf.write_text(self.render_nginx())

    def _write_operator_users(self) -> None:
        """The operator's scrypt hash for the admin entry's login (the password itself stays in its own file).

        Written once: a password set later with ``drimbox operator passwd`` survives restarts."""
        from drimbox.trust.operator_password import hash_password

        path = self.operator_users_file
        if path.exists():
            return
        path.write_text(f"{OPERATOR_USER}:{hash_password(self.operator_password)}\n")
        path.chmod(0o600)

    def _write_viewer_config(self) -> None:
        from drimbox.web.ohif import render_app_config

        (self.data_dir / "app-config.js").write_text(render_app_config(dicomweb_root="/dicom-web"))

    def tls_files(self) -> tuple[str, str]:
        server = self._pki["servers"]["nginx"]
        return server["fullchain"], server["key"]

    def db_tls_files(self) -> tuple[str, str] | None:
        """The db entry's certificate: the box's own, whose DN the whitelist lists (None: the shared one)."""
        server = (self.pki or {}).get("boxes", {}).get(self.name, {}).get("db")
        return (server["fullchain"], server["key"]) if server else None

    def render_nginx(self) -> str:
        templates = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                                       undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        cert, key = self.tls_files()
        peers = self.drimbox_settings().get("PeerAccess", {})
        ohif = self.ohif_dir or str(self.data_dir / "no-viewer")
        Path(ohif).mkdir(parents=True, exist_ok=True)
        return templates.get_template("nginx.conf.j2").render(
            run_dir=self.data_dir / "run", log_dir=self.log_dir, tmp_dir=self.data_dir / "tmp",
            tls_cert=cert, tls_key=key, db_tls=self.db_tls_files(),
            orthanc_http_ports=[self.node(n).orthanc_http for n in range(self.nodes)],
            bind=self.bind,
            admin_port=self.ports.admin, db_port=self.ports.db, vi_port=self.ports.vi,
            hsts=31536000, wado_path="/wado-rs",
            proxy_secret=self._edge().proxy_secret(), admin_max_body_mb=self._edge().admin_max_body_mb,
            tls12_ciphers=TLS12_CIPHERS, csp=content_security_policies(Path(ohif)),
            method_override_headers=METHOD_OVERRIDE_HEADERS,
            client_ca=peers.get("ClientCaFile") or self._pki["ca_bundle"],
            client_crl=peers.get("ClientCrlFile") or self._pki.get("crl_bundle", ""),
            ohif_dir=ohif, app_config=self.data_dir / "app-config.js", run_as=_nginx_user())

    # --- processes ------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> "BoxInstance":
        self.write_configuration()
        # TCP_NODELAY=1: Debian's DCMTK leaves Nagle's algorithm on, which adds ~90 ms to every C-STORE
        env = dict(os.environ, DRIMBOX_SITE_PACKAGES=site_packages(), TCP_NODELAY="1")
        self.orthancs = [
            ManagedProcess("Orthanc" if n == 0 else f"Orthanc node {n}", [ORTHANC, str(self.node_conf_dir(n))],
                           log_path=self.log_dir / ("orthanc.log" if n == 0 else f"orthanc-node{n}.log"), env=env)
            for n in range(self.nodes)]
        self.orthanc = self.orthancs[0]
        for node in range(self.nodes):  # one after the other: the first creates the shared index's schema
            self.start_node(node, timeout)
        self.nginx = ManagedProcess(
            "nginx", [NGINX, "-c", str(self.data_dir / "nginx.conf"), "-p", str(self.data_dir), "-g", "daemon off;"],
            log_path=self.log_dir / "nginx.out")
        self.nginx.start()
        self.nginx.wait_until(lambda: wait_for_port(self.bind, self.ports.admin), timeout, "listening")
        return self

    def start_node(self, node: int, timeout: float = 60.0) -> None:
        process = self.orthancs[node]
        process.start()
        process.wait_until(lambda: self._orthanc_ready(node), timeout, "answering on its HTTP port")

    def kill_node(self, node: int) -> None:
        """Stop one node the hard way (a crash or a power cut: no clean shutdown)."""
        self.orthancs[node].stop(timeout=5, sig=signal.SIGKILL)

    def _orthanc_ready(self, node: int = 0) -> bool:
        ports = self.node(node)
        if not wait_for_port("127.0.0.1", ports.orthanc_http):
            return False
        # 403 from the plugin's filter proves the plugin is loaded and deciding
        status = requests.get(f"http://127.0.0.1:{ports.orthanc_http}/system", timeout=2).status_code
        if status != 403:
            raise ProcessError(f"Orthanc answered {status} to an unauthenticated request: "
                               "the plugin filter is not active")
        hl7_enabled = self.drimbox_settings(node)["Hl7"].get("Enabled", True)
        return wait_for_port(self.bind, ports.hl7) if hl7_enabled else True

    def stop(self) -> None:
        if self.nginx:
            self.nginx.stop()
        for process in reversed(self.orthancs):
            process.stop(timeout=30)

    def restart_orthanc(self, timeout: float = 60.0) -> None:
        assert self.orthanc is not None, "the box was never started"
        self.orthanc.stop(timeout=30)
        self.orthanc.start()
        self.orthanc.wait_until(self._orthanc_ready, timeout, "answering on its HTTP port")
