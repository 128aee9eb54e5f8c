"""Peer WADO-RS (RAD-107) on the `db` host, end to end: nginx over TLS, the access decision in the plugin,
Orthanc's DICOMweb sending the bytes. Request shapes of docs/conformance.md."""

from __future__ import annotations

import itertools
import json

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from peer_helpers import (
    EXPLICIT_LE,
    JPEG_LOSSLESS_SV1,
    JPEG_LS,
    NATIONAL_ACCEPT,
    RADIOLOGIST,
    dicom_parts,
    multipart_parts,
    raw_get,
)

pytestmark = pytest.mark.integration

HSTS = "max-age=31536000; includeSubDomains"


def _hsts(response) -> None:
    value = response.headers.get("Strict-Transport-Security") if hasattr(response, "headers") else None
    assert value == HSTS, f"no HSTS on {getattr(response, 'status_code', '?')}: {value!r}"


def _syntaxes(response) -> list[str]:
    return [str(ds.file_meta.TransferSyntaxUID) for ds in dicom_parts(response)]


# --- health check -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/"])
def test_health_check_is_a_small_json_status(world, suffix):
    response = world.session().get(world.wado + suffix, timeout=30)
    assert response.status_code == 200
    _hsts(response)
    body = response.json()
    assert body["status"] == "ok", body
    assert body["checks"]["pacs"]["ok"] and body["checks"]["store"]["ok"]
    assert body["checks"]["whitelist"]["ok"] is True  # in force and recent; the details are the operator's
    text = response.text.lower()
    for secret in ("secret", "password", "token", world.box.operator_password.lower()):
        assert secret not in text


# --- retrieve levels ----------------------------------------------------------------------------------------


def test_series_retrieve_with_the_national_accept_sends_the_stored_jpeg_ls(world):
    response = world.session().get(world.wado + world.series_path(0), headers=world.headers(), timeout=60)
    assert response.status_code == 200, response.text
    _hsts(response)
    assert response.headers["Content-Type"].startswith('multipart/related; type="application/dicom"')
    assert response.headers["X-Transfer-Syntax"] == JPEG_LS
    datasets = dicom_parts(response)
    assert [str(ds.file_meta.TransferSyntaxUID) for ds in datasets] == [JPEG_LS] * 3
    expected = {i.sop_instance_uid for i in world.study.series[0].instances}
    assert {ds.SOPInstanceUID for ds in datasets} == expected
    for ds in datasets:
        assert ds.pixel_array.shape == (64, 64)  # decodable


def test_study_retrieve_sends_every_instance_of_the_kos(world):
    response = world.session().get(world.wado + f"/studies/{world.study.study_uid}", headers=world.headers(),
                                   timeout=60)
    assert response.status_code == 200, response.text
    _hsts(response)
    assert _syntaxes(response) == [JPEG_LS] * 5


def test_instance_retrieve(world):
    response = world.session().get(world.wado + world.instance_path(1, 1), headers=world.headers(), timeout=60)
    assert response.status_code == 200, response.text
    datasets = dicom_parts(response)
    assert len(datasets) == 1
    assert datasets[0].SOPInstanceUID == world.study.series[1].instances[1].sop_instance_uid
    assert str(datasets[0].file_meta.TransferSyntaxUID) == JPEG_LS


def test_frames_retrieve_in_the_stored_syntax(world):
    accept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    response = world.session().get(world.wado + world.instance_path(0, 0) + "/frames/1",
                                   headers=world.headers(accept=accept), timeout=60)
    assert response.status_code == 200, response.text
    _hsts(response)
    parts = multipart_parts(response)
    assert len(parts) == 1
    assert parts[0][1][:2] == b"\xff\xd8"  # a JPEG-LS codestream starts with SOI
    assert response.headers["X-Transfer-Syntax"] == JPEG_LS


def test_frames_as_uncompressed_bytes(world):
    accept = f'multipart/related; type="application/octet-stream"; transfer-syntax={EXPLICIT_LE}'
    response = world.session().get(world.wado + world.instance_path(0, 0) + "/frames/1",
                                   headers=world.headers(accept=accept), timeout=60)
    assert response.status_code == 200, response.text
    (headers, body), = multipart_parts(response)
    assert len(body) == 64 * 64 * 2


