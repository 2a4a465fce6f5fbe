"""What case mail says about time is true on business calendars (issue 13, point 5)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.cases.wording import business_duration
from gateway.clock import FakeClock
from store.db import Store
from store.models import Case
from tests.support.smtp_sink import SmtpSink
from tests.support.timeline_sim import Simulation, at, mail, timeline_config

ALICE = "alice@acme.example"
ANNA = "anna.am@example.com"
HOURS = "09:00-17:00 UTC, Monday to Friday, except holidays"


def test_friday_afternoon_acknowledgement_says_business_hours(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    sim = Simulation(store, smtp_sink, clock, timeline_config(store, smtp_sink))
    clock.set(at(27, 16, 30))  # Friday; level 2's 1 h runs out on Monday at 09:30
    sim.receive(
        mail(sender=f"Alice Example <{ALICE}>", cc=f"Anna Manager <{ANNA}>", message_id="f1@acme")
    )
    ack = sim.last_text("acknowledgement")
    assert "will contact you within 1 business hour, by 09:30 UTC on Mon 30 Nov 2026." in ack
    assert f"Response times at this level count business hours only: {HOURS}." in ack
    assert "within 1 hour" not in ack
    owner = sim.last_text("owner_notification")
    assert "by 09:30 UTC on Mon 30 Nov 2026 (within 1 business hour)" in owner

    # Nobody answers: at 09:30 the case moves to level 3, which runs 24x7.
    sim.run_until(at(30, 9, 31))
    escalated = sim.last_text("escalation_notice")
    assert "will contact you within 1 hour, by 10:30 UTC on Mon 30 Nov 2026." in escalated
    assert "then every 4 hours until the case is closed" in escalated
    assert "business hours" not in escalated


def test_a_move_between_business_levels_names_business_time(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    sim = Simulation(store, smtp_sink, clock, timeline_config(store, smtp_sink))
    key = sim.receive(mail(sender=ALICE, cc=ANNA, message_id="e1@acme"))
    assert key is not None

    def to_level_one(session: Session, case: Case, now: datetime) -> None:
        sim.commands.lifecycle.set_level(
            session,
            case,
            1,
            actor="lee.lead@example.com",
            reason="a senior agent can fix it",
            now=now,
        )

    sim.commands.on_case(key, to_level_one)
    sim.tick()  # delivers the notice
    moved = sim.last_text("escalation_notice")
    assert "within 4 business hours, by 18:00" not in moved  # never outside the calendar
    assert "within 4 business hours, by 10:00 UTC on Tue 24 Nov 2026." in moved
    assert "then every 8 business hours until the case is closed" in moved
    assert f"count business hours only: {HOURS}" in moved


def test_business_durations_are_said_in_hours_never_in_days() -> None:
    assert business_duration(timedelta(hours=1)) == "1 business hour"
    assert business_duration(timedelta(days=2)) == "48 business hours"
    assert business_duration(timedelta(minutes=90)) == "1 business hour 30 minutes"
    assert business_duration(timedelta(minutes=30)) == "30 business minutes"
