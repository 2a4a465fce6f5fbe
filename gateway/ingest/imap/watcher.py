"""Watch one IMAP folder for as long as the daemon runs, surviving any outage.

One thread per configured mailbox. The thread connects, catches up on whatever
arrived while it was away, then waits for new mail with IDLE (or polls), and on any
failure logs one line, waits with capped exponential backoff and starts over. Since
progress lives in the store (last UID per folder), a reconnect or restart resumes
exactly where the last commit left off.

Because the thread survives every outage, being alive says little; `health()` says
whether the folder is really being synced: not after several refused logins in a
row, nor when no sync has succeeded within a bound (`[[imap]] unhealthy_after`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from imapclient import IMAPClient
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from gateway.clock import Clock
from gateway.config.imap import ImapMailboxConfig
from gateway.ingest.imap.connection import ImapFailure, classify, close, connect
from gateway.ingest.imap.sync import FolderSync
from gateway.timefmt import format_duration
from store.db import Store

log = logging.getLogger("gateway.imap")

# How often a waiting watcher looks up from IDLE or its poll sleep: bounds how long
# stop() and moving a just-processed message take, at no cost on the wire.
_TICK = 1.0
_VERDICT_TICK = 0.2


class Backoff:
    """Capped exponential delays: initial, 2x, 4x ... up to maximum."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.maximum, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.initial


@dataclass(frozen=True)
class WatcherHealth:
    healthy: bool
    # Why not, phrased to follow the probe's name ("imap:support has not synced ...").
    reason: str = ""


