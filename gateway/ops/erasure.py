"""Deleting rows together with every row that points at them, whatever table that is.

Erasing a customer deletes cases, inbound items and outgoing mail. Other tables
refer to those (events, message links, de-duplication keys, reply tokens, and any
table a later release adds), so the references are found from the schema rather
than listed here: a reference that may be empty is emptied, one that may not is
deleted with its row, recursively. Message links are the exception: a link says
which Message-ID belongs to which case, and a Message-ID of erased mail goes too.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from store.models import Base

# References deleted with the row they point at, even where the column may be NULL.
_DELETE_WITH_TARGET = frozenset({"message_links"})
_CHUNK = 500


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[start : start + _CHUNK] for start in range(0, len(ids), _CHUNK)]


def delete_rows(session: Session, table: Table, ids: Collection[int]) -> dict[str, int]:
    """Delete rows of `table` by id, and what refers to them; rows touched per table."""
    counts: dict[str, int] = {}
    if not ids:
        return counts
    id_list = sorted(set(ids))
    for other in Base.metadata.sorted_tables:
        for key in other.foreign_keys:
            if key.column.table is not table:
                continue
            column = key.parent
            if column.nullable and other.name not in _DELETE_WITH_TARGET:
                for chunk in _chunks(id_list):
                    session.execute(update(other).where(column.in_(chunk)).values({column: None}))
                continue
            referring = [
                int(row_id)
                for chunk in _chunks(id_list)
                for row_id in session.scalars(
                    select(other.c.id).where(column.in_(chunk))
                    if "id" in other.c
                    else select(column).where(column.in_(chunk))
                )
            ]
            if "id" in other.c:
                for name, count in delete_rows(session, other, referring).items():
                    counts[name] = counts.get(name, 0) + count
            else:
                for chunk in _chunks(id_list):
                    session.execute(delete(other).where(column.in_(chunk)))
                counts[other.name] = counts.get(other.name, 0) + len(referring)
    for chunk in _chunks(id_list):
        session.execute(delete(table).where(table.c.id.in_(chunk)))
    counts[table.name] = counts.get(table.name, 0) + len(id_list)
    return counts
