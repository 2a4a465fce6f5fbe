"""SQLite writers take turns through a kernel lock, not by sleeping and retrying.

SQLite admits one writer at a time. A connection that finds the write lock taken
calls the busy handler, which sleeps 1, 2, 5, 10... then 100 ms between attempts.
Against a worker that keeps the lock for most of each second (a burst of mail, one
transaction per batch) such a poller rarely wakes inside the short gap between two
batches: the SMTP listener and the IMAP watcher were seen waiting seconds to commit,
while their senders waited for a 250 or a \\Seen.

So every connection to a database file holds an exclusive `flock` on a companion
file from its first write statement until its commit or rollback. Waiters block in
the kernel and are woken the moment the holder lets go, in any process. SQLite's own
lock is still taken inside ours, so nothing is weaker than before, and the busy
timeout still covers writers that do not take part (the sqlite3 shell, say). The
kernel drops the lock of a process that dies, so a crash never leaves it held.

The lock is taken at the first write, as SQLite takes its own, not at BEGIN: a
transaction that only reads never waits for it.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from typing import Any

_READ_ONLY_VERBS = ("SELECT", "PRAGMA", "EXPLAIN", "WITH")


def _writes(statement: str) -> bool:
    # A WITH ... INSERT also writes; none of our WITH statements do, and a read
    # wrongly counted as a write only waits its turn.
    return not statement.lstrip()[:7].upper().startswith(_READ_ONLY_VERBS)


class TurnTakingConnection(sqlite3.Connection):
    """sqlite3 connection whose write transactions hold the file's writer lock."""

    lock_path: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        self._holding = False

    def take_turn(self) -> None:
        if not self._holding:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._holding = True

    def end_turn(self) -> None:
        if self._holding:
            self._holding = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or TurnTakingCursor)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        cursor: TurnTakingCursor = self.cursor()
        return cursor.execute(sql, parameters)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_turn()
            os.close(self._lock_fd)


class TurnTakingCursor(sqlite3.Cursor):
    connection: TurnTakingConnection

    def execute(self, sql: str, parameters: Any = (), /) -> TurnTakingCursor:
        if _writes(sql):
            self.connection.take_turn()
        super().execute(sql, parameters)
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> TurnTakingCursor:
        if _writes(sql):
            self.connection.take_turn()
        super().executemany(sql, seq_of_parameters)
        return self


def connection_class_for(database_path: str) -> type[TurnTakingConnection]:
    """A connection class bound to the lock file beside this database file."""
    lock_path = os.path.abspath(database_path) + "-writers"
    return type("TurnTakingConnection", (TurnTakingConnection,), {"lock_path": lock_path})
