"""Whether a viewer session the consumer opened still stands.

``drimbox.web.viewer_api`` checks, on every DICOMweb request of a viewer session, that its manifest still
stands. For a study this box published that is its own manifest (not withdrawn); a consumer's session names a KOS
published by another box, or no KOS at all for the local PACS's own studies of the context's patient, and is
asked here instead.
"""

from __future__ import annotations

from drimbox.store.consumer import RetrievalStore

STANDING = ("cached", "imported")


def consumer_session_stands(retrievals: RetrievalStore, study_uid: str, kos_uid: str) -> bool:
    cached = retrievals.cached(study_uid)
    if not kos_uid:
        # a local study: never a foreign one still in the cache (an imported study has become local)
        return cached is None or cached["state"] == "imported"
    return cached is not None and cached["kos_uid"] == kos_uid and cached["state"] in STANDING
