"""What `run` must get before anything starts, each failure one line (StartupError).

The listening sockets (SMTP, LMTP, monitoring) are bound first, in order. When one
cannot be had (a port in use, a privileged port, an address the host does not own)
the ones already bound are closed again and start-up stops: no thread has run, no
mail was taken, and the CLI prints the line and exits 2.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger("gateway.daemon")


class StartupError(Exception):
    """`run` cannot start; `str()` is the one line for the admin."""


@dataclass(frozen=True)
class Listening:
    """One part that listens: what it is, where, and how to start and stop it."""

    what: str  # "SMTP", "LMTP", "monitoring"
    address: str  # "127.0.0.1:2525" or a socket path
    start: Callable[[], object]
    stop: Callable[[], object]


def _reason(exc: OSError) -> str:
    # aiosmtpd's own text repeats the address; the errno's text is all that is missing.
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__


def bind_all(parts: Sequence[Listening]) -> None:
    """Start each part in order; if one cannot listen, stop the others and raise."""
    started: list[Listening] = []
    for part in parts:
        try:
            part.start()
        except OSError as exc:
            # The failed part may hold a half-made server (aiosmtpd keeps its loop).
            for undo in (part, *reversed(started)):
                _quietly_stop(undo)
            raise StartupError(
                f"cannot listen for {part.what} on {part.address}: {_reason(exc)}"
            ) from None
        started.append(part)


def _quietly_stop(part: Listening) -> None:
    try:
        part.stop()
    except Exception as exc:  # it never fully started; there is nothing left to release
        log.debug("stopping %s after a failed start: %s", part.what, exc)
