"""Lease holders: a dead sender on this host loses its claims at once, nobody else does."""

from __future__ import annotations

import secrets
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from gateway.clock import FakeClock
from gateway.outbound import delivery
from gateway.outbound.delivery import CLAIM_LEASE, OutboxSender
from gateway.outbound.lease import LeaseHolder, current_holder, is_gone
from store.db import Store
from store.models import OutboxMail
from tests.conftest import make_config
from tests.outbound.outbox import queue_pending
from tests.outbound.smarthost import Smarthost
from tests.support.mails import build_mail

PRINT_HOLDER = (
    "from gateway.outbound.lease import current_holder; print(current_holder(), flush=True)"
)


def holder_of_process(*, keep_running: bool) -> tuple[LeaseHolder, subprocess.Popen[str]]:
    code = PRINT_HOLDER + ("; import sys; sys.stdin.read()" if keep_running else "")
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    holder = LeaseHolder.parse(process.stdout.readline())
    assert holder is not None
    if not keep_running:
        process.wait(10)
    return holder, process


def unclaimed(store: Store, clock: FakeClock, **columns: Any) -> int:
    return queue_pending(
        store,
        clock,
        recipients=["a@kunde.example"],
        raw=build_mail(),
        message_id=f"{secrets.token_hex(8)}@kunde.example",
        **columns,
    )


def claimed(store: Store, clock: FakeClock, holder: str) -> int:
    return unclaimed(store, clock, next_attempt_at=clock.now() + CLAIM_LEASE, lease_holder=holder)


def test_holder_identity_round_trips_and_tells_dead_from_alive() -> None:
    me = current_holder()
    assert LeaseHolder.parse(str(me)) == me and not is_gone(me)
    ended, _ = holder_of_process(keep_running=False)
    alive, process = holder_of_process(keep_running=True)
    try:
        assert is_gone(ended)
        assert not is_gone(alive)
        # The PID of a live process, but another start: that PID was reused.
        assert is_gone(replace(alive, start=alive.start + "0"))
        # Another host (or container) cannot be checked from here.
        assert not is_gone(replace(ended, host="other-host"))
        assert not is_gone(replace(ended, namespace="4026530000"))
    finally:
        process.communicate("")


def test_a_restarted_sender_takes_back_only_the_leases_of_dead_holders(
    store: Store, clock: FakeClock
) -> None:
    ended, _ = holder_of_process(keep_running=False)
    alive, process = holder_of_process(keep_running=True)
    try:
        dead_here = claimed(store, clock, str(ended))
        live_here = claimed(store, clock, str(alive))
        elsewhere = claimed(store, clock, str(replace(ended, host="other-host")))
        sender = OutboxSender(make_config(store).outbound, store, clock)
        assert sender.reclaim_orphans() == 1
        with store.session() as session:
            rows = {m.id: m for m in session.scalars(select(OutboxMail))}
        assert rows[dead_here].next_attempt_at == clock.now()
        assert rows[dead_here].lease_holder is None
        for kept in (live_here, elsewhere):
            assert rows[kept].next_attempt_at == clock.now() + CLAIM_LEASE
        # Once a lease has run out, anyone may claim the mail, as before.
        clock.advance(CLAIM_LEASE + timedelta(seconds=1))
        assert sender.reclaim_orphans() == 0
    finally:
        process.communicate("")


def test_a_batch_past_half_its_lease_hands_the_rest_back_at_once(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Smarthost(delay=0.05) as smarthost:
        for _ in range(3):
            unclaimed(store, clock)
        # As if each mail took half the lease: one is sent, the other two are released.
        monkeypatch.setattr(delivery, "LEASE_BUDGET", 0.01)
        sender = OutboxSender(
            make_config(store, outbound={"port": smarthost.port}).outbound, store, clock
        )
        assert sender.deliver_due() == 1
    with store.session() as session:
        rows = list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))
    assert [m.state for m in rows] == ["sent", "pending", "pending"]
    assert all(m.next_attempt_at == clock.now() and m.lease_holder is None for m in rows[1:])
