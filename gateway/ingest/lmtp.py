"""The LMTP way in (RFC 2033), for a mail server that hands mail over, as to Mailman 3.

Postfix (`lmtp:unix:/run/escalation-gateway/lmtp` or `lmtp:inet:127.0.0.1:2424`) or
Exim's LMTP transport delivers here. The rules are the SMTP listener's: recipients
not accepted get 550 at RCPT, mail over the size limit 552, and a store failure 451,
so the mail server keeps the mail and retries. The mail is committed once, with all
its accepted recipients, before any 250.

LMTP answers DATA once per accepted recipient, in RCPT order. aiosmtpd writes what
the handler returns as it is, so the handler returns one line per recipient joined
by CRLF. Its own answers after the data (552 too much data, 500 line too long) are
single lines; `_PerRecipientLMTP.push` repeats those once per recipient, so the
client never waits for a reply that does not come.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, AnyStr

from aiosmtpd.controller import Controller, UnixSocketController
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.config.sections import LmtpListenerConfig, SmtpListenerConfig
from gateway.ingest.smtp import ControllerListener, InboundHandler

log = logging.getLogger("gateway.lmtp")


class LmtpHandler(InboundHandler):
    """Stores like the SMTP handler; answers DATA for each recipient."""

    source = "lmtp"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        status = await self.store_envelope(envelope)
        recipients = envelope.rcpt_tos
        if status.startswith("250"):
            return "\r\n".join(f"250 2.1.5 <{rcpt}> {status[4:]}" for rcpt in recipients)
        return "\r\n".join([status] * len(recipients))


class _PerRecipientLMTP(LMTP):
    """aiosmtpd's LMTP, with its own after-data errors sent once per recipient."""

    _after_data_recipients = 0

    async def smtp_DATA(self, arg: str) -> None:
        try:
            await super().smtp_DATA(arg)
        finally:
            self._after_data_recipients = 0

    async def push(self, status: AnyStr) -> None:
        text = status.decode("ascii", "replace") if isinstance(status, bytes) else str(status)
        if self._after_data_recipients > 1 and "\r\n" not in text:
            await super().push("\r\n".join([text] * self._after_data_recipients))
            return
        await super().push(status)
        if text.startswith("354") and self.envelope is not None:
            # From here to the end of DATA every reply is owed once per recipient.
            self._after_data_recipients = len(self.envelope.rcpt_tos)


def _factory_for(controller: Any) -> Any:
    return _PerRecipientLMTP(controller.handler, **controller.SMTP_kwargs)


class _InetLmtpController(Controller):
    def factory(self) -> SMTP:
        server: SMTP = _factory_for(self)
        return server


class _UnixLmtpController(UnixSocketController):
    def factory(self) -> SMTP:
        server: SMTP = _factory_for(self)
        return server


class LmtpListener(ControllerListener):
    def __init__(
        self, config: LmtpListenerConfig, smtp: SmtpListenerConfig, handler: LmtpHandler
    ) -> None:
        self.config = config
        options: dict[str, Any] = {
            "data_size_limit": smtp.max_message_size,
            "decode_data": False,
            "timeout": 300,
        }
        self.controller: Controller | UnixSocketController
        if config.socket:
            self.controller = _UnixLmtpController(handler, unix_socket=config.socket, **options)
        else:
            self.controller = _InetLmtpController(
                handler, hostname=config.host, port=config.port, **options
            )

    @property
    def address(self) -> str:
        if self.config.socket:
            return self.config.socket
        server: Any = self.controller.server
        host, port = server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    def start(self) -> None:
        self.controller.start()
        if self.config.socket:
            # The mail server's LMTP client runs as another user (postfix, Debian-exim).
            os.chmod(self.config.socket, self.config.socket_mode)
        log.info("LMTP listener on %s", self.address)

    def stop(self) -> None:
        self.controller.stop()
        if self.config.socket:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.config.socket)
