"""End to end through the real SMTP listener, the real store and a real SMTP sink."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from gateway.clock import FakeClock
from store.db import Store
from store.models import InboundItem, OutboxMail
from tests.conftest import make_config
from tests.support.gateway import Gateway, only
from tests.support.mails import build_mail
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import wait_until


def test_customer_copying_account_manager_gets_owner_and_timeline(gateway: Gateway) -> None:
    gateway.send(
        build_mail(cc="Anna Manager <anna.am@example.com>", subject="Invoice export broken"),
        rcpt=("support@example.com",),
    )
    gateway.settle()

    [case] = gateway.cases()
    assert (case.key, case.level, case.account) == ("ESC-000001", 2, "Acme Corp")
    assert case.owner_email == "lee.lead@example.com"  # Acme's named lead owns level 2

    ack = only(gateway.sink.to("alice@acme.example"))
    assert ack.subject == "[ESC-000001] Invoice export broken"
    assert ack.message["Auto-Submitted"] == "auto-replied"
    assert "anna.am@example.com" in ack.rcpt_tos  # the account manager stays in copy
    # Monday 14:00 UTC received, level 2 target 1 business hour.
    assert "Lee Lead <lee.lead@example.com>" in ack.text
    assert "within 1 business hour, by 15:00 UTC on Mon 23 Nov 2026" in ack.text
    assert "status update from us by 22:00 UTC" not in ack.text  # outside business hours
    assert "status update from us by 14:00 UTC on Tue 24 Nov 2026" in ack.text

    note = only(gateway.sink.to("lee.lead@example.com"))
    assert "Account:  Acme Corp" in note.text
    assert "account-manager-copied (level 2)" in note.text
    assert "Cc has anna.am@example.com" in note.text
    assert "15:00 UTC on Mon 23 Nov 2026" in note.text
    assert "the invoice export fails since this morning" in note.text

    [opened] = [e for e in gateway.events(case) if e.kind == "opened"]
    assert opened.data["decision"]["fired"][0]["rule"] == "account-manager-copied"


def test_urgent_subject_opens_level_4(gateway: Gateway) -> None:
    gateway.send(build_mail(subject="URGENT: nobody can log in"))
    gateway.settle()
    [case] = gateway.cases()
    assert case.level == 4
    assert case.owner_email == "head-of-support@example.com"
    ack = only(gateway.sink.to("alice@acme.example"))
    assert "level 4 (Executive team)" in ack.text
    assert "within 30 minutes, by 14:30 UTC on Mon 23 Nov 2026" in ack.text


TEMPLATE_BODY = """Hi team,

