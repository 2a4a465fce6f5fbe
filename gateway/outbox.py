"""Writing outgoing mail into the stored outbox, inside the caller's transaction.

A mail is rendered to its final bytes here, so a crash can never leave a case change
without its mail: both are in one commit. The sender only ships stored bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.case_lookup import strip_reply_prefixes
from gateway.config import GatewayConfig
from gateway.loop_guard import OWN_MARKER_HEADER
from gateway.render import Renderer
from store.models import AutoReplyLog, Case, CaseEvent, MessageLink, OutboxMail


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""


@dataclass(frozen=True)
class Threading:
    """The message this mail answers, so mail clients keep the conversation together."""

    in_reply_to: str | None
    references: tuple[str, ...]


class Outbox:
    def __init__(self, config: GatewayConfig, renderer: Renderer, shadow: bool = False) -> None:
        self.config = config
        self.renderer = renderer
        self.shadow = shadow

    def cap_reached(self, session: Session, address: str, now: datetime) -> bool:
        cap = self.config.auto_reply.max_per_address_per_hour
        sent = session.scalar(
            select(func.count())
            .select_from(AutoReplyLog)
            .where(AutoReplyLog.address == address, AutoReplyLog.at > now - timedelta(hours=1))
        )
        return (sent or 0) >= cap

    def enqueue(
        self,
        session: Session,
        *,
        case: Case,
        kind: str,
        template: str,
        context: dict[str, Any],
        to: Sequence[Recipient],
        cc: Sequence[Recipient] = (),
        subject: str,
        threading: Threading,
        now: datetime,
        external: bool,
        auto_submitted: str = "auto-replied",
    ) -> OutboxMail | None:
        """Render and store one mail. External mail counts against the per-address cap.

        Returns None (and records why on the case) when the cap holds the mail back.
        """
        if external:
            capped = [r.email for r in to if self.cap_reached(session, r.email, now)]
            if capped:
                session.add(
                    CaseEvent(
                        case_id=case.id,
                        at=now,
                        kind="reply_suppressed",
                        actor="gateway",
                        detail=(
                            f"{kind} to {', '.join(capped)} not sent: cap of "
                            f"{self.config.auto_reply.max_per_address_per_hour} "
                            "automatic mails per address per hour reached"
                        ),
                        data={"kind": kind, "reason": "per-address cap"},
                    )
                )
                return None
        outbound = self.config.outbound
        message_id = make_msgid(domain=outbound.effective_message_id_domain)
        tagged_subject = f"[{case.key}] {strip_reply_prefixes(subject)}"
        body = self.renderer.render(template, context)

        message = EmailMessage()
        message["From"] = HeaderAddress(outbound.from_name, addr_spec=outbound.from_address)
        message["To"] = [HeaderAddress(r.name, addr_spec=r.email) for r in to]
        if cc:
            message["Cc"] = [HeaderAddress(r.name, addr_spec=r.email) for r in cc]
        message["Subject"] = tagged_subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id
        if threading.in_reply_to:
            message["In-Reply-To"] = f"<{threading.in_reply_to}>"
        if threading.references:
            message["References"] = " ".join(f"<{r}>" for r in threading.references)
        # RFC 3834: mark our mail as automatic so well-behaved responders stay quiet.
        message["Auto-Submitted"] = auto_submitted
        message["X-Auto-Response-Suppress"] = "All"
        message[OWN_MARKER_HEADER] = case.key or ""
        message.set_content(body.text)
        if body.html is not None:
            message.add_alternative(body.html, subtype="html")

        recipients = sorted({r.email for r in (*to, *cc)})
        mail = OutboxMail(
            case_id=case.id,
            kind=kind,
            created_at=now,
            envelope_from=outbound.from_address,
            recipients=recipients,
            subject=tagged_subject,
            message_id=message_id.strip("<>"),
            # SMTP wants CRLF, and smtplib does not convert bytes for us.
            raw=message.as_bytes(policy=message.policy.clone(linesep="\r\n")),
            state="shadow" if self.shadow else "pending",
            attempts=0,
            next_attempt_at=now,
        )
        session.add(mail)
        session.flush()
        session.add(
            MessageLink(
                message_id=mail.message_id,
                case_id=case.id,
                direction="out",
                outbox_id=mail.id,
                at=now,
            )
        )
        if external:
            for r in to:
                session.add(AutoReplyLog(address=r.email, at=now))
        return mail
