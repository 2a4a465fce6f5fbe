"""Status mail over simulated days: business hours, a holiday, restarts and an outage."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from gateway.clock import FakeClock
from store.models import Case
from tests.support.smtp_sink import SmtpSink
from tests.support.timeline_sim import Sent, Simulation, at, mail
from tests.timeline.conftest import SimFactory

ALICE = "alice@acme.example"
ANNA = "anna.am@example.com"
LEE = "lee.lead@example.com"


def open_level_two(sim: Simulation) -> str:
    """Alice copies Acme's account manager: a level-2 case owned by Acme's lead."""
    key = sim.receive(
        mail(sender=f"Alice Example <{ALICE}>", cc=f"Anna Manager <{ANNA}>", message_id="m1@acme")
    )
    assert key is not None
    return key


def owner_replies(sim: Simulation, key: str, *, to_customer: bool = True) -> None:
    """The owner answers: through the lifecycle API, as the lead-command layer does."""

    def respond(session: Session, case: Case, now: datetime) -> None:
        sim.commands.lifecycle.acknowledge(session, case, actor=LEE, now=now)
        if to_customer:
            sim.commands.lifecycle.record_human_update(session, case, actor=LEE, now=now)

    sim.commands.on_case(key, respond)


def three_days(sim: Simulation, *, restart_at: datetime | None = None) -> str:
    key = open_level_two(sim)
    sim.clock.set(at(23, 14, 30))
    owner_replies(sim, key)
    for when, action in (
        (at(24, 11), lambda: sim.commands.set_state(key, "investigating", actor="lee")),
        (
            at(24, 12),
            lambda: sim.commands.note(key, "Payment provider confirmed a fault.", actor="lee"),
        ),
    ):
        if restart_at is not None and restart_at <= when:
            sim.run_until(restart_at)
            sim.restart()
            restart_at = None
        sim.run_until(when)
        action()  # type: ignore[no-untyped-call]
    sim.run_until(at(26, 23, 59))
    return key


EXPECTED_THREE_DAYS = [
    Sent(at(23, 14), "owner_notification", (LEE,)),
    Sent(at(23, 14), "acknowledgement", (ALICE, ANNA)),
    # Mon 14:30 the owner wrote to Alice, so the Tue 10:00 slot is skipped and the
    # rhythm restarts from that human update: 2.5h Mon + 1.5h Tue.
    Sent(at(24, 10, 30), "status_update", (ALICE, ANNA)),
    Sent(at(24, 14, 30), "status_update", (ALICE, ANNA)),
    # Tue 14:30 + 4 business hours: 2.5h Tue, Wednesday is a holiday, 1.5h Thu.
    Sent(at(26, 10, 30), "status_update", (ALICE, ANNA)),
    Sent(at(26, 14, 30), "status_update", (ALICE, ANNA)),
]


def test_level_two_case_over_three_days_with_a_holiday(
    sim: Simulation, smtp_sink: SmtpSink
) -> None:
    key = three_days(sim)

    assert sim.sent() == EXPECTED_THREE_DAYS
    case = sim.case(key)
    assert case.state == "investigating"
    assert case.first_responded_at == at(23, 14, 30)
    assert case.next_status_due == at(27, 10, 30)
    statuses = [m for m in smtp_sink.mails if "Next update" in m.text]
    assert "now being investigated" in statuses[1].text
    assert "Payment provider confirmed a fault." in statuses[1].text
    assert "Nothing new since our last update" in statuses[2].text
    assert "the case is still being investigated" in statuses[2].text
    assert "Next update: by 14:30 UTC on Thu 26 Nov 2026" in statuses[2].text


def test_status_mail_threads_under_the_original_conversation(
    sim: Simulation, smtp_sink: SmtpSink
) -> None:
    key = open_level_two(sim)
    owner_replies(sim, key, to_customer=False)
    sim.run_until(at(24, 14, 0))
    ack_id = sim.message_id_of("acknowledgement")
    first, second = [m for m in smtp_sink.mails if "Next update" in m.text]
    assert first.message["In-Reply-To"] == f"<{ack_id}>"
    assert first.message["References"] == f"<m1@acme> <{ack_id}>"
    assert second.message["In-Reply-To"] == first.message["Message-ID"]
    assert str(first.message["Subject"]) == f"[{key}] Checkout is failing for all our users"


@pytest.mark.parametrize("restart_at", [at(24, 12, 30), at(24, 14, 30)])
def test_restart_halfway_through_a_day_neither_duplicates_nor_misses(
    sim: Simulation, restart_at: datetime
) -> None:
    three_days(sim, restart_at=restart_at)
    assert sim.sent() == EXPECTED_THREE_DAYS


def test_no_status_mail_outside_business_hours(sim: Simulation) -> None:
    owner_replies(sim, open_level_two(sim), to_customer=False)
    sim.run_until(at(30, 23, 0))
    statuses = [s for s in sim.sent() if s.kind == "status_update"]
    assert len(statuses) == 8  # Tue 2, Thu 2, Fri 2, Mon 2; none on the weekend or holiday
    for sent in statuses:
        assert sent.at.weekday() < 5 and 9 <= sent.at.hour < 17, sent
        assert sent.at.date() != at(25, 12).date(), sent


def test_six_hour_outage_sends_one_catch_up_mail(
    make_sim: SimFactory, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    sim = make_sim(level_overrides={3: {"status_interval": "1h"}})
    key = sim.receive(
        mail(sender=ALICE, subject="Outage: our system is down", message_id="out1@acme")
    )
    assert key is not None
    sim.clock.set(at(23, 14, 10))
    sim.commands.set_state(key, "acknowledged", actor="oncall@example.com")
    sim.run_until(at(23, 16, 30))
    before = len(sim.sent())
    # The daemon is down from 16:30 to 22:30: nothing ticks.
    sim.clock.set(at(23, 22, 30))
    sim.tick()
    catch_up = sim.sent(since=at(23, 16, 31))
    assert [(s.at, s.kind) for s in catch_up] == [(at(23, 22, 30), "status_update")]
    assert "Our scheduled updates were delayed" in smtp_sink.mails[-1].text
    assert sim.case(key).next_status_due == at(23, 23, 30)
    sim.run_until(at(23, 23, 45))
    assert len(sim.sent()) == before + 2
    assert sim.sent()[-1].at == at(23, 23, 30)


def test_status_mails_stop_counting_time_while_the_clock_is_far_ahead(
    sim: Simulation, clock: FakeClock
) -> None:
    """Ticks that find nothing due send nothing, however often they run."""
    open_level_two(sim)
    count = len(sim.sent())
    for _ in range(20):
        sim.clock.advance(timedelta(seconds=5))
        sim.tick()
    assert len(sim.sent()) == count


def test_downtime_shorter_than_the_interval_still_gives_one_late_mail(
    sim: Simulation, clock: FakeClock
) -> None:
    """24x7, status every 4 h, daemon down 15:30-21:24 (issue 13, point 3)."""
    clock.set(at(23, 14, 1))
    key = sim.receive(
        mail(sender=ALICE, subject="Outage: our system is down", message_id="out1@acme")
    )
    assert key is not None
    sim.clock.set(at(23, 14, 10))
    sim.commands.set_state(key, "acknowledged", actor="oncall@example.com")
    assert sim.case(key).next_status_due == at(23, 18, 1)
    sim.run_until(at(23, 15, 30))
    # Down from 15:30 to 21:24: nothing ticks, so the 18:01 slot is missed.
    sim.clock.set(at(23, 21, 24))
    sim.tick()
    assert sim.sent(since=at(23, 15, 30)) == [Sent(at(23, 21, 24), "status_update", (ALICE,))]
    assert "Our scheduled updates were delayed" in sim.last_text("status_update")
    assert "Next update: by 01:24 UTC on Tue 24 Nov 2026" in sim.last_text("status_update")
    assert sim.case(key).next_status_due == at(24, 1, 24)

    sim.run_until(at(24, 5, 30))
    statuses = [s.at for s in sim.sent(since=at(23, 15, 30)) if s.kind == "status_update"]
    assert statuses == [at(23, 21, 24), at(24, 1, 24), at(24, 5, 24)]
    assert "delayed" not in sim.last_text("status_update")


def test_slot_missed_while_down_into_the_weekend_is_late_when_the_calendar_opens(
    make_sim: SimFactory, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    """The daemon comes back after closing time: no mail then, a late one at opening."""
    sim = make_sim(level_overrides={2: {"status_interval": "2h"}})
    clock.set(at(27, 14))  # Friday
    key = open_level_two(sim)
    sim.clock.set(at(27, 14, 10))
    owner_replies(sim, key, to_customer=False)
    assert sim.case(key).next_status_due == at(27, 16)
    sim.run_until(at(27, 15, 30))
    # Down from Fri 15:30 to Fri 19:00; the 16:00 slot is missed, and at 19:00 the
    # business calendar is closed.
    sim.clock.set(at(27, 19))
    sim.tick()
    assert sim.sent(since=at(27, 15, 30)) == []
    assert sim.case(key).next_status_due == at(30, 9)

    sim.run_until(at(30, 12))
    statuses = [s for s in sim.sent(since=at(27, 15, 30)) if s.kind == "status_update"]
    assert [s.at for s in statuses] == [at(30, 9), at(30, 11)]
    first, second = [m.text for m in smtp_sink.mails if "Next update" in m.text][-2:]
    assert "Our scheduled updates were delayed" in first
    assert "delayed" not in second
