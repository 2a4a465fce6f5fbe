"""Append-only rows written with Core on the session's connection, inside its transaction.

Audit events, message links, outgoing mail and the auto-reply log are only ever
inserted while a mail or a timer is handled; nothing changes them in the same
transaction. As ORM objects each one cost the unit of work far more to track and
flush than the INSERT itself (about 0.4 ms against 0.04 ms per row on SQLite,
measured), and an outgoing mail's link waited for the mail's id in a flush of its own.

Rows nobody needs an id of (events, links, the auto-reply log), and updates by key
that nothing reads back through Core in the same transaction (a new case's key, a
processed item's outcome), are held per session and written as one statement per
table just before the session next queries through the ORM, flushes or commits
(`watch` installs those hooks). Event ids so follow the order of the calls. A timer
batch of 500 cases then costs a few statements per table instead of a round trip
per row, which on PostgreSQL is most of the batch. The one Core read of these
tables inside a mail's transaction, the auto-reply cap, adds `held_auto_replies` to
what it counts. Outgoing mail and a new case are inserted at once, since their ids
are needed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, Update, event, insert
from sqlalchemy.orm import ORMExecuteState, Session, make_transient_to_detached, sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

from store.models import AutoReplyLog, Base, CaseEvent, MessageLink, OutboxMail


def table_of(model: type[Base]) -> Table:
    """The model's table, typed as one (`__table__` is only a FromClause to mypy)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


# Built once: a statement keeps its compiled-cache key, so a call only binds values.
# `inline()` where nobody needs the new id, so PostgreSQL is not asked for it.
_EVENT = insert(table_of(CaseEvent)).inline()
_LINK = insert(table_of(MessageLink)).inline()
_AUTO_REPLY = insert(table_of(AutoReplyLog)).inline()
_OUTBOX = insert(table_of(OutboxMail)).returning(table_of(OutboxMail).c.id)
_RETURNING_INSERTS: dict[Table, ReturningInsert[tuple[Any]]] = {}
_PENDING = "store.appends.pending"


def hold(session: Session, statement: Insert | Update, row: dict[str, Any]) -> None:
    """Keep one row for `statement` until the session next queries, flushes or commits.

    For writes whose effect nothing in the transaction reads through Core before then:
    the inserts here, and updates by primary key such as a new case's key.
    """
    pending: dict[Insert | Update, list[dict[str, Any]]] = session.info.setdefault(_PENDING, {})
    pending.setdefault(statement, []).append(row)


def write_pending(session: Session) -> None:
    """Write the rows held for this session, one statement per table."""
    pending: dict[Insert | Update, list[dict[str, Any]]] | None = session.info.pop(_PENDING, None)
    if pending:
        connection = session.connection()
        for statement, rows in pending.items():
            connection.execute(statement, rows)


def held_auto_replies(session: Session, address: str, since: datetime) -> int:
    """Auto-reply log rows for `address` after `since` that this session still holds."""
    pending: dict[Insert | Update, list[dict[str, Any]]] = session.info.get(_PENDING, {})
    return sum(
        1 for row in pending.get(_AUTO_REPLY, ()) if row["address"] == address and row["at"] > since
    )


def _drop_pending(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)


def _before_orm_execute(state: ORMExecuteState) -> None:
    write_pending(state.session)


def _before_flush(session: Session, *_: Any) -> None:
    write_pending(session)


def watch(sessions: sessionmaker[Session]) -> None:
    """Make sessions from this factory write held rows before anything could read them."""
    event.listen(sessions, "do_orm_execute", _before_orm_execute)
    event.listen(sessions, "before_flush", _before_flush)
    event.listen(sessions, "before_commit", write_pending)
    event.listen(sessions, "after_rollback", _drop_pending)


def add_event(
    session: Session,
    *,
    case_id: int,
    at: datetime,
    kind: str,
    detail: str,
    actor: str = "gateway",
    data: dict[str, Any] | None = None,
    inbound_item_id: int | None = None,
) -> None:
    hold(
        session,
        _EVENT,
        {
            "case_id": case_id,
            "at": at,
            "kind": kind,
            "actor": actor,
            "detail": detail,
            "data": data or {},
            "inbound_item_id": inbound_item_id,
        },
    )


def add_link(
    session: Session,
    *,
    message_id: str,
    case_id: int,
    direction: str,
    at: datetime,
    inbound_item_id: int | None = None,
    outbox_id: int | None = None,
) -> None:
    hold(
        session,
        _LINK,
        {
            "message_id": message_id,
            "case_id": case_id,
            "direction": direction,
            "inbound_item_id": inbound_item_id,
            "outbox_id": outbox_id,
            "at": at,
        },
    )


def add_auto_reply(session: Session, *, address: str, at: datetime, kind: str = "reply") -> None:
    hold(session, _AUTO_REPLY, {"address": address, "at": at, "kind": kind})


def add_outbox_mail(session: Session, **columns: Any) -> int:
    """Insert one outgoing mail; returns its id. `columns` are the outbox table's."""
    values = {"last_error": None, "sent_at": None, **columns}
    return int(session.connection().execute(_OUTBOX, values).scalar_one())


def insert_as_persistent(session: Session, row: Base) -> int:
    """INSERT a new ORM object with Core and attach it to the session as if loaded.

    For the one row a mail creates that later code may change in the same
    transaction (a new case): the session tracks it from here on, with no unit-of-work
    INSERT. Every column is written, defaults included, so no attribute is left
    expired for a lazy load. Returns the new primary key, also set on the object.
    """
    table = table_of(type(row))
    values: dict[str, Any] = {}
    unset: dict[str, Any] = {}
    for column in table.columns:
        if column.primary_key:
            continue
        if column.key in row.__dict__:
            values[column.key] = row.__dict__[column.key]
            continue
        if column.default is not None and column.default.is_scalar:
            value = column.default.arg  # type: ignore[attr-defined]
        elif column.default is not None and column.default.is_callable:
            # SQLAlchemy wraps a zero-argument default (list, dict) to take a context.
            value = column.default.arg(None)  # type: ignore[attr-defined]
        else:
            value = None
        values[column.key] = unset[column.key] = value
    (key_column,) = table.primary_key.columns
    statement = _RETURNING_INSERTS.get(table)
    if statement is None:
        statement = _RETURNING_INSERTS[table] = insert(table).returning(key_column)
    new_id = int(session.connection().execute(statement, values).scalar_one())
    for name, value in unset.items():
        setattr(row, name, value)
    setattr(row, key_column.key, new_id)
    make_transient_to_detached(row)
    session.add(row)
    return new_id
