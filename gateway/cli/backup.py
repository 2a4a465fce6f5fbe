"""`backup FILE`: a consistent copy of a SQLite store, taken while the daemon runs."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from gateway.cli.common import AddCommand, UserError
from gateway.config import GatewayConfig
from gateway.ingest.wake import sqlite_file


def backup_sqlite(database: str, target: Path) -> int:
    """Copy `database` to `target` with SQLite's online backup API; the pages copied.

    The backup API copies a consistent snapshot even while the daemon writes (WAL
    readers never block writers), page batch by page batch, so the daemon's writers
    wait at most one batch.
    """
    if not Path(database).exists():
        raise UserError(f"store {database}: no such file")
    if target.exists():
        raise UserError(f"{target}: already exists; backup never overwrites a file")
    partial = target.with_name(target.name + ".partial")
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy, pages=1024)
            pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
            check = copy.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            copy.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise UserError(f"backup of {database} failed: {exc}") from None
    finally:
        source.close()
    if check != "ok":
        partial.unlink(missing_ok=True)
        raise UserError(f"backup of {database} failed its integrity check: {check}")
    # Only a complete, checked copy gets the name asked for.
    partial.rename(target)
    return pages


def cmd_backup(args: argparse.Namespace, config: GatewayConfig, source: str) -> int:
    database = sqlite_file(config.store.url)
    if database is None:
        raise UserError(
            f"store {config.store.url}: backup copies SQLite stores; for PostgreSQL use"
            " pg_dump (see README, Deploying)"
        )
    pages = backup_sqlite(database, Path(args.file))
    print(f"{database} -> {args.file}: {pages} pages, integrity ok")
    return 0


def register(add: AddCommand) -> None:
    p = add(
        "backup",
        cmd_backup,
        "copy the SQLite store to FILE while the daemon runs (SQLite's online backup)",
        "escalation-gateway backup /var/backups/escalation-gateway-$(date +%F).db",
    )
    p.add_argument("file", metavar="FILE", help="where to write the copy; must not exist")
