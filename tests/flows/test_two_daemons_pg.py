"""Two `run` daemons on one PostgreSQL store, one SIGKILLed mid-burst: one case per mail.

Each daemon has its own SMTP port, as two MX hosts of one domain would. Clients behave
like a sending MTA: a connection that breaks before the reply, a refused connection or
a 4xx is tried again, on the other host. Some clients also lose the 250 of their first
attempt on purpose (the reply arrives, the connection drops before it is read), so every
run has mail stored twice whatever moment the kill hits; the kill adds the copies and
half-finished transactions a real crash leaves.

The figures of a run are printed; `EG_TWO_DAEMON_MAILS=600` gives the bigger run.
"""

from __future__ import annotations

import functools
import os
import smtplib
import socket
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.db import Store
from store.models import Case, InboundItem, OutboxMail
from tests.support.databases import postgres_database
from tests.support.mails import build_mail
from tests.support.mta import AttemptFailed, RetryingMta
from tests.support.run_daemon import RunDaemon
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
MAILS = int(os.environ.get("EG_TWO_DAEMON_MAILS", "160"))
CLIENTS = 8
LOSE_REPLY_EVERY = 5  # one mail in five loses the 250 of its first attempt
RETRY_FOR = 90.0  # seconds a client keeps retrying, as an MTA's queue would (far longer)


@dataclass(frozen=True)
class Mail:
    number: int
    raw: bytes
    sender: str
    message_id: str

    @property
    def loses_first_reply(self) -> bool:
        return self.number % LOSE_REPLY_EVERY == 0


class LostReply(AttemptFailed):
    """The reply to DATA arrived but was never read: the sender knows nothing."""


def _send_and_lose_reply(port: int, mail: Mail) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.mail(mail.sender)
        client.rcpt("support@example.com")
        code, _ = client.docmd("DATA")
        if code != 354:
            raise smtplib.SMTPDataError(code, b"DATA refused")
        assert client.sock is not None
        client.send(smtplib.quotedata(mail.raw.decode("ascii")).encode("ascii") + b"\r\n.\r\n")
        # Wait for the server's answer to be on the wire, then drop the connection.
        client.sock.recv(1, socket.MSG_PEEK)
        client.sock.close()
        client.sock = None
    raise LostReply


def deliver(sender: RetryingMta, mail: Mail) -> None:
    """Like an MTA with two MX hosts; some mails lose the reply to their first attempt."""
    lose_reply = functools.partial(_send_and_lose_reply, mail=mail)
    first_attempt = lose_reply if mail.loses_first_reply else None
    sender.deliver(mail.number, mail.sender, mail.raw, first_attempt=first_attempt)


@pytest.fixture
def store_url() -> Iterator[str]:
    with postgres_database() as url:
        store = Store(url)
        # Migrated once here, so the two daemons never race to create the schema.
        store.migrate()
        store.dispose()
        yield url


def _mails() -> list[Mail]:
    mails = []
    for n in range(MAILS):
        sender = f"customer{n}@client{n % 7}.example"
        message_id = f"burst-{n}@client{n % 7}.example"
        raw = build_mail(
            sender=f"Customer {n} <{sender}>",
            subject=f"URGENT: checkout down for shop {n}",
            message_id=f"<{message_id}>",
        )
        mails.append(Mail(n, raw, sender, message_id))
    return mails


def _settled(store: Store) -> bool:
    with store.session() as session:
        waiting = session.scalar(select(func.count()).where(InboundItem.state == "pending"))
    return waiting == 0


def test_two_daemons_one_killed_mid_burst_open_one_case_per_mail(
    store_url: str, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    # Three workers in all: the first daemon's thread, the second's two processes.
    first = RunDaemon(tmp_path, "first", store_url, smtp_sink.port)
    second = RunDaemon(
        tmp_path, "second", store_url, smtp_sink.port, more="[worker]\nprocesses = 2\n"
    )
    store = Store(store_url)
    mails = _mails()
    sender = RetryingMta([first.port, second.port], retry_for=RETRY_FOR, longest_wait=1.0)
    try:
        first.start()
        second.start()
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = [pool.submit(deliver, sender, mail) for mail in mails]
            wait_until(lambda: len(sender.accepted) >= MAILS // 3, what="a third of the burst")
            first.kill()
            first.start()
            for result in results:
                result.result()
        wait_until(lambda: _settled(store), what="every stored mail processed", timeout=60)
        figures = _figures(store, mails)
    finally:
        first.stop()
        second.stop()
        store.dispose()
    print(f"\ntwo daemons, {MAILS} mails, {sender.retries} retries: {figures}")
    logs = f"(daemon logs: {first.log}, {second.log})"
    assert len(sender.accepted) == MAILS
    assert figures.stored_twice > 0, "no mail was stored twice: the run proved nothing"
    assert (figures.duplicate_cases, figures.doubled_acks) == (0, 0), f"{figures} {logs}"
    assert (figures.cases, figures.missing_acks) == (MAILS, 0), f"{figures} {logs}"
    assert figures.owner_notifications == MAILS, f"{figures} {logs}"
    # Key claims are taken in one order by every batch, so no two batches deadlock.
    assert "deadlock detected" not in first.tail(None) + second.tail(None), logs


@dataclass(frozen=True)
class Figures:
    stored: int
    stored_twice: int
    crash_copies: int  # stored twice, though the client lost no reply on purpose
    cases: int
    duplicate_cases: int
    missing_acks: int
    doubled_acks: int
    owner_notifications: int


def _figures(store: Store, mails: list[Mail]) -> Figures:
    with store.session() as session:
        copies = Counter(session.scalars(select(InboundItem.message_id)))
        roots = Counter(session.scalars(select(Case.root_message_id)))
        acks = Counter(
            recipient
            for recipients in session.scalars(
                select(OutboxMail.recipients).where(OutboxMail.kind == "acknowledgement")
            )
            for recipient in recipients
        )
        notifications = session.scalar(
            select(func.count()).where(OutboxMail.kind == "owner_notification")
        )
    return Figures(
        stored=sum(copies.values()),
        stored_twice=sum(1 for n in copies.values() if n > 1),
        crash_copies=sum(
            1 for mail in mails if not mail.loses_first_reply and copies[mail.message_id] > 1
        ),
        cases=sum(roots.values()),
        duplicate_cases=sum(n - 1 for n in roots.values() if n > 1),
        missing_acks=sum(1 for mail in mails if acks[mail.sender] == 0),
        doubled_acks=sum(1 for mail in mails if acks[mail.sender] > 1),
        owner_notifications=int(notifications or 0),
    )
