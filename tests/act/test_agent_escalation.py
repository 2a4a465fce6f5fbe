"""An agent's escalation template opens the customer's case (issue 13, point 6).

The agent is one of ours (our own domain); the template's Customer field names the
customer. The owner hears who the customer is and who escalated; the agent gets an
agent's acknowledgement and stays informed; the customer, when the template gives an
address, gets the customer's mail.
"""

from __future__ import annotations

from sqlalchemy import select

from gateway.cases.agents import OurPeople, customer_from_field
from gateway.clock import FakeClock
from gateway.config import GatewayConfig
from store.db import Store
from store.models import Case
from tests.support.smtp_sink import SmtpSink
from tests.support.timeline_sim import Simulation, at, mail, timeline_config

SAM = "sam.agent@example.com"
BOB = "bob@acme.example"
ONCALL = "oncall@example.com"


def template(customer: str) -> str:
    return (
        "Hi team,\n\n"
        "Priority: High\n"
        f"Customer: {customer}\n"
        "Ticket #: 4711\n"
        "Issue Summary: Exports time out for every user since the 2.3 upgrade.\n"
        "Steps Taken: Cleared caches, reproduced on staging.\n"
        "Customer Impact: Finance cannot close the month.\n"
        "Customer Expectation: A workaround by Friday.\n\n"
        "Thanks,\nSam\n"
    )


def escalate(sim: Simulation, customer: str) -> Case:
    key = sim.receive(
        mail(
            sender=f"Sam Agent <{SAM}>",
            subject="ESCALATION - Exports time out - Ticket #4711",
            body=template(customer),
            message_id="tpl1@example.com",
        )
    )
    assert key is not None
    return sim.case(key)


def test_agent_escalation_with_a_customer_address(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    sim = Simulation(store, smtp_sink, clock, timeline_config(store, smtp_sink))
    case = escalate(sim, f"Bob Buyer <{BOB}>")
    assert (case.customer_name, case.customer_email, case.account) == (
        "Bob Buyer",
        BOB,
        "Acme Corp",
    )
    assert (case.level, case.owner_email) == (3, ONCALL)  # High -> level 3

    sent = {(s.kind, s.to) for s in sim.sent()}
    assert sent == {
        ("owner_notification", (ONCALL,)),
        ("agent_acknowledgement", (SAM,)),
        ("acknowledgement", (BOB,)),
    }
    owner = sim.last_text("owner_notification")
    assert f"Customer: Bob Buyer <{BOB}>" in owner
    assert f"Agent:    Sam Agent <{SAM}> (escalated it for the customer" in owner
    assert "Account:  Acme Corp" in owner
    ack = sim.last_text("agent_acknowledgement")
    assert ack.startswith("Hello Sam Agent,")
    assert "You remain the customer's point of contact." in ack
    assert f"We have acknowledged the case to Bob Buyer <{BOB}>" in ack
    assert sim.last_text("acknowledgement").startswith("Hello Bob Buyer,")

    # The customer's status mail goes to Bob with Sam in copy.
    sim.commands.set_state(case.key or "", "acknowledged", actor=ONCALL)
    sim.run_until(at(23, 18, 1))
    status = [s for s in sim.sent() if s.kind == "status_update"]
    assert [s.to for s in status] == [tuple(sorted((BOB, SAM)))]
    assert sim.last_text("status_update").startswith("Hello Bob Buyer,")


def test_agent_escalation_naming_the_customer_only(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    sim = Simulation(store, smtp_sink, clock, timeline_config(store, smtp_sink))
    case = escalate(sim, "Acme Corp")
    assert (case.customer_name, case.customer_email, case.account) == ("Acme Corp", "", "Acme Corp")
    assert {(s.kind, s.to) for s in sim.sent()} == {
        ("owner_notification", (ONCALL,)),
        ("agent_acknowledgement", (SAM,)),
    }
    assert "Customer: Acme Corp\n" in sim.last_text("owner_notification")
    ack = sim.last_text("agent_acknowledgement")
    assert "so their updates come to you: the first by 18:00 UTC on Mon 23 Nov 2026" in ack

    # Sam, the customer's point of contact, gets the customer's updates.
    sim.commands.set_state(case.key or "", "acknowledged", actor=ONCALL)
    sim.run_until(at(23, 18, 1))
    assert [(s.kind, s.to) for s in sim.sent() if s.kind == "status_update"] == [
        ("status_update", (SAM,))
    ]
    status = sim.last_text("status_update")
    assert status.startswith("Hello Sam Agent,")
    assert "You get this as the agent who escalated the case for Acme Corp" in status

    # Sam's reply on the case is the customer side's: the owner hears of it.
    sim.receive(
        mail(
            sender=f"Sam Agent <{SAM}>",
            subject=f"Re: [{case.key}] Exports time out",
            body="The customer says the export of March still fails.",
            message_id="sam2@example.com",
            in_reply_to=sim.message_id_of("status_update"),
        )
    )
    assert "the export of March still fails" in sim.last_text("customer_reply_notice")


def test_a_customer_sending_the_template_is_still_the_customer(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    sim = Simulation(store, smtp_sink, clock, timeline_config(store, smtp_sink))
    key = sim.receive(
        mail(
            sender=f"Bob Buyer <{BOB}>",
            subject="ESCALATION - Exports time out - Ticket #4711",
            body=template("Acme Corp"),
            message_id="tpl2@acme.example",
        )
    )
    assert key is not None
    with store.session() as session:
        case = session.scalar(select(Case).where(Case.key == key))
    assert case is not None and case.customer_email == BOB
    assert {s.kind for s in sim.sent()} == {"owner_notification", "acknowledgement"}


def test_who_is_ours_and_what_the_customer_field_holds(store: Store) -> None:
    config: GatewayConfig = timeline_config(store, SmtpSink())
    ours = OurPeople.build(config)
    assert ours.is_ours(SAM) and ours.is_ours("someone@eu.example.com")
    assert ours.is_ours("lee.lead@example.com")  # Acme's named lead
    assert not ours.is_ours(BOB) and not ours.is_ours("x@notexample.com")
    assert customer_from_field(f"Acme Corp ({BOB})") == customer_from_field(f"Acme Corp <{BOB}>")
    assert customer_from_field(f"Acme Corp ({BOB})").name == "Acme Corp"
    assert customer_from_field("Acme Corp").email == ""
