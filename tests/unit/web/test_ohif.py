"""OHIF packaging: integrity-checked unpacking of dist/ and the generated app-config.js."""

from __future__ import annotations

import io
import json
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from drimbox.web.ohif import STAMP_NAME, OhifFetchError, fetch_ohif, render_app_config, sri_sha512

TARBALL = "ohif-app-9.9.9.tgz"


def make_tarball(path: Path, *, index: bytes = b"<html>ohif</html>") -> Path:
    with tarfile.open(path, "w:gz") as archive:
        def add(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            info.linkname = link
            archive.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("package/package.json", b"{}")
        add("package/dist/index.html", index)
        add("package/dist/app.bundle.js", b"console.log(1)")
        add("package/dist/assets/favicon.ico", b"ico")
        add("package/dist/ort/ort-wasm.wasm", b"big")
        add("package/dist/../../escape.txt", b"nope")
        add("package/dist/link", kind=tarfile.SYMTYPE, link="/etc/passwd")
    return path


def write_lock(path: Path, integrity: str) -> Path:
    path.write_text(json.dumps({"package": "@ohif/app", "version": "9.9.9", "tarball": TARBALL,
                                "integrity": integrity}))
    return path


@pytest.fixture
def cached(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    tarball = make_tarball(cache / TARBALL)
    lock = write_lock(tmp_path / "ohif.lock.json", sri_sha512(tarball))
    return tmp_path, cache, lock


def test_unpacks_dist_only_without_ai_runtime_links_or_escapes(cached):
    root, cache, lock = cached
    dest = fetch_ohif(root / "dist", lock, cache, npm=str(root / "no-npm-needed"))
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == [STAMP_NAME, "app.bundle.js", "assets/favicon.ico", "index.html"]
    assert not (root / "escape.txt").exists() and not (dest / "link").exists()
    assert json.loads((dest / STAMP_NAME).read_text())["integrity"] == sri_sha512(cache / TARBALL)


def test_keep_ai_runtime_and_idempotence(cached):
    root, cache, lock = cached
    dest = fetch_ohif(root / "dist", lock, cache, keep_ai_runtime=True)
    assert (dest / "ort" / "ort-wasm.wasm").read_bytes() == b"big"
    (dest / "marker").write_text("kept")
    (cache / TARBALL).unlink()  # a second call must not need the tarball at all
    assert fetch_ohif(root / "dist", lock, cache, keep_ai_runtime=True) == dest
    assert (dest / "marker").exists()


def fake_npm(root: Path, tarball_bytes: bytes) -> Path:
    """Stands in for the npm client: `npm pack <spec> --pack-destination DIR` drops a tarball there."""
    payload = root / "payload.tgz"
    payload.write_bytes(tarball_bytes)
    script = root / "npm"
    script.write_text(
        "#!/bin/sh\n"
        'while [ "$1" != "--pack-destination" ]; do shift; done\n'
        f'cp "{payload}" "$2/{TARBALL}"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_refuses_tarball_whose_sha512_differs_from_the_lock(tmp_path):
    good = make_tarball(tmp_path / "good.tgz")
    lock = write_lock(tmp_path / "ohif.lock.json", sri_sha512(good))
    tampered = make_tarball(tmp_path / "evil.tgz", index=b"<script>evil()</script>").read_bytes()
    npm = fake_npm(tmp_path, tampered)
    with pytest.raises(OhifFetchError, match="integrity mismatch"):
        fetch_ohif(tmp_path / "dist", lock, tmp_path / "cache", npm=str(npm))
    assert not (tmp_path / "dist").exists()
    assert not (tmp_path / "cache" / TARBALL).exists()  # the bad tarball is not kept


def test_fetches_with_npm_when_cache_is_empty_or_stale(tmp_path):
    good = make_tarball(tmp_path / "good.tgz")
    lock = write_lock(tmp_path / "ohif.lock.json", sri_sha512(good))
    npm = fake_npm(tmp_path, good.read_bytes())
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / TARBALL).write_bytes(b"truncated download")
    dest = fetch_ohif(tmp_path / "dist", lock, tmp_path / "cache", npm=str(npm))
    assert (dest / "index.html").read_bytes() == b"<html>ohif</html>"


def test_bad_lock_and_missing_npm(tmp_path):
    lock = tmp_path / "lock.json"
    lock.write_text(json.dumps({"package": "@ohif/app", "version": "1", "tarball": "x.tgz", "integrity": "sha1-x"}))
    with pytest.raises(OhifFetchError, match="sha512"):
        fetch_ohif(tmp_path / "dist", lock, tmp_path / "cache")
    write_lock(lock, "sha512-AAAA")
    with pytest.raises(OhifFetchError, match="not found"):
        fetch_ohif(tmp_path / "dist", lock, tmp_path / "cache", npm="/nonexistent/npm")


def test_repository_lock_is_well_formed():
    from drimbox.web.ohif import DEFAULT_LOCK, OhifLock

    lock = OhifLock.load(DEFAULT_LOCK)
    assert lock.package == "@ohif/app" and lock.version.startswith("3.")
    assert lock.tarball == f"ohif-app-{lock.version}.tgz"


def test_app_config_for_orthanc_dicomweb():
    text = render_app_config(dicomweb_root="/dicom-web/")
    assert '"qidoRoot": window.location.origin + "/dicom-web"' in text
    assert '"wadoRoot": window.location.origin + "/dicom-web"' in text
    for expected in ('"showStudyList": false', '"omitQuotationForMultipartRequest": true',
                     '"imageRendering": "wadors"', '"thumbnailRendering": "wadors"',
                     '"qidoSupportsIncludeField": true', '"relativeResolution": "studies"'):
        assert expected in text
    assert "singlepart" not in text
    with pytest.raises(ValueError, match="same-origin"):
        render_app_config(dicomweb_root="https://elsewhere.example/dicom-web")
    with pytest.raises(ValueError):
        render_app_config(dicomweb_root='/x"+alert(1)+"')


@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed to evaluate app-config.js")
def test_app_config_is_valid_javascript():
    script = render_app_config(dicomweb_root="/dicom-web", friendly_name="Box 'A'", show_study_list=True)
    probe = ("global.window={location:{origin:'https://vi.example'}};" + script +
             "process.stdout.write(JSON.stringify(window.config));")
    config = json.loads(subprocess.run(["node", "-e", probe], capture_output=True, text=True, check=True).stdout)
    source = config["dataSources"][0]
    assert source["configuration"]["wadoRoot"] == "https://vi.example/dicom-web"
    assert source["configuration"]["friendlyName"] == "Box 'A'"
    assert config["defaultDataSourceName"] == source["sourceName"] and config["showStudyList"] is True


def test_cli_viewer_config_and_fetch(tmp_path, cached, capsys):
    from drimbox.cli import main

    out = tmp_path / "app-config.js"
    assert main(["viewer", "config", "--dicomweb-root", "/dicom-web", "--out", str(out)]) == 0
    assert out.read_text() == render_app_config(dicomweb_root="/dicom-web")
    assert main(["viewer", "config", "--dicomweb-root", "http://x"]) == 2
    root, cache, lock = cached
    assert main(["viewer", "fetch", "--dest", str(root / "d"), "--lock", str(lock), "--cache", str(cache),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["dest"] == str((root / "d").resolve())
