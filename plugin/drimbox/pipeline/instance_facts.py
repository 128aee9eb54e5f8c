"""Recording what a manifest needs of each instance as Orthanc stores it.

Orthanc 1.10 indexes no SOP Class UID; asking its REST API per instance costs about a millisecond of Orthanc's
time. The stored-instance callback already has it (instance metadata), so the adapter hands it here and a
worker writes it in batches. Key objects (a handful per study) are classified from their bytes.
"""

from __future__ import annotations

import io
import logging
import queue
import threading

import pydicom

from drimbox.kos.classify import classify_key_object, rejected_instances
from drimbox.store import Store

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
log = logging.getLogger("drimbox.instances")


def key_object_fact(sop_class: str, data: bytes) -> tuple[str, str, tuple[str, ...]]:
    ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    kind = classify_key_object(ds)
    return sop_class, kind, tuple(sorted(rejected_instances(ds))) if kind == "rejection" else ()


class InstanceFactsRecorder:
    """``note()`` is called from Orthanc's storage thread: it only enqueues."""

    def __init__(self, store: Store, *, batch_size: int = 500, flush_seconds: float = 0.2):
        self.store = store
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def note(self, orthanc_id: str, sop_class: str, key_object_bytes: bytes | None = None) -> None:
        self._queue.put((orthanc_id, sop_class, key_object_bytes))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="drimbox-instance-facts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(10)

    def flush_pending(self) -> None:
        """Write whatever is queued now (used before reading the facts back)."""
        self._write(self._drain())

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
        facts = {}
        for orthanc_id, sop_class, data in items:
            try:
                facts[orthanc_id] = key_object_fact(sop_class, data) if data else (sop_class, "", ())
            except Exception:
                log.exception("could not classify key object %s; it will be read again when needed", orthanc_id)
        try:
            self.store.save_instance_facts(facts)
        except Exception:
            log.exception("could not record %d instance facts; they will be read again when needed", len(facts))
