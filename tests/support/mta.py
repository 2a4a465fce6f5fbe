"""A sending MTA as the gateway's SMTP listener meets it: it keeps a mail queued and
tries again until it gets a 250, so a daemon killed mid-burst loses nothing it accepted."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable


class AttemptFailed(Exception):
    """An attempt that went wrong in a way the sender notices only by a missing reply."""


class RetryingMta:
    """Delivers mails to support@example.com over the given ports (MX hosts) in turn,
    waiting 0.1 s after a failed attempt, doubled each time up to `longest_wait`, and
    giving up on a mail after `retry_for` seconds. Counts what it saw."""

    def __init__(self, ports: list[int], *, retry_for: float, longest_wait: float = 0.1):
        self.ports = ports
        self.retry_for = retry_for
        self.longest_wait = longest_wait
        self.accepted: set[int] = set()  # numbers of the mails that got their 250
        self.retries = 0
        self.lock = threading.Lock()

    def deliver(
        self,
        number: int,
        sender: str,
        raw: bytes,
        *,
        first_attempt: Callable[[int], None] | None = None,
    ) -> None:
        """Send mail `number` (which also picks the first port) until accepted;
        `first_attempt`, given a port, replaces the first plain send."""
        deadline = time.monotonic() + self.retry_for
        turn, wait = number, 0.1
        while True:
            port = self.ports[turn % len(self.ports)]
            try:
                if first_attempt is not None:
                    attempt, first_attempt = first_attempt, None
                    attempt(port)
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                    client.sendmail(sender, ["support@example.com"], raw)
                with self.lock:
                    self.accepted.add(number)
                return
            except (OSError, smtplib.SMTPException, AttemptFailed):
                if time.monotonic() > deadline:
                    raise
                with self.lock:
                    self.retries += 1
                time.sleep(wait)
                wait, turn = min(2 * wait, self.longest_wait), turn + 1
