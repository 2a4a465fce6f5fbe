"""A refused command mail: recorded, logged, counted, and answered only inside the case.

The From of a refused mail is not proven (that is usually why it was refused), so a
refusal must neither tell a stranger anything about the case nor let anyone make
the gateway mail an address of their choosing. It is therefore mailed only when the
From holds a lead role on the case, to that address, as staff mail (with a reply
token of that person's own, so replying to it works), and at most
`[leads] max_refusals_per_hour` times an hour per address. A stranger's attempt, or
a re-sent copy of a mail already applied, gets no mail at all: it is recorded on the
case (a `command_refused` event and a `lead_commands` row, which /metrics counts by
reason) and logged at WARNING.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.cases.lifecycle import Lifecycle
from gateway.config import GatewayConfig
from gateway.leads import command_log
from gateway.leads.auth import Authorization
from gateway.outbound.outbox import Recipient, Threading
from parsers.model import ParsedMail
from store.appends import add_auto_reply
from store.models import AutoReplyLog, Case

log = logging.getLogger("gateway.leads")


def answering(mail: ParsedMail) -> Threading:
    """Threading that answers the given mail, as a mail client's reply would."""
    if not mail.message_id:
        return Threading(None, mail.references)
    return Threading(mail.message_id, (*mail.references, mail.message_id))


class Refusals:
    def __init__(self, config: GatewayConfig, lifecycle: Lifecycle) -> None:
        self.config = config
        self.lifecycle = lifecycle

    def refuse(
        self, session: Session, case: Case, mail: ParsedMail, auth: Authorization, now: datetime
    ) -> str:
        """Record, log and maybe answer; returns a one-line summary."""
        claimed = auth.sender or (mail.from_.email if mail.from_ else "")
        mailed = self._mail(session, case, mail, auth, now)
        told = f"refusal mailed to {auth.sender}" if mailed else "no refusal mail"
        command_log.record(
            session,
            case,
            sender=claimed,
            message_id=mail.message_id,
            now=now,
            refusal=auth.code,
            detail=auth.reason,
        )
        self.lifecycle.event(
            session,
            case,
            now,
            "command_refused",
            f"{auth.reason} ({told})",
            actor=claimed or "unknown sender",
            data={
                "sender": claimed,
                "reason": auth.reason,
                "code": auth.code,
                "message_id": mail.message_id,
                "subject": mail.subject,
                "mailed": mailed,
            },
        )
        log.warning(
            "lead command mail refused: case=%s code=%s from=%s message-id=%s reason=%s; %s",
            case.key,
            auth.code,
            claimed or "-",
            mail.message_id or "-",
            auth.reason,
            told,
        )
        return f"refused ({auth.code}): {auth.reason}"

    def _mail(
        self, session: Session, case: Case, mail: ParsedMail, auth: Authorization, now: datetime
    ) -> bool:
        # A stranger is told nothing; a copy of an applied mail deserves no answer.
        if auth.role is None or not auth.sender or auth.code == "replayed":
            return False
        if self._refusals_this_hour(session, auth.sender, now) >= (
            self.config.leads.max_refusals_per_hour
        ):
            return False
        add_auto_reply(session, address=auth.sender, at=now, kind="refusal")
        self.lifecycle.mail.to_staff(
            session,
            case,
            "command_refused",
            [Recipient(auth.sender)],
            now,
            answering=answering(mail),
            reason=auth.reason,
            sender=auth.sender,
        )
        return True

    def _refusals_this_hour(self, session: Session, address: str, now: datetime) -> int:
        sent = session.scalar(
            select(func.count())
            .select_from(AutoReplyLog)
            .where(
                AutoReplyLog.address == address,
                AutoReplyLog.kind == "refusal",
                AutoReplyLog.at > now - timedelta(hours=1),
            )
        )
        return int(sent or 0)
