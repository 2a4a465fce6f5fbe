"""Shared fixtures: real stores (SQLite and PostgreSQL), a real SMTP sink, a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command

from gateway.clock import FakeClock
from gateway.config import GatewayConfig, parse_config
from store.db import Store
from store.migrate import alembic_config
from tests.support.databases import postgres_database, truncate_all
from tests.support.dovecot import dovecot_server  # noqa: F401  (fixture)
from tests.support.gateway import Gateway
from tests.support.smtp_sink import SmtpSink, free_port

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def _postgres_store(postgres_url: str) -> Iterator[Store]:
    store = Store(postgres_url)
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each test runs once on a fresh SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        sqlite_store = Store(f"sqlite:///{tmp_path / 'gateway.db'}")
        sqlite_store.migrate()
        yield sqlite_store
        sqlite_store.dispose()
        return
    pg_store: Store = request.getfixturevalue("_postgres_store")
    truncate_all(pg_store)
    yield pg_store


@pytest.fixture(params=["sqlite", "postgresql"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store at the first schema (revision 0001), for tests of later migrations."""
    if request.param == "sqlite":
        sqlite_store = Store(f"sqlite:///{tmp_path / 'old.db'}")
        command.upgrade(alembic_config(sqlite_store.engine), "0001")
        yield sqlite_store
        sqlite_store.dispose()
        return
    with postgres_database() as url:
        pg_store = Store(url)
        command.upgrade(alembic_config(pg_store.engine), "0001")
        yield pg_store
        pg_store.dispose()


@pytest.fixture
def clock() -> FakeClock:
    # A Monday afternoon in UTC: inside business hours of the default calendar.
    return FakeClock(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


ACME = {
    "name": "Acme Corp",
    "domains": ["acme.example"],
    "account_managers": [{"name": "Anna Manager", "email": "anna.am@example.com"}],
    "lead": {"name": "Lee Lead", "email": "lee.lead@example.com"},
}


# Every level with two owners, so round robin has somebody to rotate to.
TWO_OWNERS = [
    {
        "number": n,
        "name": f"Level {n}",
        "first_response": "1h",
        "status_interval": "4h",
        "resolution": "1d",
        "owners": [
            {"name": "Ada", "email": f"ada{n}@example.com"},
            {"name": "Bo", "email": f"bo{n}@example.com"},
        ],
    }
    for n in (1, 2, 3, 4)
]


def make_config(store: Store, sink: SmtpSink | None = None, **overrides: Any) -> GatewayConfig:
    """A realistic config for tests: Acme as an account, outbound to the sink."""
    data: dict[str, Any] = {
        "store": {"url": store.url},
        "smtp": {
            "port": free_port(),
            "accept_recipients": ["support@example.com", "escalations@example.com"],
            "max_message_size": 200_000,
        },
        "outbound": {
            "mode": "smtp",
            "host": "127.0.0.1",
            "port": sink.port if sink else 25,
            "from_address": "support@example.com",
            "retry_initial": "1s",
            "max_attempts": 3,
        },
        "accounts": [ACME],
        # Tests that want /metrics switch it on with a free port; others bind nothing.
        "monitoring": {"enabled": False, "port": 0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_config(data, "<test>")


@pytest.fixture
def gateway(store: Store, smtp_sink: SmtpSink, clock: FakeClock) -> Iterator[Gateway]:
    gw = Gateway(make_config(store, smtp_sink), store, smtp_sink, clock)
    gw.daemon.start()
    yield gw
    gw.daemon.stop()
