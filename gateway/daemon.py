"""`escalation-gateway run`: listener, worker and outbox sender in one process.

Each part runs in its own thread and is woken by an event rather than polling hard,
so a stored mail is usually processed and its reply sent within milliseconds.
On SIGTERM/SIGINT the worker finishes the item in hand (one transaction) and stops;
anything not yet claimed stays pending in the store for the next start.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Protocol

from gateway.clock import Clock
from gateway.config import GatewayConfig
from gateway.ingest.imap.watcher import ImapWatcher
from gateway.ingest.lmtp import LmtpHandler, LmtpListener
from gateway.ingest.smtp import InboundHandler, RecipientPolicy, SmtpListener
from gateway.ingest.wake import WakeListener, wake_socket_path
from gateway.ops.monitoring import MonitoringServer, Probe
from gateway.ops.reload import ConfigReloader, ConfigSnapshot
from gateway.ops.retention import RetentionJob
from gateway.ops.startup import Listening, bind_all
from gateway.outbound.delivery import OutboxSender
from gateway.timeline.timers import TimerThread, TimerTicker
from gateway.work.processes import WakePipe, WorkerProcesses, WorkerSpec
from gateway.work.worker import Worker
from store.db import Store

log = logging.getLogger("gateway.daemon")


class Wakeup(Protocol):
    """A threading.Event, or a multiprocessing one when workers run in processes."""

    def set(self) -> None: ...
    def clear(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class Daemon:
    def __init__(
        self,
        config: GatewayConfig,
        store: Store,
        clock: Clock,
        *,
        shadow: bool = False,
        reloader: ConfigReloader | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        store.migrate()  # the parts built below may read the store
        # Hot reload (gateway/ops/reload.py) swaps the config between messages.
        self.reloader = reloader
        self.shadow_flag = shadow
        shadow = shadow or config.shadow
        self.worker = Worker(
            config,
            store,
            clock,
            shadow=shadow,
            config_version=reloader.current.version if reloader else None,
        )
        self.sender = OutboxSender(config.outbound, store, clock)
        self._active_sender = self.sender  # the one the outbox thread uses
        self._stop = threading.Event()
        self._work_ready = threading.Event()
        self._mail_ready: Wakeup = threading.Event()
        # `[worker] processes = N`: the worker runs in N child processes instead of a
        # thread (gateway/work/processes.py); wake-ups must then cross processes.
        self.worker_processes: WorkerProcesses | None = None
        self._supervisor_wake = threading.Event()
        if config.worker.processes > 0:
            self._mail_ready = WakePipe()
            self.worker_processes = WorkerProcesses(
                config.worker.processes,
                self.worker_spec(config, self.worker.config_version),
                self._mail_ready,
            )
        self._threads: list[threading.Thread] = []
        self.monitoring: MonitoringServer | None = None
        # SLA timers and status mail; wakes the outbox sender when it wrote mail.
        self.timers = TimerThread(
            TimerTicker(config, store, clock, shadow=shadow), on_mail=self._mail_ready.set
        )
        self._ways_in(config)
        # One independent watcher thread per [[imap]] mailbox; 2 if one gave up on login.
        self.exit_code = 0
        self.imap_watchers = [
            ImapWatcher(
                mailbox, store, clock, on_stored=self.notify_stored, on_fatal=self._imap_fatal
            )
            for mailbox in config.imap
        ]

    def _ways_in(self, config: GatewayConfig) -> None:
        """The SMTP and LMTP listeners, the pipe's wake-up socket and the retention job."""
        policy = RecipientPolicy(config.smtp)
        self.listener: SmtpListener | None = None
        if config.smtp.enabled:
            handler = InboundHandler(self.store, self.clock, policy, on_stored=self.notify_stored)
            self.listener = SmtpListener(config.smtp, handler)
        self.lmtp: LmtpListener | None = None
        if config.lmtp.enabled:
            lmtp = LmtpHandler(self.store, self.clock, policy, on_stored=self.notify_stored)
            self.lmtp = LmtpListener(config.lmtp, config.smtp, lmtp)
        # A pipe ingest (`escalation-gateway ingest`) commits mail and wakes us here.
        wake_path = wake_socket_path(config.store.url, config.ingest.wake_socket)
        self.wake = WakeListener(wake_path, self.notify_stored) if wake_path else None
        self.retention = RetentionJob(self.store, self.clock)
        self._retention_wake = threading.Event()

    def worker_spec(self, config: GatewayConfig, config_version: str) -> WorkerSpec:
        return WorkerSpec(
            config=config,
            store_url=self.store.url,
            clock=self.clock,
            shadow=self.shadow_flag or config.shadow,
            config_version=config_version,
            log_level=logging.getLogger().getEffectiveLevel(),
        )

    def notify_stored(self, _item_id: int | None = None) -> None:
        if self.worker_processes is not None:
            self.worker_processes.wake()
        else:
            self._work_ready.set()

    def _imap_fatal(self, _message: str) -> None:
        self.exit_code = 2
        self._stop.set()

    def _loop(self, name: str, step: Callable[[], bool], wake: Wakeup) -> None:
        """Run `step` until it reports no work, then sleep until woken or a second passes."""
        failures = 0
        while not self._stop.is_set():
            try:
                busy = step()
                failures = 0
            except Exception:
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                log.exception("%s failed; retrying in %.1fs", name, delay)
                self._stop.wait(delay)
                continue
            if not busy:
                wake.wait(1.0)
                wake.clear()

    def request_reload(self) -> None:
        if self.reloader is not None:
            self.reloader.request()
            self._work_ready.set()
            if self.worker_processes is not None:
                self._supervisor_wake.set()

    def _poll_reload(self) -> None:
        if self.reloader is not None:
            snapshot = self.reloader.poll()
            if snapshot is not None:
                self.apply(snapshot)

    def apply(self, snapshot: ConfigSnapshot) -> None:
        """Give the parts the new config; called in the worker thread between batches.

        The worker is replaced outright (classifier, case actions, outbox renderer), or,
        with worker processes, the processes are (see WorkerProcesses.replace). The
        outbox sender and the timer ticker run in other threads; each reads its
        attribute once per step, so replacing the object swaps them at their next step.
        """
        config = snapshot.config
        shadow = self.shadow_flag or config.shadow
        self.worker = Worker(
            config, self.store, self.clock, shadow=shadow, config_version=snapshot.version
        )
        if self.worker_processes is not None:
            self.worker_processes.replace(self.worker_spec(config, snapshot.version))
        self.sender = OutboxSender(config.outbound, self.store, self.clock)
        self.timers.ticker = TimerTicker(config, self.store, self.clock, shadow=shadow)
        self.config = config

    def probes(self) -> dict[str, Probe]:
        """One liveness check per part, for /healthz."""
        probes: dict[str, Probe] = {}
        if self.listener is not None:
            probes["smtp_listener"] = self.listener.is_running
        if self.lmtp is not None:
            probes["lmtp_listener"] = self.lmtp.is_running
        for thread in self._threads:
            probes[thread.name] = thread.is_alive
        probes["timers"] = self.timers.is_alive
        for watcher in self.imap_watchers:
            # Not just alive: logging in and syncing (failed logins, time since a sync).
            probes[f"imap:{watcher.config.name}"] = watcher.probe
        processes = self.worker_processes
        if processes is not None:
            # Healthy while every child runs; one being restarted after a crash is not.
            probes["worker_processes"] = lambda: processes.alive() == processes.count
        return probes

    def _monitoring(self) -> MonitoringServer:
        return MonitoringServer(
            self.config.monitoring,
            self.store,
            self.clock,
            self.probes(),
            timers_running=self.timers.is_alive,
        )

    def _work_step(self) -> bool:
        self._poll_reload()
        if not self.worker.process_batch(self.config.worker.batch_size):
            return False
        self._mail_ready.set()
        return True

    def _supervise_step(self) -> bool:
        """With worker processes, this thread only reloads config and restarts children."""
        assert self.worker_processes is not None
        self._poll_reload()
        self.worker_processes.supervise()
        return False

    def _send_step(self) -> bool:
        sender = self.sender
        if sender is not self._active_sender:
            # A reload replaced the sender; its kept connection goes with it.
            self._active_sender.close()
            self._active_sender = sender
        return sender.deliver_due(keep_open=True) > 0

    def _listening(self) -> list[Listening]:
        """The parts that bind a socket, in the order start() binds them.

        Monitoring first: it only reads, so binding it and closing it again (when a
        mail port is taken) has no effect, whereas a mail listener may take mail.
        """
        parts: list[Listening] = []
        if self.monitoring is not None:
            where = f"{self.config.monitoring.host}:{self.config.monitoring.port}"
            parts.append(
                Listening("monitoring", where, self.monitoring.start, self.monitoring.stop)
            )
        if self.listener is not None:
            smtp = self.config.smtp
            address = f"{smtp.host}:{smtp.port}"
            parts.append(Listening("SMTP", address, self.listener.start, self.listener.stop))
        if self.lmtp is not None:
            lmtp = self.config.lmtp
            address = lmtp.socket or f"{lmtp.host}:{lmtp.port}"
            parts.append(Listening("LMTP", address, self.lmtp.start, self.lmtp.stop))
        return parts

    def _loops(
        self, work: tuple[Callable[[], bool], Wakeup]
    ) -> list[tuple[str, Callable[[], bool], Wakeup]]:
        loops = [("worker", *work), ("outbox", self._send_step, self._mail_ready)]
        if self.config.retention.closed_case_raw_mail_days > 0:
            # Switched on at start, like the listeners; the number of days reloads.
            step = lambda: self.retention.step(self.config.retention)  # noqa: E731
            loops.append(("retention", step, self._retention_wake))
        return loops

    def start(self) -> None:
        """Bind every port first: one in use raises StartupError before anything runs."""
        work: tuple[Callable[[], bool], Wakeup] = (self._work_step, self._work_ready)
        if self.worker_processes is not None:
            # The supervisor wakes once a second, or at once on stop or reload.
            work = (self._supervise_step, self._supervisor_wake)
        # Made (not started) before the monitoring server, whose probes name them.
        self._threads = [
            threading.Thread(target=self._loop, args=(name, step, wake), name=name, daemon=True)
            for name, step, wake in self._loops(work)
        ]
        self.monitoring = self._monitoring() if self.config.monitoring.enabled else None
        try:
            bind_all(self._listening())
        except Exception:
            # Nothing runs; a later stop() must not stop what bind_all already closed.
            self._threads, self.monitoring = [], None
            self.listener = self.lmtp = None
            raise
        if self.worker_processes is not None:
            self.worker_processes.start()
        for thread in self._threads:
            thread.start()
        if self.wake is not None:
            self.wake.start()
        for watcher in self.imap_watchers:
            watcher.start()
        self.timers.start()
        log.info("gateway running")

    def stop(self, timeout: float = 30.0) -> None:
        if self.listener is not None:
            # Stop taking mail first, so nothing is accepted that we will not store.
            self.listener.stop()
        if self.lmtp is not None:
            self.lmtp.stop()
        if self.wake is not None:
            self.wake.stop()
        for watcher in self.imap_watchers:
            watcher.stop()
        deadline = time.monotonic() + timeout
        for watcher in self.imap_watchers:
            watcher.join(max(0.0, deadline - time.monotonic()))
        self.timers.stop(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        self._work_ready.set()
        self._retention_wake.set()
        if self.worker_processes is not None:
            self._supervisor_wake.set()
            self.worker_processes.stop(max(0.0, deadline - time.monotonic()))
        self._mail_ready.set()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._active_sender.close()
        if isinstance(self._mail_ready, WakePipe):
            self._mail_ready.close()
        if self.monitoring is not None:
            self.monitoring.stop()
        log.info("gateway stopped")

    def run_forever(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s received, finishing the message in hand", signum)
            self._stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, lambda _signum, _frame: self.request_reload())
        self.start()
        try:
            while not self._stop.is_set():
                self._stop.wait(1.0)
        finally:
            self.stop()