**Priority:** High
**Customer:** Acme Corp
**Ticket #:** 4711
**Issue Summary:** Exports time out for every user since the 2.3 upgrade.
**Steps Taken:** Cleared caches, reproduced on staging.
**Customer Impact:** Finance cannot close the month.
**Customer Expectation:** Fix or workaround by Friday.
**Additional Context:** Started after maintenance window.
"""


def send_agent_template(gateway: Gateway, sender: str) -> None:
    """Sam, an agent of ours, escalates ticket 4711 with the filled-in template."""
    gateway.send(
        build_mail(
            sender=sender,
            subject="ESCALATION - Exports time out - Ticket #4711",
            body=TEMPLATE_BODY,
        ),
        mail_from="sam.agent@example.com",
    )


def test_agent_template_opens_case_with_fields(gateway: Gateway) -> None:
    send_agent_template(gateway, "Sam Agent <sam.agent@example.com>")
    gateway.settle()
    [case] = gateway.cases()
    assert case.level == 3  # High -> 3 by the default priority map
    assert case.ticket == "4711"
    assert case.account == "Acme Corp"  # from the template's Customer field
    assert case.fields["customer_impact"] == "Finance cannot close the month."
    assert case.fields["steps_taken"] == "Cleared caches, reproduced on staging."
    assert [m.message["X-Escalation-Gateway-Case"] for m in gateway.sink.mails] == [
        "ESC-000001",
        "ESC-000001",
    ]
    owner_note = only(gateway.sink.to("oncall@example.com"))
    assert "Customer Impact: Finance cannot close the month." in owner_note.text
    assert not any("missing" in m.text for m in gateway.sink.mails)


def test_incomplete_template_still_opens_and_names_missing_fields(gateway: Gateway) -> None:
    gateway.send(
        build_mail(
            sender="Sam Agent <sam.agent@example.com>",
            subject="ESCALATION - Login loop - Ticket #815",
            body="Priority: Medium\nIssue Summary: Users bounce back to the login page.\n",
        ),
        mail_from="sam.agent@example.com",
    )
    gateway.settle()
    [case] = gateway.cases()
    assert (case.level, case.ticket) == (2, "815")
    to_agent = gateway.sink.to("sam.agent@example.com")
    assert len(to_agent) == 2
    incomplete = next(m for m in to_agent if "is missing" in m.text)
    assert "- Customer\n" in incomplete.text
    assert "- Customer Impact\n" in incomplete.text
    assert "Issue Summary" not in incomplete.text.split("is missing")[1].split("Please")[0]


def test_replies_thread_and_upgrade_but_never_downgrade(gateway: Gateway) -> None:
    first = build_mail(cc="anna.am@example.com", subject="Reports are empty")
    gateway.send(first)
    gateway.settle()
    ack = only(gateway.sink.to("alice@acme.example"))
    ack_id = ack.message["Message-ID"]

    # German Outlook: "AW:" prefix, threads by In-Reply-To to our acknowledgement.
    gateway.send(
        build_mail(
            subject="AW: [ESC-000001] Reports are empty",
            in_reply_to=ack_id,
            body="Still empty here.",
        )
    )
    # A client that drops References but keeps the tag in the subject.
    gateway.send(build_mail(subject="RE: RE: [ESC-000001] Reports are empty", body="Any news?"))
    gateway.settle()
    [case] = gateway.cases()
    assert case.level == 2
    with gateway.store.session() as session:
        decisions = list(session.scalars(select(InboundItem.decision).order_by(InboundItem.id)))
    assert decisions == ["open", "attach", "attach"]

    # A stronger signal upgrades: new owner for level 4, customer and owner told.
    gateway.send(
        build_mail(
            subject="URGENT RE: [ESC-000001] Reports are empty",
            in_reply_to=ack_id,
            body="We lose money every hour.",
        )
    )
    gateway.settle()
    [case] = gateway.cases()
    assert (case.level, case.owner_email) == (4, "head-of-support@example.com")
    notice = [m for m in gateway.sink.to("alice@acme.example") if "raised" in m.text]
    assert len(notice) == 1
    assert "from level 2 to level 4" in notice[0].text
    assert "Head of Support <head-of-support@example.com>" in notice[0].text
    owner = only(gateway.sink.to("head-of-support@example.com"))
    assert "upgraded from level 2 to level 4" in owner.text

    # A weaker signal on the same thread does not downgrade.
    gateway.send(
        build_mail(
            cc="anna.am@example.com",
            subject="Re: [ESC-000001] Reports are empty",
            body="Copying Anna again.",
        )
    )
    gateway.settle()
    [case] = gateway.cases()
    assert case.level == 4
    kinds = [e.kind for e in gateway.events(case)]
    assert kinds == ["opened", "mail_attached", "mail_attached", "upgraded", "mail_attached"]


def test_outlook_rewritten_subject_threads_by_ticket(gateway: Gateway) -> None:
    send_agent_template(gateway, "sam.agent@example.com")
    gateway.settle()
    gateway.send(build_mail(subject="WG: Ticket #4711 exports still failing", body="FYI"))
    gateway.settle()
    [case] = gateway.cases()
    with gateway.store.session() as session:
        item = session.scalars(select(InboundItem).order_by(InboundItem.id.desc())).first()
    assert item is not None
    assert (item.decision, item.case_id) == ("attach", case.id)
    assert item.explanation is not None
    assert "same ticket #4711" in item.explanation["threaded_by"]


def test_unknown_recipient_is_refused_with_550(gateway: Gateway) -> None:
    with smtplib.SMTP("127.0.0.1", gateway.port) as client:
        client.ehlo()
        client.mail("alice@acme.example")
        code, message = client.rcpt("someone@elsewhere.example")
        assert code == 550
        assert b"not accepted" in message
        assert client.rcpt("support+ESC-1@example.com")[0] == 250


def test_oversized_mail_is_refused_with_552(gateway: Gateway) -> None:
    raw = build_mail(body="x" * 300_000)
    with pytest.raises(smtplib.SMTPResponseException) as refused:
        gateway.send(raw)
    assert refused.value.smtp_code == 552
    with gateway.store.session() as session:
        assert session.scalar(select(func.count()).select_from(InboundItem)) == 0


def test_store_failure_answers_451_and_retry_succeeds(gateway: Gateway) -> None:
    with gateway.store.engine.begin() as connection:
        connection.execute(text("ALTER TABLE inbound_items RENAME TO inbound_items_away"))
    try:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            gateway.send(build_mail(subject="URGENT: lost?"))
        assert refused.value.smtp_code == 451
    finally:
        with gateway.store.engine.begin() as connection:
            connection.execute(text("ALTER TABLE inbound_items_away RENAME TO inbound_items"))
    gateway.send(build_mail(subject="URGENT: lost?"))  # the sending server's retry
    gateway.settle()
    assert len(gateway.cases()) == 1


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "alice@acme.example", "Auto-Submitted"),
        ({"Precedence": "bulk"}, "alice@acme.example", "Precedence"),
        ({"List-Id": "<ops.acme.example>"}, "alice@acme.example", "List"),
        ({"X-Autoreply": "yes"}, "alice@acme.example", "X-Autoreply"),
        ({}, "MAILER-DAEMON@acme.example", "mailer-daemon"),
        ({}, "support@example.com", "gateway"),
    ],
)
def test_automatic_mail_never_gets_a_reply(
    gateway: Gateway, headers: dict[str, str], sender: str, reason: str
) -> None:
    gateway.send(build_mail(sender=sender, subject="URGENT: out of office", headers=headers))
    gateway.settle()
    assert gateway.cases() == []
    assert gateway.sink.mails == []
    with gateway.store.session() as session:
        item = session.scalars(select(InboundItem)).one()
    assert item.decision == "suppress"
    assert item.explanation is not None
    assert reason.lower() in item.explanation["auto_reply_blocked"].lower()


def test_bounce_with_empty_return_path_is_suppressed(gateway: Gateway) -> None:
    gateway.send(build_mail(subject="URGENT: delivery"), mail_from="")
    gateway.settle()
    assert gateway.cases() == []
    assert gateway.sink.mails == []


def test_auto_reply_to_our_case_is_attached_silently(gateway: Gateway) -> None:
    gateway.send(build_mail(subject="URGENT: export broken"))
    gateway.settle()
    ack = only(gateway.sink.to("alice@acme.example"))
    gateway.send(
        build_mail(
            subject="Automatic reply: [ESC-000001] URGENT: export broken",
            in_reply_to=ack.message["Message-ID"],
            headers={"Auto-Submitted": "auto-replied"},
        )
    )
    gateway.settle()
    assert len(gateway.sink.mails) == 2  # nothing new went out
    with gateway.store.session() as session:
        decisions = list(session.scalars(select(InboundItem.decision).order_by(InboundItem.id)))
    assert decisions == ["open", "attach"]


def test_per_address_cap_limits_automatic_mail(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock
) -> None:
    config = make_config(store, smtp_sink, auto_reply={"max_per_address_per_hour": 2})
    gw = Gateway(config, store, smtp_sink, clock)
    gw.daemon.start()
    try:
        for n in range(4):
            gw.send(build_mail(subject=f"URGENT: problem {n}"))
        gw.settle()
        assert len(gw.cases()) == 4
        assert len(gw.sink.to("alice@acme.example")) == 2
        capped = [e for c in gw.cases() for e in gw.events(c) if e.kind == "reply_suppressed"]
        assert len(capped) == 2
        assert "cap of 2 automatic mails per address per hour" in capped[0].detail
        clock.advance(timedelta(hours=1, minutes=1))
        gw.send(build_mail(subject="URGENT: problem after an hour"))
        gw.settle()
        assert len(gw.sink.to("alice@acme.example")) == 3
    finally:
        gw.daemon.stop()


def test_failed_smarthost_delivery_is_retried(gateway: Gateway) -> None:
    gateway.sink.refuse_with = "451 4.3.0 try later"
    gateway.send(build_mail(subject="URGENT: retry me"))

    def attempted() -> bool:
        with gateway.store.session() as session:
            return bool(session.scalar(select(func.min(OutboxMail.attempts))))

    wait_until(attempted, what="first delivery attempt")
    with gateway.store.session() as session:
        mails = list(session.scalars(select(OutboxMail)))
    assert {m.state for m in mails} == {"pending"}
    assert all("451" in (m.last_error or "") for m in mails)
    gateway.sink.refuse_with = None
    gateway.clock.advance(timedelta(seconds=5))
    gateway.daemon.notify_stored()
    gateway.sink.wait_for(2)
    gateway.settle()
