"""The worker in child processes, for `[worker] processes = N` (N >= 1).

A Python process runs one thread at a time. In a busy burst the worker (parse,
classify, open the case, render two mails) needs several times the CPU of the SMTP
listener and the sender together, and sharing one interpreter with them caps the
whole daemon at what one core gives. In its own process the worker gets a core of
its own; the store stays the only channel for data between the parts, exactly as
with the thread.

Children are started with "spawn": the parent already runs threads (listener,
sender, timers), and forking a threaded process can copy a lock in its held state.
Each child opens its own store connection and builds its own Worker from a pickled
copy of the config.

Wake-ups cross the process boundary as bytes on pipes (`WakePipe`), not as
multiprocessing Events: an Event's set() waits for every sleeper to acknowledge, so
one child killed while waiting (OOM killer, SIGKILL) would hang the parent's next
set() for good. The parent wakes a child after storing mail; a child wakes the
parent's sender after committing outgoing mail.

The parent stops a child with SIGTERM; the child finishes the batch in hand and
exits, as it also does when its parent has gone. A config reload replaces the whole
generation: the old children finish their batch and exit, then new ones start with
the new config. A child that dies is restarted by the supervisor with a delay that
doubles up to a minute, so a crash loop cannot spin.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import select
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext, SpawnProcess
from types import FrameType

from gateway.clock import Clock
from gateway.config import GatewayConfig
from gateway.log_format import TEXT_FORMAT, use_format
from gateway.work.worker import Worker
from store.db import Store

log = logging.getLogger("gateway.worker_processes")

_IDLE_WAIT = 1.0  # seconds a child sleeps without a wake-up before looking anyway
_MAX_RESTART_DELAY = 60.0


def context() -> SpawnContext:
    return multiprocessing.get_context("spawn")


class WakePipe:
    """An Event-like wake-up over a pipe: any process holding it may set or wait.

    A written byte is a pending wake-up. Both ends are non-blocking: a full pipe
    already holds a wake-up, so a write that would block is simply dropped.
    """

    def __init__(self) -> None:
        self._reader, self._writer = context().Pipe(duplex=False)
        os.set_blocking(self._reader.fileno(), False)
        os.set_blocking(self._writer.fileno(), False)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(self._writer.fileno(), b"\0")

    def wait(self, timeout: float | None = None) -> bool:
        ready, _, _ = select.select([self._reader.fileno()], [], [], timeout)
        return bool(ready)

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._reader.fileno(), 4096):
                pass

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a child needs to build its Worker; pickled into the child."""

    config: GatewayConfig
    store_url: str
    clock: Clock
    shadow: bool
    config_version: str | None
    log_level: int = logging.INFO


def child_main(spec: WorkerSpec, wake: WakePipe, ready: WakePipe, mail_ready: WakePipe) -> None:
    """The body of one worker process: process batches until told to stop."""
    stopping = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        wake.set()

    # SIGTERM comes from the parent, or from systemd to the whole unit; Ctrl-C reaches
    # the whole process group. Each time the batch in hand is finished, not abandoned.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logging.basicConfig(level=spec.log_level, format=TEXT_FORMAT)
    use_format(spec.config.logging.format)
    store = Store(spec.store_url)
    worker = Worker(
        spec.config, store, spec.clock, shadow=spec.shadow, config_version=spec.config_version
    )
    parent = multiprocessing.parent_process()
    failures = 0
    ready.set()
    log.info("worker process started")
    try:
        while not stopping and (parent is None or parent.is_alive()):
            try:
                outcomes = worker.process_batch(spec.config.worker.batch_size)
                failures = 0
            except Exception:
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                log.exception("worker process failed; retrying in %.1fs", delay)
                # New mail does not cut the pause short (the store is likely what
                # failed); a stop request does.
                resume_at = time.monotonic() + delay
                while not stopping and (remaining := resume_at - time.monotonic()) > 0:
                    wake.wait(remaining)
                    wake.clear()
                continue
            if outcomes:
                mail_ready.set()
                continue
            wake.wait(_IDLE_WAIT)
            wake.clear()
    finally:
        store.dispose()
        log.info("worker process stopped")