def test_series_metadata(world):
    response = world.session().get(world.wado + world.series_path(0) + "/metadata",
                                   headers=world.headers(accept="application/dicom+json"), timeout=60)
    assert response.status_code == 200, response.text
    _hsts(response)
    assert len(response.json()) == 3


# --- Accept shapes ------------------------------------------------------------------------------------------

ONE_ITEM = 'multipart/related; type="application/dicom";transfer-syntax={ts};q={q};boundary=**'


@pytest.mark.parametrize("accept, expected", [
    (NATIONAL_ACCEPT, JPEG_LS),  # ten items, trailing comma: the stored syntax is accepted (q 0.8)
    ('multipart/related; type="application/dicom"; transfer-syntax=*', JPEG_LS),
    ("*/*", JPEG_LS),
    (f"transfer-syntax={JPEG_LS};q=1.0", JPEG_LS),  # no media type
    (f"transfer-syntax={JPEG_LS};q=1", JPEG_LS),
    (f"transfer-syntax={JPEG_LS};q=0,transfer-syntax={EXPLICIT_LE};q=1.0", EXPLICIT_LE),
    (f"transfer-syntax={JPEG_LS};q=0.0, transfer-syntax={EXPLICIT_LE};q=1", EXPLICIT_LE),
    (ONE_ITEM.format(ts=EXPLICIT_LE, q="1.0"), EXPLICIT_LE),
    ('multipart/related; type="application/dicom"', EXPLICIT_LE),  # no syntax = Explicit VR LE (PS3.18)
    (ONE_ITEM.format(ts=JPEG_LOSSLESS_SV1, q="1") + "," + ONE_ITEM.format(ts=JPEG_LS, q="0"), JPEG_LOSSLESS_SV1),
], ids=["national-10", "ts-star", "any", "no-media-q1.0", "no-media-q1", "q0-q1.0", "q0.0-q1", "explicit",
        "no-syntax", "sv1-only"])
def test_accept_forms(world, accept, expected):
    response = world.session().get(world.wado + world.series_path(1), headers=world.headers(accept=accept),
                                   timeout=120)
    assert response.status_code == 200, response.text
    _hsts(response)
    assert response.headers["X-Transfer-Syntax"] == expected
    assert _syntaxes(response) == [expected] * 2


def test_no_accept_header_sends_the_stored_syntax(world):
    response = world.session().get(world.wado + world.series_path(1), headers=world.headers(accept=None),
                                   timeout=60)
    assert response.status_code == 200, response.text
    assert _syntaxes(response) == [JPEG_LS] * 2


def test_one_accept_header_per_transfer_syntax(world):
    """Validators repeat Accept; all the lines count (Orthanc alone would see only the first)."""
    token = world.token()
    lines = [("Authorization", f"Bearer {token}"), ("KOS-SOPInstanceUID", world.kos_uid)]
    lines += [("Accept", ONE_ITEM.format(ts=ts, q=q)) for ts, q in
              ((JPEG_LOSSLESS_SV1, "1"), ("1.2.840.10008.1.2.4.57", "0.9"), (JPEG_LS, "0.8"), (EXPLICIT_LE, "0.2"))]
    answer = raw_get(world, world.series_path(0), lines)
    assert answer.status == 200, answer.body[:300]
    assert answer.header("X-Transfer-Syntax") == JPEG_LS
    assert _syntaxes(answer.as_response()) == [JPEG_LS] * 3
    # The stored syntax only in the last repeated header, refused in the first: still found.
    lines = [("Accept", ONE_ITEM.format(ts=EXPLICIT_LE, q="0.5")), ("Accept", f"transfer-syntax={JPEG_LS};q=1.0"),
             ("Authorization", f"Bearer {token}"), ("KOS-SOPInstanceUID", world.kos_uid)]
    answer = raw_get(world, world.series_path(0), lines)
    assert answer.status == 200
    assert answer.header("X-Transfer-Syntax") == JPEG_LS


