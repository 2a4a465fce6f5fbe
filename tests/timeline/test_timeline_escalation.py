"""Reminders, first-response breaches with automatic escalation, and tick robustness."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.clock import FakeClock
from gateway.timeline.due_work import DueWork
from store.models import Case
from tests.support.smtp_sink import SmtpSink
from tests.support.timeline_sim import Sent, Simulation, at, mail
from tests.timeline.conftest import SimFactory
from tests.timeline.test_timeline_status import ALICE, ANNA, LEE, open_level_two

ONCALL = "oncall@example.com"
HEAD = "head-of-support@example.com"


def at_s(day: int, hour: int, minute: int, second: int) -> datetime:
    return at(day, hour, minute).replace(second=second)


def test_owner_never_responds_reminder_breach_and_escalation(
    sim: Simulation, smtp_sink: SmtpSink
) -> None:
    key = open_level_two(sim)
    sim.run_until(at(23, 17, 5))

    assert sim.sent() == [
        Sent(at(23, 14), "owner_notification", (LEE,)),
        Sent(at(23, 14), "acknowledgement", (ALICE, ANNA)),
        # 75% of the one-hour first-response window.
        Sent(at(23, 14, 45), "owner_reminder", (LEE,)),
        # Breach at 15:00: level 3 takes over, everyone is told.
        Sent(at(23, 15), "owner_handover", (ONCALL,)),
        Sent(at(23, 15), "level_change_notice", (LEE, "support-manager@example.com")),
        Sent(at(23, 15), "escalation_notice", (ALICE, ANNA)),
        Sent(at(23, 15, 45), "owner_reminder", (ONCALL,)),
        Sent(at(23, 16), "owner_handover", (HEAD,)),
        Sent(at(23, 16), "level_change_notice", ("eng-manager@example.com", ONCALL)),
        Sent(at(23, 16), "escalation_notice", (ALICE, ANNA)),
        Sent(at_s(23, 16, 22, 30), "owner_reminder", (HEAD,)),
        # Level 4 has nobody above it: its managers hear it every 30 minutes.
        Sent(at(23, 16, 30), "breach_notice", ("coo@example.com", HEAD)),
        Sent(at(23, 17), "breach_notice", ("coo@example.com", HEAD)),
    ]
    notice = [m for m in smtp_sink.mails if m.rcpt_tos == [ALICE, ANNA]][1]
    assert "escalated automatically from level 2 to level 3" in notice.text
    assert "On-call Engineer <oncall@example.com>" in notice.text
    assert "by 16:00 UTC on Mon 23 Nov 2026" in notice.text
    why = next(m for m in smtp_sink.mails if "support-manager@example.com" in m.rcpt_tos)
    assert "did not respond by 15:00 UTC on Mon 23 Nov 2026" in why.text
    case = sim.case(key)
    assert (case.level, case.owner_email, case.state) == (4, HEAD, "open")


def test_owner_response_stops_reminder_and_breach(sim: Simulation, clock: FakeClock) -> None:
    key = open_level_two(sim)
    sim.clock.set(at(23, 14, 20))
    sim.commands.set_state(key, "acknowledged", actor=LEE, reason="called the customer")
    sim.run_until(at(23, 16, 59))
    assert [s.kind for s in sim.sent()] == ["owner_notification", "acknowledgement"]
    assert sim.case(key).state == "acknowledged"


def test_resolution_breach_tells_the_managers(make_sim: SimFactory) -> None:
    sim = make_sim(level_overrides={2: {"resolution": "2h"}})
    key = open_level_two(sim)
    sim.commands.set_state(key, "investigating", actor=LEE)
    sim.run_until(at(23, 16, 30))
    breach = [s for s in sim.sent() if s.kind == "resolution_breach"]
    assert breach == [Sent(at(23, 16), "resolution_breach", (LEE, "support-manager@example.com"))]


def test_one_failing_case_is_retried_later_and_never_stops_the_others(
    sim: Simulation, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = open_level_two(sim)
    second = sim.receive(
        mail(sender=ALICE, cc=ANNA, subject="Invoices are wrong", message_id="m2@acme")
    )
    assert second is not None
    real_run = DueWork.run

    def flaky(self: DueWork, session: object, case: Case, now: datetime) -> None:
        if case.key == first:
            raise RuntimeError("template server on fire")
        real_run(self, session, case, now)  # type: ignore[arg-type]

    monkeypatch.setattr(DueWork, "run", flaky)
    sim.clock.set(at(23, 14, 45))
    sim.tick()
    broken, healthy = sim.case(first), sim.case(second)
    assert broken.timer_failures == 1
    assert broken.timer_error == "RuntimeError: template server on fire"
    assert broken.next_timer_at == at(23, 14, 46)  # retry_initial 1 minute
    assert healthy.reminder_due is None  # its reminder went out
    sim.clock.set(at(23, 14, 46))
    sim.tick()
    assert sim.case(first).timer_failures == 2
    assert sim.case(first).next_timer_at == at(23, 14, 48)  # doubled

    monkeypatch.setattr(DueWork, "run", real_run)
    sim.clock.set(at(23, 14, 48))
    sim.tick()
    recovered = sim.case(first)
    assert (recovered.timer_failures, recovered.timer_error) == (0, None)
    reminders = [s for s in sim.sent() if s.kind == "owner_reminder"]
    assert [r.at for r in reminders] == [at(23, 14, 45), at(23, 14, 48)]
