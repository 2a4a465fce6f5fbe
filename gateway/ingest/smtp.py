"""The SMTP way in: an aiosmtpd handler that stores, commits, and only then says 250.

No rule runs in a protocol hook. The commit happens in a thread so a slow disk never
stalls the other SMTP sessions on the event loop, and mails that arrive while a
commit is under way share the next one (group commit): each is still answered 250
only once its own row is committed.

With `[smtp] tls_cert_file` (and `tls_key_file`) the listener offers STARTTLS, so it
can face a sending MX; `require_starttls` refuses mail before it (530).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import BaseThreadedController, Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.clock import Clock
from gateway.config import ConfigError, SmtpListenerConfig
from gateway.ingest.inbound import inbound_row, store_rows
from store.db import Store

log = logging.getLogger("gateway.smtp")


class RecipientPolicy:
    """Only configured addresses and domains are accepted: the gateway never relays."""

    def __init__(self, config: SmtpListenerConfig) -> None:
        self.addresses = frozenset(config.accept_recipients)
        self.domains = frozenset(config.accept_domains)

    def accepts(self, address: str) -> bool:
        address = address.strip().strip("<>").lower()
        if address in self.addresses:
            return True
        local, _, domain = address.rpartition("@")
        # Plus-addressing (support+token@) reaches the same mailbox.
        base = f"{local.split('+', 1)[0]}@{domain}"
        return base in self.addresses or domain in self.domains


class GroupCommit:
    """Rows handed in on the event loop are committed together, one batch at a time.

    Everything here runs on the listener's event loop thread except the commit
    itself, so the pending list needs no lock. While one batch commits in a worker
    thread, new arrivals gather for the next; an idle listener commits a lone mail at
    once, without waiting to fill a batch.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: list[tuple[dict[str, object], asyncio.Future[int]]] = []
        self._committing = False
        # The loop keeps only a weak reference to a task; this one must not vanish.
        self._task: asyncio.Task[None] | None = None

    async def store_row(self, row: dict[str, object]) -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((row, future))
        if not self._committing:
            self._committing = True
            self._task = loop.create_task(self._commit_pending())
        return await future

    async def _commit_pending(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    ids = await loop.run_in_executor(
                        None, store_rows, self.store, [row for row, _ in batch]
                    )
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), item_id in zip(batch, ids, strict=True):
                    if not future.done():
                        future.set_result(item_id)
        finally:
            self._committing = False


class InboundHandler:
    # Recorded on each item: where it came in.
    source = "smtp"

    def __init__(
        self,
        store: Store,
        clock: Clock,
        policy: RecipientPolicy,
        on_stored: Callable[[int], None] = lambda _id: None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.policy = policy
        self.on_stored = on_stored
        self.commits = GroupCommit(store)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not self.policy.accepts(address):
            return f"550 5.1.1 <{address}>: recipient not accepted here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self.store_envelope(envelope)

    async def store_envelope(self, envelope: Envelope) -> str:
        """Commit the mail; the reply: 250 once committed, 451 if the store failed."""
        row = inbound_row(
            envelope.original_content or b"",
            source=self.source,
            clock=self.clock,
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
        )
        try:
            item_id = await self.commits.store_row(row)
        except Exception as exc:  # any store failure must become a retry, never a loss
            log.error("store failed, answered 451 so the sender retries: %s", exc)
            return "451 4.3.0 Temporary storage failure, please try again later"
        self.on_stored(item_id)
        return f"250 2.0.0 OK queued as {item_id}"


def tls_context(config: SmtpListenerConfig) -> ssl.SSLContext | None:
    """The STARTTLS context from `[smtp] tls_cert_file` and `tls_key_file`; None if unset."""
    if not config.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert_file, config.tls_key_file or None)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            "[smtp]", "smtp.tls_cert_file", f"cannot load {config.tls_cert_file}: {reason}"
        ) from None
    return context


class ControllerListener:
    """What the SMTP and LMTP listeners share: an aiosmtpd controller on its own thread."""

    controller: BaseThreadedController

    @property
    def port(self) -> int:
        server: Any = self.controller.server
        return int(server.sockets[0].getsockname()[1])

    def is_running(self) -> bool:
        return bool(self.controller.loop.is_running())


class SmtpListener(ControllerListener):
    def __init__(self, config: SmtpListenerConfig, handler: InboundHandler) -> None:
        self.config = config
        context = tls_context(config)
        self.controller = Controller(
            handler,
            hostname=config.host,
            port=config.port,
            data_size_limit=config.max_message_size,
            # The raw bytes are what we store; decoding them is the parser's job.
            decode_data=False,
            timeout=300,
            # STARTTLS is offered only with a certificate; a sending MX upgrades.
            tls_context=context,
            require_starttls=config.require_starttls and context is not None,
        )

    def start(self) -> None:
        self.controller.start()
        tls = " with STARTTLS" if self.config.tls_cert_file else ""
        log.info("SMTP listener on %s:%s%s", self.config.host, self.port, tls)

    def stop(self) -> None:
        self.controller.stop()