def test_the_three_headers_in_any_order(world):
    token = world.token()
    lines = [("Authorization", f"Bearer {token}"), ("KOS-SOPInstanceUID", world.kos_uid), ("Accept", NATIONAL_ACCEPT)]
    for order in itertools.permutations(lines):
        answer = raw_get(world, world.series_path(1), list(order))
        assert answer.status == 200, (order, answer.body[:300])
        assert answer.header("Strict-Transport-Security") == HSTS
        assert len(multipart_parts(answer.as_response())) == 2
    lower = [(name.lower(), value) for name, value in lines]
    assert raw_get(world, world.series_path(1), lower).status == 200


# --- dicomweb-client ----------------------------------------------------------------------------------------


def _client(world, token: str | None = None) -> DICOMwebClient:
    session = world.session()
    session.headers.update({"Authorization": f"Bearer {token or world.token()}",
                            "KOS-SOPInstanceUID": world.kos_uid})
    return DICOMwebClient(url=world.wado, session=session)


def test_dicomweb_client_retrieves_series_and_instances(world):
    client = _client(world)
    series = world.study.series[0]
    datasets = client.retrieve_series(world.study.study_uid, series.series_uid,
                                      media_types=(("application/dicom", JPEG_LS),))
    assert sorted(ds.SOPInstanceUID for ds in datasets) == sorted(i.sop_instance_uid for i in series.instances)
    assert all(str(ds.file_meta.TransferSyntaxUID) == JPEG_LS for ds in datasets)
    instance = client.retrieve_instance(world.study.study_uid, series.series_uid,
                                        series.instances[2].sop_instance_uid, media_types=(("application/dicom", "*"),))
    assert instance.SOPInstanceUID == series.instances[2].sop_instance_uid
    # Default media type (application/dicom without syntax): Explicit VR LE, transcoded by Orthanc.
    datasets = client.retrieve_series(world.study.study_uid, world.study.series[1].series_uid)
    assert [str(ds.file_meta.TransferSyntaxUID) for ds in datasets] == [EXPLICIT_LE] * 2
    metadata = client.retrieve_series_metadata(world.study.study_uid, series.series_uid)
    assert len(metadata) == 3


def test_dicomweb_client_is_refused_without_a_valid_token(world):
    client = _client(world, token="not-a-psc-token")
    with pytest.raises(requests.HTTPError) as error:
        client.retrieve_series(world.study.study_uid, world.study.series[0].series_uid)
    assert error.value.response.status_code == 401


# --- audit --------------------------------------------------------------------------------------------------


def test_every_attempt_is_in_the_audit_trail(world):
    session = world.session()
    session.get(world.wado + world.series_path(0), headers=world.headers(), timeout=60).raise_for_status()
    denied = session.get(world.wado + world.series_path(0), headers=world.headers(token="bogus"), timeout=60)
    assert denied.status_code == 401
    rows = world.operator.get(f"/drimbox/audit?study_uid={world.study.study_uid}&limit=50").json()
    assert any(r["outcome_status"] == 200 and r["action"] == "retrieve-series" and r["professional_id"] == RADIOLOGIST
               and r["kos_uid"] == world.kos_uid and r["series_uid"] == world.study.series[0].series_uid
               and r["entry_point"] == "wado-rs" for r in rows), rows[:3]
    assert any(r["outcome_status"] == 401 for r in rows)
    assert all(r.get("request_id") for r in rows if r["entry_point"] == "wado-rs")


def test_pixel_data_is_identical_to_what_was_stored(world):
    series = world.study.series[0]
    response = world.session().get(world.wado + world.series_path(0), headers=world.headers(), timeout=60)
    received = {ds.SOPInstanceUID: ds for ds in dicom_parts(response)}
    for path in sorted(world.study_dir.rglob("*.dcm")):
        original = pydicom.dcmread(path)
        if original.SOPInstanceUID in received and original.SeriesInstanceUID == series.series_uid:
            assert received[original.SOPInstanceUID].PixelData == original.PixelData
    assert json.dumps(len(received)) == "3"
