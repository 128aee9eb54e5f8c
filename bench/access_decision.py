"""p50/p95 of the peer access decision with a cached token (target: p95 < 2 ms).

Run: .venv/bin/python bench/access_decision.py [--iterations N]
The facts are in-memory dictionaries, standing for the adapter's caches on the hot path.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from drimbox.trust.policy import PeerRequest, PublishedManifest, TokenInfo, decide_peer_request

STUDY, SERIES, KOS = "1.2.250.1.999.1", "1.2.250.1.999.1.1", "1.2.250.1.999.9"
JPEG_LS = "1.2.840.10008.1.2.4.80"
# The national validator's ten-item Accept with a trailing comma.
ACCEPT = "".join(
    f'multipart/related; type="application/dicom";transfer-syntax={ts};q={q};boundary=**,'
    for ts, q in [
        ("1.2.840.10008.1.2.4.70", "1"), (JPEG_LS, "0.9"), ("1.2.840.10008.1.2.4.90", "0.8"),
        ("1.2.840.10008.1.2.4.91", "0.7"), ("1.2.840.10008.1.2.4.50", "0.6"), ("1.2.840.10008.1.2.4.51", "0.5"),
        ("1.2.840.10008.1.2.4.57", "0.4"), ("1.2.840.10008.1.2.4.81", "0.3"), ("1.2.840.10008.1.2.1", "0.2"),
        ("1.2.840.10008.1.2", "0.1"),
    ]
)


ISSUER = "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet"


class CachedFacts:
    client_certificate_required = True
    token_issuer = ISSUER
    accepted_token_clients = frozenset({"drimbox-peer"})

    def __init__(self) -> None:
        now = time.time()
        self._tokens = {"tok": TokenInfo(active=True, id_nat="810001234567", exp=now + 3600, structure_id="1",
                                         client_id="drimbox-peer", issuer=ISSUER)}
        instances = {f"{SERIES}.{i}": "1.2.840.10008.5.1.4.1.1.2" for i in range(1300)}
        self._manifests = {KOS: PublishedManifest(KOS, STUDY, {SERIES: instances})}
        self._dns = {"CN=db.peer.example,O=Peer,C=FR"}

    def introspect(self, token):
        return self._tokens.get(token)

    def manifest(self, kos_uid):
        return self._manifests.get(kos_uid)

    def stored_transfer_syntax(self, study, series, instance):
        return JPEG_LS

    def is_whitelisted_operator_dn(self, dn):
        return dn in self._dns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20000)
    args = parser.parse_args()
    facts = CachedFacts()
    requests = [
        PeerRequest("GET", f"studies/{STUDY}/series/{SERIES}",
                    {"authorization": "Bearer tok", "kos-sopinstanceuid": KOS, "accept": ACCEPT},
                    client_dn="CN=db.peer.example,O=Peer,C=FR", client_verify="SUCCESS"),
        PeerRequest("GET", f"studies/{STUDY}/series/{SERIES}/instances/{SERIES}.7",
                    {"authorization": "Bearer tok", "kos-sopinstanceuid": KOS, "accept": ACCEPT},
                    client_dn="CN=db.peer.example,O=Peer,C=FR", client_verify="SUCCESS"),
    ]
    for req in requests:
        assert decide_peer_request(req, facts).allow
    samples = []
    for i in range(args.iterations):
        req = requests[i % len(requests)]
        start = time.perf_counter_ns()
        decide_peer_request(req, facts)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()
    p50 = statistics.median(samples)
    p95 = samples[int(len(samples) * 0.95)]
    p99 = samples[int(len(samples) * 0.99)]
    verdict = "OK" if p95 < 2.0 else "TOO SLOW"
    print(f"decide_peer_request, {args.iterations} runs, cached token, validator Accept: "
          f"p50 {p50:.3f} ms  p95 {p95:.3f} ms  p99 {p99:.3f} ms  max {samples[-1]:.3f} ms  [{verdict}: p95 < 2 ms]")
    return 0 if p95 < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
