"""The facts the peer access decision needs (:class:`drimbox.trust.policy.PeerFacts`), from the box's parts.

Budget: the decision must stay under 2 ms p95 with a cached token. So every fact is cached where it can be
and a cache hit costs at most one indexed SQLite read:

- token: the PSC client's introspection cache (``DRIMbox.Psc.IntrospectionCacheSeconds``);
- manifest: one indexed read of the study's manifest list (kos_uid, version, status) per request; the parsed
  content of a manifest is immutable and cached by KOS UID, and what depends on the study's manifest list
  (validity, rejected instances) is recomputed only when that list changes;
- stored transfer syntax: one Orthanc call per series (and per instance for instance/frame requests),
  cached (``syntax_ttl``);
- what Orthanc stores in a study or series (``stored_instance_uids``): one or a few Orthanc calls, cached
  for ``stored_ttl`` seconds (2 s): an instance stored into an already published series is refused at
  series level at most that long after it arrived;
- operator DNs: the whitelist keeper, memoised per list in force.

Manifest validity (a decision of this module, see ``manifest``):
- a KOS this box never built: unknown (404);
- ``current``: valid;
- ``superseded``: still valid for the instances it covers, because peers may hold it (the DMP entry is
  replaced asynchronously) and its images did not become wrong - unless a later manifest of the same study
  was withdrawn (report withdrawn, order cancelled, every instance rejected): then every earlier manifest of
  the study is withdrawn too;
- ``withdrawn``: withdrawn (404);
- instances rejected by an IOCM rejection note (the store's instance facts) are listed as rejected: an
  instance request answers 410 and a series or study request that would include them is refused (404) while
  Orthanc still holds them.

Orthanc lookups do not list whole series (1,300 instances of JSON): Orthanc's identifiers are SHA-1 hashes of
``PatientID|StudyUID|SeriesUID|SOPUID``, so the identifiers of the instances a manifest covers are computed
once, and ``GET /series/{id}`` (which lists identifiers only) tells what Orthanc holds.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from drimbox.pacs.rest import OrthancRest, OrthancRestError
from drimbox.store import Store
from drimbox.store.records import ManifestStatus
from drimbox.trust.policy import PublishedManifest, TokenInfo
from drimbox.util.ttl_cache import TtlCache

log = logging.getLogger("drimbox.peer")

UNKNOWN_PREFIX = "orthanc:"  # stands for a stored instance no manifest of the study covers
_MAX_ENTRIES = 100_000  # per cache: series and studies peers may ask about


def orthanc_id(*uids: str) -> str:
    """Orthanc's identifier of a patient/study/series/instance from PatientID and the UIDs (DicomInstanceHasher)."""
    digest = hashlib.sha1("|".join(uids).encode()).hexdigest()
    return "-".join(digest[i:i + 8] for i in range(0, 40, 8))


@dataclass(frozen=True)
class _StudyState:
    signature: tuple  # ((kos_uid, version, status), ...) ordered by version
    manifests: dict  # kos_uid -> PublishedManifest (valid or not)


