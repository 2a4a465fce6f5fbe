"""`backup FILE`: a consistent SQLite copy while something keeps writing."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from pathlib import Path

from sqlalchemy import select

from gateway.clock import SystemClock
from gateway.ingest.inbound import store_inbound
from store.db import Store
from store.models import Case, InboundItem
from tests.support.cli import run_gateway
from tests.support.mails import build_mail


def cli(folder: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return run_gateway(*args, cwd=folder, stdin=stdin, timeout=120)


def test_backup_while_writing_restores_to_a_working_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    (tmp_path / "escalation-gateway.toml").write_text(
        f'[store]\nurl = "{url}"\n[outbound]\nmaildir = "{tmp_path}/out"\n'
    )
    assert cli(tmp_path, "ingest", stdin=build_mail(subject="URGENT: down")).returncode == 0
    store = Store(url)
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            store_inbound(store, build_mail(subject="more"), source="test", clock=SystemClock())

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        result = cli(tmp_path, "backup", "copy.db")
    finally:
        stop.set()
        writer.join()
        store.dispose()
    assert result.returncode == 0, result.stderr
    assert b"integrity ok" in result.stdout
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # Restore: the copy is a store the gateway opens as it is.
    restored = Store(f"sqlite:///{tmp_path}/copy.db")
    restored.migrate()
    with restored.session() as session:
        assert session.scalar(select(Case.key)) == "ESC-000001"
        assert len(session.scalars(select(InboundItem.id)).all()) >= 1
    restored.dispose()

    again = cli(tmp_path, "backup", "copy.db")
    assert again.returncode == 2
    assert again.stderr.decode().count("\n") == 1 and b"already exists" in again.stderr
    assert not (tmp_path / "copy.db.partial").exists()


def test_backup_of_a_postgresql_store_points_to_pg_dump(tmp_path: Path) -> None:
    (tmp_path / "escalation-gateway.toml").write_text(
        '[store]\nurl = "postgresql://gateway@127.0.0.1:1/none"\n'
    )
    result = cli(tmp_path, "backup", "copy.db")
    assert result.returncode == 2
    assert b"pg_dump" in result.stderr