class ImapWatcher:
    def __init__(
        self,
        config: ImapMailboxConfig,
        store: Store,
        clock: Clock,
        *,
        on_stored: Callable[[int], None] = lambda _id: None,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.sync = FolderSync(config, store, clock, on_stored=on_stored)
        self.on_fatal = on_fatal
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Set while connected and caught up; lets callers and tests wait for readiness.
        self.ready = threading.Event()
        # Health, written by the watcher thread and read by /healthz: plain values.
        self.started_at: datetime | None = None
        self.failed_logins = 0  # refused in a row; a successful login resets it
        self.last_failure = ""

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        self.started_at = self.clock.now()
        self._thread = threading.Thread(
            target=self.run, name=f"imap-{self.config.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to finish; it completes the batch in hand first."""
        self._stop.set()

    def is_alive(self) -> bool:
        """True while the folder is being watched (the thread runs through outages)."""
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def health(self) -> WatcherHealth:
        """Whether the folder is being synced, and if not, why."""
        if not self.is_alive():
            return WatcherHealth(False, "is not running")
        cfg = self.config
        if self.failed_logins >= cfg.unhealthy_after_failed_logins:
            return WatcherHealth(
                False,
                f"had {self.failed_logins} failed logins in a row (last: {self.last_failure})",
            )
        synced = self.sync.last_synced_at
        since = synced or self.started_at
        if since is None:
            return WatcherHealth(True)
        quiet, bound = self.clock.now() - since, cfg.health_bound
        if quiet <= bound:
            return WatcherHealth(True)
        what = (
            f"has not synced for {format_duration(quiet)}"
            if synced is not None
            else f"has not synced since it started {format_duration(quiet)} ago"
        )
        last = f"; last error: {self.last_failure}" if self.last_failure else ""
        return WatcherHealth(False, f"{what} (limit {format_duration(bound)}){last}")

    def probe(self) -> tuple[bool, str]:
        """health() in the form the monitoring endpoint takes."""
        health = self.health()
        return health.healthy, health.reason

    # -- the loop ----------------------------------------------------------------

    def run(self) -> None:
        cfg = self.config
        backoff = Backoff(cfg.reconnect_initial.total_seconds(), cfg.reconnect_max.total_seconds())
        had_failure = False
        if self.started_at is None:
            self.started_at = self.clock.now()
        while not self._stop.is_set():
            try:
                client = connect(cfg)
            except ImapFailure as refused:
                if not self._failed(refused, backoff):
                    return
                had_failure = True
                continue
            self.failed_logins = 0
            try:
                self.sync.attach(client)
                self._catch_up()
                log.info(
                    "%s: %s, watching with %s",
                    cfg.describe(),
                    "reconnected" if had_failure else "connected",
                    "IDLE" if self._use_idle(client) else f"polling every {cfg.poll_interval}",
                )
                backoff.reset()
                had_failure = False
                self.last_failure = ""
                self.ready.set()
                self._watch(client)
            except Exception as exc:
                self.ready.clear()
                close(client)
                failure = self._expected(exc)
                if failure is None:
                    log.exception("%s: unexpected error; reconnecting", cfg.describe())
                    failure = ImapFailure("protocol", f"{type(exc).__name__}: {exc}")
                had_failure = True
                if not self._failed(failure, backoff):
                    return
                continue
            self.ready.clear()
            close(client)
        log.info("%s: stopped", cfg.describe())

    def _expected(self, exc: Exception) -> ImapFailure | None:
        if isinstance(exc, SQLAlchemyError):
            detail = exc.orig if isinstance(exc, DBAPIError) else exc
            return ImapFailure("connection", f"store unavailable: {detail}")
        return classify(exc)

    def _failed(self, failure: ImapFailure, backoff: Backoff) -> bool:
        """Log one line and wait before the next attempt; False means give up."""
        cfg = self.config
        self.last_failure = str(failure)
        if failure.kind == "auth":
            self.failed_logins += 1
        if failure.kind == "auth" and cfg.exit_on_auth_failure:
            message = f"{cfg.describe()}: {failure}; giving up (exit_on_auth_failure)"
            log.error("%s", message)
            if self.on_fatal is not None:
                self.on_fatal(message)
            return False
        delay = backoff.next()
        level = logging.ERROR if failure.kind in {"auth", "folder"} else logging.WARNING
        log.log(level, "%s: %s; retrying in %.1fs", cfg.describe(), failure, delay)
        self._stop.wait(delay)
        return True

    def _use_idle(self, client: IMAPClient) -> bool:
        if self.config.mode == "poll":
            return False
        offered = bool(client.has_capability("IDLE"))
        if self.config.mode == "idle" and not offered:
            log.warning("%s: server does not offer IDLE; polling instead", self.config.describe())
        return offered

    def _catch_up(self) -> None:
        self.sync.catch_up()
        self.sync.settle()

    def _watch(self, client: IMAPClient) -> None:
        idle = self._use_idle(client)
        while not self._stop.is_set():
            if idle:
                self._idle_round(client)
            else:
                self._poll_round(client)
            if self._stop.is_set():
                return
            self._catch_up()

    def _tick(self) -> float:
        return _VERDICT_TICK if self.sync.awaiting else _TICK

    def _wants_settling(self) -> bool:
        return bool(self.sync.awaiting) and bool(self.sync.verdicts())

    def _idle_round(self, client: IMAPClient) -> None:
        """IDLE until the server reports something, a verdict is in, or it is time to check."""
        cfg = self.config
        # Ending IDLE and sending NOOP proves the connection is alive; a dead peer
        # would otherwise go unnoticed for as long as TCP keeps quiet.
        period = min(cfg.idle_timeout, cfg.noop_interval).total_seconds()
        round_end = time.monotonic() + period
        client.idle()
        timed_out = False
        while not self._stop.is_set():
            remaining = round_end - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            wait = min(remaining, self._tick())
            started = time.monotonic()
            responses = client.idle_check(timeout=wait)
            # An early return with nothing parsed means the socket hit EOF; leaving
            # IDLE then surfaces the broken connection as an error.
            if responses or time.monotonic() - started < wait / 2:
                break
            if self._wants_settling():
                break
        client.idle_done()
        if timed_out:
            client.noop()

    def _poll_round(self, client: IMAPClient) -> None:
        deadline = time.monotonic() + self.config.poll_interval.total_seconds()
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._stop.wait(min(remaining, self._tick()))
            if self._wants_settling():
                self.sync.settle()
        client.noop()
