"""``drimbox install`` in a throw-away root: the files it writes are checked by the tools that will read them
(drimbox config check, nginx -t, systemd-analyze verify), then the box is started from them; a configuration
that keeps a simulator, the demo whitelist or the test PKI is refused with one message per problem."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from install_helpers import DB_HOST, DRIMBOX, VI_HOST, install_args, run, structure_files  # noqa: E402

from drimbox.launcher.box_instance import NGINX, ORTHANC, SENDER_AET, site_packages  # noqa: E402
from drimbox.launcher.ports import BoxPorts  # noqa: E402
from drimbox.launcher.processes import ManagedProcess, wait_for_port  # noqa: E402
from drimbox.samples.whitelist import make_demo_whitelist  # noqa: E402
from drimbox.testing import demo_study  # noqa: E402

pytestmark = pytest.mark.integration

UNITS = ("drimbox-orthanc.service", "drimbox-nginx.service", "drimbox.target")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return structure_files(tmp_path_factory.mktemp("structure"))


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_install_writes_a_production_box_its_tools_accept(tmp_path, files):
    root = tmp_path / "root"
    result = run(install_args(root, files))
    assert result.returncode == 0, result.stderr
    assert "Nothing was changed on this system" in result.stdout
    conf = root / "etc/drimbox/orthanc.d"

    check = run([DRIMBOX, "config", "check", str(conf)])
    assert check.returncode == 0, check.stderr
    nginx_conf = root / "etc/drimbox/nginx.conf"
    state = root / "var/lib/drimbox"
    nginx = run([NGINX, "-t", "-q", "-c", str(nginx_conf), "-p", str(state), "-g", "daemon off;"])
    assert nginx.returncode == 0, nginx.stderr
    units = [str(root / "etc/systemd/system" / name) for name in UNITS]
    verify = run([shutil.which("systemd-analyze") or "systemd-analyze", "verify", *units])
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr

    section = json.loads((conf / "drimbox.json").read_text())["DRIMbox"]
    orthanc = json.loads((conf / "orthanc.json").read_text())
    assert section["Deployment"] == "production"
    assert section["Identity"]["PublicDbUrl"] == f"https://{DB_HOST}"
    assert section["Identity"]["PublicViewerUrl"] == f"https://{VI_HOST}"
    assert section["Dicom"]["Modalities"] == {"ct1": {"AET": "CT_SALLE1", "Host": "10.0.0.21", "Port": 104}}
    assert orthanc["DicomAlwaysAllowStore"] is False and orthanc["RemoteAccessAllowed"] is False
    # every file the box writes or reads from its own install lives under the root
    own = [s for s in [*_strings(section), *_strings(orthanc)] if s.startswith("/")]
    repo = str(Path(__file__).resolve().parents[3])  # the code (plugin script, OHIF dist) stays in the checkout
    installed = [s for s in own if Path(s).exists() and not s.startswith(("/usr/", repo))]
    assert installed and all(s.startswith(str(root)) for s in installed), installed
    assert section["Dmp"]["ClientCert"].endswith("auth-cli.p12") and section["Dmp"]["ClientKeyPasswordFile"]

    for secret in ("etc/drimbox/secrets/proxy-secret", "etc/drimbox/secrets/operator-password",
                   "etc/drimbox/pki/auth-cli.p12", "etc/drimbox/pki/server.key", "etc/drimbox/nginx.conf"):
        assert (root / secret).stat().st_mode & 0o077 == 0, secret
    orthanc_unit = (root / "etc/systemd/system/drimbox-orthanc.service").read_text()
    assert "User=drimbox" in orthanc_unit and f"ExecStart={ORTHANC} {conf}" in orthanc_unit
    assert f"DRIMBOX_SITE_PACKAGES={site_packages()}" in orthanc_unit
    nginx_unit = (root / "etc/systemd/system/drimbox-nginx.service").read_text()
    assert "User=drimbox" in nginx_unit and "AmbientCapabilities=CAP_NET_BIND_SERVICE" in nginx_unit
    assert (root / "etc/sysusers.d/drimbox.conf").read_text().split("\n")[1].startswith("u drimbox ")
    assert str(root / "var/log/drimbox") in (root / "etc/logrotate.d/drimbox").read_text()

    # a second install keeps the secrets (operators and the running nginx keep theirs)
    password = (root / "etc/drimbox/secrets/operator-password").read_text()
    proxy = (root / "etc/drimbox/secrets/proxy-secret").read_text()
    assert run(install_args(root, files)).returncode == 0
    assert (root / "etc/drimbox/secrets/operator-password").read_text() == password
    assert (root / "etc/drimbox/secrets/proxy-secret").read_text() == proxy


def _get(port: int, host: str, path: str, ca: Path) -> tuple[int, bytes]:
    """A GET on 127.0.0.1:port with ``host`` as the TLS server name and Host (the entries share the port)."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _start(root: Path, ports: BoxPorts) -> tuple[ManagedProcess, ManagedProcess]:
    conf = root / "etc/drimbox/orthanc.d"
    logs = root / "var/log/drimbox"
    orthanc = ManagedProcess("Orthanc", [ORTHANC, str(conf)], log_path=logs / "orthanc.log",
                             env={"DRIMBOX_SITE_PACKAGES": site_packages(), "PATH": "/usr/bin:/bin"})
    nginx = ManagedProcess("nginx", [NGINX, "-c", str(root / "etc/drimbox/nginx.conf"), "-p",
                                     str(root / "var/lib/drimbox"), "-g", "daemon off;"], log_path=logs / "nginx.out")
    orthanc.start()
    try:
        orthanc.wait_until(lambda: wait_for_port("127.0.0.1", ports.orthanc_http), 60, "answering")
        nginx.start()
        nginx.wait_until(lambda: wait_for_port("127.0.0.1", ports.db), 30, "listening")
    except BaseException:
        nginx.stop()
        orthanc.stop(timeout=30)
        raise
    return orthanc, nginx


