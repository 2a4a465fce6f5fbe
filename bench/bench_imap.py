"""Benchmark: IMAP mail to committed case, against a bare fetch-and-count loop.

Starts a private Dovecot (needs root and dovecot, like the test suite), then twice
appends N messages as fast as one IMAP connection allows:

1. baseline: a bare imapclient loop (IDLE, UID SEARCH, FETCH BODY.PEEK[], count);
2. gateway: the daemon with one [[imap]] watcher in IDLE mode, its worker and its
   outbox sender (to a maildir), timing each message from APPEND to the commit of
   its case.

Prints p50/p99 latency and throughput for both and the ratios.

    .venv/bin/python bench/bench_imap.py [--messages 500] [--store-url URL]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imapclient import IMAPClient  # noqa: E402

from gateway.clock import SystemClock  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.daemon import Daemon  # noqa: E402
from store.db import Store  # noqa: E402
from tests.support.dovecot import DovecotServer  # noqa: E402

PASSWORD = "secret"
_SEQ = re.compile(rb"X-Bench-Seq: (\d+)")


def message(seq: int) -> bytes:
    return (
        f"From: Customer {seq} <customer{seq}@acme.example>\r\n"
        f"To: support@example.com\r\n"
        f"Subject: URGENT: checkout is down ({seq})\r\n"
        f"Message-ID: <bench-{seq}-{time.time_ns()}@acme.example>\r\n"
        f"Date: Mon, 23 Nov 2026 14:00:00 +0000\r\n"
        f"X-Bench-Seq: {seq}\r\n"
        f"\r\n"
        f"Our checkout has been failing for ten minutes. Please help.\r\n"
    ).encode()


@dataclass
class Run:
    name: str
    appended: dict[int, float] = field(default_factory=dict)
    done: dict[int, float] = field(default_factory=dict)
    stored: dict[int, float] = field(default_factory=dict)  # gateway only: watcher commit
    lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self, seq: int) -> None:
        with self.lock:
            self.done.setdefault(seq, time.monotonic())

    def wait(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.done) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name}: only {len(self.done)}/{count} done in {timeout}s")
            time.sleep(0.01)

    def summary(self) -> dict[str, float]:
        latencies = sorted(self.done[s] - self.appended[s] for s in self.done)
        span = max(self.done.values()) - min(self.appended.values())
        return {
            "p50": statistics.median(latencies),
            "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)],
            "max": latencies[-1],
            "throughput": len(latencies) / span,
        }


RATE = 0.0  # messages per second; 0 appends back to back


def append_all(server: DovecotServer, user: str, run: Run, count: int) -> None:
    """One connection, back to back (or paced at RATE), as an MTA delivering would."""
    start = time.monotonic()
    with server.session(user, PASSWORD) as client:
        for seq in range(count):
            if RATE:
                time.sleep(max(0.0, start + seq / RATE - time.monotonic()))
            raw = message(seq)
            run.appended[seq] = time.monotonic()
            client.append("INBOX", raw)


def baseline(server: DovecotServer, count: int) -> Run:
    run = Run("baseline")
    user = "bench-base"
    server.add_user(user, PASSWORD)
    ready = threading.Event()

    def watch() -> None:
        client = IMAPClient(server.host, port=server.port, ssl=False, timeout=30)
        client.login(user, PASSWORD)
        client.select_folder("INBOX")
        last = 0
        ready.set()
        while len(run.done) < count:
            client.idle()
            client.idle_check(timeout=1)
            client.idle_done()
            uids = [u for u in client.search(["UID", f"{last + 1}:*"]) if u > last]
            if not uids:
                continue
            for data in client.fetch(uids, ["BODY.PEEK[]"]).values():
                match = _SEQ.search(data[b"BODY[]"])
                if match:
                    run.finish(int(match.group(1)))
            last = max(uids)
        client.logout()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(10)
    append_all(server, user, run, count)
    run.wait(count, timeout=120)
    return run


class CommitWatcher:
    """Notes when each item's case becomes visible in the store, from outside the daemon.

    The worker may run in another process, so its commits are observed the way any
    reader would see them: a query every few milliseconds for items newly done.
    """

    def __init__(self, store: Store) -> None:
        from sqlalchemy import func, select

        from store.models import InboundItem

        self.store = store
        self.seen: dict[int, float] = {}
        # A PostgreSQL store may hold earlier runs' items; only this run's count.
        with store.session() as session:
            self.after = session.scalar(select(func.max(InboundItem.id))) or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        from sqlalchemy import select

        from store.models import InboundItem

        # Every id below `low` is seen; a poll reads only from there up, so it stays a
        # few rows (items commit nearly in id order) and costs the daemon's process,
        # which this thread shares, almost nothing.
        low = self.after + 1
        while not self._stop.is_set():
            with self.store.session() as session:
                done = session.scalars(
                    select(InboundItem.id).where(InboundItem.id >= low, InboundItem.state == "done")
                )
                now = time.monotonic()
                for item_id in done:
                    self.seen.setdefault(item_id, now)
            while low in self.seen:
                low += 1
            self._stop.wait(0.005)

    def __enter__(self) -> CommitWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def gateway(
    server: DovecotServer, count: int, store_url: str, workdir: Path, processes: int
) -> Run:
    run = Run("gateway")
    user = "bench-gw"
    server.add_user(user, PASSWORD)
    store = Store(store_url)
    config = parse_config(
        {
            "store": {"url": store_url},
            "smtp": {"enabled": False},
            "outbound": {"mode": "maildir", "maildir": str(workdir / "outgoing")},
            "worker": {"processes": processes},
            "imap": [
                {
                    "name": "bench",
                    "host": server.host,
                    "port": server.port,
                    "security": "none",
                    "username": user,
                    "password": PASSWORD,
                    "mode": "idle",
                    "initial_scan": "all",
                }
            ],
        },
        "<bench>",
    )
    daemon = Daemon(config, store, SystemClock())
    watcher = daemon.imap_watchers[0]
    stored: dict[int, float] = {}
    notify = watcher.sync.on_stored

    def on_stored(item_id: int) -> None:
        stored[item_id] = time.monotonic()
        notify(item_id)

    watcher.sync.on_stored = on_stored
    daemon.start()
    if not watcher.ready.wait(10):
        raise SystemExit("gateway watcher did not connect")
    try:
        with CommitWatcher(store) as commits:
            append_all(server, user, run, count)
            deadline = time.monotonic() + 300
            while len(commits.seen) < count and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        daemon.stop()
    seqs = {item_id: _seq_of_item(store, item_id) for item_id in commits.seen}
    run.done = {seqs[item_id]: at for item_id, at in commits.seen.items()}
    run.stored = {seqs[item_id]: stored[item_id] for item_id in commits.seen}
    if len(run.done) < count:
        raise SystemExit(f"gateway: only {len(run.done)}/{count} done")
    store.dispose()
    return run


def _seq_of_item(store: Store, item_id: int) -> int:
    from store.models import InboundItem

    with store.session() as session:
        item = session.get(InboundItem, item_id)
        assert item is not None
        match = _SEQ.search(item.raw)
        assert match is not None
        return int(match.group(1))


def report(runs: list[Run]) -> None:
    results = {run.name: run.summary() for run in runs}
    print(f"{'':10} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'msg/s':>9}")
    for name, r in results.items():
        print(
            f"{name:10} {r['p50'] * 1000:9.1f} {r['p99'] * 1000:9.1f} {r['max'] * 1000:9.1f}"
            f" {r['throughput']:9.1f}"
        )
    base, gw = results["baseline"], results["gateway"]
    print(
        f"ratio gateway/baseline: p50 x{gw['p50'] / base['p50']:.1f}, "
        f"p99 x{gw['p99'] / base['p99']:.1f}, "
        f"throughput x{gw['throughput'] / base['throughput']:.2f}"
    )
    gw_run = next(run for run in runs if run.name == "gateway")
    to_store = sorted(gw_run.stored[s] - gw_run.appended[s] for s in gw_run.stored)
    print(
        f"gateway breakdown: APPEND->stored p50 {statistics.median(to_store) * 1000:.1f} ms,"
        f" p99 {to_store[max(0, int(len(to_store) * 0.99) - 1)] * 1000:.1f} ms"
        " (the rest is the worker's queue and processing)"
    )
    start = min(gw_run.appended.values())
    print(
        "gateway timeline from the first APPEND: last APPEND "
        f"{(max(gw_run.appended.values()) - start) * 1000:.0f} ms, "
        f"first stored {(min(gw_run.stored.values()) - start) * 1000:.0f} ms, "
        f"last stored {(max(gw_run.stored.values()) - start) * 1000:.0f} ms, "
        f"first case {(min(gw_run.done.values()) - start) * 1000:.0f} ms, "
        f"last case {(max(gw_run.done.values()) - start) * 1000:.0f} ms"
    )
    verdict = "met" if gw["p99"] < 2.0 else "MISSED"
    print(f"target p99 < 2 s: {verdict} ({gw['p99']:.3f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument(
        "--store-url", default=None, help="store to use (default: a fresh SQLite file)"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="append at this many msg/s (default: burst)"
    )
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=1,
        help="[worker] processes for the gateway (0: the worker is a thread of `run`)",
    )
    args = parser.parse_args(argv)
    global RATE
    RATE = args.rate
    with tempfile.TemporaryDirectory(prefix="bench-imap-") as tmp:
        workdir = Path(tmp)
        store_url = args.store_url or f"sqlite:///{workdir / 'bench.db'}"
        Store(store_url).migrate()
        pace = f"{args.rate:g} msg/s" if args.rate else "burst"
        print(
            f"store: {store_url.split('@')[-1]}, messages: {args.messages}, appends: {pace}, "
            f"worker processes: {args.worker_processes}"
        )
        with DovecotServer() as server:
            runs: list[Any] = [baseline(server, args.messages)]
            runs.append(gateway(server, args.messages, store_url, workdir, args.worker_processes))
        report(runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
