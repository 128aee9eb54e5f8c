"""The OHIF viewer: fetching its prebuilt dist from npm (pinned, integrity-checked) and its app-config.js.

OHIF is served as static files at the root of the viewer host; its DICOMweb calls go to the same origin.
The dist is fetched at setup, never committed (``viewer/dist`` and ``viewer/cache`` are git-ignored).

By default the ``ort/`` folder (about 136 MB, the ONNX runtime used only by OHIF's optional AI
segmentation tools) is not unpacked: the viewer we open never loads it, and it would triple the size.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

STAMP_NAME = ".drimbox-ohif-stamp.json"
DIST_PREFIX = "package/dist/"
OPTIONAL_AI_RUNTIME = "ort"
REPO_VIEWER_DIR = Path(__file__).resolve().parents[3] / "viewer"  # meaningful in a source checkout only
DEFAULT_LOCK = REPO_VIEWER_DIR / "ohif.lock.json"


class OhifFetchError(RuntimeError):
    """Fetching or unpacking OHIF failed; the message says what and how to fix it."""


@dataclass(frozen=True)
class OhifLock:
    package: str
    version: str
    tarball: str
    integrity: str  # npm's dist.integrity, "sha512-<base64>"

    @classmethod
    def load(cls, path: Path) -> "OhifLock":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise OhifFetchError(f"cannot read the OHIF lock {path}: {error}") from error
        missing = [k for k in ("package", "version", "tarball", "integrity") if not data.get(k)]
        if missing:
            raise OhifFetchError(f"OHIF lock {path} lacks {', '.join(missing)}")
        if not str(data["integrity"]).startswith("sha512-"):
            raise OhifFetchError(f"OHIF lock {path}: integrity must be npm's sha512-<base64> value")
        if "/" in data["tarball"] or data["tarball"].startswith("."):
            raise OhifFetchError(f"OHIF lock {path}: tarball must be a plain file name")
        return cls(data["package"], data["version"], data["tarball"], data["integrity"])

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"


def sri_sha512(path: Path) -> str:
    """The Subresource-Integrity form npm uses: ``sha512-`` + base64 of the SHA-512 digest."""
    digest = hashlib.sha512()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode("ascii")


def fetch_ohif(
    dest_dir: Path | str,
    lock_path: Path | str = DEFAULT_LOCK,
    cache_dir: Path | str | None = None,
    *,
    keep_ai_runtime: bool = False,
    npm: str = "npm",
) -> Path:
    """Make ``dest_dir`` hold the locked OHIF dist; return it. Idempotent (a stamp records what is there).

    The tarball comes from ``npm pack`` into ``cache_dir`` (default: ``<dest_dir>/../cache``) and is
    refused, and deleted, when its SHA-512 differs from the lock's integrity.
    """
    dest = Path(dest_dir).resolve()
    lock = OhifLock.load(Path(lock_path))
    cache = Path(cache_dir).resolve() if cache_dir else dest.parent / "cache"
    wanted_stamp = {"package": lock.spec, "integrity": lock.integrity, "ai_runtime": keep_ai_runtime}
    if _read_stamp(dest) == wanted_stamp and (dest / "index.html").is_file():
        return dest
    tarball = _verified_tarball(lock, cache, npm)
    _unpack_dist(tarball, dest, keep_ai_runtime=keep_ai_runtime)
    (dest / STAMP_NAME).write_text(json.dumps(wanted_stamp, indent=2) + "\n", encoding="utf-8")
    return dest


def _read_stamp(dest: Path) -> dict | None:
    try:
        return json.loads((dest / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _verified_tarball(lock: OhifLock, cache: Path, npm: str) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / lock.tarball
    if tarball.is_file() and sri_sha512(tarball) == lock.integrity:
        return tarball
    tarball.unlink(missing_ok=True)
    if shutil.which(npm) is None:
        raise OhifFetchError(f"'{npm}' not found: install Node.js/npm to fetch {lock.spec}")
    command = [npm, "pack", lock.spec, "--pack-destination", str(cache), "--silent"]
    try:
        result = subprocess.run(command, cwd=cache, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as error:
        raise OhifFetchError(f"npm pack {lock.spec} timed out") from error
    if result.returncode != 0:
        raise OhifFetchError(f"npm pack {lock.spec} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    if not tarball.is_file():
        raise OhifFetchError(f"npm pack {lock.spec} did not produce {tarball} (stdout: {result.stdout.strip()!r})")
    actual = sri_sha512(tarball)
    if actual != lock.integrity:
        tarball.unlink(missing_ok=True)
        raise OhifFetchError(
            f"integrity mismatch for {lock.spec}: the lock says {lock.integrity}, the registry sent {actual}; "
            "refusing it (check the lock against `npm view <package>@<version> dist.integrity`)"
        )
    return tarball


def _unpack_dist(tarball: Path, dest: Path, *, keep_ai_runtime: bool) -> None:
    """Extract ``package/dist/`` only, regular files and directories only, then swap it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        count = 0
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                relative = _dist_relative(member.name)
                if relative is None:
                    continue
                if not keep_ai_runtime and relative.parts[0] == OPTIONAL_AI_RUNTIME:
                    continue
                target = staging.joinpath(*relative.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = archive.extractfile(member)
                    if source is None:
                        raise OhifFetchError(f"{tarball}: cannot read {member.name}")
                    with open(target, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
                    count += 1
                # links and devices are never extracted
        if not (staging / "index.html").is_file():
            raise OhifFetchError(f"{tarball} has no {DIST_PREFIX}index.html: not an OHIF app package")
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}-old-{os.getpid()}")
            dest.rename(old)
        staging.rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _dist_relative(name: str) -> PurePosixPath | None:
    if not name.startswith(DIST_PREFIX):
        return None
    relative = PurePosixPath(name[len(DIST_PREFIX):])
    if not relative.parts or relative.is_absolute() or ".." in relative.parts:
        return None
    return relative


def render_app_config(
    *,
    dicomweb_root: str,
    friendly_name: str = "DRIMbox",
    show_study_list: bool = False,
    max_web_workers: int = 3,
) -> str:
    """OHIF's ``app-config.js`` for Orthanc 1.10 + DICOMweb 1.7 behind the same origin.

    ``dicomweb_root`` is a path on the viewer's own origin (``/dicom-web``); the roots are built from
    ``window.location.origin`` so no CORS is ever involved (Orthanc never answers OPTIONS). No
    ``singlepart`` (DICOMweb 1.7 answers 400 to single-part requests) and ``wadors`` thumbnails (there is
    no ``/thumbnail``). The study list is hidden: the viewer opens one study by
    ``/viewer?StudyInstanceUIDs=<uid>``. OHIF's onboarding tour is turned off.
    """
    if not dicomweb_root.startswith("/") or "//" in dicomweb_root or any(c in dicomweb_root for c in "'\"\\<>\n"):
        raise ValueError(f"dicomweb_root must be a same-origin path such as /dicom-web, got {dicomweb_root!r}")
    root = dicomweb_root.rstrip("/") or "/"
    config = {
        "routerBasename": "/",
        "extensions": [],
        "modes": [],
        # no onboarding tour: its overlay dims the image of a viewer opened from a report link
        "customizationService": {"ohif.tours": {"$set": []}},
        "showStudyList": show_study_list,
        "maxNumberOfWebWorkers": max_web_workers,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "investigationalUseDialog": {"option": "never"},
        "maxNumRequests": {"interaction": 100, "thumbnail": 5, "prefetch": 25},
        "defaultDataSourceName": "drimbox",
    }
    source = {
        "friendlyName": friendly_name,
        "name": "orthanc",
        "qidoSupportsIncludeField": True,
        "imageRendering": "wadors",
        "thumbnailRendering": "wadors",
        "enableStudyLazyLoad": True,
        "supportsFuzzyMatching": False,
        "supportsWildcard": True,
        "staticWado": False,
        "dicomUploadEnabled": False,
        "omitQuotationForMultipartRequest": True,
        "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
    }
    root_js = "window.location.origin + " + json.dumps(root)
    source_js = textwrap.indent(json.dumps(source, indent=2), " " * 6).strip()[:-1].rstrip() + (
        f",\n        \"qidoRoot\": {root_js},\n        \"wadoRoot\": {root_js},\n"
        f"        \"wadoUriRoot\": {root_js}\n      }}"
    )
    body = json.dumps(config, indent=2)[:-1].rstrip()
    return (
        "/* Generated by drimbox.web.ohif.render_app_config: OHIF for Orthanc 1.10 + DICOMweb 1.7. */\n"
        "window.config = " + body + ",\n"
        '  "dataSources": [\n'
        "    {\n"
        '      "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",\n'
        '      "sourceName": "drimbox",\n'
        f'      "configuration": {source_js}\n'
        "    }\n"
        "  ]\n"
        "};\n"
    )
