"""Taking over from a sender that died on this host: first its journal, then its leases.

The order matters. Mail named in a dead sender's sent journal (gateway/outbound/
sent_journal.py) reached the smarthost; it is marked sent in the same transaction
that makes the rest of that sender's claimed mail due again, so nothing in the
journal can be picked up and sent a second time.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.outbound.lease import LeaseHolder, is_gone
from gateway.outbound.sent_journal import JournalEntry, entries_in, journals_in
from store.db import Store
from store.models import OutboxMail

log = logging.getLogger("gateway.delivery")

RECOVERED_NOTE = (
    "sent; the smarthost's 250 was in the sent journal, the sender stopped before the store"
    " recorded it"
)


def mark_sent_from_journal(session: Session, entries: dict[int, JournalEntry]) -> int:
    """Record journalled mail as sent (at its 250's time) if still pending; returns how many."""
    marked = 0
    for mail_id, entry in sorted(entries.items()):
        result = session.execute(
            update(OutboxMail)
            .where(
                OutboxMail.id == mail_id,
                OutboxMail.message_id == entry.message_id,
                OutboxMail.state == "pending",
            )
            .values(
                state="sent",
                sent_at=entry.sent_at,
                last_error=RECOVERED_NOTE,
                attempts=OutboxMail.attempts + 1,
                lease_holder=None,
            )
            .execution_options(synchronize_session=False)
        )
        marked += int(getattr(result, "rowcount", 0) or 0)
    return marked


def take_back(store: Store, now: datetime, me: str, journal_folder: Path) -> int:
    """Settle the journals and leases of dead senders on this host; returns mails made due."""
    journals = {holder: path for holder, path in journals_in(journal_folder) if holder != me}
    with store.transaction() as session:
        holders = session.scalars(
            select(OutboxMail.lease_holder)
            .where(
                OutboxMail.state == "pending",
                OutboxMail.next_attempt_at > now,
                OutboxMail.lease_holder.is_not(None),
                OutboxMail.lease_holder != me,
            )
            .distinct()
        ).all()
        candidates = {holder for holder in holders if holder} | set(journals)
        gone = sorted(holder for holder in candidates if _holder_gone(holder))
        if not gone:
            return 0
        recovered: dict[int, JournalEntry] = {}
        for holder in gone:
            if holder in journals:
                recovered.update(entries_in(journals[holder]))
        marked = mark_sent_from_journal(session, recovered)
        result = session.execute(
            update(OutboxMail)
            .where(OutboxMail.state == "pending", OutboxMail.lease_holder.in_(gone))
            .values(next_attempt_at=now, lease_holder=None)
            .execution_options(synchronize_session=False)
        )
    # Only once the marks are committed. A crash before this reads the journal again,
    # which is harmless: the marks touch only mail that is still pending.
    for holder in gone:
        if holder in journals:
            journals[holder].unlink(missing_ok=True)
    released = int(getattr(result, "rowcount", 0) or 0)
    if released or marked:
        log.info(
            "took over from ended sender(s) %s: %s mail(s) marked sent from their journal,"
            " %s made due again",
            gone,
            marked,
            released,
        )
    return released


def _holder_gone(text: str) -> bool:
    holder = LeaseHolder.parse(text)
    return holder is not None and is_gone(holder)
