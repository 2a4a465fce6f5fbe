"""Outbox crash run (issue 13.1): `run` SIGKILLed during an SMTP burst, then restarted.

    python bench/bench_outbox_crash.py                       # 1,000 mails, 3 kills, SQLite
    python bench/bench_outbox_crash.py --backend postgresql  # a throwaway PostgreSQL database
    python bench/bench_outbox_crash.py --mails 1000 --kills 3 --runs 4

Each run sends the burst over SMTP to `python -m gateway run` in a subprocess, kills
it `--kills` times while its sender is shipping acknowledgements to a real aiosmtpd
smarthost, restarts it at once, and counts: mails accepted (the client got its 250),
lost and duplicate cases, missing and duplicate acknowledgements, and repeats of any
other mail. The baseline is the same burst without a kill, in the same invocation;
the time of a crash run is reported as a ratio to it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.db import Store
from tests.flows.test_outbox_crash import CrashFigures, crash_burst
from tests.outbound.smarthost import Smarthost
from tests.support.databases import postgres_database


@contextmanager
def fresh_store(backend: str, folder: Path) -> Iterator[Store]:
    if backend == "sqlite":
        store = Store(f"sqlite:///{folder / 'gateway.db'}")
        store.migrate()
        yield store
        store.dispose()
        return
    with postgres_database() as url:
        store = Store(url)
        store.migrate()
        yield store
        store.dispose()


def one_run(backend: str, mails: int, kills: int, delay: float, processes: int) -> CrashFigures:
    with (
        tempfile.TemporaryDirectory() as folder,
        fresh_store(backend, Path(folder)) as store,
        Smarthost(delay=delay) as smarthost,
    ):
        return crash_burst(
            store, Path(folder), smarthost, mails=mails, kills=kills, worker_processes=processes
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--smarthost-delay", type=float, default=0.003, help="seconds per DATA")
    parser.add_argument("--worker-processes", type=int, default=0, help="[worker] processes")
    args = parser.parse_args()

    baseline = one_run(args.backend, args.mails, 0, args.smarthost_delay, args.worker_processes)
    print(f"baseline (no kill): {baseline}")
    columns = (
        "accepted lost_cases duplicate_cases missing_acks duplicate_acks duplicate_other"
        " time; first copy of each repeat, ms from the kill"
    )
    print(f"{args.backend}, {args.mails} mails, {args.kills} kills per run")
    print(f"run  {columns}")
    bad = 0
    for run in range(1, args.runs + 1):
        f = one_run(
            args.backend, args.mails, args.kills, args.smarthost_delay, args.worker_processes
        )
        ratio = f.seconds / baseline.seconds
        print(
            f"{run:>3}  {f.accepted:>8} {f.lost_cases:>10} {f.duplicate_cases:>15} "
            f"{f.missing_acks:>12} {f.duplicate_acks:>14} {f.duplicate_other_mail:>15} "
            f"{f.seconds:6.1f}s = {ratio:.2f}x baseline; {list(f.repeat_offsets_ms)}"
        )
        bad += f.lost_cases + f.duplicate_cases + f.missing_acks + (f.accepted != args.mails)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
