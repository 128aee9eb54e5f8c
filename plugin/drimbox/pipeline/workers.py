"""The box's background threads. Orthanc callbacks only enqueue or wake; all the work happens here."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import requests

from drimbox.pipeline.changes import ChangeFollower
from drimbox.pipeline.manifests import ManifestReconciler
from drimbox.pipeline.publisher import Publisher
from drimbox.pipeline.study_queue import StudyQueue
from drimbox.store import Store
from drimbox.util.memory import release_memory

log = logging.getLogger("drimbox.workers")
STABLE_WINDOW_SECONDS = 2.5
STABLE_POLL_SECONDS = 0.25
UNANSWERED_WARNING_SECONDS = 10.0


def follower_wait(now: float, last_arrival: float | None, stable_age: float, poll_seconds: float) -> float:
    """Seconds until the change log is worth reading again (``now``, ``last_arrival``: time.monotonic()).

    Orthanc marks a study stable StableAge + 0.1..1.2 s after its last instance: from StableAge on, the follower
    reads the log every 0.25 s for 2.5 s, so a manifest does not wait for the regular poll. ``last_arrival`` comes
    from the log's NewInstance changes: the plugin registers neither Orthanc's change callback (orthanc-python
    would call Python once per change, i.e. per stored instance: ~12% of a bare Orthanc's CPU on small images)
    nor a stored-instance callback (~3% even empty)."""
    wait = poll_seconds
    if last_arrival is not None:
        since = now - last_arrival
        if since < stable_age:
            wait = min(wait, stable_age - since)
        elif since < stable_age + STABLE_WINDOW_SECONDS:
            wait = min(wait, STABLE_POLL_SECONDS)
    return max(0.05, wait)


class Workers:
    def __init__(self, store: Store, studies: StudyQueue, reconciler: ManifestReconciler, follower: ChangeFollower,
                 publisher: Publisher | None, *, reconcile_threads: int = 2, publisher_threads: int = 2,
                 follower_poll_seconds: float = 5.0, sweep_seconds: float = 300.0,
                 stable_age_seconds: float = 60.0, on_manifest: Callable[[str], None] | None = None):
        """``studies``: the queue the follower and the intake schedule into; ``publisher`` None: no DMP;
        ``stable_age_seconds``: Orthanc's StableAge (when to look for the stable study after the last instance);
        ``on_manifest``: called with each new manifest's UID (from a reconcile thread)."""
        self.store = store
        self.studies = studies
        self.reconciler = reconciler
        self.follower = follower
        self.publisher = publisher
        self.reconcile_threads = reconcile_threads
        self.publisher_threads = publisher_threads
        self.follower_poll_seconds = follower_poll_seconds
        self.sweep_seconds = sweep_seconds
        self.stable_age_seconds = stable_age_seconds
        self.on_manifest = on_manifest
        self._last_arrival: float | None = None  # time.monotonic() of the last stored instance seen in the log
        self._publisher_wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- called from Orthanc callbacks and intake (must return at once) -------------------------
    def schedule(self, study_uid: str) -> None:
        self.studies.schedule(study_uid)

    def wake_follower(self) -> None:
        self.studies.wake.set()

    def wake_publisher(self) -> None:
        self._publisher_wake.set()

    def instances_arrived(self, at: float) -> None:
        """The change log shows instances stored until ``at`` (Unix time): the follower looks for the stable
        study when due."""
        arrival = time.monotonic() - max(0.0, time.time() - at)
        if self._last_arrival is None or arrival > self._last_arrival:
            self._last_arrival = arrival

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._spawn("drimbox-changes", self._follow)
        for n in range(self.reconcile_threads):
            self._spawn(f"drimbox-reconcile-{n}", self._reconcile_loop)
        publisher = self.publisher
        if publisher is not None:
            for n in range(self.publisher_threads):
                self._spawn(f"drimbox-publish-{n}", lambda: self._publish_loop(publisher))
            if publisher.heartbeat:
                self._spawn("drimbox-leases", lambda: self._heartbeat_loop(publisher))

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.studies.wake.set()
        self._publisher_wake.set()
        self.studies.release(self.reconcile_threads)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- loops ------------------------------------------------------------------------------------
    def _follow(self) -> None:
        last_sweep = 0.0
        unanswered_since: float | None = None
        warned = False
        while not self._stop.is_set():
            try:
                self.follower.poll()
                unanswered_since, warned = None, False
                if time.monotonic() - last_sweep > self.sweep_seconds:
                    last_sweep = time.monotonic()
                    for study_uid in self.store.pending_studies():
                        self.schedule(study_uid)
                    for record in self.store.list_studies(state="waiting_images", limit=10000):
                        self.schedule(record.study_uid)
            except requests.ConnectionError:
                # Orthanc stops its REST API a second or two before the interpreter finalizes (when the box
                # stops): only a longer silence is worth a warning
                now = time.monotonic()
                unanswered_since = unanswered_since if unanswered_since is not None else now
                if now - unanswered_since > UNANSWERED_WARNING_SECONDS and not warned:
                    warned = True
                    log.warning("Orthanc's REST API has not answered for %.0f s; following its changes again "
                                "shortly", now - unanswered_since)
            except Exception:
                log.exception("following Orthanc's changes failed; retrying")
            wait = follower_wait(time.monotonic(), self._last_arrival, self.stable_age_seconds,
                                 self.follower_poll_seconds)
            try:
                following = self.studies.schedule_due()
                if following is not None:
                    wait = min(wait, max(0.05, following - self.store.clock()))
            except Exception:
                log.exception("scheduling rechecks failed")
            self.studies.wake.wait(wait)
            self.studies.wake.clear()

    def _reconcile_loop(self) -> None:
        while True:
            study_uid = self.studies.next_study()
            if study_uid is None:
                return
            try:
                with self.store.exclusive(f"study:{study_uid}"):  # another node may be reconciling it too
                    result = self.reconciler.reconcile(study_uid)
            except Exception:
                log.exception("reconcile %s crashed", study_uid)
                continue
            finally:
                if self.studies.empty():  # a study's listing is garbage now: give its pages back to the system
                    release_memory()
            if result.recheck_at is not None:
                self.studies.schedule_at(result.recheck_at, study_uid)
            if result.new_manifest or result.state == "withdrawn":
                self._publisher_wake.set()
                if self.on_manifest and result.new_manifest:
                    self.on_manifest(result.new_manifest)

    def _heartbeat_loop(self, publisher: Publisher) -> None:
        period = publisher.HEARTBEAT_LEASE_SECONDS / 3
        while not self._stop.wait(period):
            try:
                publisher.renew_leases()
            except Exception:
                log.exception("renewing the publication leases failed; retrying")

    def _publish_loop(self, publisher: Publisher) -> None:
        while not self._stop.is_set():
            try:
                job = publisher.run_once()
            except Exception:
                log.exception("publisher loop error")
                job = None
            if job is not None:
                continue
            due = self.store.next_publication_due()
            wait = 30.0 if due is None else min(30.0, max(0.05, due - self.store.clock()))
            self._publisher_wake.wait(wait)
            self._publisher_wake.clear()
