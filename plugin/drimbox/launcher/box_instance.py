"""One box on this machine: generated configuration, Orthanc with the plugin, nginx in front."""

from __future__ import annotations

import copy
import json
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import requests

from drimbox.launcher.ports import BoxPorts
from drimbox.launcher.processes import ManagedProcess, ProcessError, wait_for_port

ORTHANC = "/usr/sbin/Orthanc"
NGINX = "/usr/sbin/nginx"
PLUGINS_DIR = Path("/usr/share/orthanc/plugins")
# Never the GDCM plugin: it crashes Orthanc when transcoding JPEG-LS (docs/operations.md).
PLUGINS = ("libOrthancPython.so", "libOrthancDicomWeb.so")
REPO = Path(__file__).resolve().parents[3]
PLUGIN_SCRIPT = REPO / "plugin" / "drimbox_plugin.py"
OPERATOR_USER = "operator"


def site_packages() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


def _nginx_user() -> str:
    """nginx's master, when root, would hand requests to 'nobody', who cannot read the private data dir."""
    if os.geteuid() != 0:
        return ""
    return "root root"


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
    orthanc_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.orthanc: ManagedProcess | None = None
        self.nginx: ManagedProcess | None = None
        if self.pki is None:
            from drimbox.crypto.pki import create_test_pki

            self.pki = create_test_pki(self.data_dir / "pki", hosts=(self.host, "127.0.0.1"), boxes=(self.name,))

    # --- paths and addresses --------------------------------------------------------------------
    @property
    def conf_dir(self) -> Path:
        return self.data_dir / "orthanc.d"

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
    def ca_bundle(self) -> str:
        return self.pki["ca_bundle"]

    @property
    def operator_password(self) -> str:
        return self._secret_file("operator-password").read_text().strip()

    def _secret_file(self, name: str) -> Path:
        path = self.data_dir / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(24) + "\n")
            path.chmod(0o600)
        return path

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
    def drimbox_settings(self) -> dict:
        state = self.data_dir / "state"
        section: dict[str, Any] = {
            "DataDir": str(state),
            "OrthancUrl": self.orthanc_url,
            "Identity": {
                "PublicDbUrl": self.db_url,
                "PublicViewerUrl": self.vi_url,
                "InstitutionName": f"DRIMbox {self.name}",
            },
            "Hl7": {"Host": self.bind, "Port": self.ports.hl7},
            "Publication": {"ChangesPollSeconds": 2.0},
            "Dmp": {"Enabled": bool(self.dmp_url)},
            "Viewer": {"OhifDir": self.ohif_dir or ""},
        }
        if self.dmp_url:
            section["Dmp"]["BaseUrl"] = self.dmp_url
        box = self.pki["boxes"][self.name]
        section["Dmp"].update({
            "ClientCert": box["auth"]["cert"], "ClientKey": box["auth"]["key"], "CaBundle": self.pki["ca_bundle"],
            "SigningCert": box["signing"]["cert"], "SigningKey": box["signing"]["key"],
        })
        section["Psc"] = {"CaBundle": self.pki["ca_bundle"], "ClientSecretFile": str(self._secret_file("psc-client-secret"))}
        section["Whitelist"] = {"TrustAnchor": self.pki["root"]["cert"]}
        if self.psc_issuer:
            section.setdefault("Psc", {})["Issuer"] = self.psc_issuer
        if self.whitelist:
            section.setdefault("Whitelist", {})["Source"] = self.whitelist
        return deep_merge(section, self.settings)

    def orthanc_configuration(self) -> dict:
        storage = self.data_dir / "orthanc"
        config = {
            "Name": f"DRIMbox {self.name}",
            "StorageDirectory": str(storage / "storage"),
            "IndexDirectory": str(storage / "index"),
            "HttpPort": self.ports.orthanc_http,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpCompressionEnabled": False,
            "KeepAlive": True,
            "TcpNoDelay": True,
            "DicomAet": self.aet,
            "DicomPort": self.ports.dicom,
            "DicomCheckCalledAet": False,
            "StableAge": self.stable_age,
            "Plugins": [str(PLUGINS_DIR / p) for p in PLUGINS],
            "PythonScript": str(PLUGIN_SCRIPT),
            "PythonVerbose": False,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Ssl": True},
            "SaveJobs": False,
            # the consumer role's retrievals (Orthanc's DICOMweb client) verify source boxes with the test CA
            "HttpsCACertificates": self.pki["ca_bundle"],
        }
        return deep_merge(config, self.orthanc_options)

    def write_configuration(self) -> None:
        for sub in ("orthanc", "logs", "run", "tmp", "state"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "orthanc.json").write_text(json.dumps(self.orthanc_configuration(), indent=2))
        (self.conf_dir / "drimbox.json").write_text(json.dumps({"DRIMbox": self.drimbox_settings()}, indent=2))
        self._write_htpasswd()
        self._write_viewer_config()
        (self.data_dir / "nginx.conf").write_text(self.render_nginx())

    def _write_htpasswd(self) -> None:
        hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=self.operator_password.encode(),
                                capture_output=True, check=True).stdout.decode().strip()
        path = self.data_dir / "operator.htpasswd"
        path.write_text(f"{OPERATOR_USER}:{hashed}\n")
        path.chmod(0o644)

    def _write_viewer_config(self) -> None:
        from drimbox.web.ohif import render_app_config

        (self.data_dir / "app-config.js").write_text(render_app_config(dicomweb_root="/dicom-web"))

    def tls_files(self) -> tuple[str, str]:
        server = self.pki["servers"]["nginx"]
        return server["fullchain"], server["key"]

    def db_tls_files(self) -> tuple[str, str] | None:
        """The db entry's certificate: the box's own, whose DN the whitelist lists (None: the shared one)."""
        server = (self.pki or {}).get("boxes", {}).get(self.name, {}).get("db")
        return (server["fullchain"], server["key"]) if server else None

    def render_nginx(self) -> str:
        templates = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                                       undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        cert, key = self.tls_files()
        ohif = self.ohif_dir or str(self.data_dir / "no-viewer")
        Path(ohif).mkdir(parents=True, exist_ok=True)
        return templates.get_template("nginx.conf.j2").render(
            run_dir=self.data_dir / "run", log_dir=self.log_dir, tmp_dir=self.data_dir / "tmp",
            tls_cert=cert, tls_key=key, db_tls=self.db_tls_files(), orthanc_http_port=self.ports.orthanc_http,
            bind=self.bind,
            admin_port=self.ports.admin, db_port=self.ports.db, vi_port=self.ports.vi,
            htpasswd=self.data_dir / "operator.htpasswd", hsts=31536000, wado_path="/wado-rs",
            client_ca=self.pki["ca_bundle"], client_crl=self.pki.get("crl_bundle", ""),
            ohif_dir=ohif, app_config=self.data_dir / "app-config.js", run_as=_nginx_user())

    # --- processes ------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> "BoxInstance":
        self.write_configuration()
        # TCP_NODELAY=1: Debian's DCMTK leaves Nagle's algorithm on, which adds ~90 ms to every C-STORE
        env = dict(os.environ, DRIMBOX_SITE_PACKAGES=site_packages(), TCP_NODELAY="1")
        self.orthanc = ManagedProcess("Orthanc", [ORTHANC, str(self.conf_dir)], log_path=self.log_dir / "orthanc.log",
                                      env=env)
        self.orthanc.start()
        self.orthanc.wait_until(self._orthanc_ready, timeout, "answering on its HTTP port")
        self.nginx = ManagedProcess(
            "nginx", [NGINX, "-c", str(self.data_dir / "nginx.conf"), "-p", str(self.data_dir), "-g", "daemon off;"],
            log_path=self.log_dir / "nginx.out")
        self.nginx.start()
        self.nginx.wait_until(lambda: wait_for_port(self.bind, self.ports.admin), timeout, "listening")
        return self

    def _orthanc_ready(self) -> bool:
        if not wait_for_port("127.0.0.1", self.ports.orthanc_http):
            return False
        # 403 from the plugin's filter proves the plugin is loaded and deciding
        status = requests.get(self.orthanc_url + "/system", timeout=2).status_code
        if status != 403:
            raise ProcessError(f"Orthanc answered {status} to an unauthenticated request: the plugin filter is not active")
        hl7_enabled = self.drimbox_settings()["Hl7"].get("Enabled", True)
        return wait_for_port(self.bind, self.ports.hl7) if hl7_enabled else True

    def stop(self) -> None:
        if self.nginx:
            self.nginx.stop()
        if self.orthanc:
            self.orthanc.stop(timeout=30)

    def restart_orthanc(self, timeout: float = 60.0) -> None:
        self.orthanc.stop(timeout=30)
        self.orthanc.start()
        self.orthanc.wait_until(self._orthanc_ready, timeout, "answering on its HTTP port")
