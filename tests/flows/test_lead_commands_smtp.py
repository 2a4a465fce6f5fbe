"""Leads steer cases by replying to gateway mail, through the real SMTP listener.

Every test opens a case the way a customer would (CC'ing Acme's account manager, so
Acme's named lead Lee owns it at level 2), then replies as a lead, a forger, another
case's lead or a customer.
"""

from __future__ import annotations

import email
from datetime import timedelta

import pytest
from sqlalchemy import select

from store.models import Case
from tests.support.gateway import Gateway, only
from tests.support.mails import build_mail
from tests.support.smtp_sink import ReceivedMail

LEE = "lee.lead@example.com"
ALICE = "alice@acme.example"

OUTLOOK_HTML_REPLY = """\
<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head>
<body lang="EN-US"><div class="WordSection1">
<p class="MsoNormal">Status: Investigating<o:p></o:p></p>
<p class="MsoNormal">Note: We found the cause in the export job and are testing a fix.
<o:p></o:p></p>
<p class="MsoNormal">ETA: 4h<o:p></o:p></p>
<p class="MsoNormal">send: now<o:p></o:p></p>
<p class="MsoNormal"><o:p>&nbsp;</o:p></p>
<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in">
<p class="MsoNormal"><b>From:</b> Support escalations &lt;support@example.com&gt;<br>
<b>Sent:</b> Monday, November 23, 2026 2:00 PM<br>
<b>To:</b> Lee Lead &lt;lee.lead@example.com&gt;<br>
<b>Subject:</b> [ESC-000001] Invoice export broken</p></div>
<p class="MsoNormal">You own a new escalation: ESC-000001.</p>
<p class="MsoNormal">level: 4</p>
<p class="MsoNormal">status: resolved</p>
</div></body></html>
"""


def open_case(gateway: Gateway, subject: str = "Invoice export broken") -> ReceivedMail:
    """Open a level-2 case owned by Lee; return Lee's notification (with the token)."""
    before = len(gateway.sink.to(LEE))
    gateway.send(build_mail(cc="Anna Manager <anna.am@example.com>", subject=subject))
    gateway.settle()
    notes = gateway.sink.to(LEE)
    assert len(notes) == before + 1
    return notes[-1]


