"""Pipe ingest's store step: commit one raw mail with the standard library and a driver.

A mail server's pipe transport starts one process per mail, so this path imports
neither SQLAlchemy, pydantic, Alembic nor anything that parses mail: the config file
is read only for the store URL and the wake-up socket, and the row is written with
the database driver itself (sqlite3, or psycopg for PostgreSQL). The row is the one
`gateway.ingest.inbound.store_inbound` writes, column for column (both build it
with gateway/ingest/raw_mail.py, and a test holds the two together), and on SQLite
the write takes its turn on the same kernel lock as every other writer
(store/sqlite_writers.py).

The schema is checked, not migrated: the revisions recorded in `alembic_version`
must be the heads of the migrations shipped with this code. When they are not (a
new database, or code newer than the database) `store_raw` says so and the caller
takes the full path, which migrates.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import sqlite3
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import store
from gateway.ingest.raw_mail import inbound_columns
from gateway.ingest.wake import sqlite_file, wake_socket_path
from store.sqlite_writers import connection_class_for

# Mirrors gateway/config/load.py and the defaults in gateway/config/sections.py, which
# this path must not import; tests/cli/test_pipe_ingest.py checks they agree.
CONFIG_ENV_VAR = "ESCALATION_GATEWAY_CONFIG"
DEFAULT_CONFIG_FILENAME = "escalation-gateway.toml"
DEFAULT_STORE_URL = "sqlite:///escalation-gateway.db"

# How long a pipe waits for the store's write lock before exiting 75 (retry later).
LOCK_TIMEOUT = 30.0

MIGRATIONS = Path(store.__file__).resolve().parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision(?:\s*:\s*\w+)?\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]+)?\s*=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


class PipeConfigError(Exception):
    """The config file cannot be read for the store URL."""


class StoreUnavailable(Exception):
    """The store could not take the mail now (down, locked, unwritable): retry later."""


@dataclass(frozen=True)
class PipeSettings:
    store_url: str
    wake_socket: str | None


def read_settings(explicit: str | None) -> PipeSettings:
    """The store URL and wake socket, found the way every command finds its config."""
    path: Path | None = Path(explicit) if explicit else None
    if path is None and os.environ.get(CONFIG_ENV_VAR):
        path = Path(os.environ[CONFIG_ENV_VAR])
    if path is None and Path(DEFAULT_CONFIG_FILENAME).exists():
        path = Path(DEFAULT_CONFIG_FILENAME)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PipeConfigError(f"{path}: cannot read file: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise PipeConfigError(f"{path}: not valid TOML: {exc}") from None
    url = _string(data, "store", "url", DEFAULT_STORE_URL, path)
    configured = _string(data, "ingest", "wake_socket", "", path)
    return PipeSettings(url, wake_socket_path(url, configured))


def _string(data: dict[str, Any], section: str, key: str, default: str, path: Path | None) -> str:
    table = data.get(section, {})
    value = table.get(key, default) if isinstance(table, dict) else default
    if not isinstance(value, str):
        raise PipeConfigError(f"{path}: {section}.{key}: must be a string")
    return value


def schema_heads(directory: Path = MIGRATIONS) -> frozenset[str]:
    """The head revisions of the shipped migrations, read from their source text."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in directory.glob("*.py"):
        text = script.read_text(encoding="utf-8")
        revision = _REVISION.search(text)
        if revision is None:
            continue
        revisions.add(revision.group(1))
        down = _DOWN_REVISION.search(text)
        if down is not None:
            parents.update(_QUOTED.findall(down.group(1)))
    return frozenset(revisions - parents)


def pipe_row(
    raw: bytes, mail_from: str | None, rcpt_tos: list[str], now: datetime
) -> dict[str, Any]:
    """The inbound item's columns, as `gateway.ingest.inbound.inbound_row` builds them."""
    return inbound_columns(raw, "ingest", now.astimezone(UTC), mail_from, rcpt_tos)


_COLUMNS = (
    "received_at",
    "source",
    "mail_from",
    "rcpt_tos",
    "raw",
    "sha256",
    "message_id",
    "state",
    "attempts",
)