class BoxPeerFacts:
    """:class:`drimbox.trust.policy.PeerFacts` over the store, PSC, the whitelist and Orthanc. Thread-safe."""

    def __init__(
        self,
        store: Store,
        psc,
        whitelist,
        rest: OrthancRest,
        *,
        client_certificate_required: bool = True,
        accepted_token_clients: Iterable[str] = (),
        token_issuer: str = "",
        stored_ttl: float = 2.0,
        syntax_ttl: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.psc = psc
        self.whitelist = whitelist
        self.rest = rest
        self.client_certificate_required = client_certificate_required
        self.accepted_token_clients = frozenset(accepted_token_clients)
        self.token_issuer = token_issuer
        self.clock = clock
        self._lock = threading.Lock()
        self._study_of_kos: dict[str, str] = {}
        self._content: dict[str, dict[str, dict[str, str]]] = {}  # kos_uid -> parsed content (immutable)
        self._studies: dict[str, _StudyState] = {}
        limit = _MAX_ENTRIES
        # (study UID, series UID or "") -> SOP instance UIDs Orthanc holds there
        self._stored: TtlCache[tuple[str, str], frozenset[str]] = TtlCache(stored_ttl, clock=clock, max_entries=limit)
        # (study UID, series UID) -> stored transfer syntax
        self._syntax: TtlCache[tuple[str, str], str] = TtlCache(syntax_ttl, clock=clock, max_entries=limit)
        # study UID -> (PatientID, ...) as Orthanc holds it
        self._patient_ids: TtlCache[str, tuple[str, ...]] = TtlCache(syntax_ttl, clock=clock, max_entries=limit)
        self._id_maps: dict[tuple[str, str], dict[str, str]] = {}  # (study, PatientID) -> {orthanc id: SOP UID}
        self._operator_dns: dict[str, bool] = {}  # DN -> operator of _operator_dns_list?
        self._operator_dns_list: object = None  # the list in force those answers are about
        self.last_psc_ok: float | None = None  # wall clock of the last introspection PSC answered
        self.last_psc_error: tuple[float, str] | None = None

    # --- token ----------------------------------------------------------------------------------
    def introspect(self, token: str) -> TokenInfo | None:
        try:
            answer = self.psc.introspect(token)
        except Exception as error:
            self.last_psc_error = (time.time(), f"{type(error).__name__}: {error}")
            raise
        self.last_psc_ok = time.time()
        return TokenInfo.from_introspection(answer)

    # --- caller certificate ---------------------------------------------------------------------
    def is_whitelisted_operator_dn(self, dn: str) -> bool:
        keeper = self.whitelist
        if keeper is None or not dn:
            return False
        current = keeper.current
        if current is None:
            return False
        with self._lock:
            # Holding the list (not its id(), which a later list may reuse) makes a replaced list count at once.
            if self._operator_dns_list is not current or len(self._operator_dns) > 10_000:
                self._operator_dns = {}
                self._operator_dns_list = current
            answers = self._operator_dns
        known = answers.get(dn)
        if known is None:
            known = bool(keeper.is_trusted_operator_dn(dn))
            answers[dn] = known
        return known

    # --- manifests ------------------------------------------------------------------------------
    def manifest(self, kos_uid: str) -> PublishedManifest | None:
        study_uid = self._study_of_kos.get(kos_uid)
        if study_uid is None:
            study_uid = self.store.study_of_manifest(kos_uid)
            if study_uid is None:
                return None
            self._study_of_kos[kos_uid] = study_uid
        signature = tuple(self.store.manifest_versions(study_uid))
        state = self._studies.get(study_uid)
        if state is None or state.signature != signature:
            state = self._study_state(study_uid, signature)
            self._studies[study_uid] = state
        return state.manifests.get(kos_uid)

    def _study_state(self, study_uid: str, signature: tuple) -> _StudyState:
        rejected = self._rejected_instances(study_uid)
        rejected_in_study = frozenset(rejected)
        manifests: dict[str, PublishedManifest] = {}
        withdrawn_later = False
        for kos_uid, _version, status in reversed(signature):  # newest first
            if status == ManifestStatus.WITHDRAWN:
                withdrawn_later = True
            content = self._manifest_content(kos_uid)
            covered = {uid for instances in content.values() for uid in instances}
            manifests[kos_uid] = PublishedManifest(
                kos_uid=kos_uid, study_uid=study_uid, series=content,
                withdrawn=withdrawn_later or status not in (ManifestStatus.CURRENT, ManifestStatus.SUPERSEDED),
                rejected_instances=frozenset(covered & rejected), rejected_in_study=rejected_in_study)
        with self._lock:  # a new manifest may cover instances unknown so far: recompute the id maps
            for key in [k for k in self._id_maps if k[0] == study_uid]:
                del self._id_maps[key]
        return _StudyState(signature, manifests)

    def _manifest_content(self, kos_uid: str) -> dict[str, dict[str, str]]:
        content = self._content.get(kos_uid)
        if content is None:
            content = self.store.manifest_content(kos_uid) or {}
            self._content[kos_uid] = content
        return content

    def _rejected_instances(self, study_uid: str) -> set[str]:
        """SOP instance UIDs rejected by the study's IOCM rejection notes (and by notes of unknown study: UIDs are
        unique). Read when the study's manifest list changes, which is when a rejection takes effect."""
        return self.store.instances_rejected_by_notes(study_uid)

    # --- what Orthanc stores --------------------------------------------------------------------
    def _patient_ids_of(self, study_uid: str) -> tuple[str, ...]:
        """PatientID of each Orthanc study with this UID (normally one)."""
        cached = self._patient_ids.get(study_uid)
        if cached is not None:
            return cached
        matches = self.rest.post_json("/tools/lookup", study_uid)
        ids = []
        for match in matches:
            if match.get("Type") == "Study":
                study = self.rest.get_json(f"/studies/{match['ID']}")
                ids.append(study.get("PatientMainDicomTags", {}).get("PatientID", ""))
        result = tuple(ids)
        if result:
            self._patient_ids.put(study_uid, result)
        return result

    def _id_map(self, study_uid: str, patient_id: str) -> dict[str, str]:
        key = (study_uid, patient_id)
        with self._lock:
            known = self._id_maps.get(key)
        if known is not None:
            return known
        state = self._studies.get(study_uid)
        mapping: dict[str, str] = {}
        for manifest in (state.manifests.values() if state else ()):
            for series_uid, instances in manifest.series.items():
                for sop_uid in instances:
                    mapping[orthanc_id(patient_id, study_uid, series_uid, sop_uid)] = sop_uid
        with self._lock:
            self._id_maps[key] = mapping
        return mapping

    def stored_instance_uids(self, study_uid: str, series_uid: str | None):
        """SOP instance UIDs Orthanc holds in the study (or series); instances no manifest of the study covers
        appear as ``orthanc:<id>``. Empty when Orthanc holds nothing there."""
        key = (study_uid, series_uid or "")
        cached = self._stored.get(key)
        if cached is not None:
            return cached
        found: set[str] = set()
        for patient_id in self._patient_ids_of(study_uid):
            mapping = self._id_map(study_uid, patient_id)
            if series_uid:
                series_ids = [orthanc_id(patient_id, study_uid, series_uid)]
            else:
                series_ids = self._get(f"/studies/{orthanc_id(patient_id, study_uid)}", {}).get("Series", [])
            for series_id in series_ids:
                for instance_id in self._get(f"/series/{series_id}", {}).get("Instances", []):
                    found.add(mapping.get(instance_id, UNKNOWN_PREFIX + instance_id))
        result = frozenset(found)
        self._stored.put(key, result)
        return result

    def _get(self, path: str, default):
        try:
            return self.rest.get_json(path)
        except OrthancRestError as error:
            if error.status == 404:
                return default
            raise

    def stored_transfer_syntax(self, study_uid: str, series_uid: str, instance_uid: str | None) -> str:
        """The syntax Orthanc stored for the series (or study): looked up on the requested instance, else on the
        first covered instance of the series, and cached per series. A series whose instances Orthanc stored
        in different syntaxes is not looked for: with the stored syntax chosen, Orthanc sends each instance
        as stored."""
        # Cached per series, instance requests included (one lookup per series, not per instance).
        key = (study_uid, series_uid)
        cached = self._syntax.get(key)
        if cached is not None:
            return cached
        candidates: list[tuple[str, str]] = []
        if instance_uid:
            candidates.append((series_uid, instance_uid))
        else:
            state = self._studies.get(study_uid)
            for manifest in (state.manifests.values() if state else ()):
                for s_uid, instances in manifest.series.items():
                    if series_uid and s_uid != series_uid:
                        continue
                    candidates.extend((s_uid, i) for i in list(instances)[:1])
        for patient_id in self._patient_ids_of(study_uid):
            for s_uid, sop_uid in candidates[:8]:
                iid = orthanc_id(patient_id, study_uid, s_uid, sop_uid)
                try:
                    syntax = self.rest.get_text(f"/instances/{iid}/metadata/TransferSyntax").strip()
                except OrthancRestError as error:
                    if error.status == 404:
                        continue
                    raise
                if syntax:
                    self._syntax.put(key, syntax)
                    return syntax
        # Nothing stored there: Orthanc will answer 404 itself; any syntax lets the request through to it.
        return "1.2.840.10008.1.2.1"

    # --- health ---------------------------------------------------------------------------------
    def psc_status(self) -> dict:
        out: dict = {"last_ok": _iso(self.last_psc_ok)}
        if self.last_psc_error:
            out["last_error_at"] = _iso(self.last_psc_error[0])
            out["last_error"] = self.last_psc_error[1][:200]
        return out


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
