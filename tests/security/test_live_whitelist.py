"""Issue 7, second finding, against a running box: a whitelist that is really signed, then tampered where the
enveloped signature does not look (text inside a ``ds:Signature`` element anywhere in the list, comments and
processing instructions inside the signature), is refused; the list in force stays, and so do its decisions
(a peer whose DN only the tampered text names still gets 403). A genuine newer list is then taken at once."""

from __future__ import annotations

import datetime as dt
import functools
import re
import time

import pytest
from peer_helpers import PeerWorld, start_world

from drimbox.crypto import dsig
from drimbox.samples.whitelist import make_demo_whitelist
from drimbox.testing import wait_for

pytestmark = pytest.mark.integration

REFRESH_HOURS = 0.0005  # the box reads its whitelist source again every 1.8 s
SIGNATURE = f'<ds:Signature xmlns:ds="{dsig.DS}">'.encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory, pki):
    # box-b is listed, but with another operator's DN: its certificate is refused
    w = start_world(tmp_path_factory.mktemp("live-whitelist"), pki, series=(("CT", 1),), jpegls=False,
                    listed_operators=("box-a",), whitelist_refresh_hours=REFRESH_HOURS)
    yield w
    w.stop()


def whitelist_status(world: PeerWorld) -> dict:
    return world.operator.get("/drimbox/status").json()["whitelist"]


def peer_b_status(world: PeerWorld) -> int:
    return world.session(cert="box-b").get(world.wado + world.series_path(), headers=world.headers(),
                                           timeout=60).status_code


def domains(world: PeerWorld, *, b_listed: bool = False) -> dict:
    out = {
        "box-a": {"db": f"localhost:{world.box.ports.db}", "vi": f"localhost:{world.box.ports.vi}"},
        "box-b": {"db": "box-b.example:443", "vi": "box-b-vi.example:443"},
        # a domain signed with an empty operator DN (no certificate of the test PKI is named "spare")
        "spare": {"db": "spare.example:443", "vi": "spare-vi.example:443"},
    }
    if not b_listed:
        out["box-b"]["operator_dn"] = "CN=AUTH_CLI elsewhere-box-b,O=ELSEWHERE,C=FR"
    return out


def fill_spare_dn(xml: bytes, content: bytes) -> bytes:
    pattern = re.compile(rb"<DNCertificatOperateur(/>|></DNCertificatOperateur>)")
    matches = list(pattern.finditer(xml))
    assert len(matches) == 1, "the spare domain's empty DN field"
    match = matches[0]
    return xml[:match.start()] + b"<DNCertificatOperateur>" + content + b"</DNCertificatOperateur>" + xml[match.end():]


def inside_signature(xml: bytes, content: bytes) -> bytes:
    """``content`` right after the enveloped signature's start tag (outside SignedInfo, subtracted from the
    data reference's digest)."""
    start = xml.index(b"<ds:Signature ")
    end = xml.index(b">", start) + 1
    return xml[:end] + content + xml[end:]


def tampered_lists(world: PeerWorld, genuine: bytes) -> dict[str, bytes]:
    dn_b = world.pki["boxes"]["box-b"]["auth"]["subject"].encode()
    return {
        "box-b's DN inside a ds:Signature in the spare domain's field":
            fill_spare_dn(genuine, SIGNATURE + dn_b + b"</ds:Signature>"),
        "a db host completed inside a ds:Signature": genuine.replace(
            b"<db>box-b.example:443</db>", b"<db>box-b.example:443" + SIGNATURE + b".evil.example</ds:Signature></db>"),
        "a whole domain inside a ds:Signature": genuine.replace(
            b"</ListeDomaines>", SIGNATURE + b"<Domaine><Identifiant>evil</Identifiant><db>evil.example</db>"
            b"<vi>evil.example</vi><Denomination>x</Denomination><DNCertificatOperateur>" + dn_b
            + b"</DNCertificatOperateur></Domaine></ds:Signature></ListeDomaines>"),
        "a comment inside the signature": inside_signature(genuine, b"<!--" + dn_b + b"-->"),
        "a processing instruction inside the signature": inside_signature(genuine, b"<?dn " + dn_b + b"?>"),
    }


def test_tampered_lists_are_refused_by_the_running_box(world):
    assert peer_b_status(world) == 403
    in_force = whitelist_status(world)
    assert in_force["in_force"] and in_force["last_result"] == "accepted", in_force
    source = world.tmp / "whitelist.xml"
    time.sleep(1.1)  # newer than the list in force (DateDeGeneration has whole seconds)
    genuine = make_demo_whitelist(world.pki, domains(world))
    for attack, xml in tampered_lists(world, genuine).items():
        assert xml != genuine, attack
        written = _iso(time.time())
        source.write_bytes(xml)
        wait_for(functools.partial(read_since, world, written, in_force["generated_at"]), timeout=30,
                 what=f"the box reading the list with {attack}")
        now = whitelist_status(world)
        assert now["generated_at"] == in_force["generated_at"], f"{attack}: accepted ({now})"
        assert now["last_result"] == "refused" and now["last_refusal_reason"], (attack, now)
        assert peer_b_status(world) == 403, attack
    # the genuine list, newer, listing box-b's real DN, is taken at the next refresh: the box did read the source
    time.sleep(1.1)
    source.write_bytes(make_demo_whitelist(world.pki, domains(world, b_listed=True)))
    wait_for(lambda: whitelist_status(world)["generated_at"] != in_force["generated_at"], timeout=30,
             what="the genuine list in force")
    assert whitelist_status(world)["last_result"] == "accepted"
    assert peer_b_status(world) == 200


def read_since(world: PeerWorld, since: str, generated_at: str) -> bool:
    """Whether the box judged its source after ``since``: refused it, or put another list in force."""
    status = whitelist_status(world)
    return (status.get("last_refusal_at") or "") > since or status["generated_at"] != generated_at


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat()
