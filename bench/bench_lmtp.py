"""LMTP ingest benchmark: the gateway's LMTP listener against a bare aiosmtpd LMTP counter.

Both listen on a unix socket, as Postfix's `lmtp:unix:` would use them, and both are
measured in the same run. CLIENTS processes (outside the measured process, as a mail
server's delivery agents would be) each hold one LMTP connection and deliver their
share of N 3 kB mails, one recipient each. For the bare counter the clock stops when
the last 250 arrives; for the gateway there are two figures: accepted (the last 250,
each given only after the mail was committed) and processed (every mail parsed,
classified, its case opened and its acknowledgement in the outbox; outgoing mail goes
to a maildir here, so no smarthost shares the two cores).

    python bench/bench_lmtp.py [--mails 2000] [--worker-processes 1] [--store-url URL]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import smtplib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiosmtpd.controller import UnixSocketController
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import CountingHandler, make_store, three_kb_mail
from gateway.clock import SystemClock
from gateway.config import parse_config
from gateway.daemon import Daemon
from store.db import Store
from store.models import InboundItem

CLIENTS = 8


class BareLmtp(UnixSocketController):
    def factory(self) -> SMTP:
        return LMTP(self.handler, **self.SMTP_kwargs)


def _client(job: tuple[str, list[bytes]]) -> list[float]:
    path, chunk = job
    took = []
    with smtplib.LMTP(path, timeout=120) as client:
        for raw in chunk:
            started = time.perf_counter()
            refused = client.sendmail("alice@acme.example", ["support@example.com"], raw)
            took.append(time.perf_counter() - started)
            assert refused == {}
    return took


def blast(path: str, mails: list[bytes]) -> tuple[float, list[float]]:
    """Deliver from CLIENTS connections; the seconds until the last reply, and each's time."""
    chunks = [(path, mails[i::CLIENTS]) for i in range(CLIENTS)]
    with multiprocessing.get_context("fork").Pool(CLIENTS) as pool:
        started = time.perf_counter()
        per_mail = [t for chunk in pool.map(_client, chunks) for t in chunk]
        elapsed = time.perf_counter() - started
    assert len(per_mail) == len(mails)
    return elapsed, per_mail


def baseline(folder: Path, mails: list[bytes]) -> tuple[float, list[float]]:
    handler = CountingHandler(per_recipient=True)
    path = str(folder / "bare.sock")
    controller = BareLmtp(handler, unix_socket=path)
    controller.start()
    try:
        elapsed, per_mail = blast(path, mails)
    finally:
        controller.stop()
    assert handler.count == len(mails)
    return len(mails) / elapsed, per_mail


def gateway(
    folder: Path, store: Store, mails: list[bytes], processes: int
) -> tuple[float, float, list[float]]:
    path = str(folder / "lmtp.sock")
    config = parse_config(
        {
            "store": {"url": store.url},
            "worker": {"processes": processes},
            "smtp": {"enabled": False},
            "lmtp": {"enabled": True, "socket": path},
            "outbound": {"maildir": str(folder / "out")},
            "monitoring": {"enabled": False},
            "auto_reply": {"max_per_address_per_hour": len(mails)},
        },
        "<bench>",
    )
    daemon = Daemon(config, store, SystemClock())
    daemon.start()
    try:
        started = time.perf_counter()
        accepted, per_mail = blast(path, mails)
        while True:
            with store.session() as session:
                pending = session.scalar(select(func.count()).where(InboundItem.state == "pending"))
            if pending == 0:
                break
            time.sleep(0.01)
        processed = time.perf_counter() - started
    finally:
        daemon.stop()
    return len(mails) / accepted, len(mails) / processed, per_mail


def percentiles(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument("--store-url", default="")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-lmtp-"))
    mails = [three_kb_mail(n, "lmtp-bench") for n in range(options.mails)]
    bare_rate, bare_times = baseline(folder, mails)
    store = make_store(options.store_url, folder)
    accepted_rate, processed_rate, gateway_times = gateway(
        folder, store, mails, options.worker_processes
    )
    with store.session() as session:
        stored = session.scalar(select(func.count()).select_from(InboundItem))
        decisions = dict(
            session.execute(
                select(InboundItem.decision, func.count()).group_by(InboundItem.decision)
            )
            .tuples()
            .all()
        )
    store.dispose()
    print(
        f"{options.mails} mails, {CLIENTS} LMTP clients on a unix socket,"
        f" store {store.url.split(':')[0]}, {options.worker_processes} worker process(es)"
    )
    print(f"bare aiosmtpd LMTP counter: {bare_rate:7.0f} msg/s  ({percentiles(bare_times)})")
    accepted = f"{accepted_rate:7.0f} msg/s  {accepted_rate / bare_rate:.3f}x"
    processed = f"{processed_rate:7.0f} msg/s  {processed_rate / bare_rate:.3f}x"
    print(
        f"gateway, accepted:          {accepted}"
        f"  ({percentiles(gateway_times)}; 250 only after the commit)"
    )
    print(f"gateway, processed:         {processed}  (case opened, acknowledgement in the outbox)")
    print(f"stored {stored} of {options.mails}; decisions {decisions}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
