"""The LMTP listener, spoken to by Python's smtplib.LMTP over TCP and a unix socket.

smtplib.LMTP's own sendmail reads a single reply after DATA, as for SMTP; the tests
with several recipients send DATA with its low-level calls and read each recipient's
reply with `getreply`, the way an LMTP client (Postfix's lmtp, Exim's) does.
"""

from __future__ import annotations

import smtplib
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from gateway.clock import FakeClock
from gateway.config import GatewayConfig
from gateway.daemon import Daemon
from gateway.ingest.lmtp import LmtpHandler, LmtpListener
from gateway.ingest.smtp import RecipientPolicy
from store.db import Store
from store.models import Case, InboundItem
from tests.conftest import make_config
from tests.support.mails import build_mail
from tests.support.smtp_sink import SmtpSink, free_port
from tests.support.waiting import wait_until

MAIL = build_mail(subject="URGENT: invoices gone")


def lmtp_config(store: Store, **lmtp: object) -> GatewayConfig:
    return make_config(
        store,
        smtp={"enabled": False, "max_message_size": 20_000},
        lmtp={"enabled": True, "port": free_port(), **lmtp},
    )


@pytest.fixture
def listener(store: Store, clock: FakeClock) -> Iterator[LmtpListener]:
    config = lmtp_config(store)
    handler = LmtpHandler(store, clock, RecipientPolicy(config.smtp))
    lmtp = LmtpListener(config.lmtp, config.smtp, handler)
    lmtp.start()
    yield lmtp
    lmtp.stop()


def stored(store: Store) -> list[InboundItem]:
    with store.session() as session:
        return list(session.scalars(select(InboundItem).order_by(InboundItem.id)))


def send_data(client: smtplib.LMTP, raw: bytes, recipients: int) -> list[tuple[int, bytes]]:
    """DATA, the mail, and then one reply per accepted recipient."""
    code, _ = client.docmd("DATA")
    assert code == 354
    client.send(smtplib.quotedata(raw.decode()).encode() + b"\r\n.\r\n")
    return [client.getreply() for _ in range(recipients)]


def send_to_both(client: smtplib.LMTP, raw: bytes) -> list[tuple[int, bytes]]:
    """One transaction from Alice to support@ and escalations@: a reply for each."""
    client.ehlo_or_helo_if_needed()
    client.mail("alice@acme.example")
    client.rcpt("support@example.com")
    client.rcpt("escalations@example.com")
    return send_data(client, raw, 2)


def test_one_recipient_through_smtplib_lmtp(listener: LmtpListener, store: Store) -> None:
    with smtplib.LMTP("127.0.0.1", listener.port, timeout=10) as client:
        refused = client.sendmail("alice@acme.example", ["support@example.com"], MAIL)
    assert refused == {}
    [item] = stored(store)
    assert (item.source, item.rcpt_tos, item.raw) == ("lmtp", ["support@example.com"], MAIL)


def test_each_recipient_gets_its_own_reply_and_unknown_ones_550(
    listener: LmtpListener, store: Store
) -> None:
    with smtplib.LMTP("127.0.0.1", listener.port, timeout=10) as client:
        client.ehlo_or_helo_if_needed()
        assert client.mail("alice@acme.example")[0] == 250
        assert client.rcpt("support@example.com")[0] == 250
        code, message = client.rcpt("someone@elsewhere.example")
        assert (code, b"not accepted" in message) == (550, True)
        assert client.rcpt("escalations@example.com")[0] == 250
        replies = send_data(client, MAIL, 2)
        # Nothing more is owed: the next reply is the NOOP's own.
        assert client.noop() == (250, b"OK")
    assert [code for code, _ in replies] == [250, 250]
    assert b"<support@example.com>" in replies[0][1]
    assert b"<escalations@example.com>" in replies[1][1]
    [item] = stored(store)  # one mail, stored once, for both recipients
    assert item.rcpt_tos == ["support@example.com", "escalations@example.com"]


def test_too_big_mail_gets_552_once_per_recipient(listener: LmtpListener, store: Store) -> None:
    big = build_mail(body="x" * 30_000)
    with smtplib.LMTP("127.0.0.1", listener.port, timeout=10) as client:
        replies = send_to_both(client, big)
        assert client.noop() == (250, b"OK")
    assert [code for code, _ in replies] == [552, 552]
    assert stored(store) == []


def test_store_failure_answers_451_per_recipient_and_the_retry_is_kept(
    listener: LmtpListener, store: Store
) -> None:
    with store.engine.begin() as connection:
        connection.execute(text("ALTER TABLE inbound_items RENAME TO inbound_items_away"))
    try:
        with smtplib.LMTP("127.0.0.1", listener.port, timeout=10) as client:
            replies = send_to_both(client, MAIL)
    finally:
        with store.engine.begin() as connection:
            connection.execute(text("ALTER TABLE inbound_items_away RENAME TO inbound_items"))
    assert [code for code, _ in replies] == [451, 451]
    with smtplib.LMTP("127.0.0.1", listener.port, timeout=10) as client:
        assert client.sendmail("alice@acme.example", ["support@example.com"], MAIL) == {}
    assert len(stored(store)) == 1


def test_run_listens_on_a_unix_socket_and_opens_the_case(
    store: Store, smtp_sink: SmtpSink, clock: FakeClock, tmp_path: Path
) -> None:
    socket_path = tmp_path / "lmtp.sock"
    config = make_config(store, smtp_sink, lmtp={"enabled": True, "socket": str(socket_path)})
    daemon = Daemon(config, store, clock)
    daemon.start()
    try:
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o660
        with smtplib.LMTP(str(socket_path), timeout=10) as client:
            assert client.sendmail("alice@acme.example", ["support@example.com"], MAIL) == {}

        def opened() -> bool:
            with store.session() as session:
                return session.scalar(select(func.count()).select_from(Case)) == 1

        wait_until(opened, what="the case of the mail delivered by LMTP")
        assert "lmtp_listener" in daemon.probes()
    finally:
        daemon.stop()
    assert not socket_path.exists()


def test_a_bounce_null_sender_is_stored_empty_as_pipe_ingest_stores_it(
    listener: LmtpListener, store: Store
) -> None:
    with smtplib.LMTP("127.0.0.1", listener.port, timeout=10) as client:
        # smtplib writes MAIL FROM:<> for an empty sender, as a mail server's bounce does.
        assert client.sendmail("", ["support@example.com"], MAIL) == {}
    [item] = stored(store)
    assert item.mail_from == ""
