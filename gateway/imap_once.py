"""`escalation-gateway ingest --imap`: take what is waiting in a mailbox once, then stop.

Same steps and guarantees as the daemon's watcher (commit, record, then flag), with
each stored item processed straight away so the processed/quarantine move can
happen before the connection is closed.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.clock import Clock
from gateway.imap_config import ImapMailboxConfig
from gateway.imap_connection import ImapFailure, classify, close, connect
from gateway.imap_sync import FolderSync
from store.db import Store


def ingest_once(
    config: ImapMailboxConfig,
    store: Store,
    clock: Clock,
    process: Callable[[int], None],
) -> list[int]:
    """Store and process every new message; returns the stored item ids.

    Raises ImapFailure (one-line reason) for connection, login or folder problems.
    """
    client = connect(config)
    try:
        sync = FolderSync(config, store, clock)
        sync.attach(client)
        stored = sync.catch_up().stored
        for item_id in stored:
            process(item_id)
        sync.settle()
        return stored
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        raise ImapFailure(failure.kind, f"{config.describe()}: {failure}") from None
    finally:
        close(client)
