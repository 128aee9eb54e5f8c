"""Recording what the pipeline needs of each instance as Orthanc stores it.

Orthanc 1.10 indexes no SOP Class UID, and finding an instance's study or SOP class through its REST API costs
about a millisecond of Orthanc's time per call. The stored-instance callback has both at hand (metadata and the
file's head), so the adapter hands them here and a worker writes them in batches: SOP class, key-object kind
(classified from the bytes) and study. Studies that received images are reported, so that a study whose
manifest is out of date is looked at again even if its stable-study event never comes.
"""

from __future__ import annotations

import logging
import queue
import threading

from drimbox.pacs.instance_head import HEAD_BYTES, KOS_SOP_CLASS, read_head
from drimbox.store import Store

log = logging.getLogger("drimbox.instances")


class InstanceFactsRecorder:
    """``note()`` is called from Orthanc's storage thread: it only enqueues."""

    def __init__(self, store: Store, *, on_studies=None, batch_size: int = 500, flush_seconds: float = 0.2):
        self.store = store
        self.on_studies = on_studies  # callable(set of study UIDs that received instances)
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        # noted / written counts: flush_pending() waits for what was noted before it was called, including a
        # batch the worker has taken from the queue but not yet written
        self._noted = 0
        self._written = 0
        self._progress = threading.Condition()

    def note(self, orthanc_id: str, sop_class: str, data: bytes) -> None:
        """``data``: the instance's bytes (or at least its head; key objects whole)."""
        with self._progress:
            self._noted += 1
        self._queue.put((orthanc_id, sop_class, data if sop_class == KOS_SOP_CLASS else data[:HEAD_BYTES]))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="drimbox-instance-facts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(10)

    def flush_pending(self, timeout: float = 10.0) -> bool:
        """Wait until everything noted so far is written (used before reading the facts back)."""
        if self._thread is None or not self._thread.is_alive():
            while items := self._drain():
                self._write(items)
            return True
        with self._progress:
            target = self._noted
            return self._progress.wait_for(lambda: self._written >= target, timeout)

    def _drain(self) -> list:
        items = []
        while len(items) < self.batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)
                break
            items.append(item)
        return items

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.flush_seconds)
            except queue.Empty:
                continue
            if first is None:
                self._write(self._drain())
                return
            self._write([first, *self._drain()])

    def _write(self, items: list) -> None:
        if not items:
            return
        try:
            self._record(items)
        finally:
            with self._progress:
                self._written += len(items)
                self._progress.notify_all()

    def _record(self, items: list) -> None:
        facts = {}
        for orthanc_id, sop_class, data in items:
            try:
                facts[orthanc_id] = read_head(sop_class, data)
            except Exception:
                log.exception("could not read instance %s; it will be read again when needed", orthanc_id)
        try:
            self.store.save_instance_facts(facts)
        except Exception:
            log.exception("could not record %d instance facts; they will be read again when needed", len(facts))
            return
        if self.on_studies and facts:
            self.on_studies({fact.study_uid for fact in facts.values()})
