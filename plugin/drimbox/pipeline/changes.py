"""Following Orthanc's change log with a persisted cursor.

Orthanc's STABLE_STUDY event is not durable (one due while Orthanc stops is never delivered to plugins), but
``/changes`` records it, and the plugin registers no change callback at all (docs/orthanc-notes.md, point 4).
So this follower reads the log from the stored cursor: the live path and the catch-up after a restart are the
same code. The log's NewInstance dates tell it when the next stable study is due.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Callable

from drimbox.pacs.reader import PacsReader, orthanc_time
from drimbox.pacs.rest import OrthancRest, OrthancRestError
from drimbox.store import Store

log = logging.getLogger("drimbox.changes")
CURSOR_FACT = "orthanc_changes_cursor"
_ORTHANC_DATE = re.compile(r"\d{8}T\d{6}")
CURSOR_LOCK = "changes-cursor"


@dataclass
class ChangeBatch:
    deleted_instances: list[str] = field(default_factory=list)
    stable_studies: list[str] = field(default_factory=list)  # Orthanc ids
    last: int = 0
    done: bool = True
    empty: bool = True  # the page held no change at all (of any kind)
    last_arrival: float | None = None  # Unix time by which the page's last NewInstance happened (1 s resolution)


def read_changes(page: dict) -> ChangeBatch:
    changes = page.get("Changes", [])
    batch = ChangeBatch(last=int(page.get("Last", 0)), done=bool(page.get("Done", True)), empty=not changes)
    newest = ""
    for change in changes:
        kind, level, orthanc_id = change.get("ChangeType"), change.get("ResourceType"), change.get("ID")
        if kind == "StableStudy":
            batch.stable_studies.append(orthanc_id)
        elif kind == "Deleted" and level == "Instance":
            batch.deleted_instances.append(orthanc_id)
        elif kind == "NewInstance":
            date = str(change.get("Date", ""))
            if _ORTHANC_DATE.fullmatch(date):  # YYYYMMDDTHHMMSS sorts as time does
                newest = max(newest, date)
    stamp = orthanc_time(newest) if newest else 0.0
    if stamp:  # the change happened within that second
        batch.last_arrival = stamp + 1.0
    return batch


class ChangeFollower:
    def __init__(self, rest: OrthancRest, reader: PacsReader, store: Store, on_stable_study,
                 on_instances_arrived: Callable[[float], None] | None = None, page_size: int = 1000):
        """``on_stable_study(study_uid)``: a study to reconcile; ``on_instances_arrived(unix_time)``: the log
        shows instances stored until then (so the stable study is due StableAge later)."""
        self.rest = rest
        self.reader = reader
        self.store = store
        self.on_stable_study = on_stable_study
        self.on_instances_arrived = on_instances_arrived
        self.page_size = page_size

    @property
    def cursor(self) -> int:
        return int(self.store.get_fact(CURSOR_FACT, "0") or 0)

    def poll(self) -> int:
        """Process every change since the cursor; returns how many stable studies were seen.

        One node at a time: a node finding the cursor taken returns at once (the holder reads to the end of the
        log, and the next poll catches what arrives after it)."""
        with self.store.exclusive(CURSOR_LOCK, wait=False) as mine:
            return self._poll() if mine else 0

    def _poll(self) -> int:
        seen = 0
        while True:
            cursor = self.cursor
            batch = read_changes(self.rest.get_json("/changes", since=cursor, limit=self.page_size))
            if batch.empty and batch.last < cursor:
                # Orthanc answers with its log's last change: before the cursor, the log is not the one the
                # cursor was taken from (an index rebuilt, replaced or restored by hand, a cleared log). Read it
                # again from its start: reconciling a study twice changes nothing, skipping one would.
                log.warning("Orthanc's change log ends at %d, before this box's cursor %d: its index was replaced "
                            "or its log cleared; following it again from its start", batch.last, cursor)
                self.store.set_fact(CURSOR_FACT, "0")
                continue
            if batch.last_arrival is not None and self.on_instances_arrived is not None:
                self.on_instances_arrived(batch.last_arrival)
            if batch.deleted_instances:
                self.store.forget_instances(batch.deleted_instances)
            for orthanc_id in dict.fromkeys(batch.stable_studies):
                study = self.reader.study_by_id(orthanc_id)
                if study is None:  # deleted since
                    continue
                self.store.update_study(study.study_uid, orthanc_id=orthanc_id, stable_at=self.store.clock())
                self.store.mark_pending(study.study_uid)
                self.on_stable_study(study.study_uid)
                seen += 1
            if batch.last > cursor:
                self.store.set_fact(CURSOR_FACT, str(batch.last))
            if batch.done or batch.last <= cursor:
                return seen

    def rescan_followed_studies(self) -> int:
        """At start: studies the pipeline follows whose images changed after their manifest are looked at again.

        Orthanc forgets unstable studies across a restart, so a study that received images just before Orthanc
        stopped never gets its stable-study change; its ``LastUpdate`` tells. Returns how many were scheduled."""
        scheduled = 0
        for record in self.store.list_studies(limit=1_000_000):
            if not (record.report_id and record.orthanc_id):
                continue
            try:
                info = self.rest.get_json(f"/studies/{record.orthanc_id}")
            except OrthancRestError as error:
                if error.status == 404:
                    continue
                raise
            manifest = self.store.current_manifest(record.study_uid)
            # LastUpdate has a one-second resolution: images of the manifest's own second count as newer
            if manifest is None or orthanc_time(info.get("LastUpdate", "")) >= int(manifest.created_at):
                self.store.mark_pending(record.study_uid)
                self.on_stable_study(record.study_uid)
                scheduled += 1
        return scheduled
