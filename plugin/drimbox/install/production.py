"""Writes a production box: Orthanc's configuration with the DRIMbox section, nginx's, systemd units.

Every path, in the files written and inside them, is under ``root`` ("/" on a real server): a test installs
into a throw-away directory and can check (even run) what it got, with no change to the system.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from drimbox.install.answers import Answers, Certificate
from drimbox.launcher.box_instance import NGINX, ORTHANC, PLUGIN_SCRIPT, PLUGINS, PLUGINS_DIR, REPO, site_packages
from drimbox.launcher.edge import METHOD_OVERRIDE_HEADERS, TLS12_CIPHERS, content_security_policies

OPERATOR_USER = "operator"
LOG_KEEP_DAYS = 30
UNITS = ("drimbox-orthanc.service", "drimbox-nginx.service", "drimbox.target")


@dataclass(frozen=True)
class Layout:
    root: Path

    def _at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def etc(self) -> Path:
        return self._at("/etc/drimbox")

    @property
    def orthanc_conf(self) -> Path:
        return self.etc / "orthanc.d"

    @property
    def pki(self) -> Path:
        return self.etc / "pki"

    @property
    def secrets(self) -> Path:
        return self.etc / "secrets"

    @property
    def nginx_conf(self) -> Path:
        return self.etc / "nginx.conf"

    @property
    def state(self) -> Path:
        return self._at("/var/lib/drimbox")

    @property
    def logs(self) -> Path:
        return self._at("/var/log/drimbox")

    @property
    def units(self) -> Path:
        return self._at("/etc/systemd/system")

    @property
    def logrotate(self) -> Path:
        return self._at("/etc/logrotate.d/drimbox")

    @property
    def sysusers(self) -> Path:
        return self._at("/etc/sysusers.d/drimbox.conf")


@dataclass
class Installed:
    layout: Layout
    written: list[Path] = field(default_factory=list)
    operator_password_file: Path | None = None


def _write(installed: Installed, path: Path, text: str | bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=mode)
    path.chmod(mode)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    installed.written.append(path)
    return path


def _copy(installed: Installed, source: Path, target: Path, mode: int) -> str:
    return str(_write(installed, target, source.read_bytes(), mode))


def _secret(installed: Installed, path: Path) -> Path:
    """A random secret, kept when it already exists (a second install must not log everybody out)."""
    if path.exists():
        installed.written.append(path)
        return path
    return _write(installed, path, secrets.token_urlsafe(32) + "\n", 0o600)


def _certificate(installed: Installed, certificate: Certificate, name: str, pki: Path) -> dict[str, str]:
    """The certificate's files copied beside the configuration; the DRIMbox keys that name them."""
    suffix = certificate.cert.suffix.lower() if certificate.cert.suffix.lower() in (".p12", ".pfx") else ".pem"
    out = {"cert": _copy(installed, certificate.cert, pki / f"{name}{suffix}", 0o600)}
    if certificate.key:
        out["key"] = _copy(installed, certificate.key, pki / f"{name}.key", 0o600)
    if certificate.password_file:
        out["password"] = _copy(installed, certificate.password_file, pki / f"{name}.password", 0o600)
    return out


def _admin_certificate(installed: Installed, answers: Answers, pki: Path) -> tuple[str, str]:
    from drimbox.install.admin_tls import self_signed

    cert, key = pki / "admin.pem", pki / "admin.key"
    if answers.admin_cert and answers.admin_key:
        return _copy(installed, answers.admin_cert, cert, 0o644), _copy(installed, answers.admin_key, key, 0o600)
    if not (cert.exists() and key.exists()):  # kept across installs: scripts pin it
        cert_pem, key_pem = self_signed(answers.admin_host)
        _write(installed, key, key_pem, 0o600)
        _write(installed, cert, cert_pem, 0o644)
    return str(cert), str(key)


