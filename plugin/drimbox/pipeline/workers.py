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


class Workers:
    def __init__(self, store: Store, studies: StudyQueue, reconciler: ManifestReconciler, follower: ChangeFollower,
                 publisher: Publisher | None, *, reconcile_threads: int = 2, publisher_threads: int = 2,
                 follower_poll_seconds: float = 5.0, sweep_seconds: float = 300.0,
                 on_manifest: Callable[[str], None] | None = None):
        """``studies``: the queue the follower and the intake schedule into; ``publisher`` None: no DMP;
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
        self.on_manifest = on_manifest
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
