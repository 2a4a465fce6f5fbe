"""`escalation-gateway ingest --imap`: take what is waiting in a mailbox once, then stop.

Same steps and guarantees as the daemon's watcher (commit, record, then flag), with
each stored item processed straight away so the processed/quarantine move can
happen before the connection is closed.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.clock import Clock
from gateway.config import GatewayConfig
from gateway.config.imap import ImapMailboxConfig
from gateway.ingest.imap.connection import ImapFailure, classify, close, connect
from gateway.ingest.imap.sync import FolderSync
from gateway.work.worker import Outcome, Worker
from store.db import Store


def outcome_line(label: str, outcome: Outcome) -> str:
    """One processed item as `ingest` prints it; label says where the mail came from."""
    return (
        f"{label}: item {outcome.item_id} {outcome.state}"
        f" {outcome.decision or ''} {outcome.case_key or ''}".rstrip()
        + f": {outcome.detail}"
    )


def ingest_once(
    config: ImapMailboxConfig,
    store: Store,
    clock: Clock,
    process: Callable[[int], None],
) -> list[int]:
    """Store and process every new message; returns the stored item ids.

    Raises ImapFailure (one-line reason) for connection, login or folder problems.
    """
    try:
        client = connect(config)
        try:
            sync = FolderSync(config, store, clock)
            sync.attach(client)
            stored = sync.catch_up().stored
            for item_id in stored:
                process(item_id)
            sync.settle()
            return stored
        finally:
            close(client)
    except Exception as exc:
        failure = classify(exc)
        if failure is None:
            raise
        raise ImapFailure(failure.kind, f"{config.describe()}: {failure}") from None


def ingest_mailboxes(
    config: GatewayConfig,
    store: Store,
    clock: Clock,
    worker: Worker,
    name: str | None,
    report: Callable[[str], None],
) -> int:
    """Run `ingest_once` for the named [[imap]] mailbox, or all; returns items stored.

    Raises ImapFailure for an unknown name or the first mailbox that cannot be read.
    """
    mailboxes = [m for m in config.imap if name is None or m.name == name]
    if not mailboxes:
        known = ", ".join(m.name for m in config.imap) or "none configured"
        raise ImapFailure("protocol", f"no [[imap]] mailbox named {name!r} ({known})")
    total = 0
    for mailbox in mailboxes:

        def process(item_id: int, label: str = mailbox.source) -> None:
            outcome = worker.process_next(item_id)
            if outcome is not None:
                report(outcome_line(label, outcome))

        total += len(ingest_once(mailbox, store, clock, process))
    return total
