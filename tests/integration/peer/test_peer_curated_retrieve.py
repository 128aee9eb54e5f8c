"""A series where Orthanc still holds an IOCM-rejected instance is served without it (the curated retrieve),
and a peer that reads that answer slowly holds up nobody else.

Orthanc holds Python's GIL while a plugin writes an answer part; without nginx's buffering hop in front of the
curated retrieve, a peer that stops reading would freeze every Python callback of the box (access decisions,
the operator API, the pipeline) once the socket buffers are full.
"""

from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlsplit

import pytest

from drimbox.samples.studies import make_rejection_note
from drimbox.testing import ANY_SYNTAX, store_scu
from peer_helpers import RawAnswer, dicom_parts, start_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(tmp_path_factory, pki):
    # 48 images of 512x512x16 bits, uncompressed: 24 MB, more than the socket and proxy buffers together
    world = start_world(tmp_path_factory.mktemp("peer-curated"), pki, series=(("CT", 48),), jpegls=False,
                        rows=512, cols=512)
    yield world
    world.stop()


def test_slow_peer_on_a_curated_series_blocks_nobody(world):
    w = world
    rejected = w.study.series[0].instances[0].sop_instance_uid
    make_rejection_note(w.tmp / "note", w.study, [rejected])
    store_scu(w.box, w.tmp / "note")
    status = w.operator.wait_study(w.study.study_uid,
                                   lambda s: s.get("kos") and s["kos"]["kos_uid"] != w.kos_uid,
                                   timeout=90, what="the manifest without the rejected instance")
    kos = status["kos"]["kos_uid"]
    headers = w.headers(kos=kos, accept=ANY_SYNTAX)

    # A peer asks for the series and then stops reading (a modest receive window, fixed before connecting).
    url = urlsplit(w.wado + w.series_path(0))
    context = w.tls_context()
    slow = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=120)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    raw.settimeout(120)
    raw.connect((url.hostname, url.port))
    slow.sock = context.wrap_socket(raw, server_hostname=url.hostname)
    slow.request("GET", url.path, headers=headers)
    answer = slow.getresponse()
    assert answer.status == 200
    time.sleep(3)  # every buffer between the curated retrieve and this peer fills up

    # Meanwhile the box's Python answers as usual: an access decision and the operator API.
    started = time.monotonic()
    other = w.session().get(w.wado + w.instance_path(0, 1), headers=headers, timeout=20)
    assert other.status_code == 200, other.text
    assert w.operator.get("/drimbox/status").status_code == 200
    assert time.monotonic() - started < 10

    body = answer.read()
    parts = dicom_parts(RawAnswer(200, answer.getheaders(), body).as_response())
    sent = [ds.SOPInstanceUID for ds in parts]
    assert sorted(sent) == sorted(i.sop_instance_uid for i in w.study.series[0].instances[1:])
    assert all(ds.Rows == 512 for ds in parts)
    slow.close()
