"""De-escalation: monitoring after resolve, quiet close, recurrence, confirmation, pause."""

from __future__ import annotations

from datetime import timedelta

from gateway.clock import FakeClock
from tests.support.smtp_sink import SmtpSink
from tests.support.timeline_sim import Sent, Simulation, at, mail
from tests.timeline.conftest import SimFactory
from tests.timeline.test_timeline_status import ALICE, ANNA, LEE, open_level_two, owner_replies


def resolved_case(sim: Simulation) -> str:
    key = open_level_two(sim)
    owner_replies(sim, key, to_customer=False)
    sim.run_until(at(24, 10, 0))
    sim.commands.note(key, "We rolled back the faulty payment release.", actor=LEE)
    sim.commands.set_state(key, "resolved", actor=LEE, reason="Rolled back the release.")
    return key


def customer_reply(sim: Simulation, key: str, body: str, message_id: str) -> None:
    sim.receive(
        mail(
            sender=ALICE,
            cc=ANNA,
            subject=f"Re: [{key}] Checkout is failing for all our users",
            body=body,
            message_id=message_id,
            in_reply_to=sim.message_id_of("resolution_notice"),
        )
    )


def test_resolve_monitor_then_quiet_close(sim: Simulation, smtp_sink: SmtpSink) -> None:
    key = resolved_case(sim)
    case = sim.case(key)
    assert case.state == "monitoring"
    assert case.monitoring_until == at(26, 10)  # 48 hours

    sim.run_until(at(27, 12))
    customer_mail = [s for s in sim.sent() if s.to == (ALICE, ANNA)]
    assert customer_mail[1:] == [
        Sent(at(24, 10), "status_update", (ALICE, ANNA)),
        Sent(at(24, 10), "resolution_notice", (ALICE, ANNA)),
        Sent(at(24, 14), "status_update", (ALICE, ANNA)),
        # Thu 10:00 is both the next status slot and the end of monitoring: one mail.
        Sent(at(26, 10), "closing", (ALICE, ANNA)),
    ]
    closed = sim.case(key)
    assert closed.state == "closed" and closed.closed_at == at(26, 10)
    assert closed.next_timer_at is None
    closing = smtp_sink.mails[-1].text
    assert "has held throughout our monitoring period" in closing
    assert "We rolled back the faulty payment release." in closing
    assert "If anything remains, reply to this email within 7 days" in closing


def test_recurrence_during_monitoring_reopens_with_a_new_owner_deadline(
    sim: Simulation, smtp_sink: SmtpSink
) -> None:
    key = resolved_case(sim)
    sim.run_until(at(24, 15))
    customer_reply(sim, key, "Sorry, the problem is back since 14:50.", "back1@acme")
    case = sim.case(key)
    assert (case.state, case.level, case.owner_email) == ("open", 2, LEE)
    assert case.first_response_due == at(24, 16)
    assert case.monitoring_until is None and case.resolved_at is None
    assert sim.sent(since=at(24, 15)) == [
        Sent(at(24, 15), "owner_handover", (LEE,)),
        Sent(at(24, 15), "reopen_notice", (ALICE, ANNA)),
        # The owner also reads the customer's own words, and what they did.
        Sent(at(24, 15), "customer_reply_notice", (LEE,)),
    ]
    notice = smtp_sink.mails[-1]
    assert "the case went from monitoring to open" in notice.text
    # The owner deadline is real again: no response means a reminder at 15:45.
    sim.run_until(at(24, 15, 50))
    assert sim.sent()[-1] == Sent(at(24, 15, 45), "owner_reminder", (LEE,))


def test_customer_confirmation_closes_early(
    sim: Simulation, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    key = resolved_case(sim)
    sim.clock.advance(timedelta(minutes=30))
    customer_reply(sim, key, "All good on our side, you can close it. Thanks!", "ok1@acme")
    case = sim.case(key)
    assert case.state == "closed" and case.closed_at == at(24, 10, 30)
    assert sim.sent()[-2:] == [
        Sent(at(24, 10, 30), "closing", (ALICE, ANNA)),
        Sent(at(24, 10, 30), "customer_reply_notice", (LEE,)),
    ]
    assert any("Thank you for confirming" in m.text for m in smtp_sink.mails)


def test_not_resolved_is_not_a_confirmation(sim: Simulation) -> None:
    key = resolved_case(sim)
    customer_reply(sim, key, "It is not resolved for our EU shop.", "nr1@acme")
    assert sim.case(key).state == "open"


def test_waiting_on_customer_pauses_the_resolution_clock(
    make_sim: SimFactory, clock: FakeClock
) -> None:
    sim = make_sim(level_overrides={2: {"resolution": "3h"}})
    key = open_level_two(sim)
    owner_replies(sim, key, to_customer=False)
    assert sim.case(key).resolution_due == at(23, 17)
    sim.clock.set(at(23, 15))
    sim.commands.set_state(key, "waiting_on_customer", actor=LEE, reason="need HAR file")
    assert sim.case(key).paused_at == at(23, 15)

    sim.run_until(at(24, 11))  # past the original target: paused, so no breach
    assert not [s for s in sim.sent() if s.kind == "resolution_breach"]
    customer_reply_at = at(24, 11)
    sim.receive(
        mail(
            sender=ALICE,
            cc=ANNA,
            subject=f"Re: [{key}] Checkout is failing for all our users",
            body="Here is the HAR file you asked for.",
            message_id="har@acme",
            in_reply_to=sim.message_id_of("acknowledgement"),
            date=customer_reply_at,
        )
    )
    case = sim.case(key)
    assert case.state == "investigating" and case.paused_at is None
    # Paused 2h on Monday and 2h on Tuesday (business time): the target moves by 4h.
    assert case.paused_seconds == 4 * 3600
    assert case.resolution_due == at(24, 13)
    sim.run_until(at(24, 13, 30))
    breach = [s for s in sim.sent() if s.kind == "resolution_breach"]
    assert [b.at for b in breach] == [at(24, 13)]
