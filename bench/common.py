"""What the ingest benchmarks share: the 3 kB test mail, a counting listener, a clean store.

Scripts in bench/ put the project root on sys.path before importing this.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from store.db import Store
from store.models import Base
from tests.support.mails import build_mail


def three_kb_mail(n: int, id_prefix: str) -> bytes:
    """Mail number n; id_prefix keeps one benchmark's Message-IDs apart from another's."""
    body = (f"Message {n}. " + "The export page fails with a timeout again. " * 70)[:3000]
    return build_mail(
        subject=f"URGENT: export broken #{n}",
        body=body,
        message_id=f"<{id_prefix}-{n}-{time.time_ns()}@acme.example>",
    )


class CountingHandler:
    """A bare aiosmtpd handler that only counts what it accepts: the baseline listener.

    LMTP answers DATA once per recipient, SMTP once per message; per_recipient picks which.
    """

    def __init__(self, *, per_recipient: bool = False) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.per_recipient = per_recipient

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
        if self.per_recipient:
            return "\r\n".join("250 OK" for _ in envelope.rcpt_tos)
        return "250 OK"


def make_store(url: str | None, folder: Path) -> Store:
    """The store at url (else SQLite in folder), migrated and emptied of earlier runs."""
    store = Store(url or f"sqlite:///{folder / 'bench.db'}")
    store.migrate()
    with store.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(text(f'DELETE FROM "{table.name}"'))
    return store
