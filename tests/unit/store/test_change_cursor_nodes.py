"""Two nodes following one change log (Orthanc's index shared on PostgreSQL): each change handled once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from types import SimpleNamespace

from drimbox.pipeline.changes import ChangeFollower
from drimbox.store import Store

CHANGES = 60


class ChangeLog:
    """Orthanc's ``/changes`` as both nodes see it when they share the index (a slow answer widens the race)."""

    def get_json(self, path: str, *, since: int, limit: int) -> dict:
        assert path == "/changes"
        time.sleep(0.01)
        last = min(since + limit, CHANGES)
        changes = [{"ChangeType": "StableStudy", "ResourceType": "Study", "ID": f"o{seq}", "Seq": seq}
                   for seq in range(since + 1, last + 1)]
        return {"Changes": changes, "Last": last, "Done": last >= CHANGES}


class Reader:
    def study_by_id(self, orthanc_id: str) -> SimpleNamespace:
        return SimpleNamespace(study_uid="1.2." + orthanc_id[1:])


def test_two_followers_never_process_a_change_twice(store_url):
    seen: list[str] = []
    lock = threading.Lock()

    def note(study_uid: str) -> None:
        with lock:
            seen.append(study_uid)

    followers = [ChangeFollower(ChangeLog(), Reader(), Store.open(store_url), note, page_size=3) for _ in range(2)]

    def follow(follower: ChangeFollower) -> None:
        deadline = time.monotonic() + 30  # ends as soon as the log is read to the end
        while follower.cursor < CHANGES and time.monotonic() < deadline:
            follower.poll()

    threads = [threading.Thread(target=follow, args=(f,)) for f in followers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    counts = Counter(seen)
    assert len(counts) == CHANGES
    assert set(counts.values()) == {1}, sorted(uid for uid, n in counts.items() if n > 1)


class ReplacedIndex:
    """An index rebuilt behind the box's back: its log restarts at 1 and ends at 3 while the cursor says 500."""

    def get_json(self, path: str, *, since: int, limit: int) -> dict:
        changes = [{"ChangeType": "StableStudy", "ResourceType": "Study", "ID": f"o{seq}", "Seq": seq}
                   for seq in range(since + 1, 4)]
        return {"Changes": changes, "Last": changes[-1]["Seq"] if changes else 3, "Done": True}


def test_a_change_log_that_ends_before_the_cursor_is_read_again_from_its_start(store_url, caplog):
    seen: list[str] = []
    follower = ChangeFollower(ReplacedIndex(), Reader(), Store.open(store_url), seen.append)
    follower.store.set_fact("orthanc_changes_cursor", "500")
    assert follower.poll() == 3
    assert seen == ["1.2.1", "1.2.2", "1.2.3"] and follower.cursor == 3
    assert "before this box's cursor 500" in caplog.text
    assert follower.poll() == 0 and follower.cursor == 3  # then followed as usual
