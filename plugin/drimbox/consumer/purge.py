"""The background purge: foreign studies past their cache expiry leave the local Orthanc; expired contexts go.

Only studies the consumer cache holds in state ``cached`` are candidates: an imported study (state
``imported``) and the box's own studies (never in the cache) are never touched. The record stays, marked
``purged``, so the study is still known as foreign (never published) if it comes back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from drimbox.pacs.rest import OrthancRest, OrthancRestError
from drimbox.store.consumer import ConsumerStore, RetrievalStore

log = logging.getLogger("drimbox.consumer")


class CachePurger:
    def __init__(self, retrievals: RetrievalStore, contexts: ConsumerStore, rest: OrthancRest,
                 clock: Callable[[], float]):
        self.retrievals = retrievals
        self.contexts = contexts
        self.rest = rest
        self.clock = clock

    def run_once(self) -> list[str]:
        """Purge what has expired now; returns the study UIDs removed from Orthanc."""
        now = self.clock()
        purged = []
        for study_uid in self.retrievals.expired(now):
            if not self.retrievals.claim_purge(study_uid, now):
                continue
            try:
                self._delete(study_uid)
            except (OrthancRestError, OSError) as error:
                log.warning("cannot purge the cached study %s, will try again: %s", study_uid, error)
                self.retrievals.end_purge(study_uid, deleted=False)
                continue
            self.retrievals.end_purge(study_uid, deleted=True)
            purged.append(study_uid)
        if purged:
            log.info("purged %d expired foreign stud(ies) from the cache", len(purged))
        self.contexts.purge_contexts(now)
        return purged

    def _delete(self, study_uid: str) -> None:
        for match in self.rest.post_json("/tools/lookup", study_uid):
            if match.get("Type") == "Study":
                self.rest.delete(f"/studies/{match['ID']}")

    def run_forever(self, stopping: threading.Event, interval_seconds: float) -> None:
        while not stopping.wait(interval_seconds):
            try:
                self.run_once()
            except Exception:
                log.exception("the consumer cache purge failed; next attempt in %.0f s", interval_seconds)
