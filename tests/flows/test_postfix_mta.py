"""The README's Postfix deployment, run: a real Postfix in front of `run` over LMTP.

A private Postfix (tests/support/postfix.py) takes mail by SMTP, hands the gateway's
address to the gateway's LMTP listener through a transport map, and relays
everything else to a real aiosmtpd sink. The gateway (`run`, a real process) uses
that Postfix as its smarthost, so its replies and the bounces they cause travel the
way they would in production.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from sqlalchemy import func, select

from store.db import Store
from store.models import Case, InboundItem, OutboxMail
from tests.outbound.smarthost import Smarthost
from tests.support.mails import build_mail, send
from tests.support.postfix import HOSTNAME, Delivery, PrivatePostfix
from tests.support.run_daemon import RunDaemon
from tests.support.smtp_sink import free_port
from tests.support.waiting import wait_until

GATEWAY = "support@example.com"
WAIT = 30.0


@contextmanager
def gateway_behind_postfix(
    store: Store, folder: Path, sink: Smarthost
) -> Iterator[tuple[PrivatePostfix, RunDaemon]]:
    """The gateway listening for LMTP, and a Postfix delivering to it and relaying for it."""
    lmtp_port = free_port()
    postfix = PrivatePostfix(lmtp_port=lmtp_port, relay_port=sink.port, lmtp_recipients=[GATEWAY])
    daemon = RunDaemon(
        folder,
        "gateway",
        store.url,
        postfix.port,
        outbound='retry_initial = "1s"\n',
        more=f"[lmtp]\nenabled = true\nport = {lmtp_port}\n",
    )
    daemon.start()
    try:
        with postfix, diagnosed(postfix, daemon):
            yield postfix, daemon
    finally:
        daemon.stop()


@contextmanager
def diagnosed(postfix: PrivatePostfix, daemon: RunDaemon) -> Iterator[None]:
    """A failure shows what both servers logged, while their logs still exist."""
    try:
        yield
    except AssertionError as failure:
        raise AssertionError(
            f"{failure}\n{postfix.log_tail()}\n--- gateway log ---\n{daemon.tail()}"
        ) from failure


def wait_for_log(postfix: PrivatePostfix, delivery: Delivery, times: int = 1) -> None:
    # The log is written by postlogd from datagrams, a moment after the delivery.
    wait_until(
        lambda: postfix.deliveries().count(delivery) >= times,
        what=f"{times} x {delivery} in Postfix's log",
        timeout=WAIT,
    )


def wait_until_outbox_settled(store: Store) -> None:
    def settled() -> bool:
        with store.session() as session:
            states = session.scalars(select(OutboxMail.state)).all()
        return bool(states) and all(state in ("sent", "dead") for state in states)

    wait_until(settled, what="every outgoing mail sent", timeout=WAIT)


def cases(store: Store) -> list[Case]:
    with store.session() as session:
        return list(session.scalars(select(Case)))


def inbound(store: Store) -> list[InboundItem]:
    with store.session() as session:
        return list(session.scalars(select(InboundItem).order_by(InboundItem.id)))


def received_by(sink: Smarthost, address: str) -> list[bytes]:
    """The bytes of each mail the sink took for this envelope recipient."""
    with sink.lock:
        kept = list(zip(sink.deliveries, sink.raw, strict=True))
    return [raw for (_, recipients), raw in kept if address in recipients]


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_urgent_mail_through_postfix_opens_a_case_and_the_ack_is_relayed(
    store: Store, tmp_path: Path
) -> None:
    customer = "alice@acme.example"
    with (
        Smarthost() as sink,
        gateway_behind_postfix(store, tmp_path, sink) as (postfix, _daemon),
    ):
        send(
            postfix.port,
            build_mail(subject="URGENT: checkout down", message_id="<pf-urgent-1@acme.example>"),
            mail_from=customer,
            rcpt=(GATEWAY,),
        )
        wait_until(lambda: len(cases(store)) == 1, what="a case opened", timeout=WAIT)
        wait_until(lambda: bool(sink.to(customer)), what="the ack at the sink", timeout=WAIT)
        wait_until_outbox_settled(store)
        postfix.wait_for_empty_queue(WAIT)
        wait_for_log(postfix, Delivery(GATEWAY, postfix.lmtp_relay, "sent"))
        wait_for_log(postfix, Delivery(customer, postfix.relay_host, "sent"))

        [case] = cases(store)
        assert (case.customer_email, case.level) == (customer, 4)
        [item] = inbound(store)
        assert (item.source, item.mail_from, item.rcpt_tos) == ("lmtp", customer, [GATEWAY])
        assert f"by {HOSTNAME} (Postfix)".encode() in item.raw

        [raw_ack] = received_by(sink, customer)
        head = raw_ack.split(b"\r\n\r\n", 1)[0]
        assert b"\r\nAuto-Submitted: auto-replied\r\n" in head, head.decode(errors="replace")
        ack = parsed(raw_ack)
        assert case.key is not None and case.key in str(ack["Subject"])
        assert [addr for _, addr in getaddresses([str(ack["To"])])] == [customer]
        assert "<pf-urgent-1@acme.example>" in str(ack["In-Reply-To"])
        # It went through Postfix, not straight from the gateway to the sink.
        assert f"by {HOSTNAME} (Postfix)" in str(ack["Received"])
        assert all(d.status == "sent" for d in postfix.deliveries()), postfix.deliveries()
        assert postfix.queue() == []


def test_postfix_bounce_of_the_ack_reaches_the_gateway_and_gets_no_reply(
    store: Store, tmp_path: Path
) -> None:
    """The customer's server refuses the ack, so Postfix returns a DSN to the gateway.

    The refusal names a security incident, words a rule escalates on, and Postfix
    quotes it in the DSN's text: only the loop guard keeps this bounce from opening
    a second case and acknowledging MAILER-DAEMON.
    """
    customer = "carol@acme.example"
    bounce_from = f"MAILER-DAEMON@{HOSTNAME}".lower()
    refusal = f"550 5.1.1 <{customer}>: mailbox closed after a security incident"
    with (
        Smarthost(refuse={customer: refusal}) as sink,
        gateway_behind_postfix(store, tmp_path, sink) as (postfix, _daemon),
    ):
        send(
            postfix.port,
            build_mail(
                sender=f"Carol <{customer}>",
                subject="URGENT: our orders vanished",
                message_id="<pf-bounce-1@acme.example>",
            ),
            mail_from=customer,
            rcpt=(GATEWAY,),
        )
        # The customer's mail and then Postfix's bounce of the ack, both over LMTP.
        wait_until(lambda: len(inbound(store)) >= 2, what="the bounce at the gateway", timeout=WAIT)
        wait_until(
            lambda: all(item.state != "pending" for item in inbound(store)),
            what="the gateway to process the bounce",
            timeout=WAIT,
        )
        wait_until_outbox_settled(store)
        postfix.wait_for_empty_queue(WAIT)
        wait_for_log(postfix, Delivery(customer, postfix.relay_host, "bounced"))
        wait_for_log(postfix, Delivery(GATEWAY, postfix.lmtp_relay, "sent"), times=2)

        with store.session() as session:
            outbox = list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))
            case_count = session.scalar(select(func.count()).select_from(Case))
        first, dsn = inbound(store)
        assert (first.mail_from, first.decision) == (customer, "open")
        # Postfix bounced to the envelope sender, which the transport map sends to LMTP.
        assert {mail.envelope_from for mail in outbox} == {GATEWAY}
        assert sink.refusals[customer] == 1
        assert "sender non-delivery notification" in postfix.log()
        assert (dsn.source, dsn.rcpt_tos) == ("lmtp", [GATEWAY])
        assert dsn.mail_from == "", dsn.mail_from  # the null sender of a bounce
        assert b"report-type=delivery-status" in dsn.raw
        assert b"security incident" in dsn.raw

        assert case_count == 1, f"the bounce was decided {dsn.decision!r}"
        # An answer to the bounce would have been written while it was processed.
        replies = [mail for mail in outbox if mail.created_at >= dsn.received_at]
        assert replies == [], [(m.kind, m.recipients) for m in replies]
        reached = {rcpt.lower() for rcpt in sink.by_recipient}
        assert bounce_from not in reached and "" not in reached, reached
        assert (dsn.state, dsn.decision) == ("done", "suppress")
        assert sink.total() >= 1  # the owner's notice still went out through Postfix
