"""SQLite writers queue on a kernel lock: readers never wait, a dead holder frees it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import insert, select, text

from gateway.clock import SystemClock
from gateway.ingest.inbound import inbound_row
from store.db import Store
from store.models import InboundItem
from store.sqlite_writers import TurnTakingConnection
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'turns.db'}")
    store.migrate()
    return store


def _row() -> dict[str, object]:
    return inbound_row(b"Subject: x\r\n\r\nbody", source="test", clock=SystemClock())


def _count(store: Store) -> int:
    with store.engine.connect() as connection:
        return len(connection.execute(select(InboundItem.id)).all())


def test_a_second_writer_waits_for_the_first_to_commit_and_readers_never_wait(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    second_done = threading.Event()

    def second_writer() -> None:
        with store.engine.begin() as connection:
            connection.execute(insert(InboundItem).values(_row()))
        second_done.set()

    with store.engine.begin() as first:
        first.execute(insert(InboundItem).values(_row()))
        dbapi = first.connection.dbapi_connection
        assert isinstance(dbapi, TurnTakingConnection) and dbapi._holding
        thread = threading.Thread(target=second_writer)
        thread.start()
        # The reader sees the committed state at once, lock or no lock.
        assert _count(store) == 0
        assert not second_done.wait(0.3)
    thread.join(10)
    assert second_done.is_set()
    assert _count(store) == 2


def test_a_transaction_that_only_reads_does_not_take_the_lock(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.engine.begin() as reader:
        reader.execute(text("SELECT count(*) FROM inbound_items"))
        dbapi = reader.connection.dbapi_connection
        assert isinstance(dbapi, TurnTakingConnection) and not dbapi._holding
        with store.engine.begin() as writer:
            writer.execute(insert(InboundItem).values(_row()))
    assert _count(store) == 1


def test_the_lock_of_a_killed_process_is_released(tmp_path: Path) -> None:
    store = _store(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from sqlalchemy import text\n"
            "from store.db import Store\n"
            f"store = Store({store.url!r})\n"
            "connection = store.engine.connect()\n"
            "connection.execute(text(\"DELETE FROM settings WHERE key = 'none'\"))\n"
            "print('holding', flush=True)\n"
            "time.sleep(60)\n",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        done = threading.Event()

        def write() -> None:
            with store.engine.begin() as connection:
                connection.execute(insert(InboundItem).values(_row()))
            done.set()

        threading.Thread(target=write, daemon=True).start()
        wait_until(done.is_set, what="a write after the holder died", timeout=10)
    finally:
        holder.kill()
        holder.wait(10)