def test_the_installed_box_starts_serves_and_comes_back_from_a_backup(tmp_path, files):
    """Started from its files: the db and vi entries on one port by host name, the operator entry behind its
    own certificate; a study sent by a declared modality survives backup, wipe and restore."""
    root = tmp_path / "root"
    ports = BoxPorts.free()
    result = run(install_args(root, files, **{
        "--https-port": str(ports.db), "--admin-port": str(ports.admin), "--dicom-port": str(ports.dicom),
        "--hl7-port": str(ports.hl7), "--orthanc-http-port": str(ports.orthanc_http),
        "--modality": f"sender={SENDER_AET}@127.0.0.1:11112"}))
    assert result.returncode == 0, result.stderr
    conf = root / "etc/drimbox/orthanc.d"
    admin = ["--config", str(conf), "--box-url", f"https://localhost:{ports.admin}",
             "--password-file", str(root / "etc/drimbox/secrets/operator-password"),
             "--ca-bundle", str(root / "etc/drimbox/pki/admin.pem")]
    orthanc, nginx = _start(root, ports)
    try:
        status, body = _get(ports.db, DB_HOST, "/wado-rs", files.root)
        assert status == 200 and json.loads(body)["status"], body
        # the same port under the vi name is the viewer entry, which has no WADO-RS health check
        status, _ = _get(ports.db, VI_HOST, "/wado-rs/studies/1.2.3", files.root)
        assert status != 200
        status, _ = _get(ports.db, DB_HOST, "/wado-rs/studies/1.2.3/series/1.2.4", files.root)
        assert status == 403  # no client certificate: the production default requires one
        study = demo_study(tmp_path / "study")
        sent = subprocess.run(["storescu", "-aet", SENDER_AET, "-aec", "DRIMBOX", "+sd", "+r", "127.0.0.1",
                               str(ports.dicom), str(tmp_path / "study")], capture_output=True, text=True,
                              timeout=120)
        assert sent.returncode == 0, sent.stderr
        backup = run([DRIMBOX, "backup", str(tmp_path / "backup"), *admin])
        assert backup.returncode == 0, backup.stderr
        assert f"{sum(len(s.instances) for s in study.series)} instances" in backup.stdout
    finally:
        nginx.stop()
        orthanc.stop(timeout=30)
    shutil.rmtree(root / "var/lib/drimbox/orthanc")
    shutil.rmtree(root / "var/lib/drimbox/state")
    restored = run([DRIMBOX, "restore", str(tmp_path / "backup"), *admin[:2]], timeout=300)
    assert restored.returncode == 0, restored.stderr
    orthanc, nginx = _start(root, ports)
    try:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(root / "etc/drimbox/pki/admin.pem")
        session.auth = ("operator", (root / "etc/drimbox/secrets/operator-password").read_text().strip())
        found = session.post(f"https://localhost:{ports.admin}/tools/lookup", data=study.study_uid, timeout=30)
        assert found.status_code == 200 and [r["Type"] for r in found.json()] == ["Study"], found.text
    finally:
        nginx.stop()
        orthanc.stop(timeout=30)


