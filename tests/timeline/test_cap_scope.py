"""The per-address cap brakes replies to inbound mail, never the mail a case promised.

Issue 13, point 4: a customer with two cases lost the escalation notice, the
resolution notice, status mails and the closing mail (the account manager too),
while the audit said `status_sent`.
"""

from __future__ import annotations

from sqlalchemy import select

from gateway.clock import FakeClock
from store.db import Store
from store.models import AutoReplyLog, Case, CaseEvent, OutboxMail
from tests.support.smtp_sink import SmtpSink
from tests.support.timeline_sim import Simulation, at, mail
from tests.timeline.conftest import SimFactory

ALICE = "alice@acme.example"
ANNA = "anna.am@example.com"
HEAD = "head-of-support@example.com"


def delivered(sim: Simulation, smtp_sink: SmtpSink) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Per case key, each mail that reached the sink: (kind, recipients)."""
    rows = {m.message_id: m for m in sim.outbox()}
    with sim.store.session() as session:
        keys = {case_id: key for case_id, key in session.execute(select(Case.id, Case.key))}
    result: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for received in smtp_sink.wait_for(len(rows)):
        row = rows[str(received.message["Message-ID"]).strip().strip("<>")]
        key = keys[row.case_id or 0] or ""
        result.setdefault(key, []).append((row.kind, tuple(sorted(received.rcpt_tos))))
    return result


def test_a_customer_with_two_cases_gets_every_promised_mail(
    make_sim: SimFactory, store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    sim = make_sim(reply_cap=1)
    # Case A: urgent, with Acme's account manager copied (level 4, status every 2 h).
    checkout = sim.receive(
        mail(
            sender=f"Alice Example <{ALICE}>",
            cc=f"Anna Manager <{ANNA}>",
            subject="URGENT: checkout down",
            message_id="a1@acme",
        )
    )
    clock.set(at(23, 14, 10))
    # Case B: an outage (level 3); its acknowledgement answers Alice's second mail
    # within the hour, so the cap holds it back.
    outage = sim.receive(
        mail(sender=ALICE, subject="Outage: our system is down", message_id="b1@acme")
    )
    assert checkout is not None and outage is not None
    clock.set(at(23, 14, 15))
    sim.commands.set_state(checkout, "acknowledged", actor=HEAD)
    # B's owner never answers: at 15:10 it escalates to level 4.
    sim.run_until(at(23, 16))
    sim.commands.set_state(outage, "acknowledged", actor=HEAD)
    sim.run_until(at(23, 17, 30))
    sim.commands.set_state(checkout, "resolved", actor=HEAD)
    # A's 48 h of monitoring end on Wed 25 Nov at 17:30 with the closing mail.
    sim.run_until(at(25, 18))

    mails = delivered(sim, smtp_sink)
    both = (ALICE, ANNA)
    a_kinds = [kind for kind, to in mails[checkout] if to == both]
    assert a_kinds[:3] == ["acknowledgement", "status_update", "resolution_notice"]
    assert a_kinds[-1] == "closing"
    # From 17:30 Mon to 17:30 Wed, every 2 h.
    assert a_kinds[3:-1] == ["status_update"] * 23
    b_kinds = [kind for kind, to in mails[outage] if to == (ALICE,)]
    assert b_kinds[0] == "escalation_notice"
    assert b_kinds[1:] == ["status_update"] * b_kinds[1:].count("status_update")
    assert len(b_kinds) > 20

    with store.session() as session:
        events = session.execute(
            select(CaseEvent.case_id, CaseEvent.kind, CaseEvent.detail, CaseEvent.data).where(
                CaseEvent.kind.in_(("status_sent", "reply_suppressed"))
            )
        ).all()
        outbox = {m.id: m for m in session.scalars(select(OutboxMail))}
        logged = session.execute(select(AutoReplyLog.address, AutoReplyLog.at)).all()
        case_b = session.scalar(select(Case).where(Case.key == outage))
    assert case_b is not None
    # Held back: B's acknowledgement alone, recorded as held, never as sent.
    held = [e for e in events if e.kind == "reply_suppressed"]
    assert [(e.case_id, e.detail.split(" not sent")[0]) for e in held] == [
        (case_b.id, f"acknowledgement to {ALICE}")
    ]
    assert not [
        m for m in outbox.values() if m.case_id == case_b.id and m.kind == "acknowledgement"
    ]
    # Every status_sent names a stored status mail that was delivered.
    status_events = [e for e in events if e.kind == "status_sent"]
    assert len(status_events) == a_kinds.count("status_update") + b_kinds.count("status_update")
    for event in status_events:
        sent = outbox[event.data["outbox_id"]]
        assert (sent.case_id, sent.kind, sent.state) == (event.case_id, "status_update", "sent")
    # Only the replies to Alice's mail counted against her cap.
    assert logged == [(ALICE, at(23, 14))]
