"""Owner assignment: round robin kept in the store, or the account's named lead."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gateway.clock import FakeClock
from gateway.ingest.inbound import store_inbound
from gateway.work.worker import Worker
from store.db import Store
from store.models import Case
from tests.conftest import TWO_OWNERS, make_config
from tests.support.mails import build_mail


def owners_of_new_cases(store: Store, clock: FakeClock, count: int, **overrides: Any) -> list[str]:
    for n in range(count):
        store_inbound(store, build_mail(subject=f"URGENT: problem {n}"), source="test", clock=clock)
    # A fresh worker each time: the rotation must live in the store, not in memory.
    for _ in range(count):
        Worker(make_config(store, **overrides), store, clock).process_next()
    with store.session() as session:
        return list(session.scalars(select(Case.owner_email).order_by(Case.id)))


def test_round_robin_survives_restarts(store: Store, clock: FakeClock) -> None:
    owners = owners_of_new_cases(store, clock, 5, levels=TWO_OWNERS)
    assert owners == [
        "ada4@example.com",
        "bo4@example.com",
        "ada4@example.com",
        "bo4@example.com",
        "ada4@example.com",
    ]


def test_single_owner_level_always_gets_that_owner(store: Store, clock: FakeClock) -> None:
    assert set(owners_of_new_cases(store, clock, 3)) == {"head-of-support@example.com"}
