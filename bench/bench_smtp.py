"""SMTP ingest benchmark: the full gateway against a bare aiosmtpd listener, same run.

Shared machines are noisy, so the result is a ratio to a baseline measured moments
before on the same machine: a bare aiosmtpd listener that only counts messages.

    python bench/bench_smtp.py                 # SQLite in a temp folder
    python bench/bench_smtp.py --store-url postgresql://postgres@127.0.0.1/test

Part 1 sends N 3 kB mails from 8 concurrent clients and measures throughput until
every case and its acknowledgement are committed. Part 2 sends at a steady 20 msg/s
and measures, per mail, the time from the SMTP 250 to the acknowledgement reaching
a real SMTP sink (the smarthost).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import CountingHandler, make_store, three_kb_mail
from gateway.clock import SystemClock
from gateway.config import parse_config
from gateway.daemon import Daemon
from store.db import Store
from store.models import InboundItem, OutboxMail
from tests.support.mails import build_mail, send
from tests.support.smtp_sink import free_port

CLIENTS = 8


class RecordingHandler:
    """Smarthost stand-in: notes each recipient with its arrival time, nothing else."""

    def __init__(self, log_path: str) -> None:
        self.log = open(log_path, "a", buffering=1)  # noqa: SIM115  (lives with the process)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()  # system-wide on Linux, so comparable across processes
        for rcpt in envelope.rcpt_tos:
            self.log.write(f"{rcpt} {now}\n")
        return "250 OK"


def _run_sink(port: int, log_path: str, ready: Any, stop: Any) -> None:
    controller = Controller(RecordingHandler(log_path), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


class SinkProcess:
    """A real SMTP smarthost in its own process, as it would be on its own machine."""

    def __init__(self, folder: Path) -> None:
        context = multiprocessing.get_context("fork")
        self.port = free_port()
        self.log_path = folder / f"sink-{self.port}.log"
        self.log_path.touch()
        self._ready, self._stop = context.Event(), context.Event()
        self._process = context.Process(
            target=_run_sink, args=(self.port, str(self.log_path), self._ready, self._stop)
        )

    def __enter__(self) -> SinkProcess:
        self._process.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(10)

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    def arrivals(self) -> list[tuple[str, float]]:
        lines = self.log_path.read_text().splitlines()
        return [(rcpt, float(at)) for rcpt, at in (line.split() for line in lines)]


def _client(job: tuple[int, list[bytes]]) -> int:
    import smtplib

    port, chunk = job
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
        for raw in chunk:
            smtp.sendmail("alice@acme.example", ["support@example.com"], raw)
    return len(chunk)


def blast(port: int, mails: list[bytes]) -> float:
    """Send from CLIENTS concurrent connections in other processes.

    The load generator runs outside the measured process, as a real sending server
    would, so its CPU does not count against either listener.
    """
    chunks = [(port, mails[i::CLIENTS]) for i in range(CLIENTS)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(CLIENTS) as pool:
        sent = sum(pool.map(_client, chunks))
    assert sent == len(mails)
    return started


def baseline(mails: list[bytes]) -> float:
    handler = CountingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        started = blast(port, mails)
        while handler.count < len(mails):
            time.sleep(0.001)
        elapsed = time.perf_counter() - started
    finally:
        controller.stop()
    assert handler.count == len(mails)
    return len(mails) / elapsed


def gateway_config(store: Store, sink_port: int, cap: int, processes: int) -> Any:
    return parse_config(
        {
            "store": {"url": store.url},
            "worker": {"processes": processes},
            "smtp": {"port": free_port(), "accept_recipients": ["support@example.com"]},
            "outbound": {"mode": "smtp", "host": "127.0.0.1", "port": sink_port},
            "auto_reply": {"max_per_address_per_hour": cap},
        },
        "<bench>",
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuShares:
    """How busy each part was during the burst, as a share of one core.

    The load generators are not counted; they run in their own processes as sending
    servers would. What this tells is which part bounds the throughput.
    """

    def __init__(self, parts: dict[str, list[int]]) -> None:
        self.parts = parts
        self.started = time.perf_counter()
        self.before = {name: self._total(pids) for name, pids in parts.items()}

    @staticmethod
    def _total(pids: list[int]) -> float:
        return sum(cpu_seconds(pid) for pid in pids)

    def report(self) -> str:
        elapsed = time.perf_counter() - self.started
        shares = [
            f"{name} {(self._total(pids) - self.before[name]) / elapsed:.0%}"
            for name, pids in self.parts.items()
        ]
        return "cpu during the burst (of one core): " + ", ".join(shares)


def count(store: Store, query: Any) -> int:
    with store.session() as session:
        return int(session.scalar(query) or 0)


def gateway_throughput(
    store: Store, mails: list[bytes], folder: Path, processes: int
) -> tuple[float, int, int, str]:
    sink = SinkProcess(folder).__enter__()
    config = gateway_config(store, sink.port, cap=len(mails) * 2, processes=processes)
    daemon = Daemon(config, store, SystemClock())
    daemon.start()
    workers = daemon.worker_processes.pids() if daemon.worker_processes is not None else []
    # The gateway process also runs this script's polling and its client pool.
    parts = {"gateway process": [os.getpid()], "smarthost": [sink.pid]}
    if workers:
        parts["worker processes"] = workers
    shares = CpuShares(parts)
    try:
        started = blast(config.smtp.port, mails)
        acks = select(func.count()).where(OutboxMail.kind == "acknowledgement")
        while count(store, acks) < len(mails):
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        cpu = shares.report()
        stored = count(store, select(func.count()).select_from(InboundItem))
        done = count(store, select(func.count()).where(InboundItem.state == "done"))
    finally:
        daemon.stop()
        sink.__exit__()
    return len(mails) / elapsed, stored, done, cpu


def latency_at_rate(
    store: Store, rate: float, seconds: float, folder: Path, processes: int
) -> list[float]:
    sink = SinkProcess(folder).__enter__()
    config = gateway_config(store, sink.port, cap=10_000, processes=processes)
    daemon = Daemon(config, store, SystemClock())
    daemon.start()
    accepted: dict[str, float] = {}
    try:
        total = int(rate * seconds)
        start = time.perf_counter()
        for n in range(total):
            # Paced against the start, so a slow send does not shift every later one.
            time.sleep(max(0.0, n / rate - (time.perf_counter() - start)))
            subject = f"URGENT: latency probe {n}"
            send(
                config.smtp.port,
                build_mail(subject=subject, sender=f"p{n}@acme.example"),
                mail_from=f"p{n}@acme.example",
            )
            accepted[f"p{n}@acme.example"] = time.monotonic()
        deadline = time.monotonic() + 60
        while len(sink.arrivals()) < total * 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        daemon.stop()
        sink.__exit__()
    return [at - accepted[rcpt] for rcpt, at in sink.arrivals() if rcpt in accepted]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store-url", default=None)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=1,
        help="[worker] processes for the gateway (0: the worker is a thread of `run`)",
    )
    args = parser.parse_args()
    mails = [three_kb_mail(n, "bench") for n in range(args.messages)]
    with tempfile.TemporaryDirectory() as folder:
        store = make_store(args.store_url, Path(folder))
        print(
            f"store: {store.engine.dialect.name}; {args.messages} mails of "
            f"{len(mails[0])} bytes from {CLIENTS} clients; worker processes: "
            f"{args.worker_processes}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        )
        base = baseline(mails)
        print(f"baseline  bare aiosmtpd, count only:      {base:8.1f} msg/s")
        full, stored, done, cpu = gateway_throughput(
            store, mails, Path(folder), args.worker_processes
        )
        print(
            f"gateway   store+parse+classify+case+ack:  {full:8.1f} msg/s   "
            f"ratio {full / base:.3f}x"
        )
        lost = args.messages - stored
        print(f"          sent {args.messages}, stored {stored}, processed {done}, lost {lost}")
        print(f"          {cpu}")
        store = make_store(args.store_url, Path(folder))
        latencies = latency_at_rate(
            store, args.rate, args.seconds, Path(folder), args.worker_processes
        )
        print(
            f"latency   250 -> acknowledgement at sink, {args.rate:.0f} msg/s for "
            f"{args.seconds:.0f}s ({len(latencies)} mails): "
            f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms"
        )
        store.dispose()


if __name__ == "__main__":
    main()