def drimbox_section(answers: Answers, layout: Layout, files: dict[str, Any]) -> dict[str, Any]:
    https = "" if answers.https_port == 443 else f":{answers.https_port}"
    auth, signing = files["auth"], files["signing"]
    dmp: dict[str, Any] = {
        "Enabled": True, "BaseUrl": answers.dmp_url, "CaBundle": files["dmp_ca"],
        "ClientCert": auth["cert"], "ClientKey": auth.get("key", ""),
        "ClientKeyPasswordFile": auth.get("password", ""),
        "SigningCert": signing["cert"], "SigningKey": signing.get("key", ""),
        "SigningKeyPasswordFile": signing.get("password", ""),
    }
    if answers.lps_homologation_id:
        dmp["LpsHomologationId"] = answers.lps_homologation_id
    return {
        "Deployment": "production",
        "DataDir": str(layout.state / "state"),
        "OrthancUrl": f"http://127.0.0.1:{answers.orthanc_http_port}",
        "Identity": {"OidRoot": answers.oid_root, "InstitutionName": answers.institution_name,
                     "PublicDbUrl": f"https://{answers.db_host}{https}",
                     "PublicViewerUrl": f"https://{answers.vi_host}{https}"},
        "Hl7": {"Host": "0.0.0.0", "Port": answers.hl7_port},
        "Dmp": dmp,
        "Psc": {"Issuer": answers.psc_issuer, "ClientId": answers.psc_client_id,
                "ClientSecretFile": files["psc_secret"]},
        "Whitelist": {"Source": answers.whitelist_url, "TrustAnchor": files["trust_anchor"],
                      "CrlUrls": list(answers.whitelist_crl_urls)},
        "PeerAccess": {"ClientCertificate": "required", "ClientCaFile": files["peer_ca"],
                       "ClientCrlFile": files.get("peer_crl", "")},
        "Viewer": {"OhifDir": files["ohif_dir"]},
        "Edge": {"ProxySecretFile": files["proxy_secret"]},
        "Dicom": {"Modalities": dict(answers.modalities)},
        "Operator": {"UsersFile": files["operator_users"]},
    }


def orthanc_section(answers: Answers, layout: Layout, section: dict[str, Any]) -> dict[str, Any]:
    from drimbox.config.edge import DicomSettings
    from drimbox.config.fields import read_section

    dicom = read_section(DicomSettings, section["Dicom"], "DRIMbox.Dicom")
    # Orthanc 1.10 has no bind address: HTTP refuses remote clients and the plugin believes only nginx.
    return {
        "Name": answers.institution_name,
        "StorageDirectory": str(layout.state / "orthanc" / "storage"),
        "IndexDirectory": str(layout.state / "orthanc" / "index"),
        "HttpPort": answers.orthanc_http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpCompressionEnabled": False,
        "KeepAlive": True,
        "TcpNoDelay": True,
        "DicomAet": answers.aet,
        "DicomPort": answers.dicom_port,
        **dicom.orthanc_options(),
        "StableAge": 60,
        "Plugins": [str(PLUGINS_DIR / p) for p in PLUGINS],
        "PythonScript": str(PLUGIN_SCRIPT),
        "PythonVerbose": False,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Ssl": True},
        "SaveJobs": False,
    }


def render_nginx(answers: Answers, layout: Layout, files: dict[str, Any], proxy_secret: str) -> str:
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parents[1] / "launcher" / "templates")),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    ohif = Path(files["ohif_dir"])
    return templates.get_template("nginx.conf.j2").render(
        run_dir=layout.state / "run", log_dir=layout.logs, tmp_dir=layout.state / "tmp",
        tls_cert=files["server_cert"], tls_key=files["server_key"], orthanc_http_ports=[answers.orthanc_http_port],
        bind="0.0.0.0", admin_bind=answers.admin_bind, admin_port=answers.admin_port,
        admin_server_name=answers.admin_host, admin_tls_cert=files["admin_cert"], admin_tls_key=files["admin_key"],
        db_port=answers.https_port, vi_port=answers.https_port,
        db_server_name=answers.db_host, vi_server_name=answers.vi_host,
        hsts=31536000, wado_path="/wado-rs", proxy_secret=proxy_secret, admin_max_body_mb=512,
        tls12_ciphers=TLS12_CIPHERS, csp=content_security_policies(ohif),
        method_override_headers=METHOD_OVERRIDE_HEADERS, client_ca=files["peer_ca"],
        client_crl=files.get("peer_crl", ""), ohif_dir=ohif, app_config=layout.state / "app-config.js", run_as="")


def _units(answers: Answers, layout: Layout) -> dict[Path, str]:
    templates = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                                   undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    values = dict(repo=REPO, user=answers.user, site_packages=site_packages(), orthanc=ORTHANC, nginx=NGINX,
                  orthanc_conf_dir=layout.orthanc_conf, nginx_conf=layout.nginx_conf, state_dir=layout.state,
                  log_dir=layout.logs, keep_days=LOG_KEEP_DAYS)
    out = {layout.units / name: templates.get_template(f"{name}.j2").render(**values) for name in UNITS}
    out[layout.logrotate] = templates.get_template("logrotate.j2").render(**values)
    out[layout.sysusers] = templates.get_template("sysusers.conf.j2").render(**values)
    return out


