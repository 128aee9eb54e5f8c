"""What Orthanc 1.10 + DICOMweb 1.7 really sends for the Accept headers our policy forwards.

Starts a real Orthanc (only the DICOMweb plugin, never GDCM) on loopback; stores a JPEG-LS and an
uncompressed series. Lives next to the accept unit tests because it pins the facts accept.py relies on.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from support.orthanc import ORTHANC, plain_orthanc

from drimbox.trust.accept import (
    EXPLICIT_VR_LE,
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    ORTHANC_LOSSLESS_TRANSCODABLE,
    orthanc_accept_header,
)

pytestmark = pytest.mark.integration
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")



def write_series(directory: Path, count: int = 2) -> list[Path]:
    study, series = generate_uid(), generate_uid()
    y, x = np.mgrid[0:64, 0:64]
    paths = []
    for index in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.PatientID, ds.Modality = study, series, "ACC", "CT"
        ds.Rows = ds.Columns = 64
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = ((x * 40 + y * 20 + index * 100) % 4096).astype(np.uint16).tobytes()
        path = directory / f"{index}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    if not DICOMWEB_PLUGIN.exists() or not Path(ORTHANC).exists() or not shutil.which("dcmcjpls"):
        pytest.skip("needs Orthanc, its DICOMweb plugin and dcmtk's dcmcjpls")
    tmp = tmp_path_factory.mktemp("orthanc-accept")
    with plain_orthanc(tmp, Name="accept", Plugins=[str(DICOMWEB_PLUGIN)],
                       DicomWeb={"Enable": True, "Root": "/dicom-web/"}) as base:
        (tmp / "raw").mkdir()
        (tmp / "jls").mkdir()
        raw = write_series(tmp / "raw")
        jls_sources = write_series(tmp / "jls")
        jls = []
        for path in jls_sources:
            target = path.with_suffix(".jls.dcm")
            subprocess.run(["dcmcjpls", str(path), str(target)], check=True)
            jls.append(target)
        for path in raw + jls:
            requests.post(f"{base}/instances", data=path.read_bytes(), timeout=10).raise_for_status()
        yield {"dicomweb": f"{base}/dicom-web", "raw": raw, "jls": jls}


def parts(response: requests.Response) -> list[tuple[str, bytes]]:
    assert response.status_code == 200, response.text[:300]
    boundary = response.headers["content-type"].split("boundary=")[1].split(";")[0].strip('"')
    found = []
    for chunk in response.content.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk.partition(b"\r\n\r\n")
        found.append((head.decode(), body[:-2]))
    return found


def series_url(orthanc, kind: str) -> str:
    ds = pydicom.dcmread(orthanc[kind][0], stop_before_pixels=True)
    return f"{orthanc['dicomweb']}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"


def syntaxes(response) -> list[str]:
    return [pydicom.dcmread(io.BytesIO(body)).file_meta.TransferSyntaxUID for _, body in parts(response)]


def test_stored_syntax_header_sends_stored_bytes_untouched(orthanc):
    accept = orthanc_accept_header(JPEG_LS_LOSSLESS, JPEG_LS_LOSSLESS)
    response = requests.get(series_url(orthanc, "jls"), headers={"Accept": accept}, timeout=10)
    stored = sorted(path.read_bytes() for path in orthanc["jls"])
    assert sorted(body for _, body in parts(response)) == stored


@pytest.mark.parametrize("kind, stored", [("jls", JPEG_LS_LOSSLESS), ("raw", EXPLICIT_VR_LE)])
def test_every_transcodable_target_is_produced(orthanc, kind, stored):
    for target in sorted(ORTHANC_LOSSLESS_TRANSCODABLE):
        accept = orthanc_accept_header(target, stored)
        response = requests.get(series_url(orthanc, kind), headers={"Accept": accept}, timeout=30)
        assert set(syntaxes(response)) == {target}, (kind, target)


def test_frames_stored_and_transcoded(orthanc):
    ds = pydicom.dcmread(orthanc["jls"][0])
    url = f"{series_url(orthanc, 'jls')}/instances/{ds.SOPInstanceUID}/frames/1"
    stored_frame = next(generate_frames(ds.PixelData))
    accept = orthanc_accept_header(JPEG_LS_LOSSLESS, JPEG_LS_LOSSLESS, frames=True)
    [(head, body)] = parts(requests.get(url, headers={"Accept": accept}, timeout=10))
    assert body.rstrip(b"\0") == stored_frame.rstrip(b"\0") and JPEG_LS_LOSSLESS in head
    for target in (JPEG_LOSSLESS_SV1, EXPLICIT_VR_LE):
        accept = orthanc_accept_header(target, JPEG_LS_LOSSLESS, frames=True)
        [(head, body)] = parts(requests.get(url, headers={"Accept": accept}, timeout=10))
        assert target in head
    assert len(body) == 64 * 64 * 2  # Explicit VR LE frame: raw 16-bit pixels


def test_why_the_callers_accept_is_never_forwarded(orthanc):
    url = series_url(orthanc, "jls")
    # No Accept, or one without transfer-syntax: DICOMweb 1.7 transcodes to Explicit VR LE.
    assert set(syntaxes(requests.get(url, timeout=10))) == {EXPLICIT_VR_LE}
    # Several items: q is ignored and the LAST item wins, even when the stored syntax is offered first.
    listed = ",".join(f'multipart/related; type="application/dicom";transfer-syntax={ts};q={q}'
                      for ts, q in ((JPEG_LS_LOSSLESS, "1"), (EXPLICIT_VR_LE, "0.1")))
    assert set(syntaxes(requests.get(url, headers={"Accept": listed}, timeout=10))) == {EXPLICIT_VR_LE}
    # An item without a media type is refused.
    bare = requests.get(url, headers={"Accept": f"transfer-syntax={JPEG_LS_LOSSLESS};q=1"}, timeout=10)
    assert bare.status_code == 400
