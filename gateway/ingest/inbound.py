"""The one way mail enters the gateway: stored raw, committed, then acknowledged.

The SMTP listener, the IMAP watcher and `escalation-gateway ingest` all call
`store_inbound`; nothing is parsed or decided here, so a slow rule can never make a
sending server time out.

A mail that arrives twice (a sender retrying after a lost 250, an IMAP folder fetched
again) is stored twice, byte for byte as it came: a listener cannot know whether
another copy is stored or about to be, and must not answer 250 for mail it has not
committed. Which copy is acted on is the worker's decision, taken by the store
(gateway/work/dedup.py). `sha256` is the hash of the exact bytes, which the IMAP
watcher uses to find its own stored copy of a message; copies with other trace fields
share the content key (store/content_key.py) instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, insert

from gateway.clock import Clock
from gateway.ingest.raw_mail import inbound_columns
from store.db import Store
from store.models import InboundItem


def _row(
    raw: bytes, source: str, clock: Clock, mail_from: str | None, rcpt_tos: Sequence[str]
) -> dict[str, object]:
    return inbound_columns(raw, source, clock.now(), mail_from, rcpt_tos)


def store_inbound(
    store: Store,
    raw: bytes,
    *,
    source: str,
    clock: Clock,
    mail_from: str | None = None,
    rcpt_tos: Sequence[str] = (),
) -> int:
    """Commit the raw message and return its id. Raises if the store is unavailable."""
    # A Core insert rather than the ORM: this runs once per accepted mail on the
    # listener's hot path, and it needs no identity map.
    statement = (
        insert(InboundItem)
        .values(_row(raw, source, clock, mail_from, rcpt_tos))
        .returning(InboundItem.id)
    )
    with store.engine.begin() as connection:
        return int(connection.execute(statement).scalar_one())


def inbound_row(
    raw: bytes,
    *,
    source: str,
    clock: Clock,
    mail_from: str | None = None,
    rcpt_tos: Sequence[str] = (),
) -> dict[str, object]:
    """The columns of one inbound item, for `store_rows`."""
    return _row(raw, source, clock, mail_from, rcpt_tos)


def store_rows(store: Store, rows: Sequence[dict[str, object]]) -> list[int]:
    """Commit several messages in one transaction; their ids in the order given.

    One commit for many messages is group commit: under load the SMTP listener and
    the IMAP watcher take SQLite's single write lock once per group instead of once
    per message, so they queue far less behind the worker and it behind them.
    """
    if not rows:
        return []
    with store.engine.begin() as connection:
        return insert_rows(connection, rows)


def insert_rows(connection: Connection, rows: Sequence[dict[str, object]]) -> list[int]:
    """Insert inbound items in the caller's transaction; their ids in the order given."""
    if not rows:
        return []
    statement = insert(InboundItem).returning(InboundItem.id, sort_by_parameter_order=True)
    return [int(row_id) for row_id in connection.execute(statement, list(rows)).scalars()]
