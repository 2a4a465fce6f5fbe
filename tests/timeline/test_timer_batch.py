"""A timer batch reads threading once for all its cases, and the cap spares its mail."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from gateway.clock import FakeClock
from store.db import Store
from store.models import AutoReplyLog, Case, CaseEvent
from tests.support.smtp_sink import SmtpSink
from tests.support.timeline_sim import Sent, Simulation, mail
from tests.timeline.conftest import SimFactory

ALICE = "alice@acme.example"


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=UTC)


def checkout_down_at_noon(sim: Simulation, message_id: str) -> str:
    """Alice reports an urgent outage at 12:00: a level-4 case, status every 2 hours."""
    sim.clock.set(at(12))
    key = sim.receive(mail(sender=ALICE, subject="URGENT: checkout down", message_id=message_id))
    assert key is not None
    return key


def test_cap_holds_replies_but_no_status_mail_of_one_batch(
    make_sim: SimFactory, store: Store, clock: FakeClock
) -> None:
    sim = make_sim(reply_cap=2)
    clock.set(at(12))
    for n in range(3):  # level 4 (24x7): status mail every 2 hours
        sim.receive(
            mail(sender=ALICE, subject=f"URGENT: checkout down {n}", message_id=f"m{n}@acme")
        )
    # The acknowledgements answer Alice's mail: the cap (a loop brake) holds the third.
    assert [s.kind for s in sim.sent() if s.to == (ALICE,)] == ["acknowledgement"] * 2

    sim.run_until(at(14, 1))
    # All three status mails fall due in one batch at 14:00, and all three were
    # promised: the cap holds none of them.
    status = [s for s in sim.sent(since=at(14)) if s.kind == "status_update"]
    assert status == [Sent(at(14), "status_update", (ALICE,))] * 3
    with store.session() as session:
        held = session.scalars(
            select(CaseEvent.detail).where(CaseEvent.kind == "reply_suppressed")
        ).all()
        logged = session.scalar(select(func.count()).select_from(AutoReplyLog))
    assert len(held) == 1 and held[0].startswith("acknowledgement to alice@acme.example")
    assert logged == 2  # only the replies count against the cap


def test_status_mail_threads_under_the_previous_one_within_a_batch(
    sim: Simulation, smtp_sink: SmtpSink
) -> None:
    checkout_down_at_noon(sim, "m1@acme")
    sim.run_until(at(16, 1))
    to_alice = smtp_sink.to(ALICE)
    assert [s.kind for s in sim.sent() if s.to == (ALICE,)] == [
        "acknowledgement",
        "status_update",
        "status_update",
    ]
    replies = [str(m.message["In-Reply-To"]) for m in to_alice]
    ids = [str(m.message["Message-ID"]) for m in to_alice]
    # Each customer mail answers the one before it.
    assert replies[1:] == ids[:-1]


def test_a_case_whose_timers_keep_failing_backs_off_without_overflow(
    sim: Simulation, store: Store
) -> None:
    key = checkout_down_at_noon(sim, "f@acme")
    with store.transaction() as session:
        case_id = sim.case(key).id
        session.get_one(Case, case_id).timer_failures = 200  # far past 2**47 seconds
    sim.ticker._record_failure(case_id, at(12), "RuntimeError: still broken")
    with store.session() as session:
        case = session.get_one(Case, case_id)
        assert case.timer_failures == 201
        assert case.next_timer_at == at(12) + sim.config.timers.retry_max
