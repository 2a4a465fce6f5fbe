"""Several workers on one store: every item is processed exactly once.

On PostgreSQL claims lock rows (SKIP LOCKED); on SQLite a claim is a guarded write
taken under the database's write lock. Either way nobody processes an item twice.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from gateway.clock import FakeClock
from gateway.ingest.inbound import store_inbound
from gateway.work.worker import Worker
from store.db import Store
from store.models import Case, InboundItem
from tests.conftest import make_config
from tests.support.mails import build_mail


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batches"])
def test_concurrent_workers_share_the_queue_without_doing_anything_twice(
    store: Store, batch: bool
) -> None:
    clock = FakeClock(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
    for n in range(60):
        raw = build_mail(subject=f"URGENT: outage {n}", sender=f"c{n}@acme.example")
        store_inbound(store, raw, source="test", clock=clock)
    workers = [Worker(make_config(store), store, clock) for _ in range(4)]
    done: list[list[int]] = [[] for _ in workers]

    def drain(index: int) -> None:
        worker = workers[index]
        if not batch:
            done[index] = [outcome.item_id for outcome in worker.drain()]
            return
        while outcomes := worker.process_batch(5):
            done[index] += [outcome.item_id for outcome in outcomes]

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    processed = [item for ids in done for item in ids]
    assert sorted(processed) == sorted(set(processed))  # nobody took an item twice
    assert len(processed) == 60
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 60
        states = set(session.scalars(select(InboundItem.state)))
    assert states == {"done"}
    if not store.is_sqlite:
        # SQLite serialises writers, so there one worker may well do everything.
        assert sum(1 for ids in done if ids) > 1  # the work really was shared
