"""Outgoing mail put straight into the outbox, as the worker would have queued it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.clock import FakeClock
from store.appends import add_outbox_mail
from store.db import Store


def queue_pending(
    store: Store,
    clock: FakeClock,
    *,
    recipients: list[str],
    raw: bytes,
    message_id: str,
    subject: str = "s",
    next_attempt_at: datetime | None = None,
    **columns: Any,
) -> int:
    """A pending acknowledgement with no attempts yet, due now unless told otherwise;
    `columns` are further outbox columns (a lease holder, say). Returns its id."""
    with store.transaction() as session:
        return add_outbox_mail(
            session,
            case_id=None,
            kind="acknowledgement",
            created_at=clock.now(),
            envelope_from="support@example.com",
            recipients=recipients,
            subject=subject,
            message_id=message_id,
            raw=raw,
            state="pending",
            attempts=0,
            next_attempt_at=clock.now() if next_attempt_at is None else next_attempt_at,
            **columns,
        )
