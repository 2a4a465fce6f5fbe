"""Where each watched folder got to: its UIDVALIDITY and the last UID committed.

IMAP UIDs and UIDVALIDITY are unsigned 32-bit numbers, but the columns are SQL
INTEGER (signed 32-bit on PostgreSQL). Values are folded into the signed range on
the way in and unfolded on the way out, so a server near 2**32 cannot break the
store; the order of last_uid is only ever compared after unfolding.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.db import Store
from store.models import ImapFolderState

_WRAP = 2**32
_SIGNED_MAX = 2**31 - 1


def _to_db(value: int) -> int:
    return value - _WRAP if value > _SIGNED_MAX else value


def _from_db(value: int) -> int:
    return value + _WRAP if value < 0 else value


@dataclass(frozen=True)
class FolderPosition:
    uidvalidity: int
    last_uid: int


def load_position(store: Store, mailbox: str, folder: str) -> FolderPosition | None:
    with store.transaction() as session:
        row = session.scalar(
            select(ImapFolderState).where(
                ImapFolderState.mailbox == mailbox, ImapFolderState.folder == folder
            )
        )
        if row is None:
            return None
        return FolderPosition(_from_db(row.uidvalidity), _from_db(row.last_uid))


def save_position(store: Store, mailbox: str, folder: str, position: FolderPosition) -> None:
    """Record the position in a transaction of its own."""
    with store.transaction() as session:
        record_position(session, store, mailbox, folder, position)


def record_position(
    session: Session, store: Store, mailbox: str, folder: str, position: FolderPosition
) -> None:
    """Record the position in the caller's transaction; within one UIDVALIDITY,
    last_uid never moves backwards."""
    query = select(ImapFolderState).where(
        ImapFolderState.mailbox == mailbox, ImapFolderState.folder == folder
    )
    if not store.is_sqlite:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        session.add(
            ImapFolderState(
                mailbox=mailbox,
                folder=folder,
                uidvalidity=_to_db(position.uidvalidity),
                last_uid=_to_db(position.last_uid),
            )
        )
        return
    same_epoch = _from_db(row.uidvalidity) == position.uidvalidity
    if same_epoch and _from_db(row.last_uid) >= position.last_uid:
        return
    row.uidvalidity = _to_db(position.uidvalidity)
    row.last_uid = _to_db(position.last_uid)