def store_raw(url: str, row: dict[str, Any], heads: frozenset[str]) -> int | None:
    """Commit the row and return its id; None if the schema is not at `heads`."""
    database = sqlite_file(url)
    if database is not None:
        return _store_sqlite(database, row, heads)
    if url.startswith(("postgresql", "postgres")):
        return _store_postgres(url, row, heads)
    return None  # another backend: the full path knows it


def _store_sqlite(database: str, row: dict[str, Any], heads: frozenset[str]) -> int | None:
    if not os.path.exists(database):
        return None  # a new store: the full path creates and migrates it
    values = dict(row)
    # SQLAlchemy's SQLite DATETIME text, and its JSON text, so the ORM reads them back.
    values["received_at"] = row["received_at"].strftime("%Y-%m-%d %H:%M:%S.%f")
    values["rcpt_tos"] = json.dumps(row["rcpt_tos"])
    try:
        connection = sqlite3.connect(database, timeout=LOCK_TIMEOUT)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"sqlite {database}: {exc}") from None
    try:
        # The pragmas every store connection sets (store/db.py).
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        if _recorded_heads_sqlite(connection) != heads:
            return None
        marks = ", ".join("?" for _ in _COLUMNS)
        with _writer_turn(database):
            cursor = connection.execute(
                f"INSERT INTO inbound_items ({', '.join(_COLUMNS)}) VALUES ({marks})",
                [values[column] for column in _COLUMNS],
            )
            connection.commit()
        return int(cursor.lastrowid or 0)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"sqlite {database}: {exc}") from None
    finally:
        connection.close()


@contextmanager
def _writer_turn(database: str) -> Iterator[None]:
    """The writers' kernel lock (store/sqlite_writers.py), waited for at most LOCK_TIMEOUT.

    The other writers wait for it without limit; a pipe gives up instead, so the mail
    server retries rather than keeping a delivery process blocked.
    """
    descriptor = os.open(connection_class_for(database).lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def expire(_signum: int, _frame: object) -> None:
        raise TimeoutError

    armed = False
    try:
        previous = signal.signal(signal.SIGALRM, expire)
    except ValueError:  # not the main thread: no alarm, wait as every other writer does
        pass
    else:
        armed = True
        signal.setitimer(signal.ITIMER_REAL, LOCK_TIMEOUT)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
    except TimeoutError:
        os.close(descriptor)
        raise StoreUnavailable(
            f"sqlite {database}: locked by another writer for {LOCK_TIMEOUT:g}s"
        ) from None
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous or signal.SIG_DFL)
    try:
        yield
    finally:
        os.close(descriptor)  # closing the descriptor lets the lock go


def _recorded_heads_sqlite(connection: sqlite3.Connection) -> frozenset[str]:
    try:
        return frozenset(
            r[0] for r in connection.execute("SELECT version_num FROM alembic_version")
        )
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return frozenset()
        raise


def _store_postgres(url: str, row: dict[str, Any], heads: frozenset[str]) -> int | None:
    import psycopg  # only a PostgreSQL store pays for the driver

    conninfo = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)
    values = dict(row)
    values["rcpt_tos"] = json.dumps(row["rcpt_tos"])
    try:
        with psycopg.connect(conninfo, connect_timeout=10) as connection:
            recorded = connection.execute("SELECT to_regclass('alembic_version')").fetchone()
            if recorded is None or recorded[0] is None:
                return None
            versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            if frozenset(r[0] for r in versions) != heads:
                return None
            marks = ", ".join("%s::json" if column == "rcpt_tos" else "%s" for column in _COLUMNS)
            inserted = connection.execute(
                f"INSERT INTO inbound_items ({', '.join(_COLUMNS)}) VALUES ({marks}) RETURNING id",
                [values[column] for column in _COLUMNS],
            ).fetchone()
            assert inserted is not None
            return int(inserted[0])
    except psycopg.Error as exc:
        # One line: libpq's messages carry a hint on a second, indented line.
        raise StoreUnavailable("postgresql: " + " ".join(str(exc).split())) from None
