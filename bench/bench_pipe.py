"""Pipe ingest benchmark: one `escalation-gateway ingest` per mail, as a pipe transport runs it.

The baseline, measured in the same run and interleaved with the gateway's runs, is a
bare interpreter start (`python -c pass`, the same interpreter): what any Python pipe
command pays before its first line. The gateway's figure is a whole run of the
console script with a 3 kB mail on stdin, against a running daemon (`run`, started
here as a subprocess on a SQLite store in a temp folder), from process start to exit
after the mail is committed and the daemon woken. Every mail is then checked to have
been processed by the daemon. A few runs with no daemon show the fallback, where
`ingest` processes the mail itself as it always did.

    python bench/bench_pipe.py [--mails 60] [--store-url postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import three_kb_mail
from store.db import Store
from store.models import Base, InboundItem

ROOT = Path(__file__).resolve().parents[1]


def console_script() -> list[str]:
    """The installed `escalation-gateway` beside this interpreter, else `-m gateway`."""
    script = Path(sys.executable).with_name("escalation-gateway")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]


def timed(command: list[str], folder: Path, stdin: bytes = b"") -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, input=stdin, capture_output=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command[-1]} exited {result.returncode}: {result.stderr.decode()}")
    return elapsed


def wait_processed(store: Store, expected: int, timeout: float = 120.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with store.session() as session:
            pending = session.scalar(select(func.count()).where(InboundItem.state == "pending"))
            total = session.scalar(select(func.count()).select_from(InboundItem))
        if pending == 0 and total == expected:
            return time.monotonic() - started
        time.sleep(0.05)
    raise SystemExit(f"the daemon did not process all {expected} mails in {timeout:.0f}s")


def wait_for_socket(path: Path, timeout: float = 60.0) -> None:
    """`run` binds its wake-up socket once migrations ran and the worker is up."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"the daemon did not bind {path} in {timeout:.0f}s")
        time.sleep(0.05)


def write_config(folder: Path, store_url: str) -> None:
    (folder / "escalation-gateway.toml").write_text(
        f'[store]\nurl = "{store_url}"\n'
        f'[outbound]\nmaildir = "{folder}/out"\n'
        "[smtp]\nenabled = false\n[monitoring]\nenabled = false\n"
        + (f'[ingest]\nwake_socket = "{folder}/wake"\n' if store_url.startswith("postgres") else "")
    )


def describe(label: str, seconds: list[float], baseline: float | None = None) -> str:
    median = statistics.median(seconds)
    p90 = sorted(seconds)[max(0, int(len(seconds) * 0.9) - 1)]
    ratio = f", {median / baseline:.1f}x the bare start" if baseline else ""
    return f"{label:<34} median {median * 1000:7.1f} ms  p90 {p90 * 1000:7.1f} ms{ratio}"


def reset(store_url: str) -> None:
    if store_url.startswith("postgres"):
        store = Store(store_url)
        store.migrate()
        with store.engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
        store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=60)
    parser.add_argument("--fallback-mails", type=int, default=5)
    parser.add_argument("--store-url", default="")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-pipe-"))
    store_url = options.store_url or f"sqlite:///{folder}/gw.db"
    reset(store_url)
    write_config(folder, store_url)
    store = Store(store_url)
    store.migrate()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ingest = [*console_script(), "ingest", "--from", "alice@acme.example"]
    bare = [sys.executable, "-c", "pass"]
    daemon = subprocess.Popen(
        [*console_script(), "run"], cwd=folder, env=env, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_socket(
            folder / "wake" if store_url.startswith("postgres") else folder / "gw.db-wake"
        )
        baseline, piped = [], []
        for n in range(options.mails):
            baseline.append(timed(bare, folder))
            piped.append(timed(ingest, folder, three_kb_mail(n, "pipe-bench")))
        drained = wait_processed(store, options.mails)
    finally:
        daemon.terminate()
        daemon.wait(30)
    fallback = [
        timed(ingest, folder, three_kb_mail(10_000 + n, "pipe-bench"))
        for n in range(options.fallback_mails)
    ]
    bare_median = statistics.median(baseline)
    print(f"store: {store_url.split('://')[0]}, {options.mails} mails, {os.cpu_count()} cores")
    print(describe("bare `python -c pass`", baseline))
    print(describe("ingest, daemon running", piped, bare_median))
    print(
        f"  all {options.mails} processed by the daemon; the last {drained:.2f} s after the"
        " last ingest exited"
    )
    print(describe("ingest, no daemon (fallback)", fallback, bare_median))
    store.dispose()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
