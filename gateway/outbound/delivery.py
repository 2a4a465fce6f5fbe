"""The outbox sender: ships stored mail over SMTP (or into a maildir) with backoff.

Each mail is claimed, sent and marked in its own short transaction, so a crash can at
worst send a mail twice (at-least-once), never lose one.
"""

from __future__ import annotations

import logging
import mailbox
import smtplib
import ssl
import time
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
# A kept smarthost connection is closed after this many idle seconds, well inside the
# five minutes RFC 5321 (4.5.3.2.7) asks servers to wait before dropping a client.
IDLE_CLOSE = 30.0


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
        # With keep_open, the smarthost connection outlives one delivery run: under
        # load the sender runs many times a second, and connecting (EHLO, STARTTLS,
        # AUTH) each time cost more than the mail it carried.
        self._transport: Transport | None = None
        self._last_used = 0.0

    def _retry_at(self, attempts: int, now: datetime) -> datetime:
        delay = self.config.retry_initial * (2 ** max(0, attempts - 1))
        capped: timedelta = min(delay, self.config.retry_max)
        return now + capped

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _claim_due(self, limit: int) -> list[tuple[int, str, list[str], bytes]]:
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
            due = [(row[0], row[1], list(row[2]), row[3]) for row in session.execute(query)]
            if due:
                session.execute(
                    update(OutboxMail)
                    .where(OutboxMail.id.in_([mail_id for mail_id, *_ in due]))
                    .values(next_attempt_at=now + CLAIM_LEASE)
                    .execution_options(synchronize_session=False)
                )
        return due

    def _send(self, envelope_from: str, recipients: list[str], raw: bytes) -> None:
        reused = self._transport is not None
        if self._transport is None:
            self._transport = make_transport(self.config)
        try:
            self._transport.send(envelope_from, recipients, raw)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            # A kept connection may have been closed by the smarthost while idle;
            # that is no fault of the mail, so it gets one fresh connection at once.
            self.close()
            if not reused:
                raise
            self._transport = make_transport(self.config)
            self._transport.send(envelope_from, recipients, raw)

    def deliver_due(self, limit: int = 100, *, keep_open: bool = False) -> int:
        """Send what is due now; returns how many were delivered.

        The batch is claimed in one transaction and the results written in another, so
        the store is never held while the smarthost is slow. Claiming pushes the mails'
        next attempt out by a lease, so another daemon on the same store skips them; a
        crash before the results are written means a resend after the lease, never a
        loss (at-least-once delivery). `keep_open` keeps the smarthost connection for
        the next run (the daemon); it is closed after IDLE_CLOSE without mail.
        """
        due = self._claim_due(limit)
        if not due:
            if self._transport is not None and time.monotonic() - self._last_used > IDLE_CLOSE:
                self.close()
            return 0
        results: dict[int, str | None] = {}
        try:
            for mail_id, envelope_from, recipients, raw in due:
                try:
                    self._send(envelope_from, recipients, raw)
                    results[mail_id] = None
                except (smtplib.SMTPException, OSError) as exc:
                    results[mail_id] = f"{type(exc).__name__}: {exc}"
                    # A failed connection is not reused for the next mail.
                    self.close()
        finally:
            self._last_used = time.monotonic()
            if not keep_open:
                self.close()
        self._record(results)
        return sum(1 for error in results.values() if error is None)

    def _record(self, results: dict[int, str | None]) -> None:
        now = self.clock.now()
        sent = [mail_id for mail_id, error in results.items() if error is None]
        failed = [mail_id for mail_id, error in results.items() if error is not None]
        with self.store.transaction() as session:
            if sent:
                # The common case as one statement, without loading the stored bytes.
                session.execute(
                    update(OutboxMail)
                    .where(OutboxMail.id.in_(sent))
                    .values(
                        state="sent",
                        sent_at=now,
                        last_error=None,
                        attempts=OutboxMail.attempts + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
            if not failed:
                return
            for mail in session.scalars(select(OutboxMail).where(OutboxMail.id.in_(failed))):
                error = results[mail.id]
                mail.attempts += 1
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
