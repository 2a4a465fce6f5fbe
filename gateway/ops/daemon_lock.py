"""One `run` per SQLite file: an exclusive lock beside the database, held for life.

SQLite has one writer at a time and the daemon's parts (worker, timers, sender) are
written for one process owning the file; two daemons would both send every timer's
mail. So `run` takes an exclusive `flock` on `<database>.lock` before it touches the
store and keeps it until it exits. The kernel drops the lock with the process, so a
daemon killed with SIGKILL (or a crashed host) never blocks the next start, and no
stale lock file needs removing: the file stays, only the lock matters.

PostgreSQL stores take no lock: several daemons may share one by design (claims use
`FOR UPDATE SKIP LOCKED`). An in-memory SQLite database is private to its process.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url

from gateway.ops.startup import StartupError


class DaemonLockHeld(StartupError):
    """Another `run` holds the lock of this SQLite file."""


def lock_path_for(store_url: str) -> str | None:
    """`<database>.lock` for a SQLite file store; None when no lock applies."""
    url = make_url(store_url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    # One file reached through a symlink or a relative path is still one file.
    return os.path.realpath(database) + ".lock"


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "another process"
    return f"pid {text}" if text.isdigit() else "another process"


class DaemonLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise DaemonLockHeld (or StartupError) with one line."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StartupError(f"cannot open lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            database = self.path.removesuffix(".lock")
            raise DaemonLockHeld(
                f"another run already uses {database} ({self.path} is held by {holder}); "
                "one daemon per SQLite file, use PostgreSQL to run several"
            ) from None
        # Who holds it, for the refusal above; written only once the lock is ours.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            # Closing the only descriptor drops the flock; the file itself stays.
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None


@contextmanager
def single_daemon(store_url: str) -> Iterator[DaemonLock | None]:
    """Hold the store's daemon lock for the body (nothing for PostgreSQL)."""
    path = lock_path_for(store_url)
    if path is None:
        yield None
        return
    lock = DaemonLock(path)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
