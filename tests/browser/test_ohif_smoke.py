"""OHIF from the fetched dist renders a study served by a real Orthanc 1.10 + DICOMweb 1.7.

Starts its own Orthanc (only the DICOMweb plugin, loopback, no DICOM port), stores a small JPEG-LS CT
series, serves the dist and our app-config.js with nginx (proxying /dicom-web), screenshots
/viewer?StudyInstanceUIDs=<uid> with headless chromium and checks the image area is not blank.
Needs `drimbox viewer fetch` first (the dist is not in git).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import requests
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from drimbox.web.ohif import REPO_VIEWER_DIR, render_app_config
from drimbox.launcher.ports import free_port
from support.chromium import Chromium

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DIST = Path(os.environ.get("DRIMBOX_OHIF_DIST", REPO_VIEWER_DIR / "dist"))
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"



def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_series(directory: Path, count: int = 3) -> str:
    """A 256x256 12-bit CT series, stored as JPEG-LS lossless (what the national tests use)."""
    study, series = generate_uid(), generate_uid()
    y, x = np.mgrid[0:256, 0:256]
    for index in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "SMOKE1", "SMOKE^OHIF", "19700101", "O"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20240101", "120000", "ACC1", "1"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, index + 1
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, index * 2.0], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [1, 1], 2
        ds.Rows = ds.Columns = 256
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.WindowCenter, ds.WindowWidth = 1024, 2048
        disc = ((x - 128) ** 2 + (y - 128) ** 2 < (60 + 10 * index) ** 2) * 1500
        ds.PixelData = ((x * 8 + y * 4) % 2048 + disc).astype(np.uint16).tobytes()
        raw = directory / f"raw{index}.dcm"
        ds.save_as(raw, enforce_file_format=True)
        subprocess.run(["dcmcjpls", str(raw), str(directory / f"jls{index}.dcm")], check=True)
    return study


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """Width, height, channels and raw 8-bit pixel rows of a non-interlaced 8-bit RGB/RGBA/gray PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, [], None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunk = data[offset + 8:offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0 and color in (0, 2, 6), f"unsupported PNG {header}"
    channels = {0: 1, 2: 3, 6: 4}[color]
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    out = bytearray(height * stride)
    previous = bytearray(stride)
    for row in range(height):
        kind = raw[row * (stride + 1)]
        line = bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                up_left = previous[i - channels] if i >= channels else 0
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 255
        out[row * stride:(row + 1) * stride] = line
        previous = line
    return width, height, channels, bytes(out)


def viewport_statistics(png: bytes) -> tuple[int, int, int]:
    """Gray levels seen at least 20 times, lit pixels, and samples in the middle of the window (OHIF's
    viewport). Anti-aliased text gives many gray levels too, but each only a few times."""
    width, height, channels, pixels = decode_png(png)
    assert channels >= 3, "chromium screenshots are RGB(A)"
    grays: dict[int, int] = {}
    lit = 0
    rows, cols = range(height // 4, 3 * height // 4, 3), range(width // 3, 2 * width // 3, 3)
    for row in rows:
        for col in cols:
            i = (row * width + col) * channels
            r, g, b = pixels[i], pixels[i + 1], pixels[i + 2]
            if abs(r - g) < 6 and abs(g - b) < 6:
                grays[r // 2] = grays.get(r // 2, 0) + 1
            lit += max(r, g, b) > 40
    return sum(count >= 20 for count in grays.values()), lit, len(rows) * len(cols)


def nginx_conf(tmp: Path, port: int, orthanc_port: int, app_config: Path) -> str:
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / name).mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the 0700 pytest tmp dir
    return f"""{user}daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
  include /etc/nginx/mime.types;
  access_log {tmp}/access.log;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {DIST};
    location = /app-config.js {{ alias {app_config}; }}
    location /dicom-web/ {{
      proxy_pass http://127.0.0.1:{orthanc_port};
      proxy_set_header Host $http_host;
      proxy_buffering off;
    }}
    location / {{ try_files $uri /index.html; }}
  }}
}}
"""


@pytest.fixture
def stack(tmp_path):
    missing = [name for name, path in (("Orthanc", ORTHANC), ("chromium", CHROMIUM), ("nginx", NGINX),
                                       ("dcmcjpls", shutil.which("dcmcjpls")), ("DICOMweb plugin", DICOMWEB_PLUGIN))
               if not path or not Path(path).exists()]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}")
    orthanc_port, web_port = free_port(), free_port()
    (tmp_path / "db").mkdir()
    config = {
        "Name": "smoke", "StorageDirectory": str(tmp_path / "db"), "IndexDirectory": str(tmp_path / "db"),
        "HttpPort": orthanc_port, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
        "DicomServerEnabled": False, "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (tmp_path / "orthanc.json").write_text(json.dumps(config))
    processes = []
    try:
        orthanc = subprocess.Popen([ORTHANC, str(tmp_path / "orthanc.json")], cwd=tmp_path,
                                   stdout=open(tmp_path / "orthanc.log", "wb"), stderr=subprocess.STDOUT)
        processes.append(orthanc)
        wait_http(f"http://127.0.0.1:{orthanc_port}/system")
        (tmp_path / "series").mkdir()
        study = make_series(tmp_path / "series")
        for path in sorted((tmp_path / "series").glob("jls*.dcm")):
            requests.post(f"http://127.0.0.1:{orthanc_port}/instances", data=path.read_bytes(),
                          timeout=10).raise_for_status()
        app_config = tmp_path / "app-config.js"
        app_config.write_text(render_app_config(dicomweb_root="/dicom-web"))
        (tmp_path / "nginx.conf").write_text(nginx_conf(tmp_path, web_port, orthanc_port, app_config))
        nginx = subprocess.Popen([NGINX, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)], cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=open(tmp_path / "nginx.stderr", "wb"))
        processes.append(nginx)
        wait_http(f"http://127.0.0.1:{web_port}/app-config.js")
        yield {"base": f"http://127.0.0.1:{web_port}", "study": study, "tmp": tmp_path}
    finally:
        for process in reversed(processes):
            stop(process)


@pytest.mark.skipif(not (DIST / "index.html").is_file(),
                    reason=f"OHIF dist not fetched into {DIST}: run `drimbox viewer fetch` first")
@pytest.mark.timeout(180)
def test_ohif_renders_a_study_from_orthanc(stack):
    base, tmp = stack["base"], stack["tmp"]
    assert requests.get(f"{base}/dicom-web/studies?StudyInstanceUID={stack['study']}", timeout=10).json()
    browser = Chromium(tmp / "chromium")
    screenshot = tmp / "ohif.png"
    try:
        browser.navigate(f"{base}/viewer?StudyInstanceUIDs={stack['study']}")
        # One screenshot after a fixed delay races OHIF's loading on a busy machine: poll until painted.
        deadline, stats = time.monotonic() + 90, (0, 0, 1)
        while time.monotonic() < deadline:
            time.sleep(2)
            stats = viewport_statistics(browser.screenshot(screenshot))
            if stats[0] > 20 and stats[1] > stats[2] // 4:
                break
    finally:
        browser.close()
    kept = os.environ.get("DRIMBOX_KEEP_SCREENSHOT")
    if kept and screenshot.exists():
        shutil.copy(screenshot, kept)
    access = (tmp / "access.log").read_text()
    assert "/frames/1" in access, "OHIF fetched no frame from DICOMweb"

    grays, lit, samples = stats
    # Our CT ramp + disc gives a wide range of grays over much of the area; OHIF's dark chrome does not.
    assert grays > 20, f"only {grays} gray levels in the viewport: image not rendered"
    assert lit > samples // 4, f"only {lit}/{samples} lit pixels in the viewport: image not rendered"
