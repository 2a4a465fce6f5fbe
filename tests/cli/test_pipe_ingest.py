"""`ingest` as a pipe transport: lean imports, hand-over to a running daemon, sysexits."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select

from gateway.cli.main import main
from gateway.clock import FakeClock
from gateway.config import CONFIG_ENV_VAR, DEFAULT_CONFIG_FILENAME, GatewayConfig, parse_config
from gateway.daemon import Daemon
from gateway.ingest import pipe
from gateway.ingest.inbound import inbound_row
from store.db import Store
from store.migrate import alembic_config
from store.models import Case, InboundItem
from store.sqlite_writers import connection_class_for
from tests.support.mails import build_mail
from tests.support.smtp_sink import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
URGENT = build_mail(subject="URGENT: checkout down")
HEAVY = (
    *("sqlalchemy", "alembic", "aiosmtpd", "prometheus_client", "imapclient", "mailparser"),
    *("matplotlib", "pydantic", "jinja2", "gateway.daemon", "gateway.work.worker"),
)


def write_config(folder: Path, store_url: str) -> Path:
    path = folder / "escalation-gateway.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n'
        f'[outbound]\nmaildir = "{folder}/out"\n'
        f"[smtp]\nport = {free_port()}\n[monitoring]\nenabled = false\n"
    )
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_config(tmp_path, f"sqlite:///{tmp_path}/gw.db")
    return tmp_path


def ingest(
    workdir: Path, *args: str, stdin: bytes = URGENT, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-m", "gateway", "ingest", *args],
        cwd=workdir,
        input=stdin.decode("latin-1"),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def items(store_url: str) -> list[InboundItem]:
    store = Store(store_url)
    try:
        with store.session() as session:
            return list(session.scalars(select(InboundItem).order_by(InboundItem.id)))
    finally:
        store.dispose()


@pytest.mark.parametrize(
    "raw",
    [
        URGENT,
        b"From: a@b.example\r\nMessage-ID:\r\n  <folded@x.example>\r\n\r\nbody\r\n",
        b"no header block at all",
        b"",
    ],
)
def test_the_pipe_row_is_the_row_every_other_way_in_writes(raw: bytes) -> None:
    now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    expected = inbound_row(
        raw, source="ingest", clock=FakeClock(now), mail_from="a@b.example", rcpt_tos=["s@x"]
    )
    assert pipe.pipe_row(raw, "a@b.example", ["s@x"], now) == expected


def test_the_pipe_knows_the_config_conventions_and_migration_heads() -> None:
    assert (pipe.CONFIG_ENV_VAR, pipe.DEFAULT_CONFIG_FILENAME) == (
        CONFIG_ENV_VAR,
        DEFAULT_CONFIG_FILENAME,
    )
    assert GatewayConfig().store.url == pipe.DEFAULT_STORE_URL
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert pipe.schema_heads() == frozenset(heads)


def test_without_a_daemon_ingest_processes_the_mail_itself(workdir: Path) -> None:
    first = ingest(workdir, "--from", "alice@acme.example", "--to", "support@example.com")
    assert first.returncode == 0, first.stderr
    assert "ESC-000001" in first.stdout
    # The store now exists at head: the second mail takes the lean store step.
    second = ingest(workdir, stdin=build_mail(subject="URGENT: still down"))
    assert second.returncode == 0, second.stderr
    assert "ESC-000002" in second.stdout
    stored = items(f"sqlite:///{workdir}/gw.db")
    assert [(i.state, i.source) for i in stored] == [("done", "ingest")] * 2
    assert (stored[0].mail_from, stored[0].rcpt_tos) == (
        "alice@acme.example",
        ["support@example.com"],
    )
    assert len(list((workdir / "out" / "new").iterdir())) == 4


def test_a_running_daemon_gets_the_mail_and_the_pipe_imports_nothing_heavy(
    workdir: Path,
) -> None:
    url = f"sqlite:///{workdir}/gw.db"
    config = parse_config(
        {
            "store": {"url": url},
            "smtp": {"enabled": False},
            "monitoring": {"enabled": False},
            "outbound": {"maildir": str(workdir / "out")},
        },
        "<test>",
    )
    store = Store(url)
    daemon = Daemon(config, store, FakeClock(datetime(2026, 11, 23, 14, 0, tzinfo=UTC)))
    daemon.start()
    try:
        probe = (
            "import sys, json; from gateway.cli.main import main; code = main(['ingest']);"
            "print(json.dumps([code, sorted(sys.modules)]))"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=workdir,
            input=URGENT.decode(),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert result.returncode == 0, result.stderr
        first_line, json_line = result.stdout.strip().splitlines()
        assert first_line == "-: item 1 stored; handed to the running daemon"
        code, modules = json.loads(json_line)
        assert code == 0
        assert [m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY] == []

        def opened() -> bool:
            with store.session() as session:
                return session.scalar(select(Case.key)) == "ESC-000001"

        wait_until(opened, what="the daemon to open the piped mail's case")
    finally:
        daemon.stop()
        store.dispose()
    assert not (workdir / "gw.db-wake").exists()  # the socket goes with the daemon


def test_usage_errors_exit_64_and_help_documents_the_exit_codes(workdir: Path) -> None:
    wrong = ingest(workdir, "--no-such-option")
    assert wrong.returncode == 64
    assert wrong.stderr.count("\n") == 1
    shown = subprocess.run(
        [sys.executable, "-m", "gateway", "ingest", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert "75  EX_TEMPFAIL" in shown.stdout and "64  EX_USAGE" in shown.stdout


def test_bad_mail_is_stored_and_exits_0_never_65(workdir: Path) -> None:
    ingest(workdir)  # creates the store
    garbage = ingest(workdir, stdin=b"\xff\xfe\x00 not a mail \x00" * 40)
    assert garbage.returncode == 0, garbage.stderr
    empty = ingest(workdir, stdin=b"")
    assert empty.returncode == 0, empty.stderr
    stored = items(f"sqlite:///{workdir}/gw.db")
    assert len(stored) == 3
    assert all(item.state in {"done", "quarantined"} for item in stored)


@pytest.mark.parametrize(
    "store_url",
    ["sqlite:////nonexistent-folder/gw.db", "postgresql://gateway@127.0.0.1:1/none"],
)
def test_an_unreachable_store_exits_75(tmp_path: Path, store_url: str) -> None:
    write_config(tmp_path, store_url)
    result = ingest(tmp_path)
    assert result.returncode == 75, result.stderr
    assert result.stderr.count("\n") == 1
    assert "retry" in result.stderr


def test_an_unreadable_config_exits_75_so_the_mail_is_kept(tmp_path: Path) -> None:
    (tmp_path / "escalation-gateway.toml").write_text("[store\nurl = ")
    result = ingest(tmp_path)
    assert result.returncode == 75
    assert result.stderr.startswith("config error: ")


@pytest.fixture
def held_writer_lock(workdir: Path) -> Iterator[None]:
    ingest(workdir)  # creates the store
    database = f"{workdir}/gw.db"
    descriptor = os.open(connection_class_for(database).lock_path, os.O_RDWR)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    yield
    os.close(descriptor)


@pytest.mark.usefixtures("held_writer_lock")
def test_a_store_locked_too_long_exits_75(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pipe, "LOCK_TIMEOUT", 0.3)
    monkeypatch.chdir(workdir)
    monkeypatch.setattr("sys.stdin", _Stdin(URGENT))
    assert main(["ingest"]) == 75
    assert "locked by another writer" in capsys.readouterr().err
    with sqlite3.connect(f"{workdir}/gw.db") as connection:
        assert connection.execute("SELECT count(*) FROM inbound_items").fetchone() == (1,)


class _Stdin:
    def __init__(self, data: bytes) -> None:
        import io

        self.buffer = io.BytesIO(data)


def test_a_store_from_a_newer_version_exits_75_not_a_bounce(workdir: Path) -> None:
    ingest(workdir)  # creates the store
    with sqlite3.connect(f"{workdir}/gw.db") as connection:
        connection.execute("INSERT INTO alembic_version VALUES ('9999')")
    result = ingest(workdir, stdin=build_mail(subject="URGENT: after a rollback"))
    assert result.returncode == 75, result.stderr
    assert result.stderr.count("\n") == 1 and "9999" in result.stderr


def test_an_unexpected_failure_before_storing_is_a_retry_not_a_bounce(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_args: object) -> frozenset[str]:
        raise RuntimeError("migrations folder unreadable")

    monkeypatch.setattr("gateway.cli.pipe.schema_heads", broken)
    monkeypatch.chdir(workdir)
    monkeypatch.setattr("sys.stdin", _Stdin(URGENT))
    assert main(["ingest"]) == 75
    assert capsys.readouterr().err.count("\n") == 1
