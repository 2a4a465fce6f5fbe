"""The outbox sender: ships stored mail over SMTP (or into a maildir) with backoff.

Each mail is claimed, sent and marked in its own short transaction, so a crash can at
worst send a mail twice (at-least-once), never lose one.
"""

from __future__ import annotations

import logging
import mailbox
import smtplib
import ssl
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import select, update

from gateway.clock import Clock
from gateway.config import OutboundConfig
from store.db import Store
from store.models import OutboxMail

log = logging.getLogger("gateway.delivery")

# How long a claimed mail stays hidden from other senders sharing the store.
CLAIM_LEASE = timedelta(minutes=5)


class Transport(Protocol):
    def send(self, envelope_from: str, recipients: list[str], raw: bytes) -> None: ...

    def close(self) -> None: ...


class MaildirTransport:
    """For the quickstart: mail lands in a local maildir, no server needed."""

    def __init__(self, path: str) -> None:
        self.box = mailbox.Maildir(Path(path), create=True)

    def send(self, envelope_from: str, recipients: list[str], raw: bytes) -> None:
        self.box.add(raw)

    def close(self) -> None:
        self.box.close()


class SmtpTransport:
    """One connection per delivery run, reused for every mail in it."""

    def __init__(self, config: OutboundConfig) -> None:
        self.config = config
        self._client: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        timeout = cfg.timeout.total_seconds()
        client: smtplib.SMTP
        if cfg.security == "tls":
            client = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=timeout)
            if cfg.security == "starttls":
                client.starttls(context=ssl.create_default_context())
        if cfg.username:
            client.login(cfg.username, cfg.resolved_password())
        return client

    def send(self, envelope_from: str, recipients: list[str], raw: bytes) -> None:
        if self._client is None:
            self._client = self._connect()
        refused = self._client.sendmail(envelope_from, recipients, raw)
        if refused:
            log.warning("smarthost refused some recipients: %s", refused)

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except smtplib.SMTPException:
                self._client.close()
            except OSError:
                pass
            self._client = None


def make_transport(config: OutboundConfig) -> Transport:
    if config.mode == "maildir":
        return MaildirTransport(config.maildir)
    return SmtpTransport(config)


class OutboxSender:
    def __init__(self, config: OutboundConfig, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock

    def _retry_at(self, attempts: int, now: datetime) -> datetime:
        delay = self.config.retry_initial * (2 ** max(0, attempts - 1))
        capped: timedelta = min(delay, self.config.retry_max)
        return now + capped

    def deliver_due(self, limit: int = 100) -> int:
        """Send what is due now; returns how many were delivered.

        The batch is claimed in one transaction and the results written in another, so
        the store is never held while the smarthost is slow. Claiming pushes the mails'
        next attempt out by a lease, so another daemon on the same store skips them; a
        crash before the results are written means a resend after the lease, never a
        loss (at-least-once delivery).
        """
        now = self.clock.now()
        with self.store.transaction() as session:
            query = (
                select(
                    OutboxMail.id, OutboxMail.envelope_from, OutboxMail.recipients, OutboxMail.raw
                )
                .where(OutboxMail.state == "pending", OutboxMail.next_attempt_at <= now)
                .order_by(OutboxMail.id)
                .limit(limit)
            )
            if not self.store.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            due = session.execute(query).all()
            if due:
                session.execute(
                    update(OutboxMail)
                    .where(OutboxMail.id.in_([row.id for row in due]))
                    .values(next_attempt_at=now + CLAIM_LEASE)
                    .execution_options(synchronize_session=False)
                )
        if not due:
            return 0
        results: dict[int, str | None] = {}
        transport: Transport | None = None
        try:
            for mail_id, envelope_from, recipients, raw in due:
                if transport is None:
                    transport = make_transport(self.config)
                try:
                    transport.send(envelope_from, list(recipients), raw)
                    results[mail_id] = None
                except (smtplib.SMTPException, OSError) as exc:
                    results[mail_id] = f"{type(exc).__name__}: {exc}"
                    # A failed connection is not reused for the next mail.
                    transport.close()
                    transport = None
        finally:
            if transport is not None:
                transport.close()
        self._record(results)
        return sum(1 for error in results.values() if error is None)

    def _record(self, results: dict[int, str | None]) -> None:
        now = self.clock.now()
        with self.store.transaction() as session:
            mails = session.scalars(select(OutboxMail).where(OutboxMail.id.in_(results)))
            for mail in mails:
                error = results[mail.id]
                mail.attempts += 1
                if error is None:
                    mail.state, mail.sent_at, mail.last_error = "sent", now, None
                    continue
                mail.last_error = error
                if mail.attempts >= self.config.max_attempts:
                    mail.state = "dead"
                    log.error("outbox %s dead after %s attempts: %s", mail.id, mail.attempts, error)
                    continue
                mail.next_attempt_at = self._retry_at(mail.attempts, now)
                log.warning(
                    "outbox %s attempt %s failed, retry at %s: %s",
                    mail.id,
                    mail.attempts,
                    mail.next_attempt_at.isoformat(),
                    error,
                )
