"""Two store handles (two nodes) working one queue: every job done exactly once, a study's jobs in order."""

from __future__ import annotations

import threading
import time
from collections import Counter

from drimbox.store import Store
from drimbox.store.records import PublicationState

STUDIES = 40
JOBS_PER_STUDY = 3


def _work(store: Store, worker: str, done: list[tuple[str, int, str]], lock: threading.Lock,
          failures: list[str]) -> None:
    deadline = time.monotonic() + 60
    # until every job is done: a job may wait for the earlier one of its study, held by another worker
    while len(done) < STUDIES * JOBS_PER_STUDY and time.monotonic() < deadline:
        job = store.claim_publication(worker)
        if job is None:
            time.sleep(0.01)
            continue
        with lock:
            earlier = [j for (s, j, _) in done if s == job.study_uid and j > job.id]
            if earlier:
                failures.append(f"job {job.id} of {job.study_uid} ran after a later one {earlier}")
            done.append((job.study_uid, job.id, worker))
        store.finish_publication(job.id, PublicationState.DONE, entry_uuid=f"urn:uuid:{job.id}")


def test_two_nodes_claim_every_job_exactly_once_in_study_order(store_url):
    nodes = [Store.open(store_url), Store.open(store_url)]
    for round_ in range(JOBS_PER_STUDY):
        for study in range(STUDIES):
            nodes[0].enqueue_publication(study_uid=f"1.2.{study}", kos_uid=f"1.3.{study}.{round_}", action="register")
    done: list[tuple[str, int, str]] = []
    failures: list[str] = []
    lock = threading.Lock()
    threads = [threading.Thread(target=_work, args=(node, f"node{n}-t{t}", done, lock, failures))
               for n, node in enumerate(nodes) for t in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    counts = Counter(job_id for (_, job_id, _) in done)
    assert failures == []
    assert len(counts) == STUDIES * JOBS_PER_STUDY
    assert set(counts.values()) == {1}, [j for j, c in counts.items() if c > 1]
    assert {worker.split("-")[0] for (_, _, worker) in done} == {"node0", "node1"}  # both nodes took part
    rows = nodes[1].list_publications(limit=1000)
    assert {r.state for r in rows} == {PublicationState.DONE}
    assert all(r.attempts == 1 for r in rows)