@dataclass
class _Child:
    index: int
    process: SpawnProcess
    wake: WakePipe
    ready: WakePipe
    started_at: float
    restart_at: float | None = None
    restart_delay: float = 0.5

    def close(self) -> None:
        self.wake.close()
        self.ready.close()


@dataclass
class _Generation:
    """Children started with one config; replaced as a whole on reload."""

    spec: WorkerSpec
    children: list[_Child] = field(default_factory=list)


class WorkerProcesses:
    def __init__(self, count: int, spec: WorkerSpec, mail_ready: WakePipe) -> None:
        self.count = count
        self.mail_ready = mail_ready
        self._generation = _Generation(spec)

    def _spawn(self, spec: WorkerSpec, index: int) -> _Child:
        wake, ready = WakePipe(), WakePipe()
        process = context().Process(
            target=child_main,
            args=(spec, wake, ready, self.mail_ready),
            name=f"worker-{index}",
            daemon=True,
        )
        process.start()
        return _Child(index, process, wake, ready, time.monotonic())

    def start(self, ready_timeout: float = 60.0) -> None:
        """Start the children and wait until each can process (about a second)."""
        generation = self._generation
        generation.children = [self._spawn(generation.spec, i) for i in range(self.count)]
        deadline = time.monotonic() + ready_timeout
        for child in generation.children:
            while not child.ready.wait(0.1):
                if not child.process.is_alive() or time.monotonic() > deadline:
                    # The supervisor restarts it; mail waits safely in the store.
                    log.error("worker process %s did not start", child.process.name)
                    break
        log.info("started %s worker process(es)", self.count)

    def wake(self) -> None:
        """New mail is in the store."""
        for child in self._generation.children:
            child.wake.set()

    def pids(self) -> list[int]:
        return [c.process.pid for c in self._generation.children if c.process.pid]

    def alive(self) -> int:
        return sum(1 for c in self._generation.children if c.process.is_alive())

    def replace(self, spec: WorkerSpec, timeout: float = 30.0) -> None:
        """Swap in a new config: old children finish their batch, new ones take over.

        The old generation is gone before the new one starts, so no mail is ever
        decided by a mix of the two configs in one batch's time; the pause costs the
        new children's start-up, about a second, with mail waiting in the store.
        """
        self.stop(timeout)
        self._generation = _Generation(spec)
        self.start()

    def supervise(self, now: float | None = None) -> None:
        """Restart children that died. Called about once a second."""
        now = time.monotonic() if now is None else now
        generation = self._generation
        for position, child in enumerate(generation.children):
            if child.process.is_alive():
                continue
            if child.restart_at is None:
                # A child that ran a good while before dying starts the backoff afresh.
                lived = now - child.started_at
                previous = 0.5 if lived > _MAX_RESTART_DELAY else child.restart_delay
                child.restart_delay = min(_MAX_RESTART_DELAY, 2 * previous)
                child.restart_at = now + child.restart_delay
                log.error(
                    "worker process %s exited with code %s; restarting in %.0fs",
                    child.process.name,
                    child.process.exitcode,
                    child.restart_delay,
                )
            elif now >= child.restart_at:
                child.process.join(0)
                child.close()
                replacement = self._spawn(generation.spec, child.index)
                replacement.restart_delay = child.restart_delay
                generation.children[position] = replacement

    def stop(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        children = self._generation.children
        for child in children:
            if child.process.is_alive():
                child.process.terminate()  # SIGTERM: finish the batch in hand, then exit
        for child in children:
            child.process.join(max(0.0, deadline - time.monotonic()))
            if child.process.is_alive():
                log.error("worker process %s did not stop in time; killing", child.process.name)
                child.process.kill()
                child.process.join(5)
            child.close()
