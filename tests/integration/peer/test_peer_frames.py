"""Frames asked the national client simulator's way (docs/conformance.md, frames): ``/frames/1`` with the
instances' ``multipart/related; type="application/dicom"`` Accept list. Answered 200 with the frame in an
accepted transfer syntax as ``multipart/related; type="application/octet-stream"``, on an uncompressed and a
JPEG-LS study; the frame is decoded and compared with what was stored."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from peer_helpers import EXPLICIT_LE, NATIONAL_ACCEPT, multipart_parts, start_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["uncompressed", "jpeg-ls"])
def frames_world(request, tmp_path_factory, pki):
    jpegls = request.param == "jpeg-ls"
    world = start_world(tmp_path_factory.mktemp(f"peer-frames-{request.param}"), pki, series=(("CT", 2),),
                        jpegls=jpegls)
    yield world
    world.stop()


def _stored(world, sop_uid: str) -> pydicom.Dataset:
    for path in world.study_dir.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        if ds.SOPInstanceUID == sop_uid:
            return ds
    raise AssertionError(f"{sop_uid} not among the stored files")


def test_national_accept_on_frames_is_an_uncompressed_octet_stream_frame(frames_world):
    w = frames_world
    instance = w.study.series[0].instances[1]
    response = w.session().get(w.wado + w.instance_path(0, 1) + "/frames/1", headers=w.headers(accept=NATIONAL_ACCEPT),
                               timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith('multipart/related; type="application/octet-stream')
    assert response.headers["X-Transfer-Syntax"] == EXPLICIT_LE  # accepted by the list (q 0.2)
    (headers, body), = multipart_parts(response)
    assert headers["Content-Type"].startswith("application/octet-stream")
    stored = _stored(w, instance.sop_instance_uid)
    expected = stored.pixel_array  # decodes the stored JPEG-LS (pyjpegls) or reads the raw pixels
    received = np.frombuffer(body, dtype=expected.dtype).reshape(expected.shape)
    assert np.array_equal(received, expected)


def test_frames_are_audited_as_frames(frames_world):
    w = frames_world
    w.session().get(w.wado + w.instance_path(0, 0) + "/frames/1", headers=w.headers(accept=NATIONAL_ACCEPT),
                    timeout=60).raise_for_status()
    rows = w.operator.get(f"/drimbox/audit?study_uid={w.study.study_uid}&outcome=allowed&limit=20").json()
    assert any(r["action"] == "retrieve-frames" and r["instance_uid"] == w.study.series[0].instances[0].sop_instance_uid
               for r in rows), rows[:3]
