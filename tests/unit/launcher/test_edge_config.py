"""The generated edge: nginx's TLS suites, answer headers, limits and method refusals; Orthanc's DICOM acceptance."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat

import pytest

from drimbox.launcher.box_instance import SENDER_AET, BoxInstance
from drimbox.launcher.edge import content_security_policies
from drimbox.launcher.ports import BoxPorts

EDGE_HEADERS = ("Strict-Transport-Security", "Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy",
                "X-Frame-Options")


@pytest.fixture(scope="module")
def box(tmp_path_factory) -> BoxInstance:
    instance = BoxInstance(tmp_path_factory.mktemp("box"), BoxPorts())
    instance.write_configuration()
    return instance


@pytest.fixture(scope="module")
def config(box) -> str:
    return (box.data_dir / "nginx.conf").read_text()


def blocks_with_add_header(config: str) -> dict[str, str]:
    """server, location and if blocks that hold add_header lines, each with its own lines only."""
    found: dict[str, str] = {}
    stack: list[tuple[str, list[str]]] = []
    for line in config.splitlines():
        text = line.strip()
        if text.endswith("{") and not text.startswith(("map ", "upstream ", "events", "http")):
            stack.append((text, []))
        elif text.endswith("{"):
            stack.append(("", []))
        elif text == "}" or text.endswith("}") and "{" in text:
            if text == "}" and stack:
                head, lines = stack.pop()
                if head and any(x.startswith("add_header") for x in lines):
                    found[f"{head} #{len(found)}"] = "\n".join(lines)
        elif stack:
            stack[-1][1].append(text)
    return found


def test_every_block_with_its_own_headers_repeats_the_edge_headers(config):
    blocks = blocks_with_add_header(config)
    servers = [head for head in blocks if head.startswith("server")]
    assert len(servers) == 3, blocks.keys()  # admin, db, vi (the curated hop is loopback-only)
    assert len(blocks) >= 6, blocks.keys()  # + db's 405, db's retrieve, vi's denial
    for head, body in blocks.items():
        for header in EDGE_HEADERS:
            assert re.search(rf"^add_header {header} .* always;$", body, re.M), f"{head}: no {header}"
        assert 'Strict-Transport-Security "max-age=31536000; includeSubDomains"' in body


def test_every_entry_refuses_method_overrides_and_bounds_bodies(config):
    servers = re.findall(r"\n    server \{(.*?)\n    \}", config, re.S)
    entries = [s for s in servers if " ssl;" in s]
    assert len(entries) == 3
    for server in entries:
        assert "if ($drimbox_method_override) {\n            return 400;" in server
    assert re.search(r"^    client_max_body_size 4k;", config, re.M)  # db (and default)
    assert "client_max_body_size 512m;" in entries[0] and "client_max_body_size 16k;" in entries[2]
    assert '"~*(^|&)(_method|[^&=]*%)" 1;' in config
    assert "$http_x_http_method_override$http_x_http_method$http_x_method_override" in config


def test_tls_12_and_13_with_ecdhe_aead_suites_only(config):
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in config
    suites = re.search(r"ssl_ciphers ([^;]+);", config).group(1).split(":")
    assert suites and all(s.startswith("ECDHE-") and ("GCM" in s or "CHACHA20-POLY1305" in s) for s in suites)
    assert "ssl_prefer_server_ciphers on;" in config


def test_health_check_drops_the_query_string(config):
    assert config.count("rewrite ^ /drimbox/health? break;") == 2
    assert "rewrite ^ /drimbox/health break;" not in config


def test_proxy_secret_is_private_and_set_on_every_proxied_request(box, config):
    secret_file = box.data_dir / "proxy-secret"
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32
    for path in (secret_file, box.data_dir / "nginx.conf"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    settings = json.loads((box.conf_dir / "drimbox.json").read_text())["DRIMbox"]
    assert settings["Edge"]["ProxySecretFile"] == str(secret_file)
    assert secret not in (box.conf_dir / "drimbox.json").read_text()
    proxied = config.count("proxy_pass http://")
    assert config.count(f'proxy_set_header X-Drimbox-Proxy "{secret}";') == proxied + 1  # + the http level
    assert BoxInstance(box.data_dir, BoxPorts()).render_nginx().count(secret) == proxied + 1  # stable per data dir


def test_orthanc_accepts_dicom_only_from_declared_modalities(box):
    orthanc = json.loads((box.conf_dir / "orthanc.json").read_text())
    assert orthanc["DicomAlwaysAllowStore"] is False and orthanc["DicomAlwaysAllowEcho"] is False
    assert orthanc["DicomCheckCalledAet"] is True and orthanc["DicomCheckModalityHost"] is True
    (sender,) = orthanc["DicomModalities"].values()
    assert sender["AET"] == SENDER_AET == box.sender_aet and sender["Host"] == "127.0.0.1"
    assert sender["AllowStore"] and sender["AllowEcho"] and not sender["AllowMove"] and not sender["AllowFind"]


def test_declared_modalities_and_open_mode_come_from_the_drimbox_section(tmp_path):
    modalities = {"ct": {"AET": "CT01", "Host": "10.0.0.7", "Port": 104}}
    box = BoxInstance(tmp_path, BoxPorts(), modalities=modalities,
                      settings={"Dicom": {"AcceptAnyModality": True, "CheckModalityHost": False}})
    orthanc = box.orthanc_configuration()
    assert orthanc["DicomAlwaysAllowStore"] is True and orthanc["DicomCheckModalityHost"] is False
    assert orthanc["DicomModalities"]["ct"]["AET"] == "CT01" and box.sender_aet == "CT01"


def test_viewer_policy_allows_exactly_ohif_inline_scripts(tmp_path):
    scripts = [b'window.PUBLIC_URL="/"', b"console.log(1)"]
    (tmp_path / "index.html").write_bytes(b"<html><script>" + scripts[0] + b"</script><script src=/a.js></script>"
                                          b"<script>" + scripts[1] + b"</script></html>")
    policy = content_security_policies(tmp_path)["vi"]
    script_src = re.search(r"script-src ([^;]+);", policy).group(1).split()
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in scripts]
    assert [s for s in script_src if s.startswith("'sha256-")] == hashes
    assert "'unsafe-inline'" not in script_src and "frame-ancestors 'none'" in policy
    assert content_security_policies(tmp_path)["db"].startswith("default-src 'none'")
