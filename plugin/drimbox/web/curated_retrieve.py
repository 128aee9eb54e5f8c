"""The curated retrieve: a study or series as a KOS lists it, when Orthanc holds more there.

Orthanc's DICOMweb sends every instance it holds in a study or series; after images were added to a published
study, or an IOCM rejection note rejected some, that is more than a peer's KOS lists. The access decision
(drimbox.trust.policy) then sends the request here instead (``/drimbox/peer-retrieve/{KOS}/{WADO-RS path}``,
reachable only with the grant the decision issued for exactly that path, see drimbox.trust.gate). This route
asks Orthanc's DICOMweb for each listed instance, with the Accept the decision chose, and relays the parts in the
KOS's order. The viewer uses it too, for a series or study where Orthanc keeps IOCM-rejected instances
(drimbox.web.viewer_api). It is the one path where image bytes go through Python, and only in those cases. nginx
relays this answer through a buffering hop (launcher/templates/nginx.conf.j2): Orthanc holds the GIL while it
writes a part, so a slow client must never be at the other end of that write.
"""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

from drimbox.pacs.rest import OrthancRest
from drimbox.trust.policy import CURATED_PREFIX, covered_instances, parse_resource
from drimbox.web.http import Request, Response, Router

log = logging.getLogger("drimbox.peer")

PREFETCH = 8  # parts fetched ahead of the one being relayed
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def split_multipart(body: bytes, content_type: str) -> list[bytes]:
    """The bodies of the parts of a multipart answer (headers dropped)."""
    match = _BOUNDARY.search(content_type)
    if not match:
        raise ValueError(f"no boundary in {content_type!r}")
    delimiter = b"--" + match.group(1).encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        _, separator, content = chunk.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("a part has no header block")
        parts.append(content[:-2] if content.endswith(b"\r\n") else content)
    return parts


class CuratedRetrieve:
    def __init__(self, rest: OrthancRest, facts, *, threads: int = 4):
        self.rest = rest
        self.facts = facts  # drimbox.trust.peer_facts.BoxPeerFacts
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="drimbox-curated")

    def register(self, router: Router) -> None:
        router.add("GET", CURATED_PREFIX + "{kos}/(?P<path>.+)", self.retrieve)

    def retrieve(self, request: Request) -> Response:
        try:
            resource = parse_resource(request.params["path"])
        except Exception:
            return Response.error(404, "not a WADO-RS retrieve resource of this box")
        if resource.instance:
            return Response.error(404, "instances and frames are served by Orthanc's DICOMweb")
        manifest = self.facts.manifest(request.params["kos"])
        if manifest is None or manifest.withdrawn or manifest.study_uid != resource.study:
            return Response.error(404, "KOS unknown, withdrawn or for another study")
        stored = set(self.facts.stored_instance_uids(resource.study, resource.series or None))
        plan = [pair for pair in covered_instances(manifest, resource) if pair[1] in stored]
        if not plan and resource.metadata:  # e.g. a series the viewer sees whose instances were all rejected
            return Response(200, b"[]", "application/dicom+json")
        if not plan:
            return Response.error(404, "Orthanc holds nothing of this resource that the KOS still covers")
        accept = request.headers.get("accept", "") or "*/*"
        if resource.metadata:
            return self._metadata(resource.study, plan)
        return self._instances(resource.study, plan, accept)

    def _metadata(self, study: str, plan: list[tuple[str, str]]) -> Response:
        paths = [f"/dicom-web/studies/{study}/series/{series}/instances/{instance}/metadata"
                 for series, instance in plan]
        items = []
        for answer in self._pool.map(self.rest.get_json, paths):
            items.extend(answer)
        return Response(200, json.dumps(items).encode(), "application/dicom+json")

    def _instances(self, study: str, plan: list[tuple[str, str]], accept: str) -> Response:
        def fetch(pair: tuple[str, str]) -> bytes:
            series, instance = pair
            path = f"/dicom-web/studies/{study}/series/{series}/instances/{instance}"
            answer = self.rest.session.get(self.rest.base_url + path, headers={"Accept": accept},
                                           timeout=self.rest.timeout)
            if answer.status_code != 200:
                raise RuntimeError(f"Orthanc answered {answer.status_code} to {path}")
            parts = split_multipart(answer.content, answer.headers.get("Content-Type", ""))
            if len(parts) != 1:
                raise RuntimeError(f"Orthanc sent {len(parts)} parts for {path}")
            return parts[0]

        pending = deque(self._pool.submit(fetch, pair) for pair in plan[:PREFETCH])
        try:
            first = pending[0].result()  # a failure here still becomes an error answer, not a truncated one
        except Exception as error:
            log.error("curated retrieve of study %s: %s", study, error)
            for future in pending:
                future.cancel()
            return Response.error(503, "the images could not be read from the PACS; try again")

        def parts() -> Iterator[bytes]:
            upcoming = iter(plan[PREFETCH:])
            yield first
            pending.popleft()
            while pending:
                following = next(upcoming, None)
                if following is not None:
                    pending.append(self._pool.submit(fetch, following))
                yield pending.popleft().result()

        return Response(200, b"", "application/dicom", parts=parts())
