"""Issue 13.1: a SIGKILL after the smarthost's 250 and before the store's mark repeats nothing.

The burst test (test_outbox_crash.py) kills at random moments, so it hits this gap
only by luck. Here the daemon is made to sit in it: when the smarthost takes the
first mail, the test holds the store's writer (SQLite) or the outbox rows
(PostgreSQL) before replying 250, so the daemon has its 250 and cannot commit the
mark. It is SIGKILLed there and started again. Before the sent journal the restarted
daemon sent that mail a second time.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Connection, select, text

from gateway.outbound.reclaim import RECOVERED_NOTE
from store.db import Store
from store.models import OutboxMail
from tests.outbound.smarthost import Smarthost
from tests.support.mails import build_mail, send
from tests.support.run_daemon import RunDaemon
from tests.support.waiting import wait_until


class MarkBlocker:
    """Holds what the sender's "sent" mark needs, from the smarthost's first acceptance."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.connection: Connection | None = None
        self.first_message_id: str | None = None

    def on_accept(self, message_id: str) -> None:
        if self.connection is not None:
            return
        self.first_message_id = message_id
        connection = self.store.engine.connect()
        connection.begin()
        # A write to every outbox row: SQLite's writer lock, PostgreSQL's row locks.
        connection.execute(text("UPDATE outbox SET attempts = attempts"))
        self.connection = connection

    def release(self) -> None:
        if self.connection is not None:
            self.connection.rollback()
            self.connection.close()


def outbox_rows(store: Store) -> list[tuple[str, str, str | None]]:
    with store.session() as session:
        return [
            (row.message_id, row.state, row.last_error)
            for row in session.scalars(select(OutboxMail).order_by(OutboxMail.id))
        ]


def test_kill_between_the_250_and_its_mark_does_not_send_the_mail_again(
    store: Store, tmp_path: Path
) -> None:
    blocker = MarkBlocker(store)
    with Smarthost() as smarthost:
        smarthost.on_accept = blocker.on_accept
        daemon = RunDaemon(tmp_path, "gateway", store.url, smarthost.port)
        daemon.start()
        try:
            send(
                daemon.port,
                build_mail(subject="URGENT: checkout down", message_id="<gap-1@acme.example>"),
            )
            wait_until(lambda: smarthost.total() >= 1, what="the first mail at the smarthost")
            # The 250 is on its way; the daemon reads it, then waits for the store.
            time.sleep(0.5)
            assert smarthost.total() == 1
            daemon.kill()
            smarthost.on_accept = None
            blocker.release()

            daemon.start()
            wait_until(
                lambda: all(state == "sent" for _, state, _ in outbox_rows(store)),
                what="every outgoing mail sent",
                timeout=30,
            )
            # Long enough for a resend the restarted daemon might still make.
            time.sleep(1.0)
        finally:
            blocker.release()
            daemon.stop()

    rows = outbox_rows(store)
    assert len(rows) >= 2, rows  # the acknowledgement and the owner's notice at least
    assert [n for n in smarthost.accepted.values() if n != 1] == [], smarthost.accepted
    assert smarthost.total() == len(rows)
    first = next(row for row in rows if f"<{row[0].strip('<>')}>" == blocker.first_message_id)
    assert first[1:] == ("sent", RECOVERED_NOTE)
    assert "marked sent from their journal" in daemon.tail(None)
