"""One mail, one action, across any number of workers and daemons on one store.

Both copies of a mail that arrived twice are stored raw (the listener answers 250
only once its copy is committed, and cannot know about the other). Which copy is
acted on is decided by the database: in the transaction that handles a batch, before
anything else is written, the worker inserts each item's content key
(store/content_key.py) into `inbound_dedup` with ON CONFLICT DO NOTHING. The row
that goes in belongs to the one item that acts; an item whose key is already held
becomes a duplicate of the holder and is attached to the holder's case.

Nothing is read first and decided later. On PostgreSQL an insert that meets a key
written by a transaction still in flight waits for it: once that commits, the key is
held (duplicate); if it rolls back (a failed batch, a daemon killed mid-batch), the
insert goes through and this copy is acted on instead. On SQLite the single write
lock puts the transactions in one order. Keys go in sorted, so two batches holding
copies of each other's mail take the key locks in the same order and cannot
deadlock. A batch costs one INSERT for all its keys, plus one SELECT when some were
already held.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.appends import table_of
from store.content_key import content_key
from store.models import InboundDedup, InboundItem

_DEDUP = table_of(InboundDedup)
_INBOUND = table_of(InboundItem).c
_HOLDERS = (
    select(_DEDUP.c.content_key, _DEDUP.c.inbound_item_id, _INBOUND.case_id)
    .join_from(_DEDUP, table_of(InboundItem), _INBOUND.id == _DEDUP.c.inbound_item_id)
    .where(_DEDUP.c.content_key.in_(bindparam("keys", expanding=True)))
)


def _claim_statement(table: Table, dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=["content_key"])
        .returning(table.c.content_key)
    )


_CLAIMS = {name: _claim_statement(_DEDUP, name) for name in ("postgresql", "sqlite")}


@dataclass(frozen=True)
class Holder:
    """The item that acted on a mail, and the case it went to (None if it opened none)."""

    item_id: int
    case_id: int | None


@dataclass
class KeyClaims:
    """A batch's content keys: which of its items act, and whose copy each other one is."""

    keys: dict[int, str]  # item id -> content key
    actors: dict[str, int]  # key -> the item of this batch that acts on it
    holders: dict[str, Holder]  # key -> the item that acted, here or elsewhere

    @classmethod
    def take(
        cls,
        session: Session,
        items: Sequence[InboundItem],
        now: datetime,
        known: Mapping[int, str] | None = None,
    ) -> KeyClaims:
        """Claim the keys of `items` (in id order) in the session's transaction."""
        known = known or {}
        keys = {item.id: known.get(item.id) or content_key(item.raw) for item in items}
        # A mail stored twice within the batch: its first copy claims, the others follow.
        first: dict[str, int] = {}
        for item in items:
            first.setdefault(keys[item.id], item.id)
        won: set[str] = set()
        if first:
            connection = session.connection()
            rows = [
                {"content_key": key, "inbound_item_id": item_id, "claimed_at": now}
                for key, item_id in sorted(first.items())
            ]
            claim = _CLAIMS[connection.dialect.name]
            won = set(connection.execute(claim, rows).scalars())
        holders: dict[str, Holder] = {}
        if held := sorted(set(first) - won):
            for row in session.connection().execute(_HOLDERS, {"keys": held}):
                holders[row.content_key] = Holder(row.inbound_item_id, row.case_id)
        actors = {key: item_id for key, item_id in first.items() if key in won}
        return cls(keys, actors, holders)

    def holder(self, item: InboundItem) -> Holder | None:
        """Who acted on this item's mail, or None if this item is the one to act."""
        key = self.keys[item.id]
        if self.actors.get(key) == item.id:
            return None
        holder = self.holders.get(key)
        if holder is None:
            # Cannot happen while items are handled in id order; failing the batch
            # redoes it item by item, where each item claims alone.
            raise RuntimeError(f"item {item.id}: content key held, but by no known item")
        return holder

    def note(self, item: InboundItem, case_id: int | None) -> None:
        """The acting item is done: later copies in the batch go to its case."""
        key = self.keys[item.id]
        if self.actors.get(key) == item.id:
            self.holders[key] = Holder(item.id, case_id)
