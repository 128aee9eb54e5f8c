"""The generated nginx configuration never lets a client's header reach Orthanc as a trusted one."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from drimbox.launcher.box_instance import BoxInstance
from drimbox.launcher.ports import BoxPorts

TRUSTED = ("X-Drimbox-Entry", "X-Drimbox-Internal", "X-Drimbox-Operator", "X-Drimbox-Grant", "X-Drimbox-Client-Addr",
           "X-Ssl-Client-Verify", "X-Ssl-Client-S-Dn", "X-Drimbox-Proxy",
           "X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")


def proxying_locations(config: str) -> dict[str, str]:
    """location header -> body, for every location block that proxies (to Orthanc, or to the curated hop)."""
    blocks = {}
    for match in re.finditer(r"\n\s*location ([^{]+)\{(.*?)\n\s{8}\}", config, re.S):
        if "proxy_pass http://" in match.group(2):
            blocks[match.group(1).strip()] = match.group(2)
    return blocks


def test_every_proxying_location_sets_or_clears_each_trusted_header(tmp_path):
    config = BoxInstance(tmp_path, BoxPorts()).render_nginx()
    locations = proxying_locations(config)
    assert len(locations) >= 8, sorted(locations)  # admin, db (health x2, retrieve, authz, denied), vi (...)
    for where, body in locations.items():
        for header in TRUSTED:
            assert re.search(rf"proxy_set_header {header} ", body), f"location {where} does not set {header}"


def test_every_admin_request_passes_the_operator_decision(tmp_path):
    config = BoxInstance(tmp_path, BoxPorts()).render_nginx()
    admin = config[config.index("# --- operator entry"):config.index("# --- the curated retrieve")]
    assert "auth_basic" not in admin
    assert "location = / { return 302 /app/explorer.html; }" in admin  # the only location without the decision
    admin = admin.replace("location = / { return 302 /app/explorer.html; }", "")
    public = {where: body for where, body in proxying_locations(admin).items() if "internal;" not in body}
    assert set(public) == {"/", "= /drimbox/operator/login"}
    for where, body in public.items():
        assert "auth_request /_drimbox_operator_authz;" in body, where
        assert "proxy_set_header X-Drimbox-Operator $drimbox_operator;" in body, where
    authz = proxying_locations(admin)["= /_drimbox_operator_authz"]
    assert 'proxy_set_header X-HTTP-Method-Override "";' in authz  # Orthanc would apply it to the subrequest


def test_peer_tokens_and_client_accept_never_reach_orthanc(tmp_path):
    config = BoxInstance(tmp_path, BoxPorts()).render_nginx()
    retrieve = proxying_locations(config)["/wado-rs/"]
    assert 'proxy_set_header Authorization "";' in retrieve
    assert "proxy_set_header Accept $drimbox_accept;" in retrieve  # only the decision's Accept
    assert "X-Drimbox-Grant $drimbox_grant" in retrieve
    # the target comes from the decision, never from the client's path
    assert "proxy_pass http://$drimbox_upstream$drimbox_target;" in retrieve and "rewrite" not in retrieve


def test_the_curated_hop_buffers_and_listens_on_a_socket_only(tmp_path):
    config = BoxInstance(tmp_path, BoxPorts()).render_nginx()
    hop = proxying_locations(config)["/drimbox/peer-retrieve/"]
    assert "proxy_buffering on;" in hop and "X-Drimbox-Entry $http_x_drimbox_entry" in hop
    assert "X-Drimbox-Grant $http_x_drimbox_grant" in hop
    assert f"listen unix:{tmp_path}/run/curated.sock;" in config
    assert "~^/drimbox/peer-retrieve/ drimbox_curated;" in config


@pytest.mark.skipif(shutil.which("nginx") is None and not shutil.which("/usr/sbin/nginx"), reason="nginx missing")
def test_nginx_accepts_the_generated_configuration(tmp_path):
    box = BoxInstance(tmp_path / "box", BoxPorts.free())
    box.write_configuration()
    result = subprocess.run(["/usr/sbin/nginx", "-t", "-c", str(box.data_dir / "nginx.conf"), "-p", str(box.data_dir)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