def install(answers: Answers, root: Path, *, ohif_dir: Path) -> Installed:
    """Write everything; existing secrets (proxy secret, operator password) are kept."""
    from drimbox.trust.operator_password import hash_password
    from drimbox.web.ohif import render_app_config

    layout = Layout(root.resolve())
    installed = Installed(layout)
    for directory in (layout.state / "orthanc", layout.state / "state", layout.state / "run", layout.state / "tmp",
                      layout.logs, layout.secrets, layout.pki, layout.orthanc_conf):
        directory.mkdir(parents=True, exist_ok=True)
    for private in (layout.state, layout.secrets, layout.pki):
        private.chmod(0o700)
    files: dict[str, Any] = {
        "auth": _certificate(installed, answers.auth, "auth-cli", layout.pki),
        "signing": _certificate(installed, answers.signing, "signing", layout.pki),
        "server_cert": _copy(installed, answers.server_cert, layout.pki / "server.pem", 0o600),
        "server_key": _copy(installed, answers.server_key, layout.pki / "server.key", 0o600),
        "dmp_ca": _copy(installed, answers.dmp_ca_bundle, layout.pki / "dmp-ca.pem", 0o644),
        "trust_anchor": _copy(installed, answers.trust_anchor, layout.pki / "igc-sante-root.pem", 0o644),
        "peer_ca": _copy(installed, answers.peer_ca_file, layout.pki / "peer-ca.pem", 0o644),
        "psc_secret": _copy(installed, answers.psc_client_secret_file, layout.secrets / "psc-client-secret", 0o600),
        "proxy_secret": str(_secret(installed, layout.secrets / "proxy-secret")),
        "operator_users": str(layout.secrets / "operator-users"),
        "ohif_dir": str(ohif_dir),
    }
    files["admin_cert"], files["admin_key"] = _admin_certificate(installed, answers, layout.pki)
    if answers.peer_crl_file:
        files["peer_crl"] = _copy(installed, answers.peer_crl_file, layout.pki / "peer-crl.pem", 0o644)
    password_file = layout.secrets / "operator-password"
    if not password_file.exists():
        _secret(installed, password_file)
        _write(installed, layout.secrets / "operator-users",
               f"{OPERATOR_USER}:{hash_password(password_file.read_text().strip())}\n", 0o600)
    installed.operator_password_file = password_file

    section = drimbox_section(answers, layout, files)
    _write(installed, layout.orthanc_conf / "drimbox.json", json.dumps({"DRIMbox": section}, indent=2) + "\n", 0o640)
    _write(installed, layout.orthanc_conf / "orthanc.json",
           json.dumps(orthanc_section(answers, layout, section), indent=2) + "\n", 0o640)
    proxy_secret = Path(files["proxy_secret"]).read_text().strip()
    _write(installed, layout.nginx_conf, render_nginx(answers, layout, files, proxy_secret), 0o600)
    _write(installed, layout.state / "app-config.js", render_app_config(dicomweb_root="/dicom-web"), 0o644)
    for path, text in _units(answers, layout).items():
        _write(installed, path, text, 0o644)
    return installed


def hand_over(installed: Installed, user: str) -> None:
    """On the real system: the service user owns its data and logs; root keeps the configuration, which the
    service user's group may read but not change."""
    import pwd

    entry = pwd.getpwnam(user)
    apply_ownership(installed.layout, entry.pw_uid, entry.pw_gid, config_uid=0)


def apply_ownership(layout: Layout, uid: int, gid: int, *, config_uid: int) -> None:
    for top in (layout.state, layout.logs):
        for directory, _, names in os.walk(top):
            os.chown(directory, uid, gid)
            for name in names:
                os.chown(os.path.join(directory, name), uid, gid)
    for directory, _, names in os.walk(layout.etc):
        os.chown(directory, config_uid, gid)
        os.chmod(directory, 0o750)
        for name in names:
            path = os.path.join(directory, name)
            os.chown(path, config_uid, gid)
            os.chmod(path, (os.stat(path).st_mode & 0o700) | 0o040)


def service_user_exists(user: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def create_service_user(installed: Installed) -> None:
    """systemd-sysusers reads the file install wrote (the system's own way to create a service user)."""
    tool = shutil.which("systemd-sysusers")
    if tool is None:
        raise RuntimeError("systemd-sysusers is missing: create the service user by hand (see docs/operations.md)")
    import subprocess

    subprocess.run([tool, str(installed.layout.sysusers)], check=True)
