"""A gateway daemon watching a real Dovecot mailbox, with helpers to look inside."""

from __future__ import annotations

from typing import Any

from imapclient import IMAPClient
from sqlalchemy import func, select

from gateway.clock import Clock
from gateway.config import GatewayConfig
from gateway.daemon import Daemon
from gateway.ingest.imap.state import FolderPosition, load_position
from store.db import Store
from store.models import Case, InboundItem, OutboxMail
from tests.conftest import make_config
from tests.support.dovecot import DovecotServer
from tests.support.mails import build_mail
from tests.support.smtp_sink import SmtpSink
from tests.support.waiting import wait_until

USER, PASSWORD = "support", "secret"


def imap_entry(server: DovecotServer, **overrides: Any) -> dict[str, Any]:
    """One [[imap]] table for the test server; fast retries so outages stay short."""
    entry: dict[str, Any] = {
        "name": "support",
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": USER,
        "password": PASSWORD,
        "mode": "idle",
        "poll_interval": "1s",
        "timeout": "5s",
        "reconnect_initial": 0.1,
        "reconnect_max": 0.5,
    }
    entry.update(overrides)
    return entry


def imap_config(
    store: Store, sink: SmtpSink | None, server: DovecotServer, **overrides: Any
) -> GatewayConfig:
    return make_config(store, sink, smtp={"enabled": False}, imap=[imap_entry(server, **overrides)])


def urgent(n: int = 1, **kwargs: Any) -> bytes:
    return build_mail(subject=f"URGENT: nobody can log in ({n})", **kwargs)


class ImapGateway:
    """The daemon plus read-only views of the store and the mailbox."""

    def __init__(
        self, config: GatewayConfig, store: Store, clock: Clock, server: DovecotServer
    ) -> None:
        self.config, self.store, self.server = config, store, server
        self.daemon = Daemon(config, store, clock)

    @property
    def watcher(self) -> Any:
        return self.daemon.imap_watchers[0]

    def start(self) -> ImapGateway:
        self.daemon.start()
        wait_until(self.watcher.ready.is_set, what="IMAP watcher to connect")
        return self

    def stop(self) -> None:
        self.daemon.stop(timeout=10)

    def append(self, raw: bytes, folder: str = "INBOX") -> int:
        uid = self.server.append(USER, PASSWORD, folder, raw)
        assert uid is not None
        return uid

    def count(self, model: Any, *where: Any) -> int:
        with self.store.session() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def cases(self) -> int:
        return self.count(Case)

    def acks(self) -> int:
        return self.count(OutboxMail, OutboxMail.kind == "acknowledgement")

    def items(self) -> list[InboundItem]:
        with self.store.session() as session:
            return list(session.scalars(select(InboundItem).order_by(InboundItem.id)))

    def settled(self) -> bool:
        return self.count(InboundItem, InboundItem.state == "pending") == 0

    def wait_for_cases(self, n: int, timeout: float = 15.0) -> None:
        wait_until(
            lambda: self.cases() >= n and self.acks() >= n and self.settled(),
            what=f"{n} case(s) with acknowledgements",
            timeout=timeout,
        )

    def position(self, folder: str = "INBOX") -> FolderPosition | None:
        return load_position(self.store, "support", folder)

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        with self.server.session(USER, PASSWORD) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
        return {int(uid): tuple(data[b"FLAGS"]) for uid, data in fetched.items()}

    def wait_all_seen(self, folder: str = "INBOX") -> None:
        # \Seen is set only after the commit, so it may trail the case by a moment.
        wait_until(
            lambda: all(b"\\Seen" in flags for flags in self.flags(folder).values()),
            what=f"every message in {folder} to be flagged \\Seen",
        )

    def client(self) -> IMAPClient:
        return self.server.client(USER, PASSWORD)