def lead_reply(
    answered: ReceivedMail,
    body: str,
    *,
    sender: str = f"Lee Lead <{LEE}>",
    html: str | None = None,
    to: str | None = None,
    cc: str | None = None,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A reply to one of our mails, as a mail client writes it."""
    return build_mail(
        sender=sender,
        to=to or str(answered.message["Reply-To"]),
        cc=cc,
        subject=f"RE: {answered.subject}",
        in_reply_to=str(answered.message["Message-ID"]),
        references=str(answered.message["Message-ID"]),
        body=body,
        html=html,
        message_id=message_id,
        headers=headers,
    )


def case(gateway: Gateway, key: str = "ESC-000001") -> Case:
    with gateway.store.session() as session:
        found = session.scalar(select(Case).where(Case.key == key))
    assert found is not None
    return found


def event_kinds(gateway: Gateway, key: str = "ESC-000001") -> list[str]:
    return [e.kind for e in gateway.events(case(gateway, key))]


def send_as(gateway: Gateway, raw: bytes, mail_from: str, rcpt: str) -> None:
    gateway.send(raw, mail_from=mail_from, rcpt=(rcpt,))
    gateway.settle()


def test_outlook_html_reply_applies_commands_confirms_and_tells_customer(
    gateway: Gateway,
) -> None:
    notification = open_case(gateway)
    reply_to = str(notification.message["Reply-To"])
    assert reply_to.startswith("support+ESC-000001.")
    assert "ESC-000001." in str(notification.message["Message-ID"])
    customer_before = len(gateway.sink.to(ALICE))
    gateway.clock.advance(timedelta(minutes=20))

    raw = lead_reply(notification, "", html=OUTLOOK_HTML_REPLY)
    send_as(gateway, raw, LEE, reply_to)

    current = case(gateway)
    assert current.state == "investigating"  # not "resolved" from the quoted history
    assert current.level == 2  # the quoted "level: 4" is history, not a command
    assert current.first_responded_at is not None
    assert current.eta is not None
    assert current.eta - gateway.clock.now() == timedelta(hours=4)

    confirmation = gateway.sink.to(LEE)[-1]
    assert "Your reply on ESC-000001 was read." in confirmation.text
    # The confirmation answers the lead's own reply, so it sits under it in their client.
    lead_id = email.message_from_bytes(raw)["Message-ID"]
    assert confirmation.message["In-Reply-To"] == lead_id
    assert "status is now investigating" in confirmation.text
    assert "public note sent to the customer now" in confirmation.text
    assert "ETA set to 18:20 UTC on Mon 23 Nov 2026" in confirmation.text
    assert "Not done" not in confirmation.text

    [update] = gateway.sink.to(ALICE)[customer_before:]
    assert "We found the cause in the export job and are testing a fix." in update.text
    assert "Expected fix: by 18:20 UTC on Mon 23 Nov 2026" in update.text
    assert "Status:  being investigated" in update.text
    assert "ESC-000001." not in str(update.message)  # the token never reaches customers


def test_forged_from_without_token_changes_nothing_and_gets_one_refusal(
    gateway: Gateway,
) -> None:
    open_case(gateway)
    before = case(gateway)
    for n in range(2):
        forged = build_mail(
            sender=f"Lee Lead <{LEE}>",
            subject="Re: [ESC-000001] Invoice export broken",
            body=f"level: 4\nresolve\nattempt {n}\n",
        )
        send_as(gateway, forged, LEE, "support@example.com")
    after = case(gateway)
    assert (after.state, after.level, after.owner_email) == (
        before.state,
        before.level,
        before.owner_email,
    )
    refusals = [m for m in gateway.sink.to(LEE) if "was not applied" in m.text]
    assert len(refusals) == 1
    assert "no valid ESC-000001 reply token" in refusals[0].text
    assert event_kinds(gateway).count("command_refused") == 2


def test_token_of_another_case_is_refused(gateway: Gateway) -> None:
    first = open_case(gateway, "Invoice export broken")
    open_case(gateway, "Reports are empty")
    # Lee answers case 2's thread but with case 1's token address.
    hijack = build_mail(
        sender=f"Lee Lead <{LEE}>",
        to=str(first.message["Reply-To"]),
        subject="Re: [ESC-000002] Reports are empty",
        body="resolve\n",
    )
    send_as(gateway, hijack, LEE, str(first.message["Reply-To"]))
    assert case(gateway, "ESC-000002").state == "open"
    [refused] = [
        e for e in gateway.events(case(gateway, "ESC-000002")) if e.kind == "command_refused"
    ]
    assert "carries the token of ESC-000001, not of ESC-000002" in refused.detail


def test_non_lead_with_valid_token_is_refused(gateway: Gateway) -> None:
    notification = open_case(gateway)
    # Someone the notification was forwarded to, who holds no role on the case.
    raw = lead_reply(notification, "resolve\n", sender="Intern <intern@example.com>")
    send_as(gateway, raw, "intern@example.com", str(notification.message["Reply-To"]))
    assert case(gateway).state == "open"
    # Not on the case, so not told anything about it: the refusal is only recorded.
    assert gateway.sink.to("intern@example.com") == []
    [refused] = [e for e in gateway.events(case(gateway)) if e.kind == "command_refused"]
    assert "intern@example.com holds no lead role on ESC-000001" in refused.detail


def test_customer_status_line_is_just_text(gateway: Gateway) -> None:
    open_case(gateway)
    ack = gateway.sink.to(ALICE)[0]
    reply = build_mail(
        subject="Re: [ESC-000001] Invoice export broken",
        in_reply_to=str(ack.message["Message-ID"]),
        body="status: resolved\nlevel: 1\nPlease hurry, month end is Friday.\n",
    )
    send_as(gateway, reply, ALICE, "support@example.com")
    current = case(gateway)
    assert (current.state, current.level) == ("open", 2)
    assert "command_reply" not in event_kinds(gateway)
    notice = gateway.sink.to(LEE)[-1]
    assert "alice@acme.example replied on ESC-000001" in notice.text
    assert "status: resolved" in notice.text
    assert "Please hurry, month end is Friday." in notice.text


def test_mixed_valid_and_invalid_commands(gateway: Gateway) -> None:
    notification = open_case(gateway)
    body = (
        "ack\n"
        "level: 5\n"
        "owner: nobody@example.com\n"
        "eta: 2020-01-01 10:00\n"
        "internal: customer prefers phone calls\n"
        "owner: oncall@example.com\n"
        "next update: 2h\n"
    )
    send_as(gateway, lead_reply(notification, body), LEE, str(notification.message["Reply-To"]))
    current = case(gateway)
    assert current.first_responded_at is not None
    assert current.owner_email == "oncall@example.com"
    assert current.next_status_due == gateway.clock.now() + timedelta(hours=2)
    confirmation = gateway.sink.to(LEE)[-1]
    assert '"level: 5": level must be 1, 2, 3 or 4' in confirmation.text
    assert "\"owner: nobody@example.com\": unknown owner 'nobody@example.com'" in confirmation.text
    assert '"eta: 2020-01-01 10:00": the ETA 10:00 UTC on Wed 01 Jan 2020 is in the past' in (
        confirmation.text
    )
    assert "internal note added" in confirmation.text
    assert "owner is now On-call Engineer <oncall@example.com>; customer told" in confirmation.text
    handed = only(gateway.sink.to("oncall@example.com"))
    assert "was handed to you by lee.lead@example.com" in handed.text
    told = gateway.sink.to(ALICE)[-1]
    assert "has a new owner: On-call Engineer <oncall@example.com>" in told.text


def test_resolve_then_reopen_during_monitoring(gateway: Gateway) -> None:
    notification = open_case(gateway)
    reply_to = str(notification.message["Reply-To"])
    send_as(gateway, lead_reply(notification, "resolve\n"), LEE, reply_to)
    assert case(gateway).state == "monitoring"
    gateway.clock.advance(timedelta(hours=3))
    send_as(
        gateway, lead_reply(notification, "reopen\ninternal: fix did not hold\n"), LEE, reply_to
    )
    current = case(gateway)
    assert current.state == "open"
    assert current.first_response_due is not None
    assert current.first_response_due > gateway.clock.now()
    kinds = event_kinds(gateway)
    assert kinds.count("state_changed") >= 3
    assert any("reopen" in m.text.lower() for m in gateway.sink.to(ALICE))


def test_help_lists_the_commands(gateway: Gateway) -> None:
    notification = open_case(gateway)
    send_as(gateway, lead_reply(notification, "help\n"), LEE, str(notification.message["Reply-To"]))
    reply = gateway.sink.to(LEE)[-1]
    assert "next update: 2h" in reply.text
    assert "owner: jane@example.com" in reply.text
    assert case(gateway).state == "open"


def test_reply_without_commands_becomes_internal_note(gateway: Gateway) -> None:
    notification = open_case(gateway)
    body = "Called Alice, she is fine with a workaround until Friday.\n"
    send_as(gateway, lead_reply(notification, body), LEE, str(notification.message["Reply-To"]))
    confirmation = gateway.sink.to(LEE)[-1]
    assert "no commands found: your reply was kept as an internal note" in confirmation.text
    notes = [e for e in gateway.events(case(gateway)) if e.kind == "internal_note"]
    assert notes[0].detail == body.strip()
    # The owner's first reply stops the first-response clock.
    assert case(gateway).first_responded_at is not None


@pytest.mark.parametrize("header", ["Auto-Submitted: auto-replied", "Precedence: bulk"])
def test_lead_out_of_office_neither_commands_nor_gets_refused(
    gateway: Gateway, header: str
) -> None:
    notification = open_case(gateway)
    name, value = header.split(": ")
    raw = build_mail(
        sender=f"Lee Lead <{LEE}>",
        subject=f"Automatic reply: {notification.subject}",
        in_reply_to=str(notification.message["Message-ID"]),
        body="resolve\nI am out of the office until Monday.\n",
        headers={name: value},
    )
    before = len(gateway.sink.mails)
    send_as(gateway, raw, LEE, str(notification.message["Reply-To"]))
    assert case(gateway).state == "open"
    assert len(gateway.sink.mails) == before
