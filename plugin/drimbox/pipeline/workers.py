"""The box's background threads. Orthanc callbacks only enqueue or wake; all the work happens here."""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from typing import Callable

import requests

from drimbox.pipeline.changes import ChangeFollower
from drimbox.pipeline.manifests import ManifestReconciler
from drimbox.pipeline.publisher import Publisher
from drimbox.store import Store
from drimbox.util.memory import release_memory

log = logging.getLogger("drimbox.workers")


class Workers:
    def __init__(self, store: Store, reconciler: ManifestReconciler, follower: ChangeFollower,
                 publisher: Publisher | None, *, reconcile_threads: int = 2, publisher_threads: int = 2,
                 follower_poll_seconds: float = 5.0, sweep_seconds: float = 300.0):
        self.store = store
        self.reconciler = reconciler
        self.follower = follower
        self.publisher = publisher
        self.reconcile_threads = reconcile_threads
        self.publisher_threads = publisher_threads
        self.follower_poll_seconds = follower_poll_seconds
        self.sweep_seconds = sweep_seconds
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._queued: set[str] = set()
        self._queued_lock = threading.Lock()
        self._follower_wake = threading.Event()
        self._publisher_wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # (store clock time, study uid): reconcile again later (a report waiting for its images)
        self._rechecks: list[tuple[float, str]] = []
        self._rechecks_lock = threading.Lock()
        self.on_manifest: Callable[[str], None] | None = None

    # --- called from Orthanc callbacks and intake (must return at once) -------------------------
    def schedule(self, study_uid: str) -> None:
        with self._queued_lock:
            if study_uid in self._queued:
                return
            self._queued.add(study_uid)
        self._queue.put(study_uid)

    def schedule_at(self, when: float, study_uid: str) -> None:
        """Reconcile ``study_uid`` again at store-clock time ``when`` (not durable: the start-up sweep is)."""
        with self._rechecks_lock:
            heapq.heappush(self._rechecks, (when, study_uid))
        self._follower_wake.set()

    def _due_rechecks(self) -> float | None:
        """Schedule the due rechecks; returns the time of the next one."""
        now = self.store.clock()
        due = []
        with self._rechecks_lock:
            while self._rechecks and self._rechecks[0][0] <= now:
                due.append(heapq.heappop(self._rechecks)[1])
            following = self._rechecks[0][0] if self._rechecks else None
        for study_uid in dict.fromkeys(due):
            self.schedule(study_uid)
        return following

    def wake_follower(self) -> None:
        self._follower_wake.set()

    def wake_publisher(self) -> None:
        self._publisher_wake.set()

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._spawn("drimbox-changes", self._follow)
        for n in range(self.reconcile_threads):
            self._spawn(f"drimbox-reconcile-{n}", self._reconcile_loop)
        if self.publisher is not None:
            for n in range(self.publisher_threads):
                self._spawn(f"drimbox-publish-{n}", self._publish_loop)
            if self.publisher.heartbeat:
                self._spawn("drimbox-leases", self._heartbeat_loop)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._follower_wake.set()
        self._publisher_wake.set()
        for _ in range(self.reconcile_threads):
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _spawn(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- loops ------------------------------------------------------------------------------------
    def _follow(self) -> None:
        last_sweep = 0.0
        while not self._stop.is_set():
            try:
                self.follower.poll()
                if time.monotonic() - last_sweep > self.sweep_seconds:
                    last_sweep = time.monotonic()
                    for study_uid in self.store.pending_studies():
                        self.schedule(study_uid)
                    for record in self.store.list_studies(state="waiting_images", limit=10000):
                        self.schedule(record.study_uid)
            except requests.ConnectionError:
                if not self._stop.is_set():  # Orthanc stopping, or not answering yet
                    log.warning("Orthanc's REST API is not answering; following its changes again shortly")
            except Exception:
                log.exception("following Orthanc's changes failed; retrying")
            wait = self.follower_poll_seconds
            try:
                following = self._due_rechecks()
                if following is not None:
                    wait = min(wait, max(0.05, following - self.store.clock()))
            except Exception:
                log.exception("scheduling rechecks failed")
            self._follower_wake.wait(wait)
            self._follower_wake.clear()

    def _reconcile_loop(self) -> None:
        while True:
            study_uid = self._queue.get()
            if study_uid is None:
                return
            with self._queued_lock:
                self._queued.discard(study_uid)
            try:
                with self.store.exclusive(f"study:{study_uid}"):  # another node may be reconciling it too
                    result = self.reconciler.reconcile(study_uid)
            except Exception:
                log.exception("reconcile %s crashed", study_uid)
                continue
            finally:
                if self._queue.empty():  # a study's listing is garbage now: give its pages back to the system
                    release_memory()
            if result.recheck_at is not None:
                self.schedule_at(result.recheck_at, study_uid)
            if result.new_manifest or result.state == "withdrawn":
                self._publisher_wake.set()
                if self.on_manifest and result.new_manifest:
                    self.on_manifest(result.new_manifest)

    def _heartbeat_loop(self) -> None:
        publisher = self.publisher
        assert publisher is not None  # started only with a publisher
        period = publisher.HEARTBEAT_LEASE_SECONDS / 3
        while not self._stop.wait(period):
            try:
                publisher.renew_leases()
            except Exception:
                log.exception("renewing the publication leases failed; retrying")

    def _publish_loop(self) -> None:
        publisher = self.publisher
        assert publisher is not None  # started only with a publisher
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
