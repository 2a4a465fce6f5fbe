"""The daemon's wake-up socket: how a pipe ingest hands its mail to a running daemon.

A pipe transport starts one `escalation-gateway ingest` per mail. That process only
commits the raw mail and then sends one datagram to a unix socket the daemon binds;
the datagram wakes the daemon's worker at once, and its delivery answers the other
question the pipe has: is a daemon running at all? Sending to a path where no
process is bound fails (no such file, or connection refused), and only then does the
pipe process the mail itself. Without the datagram the daemon would still find the
mail at its next poll of the store, within a second.

Standard library only: the pipe path imports this, and every import there costs
each mail its start-up time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from urllib.parse import unquote

log = logging.getLogger("gateway.wake")

WAKE_MESSAGE = b"stored"
_STOP_MESSAGE = b""


def sqlite_file(store_url: str) -> str | None:
    """The database file of a `sqlite:///...` URL; None for PostgreSQL or memory."""
    scheme, sep, rest = store_url.partition("://")
    if not sep or not scheme.startswith("sqlite"):
        return None
    # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy reads them.
    path = unquote(rest.removeprefix("/").split("?", 1)[0])
    if not path or path == ":memory:":
        return None
    return path


def wake_socket_path(store_url: str, configured: str) -> str | None:
    """`[ingest] wake_socket`, else `<database file>-wake` beside a SQLite store."""
    if configured:
        return configured
    database = sqlite_file(store_url)
    return f"{database}-wake" if database else None


def wake_daemon(path: str) -> bool:
    """Wake the daemon bound at `path`; False when no daemon is listening there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        try:
            sender.sendto(WAKE_MESSAGE, path)
        except BlockingIOError:
            return True  # its queue is full of wake-ups: it is alive and has work
        except OSError:
            # No such file, connection refused (nobody bound), not a socket, a path
            # too long for a socket: no daemon can be reached there.
            return False
    return True


def _remove_stale_socket(path: str) -> None:
    """Remove a socket left by a daemon that was killed; never anything else."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


class WakeListener:
    """Binds the wake-up socket in `run` and calls `on_wake` for every datagram."""

    def __init__(self, path: str, on_wake: Callable[[], None], mode: int = 0o660) -> None:
        self.path = path
        self.on_wake = on_wake
        self.mode = mode
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> bool:
        """Bind and listen; False (and a log line) if another live daemon holds the path."""
        if wake_daemon(self.path):
            # Several daemons sharing PostgreSQL on one host: the first one is woken,
            # the others find the mail at their poll, which is just as correct.
            log.warning("wake socket %s is held by another running daemon", self.path)
            return False
        _remove_stale_socket(self.path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            listener.bind(self.path)
            os.chmod(self.path, self.mode)
        except OSError as exc:
            listener.close()
            # Not fatal: a pipe ingest then processes its mail itself, as without a daemon.
            log.warning(
                "wake socket %s not available (%s); pipe ingest will not hand over mail",
                self.path,
                exc,
            )
            return False
        self._socket = listener
        self._thread = threading.Thread(target=self._serve, name="wake-socket", daemon=True)
        self._thread.start()
        log.info("wake socket on %s", self.path)
        return True

    def _serve(self) -> None:
        assert self._socket is not None
        while not self._stopping.is_set():
            try:
                message = self._socket.recv(64)
            except OSError:
                return
            if message == _STOP_MESSAGE and self._stopping.is_set():
                return
            self.on_wake()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        if self._socket is None:
            return
        self._stopping.set()
        with (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender,
            contextlib.suppress(OSError),
        ):
            sender.sendto(_STOP_MESSAGE, self.path)
        if self._thread is not None:
            self._thread.join(5.0)
        self._socket.close()
        self._socket = None
        _remove_stale_socket(self.path)