def test_ownership_on_the_system_keeps_the_configuration_from_the_service_user(tmp_path, files):
    from drimbox.install.production import Layout, apply_ownership

    root = tmp_path / "root"
    assert run(install_args(root, files)).returncode == 0
    layout = Layout(root)
    apply_ownership(layout, os.getuid(), os.getgid(), config_uid=os.getuid())
    for path in [layout.etc, *layout.etc.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        if path.is_dir():
            assert mode == 0o750, (path, oct(mode))
        else:
            assert mode & 0o040 and not mode & 0o027, (path, oct(mode))  # group reads, writes nothing; others nothing
    nginx = run([NGINX, "-t", "-q", "-c", str(layout.nginx_conf), "-p", str(layout.state), "-g", "daemon off;"])
    assert nginx.returncode == 0, nginx.stderr


def test_a_configuration_keeping_the_demo_is_refused_per_problem(tmp_path, files, pki):
    """The box's test PKI, simulators on this machine, the demo whitelist: each named by its key."""
    root = tmp_path / "root"
    box = pki["boxes"]["box-a"]
    ports = BoxPorts.free()
    result = run(install_args(root, files, **{
        "--https-port": str(ports.db), "--admin-port": str(ports.admin), "--dicom-port": str(ports.dicom),
        "--hl7-port": str(ports.hl7), "--orthanc-http-port": str(ports.orthanc_http),
        "--auth-cert": box["auth"]["cert"], "--auth-key": box["auth"]["key"], "--auth-password-file": "",
        "--dmp-url": "https://localhost:8445/dmp", "--psc-issuer": "https://127.0.0.1:8446/auth/realms/esante-wallet",
        "--trust-anchor": pki["root"]["cert"]}))
    assert result.returncode == 1
    assert "not usable yet" in result.stderr
    conf = root / "etc/drimbox/orthanc.d"
    drimbox_json = conf / "drimbox.json"
    configuration = json.loads(drimbox_json.read_text())
    demo_list = tmp_path / "demo-whitelist.xml"
    demo_list.write_bytes(make_demo_whitelist(pki, {"box-a": {"db": "localhost:8443", "vi": "localhost:8444"}}))
    configuration["DRIMbox"]["Whitelist"]["Source"] = str(demo_list)
    drimbox_json.write_text(json.dumps(configuration))

    check = run([DRIMBOX, "config", "check", str(conf)])
    assert check.returncode == 1
    problems = [line.strip()[2:] for line in check.stderr.splitlines() if line.strip().startswith("- ")]
    expected = {
        "Dmp.BaseUrl points at a simulator on this machine",
        "Dmp.ClientCert is a certificate of the box's test PKI",
        "Psc.Issuer points at the PSC simulator",
        "Whitelist.Source is the demo whitelist",
        "Whitelist.TrustAnchor holds the box's test PKI",
    }
    for text in expected:
        assert sum(text in p for p in problems) == 1, (text, problems)
    assert len(problems) == len(expected), problems
    # what stayed right is not reported
    assert not any("SigningCert" in p or "PeerAccess" in p or "OidRoot" in p for p in problems)

    # and the box itself refuses to start with it
    orthanc = subprocess.run([ORTHANC, str(conf)], capture_output=True, text=True, timeout=60,
                             env={"DRIMBOX_SITE_PACKAGES": site_packages(), "PATH": "/usr/bin:/bin"})
    assert orthanc.returncode != 0
    assert "not ready for production" in orthanc.stderr + orthanc.stdout
    assert "DRIMbox.Dmp.BaseUrl points at a simulator" in orthanc.stderr + orthanc.stdout


def test_config_check_production_flag_on_the_demo_configuration(tmp_path, pki):
    from drimbox.launcher.box_instance import BoxInstance

    box = BoxInstance(tmp_path / "box", BoxPorts(), pki=pki)
    box.write_configuration()
    assert run([DRIMBOX, "config", "check", str(box.conf_dir)]).returncode == 0
    check = run([DRIMBOX, "config", "check", "--production", str(box.conf_dir)])
    assert check.returncode == 1
    for key in ("Identity.OidRoot", "Identity.PublicDbUrl", "Dmp.BaseUrl", "Dmp.ClientCert", "Psc.Issuer",
                "Whitelist.Source", "PeerAccess.ClientCaFile"):
        assert f"DRIMbox.{key}" in check.stderr, (key, check.stderr)
