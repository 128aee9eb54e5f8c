"""What the live campaign's tests share: the entries of the running box and the refusal check."""

from __future__ import annotations

from peer_helpers import PeerWorld
from sec_http import RawResponse, exchange

REDIRECTS = (301, 302, 303, 307, 308)
OTHER_PATIENT_ID = "IPP-OTHER-7731"
OTHER_PATIENT_NAME = "AUTRE^Patiente"


def ports(world: PeerWorld) -> dict[str, int]:
    return {"db": world.box.ports.db, "vi": world.box.ports.vi, "admin": world.box.ports.admin}


def send(world: PeerWorld, entry: str, data: bytes, **options) -> RawResponse:
    return exchange(ports(world)[entry], world.box.ca_bundle, data, **options)


def assert_refused(answer: RawResponse, markers: list[bytes], entry: str, what: str, *,
                   static_ok: bool = False, allowed: tuple[int, ...] = ()) -> None:
    """A 4xx without Orthanc data. On the vi entry, ``static_ok``: the viewer's static files may answer 200
    (OHIF's index.html for any unknown path), never with Orthanc data. ``allowed``: other refusals the HTTP
    specification names for this case."""
    leaked = [m for m in markers if m in answer.raw]
    assert not leaked, f"{entry} {what}: Orthanc data in the answer ({leaked[:3]}): {answer.raw[:300]!r}"
    assert answer.statuses, f"{entry} {what}: no HTTP answer"
    for status in answer.statuses:
        if status in allowed:
            continue
        assert status < 500, f"{entry} {what}: {status}: {answer.raw[:300]!r}"
        if static_ok and entry == "vi" and (status == 200 or status in REDIRECTS):
            continue  # the viewer's files, nginx's slash redirect, the login redirect: no Orthanc data (above)
        assert 400 <= status < 500, f"{entry} {what}: {status}: {answer.raw[:300]!r}"


def healthy(world: PeerWorld) -> bool:
    session = world.session()
    return session.get(world.wado, timeout=20).status_code == 200
