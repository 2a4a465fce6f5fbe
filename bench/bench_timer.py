"""Benchmark of the timer tick with 100,000 open cases, on SQLite and PostgreSQL.

    .venv/bin/python bench/bench_timer.py                 # both backends
    .venv/bin/python bench/bench_timer.py --backend sqlite

Each backend runs in its own process so its peak resident memory is its own. Every
figure is also given as a ratio to baselines measured in the same run on the same
store: a bare ``SELECT 1`` transaction, and the bare indexed due-time query the tick
itself starts with. Targets: idle tick < 10 ms, 500 due cases handled < 2 s.

PostgreSQL: ESCALATION_GATEWAY_TEST_PG names an admin URL (default
postgresql://postgres@127.0.0.1:5432/test); a throwaway database is created there.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from sqlalchemy import insert, select, text, update

from gateway.clock import FakeClock
from gateway.config import GatewayConfig
from gateway.timeline.timers import TimerTicker
from store.db import Store
from store.models import Case, OutboxMail

OPEN_CASES = 100_000
DUE = 500
ROUNDS = 3
NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
PG_ADMIN = os.environ.get("ESCALATION_GATEWAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


@contextmanager
def store_for(backend: str) -> Iterator[Store]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{tmp}/bench.db")
            store.migrate()
            yield store
            store.dispose()
        return
    name = f"eg_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        store = Store(f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}")
        store.migrate()
        yield store
        store.dispose()
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def case_row(i: int) -> dict[str, Any]:
    # Level 3 is 24x7 in the default config, so a due status mail really goes out.
    later = NOW + timedelta(minutes=10 + i % 40_000)
    return {
        "key": f"ESC-{i:06d}",
        "state": "investigating",
        "level": 3,
        "owner_name": "On-call Engineer",
        "owner_email": "oncall@example.com",
        "account": None,
        "customer_name": f"Customer {i}",
        "customer_email": f"customer{i}@bench.example",
        "customer_cc": [],
        "subject": f"Problem number {i}",
        "summary": "Something is broken.",
        "ticket": None,
        "fields": {},
        "opened_at": NOW - timedelta(hours=1),
        "updated_at": NOW - timedelta(hours=1),
        "first_response_due": NOW - timedelta(minutes=30),
        "first_responded_at": NOW - timedelta(minutes=45),
        "next_status_due": later,
        "resolution_due": NOW + timedelta(days=1),
        "root_message_id": f"root{i}@bench.example",
        "next_timer_at": later,
        "paused_seconds": 0,
        "timer_failures": 0,
    }


def bulk_insert(store: Store) -> None:
    chunk = 10_000
    for start in range(1, OPEN_CASES + 1, chunk):
        rows = [case_row(i) for i in range(start, min(start + chunk, OPEN_CASES + 1))]
        with store.transaction() as session:
            session.execute(insert(Case), rows)
    with store.engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def make_due(store: Store, first_id: int, at: datetime) -> None:
    with store.transaction() as session:
        session.execute(
            update(Case)
            .where(Case.id >= first_id, Case.id < first_id + DUE)
            .values(
                next_status_due=at - timedelta(minutes=1), next_timer_at=at - timedelta(seconds=1)
            )
        )


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def run(backend: str) -> None:
    rss_start = rss_mib()
    with store_for(backend) as store:
        t0 = time.perf_counter()
        bulk_insert(store)
        setup = time.perf_counter() - t0
        clock = FakeClock(NOW)
        ticker = TimerTicker(GatewayConfig(), store, clock)
        batch = ticker.config.timers.batch_size

        def select_one() -> None:
            with store.transaction() as session:
                session.execute(text("SELECT 1"))

        def bare_due_query() -> None:
            with store.transaction() as session:
                list(
                    session.scalars(
                        select(Case.id)
                        .where(Case.next_timer_at <= clock.now())
                        .order_by(Case.next_timer_at)
                        .limit(batch)
                    )
                )

        for fn in (select_one, bare_due_query, ticker.tick):  # warm up pools and caches
            timed(fn, 20)
        base_select = statistics.median(timed(select_one, 300))
        base_query = statistics.median(timed(bare_due_query, 300))
        idle_samples = timed(ticker.tick, 300)
        idle = statistics.median(idle_samples)

        due_times = []
        for n in range(ROUNDS):
            at = NOW + timedelta(minutes=n + 1)
            clock.set(at)
            make_due(store, 1 + n * DUE, at)
            start = time.perf_counter()
            result = ticker.tick()
            due_times.append(time.perf_counter() - start)
            assert result.claimed == DUE and result.failed == 0, result
        with store.session() as session:
            mails = len(list(session.scalars(select(OutboxMail.id))))
        assert mails == DUE * ROUNDS, mails
        due = statistics.median(due_times)

    peak = rss_mib()
    print(f"\n== {backend}: {OPEN_CASES:,} open cases (bulk insert {setup:.1f} s)")
    print(f"baseline  SELECT 1 transaction          {base_select * 1e3:8.3f} ms")
    print(f"baseline  bare indexed due query        {base_query * 1e3:8.3f} ms")
    print(
        f"idle tick (nothing due), median of 300  {idle * 1e3:8.3f} ms"
        f"   = {idle / base_select:5.1f}x SELECT 1, {idle / base_query:5.1f}x bare query"
        f"   p95 {sorted(idle_samples)[284] * 1e3:.3f} ms   target < 10 ms"
    )
    print(
        f"tick with {DUE} due (status mail each)    {due * 1e3:8.1f} ms"
        f"   = {due / base_select:7.0f}x SELECT 1, {due / base_query:7.0f}x bare query"
        f"   ({due / DUE * 1e3:.2f} ms per case; rounds: "
        + ", ".join(f"{t * 1e3:.0f}" for t in due_times)
        + " ms)   target < 2 s"
    )
    print(
        f"peak RSS  {peak:.0f} MiB (process start {rss_start:.0f} MiB, "
        f"+{peak - rss_start:.0f} MiB; the tick never loads more than one batch of cases)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    args = parser.parse_args()
    if args.backend != "all":
        run(args.backend)
        return
    for backend in ("sqlite", "postgresql"):
        subprocess.run([sys.executable, __file__, "--backend", backend], check=True)


if __name__ == "__main__":
    main()
