"""The timer tick: claim due cases in bounded batches and run their timers.

All timer state lives on the case rows, so a restart loses nothing: the next tick
simply finds what is due. A batch runs in one transaction (one commit instead of
hundreds); if anything in it fails, the batch is rolled back and rerun case by case,
each in its own transaction, so the failing case is logged and retried later with a
stored backoff while the others go on.

Claiming sets a short lease on ``next_timer_at``; with several daemons on one
PostgreSQL store, ``FOR UPDATE SKIP LOCKED`` plus the lease hands each case to one of
them. A crash mid-batch only delays the unfinished cases until the lease ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import schedule
from sqlalchemy import select, update

from gateway.backoff import retry_delay
from gateway.cases.accounts import AccountDirectory
from gateway.cases.lifecycle import Lifecycle
from gateway.cases.mail import CUSTOMER_KINDS
from gateway.clock import Clock
from gateway.config import GatewayConfig
from gateway.outbound import batch_memo as batch_memo
from gateway.outbound.outbox import Outbox
from gateway.outbound.render import Renderer
from gateway.timeline.due_work import DueWork
from store.db import Store
from store.models import Case

log = logging.getLogger("gateway.timers")


@dataclass(frozen=True)
class TickResult:
    claimed: int
    failed: int


class TimerTicker:
    def __init__(
        self, config: GatewayConfig, store: Store, clock: Clock, *, shadow: bool = False
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        outbox = Outbox(config, Renderer(config.template_dir), shadow=shadow)
        lifecycle = Lifecycle(config, outbox, AccountDirectory.build(config.accounts))
        self.due = DueWork(config, lifecycle)

    def tick(self) -> TickResult:
        """Run everything due at the clock's now, one bounded batch after another."""
        now = self.clock.now()
        claimed = failed = 0
        while True:
            batch = self._claim(now)
            if batch and not self._run_batch(batch, now):
                failed += sum(not self._run_one(case_id, now) for case_id in batch)
            claimed += len(batch)
            if len(batch) < self.config.timers.batch_size:
                return TickResult(claimed, failed)

    def _claim(self, now: datetime) -> list[int]:
        timers = self.config.timers
        with self.store.transaction() as session:
            query = (
                select(Case.id)
                .where(Case.next_timer_at <= now)
                .order_by(Case.next_timer_at)
                .limit(timers.batch_size)
            )
            if not self.store.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if ids:
                session.execute(
                    update(Case)
                    .where(Case.id.in_(ids))
                    .values(next_timer_at=now + timers.claim_lease)
                    .execution_options(synchronize_session=False)
                )
            return ids

    def _run_batch(self, ids: list[int], now: datetime) -> bool:
        try:
            with self.store.transaction() as session:
                # Locked in id order, so two daemons can never deadlock on a pair.
                query = select(Case).where(Case.id.in_(ids)).order_by(Case.id)
                if not self.store.is_sqlite:
                    query = query.with_for_update()
                # One flush for the whole batch, at commit: the rows every case writes
                # (mail, links, events) then go out as a few multi-row statements
                # instead of a round trip each. Each case's reads are by its own id,
                # so they never need another case's unflushed rows.
                with session.no_autoflush:
                    cases = session.scalars(query).all()
                    batch_memo.load(session, cases, CUSTOMER_KINDS, now)
                    for case in cases:
                        self.due.run(session, case, now)
                        case.timer_failures = 0
                        case.timer_error = None
                    batch_memo.forget(session)
            return True
        except Exception:
            log.warning("timer batch of %s cases failed; rerunning case by case", len(ids))
            return False

    def _run_one(self, case_id: int, now: datetime) -> bool:
        try:
            with self.store.transaction() as session:
                case = session.get(Case, case_id, with_for_update=not self.store.is_sqlite)
                if case is None:
                    return True
                self.due.run(session, case, now)
                case.timer_failures = 0
                case.timer_error = None
            return True
        except Exception as exc:
            log.exception("timers for case id %s failed", case_id)
            self._record_failure(case_id, now, f"{type(exc).__name__}: {exc}")
            return False

    def _record_failure(self, case_id: int, now: datetime, error: str) -> None:
        timers = self.config.timers
        with self.store.transaction() as session:
            case = session.get(Case, case_id)
            if case is None:
                return
            case.timer_failures = (case.timer_failures or 0) + 1
            backoff = retry_delay(case.timer_failures, timers.retry_initial, timers.retry_max)
            case.timer_error = error[:2000]
            case.next_timer_at = now + backoff


class TimerThread:
    """Runs the tick every ``[timers] tick_interval`` with the schedule library."""

    def __init__(self, ticker: TimerTicker, on_mail: Callable[[], None] | None = None) -> None:
        self.ticker = ticker
        self.on_mail = on_mail
        self.scheduler = schedule.Scheduler()
        seconds = max(1, round(ticker.config.timers.tick_interval.total_seconds()))
        self.scheduler.every(seconds).seconds.do(self._tick)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _tick(self) -> None:
        try:
            result = self.ticker.tick()
        except Exception:
            # The store itself failed; the next tick tries again.
            log.exception("timer tick failed")
            return
        if result.claimed and self.on_mail is not None:
            self.on_mail()

    def _loop(self) -> None:
        self._tick()  # catch up at once after a start instead of one interval later
        while not self._stop.wait(0.2):
            self.scheduler.run_pending()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="timers", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
